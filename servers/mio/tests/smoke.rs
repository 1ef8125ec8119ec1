//! Smoke test of the real `echo-mio` binary: every connection is served by the one thread,
//! and SIGTERM closes them all. (The shared conformance suite checks the rest of the server
//! contract.)

use std::io::Read;
use std::net::TcpStream;

use echobench_conformance::{Server, connect, proc, round_trip};

#[test]
fn one_thread_serves_every_connection_until_sigterm() {
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-mio"), &["--addr", "127.0.0.1:0"]);

    // Open them all first, then talk on each: they are served side by side, not in turn.
    let mut clients: Vec<TcpStream> = (0..50).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate().rev() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 1, "an event loop needs no thread per connection");

    server.terminate().assert_clean_after_serving(50);
    for client in &mut clients {
        // End of file exactly: the server closed each connection in an orderly way.
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the server closed the connection");
    }
}
