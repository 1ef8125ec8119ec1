//! Smoke test of the real `echo-poll` binary: one thread serves every connection, an array
//! full of connections in every state costs no CPU while nothing happens (level-triggered
//! `poll` would spin on an entry that asked for what is always true), and SIGTERM closes
//! them all. (The shared conformance suite checks the rest of the server contract.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use echobench_conformance::{Server, connect, proc, round_trip};

#[test]
fn one_thread_serves_every_connection_and_sleeps_when_nothing_happens() {
    let args = ["--addr", "127.0.0.1:0", "--buffer", "4096"];
    let mut server = Server::start(env!("CARGO_BIN_EXE_echo-poll"), &args);

    // Open them all first, then talk on each: they are served side by side, not in turn.
    let mut clients: Vec<TcpStream> = (0..50).map(|_| connect(server.tcp_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate().rev() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    assert_eq!(proc::tree_threads(server.pid()), 1, "one thread serves every connection");

    // A client that sends without reading, then half-closes: its connection ends with a
    // full buffer, bytes the client will not take, and an end of file still unread. Its
    // entry must ask for neither POLLIN (there is no room) nor anything else that is true.
    let mut stuck = connect(server.tcp_addr());
    stuck.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let chunk = vec![b'x'; 64 << 10];
    // Bounded: 64 MiB at most; a server that bounds its buffer stalls it long before.
    for _ in 0..1024 {
        if stuck.write_all(&chunk).is_err() {
            break;
        }
    }
    stuck.shutdown(Shutdown::Write).unwrap();

    // Nothing happens for a second: 51 entries, and the loop must be asleep in poll.
    let ticks = proc::tree_cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = proc::tree_cpu_ticks(server.pid()) - ticks;
    let limit = proc::ticks_per_second() / 4;
    assert!(used < limit, "{used} ticks of CPU in a second of nothing: the loop spins");
    round_trip(&mut clients[0], b"still served");

    server.terminate().assert_clean_after_serving(51);
    for client in &mut clients {
        // End of file exactly: the server closed each connection in an orderly way.
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the server closed the connection");
    }
}
