//! The registry and the workspace agree: every server crate with an `echo-*` binary is a
//! model in the registry, and every registry entry names a package and binary that exist.

use std::fs;

use harness::binaries::workspace_root;
use harness::registry::{MODELS, packages};

/// (package, binaries) of every crate under servers/, read from its Cargo.toml.
fn server_crates() -> Vec<(String, Vec<String>)> {
    let mut crates = Vec::new();
    for entry in fs::read_dir(workspace_root().join("servers")).unwrap().flatten() {
        let Ok(manifest) = fs::read_to_string(entry.path().join("Cargo.toml")) else { continue };
        let mut package = None;
        let mut bins = Vec::new();
        let mut section = String::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if let Some(value) = line.strip_prefix("name = ") {
                let value = value.trim_matches('"').to_string();
                match section.as_str() {
                    "[package]" => package = Some(value),
                    "[[bin]]" => bins.push(value),
                    _ => {}
                }
            }
        }
        crates.push((package.expect("a [package] name"), bins));
    }
    crates
}

#[test]
fn every_server_binary_is_a_registered_model() {
    let crates = server_crates();
    assert!(crates.len() >= 4, "{crates:?}");
    for (package, bins) in &crates {
        for bin in bins.iter().filter(|b| b.starts_with("echo-")) {
            let model = MODELS.iter().find(|m| m.binary == bin);
            let model = model.unwrap_or_else(|| {
                panic!("{bin} ({package}) is not in benches/src/registry.rs MODELS: add it there")
            });
            assert_eq!(&model.package, package, "{bin}'s package");
        }
    }
}

#[test]
fn every_registered_model_is_a_server_crate_with_its_binary() {
    let crates = server_crates();
    for m in MODELS {
        let found = crates.iter().find(|(p, _)| p == m.package);
        let (_, bins) = found.unwrap_or_else(|| panic!("no servers/* crate is {}", m.package));
        assert!(bins.iter().any(|b| b == m.binary), "{} has no binary {}", m.package, m.binary);
    }
    let manifest = fs::read_to_string(workspace_root().join("loadgen/Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!("name = \"{}\"", packages().last().unwrap())));
}
