//! The ready line, and echo over each kind of datagram socket, at every size.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;

use super::{Client, MAX_UDP_V4, MAX_UDP_V6, has_ipv6, start_udp, start_unix, tagged};
use crate::{Addr, Server, assert_same};

/// `--addr 127.0.0.1:0` prints exactly `listening on udp:127.0.0.1:PORT` with the real port,
/// and a datagram sent there comes back.
pub fn ready_line_and_echo_over_udp_ipv4(bin: &str, extra: &[&str]) {
    let server = start_udp(bin, extra, &[]);
    let line = server.ready_line();
    let port = line.strip_prefix("listening on udp:127.0.0.1:").and_then(|p| p.parse::<u16>().ok());
    assert!(
        matches!(port, Some(1..)),
        "ready line {line:?} is not `listening on udp:127.0.0.1:PORT`"
    );
    Client::to(&server).round_trip(b"hello over UDP\n");
}

/// `--addr [::1]:0` prints `listening on udp:[::1]:PORT` and echoes, up to the largest
/// IPv6 datagram (65,527 bytes).
pub fn ready_line_and_echo_over_udp_ipv6(bin: &str, extra: &[&str]) {
    if !has_ipv6() {
        eprintln!("skipped: this machine cannot bind [::1]");
        return;
    }
    let server = Server::start(bin, &[&["--addr", "[::1]:0"], extra].concat());
    let line = server.ready_line();
    let port = line.strip_prefix("listening on udp:[::1]:").and_then(|p| p.parse::<u16>().ok());
    assert!(matches!(port, Some(1..)), "ready line {line:?} is not `listening on udp:[::1]:PORT`");
    let client = Client::to(&server);
    for len in [0, 1, 1232, 65_000, MAX_UDP_V6] {
        client.round_trip(&tagged(6, len as u64, len));
    }
}

/// `--unix PATH` prints `listening on udp:unix:PATH` and echoes to a client bound to a path
/// of its own, from 0 bytes to 65,507; a sender that bound no path (so cannot be answered)
/// does not disturb it. After SIGTERM: exit 0 and the socket file is gone.
pub fn ready_line_and_echo_over_unix_datagrams_then_file_removed(bin: &str, extra: &[&str]) {
    let (mut server, _tidy) = start_unix(bin, extra);
    let Addr::UnixDatagram(path) = server.addr().clone() else {
        panic!("ready line {:?} is not `listening on udp:unix:PATH`", server.ready_line())
    };
    assert_eq!(server.ready_line(), format!("listening on udp:unix:{}", path.display()));
    let is_socket = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
    assert!(is_socket, "{} is not a socket while the server runs", path.display());

    let client = Client::to(&server);
    // An unbound sender's datagram reaches the server, whose echo has nowhere to go.
    let unbound = UnixDatagram::unbound().unwrap();
    unbound.send_to(b"nobody to answer", &path).unwrap();
    for len in [0, 1, 100, 4096, MAX_UDP_V4] {
        client.round_trip(&tagged(1, len as u64, len));
    }

    server.terminate_removing(&path);
}

/// Every size from 0 bytes to 65,507 (the largest over IPv4) comes back whole, as one
/// datagram, in order: each reply is exactly the datagram just sent, so a reply merged from
/// two, split in two or cut short fails. Then 50 sent back to back come back as 50 (in any
/// order, each exactly one of them), and a last marker is the very next reply: nothing extra
/// was sent in between.
pub fn every_size_comes_back_whole_one_for_one(bin: &str, extra: &[&str]) {
    let server = start_udp(bin, extra, &[]);
    let client = Client::to(&server);
    let sizes = [
        0, 1, 2, 7, 8, 15, 16, 17, 64, 100, 511, 512, 1024, 1232, 1472, 1473, 1500, 4096, 8192,
        9000, 16_383, 16_384, 32_768, 65_000, 65_506, MAX_UDP_V4,
    ];
    for (seq, len) in sizes.into_iter().enumerate() {
        client.round_trip(&tagged(0, seq as u64, len));
    }
    let burst: Vec<Vec<u8>> = (0..50).map(|seq| tagged(1, seq, 16 + seq as usize * 7)).collect();
    for datagram in &burst {
        client.send(datagram).unwrap();
    }
    let mut seen = vec![false; burst.len()];
    let mut buf = vec![0u8; 1 << 17];
    for _ in 0..burst.len() {
        let len = client.recv(&mut buf).unwrap_or_else(|e| panic!("a burst echo is missing: {e}"));
        let seq = u64::from_le_bytes(buf[8..16].try_into().unwrap()) as usize;
        assert!(seq < burst.len() && !seen[seq], "reply {seq} is unexpected or came twice");
        assert_same(&burst[seq], &buf[..len]);
        seen[seq] = true;
    }
    client.round_trip(b"the marker, which must be the next reply");
}

/// A Unix datagram of 100,000 bytes (more than any UDP datagram; Unix sockets allow it with
/// the default buffers) comes back whole or not at all: never cut short. The marker sent
/// next is then echoed, so the server went on.
pub fn a_datagram_too_large_to_echo_whole_is_not_echoed_cut_short(bin: &str, extra: &[&str]) {
    let (server, _tidy) = start_unix(bin, extra);
    let client = Client::to(&server);
    let big = tagged(2, 0, 100_000);
    client.send(&big).expect("a 100,000-byte Unix datagram fits the default buffers");
    let marker = tagged(2, 1, 40);
    client.send(&marker).unwrap();
    let mut buf = vec![0u8; 1 << 18];
    let len = client.recv(&mut buf).expect("no reply to the big datagram nor to the marker");
    if len == big.len() {
        assert_same(&big, &buf[..len]);
        let len = client.recv(&mut buf).expect("no echo of the marker");
        assert_same(&marker, &buf[..len]);
    } else {
        assert_same(&marker, &buf[..len]);
    }
}
