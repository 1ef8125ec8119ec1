//! Smoke tests of the real `echo-thread` binary: one thread per connection, SIGTERM wakes and
//! joins them all, and `--stack-size` is honoured down to its minimum and refused below it.
//! (The shared conformance suite checks the rest of the server contract.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use echobench_thread::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, parse_stack_size};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous bound on anything that should be immediate, so a broken server fails the test
/// instead of hanging it. Not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `echo-thread`, killed on drop if a test fails before stopping it.
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    /// Starts the server on a free loopback port and waits for its ready line.
    fn start(args: &[&str]) -> Server {
        let mut child = spawn(args);
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

    /// How many threads the server process has, as the kernel counts them.
    fn threads(&self) -> usize {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|line| line.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse().unwrap()
    }

    /// Sends SIGTERM and waits (boundedly) for the server to exit.
    fn stop(mut self) -> Output {
        let child = self.child.take().unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        wait_bounded(child)
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

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_echo-thread"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo-thread")
}

/// Waits for `child` to exit, killing it and failing the test after [`PATIENCE`].
fn wait_bounded(mut child: Child) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("echo-thread did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Sends `message` and reads back exactly as many bytes.
fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).unwrap();
    back
}

#[test]
fn sigterm_wakes_and_joins_every_connection_thread() {
    let server = Server::start(&[]);
    let mut busy = server.connect();
    let mut idle = server.connect();
    assert_eq!(round_trip(&mut busy, b"hello"), b"hello");
    // Once it has echoed, each connection's thread surely exists; now it waits in `read`.
    assert_eq!(round_trip(&mut idle, b"x"), b"x");
    assert_eq!(server.threads(), 3, "the acceptor plus one thread per connection");

    let output = server.stop();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serving 2 connections"), "stderr: {stderr}");
    // The idle client's connection was closed, not left hanging.
    // EOF or a reset both mean closed; a read that merely times out would mean it was not.
    match idle.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the idle connection was left open: {other:?}"),
    }
}

#[test]
fn the_smallest_stack_serves_a_large_half_closed_transfer() {
    let server = Server::start(&["--stack-size", "16384", "--buffer", "65536"]);
    let mut client = server.connect();
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    // Send from a second thread while this one reads, so neither side's full socket buffer
    // can block the other.
    let mut writer = client.try_clone().unwrap();
    let to_send = sent.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    sender.join().unwrap();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "bytes came back changed or out of order");
    assert!(server.stop().status.success());
}

#[test]
fn a_stack_below_the_minimum_is_refused_in_one_line() {
    let output = wait_bounded(spawn(&["--stack-size", "4096"]));
    assert_eq!(output.status.code(), Some(2), "bad usage exits with status 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains("minimum stack size, 16384"), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "no ready line for a server that did not start");
}

#[test]
fn stack_sizes_outside_the_range_are_refused_with_the_limit() {
    assert_eq!(parse_stack_size("16384"), Ok(MIN_STACK_SIZE));
    assert_eq!(parse_stack_size(&DEFAULT_STACK_SIZE.to_string()), Ok(DEFAULT_STACK_SIZE));
    let small = parse_stack_size("16383").unwrap_err();
    assert!(small.contains("minimum stack size, 16384"), "{small}");
    let large = parse_stack_size("1073741825").unwrap_err();
    assert!(large.contains("maximum"), "{large}");
    for nonsense in ["", "2M", "-1", "0x4000"] {
        let err = parse_stack_size(nonsense).unwrap_err();
        assert!(err.contains("number of bytes"), "{nonsense:?}: {err}");
    }
}
