//! Smoke tests of the real `echo-hybrid` binary: `--workers` sets how many event loops run,
//! SIGTERM stops and joins them all, and zero workers is refused. (The shared conformance
//! suite checks the rest of the server contract.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous bound on anything that should be immediate, so that a broken server fails the
/// test instead of hanging it. Not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(10);

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_echo-hybrid"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo-hybrid")
}

/// Waits for the ready line and returns the address it names.
fn ready(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    line.trim().strip_prefix("listening on ").expect("a ready line").to_owned()
}

/// Waits for `child` to exit, killing it and failing the test after [`PATIENCE`].
fn wait_bounded(mut child: Child) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("echo-hybrid did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// How many threads a process has, as the kernel counts them.
fn threads(child: &Child) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status.lines().find(|line| line.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

#[test]
fn workers_run_beside_the_acceptor_and_sigterm_joins_them() {
    let mut child = spawn(&["--workers", "3"]);
    let addr = ready(&mut child);
    // More clients than workers, so that every worker has some, all served at once.
    let mut clients: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let message = format!("client {i}");
        client.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0u8; message.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, message.as_bytes());
    }
    assert_eq!(threads(&child), 4, "the acceptor plus three workers");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let output = wait_bounded(child);
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serving 6 connections"), "stderr: {stderr}");
    // The workers closed their connections on the way out.
    for client in &mut clients {
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }
}

#[test]
fn zero_workers_is_refused_in_one_line() {
    let output = wait_bounded(spawn(&["--workers", "0"]));
    assert_eq!(output.status.code(), Some(2), "bad usage exits with status 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains("--workers"), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "no ready line for a server that did not start");
}
