//! The ready line, and echo over each kind of address a server can listen on.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;

use super::start_tcp;
use crate::Server;
use crate::client::{IO_TIMEOUT, connect, round_trip, unique_socket_path};

/// `--addr 127.0.0.1:0` prints exactly `listening on 127.0.0.1:PORT` with the real port, and
/// a client connecting there gets its bytes back.
pub fn ready_line_and_echo_over_ipv4(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &[]);
    let line = server.ready_line();
    // Parsing the rest as a u16 also rejects trailing spaces or a carriage return.
    let port = line.strip_prefix("listening on 127.0.0.1:").and_then(|p| p.parse::<u16>().ok());
    assert!(matches!(port, Some(1..)), "ready line {line:?} is not `listening on 127.0.0.1:PORT`");
    let mut client = connect(server.tcp_addr());
    round_trip(&mut client, b"hello over IPv4\n");
}

/// `--addr [::1]:0` prints `listening on [::1]:PORT` (brackets included) and echoes.
pub fn ready_line_and_echo_over_ipv6(bin: &str, extra: &[&str]) {
    // A machine without IPv6 loopback cannot run this case at all; say so rather than fail
    // every model for a property of the machine.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine cannot bind [::1]");
        return;
    }
    let server = Server::start(bin, &[&["--addr", "[::1]:0"], extra].concat());
    let line = server.ready_line();
    let port = line.strip_prefix("listening on [::1]:").and_then(|p| p.parse::<u16>().ok());
    assert!(matches!(port, Some(1..)), "ready line {line:?} is not `listening on [::1]:PORT`");
    assert!(server.tcp_addr().is_ipv6());
    let mut client = connect(server.tcp_addr());
    round_trip(&mut client, b"hello over IPv6\n");
}

/// `--unix PATH` prints `listening on unix:PATH` and echoes over the socket; after SIGTERM,
/// with a client still connected, the server exits 0 and the socket file is gone.
pub fn ready_line_and_echo_over_unix_then_socket_file_removed(bin: &str, extra: &[&str]) {
    let path = unique_socket_path("conformance");
    // Removes the file however the case ends: a server killed after a failed assertion
    // cannot remove it itself.
    let _tidy = RemoveOnDrop(path.clone());
    let path_text = path.to_str().expect("temp paths are UTF-8 here");
    let mut server = Server::start(bin, &[&["--unix", path_text], extra].concat());
    assert_eq!(server.ready_line(), format!("listening on unix:{path_text}"));
    let is_socket = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
    assert!(is_socket, "{} is not a socket while the server runs", path.display());

    let mut client = UnixStream::connect(&path).expect("cannot connect to the Unix socket");
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    client.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    round_trip(&mut client, b"hello over a Unix socket\n");
    round_trip(&mut client, &[0u8, 255, 10, 13, 0]);

    server.terminate_removing(&path);
}

/// Removes a path when dropped, so that failing cases do not litter the temp directory.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
