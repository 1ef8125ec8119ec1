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
//! receive path, on the real-time clock. One read may return several segments that TCP merged
//! in its receive queue; the stamp is then the newest one's, so an older echo read together
//! with a newer one is timed as late as the newer one: an over-statement, never an
//! under-statement, and rare, since echoes are read at every send. Unix sockets carry no
//! stamp; the loop then reads echoes as they come, as before.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};

use crate::target::Stream;

/// Room for one `SCM_TIMESTAMPNS` control message.
pub struct Control(Vec<u8>);

impl Control {
    pub fn new() -> Control {
        Control(nix::cmsg_space!(nix::sys::time::TimeSpec))
    }
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
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    now.saturating_sub(stamp_ns)
}
