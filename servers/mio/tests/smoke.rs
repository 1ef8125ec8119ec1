//! Smoke test of the real `echo-mio` binary: every connection is served by the one thread,
//! and SIGTERM closes them all. (The shared conformance suite checks the rest of the server
//! contract.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous bound on anything that should be immediate, so that a broken server fails the
/// test instead of hanging it. Not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// How many threads a process has, as the kernel counts them.
fn threads(child: &Child) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status.lines().find(|line| line.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

#[test]
fn one_thread_serves_every_connection_until_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-mio"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo-mio");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("a ready line").to_owned();

    // Open them all first, then talk on each: they are served side by side, not in turn.
    let mut clients: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for (i, client) in clients.iter_mut().enumerate().rev() {
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let message = format!("client {i}");
        client.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0u8; message.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, message.as_bytes());
    }
    assert_eq!(threads(&child), 1, "an event loop needs no thread per connection");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("echo-mio did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serving 50 connections"), "stderr: {stderr}");
    for client in &mut clients {
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the server closed the connection");
    }
}
