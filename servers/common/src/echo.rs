//! The blocking echo loop, for models that give each connection its own thread of control.

use std::io::{self, Read, Write};

use crate::interrupted;

/// Echoes everything `stream` sends back to it until the client closes its side, and returns
/// the number of bytes echoed.
///
/// Memory stays bounded by `buf`: each read is written back in full before the next read, so
/// a client that sends without ever reading soon blocks this loop in `write_all` (the socket's
/// send buffer is full), and from then on the kernel's receive window throttles the client.
/// When the client half-closes (read returns 0), everything it sent has already been written
/// back, so returning (and closing) loses nothing.
pub fn echo<S: Read + Write>(stream: &mut S, buf: &mut [u8]) -> io::Result<u64> {
    let mut echoed = 0u64;
    loop {
        let n = match stream.read(buf) {
            Ok(0) => return Ok(echoed),
            Ok(n) => n,
            Err(err) if interrupted(&err) => continue,
            Err(err) => return Err(err),
        };
        stream.write_all(&buf[..n])?;
        echoed += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory stream: reads come from `input`, writes go to `output`.
    struct Pipe {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn echoes_every_byte_in_order_through_a_small_buffer() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut pipe = Pipe { input: Cursor::new(data.clone()), output: Vec::new() };
        let echoed = echo(&mut pipe, &mut [0u8; 7]).unwrap();
        assert_eq!(echoed, data.len() as u64);
        assert_eq!(pipe.output, data);
    }
}
