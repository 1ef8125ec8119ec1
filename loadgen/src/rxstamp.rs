//! When an echo reached loadgen's socket, as the kernel stamped it, rather than when the load
//! thread got round to reading it.
//!
//! The open loop uses this so that echoes need not wake the load thread. Each wake-up of a
//! sleeping thread costs far more than a read (about 30 us of CPU on this project's virtual
//! machine, charged to the thread that wakes), so a thread that slept between sends *and*
//! woke for every echo spent most of its CPU going to sleep. With a receive timestamp on each
//! read, the echoes can wait in their socket buffers until the next send wakes the thread
//! anyway, and their latency still ends when they arrived.
//!
//! The stamp is `SO_TIMESTAMPNS`: the software time at which the packet entered the kernel's
//! receive path, on the real-time clock. A read's stamp is that of the newest segment it
//! returns (and TCP may merge segments that wait unread into one, with the newer stamp), so
//! an older echo read together with a newer one is timed as late as the newer one: an
//! over-statement, never an under-statement, of at most the time between two wake-ups. The
//! load thread therefore reads one echo at a time while a connection has several outstanding
//! (`worker/conns.rs`). Unix sockets carry no stamp; the loop then reads echoes as they come.

use std::io::{self, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};

use crate::target::Stream;

/// Room for one `SCM_TIMESTAMPNS` control message.
pub struct Control(Vec<u8>);

impl Control {
    pub fn new() -> Control {
        Control(nix::cmsg_space!(nix::sys::time::TimeSpec))
    }
}

/// Has the kernel start stamping received packets now, and keeps it stamping while the
/// returned socket lives. The kernel turns stamping on for the whole machine only a moment
/// after the first socket asks (it patches its receive path from a work queue), so the first
/// echoes of a run would otherwise arrive unstamped, and the open loop would give up on
/// stamps for the run. So this asks, then sends itself datagrams over loopback until one
/// arrives stamped (a few, each awaited for at most 100 ms).
pub fn switch_on() -> Option<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.connect(socket.local_addr().ok()?).ok()?;
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true).ok()?;
    socket.set_read_timeout(Some(Duration::from_millis(100))).ok()?;
    let (mut buf, mut control) = ([0u8; 1], Control::new());
    for _ in 0..20 {
        socket.send(&[0]).ok()?;
        if let Ok((_, Some(_))) = read_fd(socket.as_raw_fd(), &mut buf, &mut control) {
            break;
        }
    }
    Some(socket)
}

/// Asks the kernel to stamp what arrives on `stream`; `false` when it cannot (a Unix socket).
pub fn enable(stream: &Stream) -> bool {
    match stream {
        Stream::Tcp(s) => setsockopt(s, sockopt::ReceiveTimestampns, &true).is_ok(),
        Stream::Unix(_) => false,
    }
}

/// Reads like `read`, and returns with the byte count the kernel's stamp of the newest data
/// read, in nanoseconds of the real-time clock, if one came with it.
pub fn read(
    stream: &Stream,
    buf: &mut [u8],
    control: &mut Control,
) -> io::Result<(usize, Option<u64>)> {
    let fd = match stream {
        Stream::Tcp(s) => s.as_raw_fd(),
        Stream::Unix(s) => s.as_raw_fd(),
    };
    read_fd(fd, buf, control)
}

fn read_fd(fd: RawFd, buf: &mut [u8], control: &mut Control) -> io::Result<(usize, Option<u64>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut control.0), MsgFlags::empty())?;
    let mut stamp = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
            stamp = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64);
        }
    }
    Ok((msg.bytes, stamp))
}

/// How long ago the real-time instant `stamp_ns` was: the age of a stamp, to be taken from
/// the monotonic clock the run is timed on. (The real-time clock may be stepped; a stamp
/// from the future is taken as now, and the caller keeps an echo no earlier than its send.)
pub fn age_ns(stamp_ns: u64) -> u64 {
    realtime_ns().saturating_sub(stamp_ns)
}

/// Now on the real-time clock, the stamps' clock, in nanoseconds since the epoch.
fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    use mio::{Events, Interest, Poll, Token};

    /// Waits (bounded) until `stream` is readable. It deregisters the stream before it
    /// returns: a caller that loops (data that arrived before stamping was on) registers it
    /// again with a fresh `Poll`, and mio refuses a source still registered elsewhere.
    fn readable(stream: &mut Stream) {
        let mut poll = Poll::new().unwrap();
        poll.registry().register(stream, Token(0), Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(1);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert!(!events.is_empty(), "the bytes never arrived");
        poll.registry().deregister(stream).unwrap();
    }

    #[test]
    fn tcp_data_carries_the_time_it_arrived() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let mut stream = Stream::Tcp(mio::net::TcpStream::from_std(accepted));
        assert!(enable(&stream));
        // The kernel turns stamping on a moment after it is first asked for (see
        // `switch_on`): until then data arrives unstamped, after that always stamped.
        let (mut buf, mut control) = ([0u8; 16], Control::new());
        let started = std::time::Instant::now();
        let (before, after, stamp) = loop {
            assert!(started.elapsed() < Duration::from_secs(5), "no data was ever stamped");
            let before = realtime_ns();
            sender.write_all(b"echo").unwrap();
            readable(&mut stream);
            let after = realtime_ns();
            let (n, stamp) = read(&stream, &mut buf, &mut control).unwrap();
            assert_eq!(&buf[..n], b"echo");
            if let Some(stamp) = stamp {
                break (before, after, stamp);
            }
        };
        assert!(
            (before..=after).contains(&stamp),
            "stamped {stamp}, sent at {before}, seen by {after}"
        );
        assert!(age_ns(stamp) <= realtime_ns() - stamp);
    }

    #[test]
    fn unix_sockets_carry_no_stamp() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut stream = Stream::Unix(mio::net::UnixStream::from_std(a));
        assert!(!enable(&stream));
        b.write_all(b"echo").unwrap();
        readable(&mut stream);
        let (mut buf, mut control) = ([0u8; 16], Control::new());
        assert_eq!(read(&stream, &mut buf, &mut control).unwrap(), (4, None));
    }
}
