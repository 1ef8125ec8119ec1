//! Helpers for the harness's tests: the workspace's other binaries, and scratch folders.
//!
//! `CARGO_BIN_EXE_*` names only this package's binaries, but the harness drives loadgen and
//! the servers, which other packages build. `cargo test --workspace` builds them all into the
//! same target folder before any test runs; a test run of this package alone builds the one it
//! needs with the cargo that runs the tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary `bin` of the workspace package `package`, built for this test's profile.
pub fn built(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    // <target>/<profile>/deps/<test>-<hash> -> <target>/<profile>
    let dir = exe.parent().and_then(Path::parent).expect("a cargo target folder").to_path_buf();
    let path = dir.join(bin);
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", bin]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echobench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bin folder holding this build's loadgen, for the harness's `--bin-dir`.
pub fn bin_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::os::unix::fs::symlink(built("echobench-loadgen", "loadgen"), dir.join("loadgen")).unwrap();
    dir
}
