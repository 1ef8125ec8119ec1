//! Unit tests of the loop: a whole run over real loopback sockets, and the promised size of
//! a connection's slot.

use super::*;
use echobench_common::Endpoint;
use echobench_conformance::{closed_by_server, connect, round_trip};
use std::net::TcpStream;

#[test]
fn run_serves_until_shutdown_then_closes_everything() {
    let listener = Listener::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), 8).unwrap();
    let Endpoint::Tcp(addr) = listener.local_endpoint().unwrap() else { unreachable!() };
    let shutdown = Shutdown::new().unwrap();
    let config = Config { max_conns: 2, buffer: 1024 };
    let stop = shutdown.clone();
    let server = std::thread::spawn(move || run(listener, shutdown, &config));
    // Larger than --buffer, so that each echo goes through more than one read.
    let message: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut clients: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    for client in &mut clients {
        round_trip(client, &message);
    }
    // A third is over --max-conns: accepted and closed at once.
    assert!(closed_by_server(&mut connect(addr)), "the third connection was not closed");

    stop.trigger();
    assert_eq!(server.join().unwrap().unwrap(), Summary { served: 2, rejected: 1 });
    for client in &mut clients {
        assert!(closed_by_server(client));
    }
}

#[test]
fn a_connection_costs_one_small_slot() {
    // The essay promises 64 bytes per connection in user space; keep it honest. Debug
    // builds of mio add 8 bytes per socket (to check it is registered with one Poll only).
    let promised = if cfg!(debug_assertions) { 72 } else { 64 };
    let size = std::mem::size_of::<Slot>();
    assert!(size <= promised, "a slot takes {size} bytes");
}
