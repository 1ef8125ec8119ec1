//! The harness's modules depend on each other one way: no import cycles, and the measuring
//! side never refers to the rendering side (see ARCHITECTURE.md, "benches").
//!
//! The test reads every file under benches/src, collects the paths it names (`use crate::...`,
//! `crate::x::y` in code, `super::`, and a file's own submodules), resolves each to the file
//! module that defines it, and checks the graph. Comments, string literals and `#[cfg(test)]`
//! modules are left out: a doc link or a unit test is no dependency of the harness. The
//! reading of paths is in `paths.rs`; this file holds the layers and the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod paths;
use paths::refs;

/// The layers, by top-level module (a module's submodule files belong to its layer). The rule:
/// measuring refers only to measuring and the leaves; rendering also to measuring (it reads
/// the results); the scenarios to both, since each provides both halves; the top to anything;
/// the leaves to nothing. Every module is in exactly one list, so a new one must be placed.
const MEASURING: &[&str] = &[
    "binaries",
    "compare",
    "counters",
    "criterion",
    "disturb",
    "env",
    "external",
    "generator",
    "generators",
    "interrupt",
    "measure",
    "metrics",
    "output",
    "plan",
    "point",
    "procstat",
    "registry",
    "remote",
    "results",
    "runner",
    "server",
    "stopper",
    "strace",
    "target",
];
const RENDERING: &[&str] = &[
    "baseline",
    "caveats",
    "charts",
    "criterion_notes",
    "csv",
    "findings",
    "hosts",
    "noise",
    "present",
    "render",
    "report",
];
const SCENARIOS: &[&str] = &["scenario"];
const TOP: &[&str] = &["cli", "session"];
const LEAVES: &[&str] = &["text"];

/// Which layers each layer may refer to.
fn allowed(layer: &str) -> &'static [&'static str] {
    match layer {
        "measuring" => &["measuring", "leaves"],
        "rendering" => &["rendering", "measuring", "leaves"],
        "scenarios" => &["scenarios", "rendering", "measuring", "leaves"],
        "top" => &["top", "scenarios", "rendering", "measuring", "leaves"],
        _ => &["leaves"],
    }
}

fn layer(module: &str) -> Option<&'static str> {
    let top = module.split("::").next().unwrap_or_default();
    let lists = [
        ("measuring", MEASURING),
        ("rendering", RENDERING),
        ("scenarios", SCENARIOS),
        ("top", TOP),
        ("leaves", LEAVES),
    ];
    lists.iter().find(|(_, list)| list.contains(&top)).map(|(name, _)| *name)
}

#[test]
fn the_harness_has_no_import_cycles_and_measuring_never_refers_to_rendering() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let problems = problems(&graph);
    assert!(problems.is_empty(), "benches/src breaks its layering:\n{}", problems.join("\n"));
}

#[test]
fn the_check_fails_when_the_runner_refers_to_the_report_or_a_cycle_appears() {
    // The check itself, on the harness as it would be if runner.rs imported the report again,
    // or if plan.rs (which the runner reads) referred back to the runner.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let with = |module: &str, code: &str| {
        let mut graph = graph(&src);
        let names: BTreeSet<String> = graph.keys().cloned().collect();
        let names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let added: BTreeSet<String> =
            refs(module, code, &[]).iter().map(|p| resolve(&names, p)).collect();
        graph.get_mut(module).expect("a module of benches/src").extend(added);
        problems(&graph)
    };
    let report = with("runner", "use crate::report;\nfn f() { crate::report::render(); }");
    assert_eq!(report, ["runner (measuring) refers to report (rendering)"]);
    let cycle = with("plan", "fn f(r: &crate::runner::Runner<'_>) {}");
    assert!(
        cycle.iter().any(|p| p.starts_with("cycle: ") && p.contains("plan -> runner")),
        "{cycle:?}"
    );
}

#[test]
fn paths_are_read_from_groups_super_and_submodules() {
    let code =
        "use crate::{a::{b, c::D}, e};\nuse super::f::G;\nmod h;\nfn x() { h::y(); self::z(); }";
    let found = refs("p::q", code, &["h"]);
    let expect = ["a::b", "a::c::D", "e", "p::f::G", "p::q::h::y", "p::q::z"];
    assert_eq!(found, expect.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
}

/// Each file module (`runner`, `runner::repeat`, `scenario`, `scenario::udp::findings`) and
/// the paths it names, resolved to the file module they start from; lib.rs is "".
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts.join("::"), std::fs::read_to_string(f).unwrap())
        })
        .collect();
    let names: BTreeSet<&str> = modules.keys().map(String::as_str).collect();
    let mut graph = BTreeMap::new();
    for (module, text) in &modules {
        let children: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_prefix(module.as_str()))
            .filter_map(|rest| rest.strip_prefix("::").or(module.is_empty().then_some(rest)))
            .filter(|rest| !rest.is_empty() && !rest.contains("::"))
            .collect();
        let paths = refs(module, text, &children);
        let resolved = paths.iter().map(|p| resolve(&names, p)).collect();
        graph.insert(module.clone(), resolved);
    }
    graph
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The longest file module that `path` starts with, or `path`'s first segment under the root
/// (an item of lib.rs, or something that is not a module at all) as `crate::X`.
fn resolve(names: &BTreeSet<&str>, path: &str) -> String {
    let parts: Vec<&str> = path.split("::").collect();
    for n in (1..=parts.len()).rev() {
        let prefix = parts[..n].join("::");
        if names.contains(prefix.as_str()) {
            return prefix;
        }
    }
    format!("crate::{}", parts[0])
}

/// Every problem with the graph, one line each.
fn problems(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (module, targets) in graph.iter().filter(|(m, _)| !m.is_empty()) {
        let Some(mine) = layer(module) else {
            out.push(format!("{module} is in no layer: add it to one list in tests/layers.rs"));
            continue;
        };
        for target in targets {
            if let Some(item) = target.strip_prefix("crate::") {
                out.push(format!(
                    "{module} refers to crate::{item}: name the module that defines it (lib.rs \
                     only declares modules and re-exports)"
                ));
            } else if let Some(theirs) = layer(target)
                && !allowed(mine).contains(&theirs)
                && !related(module, target)
            {
                out.push(format!("{module} ({mine}) refers to {target} ({theirs})"));
            }
        }
    }
    // A file and its own submodule files refer to each other freely (Rust's privacy makes
    // them one unit: `super::Runner`); a cycle is one between files that are not so related,
    // or between top-level modules once each is taken with its submodules.
    let files: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, ts)| {
            let ts = ts.iter().filter(|t| graph.contains_key(*t) && !related(m, t));
            (m.clone(), ts.cloned().collect())
        })
        .collect();
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, ts) in &files {
        let unit = units.entry(top(m)).or_default();
        unit.extend(ts.iter().map(|t| top(t)).filter(|t| *t != top(m)));
    }
    for g in [&files, &units] {
        if let Some(cycle) = find_cycle(g) {
            out.push(format!("cycle: {}", cycle.join(" -> ")));
        }
    }
    out
}

fn top(module: &str) -> String {
    module.split("::").next().unwrap_or_default().to_string()
}

/// Whether one module is the other or contains it.
fn related(a: &str, b: &str) -> bool {
    let within = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}::"));
    within(a, b) || within(b, a)
}

/// A cycle of `graph` as the modules along it (the first repeated at the end), if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}
