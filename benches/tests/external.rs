//! Bring your own server: a ten-line Python asyncio echo server (tests/data/asyncio_echo.py,
//! the README's worked example) is compared beside echo-mio with `--external`, once with its
//! pid (its CPU and memory sampled like a model's) and once without (those figures "-", and
//! the report says why). Python 3 is on every machine the suite runs on; without it the test
//! says so and skips.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use harness::results::Results;

mod util;
use util::{bin_dir, built};

/// The Python server, started; its address from its ready line.
fn python_server() -> Option<(Child, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/asyncio_echo.py");
    let mut child = match Command::new("python3").arg(script).stdout(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipped: python3 not installed ({e})");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("a ready line").to_string();
    Some((child, addr))
}

#[test]
fn a_users_python_server_is_compared_beside_the_models() {
    let Some((mut python, addr)) = python_server() else { return };
    let bin = bin_dir("external");
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    let out = bin.join("results");
    let with_pid = format!("py={addr},pid={}", python.id());
    let without = format!("py-nopid={addr}");
    let output = Command::new(env!("CARGO_BIN_EXE_echobench"))
        .args(["compare", "--models", "mio", "--scenarios", "scale,idle", "--repeats", "1"])
        .args(["--connections", "4", "--idle", "20", "--warmup", "100ms", "--duration", "400ms"])
        .args(["--external", &with_pid, "--external", &without])
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let _ = python.kill();
    let _ = python.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let json = std::fs::read_to_string(out.join("latest/results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
    // The standard profile's control, a second mio, runs beside the model and the user's.
    assert_eq!(names, ["mio", "mio (control)", "py", "py-nopid"]);
    assert_eq!(r.models[1].control_of.as_deref(), Some("mio"));
    for m in &r.models[2..] {
        let s = m.scenario("scale").unwrap().points[0].summary.as_ref().unwrap();
        assert!(s.median.received > 0.0, "{} echoed", m.name);
        assert_eq!(s.errors, 0.0, "{} echoed correctly", m.name);
        assert_eq!(m.external.as_ref().unwrap().addr, addr);
    }
    let sampled = r.models[2].scenario("scale").unwrap().points[0].summary.as_ref().unwrap();
    assert!(sampled.median.server_cpu_per_msg_us.is_some(), "with a pid, its CPU is sampled");
    let blind = r.models[3].scenario("scale").unwrap().points[0].summary.as_ref().unwrap();
    assert!(blind.median.server_cpu_per_msg_us.is_none(), "without one, it is not");

    let md = ["latest/report.md", "latest/details.md"]
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap_or_default())
        .concat();
    assert!(
        md.contains(&format!("**py**: your server (`--external`), started by you at {addr} (pid"))
    );
    assert!(md.contains("py-nopid was started by you and named without its pid"), "{md}");
    // The table is turned (the models are its columns, py-nopid the last).
    let row = md.lines().find(|l| l.starts_with("| server CPU us/msg | 4 conns |")).expect("a row");
    assert!(row.ends_with("| - |"), "unmeasured server figures are dashes: {row}");
    let _ = std::fs::remove_dir_all(&bin);
}

#[test]
fn a_bad_external_is_one_line_and_exit_2() {
    for (value, says) in [
        ("nameonly", "--external takes NAME=ADDR"),
        ("x=127.0.0.1:9,pid=abc", "is not a process id"),
        ("mio=127.0.0.1:9", "the name is taken"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_echobench"))
            .args(["compare", "--models", "mio", "--dry-run", "--external", value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{value}: {stderr}");
    }
}
