//! Shutting down on SIGTERM or SIGINT while datagrams keep arriving.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Client, start_udp, start_unix, tagged};
use crate::{Addr, Server, proc};

/// SIGTERM while two clients flood a UDP server: see `stop_while_flooded`.
pub fn sigterm_while_flooded_over_udp_exits_cleanly(bin: &str, extra: &[&str]) {
    stop_while_flooded(start_udp(bin, extra, &[]), Signal::SIGTERM);
}

/// SIGINT (Ctrl-C) behaves exactly as SIGTERM.
pub fn sigint_while_flooded_over_udp_exits_cleanly(bin: &str, extra: &[&str]) {
    stop_while_flooded(start_udp(bin, extra, &[]), Signal::SIGINT);
}

/// SIGTERM over a Unix datagram socket: also, the socket file is gone afterwards.
pub fn sigterm_while_flooded_over_unix_removes_the_file(bin: &str, extra: &[&str]) {
    let (server, _tidy) = start_unix(bin, extra);
    stop_while_flooded(server, Signal::SIGTERM);
}

/// SIGINT over a Unix datagram socket, likewise.
pub fn sigint_while_flooded_over_unix_removes_the_file(bin: &str, extra: &[&str]) {
    let (server, _tidy) = start_unix(bin, extra);
    stop_while_flooded(server, Signal::SIGINT);
}

/// Two clients send as fast as they can (reading whatever comes back without waiting for
/// it), so that the signal lands while the server is busy and its socket never runs dry:
/// exit status 0 within a second, a summary on stderr that speaks of datagrams, no thread
/// or process left, and for a Unix socket no file left.
fn stop_while_flooded(mut server: Server, signal: Signal) {
    let addr = server.addr().clone();
    let stop = AtomicBool::new(false);
    let (serving, served) = mpsc::channel();
    let exit = thread::scope(|scope| {
        for id in 0..2u64 {
            let (addr, stop, serving) = (&addr, &stop, serving.clone());
            scope.spawn(move || flood(addr, id, stop, serving));
        }
        // Each flooding client has had an echo back before the signal. (A flooder that
        // failed drops its sender without a word; the wait then ends at once.)
        drop(serving);
        let ready = served.iter().take(2).count();
        if ready < 2 {
            stop.store(true, Ordering::Relaxed);
            panic!("only {ready} of 2 flooding clients got an echo");
        }
        let threads = proc::tree_threads(server.pid());
        let exit = server.stop_with(signal);
        stop.store(true, Ordering::Relaxed);
        eprintln!(
            "{signal}: exit {:?} after {:?}, {threads} threads before",
            exit.status, exit.elapsed
        );
        exit
    });
    exit.assert_prompt_and_clean(signal, "under load");
    assert!(
        exit.stderr.contains("datagrams"),
        "no summary of datagrams on stderr: {:?}",
        exit.stderr
    );
    assert!(proc::stat(server.pid()).is_none(), "the server's process is still there");
    if let Addr::UnixDatagram(path) = &addr {
        assert!(!path.exists(), "the socket file {} is still there after {signal}", path.display());
    }
}

/// Sends 512-byte datagrams back to back until `stop` (or 20 s, or a million), first
/// waiting for one echo, so that the server is known to be serving this client, and then
/// says so on `serving`.
fn flood(addr: &Addr, id: u64, stop: &AtomicBool, serving: Sender<()>) {
    let client = Client::try_to(addr).expect("cannot make a client");
    client.round_trip(&tagged(id, 0, 512));
    let _ = serving.send(());
    // From here on, replies are read only when they are already there.
    client.set_timeout(Duration::from_millis(1)).unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 1024];
    for seq in 1..1_000_000 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(20) {
            return;
        }
        // A Unix send waits for room in the server's queue, up to the 1 ms timeout: that is
        // the flood's own backpressure. Any other failure means the server is gone.
        match client.send(&tagged(id, seq, 512)) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if seq % 16 == 0 {
            while client.recv(&mut buf).is_ok() {}
        }
    }
}
