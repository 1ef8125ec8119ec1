//! What the bench targets need around the harness: where `cargo bench` keeps the release
//! binaries, how to build them, where results go, and which profile the environment asks for.
//!
//! Bench executables live in `<target>/release/deps/`, and `cargo build --release` puts the
//! binaries in `<target>/release/`, so the binaries' folder is found from the running
//! executable. That follows `CARGO_TARGET_DIR` (or a configured target dir) without reading it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The folder the release binaries are built into: `<target>/release`.
pub fn release_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/release/deps/<bench>-<hash> -> <target>/release
    let dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf);
    dir.ok_or_else(|| io::Error::other(format!("{} is not in a cargo target dir", exe.display())))
}

/// Builds `packages`' binaries in release mode with the cargo that runs this bench (cargo sets
/// `CARGO` for bench executables). A nested build inside `cargo bench` does not deadlock on
/// the build lock: cargo releases it before it runs the benches. Up-to-date builds are no-ops.
/// The packages are those of [`crate::registry::packages`], usually.
pub fn build_release_binaries(packages: &[&str]) -> io::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root()).args(["build", "--release", "--bins"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("cargo build --release failed ({status})")))
    }
}

/// Where a run writes: `$ECHOBENCH_RESULTS` if set (CI points it at a scratch folder), else
/// `<workspace>/results`.
pub fn results_root() -> PathBuf {
    match std::env::var_os("ECHOBENCH_RESULTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("results"),
    }
}

/// Whether the environment variable `name` is set to something other than empty or `0`.
pub fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn flags_are_off_unless_set_to_something() {
        assert!(!env_flag("ECHOBENCH_SURELY_UNSET_FLAG"));
    }
}
