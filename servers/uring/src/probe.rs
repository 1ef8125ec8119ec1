//! The start-up probe: is io_uring here at all, and which of its features does the kernel
//! have?
//!
//! Containers often refuse io_uring (Docker's default seccomp profile, `gVisor`, or the
//! sysctl `kernel.io_uring_disabled`), and older kernels lack multishot receives. Rather
//! than fail on the first connection, the server tries each thing it needs once, on a
//! socket pair of its own, before it binds: a ring, a provided-buffer ring (consumed
//! incrementally, where the kernel can), a multishot receive, and (optional) the receive's
//! byte limit. The tests use the same probe to skip,
//! with a reason, where io_uring is unavailable.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use io_uring::{cqueue, opcode, types};

use crate::buffers::{BufRing, GROUP};
use crate::ring::{Op, Ring, RingSize, with_total_limit};

/// What the kernel offers beyond the minimum this model needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Which setup flags the kernel accepted (see `Ring::new`).
    pub setup: &'static str,
    /// A multishot receive can be capped at a total byte count (Linux 6.17). Without it,
    /// backpressure cancels the receive once a connection holds `--buffer` bytes, and a
    /// batch that was already on its way may take the connection a little past that.
    pub recv_limit: bool,
    /// Provided buffers can be consumed incrementally (Linux 6.12): a few large buffers
    /// serve big and small receives alike. Without it, small buffers consumed whole.
    pub incremental_buffers: bool,
}

/// Checks that io_uring, provided-buffer rings and multishot receives work here, and
/// whether receives take a byte limit. An error says what is missing.
pub fn probe() -> io::Result<Capabilities> {
    let size =
        RingSize { sq_entries: 4, cq_entries: 8, buffers: 2, buffer_size: 16, coalesce_us: 0 };
    let (mut ring, setup) = Ring::new(&size).map_err(|err| context("cannot set up a ring", err))?;
    let register =
        |incremental| BufRing::register(&ring.uring, size.buffers, size.buffer_size, incremental);
    let mut buffers = match register(true) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => register(false),
        registered => registered,
    }
    .map_err(|err| context("no provided-buffer rings (Linux 5.19+)", err))?;
    let incremental_buffers = buffers.incremental();
    let (mut client, server) = UnixStream::pair()?;

    // Two bytes waiting, a receive capped at one byte in all: a kernel that knows the cap
    // delivers one byte and ends the request; one that does not refuses the field.
    client.write_all(b"ab")?;
    let recv = |limit: Option<u32>| {
        let entry = opcode::RecvMulti::new(types::Fd(server.as_raw_fd()), GROUP).len(1).build();
        limit.map_or(entry.clone(), |limit| with_total_limit(entry, limit))
    };
    let first = receive_once(&mut ring, &mut buffers, recv(Some(1)))?;
    let recv_limit = match first {
        (1, false) => true,
        // Refused: try again without the cap to see whether multishot works at all.
        (res, _) if res == -libc::EINVAL => {
            match receive_once(&mut ring, &mut buffers, recv(None))? {
                (1, _) => false,
                (res, _) => return Err(context("no multishot receive (Linux 6.0+)", errno(res))),
            }
        }
        // Ignored: the request goes on; the cancellation below ends it.
        (1, true) => false,
        (res, _) => return Err(context("no multishot receive (Linux 6.0+)", errno(res))),
    };
    // End whatever is still armed and wait for every completion, so that nothing can pick
    // a buffer once the ring is unregistered.
    // SAFETY: a cancellation points at no memory.
    unsafe {
        ring.push(opcode::AsyncCancel2::new(types::CancelBuilder::any()).build(), Op::CancelAll)
    };
    let mut cqes = Vec::new();
    while ring.in_flight() > 0 {
        ring.submit_and_wait()?;
        ring.reap(&mut cqes);
        for cqe in cqes.drain(..) {
            if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                buffers.consumed(bid, cqe.result(), cqe.flags());
            }
        }
    }
    buffers.unregister(&ring.uring)?;
    Ok(Capabilities { setup, recv_limit, incremental_buffers })
}

/// Submits `entry` (a receive) and returns the first receive completion: its result and
/// whether the request goes on (`F_MORE`). Buffers are recycled at once.
fn receive_once(
    ring: &mut Ring,
    buffers: &mut BufRing,
    entry: io_uring::squeue::Entry,
) -> io::Result<(i32, bool)> {
    // SAFETY: a provided-buffer receive points at no memory of ours but the buffer ring,
    // which outlives it (the probe drains every request before unregistering).
    unsafe { ring.push(entry, Op::Recv(0)) };
    let mut cqes = Vec::new();
    loop {
        ring.submit_and_wait()?;
        ring.reap(&mut cqes);
        for cqe in cqes.drain(..) {
            if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                buffers.consumed(bid, cqe.result(), cqe.flags());
                buffers.commit();
            }
            if Op::of(&cqe) == Op::Recv(0) {
                return Ok((cqe.result(), cqueue::more(cqe.flags())));
            }
        }
    }
}

fn errno(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

fn context(what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Why io_uring cannot be used here, or `None` if it can: the tests' skip hook.
///
/// The probe runs on a thread of its own. A ring's teardown finishes asynchronously, and
/// the kernel may then notify the thread that created it as if with a signal; a blocking
/// socket read with a timeout in that thread returns EINTR. A test that probed on its own
/// thread and then read from the server saw exactly that, once in a few dozen runs.
pub fn unavailable() -> Option<String> {
    let probed = std::thread::spawn(probe).join();
    match probed {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(format!("io_uring unavailable: {err}")),
        Err(_) => Some("io_uring unavailable: the probe panicked".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_finds_what_this_kernel_has() {
        let Ok(caps) = probe() else {
            return eprintln!("skipped: {}", unavailable().unwrap_or_default());
        };
        // What to expect follows from the kernel's version: DEFER_TASKRUN came in 6.1, the
        // incremental buffers in 6.12, the multishot receive's byte limit in 6.17.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let release = release.trim();
        let mut numbers =
            release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse().unwrap_or(0));
        let version: (u32, u32) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        eprintln!("kernel {release}: {caps:?}");
        if version >= (6, 1) {
            assert_eq!(caps.setup, "single issuer, deferred task work");
        }
        assert_eq!(caps.recv_limit, version >= (6, 17), "kernel {release}");
        assert_eq!(caps.incremental_buffers, version >= (6, 12), "kernel {release}");
    }
}
