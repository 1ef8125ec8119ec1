//! Byte-transparent echo: whatever arrives comes back, in order, at any size, and a client
//! that half-closes still gets every byte before the server closes.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use super::start_tcp;
use crate::client::{assert_same, connect, pattern, read_to_eof, round_trip, write_until_stalled};

/// Messages from 1 byte to a few buffers' worth, on one connection, each come back whole and
/// in order; two writes sent back to back come back as one stream, in order.
pub fn small_payloads_round_trip_in_order(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &[]);
    let mut client = connect(server.tcp_addr());
    // Sizes around the default 16 KiB buffer catch off-by-one errors at its edge.
    for size in [1, 2, 3, 7, 64, 100, 1000, 4096, 16_383, 16_384, 16_385, 40_000] {
        round_trip(&mut client, &pattern(size, size as u64));
    }
    client.write_all(b"first").unwrap();
    client.write_all(b"second").unwrap();
    let mut back = [0u8; 11];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"firstsecond");
}

/// Every byte value, including NUL, 0xff, CR and LF, comes back unchanged: the server
/// neither interprets lines nor stops at a zero byte.
pub fn binary_payload_round_trips_every_byte_value(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &[]);
    let mut client = connect(server.tcp_addr());
    let every: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    round_trip(&mut client, &every);
    for byte in [0x00, 0xff, b'\n', b'\r', 0x04, 0x1a] {
        round_trip(&mut client, &[byte]);
    }
    let mixed: Vec<u8> = every.iter().flat_map(|&b| [b, 0, b'\r', b'\n', 0xff]).collect();
    round_trip(&mut client, &mixed);
}

/// 8 MiB written by one thread and read by another (so neither side's socket buffer has to
/// hold it all) comes back byte-identical and in order.
pub fn large_payload_streams_back_identical(bin: &str, extra: &[&str]) {
    const SIZE: usize = 8 << 20;
    let server = start_tcp(bin, extra, &[]);
    let mut reader = connect(server.tcp_addr());
    let mut writer = reader.try_clone().unwrap();
    let payload = pattern(SIZE, 8);
    let sent = payload.clone();
    let writing = thread::spawn(move || writer.write_all(&sent));
    let mut back = vec![0u8; SIZE];
    let read = reader.read_exact(&mut back);
    writing.join().unwrap().expect("writing 8 MiB failed");
    read.expect("reading the 8 MiB echo failed");
    assert_same(&payload, &back);
}

/// Half-close: after `shutdown(Write)` every byte still comes back, then end of file.
/// Once with a few bytes whose FIN arrives in the same moment as the data (an event loop must
/// not treat "readable and closed" as "closed"), once with 1 MiB still in flight, and once
/// with the FIN queued behind bytes the server has stopped reading (see
/// `half_close_behind_backpressure`).
pub fn half_close_returns_every_byte_then_eof(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &[]);

    let mut client = connect(server.tcp_addr());
    client.write_all(b"last words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let back = read_to_eof(&mut client).expect("no end of file after a half-close");
    assert_same(b"last words", &back);

    let mut reader = connect(server.tcp_addr());
    let mut writer = reader.try_clone().unwrap();
    let payload = pattern(1 << 20, 3);
    let sent = payload.clone();
    let writing = thread::spawn(move || {
        writer.write_all(&sent)?;
        writer.shutdown(Shutdown::Write)
    });
    let back = read_to_eof(&mut reader);
    writing.join().unwrap().expect("writing 1 MiB then half-closing failed");
    // `read_to_eof` only returns Ok on end of file: all bytes came back and then the server
    // closed its side.
    let back = back.expect("no end of file after the 1 MiB half-close");
    assert_same(&payload, &back);

    half_close_behind_backpressure(bin, extra);
}

/// The client writes without reading until its writes stall, half-closes, and only then
/// reads. With `--buffer 4096` the server has long stopped reading by then: it holds its
/// 4 KiB, the kernel's buffers are full both ways, and the client's FIN waits behind bytes
/// the server has not read. Once the client reads, the server must drain, resume reading by
/// itself (no new event announces bytes that arrived long ago), reach the FIN, and close
/// after the last byte.
///
/// Writing a fixed 100 KB would not get there: loopback's socket buffers grow to hold it
/// all (measured: the server had read everything and held 94 KiB in its send queue). Here
/// the writes stalled after 7 to 9 MB.
fn half_close_behind_backpressure(bin: &str, extra: &[&str]) {
    let server = start_tcp(bin, extra, &["--buffer", "4096"]);
    let mut client = connect(server.tcp_addr());
    let payload = pattern(32 << 20, 4);
    let sent = write_until_stalled(&client, &payload, Duration::from_secs(10));
    client.shutdown(Shutdown::Write).unwrap();
    let back = read_to_eof(&mut client).expect("no end of file after the backpressured half-close");
    eprintln!("half-close behind backpressure: {sent} bytes written before the writes stalled");
    assert_same(&payload[..sent], &back);
}
