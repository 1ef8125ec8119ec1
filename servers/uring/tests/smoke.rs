//! Smoke tests of the real `echo-uring` binary, one per hard part of a completion loop: a
//! full submission queue, overflowing completions, an empty buffer ring, backpressure,
//! shutdown with requests stuck in the kernel, several rings, and a kernel that refuses
//! io_uring. (The shared conformance suite checks the rest of the server contract.)
//!
//! Each test runs the binary with `--stats`, often with a deliberately tiny ring, and reads
//! the ring's counters from stderr at exit: the echoes show that nothing was lost, and the
//! counters show that the path under test was really taken.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use echobench_conformance::{
    Addr, Exit, Server, assert_same, cases, closed_by_server, connect, pattern, proc, round_trip,
    write_until_stalled,
};

const BIN: &str = env!("CARGO_BIN_EXE_echo-uring");

/// Skips the test, with the reason, where io_uring is unavailable.
macro_rules! require_io_uring {
    () => {
        if let Some(reason) = echobench_uring::unavailable() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

fn start(args: &[&str]) -> Server {
    Server::start(BIN, &[&["--addr", "127.0.0.1:0", "--stats"], args].concat())
}

/// Stops the server with SIGTERM, checks a clean exit, and returns each ring's counters.
fn stop(server: &mut Server) -> (Exit, Vec<HashMap<String, u64>>) {
    let exit = server.terminate();
    assert!(exit.status.success(), "exit {:?}, stderr: {}", exit.status, exit.stderr);
    assert!(!exit.stderr.contains("in flight at exit"), "stderr: {}", exit.stderr);
    // `echo-uring: ring 0: 12 served, 3 waits, ...`: pairs of a number and its name.
    let rings = exit
        .stderr
        .lines()
        .filter_map(|line| line.split_once(": ring ").map(|(_, rest)| rest))
        .map(|rest| {
            let counts = rest.split_once(": ").expect("ring N: counters").1;
            counts
                .split(", ")
                .map(|pair| {
                    let (n, name) = pair.split_once(' ').expect("`N name`");
                    (name.to_owned(), n.parse().expect("a count"))
                })
                .collect()
        })
        .collect();
    (exit, rings)
}

/// `clients` connections each write a message before any reads, so that their receives
/// complete together, in one batch; then every echo must come back whole.
fn burst(server: &Server, clients: usize, size: usize) {
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.tcp_addr())).collect();
    let messages: Vec<Vec<u8>> = (0..clients).map(|i| pattern(size, i as u64)).collect();
    for (stream, message) in streams.iter_mut().zip(&messages) {
        stream.write_all(message).unwrap();
    }
    for (stream, message) in streams.iter_mut().zip(&messages) {
        let mut back = vec![0; size];
        stream.read_exact(&mut back).unwrap();
        assert_same(message, &back);
    }
}

#[test]
fn one_ring_serves_every_connection_on_one_thread_until_sigterm() {
    require_io_uring!();
    let mut server = start(&[]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate().rev() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 1, "one ring, one thread");
    let (exit, rings) = stop(&mut server);
    assert!(exit.stderr.contains("serving 50 connections"), "stderr: {}", exit.stderr);
    assert_eq!(rings.len(), 1);
    // Batching: fewer waits (system calls) than the 100 completions of 50 echoes.
    assert!(rings[0]["waits"] < rings[0]["completions"], "{:?}", rings[0]);
    for client in &mut clients {
        assert!(closed_by_server(client), "SIGTERM closes every connection");
    }
}

#[test]
fn a_full_submission_queue_holds_submissions_back_and_loses_none() {
    require_io_uring!();
    // Two submission slots for 100 connections whose sends are all due in one batch.
    let ring = bursts(&["--sq-entries", "2", "--cq-entries", "256"], 1, 100, 64);
    assert!(ring["backlogged"] > 0, "nothing waited for a slot: {ring:?}");
    assert!(ring["early_submits"] > 0, "no early submission made room: {ring:?}");
}

#[test]
fn overflowing_completions_are_all_delivered_and_multishots_armed_again() {
    require_io_uring!();
    // Two completion slots for 100 receives arriving together: the kernel parks the rest,
    // and ends the multishot receives whose completions it could not post.
    let ring = bursts(&["--sq-entries", "2", "--cq-entries", "2"], 2, 100, 64);
    assert!(ring["cq_overflows"] > 0, "the completion queue never overflowed: {ring:?}");
    assert!(ring["rearmed"] > 0, "no receive was armed again: {ring:?}");
}

#[test]
fn an_empty_buffer_ring_ends_receives_and_they_are_armed_again() {
    require_io_uring!();
    // One provided buffer (64 KiB; 16 of 4 KiB where it is consumed whole) for 50
    // connections whose 4,000 bytes each, 200 KB, are all waiting when the server first
    // looks: it was stopped while they connected and wrote. The receives armed together
    // after the pool is full find the ring empty (ENOBUFS) and must be armed again.
    for extra in [&[][..], &["--no-incremental-buffers"]] {
        let mut server = start(&[&["--buffers", "1"], extra].concat());
        let pid = server.pid();
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let mut streams: Vec<TcpStream> = (0..50).map(|_| connect(server.tcp_addr())).collect();
        let messages: Vec<Vec<u8>> = (0..50).map(|i| pattern(4000, i)).collect();
        for (stream, message) in streams.iter_mut().zip(&messages) {
            // The kernel completed the handshake and keeps the bytes for the stopped server.
            stream.write_all(message).unwrap();
        }
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        for (stream, message) in streams.iter_mut().zip(&messages) {
            let mut back = vec![0; message.len()];
            stream.read_exact(&mut back).unwrap();
            assert_same(message, &back);
        }
        let (_, mut rings) = stop(&mut server);
        let ring = rings.remove(0);
        assert!(ring["enobufs"] > 0, "{extra:?}: the buffer ring never ran dry: {ring:?}");
        assert!(ring["rearmed"] >= ring["enobufs"], "{extra:?}: {ring:?}");
    }
}

#[test]
fn a_big_message_arrives_in_receives_as_large_as_the_bound_allows() {
    require_io_uring!();
    // 64 KiB messages with the default 16 KiB bound: incremental buffers carry a receive of
    // up to 16 KiB, so about 4 per message; buffers consumed whole, 4 KiB each, take 16.
    let size = 64 << 10;
    let per_message = |extra: &[&str]| {
        let ring = bursts(extra, 8, 4, size);
        ring["recvs"] as f64 / 32.0
    };
    let incremental = per_message(&[]);
    let whole = per_message(&["--no-incremental-buffers"]);
    assert!(whole >= 16.0, "{whole} receives per 64 KiB message in 4 KiB buffers");
    assert!(incremental < 8.0, "{incremental} receives per 64 KiB message, incremental");
}

/// Starts a one-ring server with `args`, runs `count` bursts (see [`burst`]) of `clients`
/// messages of `size` bytes, stops it, and returns the ring's counters.
fn bursts(args: &[&str], count: usize, clients: usize, size: usize) -> HashMap<String, u64> {
    let mut server = start(args);
    for _ in 0..count {
        burst(&server, clients, size);
    }
    let (_, mut rings) = stop(&mut server);
    rings.remove(0)
}

/// A client writes without reading until its writes stall: the server must stop receiving
/// at `--buffer` (its sends are stuck behind the client's full receive buffer), and once
/// the client reads, resume and echo every byte in order.
fn backpressure(extra: &[&str]) {
    let mut server = start(&[&["--buffer", "4096"], extra].concat());
    let mut client = connect(server.tcp_addr());
    let data = pattern(32 << 20, 7);
    let written = write_until_stalled(&client, &data, Duration::from_secs(20));
    assert!(written < data.len(), "32 MiB went through a server that bounds its buffer");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert_same(&data[..written], &back);
    let (_, rings) = stop(&mut server);
    assert!(rings[0]["at_bound"] > 0, "the connection never reached its bound: {:?}", rings[0]);
}

#[test]
fn backpressure_stops_receiving_at_the_bound_and_resumes_after_the_send_drains() {
    require_io_uring!();
    backpressure(&[]);
}

#[test]
fn backpressure_by_cancellation_also_resumes() {
    require_io_uring!();
    backpressure(&["--no-recv-limit"]);
}

#[test]
fn shutdown_cancels_sends_stuck_on_a_full_socket() {
    require_io_uring!();
    let mut server = start(&["--buffer", "65536"]);
    // Clients that never read: their echoes fill the sockets, and each connection's send
    // waits in the kernel, pointing into its buffer, when SIGTERM comes.
    let clients: Vec<TcpStream> = (0..4).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter().enumerate() {
        write_until_stalled(client, &pattern(16 << 20, i as u64), Duration::from_secs(20));
    }
    let (exit, _) = stop(&mut server);
    assert!(exit.elapsed < Duration::from_secs(1), "exit took {:?}", exit.elapsed);
}

#[test]
fn workers_each_run_a_ring_on_a_listener_of_their_own() {
    require_io_uring!();
    let mut server = start(&["--workers", "2"]);
    let port = server.tcp_addr().port();
    let mut clients: Vec<TcpStream> = (0..40).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 2, "a thread per ring");
    let listeners = Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output();
    if let Ok(output) = listeners {
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(text.lines().count(), 2, "two SO_REUSEPORT listeners: {text}");
    }
    let (exit, rings) = stop(&mut server);
    assert!(exit.stderr.contains("serving 40 connections"), "stderr: {}", exit.stderr);
    // The kernel hashes connections over the two listeners: 40 all on one has odds of 2^-39.
    assert_eq!(rings.len(), 2);
    assert!(rings.iter().all(|ring| ring["served"] > 0), "{rings:?}");
}

#[test]
fn unix_workers_share_one_listener() {
    require_io_uring!();
    let path = std::env::temp_dir().join(format!("echo-uring-smoke-{}.sock", std::process::id()));
    let path_arg = path.to_str().unwrap();
    let mut server = Server::start(BIN, &["--unix", path_arg, "--workers", "2", "--stats"]);
    assert_eq!(server.addr(), &Addr::Unix(path.clone()));
    let mut clients: Vec<UnixStream> =
        (0..20).map(|_| UnixStream::connect(&path).unwrap()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("unix client {i}").as_bytes());
    }
    let (exit, rings) = stop(&mut server);
    assert!(exit.stderr.contains("serving 20 connections"), "stderr: {}", exit.stderr);
    assert_eq!(rings.len(), 2);
    assert!(!path.exists(), "the socket file is removed at exit");
}

#[test]
fn bad_ring_sizes_are_refused_in_one_line() {
    for args in [["--buffers", "3"], ["--sq-entries", "0"], ["--workers", "0"]] {
        let exit = cases::refused(BIN, &[&["--addr", "127.0.0.1:0"], &args[..]].concat());
        assert_eq!(exit.status.code(), Some(2), "{args:?}: bad usage exits with status 2");
    }
}

/// Installs, in the calling thread (and what it starts), a seccomp filter that makes
/// `io_uring_setup` fail with EPERM, as Docker's default profile does.
fn refuse_io_uring() -> std::io::Result<()> {
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let filter = [
        // Load the system call number, and if it is io_uring_setup, fail it with EPERM.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: plain prctl calls; `program` points at `filter`, alive for the call (the
    // kernel copies the filter).
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program) == 0
    };
    if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[test]
fn where_seccomp_refuses_io_uring_the_binary_says_so_in_one_line() {
    let mut command = Command::new(BIN);
    command.args(["--addr", "127.0.0.1:0"]);
    // SAFETY: runs in the forked child before exec; it makes two prctl system calls on a
    // filter built on its stack, and neither allocates nor takes a lock.
    unsafe { command.pre_exec(refuse_io_uring) };
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "no ready line from a server that cannot run");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("io_uring unavailable"), "stderr: {stderr}");
    assert!(stderr.contains("Operation not permitted"), "the kernel's reason: {stderr}");
}

#[test]
fn where_seccomp_refuses_io_uring_the_tests_skip() {
    // The filter binds only the thread that installs it, so the rest of the tests run on.
    let reason = std::thread::spawn(|| {
        refuse_io_uring().unwrap();
        echobench_uring::unavailable()
    })
    .join()
    .unwrap();
    let reason = reason.expect("the skip hook notices that io_uring is refused");
    assert!(reason.starts_with("io_uring unavailable: "), "{reason}");
}

#[test]
fn coalescing_waits_serve_a_lone_client_and_never_spin_when_idle() {
    require_io_uring!();
    let mut server = start(&["--coalesce-us", "200"]);
    let mut client = connect(server.tcp_addr());
    for i in 0..20 {
        round_trip(&mut client, format!("round {i}").as_bytes());
    }
    // Idle after activity: a coalescing wait that finds nothing returns when its time is up,
    // so a ring that kept coalescing would wake every 200 us for nothing.
    let ticks = proc::tree_cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = proc::tree_cpu_ticks(server.pid()) - ticks;
    assert!(used <= 5, "an idle coalescing server used {used} ticks of CPU in 1 s");
    let (_, rings) = stop(&mut server);
    assert!(rings[0]["waits"] < 200, "it woke for nothing: {:?}", rings[0]);
}
