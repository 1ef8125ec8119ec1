//! Command lines a datagram server must refuse, as the stream servers do: a non-zero exit
//! (2 for a bad flag), exactly one line on stderr, nothing on stdout, no panic, no hang.

use std::net::UdpSocket;

use crate::cases::refused;

/// An unknown flag: exit status 2.
pub fn datagram_rejects_unknown_flag(bin: &str, extra: &[&str]) {
    let exit = refused(bin, &[&["--addr", "127.0.0.1:0", "--no-such-flag"], extra].concat());
    assert_eq!(exit.status.code(), Some(2), "stderr: {}", exit.stderr);
}

/// Addresses that do not parse, or name a port beyond 65535: exit status 2.
pub fn datagram_rejects_nonsense_addr(bin: &str, extra: &[&str]) {
    for addr in ["nonsense", "udp:", "udp:127.0.0.1", "127.0.0.1:99999", "udp:[::1]:65536"] {
        let exit = refused(bin, &[&["--addr", addr], extra].concat());
        assert_eq!(exit.status.code(), Some(2), "--addr {addr}: stderr: {}", exit.stderr);
    }
}

/// The stream servers' flags that mean nothing without connections (`--backlog`,
/// `--max-conns`, `--buffer`) are refused with exit status 2 and a line naming the flag,
/// rather than accepted and ignored.
pub fn datagram_rejects_the_connection_flags(bin: &str, extra: &[&str]) {
    for flag in ["--backlog", "--max-conns", "--buffer"] {
        let exit = refused(bin, &[&["--addr", "127.0.0.1:0", flag, "100"], extra].concat());
        assert_eq!(exit.status.code(), Some(2), "{flag}: stderr: {}", exit.stderr);
        assert!(exit.stderr.contains(flag), "the error should name {flag}: {:?}", exit.stderr);
    }
}

/// A UDP port another socket holds; the line names the port.
pub fn datagram_rejects_port_in_use(bin: &str, extra: &[&str]) {
    // Ours stays bound until the server has given up.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let exit = refused(bin, &[&["--addr", addr.as_str()], extra].concat());
    let port = addr.rsplit(':').next().unwrap();
    assert!(exit.stderr.contains(port), "the error should name port {port}: {:?}", exit.stderr);
    drop(taken);
}

/// A Unix socket path in a directory that does not exist; the line names the path.
pub fn datagram_rejects_unbindable_unix_path(bin: &str, extra: &[&str]) {
    let path = "/nonexistent/dir/x.sock";
    let exit = refused(bin, &[&["--unix", path], extra].concat());
    assert!(exit.stderr.contains(path), "the error should name {path}: {:?}", exit.stderr);
}
