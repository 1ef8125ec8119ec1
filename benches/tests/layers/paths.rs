//! The paths a Rust file names, read without a parser crate: enough of Rust's lexical rules
//! (comments, strings, char literals against lifetimes, use groups, inline modules) to find
//! every `crate::`, `super::`, `self::` and submodule path in the harness's own code.

use std::collections::BTreeSet;

/// The paths the code of `module` names, as full paths from the crate root: those starting
/// with `crate::`, `super::`, `self::`, or one of its file submodules (`children`).
pub fn refs(module: &str, text: &str, children: &[&str]) -> BTreeSet<String> {
    let code = strip(text);
    let chars: Vec<char> = code.chars().collect();
    let here: Vec<String> =
        module.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
    // Inline modules (`pub mod col { use super::Column; }`) shift what `super` means.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth -= 1;
            inline.retain(|(_, d)| *d <= depth);
        }
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if !(boundary && (c.is_alphabetic() || c == '_')) {
            i += 1;
            continue;
        }
        let word = ident(&chars, i);
        let after = i + word.len();
        if word == "mod" {
            let name = ident(&chars, skip_space(&chars, after));
            let next = skip_space(&chars, skip_space(&chars, after) + name.len());
            if chars.get(next) == Some(&'{') {
                inline.push((name, depth + 1));
            }
        }
        let mut base: Vec<String> = here.clone();
        base.extend(inline.iter().map(|(n, _)| n.clone()));
        let start = match word.as_str() {
            "crate" => Some(Vec::new()),
            "self" => Some(base.clone()),
            "super" => Some(base[..base.len().saturating_sub(1)].to_vec()),
            w if inline.is_empty() && children.contains(&w) => {
                Some(base.iter().cloned().chain([w.to_string()]).collect())
            }
            _ => None,
        };
        let is_path = chars.get(after) == Some(&':') && chars.get(after + 1) == Some(&':');
        let preceded = i >= 2 && chars[i - 1] == ':' && chars[i - 2] == ':';
        match start {
            Some(start) if is_path && !preceded => {
                let (paths, end) = tree(&chars, after + 2);
                for p in paths {
                    let mut p = p;
                    // `super::super::x`, `self::super::x`.
                    let mut base = start.clone();
                    while p.first().is_some_and(|s| s == "super") {
                        base.pop();
                        p.remove(0);
                    }
                    let full: Vec<String> = base.into_iter().chain(p).collect();
                    out.insert(full.join("::"));
                }
                i = end;
            }
            _ => i = after,
        }
    }
    out
}

/// The paths of a use tree starting at `i` (just after a `::`): `a::b`, `{a, b::{c, d}}`,
/// `*`. Returns them and where the tree ends.
fn tree(chars: &[char], i: usize) -> (Vec<Vec<String>>, usize) {
    let i = skip_space(chars, i);
    if chars.get(i) == Some(&'{') {
        let mut paths = Vec::new();
        let mut j = i + 1;
        loop {
            j = skip_space(chars, j);
            match chars.get(j) {
                Some('}') | None => return (paths, j + 1),
                Some(',') => j += 1,
                _ => {
                    let (sub, end) = tree(chars, j);
                    paths.extend(sub);
                    j = end;
                }
            }
        }
    }
    if chars.get(i) == Some(&'*') {
        return (vec![Vec::new()], i + 1);
    }
    let word = ident(chars, i);
    let after = i + word.len();
    if word.is_empty() {
        return (vec![Vec::new()], after);
    }
    if chars.get(after) == Some(&':') && chars.get(after + 1) == Some(&':') {
        let (subs, end) = tree(chars, after + 2);
        let paths = subs.into_iter().map(|s| [vec![word.clone()], s].concat()).collect();
        return (paths, end);
    }
    // `self` inside a group names the group's own path.
    let last = if word == "self" { Vec::new() } else { vec![word] };
    (vec![last], after)
}

fn ident(chars: &[char], i: usize) -> String {
    chars[i.min(chars.len())..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').collect()
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// The code of a file without its comments, the contents of its string and char literals,
/// and its `#[cfg(test)]` module (tests sit at the end of a file, by the crate's convention).
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if chars[i] == 'r'
            && matches!(rest.get(1), Some('"' | '#'))
            && !word_before(&chars, i)
        {
            // A raw string: r"...", r#"..."#.
            let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
            if rest.get(1 + hashes) != Some(&'"') {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            let close: Vec<char> =
                std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if chars[i] == '\'' {
            // A char literal ('x', '\n', '{'), not a lifetime ('a).
            let len = if rest.get(1) == Some(&'\\') {
                rest.iter().skip(2).position(|c| *c == '\'').map(|p| p + 3)
            } else {
                (rest.get(2) == Some(&'\'')).then_some(3)
            };
            match len {
                Some(n) => {
                    out.push_str("' '");
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn word_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}
