//! The accepting side of a worker: the multishot accept, `--max-conns`, and the pause
//! when the process runs out of descriptors.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use echobench_common::AcceptError;
use io_uring::opcode;
use io_uring::types::Fd;

use super::Worker;
use crate::conn::Conn;
use crate::ring::Op;

impl Worker<'_> {
    /// Arms the multishot accept, unless it is armed, paused or shutting down. One request
    /// accepts every connection from now on, each announced by its own completion.
    pub(super) fn arm_accept(&mut self) {
        if self.accept_armed || self.paused || self.stopping {
            return;
        }
        self.accept_armed = true;
        let accept = opcode::AcceptMulti::new(Fd(self.listener)).flags(libc::SOCK_CLOEXEC).build();
        // SAFETY: an accept without an address buffer points at no memory of ours.
        unsafe { self.ring.push(accept, Op::Accept) };
    }

    /// A connection arrived, or the accept failed or ended.
    pub(super) fn on_accept(&mut self, res: i32, more: bool) -> io::Result<()> {
        if !more {
            self.accept_armed = false;
        }
        if res >= 0 {
            // SAFETY: a successful accept's result is a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.add(fd);
        } else if !self.stopping {
            let err = io::Error::from_raw_os_error(-res);
            match AcceptError::classify(&err) {
                AcceptError::WouldBlock | AcceptError::Retry => {}
                // The connection stays in the kernel's backlog. Arming the accept again at
                // once would fail again at once, a busy loop through the ring; so wait for
                // the timer, or for a connection to close and free a descriptor.
                AcceptError::OutOfResources => self.pause_accepting(),
                AcceptError::Fatal => return Err(err),
            }
        }
        // A multishot accept ends after an error, or when its completion overflowed.
        self.arm_accept();
        Ok(())
    }

    fn pause_accepting(&mut self) {
        self.paused = true;
        self.ring.stats.accept_pauses += 1;
        if !self.timer_armed {
            self.timer_armed = true;
            let timer = opcode::Timeout::new(&*self.pause).build();
            // SAFETY: the timespec is boxed and lives as long as the worker, which outlives
            // every request (shutdown waits for them all).
            unsafe { self.ring.push(timer, Op::Timer) };
        }
    }

    /// Takes on a new connection, or closes it at once over `--max-conns` or at shutdown.
    fn add(&mut self, fd: OwnedFd) {
        if self.stopping {
            return; // `fd` is dropped, which closes it.
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.config.max_conns {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.summary.rejected += 1;
            return;
        }
        let key = self.connections.insert(Conn::new(fd));
        self.summary.served += 1;
        self.arm_recv(key);
    }
}
