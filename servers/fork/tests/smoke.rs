//! A smoke test of the real `echo-fork` binary: one child per connection, and SIGTERM leaves
//! no child process behind. (The shared conformance suite checks the rest of the server
//! contract.) The server is always a separate process: a test process has many threads, and
//! must never fork itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous bound on anything that should be immediate, so a broken server fails the test
/// instead of hanging it. Not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `echo-fork`, killed on drop if a test fails before stopping it.
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    /// Starts the server on a free loopback port and waits for its ready line.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_echo-fork"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo-fork");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").expect("ready line").to_owned();
        Server { child: Some(child), addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// The pids of the server's children, as the kernel lists them.
    fn children(&self) -> Vec<u32> {
        let pid = self.pid();
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        list.split_whitespace().map(|pid| pid.parse().unwrap()).collect()
    }

    /// Sends SIGTERM and waits (boundedly) for the server to exit.
    fn stop(mut self) -> Output {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("echo-fork did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `message` and reads back exactly as many bytes.
fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).unwrap();
    back
}

#[test]
fn sigterm_stops_every_child_and_exits_zero() {
    let server = Server::start(&[]);
    let mut busy = server.connect();
    let mut idle = server.connect();
    assert_eq!(round_trip(&mut busy, b"hello"), b"hello");
    // Once it has echoed, each connection's child surely exists.
    assert_eq!(round_trip(&mut idle, b"x"), b"x");
    let children = server.children();
    assert_eq!(children.len(), 2, "one child per connection: {children:?}");
    for pid in &children {
        // stdin, stdout, stderr and its connection: nothing of the parent's (the listener
        // above all) stays open in a child.
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|entry| std::fs::read_link(entry.unwrap().path()).unwrap().display().to_string())
            .collect();
        assert_eq!(fds.len(), 4, "child {pid} holds {fds:?}");
    }

    let output = server.stop();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serving 2 connections"), "stderr: {stderr}");
    for pid in children {
        // A child left behind would have been adopted by another process and still exist.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} outlived the server");
    }
    // The idle client's connection was closed, not left hanging.
    // EOF or a reset both mean closed; a read that merely times out would mean it was not.
    match idle.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the idle connection was left open: {other:?}"),
    }
}
