//! The limits on connections: `--max-conns`, `--backlog`, and the process's file descriptors.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::start_tcp;
use crate::Server;
use crate::client::{connect, round_trip, try_round_trip};
use crate::proc;

/// With `--max-conns 2`, a third connection is closed at once (end of file or reset) while
/// the first two keep echoing; after SIGTERM the summary on stderr counts 1 rejection.
pub fn max_conns_closes_extra_connections_and_counts_them(bin: &str, extra: &[&str]) {
    let mut server = start_tcp(bin, extra, &["--max-conns", "2"]);
    let addr = server.tcp_addr();
    // A round trip on each proves the server accepted it before the third arrives.
    let mut first = connect(addr);
    round_trip(&mut first, b"first");
    let mut second = connect(addr);
    round_trip(&mut second, b"second");

    let mut third = connect(addr);
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_closed(&mut third, "the third connection over --max-conns 2");

    round_trip(&mut first, b"first, still served");
    round_trip(&mut second, b"second, still served");
    assert_rejected_at_exit(&mut server, 1);
}

/// With `--max-conns 1`, once the only client leaves, a new client is served: the server
/// counts connections that close, not only ones that open.
pub fn max_conns_frees_a_slot_when_a_client_leaves(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &["--max-conns", "1"]);
    let addr = server.tcp_addr();
    let mut first = connect(addr);
    round_trip(&mut first, b"the only client");
    drop(first);
    // The server learns of the close on its own schedule (a read of 0, a reaped child), so
    // a client arriving at once may still be turned away; retry, for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = connect(addr);
        match try_round_trip(&mut next, b"the next client") {
            Ok(back) => return assert_eq!(back, b"the next client"),
            Err(e) if Instant::now() < deadline => drop(e),
            Err(e) => panic!("still refused 5 s after the only client left --max-conns 1: {e}"),
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// With `--max-conns 1`, 300 clients one after the other, each waiting until the server has
/// finished with the one before, are all served: a connection stops counting against the
/// limit once it is over.
///
/// "Finished" means the client read the server's close and, for a server with a process per
/// connection, that process has exited: a forked child closes its socket a moment before it
/// exits, and only its exit frees the slot. (A pre-forked worker does not exit: it is
/// finished once it is back in `accept`.) Without that wait, here, `echo-fork` turned away
/// 34 to 86 of the 300, and `echo-hybrid` 2 to 19 while its workers sent the FIN before
/// counting the connection out. Clients that leave without waiting for the close are turned
/// away now and then by every model, since a server cannot know that a connection is over
/// before it reads the close.
pub fn max_conns_counts_only_open_connections(bin: &str, extra: &[&str]) {
    const CLIENTS: usize = 300;
    let mut server = start_tcp(bin, extra, &["--max-conns", "1"]);
    let addr = server.tcp_addr();
    for i in 0..CLIENTS {
        let mut client = connect(addr);
        let message = format!("client {i} of {CLIENTS}, one at a time");
        match try_round_trip(&mut client, message.as_bytes()) {
            Ok(back) => assert_eq!(back, message.as_bytes()),
            Err(e) => panic!("client {i}, alone with --max-conns 1, was not served: {e}"),
        }
        client.shutdown(Shutdown::Write).unwrap();
        assert_closed(&mut client, &format!("client {i} after its half-close"));
        wait_for_children_to_finish(server.pid());
    }
    assert_rejected_at_exit(&mut server, 0);
}

/// Stops the server with SIGTERM and asserts a clean exit whose summary on stderr counts
/// `rejected` connections turned away over `--max-conns`.
fn assert_rejected_at_exit(server: &mut Server, rejected: u64) {
    let exit = server.terminate();
    assert!(exit.status.success(), "exit after SIGTERM: {:?}", exit.status);
    let expected = format!("({rejected} rejected over --max-conns)");
    assert!(
        exit.stderr.contains(&expected),
        "stderr should report `{expected}`, got {:?}",
        exit.stderr
    );
}

/// Waits until no child of the server is still serving: each has exited (reaped or not) or
/// is asleep in `accept` waiting for its next connection (a pre-forked pool); returns at
/// once for a server without child processes.
fn wait_for_children_to_finish(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let finished = |s: &proc::Stat| s.state == 'Z' || proc::in_accept(s.pid);
    let running = || proc::children(pid).into_iter().filter_map(proc::stat).any(|s| !finished(&s));
    while running() {
        assert!(Instant::now() < deadline, "a child of the server ran on 5 s after its close");
        thread::sleep(Duration::from_micros(200));
    }
}

/// `--backlog 37` reaches `listen(2)`: `ss -ltn` shows a listening socket's backlog as its
/// Send-Q. (37, because no default or rounding produces it; std's own `bind` would show 128.)
/// Skipped, with a message, on a machine without `ss` (iproute2).
pub fn backlog_reaches_listen(bin: &str, extra: &[&str]) {
    const BACKLOG: &str = "37";
    let server = start_tcp(bin, extra, &["--backlog", BACKLOG]);
    let port = server.tcp_addr().port();
    // -H: no header line; the filter keeps only our listener.
    let filter = format!("sport = :{port}");
    let output = match Command::new("ss").args(["-ltnH", &filter]).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("backlog: skipped, `ss` (iproute2) is not installed");
            return;
        }
        Err(e) => panic!("cannot run ss: {e}"),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ss failed: {}", String::from_utf8_lossy(&output.stderr));
    // `LISTEN  0  37  127.0.0.1:PORT  0.0.0.0:*`: state, Recv-Q, Send-Q, local, peer.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "ss should list one listener on port {port}: {text:?}");
    let send_q = lines[0].split_whitespace().nth(2);
    eprintln!("backlog: ss shows {:?}", lines[0]);
    assert_eq!(send_q, Some(BACKLOG), "the listener's backlog (Send-Q) in {:?}", lines[0]);
}

/// Asserts that the server closed `stream` without echoing: end of file or a reset.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("{what} received {n} bytes; it should have been closed"),
        Err(e) => panic!("{what} was not closed at once: {e}"),
    }
}

/// With `RLIMIT_NOFILE` at 64, 100 clients connect: the server runs out of descriptors
/// (EMFILE) with connections still queued. It must keep serving the ones it has, must not
/// spin on the failing accept (under 0.25 s of CPU over 1 s of waiting), and once 70 clients
/// leave, must accept and serve the 30 that were queued.
///
/// The case first checks that the server really is at its limit (at least `LIMIT - 2`
/// descriptors open), or the rest would prove nothing. A fork server is the exception: its
/// parent holds no descriptor per connection (each child holds its own and closes the rest),
/// so it never reaches the limit; for it the case only checks that it serves all 100.
pub fn emfile_is_survived_without_spinning(bin: &str, extra: &[&str]) {
    const LIMIT: u64 = 64;
    const CLIENTS: usize = 100;
    const LEAVING: usize = 70;
    let args = [&["--addr", "127.0.0.1:0"], extra].concat();
    let server = Server::start_with_fd_limit(bin, &args, LIMIT);
    let pid = server.pid();
    let addr = server.tcp_addr();
    // Two clients are served before the rest arrive, so they are surely accepted: among a
    // hundred connecting at once, which ones a model takes before its descriptors run out
    // is up to the scheduler when several workers accept (a reuseport worker woken late
    // finds none left for the first client hashed to it).
    let mut clients: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    round_trip(&mut clients[0], b"accepted before the descriptors ran out");
    round_trip(&mut clients[1], b"accepted before the descriptors ran out");
    // The kernel completes every handshake and queues what the server cannot accept.
    clients.extend((2..CLIENTS).map(|_| connect(addr)));

    let ticks = proc::tree_cpu_ticks(pid);
    let waited = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let cpu = (proc::tree_cpu_ticks(pid) - ticks) as f64 / proc::ticks_per_second() as f64;
    let waited = waited.elapsed();
    let fds = proc::open_fds(pid);
    eprintln!("emfile: {cpu:.2} s of CPU in {waited:?} with {fds} descriptors open");
    // A server with child processes is the fork model (see above).
    if proc::children(pid).is_empty() {
        assert!(
            fds as u64 >= LIMIT - 2,
            "the server has {fds} descriptors open with {CLIENTS} clients connected and a \
             limit of {LIMIT}: it never ran out, so this case tested nothing"
        );
    }
    assert!(
        cpu < 0.25,
        "the server used {cpu:.2} s of CPU in {waited:?} while out of descriptors ({fds} open, \
         limit {LIMIT}): it spins on a failing accept instead of pausing"
    );

    round_trip(&mut clients[1], b"still served while out of descriptors");
    drop(clients.drain(..LEAVING));
    for (i, client) in clients.iter_mut().enumerate() {
        let message = format!("queued client {i}, served once descriptors were freed");
        match try_round_trip(client, message.as_bytes()) {
            Ok(back) => assert_eq!(back, message.as_bytes()),
            Err(e) => panic!(
                "queued client {} of {CLIENTS} was not served after {LEAVING} clients left \
                 ({} descriptors open, limit {LIMIT}): {e}",
                LEAVING + i,
                proc::open_fds(pid)
            ),
        }
    }
}
