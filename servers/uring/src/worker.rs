//! One worker: a ring, its buffer pool, a slab of connections, and the completion loop.
//!
//! The loop has one system call: [`Ring::submit_and_wait`] hands the kernel every request
//! queued since the last turn and returns with a batch of completions. Each completion is
//! then handled by the request it belongs to ([`Op`]), and handling one only ever queues
//! more requests; nothing here blocks or retries a system call.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use echobench_common::conn::report;
use echobench_common::{ACCEPT_PAUSE, Config, Summary};
use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode};
use slab::Slab;

use crate::buffers::{BufRing, GROUP};
use crate::conn::{Conn, recv_limits};
use crate::probe::Capabilities;
use crate::ring::{Op, Ring, RingSize, Stats, with_total_limit};

mod accept;

/// How long shutdown waits for the cancelled requests' last completions. Cancelling a
/// socket request takes microseconds; this only bounds a kernel that does not answer, and
/// keeps the exit within the contract's one second.
const STOP_WAIT: Duration = Duration::from_millis(500);

/// Everything one ring's loop owns.
#[derive(Debug)]
pub struct Worker<'a> {
    ring: Ring,
    buffers: BufRing,
    /// Open connections by slab key, which their requests carry in `user_data`. A key is
    /// freed only when none of its connection's requests is in flight (see `finish`).
    connections: Slab<Conn>,
    listener: RawFd,
    shutdown: RawFd,
    config: Config,
    caps: Capabilities,
    /// Open connections across all workers, for `--max-conns`.
    open: &'a AtomicUsize,
    accept_armed: bool,
    /// Out of descriptors: accepting waits for the timer or for a connection to close.
    paused: bool,
    timer_armed: bool,
    /// The pause's length. The kernel reads it when the timeout is submitted, so it lives
    /// in a box that does not move while the worker does.
    pause: Box<Timespec>,
    /// Shutdown has begun: no new requests, only the cancellation and its completions.
    stopping: bool,
    summary: Summary,
}

impl<'a> Worker<'a> {
    /// Sets up a ring and its buffers for a worker serving `listener`.
    pub fn new(
        listener: RawFd,
        shutdown: RawFd,
        config: Config,
        caps: Capabilities,
        size: &RingSize,
        open: &'a AtomicUsize,
    ) -> io::Result<Worker<'a>> {
        let (ring, _) = Ring::new(size)?;
        // Incremental buffers are shared by many receives, so they can be larger than
        // `--buffer`; buffers consumed whole could never be filled past it.
        let buffers = if caps.incremental_buffers {
            BufRing::register(&ring.uring, size.buffers, size.buffer_size, true)?
        } else {
            let (count, bytes) = size.classic(config.buffer);
            BufRing::register(&ring.uring, count, bytes, false)?
        };
        Ok(Worker {
            ring,
            buffers,
            connections: Slab::new(),
            listener,
            shutdown,
            config,
            caps,
            open,
            accept_armed: false,
            paused: false,
            timer_armed: false,
            pause: Box::new(Timespec::from(ACCEPT_PAUSE)),
            stopping: false,
            summary: Summary::default(),
        })
    }

    /// Serves until the shutdown handle fires, then cancels everything and returns.
    pub fn run(mut self) -> io::Result<(Summary, Stats)> {
        // SAFETY: a poll points at no memory of ours.
        unsafe {
            let poll = opcode::PollAdd::new(Fd(self.shutdown), libc::POLLIN as u32).build();
            self.ring.push(poll, Op::Shutdown);
        }
        self.arm_accept();
        let mut completions = Vec::new();
        while !self.stopping {
            self.turn(&mut completions, None)?;
        }
        self.stop(&mut completions)
    }

    /// One turn of the loop: publish recycled buffers, submit and wait, handle the batch.
    fn turn(
        &mut self,
        completions: &mut Vec<cqueue::Entry>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.buffers.commit();
        match timeout {
            None => self.ring.submit_and_wait()?,
            Some(timeout) => self.ring.submit_and_wait_for(timeout)?,
        }
        self.ring.reap(completions);
        for cqe in completions.drain(..) {
            self.complete(&cqe)?;
        }
        Ok(())
    }

    fn complete(&mut self, cqe: &cqueue::Entry) -> io::Result<()> {
        let (res, flags) = (cqe.result(), cqe.flags());
        match Op::of(cqe) {
            Op::Accept => return self.on_accept(res, cqueue::more(flags)),
            Op::Recv(key) => self.on_recv(key, res, flags),
            Op::Send(key) => self.on_send(key, res),
            Op::Cancel(key) => {
                self.connections[key].cancel_in_flight = false;
                self.settle(key);
            }
            // The eventfd became readable. (A poll, not a read: reading an eventfd consumes
            // its count, and every other ring, and `Shutdown::is_triggered`, rely on it
            // staying readable once fired.)
            Op::Shutdown => self.stopping = true,
            Op::Timer => {
                self.timer_armed = false;
                self.paused = false;
                self.arm_accept();
            }
            Op::CancelAll => {}
        }
        Ok(())
    }

    /// Arms a multishot receive that may take in at most the room left under `--buffer`.
    fn arm_recv(&mut self, key: usize) {
        let conn = &mut self.connections[key];
        let room = self.config.buffer - conn.held();
        let (per_recv, total) = recv_limits(room, self.buffers.size());
        let mut recv = opcode::RecvMulti::new(Fd(conn.fd.as_raw_fd()), GROUP).len(per_recv).build();
        if self.caps.recv_limit {
            recv = with_total_limit(recv, total);
        }
        conn.recv_armed = true;
        // SAFETY: a provided-buffer receive points only into the buffer ring, which is
        // unregistered only after every request has completed.
        unsafe { self.ring.push(recv, Op::Recv(key)) };
    }

    /// Bytes arrived (in a provided buffer), or the receive ended.
    fn on_recv(&mut self, key: usize, res: i32, flags: u32) {
        let conn = &mut self.connections[key];
        let more = cqueue::more(flags);
        if let Some(bid) = cqueue::buffer_select(flags) {
            if res > 0 && !conn.closing && !self.stopping {
                self.ring.stats.recvs += 1;
                // SAFETY: this completion handed us these bytes of buffer `bid`; they are
                // copied out before `consumed` may give the buffer back.
                conn.received(unsafe { self.buffers.bytes(bid, res as usize) });
            }
            // Back to the kernel at once if it is done with it: the pool is shared by every
            // connection, and a slow client must not keep a buffer that a fast one needs.
            self.buffers.consumed(bid, res, flags);
        }
        if !more {
            conn.recv_armed = false;
            if conn.held() >= self.config.buffer {
                self.ring.stats.at_bound += 1;
            }
        }
        match res {
            1.. => {
                self.start_send(key);
                // A kernel without the receive limit (before 6.17) goes on receiving until
                // told to stop: cancel the receive once the bound is reached.
                let conn = &mut self.connections[key];
                if more && !self.caps.recv_limit && conn.held() >= self.config.buffer {
                    self.cancel(key, CancelBuilder::user_data(Op::Recv(key).user_data()));
                }
            }
            // End of file: the client shut down its side. Whatever is pending still goes back.
            0 => conn.read_closed = true,
            // The buffer ring ran dry: the receive ended, and `settle` arms it again. The
            // buffers of this batch go back to the kernel before the next submission, so
            // the new receive finds some.
            _ if res == -libc::ENOBUFS => self.ring.stats.enobufs += 1,
            // Cancelled by us (backpressure or closing): nothing to do.
            _ if res == -libc::ECANCELED => {}
            _ => {
                report(&io::Error::from_raw_os_error(-res));
                self.close(key);
            }
        }
        self.settle(key);
    }

    /// Starts the connection's next send, if it has bytes and no send in flight.
    fn start_send(&mut self, key: usize) {
        let conn = &mut self.connections[key];
        if conn.closing || self.stopping {
            return;
        }
        if let Some((bytes, len)) = conn.start_send() {
            self.push_send(key, bytes, len);
        }
    }

    fn push_send(&mut self, key: usize, bytes: *const u8, len: u32) {
        let fd = Fd(self.connections[key].fd.as_raw_fd());
        // MSG_WAITALL: on a stream socket the kernel sends the whole buffer before it
        // completes, retrying on its own, rather than completing short. (A short completion
        // is still handled.) MSG_NOSIGNAL: a vanished client is an EPIPE, not a SIGPIPE.
        let send =
            opcode::Send::new(fd, bytes, len).flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL).build();
        // SAFETY: the bytes are the connection's `sending` buffer, which is neither written,
        // moved nor freed until this send's completion (see conn.rs), and connections are
        // freed only when no request of theirs is in flight.
        unsafe { self.ring.push(send, Op::Send(key)) };
    }

    /// A send completed: all of it, part of it, or with an error.
    fn on_send(&mut self, key: usize, res: i32) {
        self.ring.stats.sends += 1;
        let conn = &mut self.connections[key];
        if res < 0 || self.stopping {
            conn.send_failed();
            if res < 0 && res != -libc::ECANCELED {
                report(&io::Error::from_raw_os_error(-res));
            }
            if !self.stopping {
                self.close(key);
            }
        } else if let Some((rest, len)) = conn.send_done(res as usize) {
            self.push_send(key, rest, len);
        } else {
            self.start_send(key);
        }
        self.settle(key);
    }

    /// After any completion: arm the receive again if the connection has room and none is
    /// armed (a multishot receive ends at its byte limit, on ENOBUFS, on a completion
    /// overflow or a cancellation), and close the connection if it is done.
    fn settle(&mut self, key: usize) {
        if self.stopping {
            return;
        }
        let conn = &self.connections[key];
        if conn.closing {
            if !conn.busy() {
                self.finish(key);
            } else if !conn.cancel_in_flight {
                // Cancel whatever is left (a backpressure cancellation of the receive may
                // have been in flight when the connection failed, leaving its send).
                let fd = Fd(conn.fd.as_raw_fd());
                self.cancel(key, CancelBuilder::fd(fd).all());
            }
            return;
        }
        // Backpressure: a connection holding `--buffer` bytes is simply not armed again;
        // the client's bytes wait in the kernel's socket buffer, and the TCP window closes.
        // The completion of the send that drains it brings the connection back here.
        if conn.wants_recv(self.config.buffer) {
            self.ring.stats.rearmed += 1;
            self.arm_recv(key);
        } else if conn.finished() {
            self.finish(key);
        }
    }

    /// Closes a connection that failed: its requests are cancelled first, since closing the
    /// socket would not end them (each request holds its own reference to the socket).
    fn close(&mut self, key: usize) {
        // `settle`, which runs after every completion, does the cancelling and the freeing.
        self.connections[key].closing = true;
    }

    /// Queues a cancellation on behalf of connection `key`. It counts as one of the
    /// connection's requests: the connection (and its descriptor, which the cancellation
    /// may name) stays until the cancellation has completed too.
    ///
    /// One at a time: the connection tracks a single cancellation, and a second one in
    /// flight would complete after the connection had been freed. (Several receive
    /// completions of one batch can each find the connection at its bound.)
    fn cancel(&mut self, key: usize, which: CancelBuilder) {
        let conn = &mut self.connections[key];
        if conn.cancel_in_flight {
            return;
        }
        conn.cancel_in_flight = true;
        // SAFETY: a cancellation points at no memory.
        unsafe { self.ring.push(opcode::AsyncCancel2::new(which).build(), Op::Cancel(key)) };
    }

    /// Frees a connection with nothing in flight: out of the count first, then the close,
    /// so that a client that reconnects on seeing our FIN is not turned away by its own
    /// old connection.
    fn finish(&mut self, key: usize) {
        let conn = self.connections.remove(key);
        self.open.fetch_sub(1, Ordering::Relaxed);
        drop(conn);
        // A descriptor just came free: if accepting was paused for lack of them, resume.
        if self.paused {
            self.paused = false;
            self.arm_accept();
        }
    }

    /// Shutdown: cancel every request in flight, wait for all their completions, and only
    /// then close the sockets and free the buffers the requests pointed into.
    fn stop(mut self, completions: &mut Vec<cqueue::Entry>) -> io::Result<(Summary, Stats)> {
        // Queued behind every submission still waiting, so it sees them all.
        // SAFETY: a cancellation points at no memory.
        unsafe {
            let all = opcode::AsyncCancel2::new(CancelBuilder::any()).build();
            self.ring.push(all, Op::CancelAll);
        }
        let deadline = Instant::now() + STOP_WAIT;
        while self.ring.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Leave the memory to the process (see Drop) rather than free it under
                // requests that may still use it.
                eprintln!("echo-uring: {} requests still in flight at exit", self.ring.in_flight());
                return Ok((self.summary, self.ring.stats));
            }
            self.turn(completions, Some(left))?;
        }
        // Nothing is in flight: closing the sockets sends every client its FIN (or a reset,
        // with unread bytes), and the buffer ring can go.
        self.connections.clear();
        self.buffers.unregister(&self.ring.uring)?;
        Ok((self.summary, self.ring.stats))
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if self.ring.in_flight() > 0 {
            // Requests may still read the connections' send buffers: never free them.
            // (Only an error or a shutdown that timed out gets here, on the way to exit.)
            std::mem::forget(std::mem::take(&mut self.connections));
        }
    }
}
