//! What only echo-udp promises, beyond the datagram suite: the counts in its exit summary
//! (echoed, refused by a full buffer, other failures, truncated, per worker), `--rcvbuf`,
//! its own flags refused, a Unix path it did not create left alone, and memory that does
//! not grow with the clients (measured: 344 KiB of anonymous PSS before and after 1,000).

use std::os::unix::net::UnixDatagram;

use echobench_conformance::cases::refused;
use echobench_conformance::datagram::{Client, tagged};
use echobench_conformance::{Addr, Server, proc};

const BIN: &str = env!("CARGO_BIN_EXE_echo-udp");

/// The first line of the exit summary after SIGTERM, and the per-worker counts of the
/// second: (received, echoed, full, failed, truncated) for each worker.
fn stop(mut server: Server) -> (String, Vec<[u64; 5]>) {
    let exit = server.terminate();
    assert!(exit.status.success(), "{:?}: {}", exit.status, exit.stderr);
    let mut lines = exit.stderr.lines();
    let total = lines.next().unwrap_or_default().to_owned();
    let per_worker = lines.next().and_then(|l| l.split_once("): ")).map(|(_, rest)| rest);
    let per_worker = per_worker.unwrap_or_else(|| panic!("no per-worker line: {}", exit.stderr));
    let workers = per_worker
        .split(", ")
        .map(|w| {
            let counts = w.split_once(": ").expect("`N: a/b/c/d/e`").1;
            let counts: Vec<u64> = counts.split('/').map(|n| n.parse().unwrap()).collect();
            counts.try_into().expect("five counts per worker")
        })
        .collect();
    (total, workers)
}

fn unix_server(args: &[&str], tag: &str) -> (Server, std::path::PathBuf) {
    let path =
        std::env::temp_dir().join(format!("echo-udp-smoke-{tag}-{}.sock", std::process::id()));
    let server = Server::start(BIN, &[&["--unix", path.to_str().unwrap()], args].concat());
    (server, path)
}

#[test]
fn the_summary_counts_every_echo() {
    for batch in ["1", "32"] {
        let server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--batch", batch]);
        let client = Client::to(&server);
        for seq in 0..25 {
            client.round_trip(&tagged(0, seq, 100));
        }
        let (total, workers) = stop(server);
        assert!(total.contains("echoing 25 of 25 datagrams received"), "--batch {batch}: {total}");
        assert_eq!(workers, vec![[25, 25, 0, 0, 0]], "--batch {batch}");
    }
}

#[test]
fn a_unix_datagram_beyond_64_kib_is_counted_as_truncated_and_not_echoed() {
    for batch in ["1", "32"] {
        let (server, path) = unix_server(&["--batch", batch], &format!("trunc{batch}"));
        let client = Client::to(&server);
        client.round_trip(&tagged(1, 0, 65_536)); // The largest that fits: echoed.
        client.send(&tagged(1, 1, 65_537)).unwrap();
        client.round_trip(&tagged(1, 2, 10)); // The next reply is this one, not a cut-short one.
        let (total, _) = stop(server);
        assert!(total.contains("echoing 2 of 3") && total.contains("1 truncated"), "{total}");
        assert!(!path.exists());
    }
}

#[test]
fn echoes_refused_by_a_full_queue_or_an_unbound_sender_are_counted() {
    let (server, _path) = unix_server(&[], "full");
    let Addr::UnixDatagram(path) = server.addr().clone() else {
        panic!("not a Unix datagram server")
    };
    // Never reads: its queue (net.unix.max_dgram_qlen, 10 here) fills, then echoes bounce.
    let silent = Client::to(&server);
    for seq in 0..30 {
        silent.send(&tagged(2, seq, 32)).unwrap();
    }
    // Bound to no path: nowhere to send the echo.
    UnixDatagram::unbound().unwrap().send_to(b"no return address", &path).unwrap();
    // Once this round trip is back, the server has taken every datagram before it.
    Client::to(&server).round_trip(b"last");
    let (total, workers) = stop(server);
    let [received, echoed, full, failed, truncated] = workers[0];
    assert_eq!((received, truncated), (32, 0), "{total}");
    assert!(full >= 30 - 11, "at most max_dgram_qlen (+1) echoes fit the silent queue: {total}");
    assert_eq!(failed, 1, "the unbound sender: {total}");
    assert_eq!(echoed + full + failed, received, "{total}");
}

/// A Unix client that `connect`s to the server and then never reads is the one thing that
/// hurts everyone (see the essay): Linux lets the server's echoes past its queue limit, and
/// they fill the server's send buffer, after which every echo to anyone is refused. The
/// server counts them and goes on; once that client goes, its queue is freed and everyone
/// is served again.
#[test]
fn a_connected_unix_client_that_never_reads_is_survived() {
    let (server, path) = unix_server(&[], "connected");
    let own =
        std::env::temp_dir().join(format!("echo-udp-smoke-silent-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&own);
    let silent = UnixDatagram::bind(&own).unwrap();
    silent.connect(&path).unwrap();
    // 400 echoes of 1,000 bytes are about twice what the server's send buffer holds.
    for _ in 0..400 {
        silent.send(&[9u8; 1000]).unwrap();
    }
    drop(silent);
    let _ = std::fs::remove_file(&own);
    // The server took every datagram before this one, and is serving.
    Client::to(&server).round_trip(b"after the silent client left");
    let (total, workers) = stop(server);
    let [received, echoed, full, ..] = workers[0];
    assert_eq!(received, 401, "{total}");
    assert!(full > 0 && echoed < 400, "the send buffer never filled: {total}");
}

#[test]
fn rcvbuf_reaches_the_socket_as_the_kernel_reports_it() {
    let server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--rcvbuf", "1000000"]);
    Client::to(&server).round_trip(b"x");
    let (total, _) = stop(server);
    // Linux doubles SO_RCVBUF for its bookkeeping (rmem_max is 4 MiB here, above the ask).
    assert!(total.contains("receive buffer 2000000 bytes"), "{total}");
}

#[test]
fn three_workers_each_get_a_share_of_a_hundred_senders() {
    let server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--workers", "3"]);
    // Each client's own port hashes it to one of the three sockets.
    let clients: Vec<Client> = (0..100).map(|_| Client::to(&server)).collect();
    for (id, client) in clients.iter().enumerate() {
        client.round_trip(&tagged(id as u64, 0, 64));
    }
    let (total, workers) = stop(server);
    assert_eq!(workers.len(), 3, "{total}");
    // A hash leaves one of three empty with 100 senders about once in 10^17 runs.
    assert!(workers.iter().all(|w| w[0] > 0), "a worker got nothing: {workers:?}");
    assert_eq!(workers.iter().map(|w| w[1]).sum::<u64>(), 100);
}

#[test]
fn its_own_flags_are_refused_with_one_line() {
    for args in [
        &["--workers", "0"][..],
        &["--batch", "0"],
        &["--batch", "257"],
        &["--rcvbuf", "0"],
        &["--unix", "/tmp/echo-udp-never.sock", "--rcvbuf", "100000"],
    ] {
        let exit = refused(BIN, args);
        assert_eq!(exit.status.code(), Some(2), "{args:?}: {}", exit.stderr);
    }
}

/// A path someone else's socket is bound to is refused, and left where it was: the server
/// removes only a file it created.
#[test]
fn a_unix_path_in_use_is_refused_and_left_alone() {
    let path =
        std::env::temp_dir().join(format!("echo-udp-smoke-taken-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let owner = UnixDatagram::bind(&path).unwrap();
    let exit = refused(BIN, &["--unix", path.to_str().unwrap()]);
    assert!(exit.stderr.contains(path.to_str().unwrap()), "{}", exit.stderr);
    assert!(path.exists(), "the server removed a socket file it did not create");
    drop(owner);
    let _ = std::fs::remove_file(&path);
}

/// No state per client: a thousand clients, each a new port, leave the server's memory as
/// it was (its buffers were all made at start).
#[test]
fn a_thousand_clients_cost_no_memory() {
    let server = Server::start(BIN, &["--addr", "127.0.0.1:0", "--batch", "4"]);
    Client::to(&server).round_trip(&tagged(0, 0, 65_507)); // Every buffer touched once.
    let before = proc::tree_pss_anon_kib(server.pid());
    for id in 1..=1000 {
        Client::to(&server).round_trip(&tagged(id, 0, 1000));
    }
    let after = proc::tree_pss_anon_kib(server.pid());
    eprintln!("anonymous PSS {before} KiB before, {after} KiB after 1,000 clients");
    assert!(after < before + 256, "memory grew from {before} to {after} KiB with the clients");
    let (_, workers) = stop(server);
    assert_eq!(workers[0][1], 1001);
}
