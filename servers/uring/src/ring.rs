//! The ring itself: setting it up, queueing submissions when it is full, and telling
//! completions apart.
//!
//! [`Ring`] wraps an [`IoUring`] with the three things every loop over one needs:
//!
//! - **A backlog.** The submission queue has a fixed number of slots. A burst of completions
//!   can ask for more submissions than fit (a thousand connections each wanting a send), and
//!   dropping one would leave a connection waiting for ever. So [`Ring::push`] puts what does
//!   not fit in a queue of its own, and [`Ring::submit_and_wait`] feeds it in, calling
//!   `io_uring_enter` early to free slots when it must. Nothing is ever dropped.
//! - **A count of requests in flight**, so that shutdown knows when the last completion has
//!   come in and only then frees the memory the requests point into.
//! - **[`Op`]**, the meaning of each request, packed into its 64-bit `user_data`.

use std::collections::VecDeque;
use std::io;

use io_uring::{IoUring, cqueue, squeue};

/// How big each worker's ring and buffer pool are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSize {
    /// Submission queue slots (the kernel rounds up to a power of two).
    pub sq_entries: u32,
    /// Completion queue slots. Multishot requests post many completions per submission, so
    /// this is larger than the submission queue: each connection's receive may post several
    /// completions in one batch, the accept one per connection.
    pub cq_entries: u32,
    /// Provided receive buffers (a power of two), where the kernel consumes them
    /// incrementally; otherwise the same pool is cut into [`CLASSIC_BUFFER`]-byte buffers.
    pub buffers: u16,
    /// Bytes per provided buffer, where the kernel consumes them incrementally.
    pub buffer_size: usize,
    /// Completion coalescing: a wait that finds fewer than [`COALESCE_BATCH`] completions
    /// ready lingers up to this many microseconds for more (Linux 6.12). 0: return as soon
    /// as one is ready.
    pub coalesce_us: u32,
}

/// Bytes per provided buffer where the kernel cannot consume them incrementally: each
/// receive then takes a whole buffer, so they are small, and a big message arrives in
/// many receives.
pub const CLASSIC_BUFFER: usize = 4096;

impl RingSize {
    /// The pool as `(count, size)` of buffers consumed whole: the same bytes, in buffers
    /// of [`CLASSIC_BUFFER`] bytes (at most 32,768, and never larger than `limit`, since a
    /// receive never takes more than the room under `--buffer`).
    pub fn classic(&self, limit: usize) -> (u16, usize) {
        // Both factors are powers of two (the count is checked when parsed, the size is
        // 64 KiB), so the product is one too, as the ring requires.
        let per = (self.buffer_size / CLASSIC_BUFFER).max(1);
        let count = (usize::from(self.buffers) * per).min(1 << 15);
        (count as u16, CLASSIC_BUFFER.min(limit))
    }
}

/// How many completions a coalescing wait asks for before its time is up.
pub const COALESCE_BATCH: usize = 64;

impl Default for RingSize {
    /// 1,024 submission slots let one `io_uring_enter` carry the echoes of a thousand
    /// connections; 8,192 completion slots absorb their receives and sends with room to
    /// spare. 64 buffers of 64 KiB (4 MiB, touched at start-up), consumed incrementally,
    /// hold a batch of 64-byte receives from a thousand connections in one buffer, and a
    /// batch of full 16 KiB receives from 256 of them; consumed whole, as 1,024 buffers of
    /// 4 KiB, they cover one receive per connection at the load the benchmark drives. Every
    /// full buffer goes back to the kernel within the batch that filled it.
    fn default() -> Self {
        RingSize {
            sq_entries: 1024,
            cq_entries: 8192,
            buffers: 64,
            buffer_size: 64 * 1024,
            coalesce_us: 0,
        }
    }
}

/// What a submission was for, carried through the kernel in its `user_data`.
///
/// A connection's requests carry its slab key. Keys are reused, but only after every request
/// of the old connection has completed (see `worker.rs`), so a completion can never reach
/// the wrong connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The listener's multishot accept.
    Accept,
    /// The poll on the shutdown eventfd.
    Shutdown,
    /// The pause after running out of descriptors.
    Timer,
    /// The cancellation of every request, at shutdown.
    CancelAll,
    /// A connection's multishot receive.
    Recv(usize),
    /// A connection's send.
    Send(usize),
    /// The cancellation of a connection's requests.
    Cancel(usize),
}

impl Op {
    const KEY_BITS: u32 = 32;

    fn encode(self) -> u64 {
        let (tag, key) = match self {
            Op::Accept => (1, 0),
            Op::Shutdown => (2, 0),
            Op::Timer => (3, 0),
            Op::CancelAll => (4, 0),
            Op::Recv(key) => (5, key),
            Op::Send(key) => (6, key),
            Op::Cancel(key) => (7, key),
        };
        debug_assert!(key < 1 << Self::KEY_BITS, "slab key {key} does not fit");
        (tag << Self::KEY_BITS) | key as u64
    }

    /// The request a completion belongs to.
    pub fn of(cqe: &cqueue::Entry) -> Op {
        let data = cqe.user_data();
        let key = (data & ((1 << Self::KEY_BITS) - 1)) as usize;
        match data >> Self::KEY_BITS {
            1 => Op::Accept,
            2 => Op::Shutdown,
            3 => Op::Timer,
            4 => Op::CancelAll,
            5 => Op::Recv(key),
            6 => Op::Send(key),
            7 => Op::Cancel(key),
            // Only this module writes user_data, and only the tags above.
            tag => unreachable!("completion with unknown tag {tag}"),
        }
    }

    /// The `user_data` a cancellation names to find this request.
    pub fn user_data(self) -> u64 {
        self.encode()
    }
}

/// What the loop counts about the ring, printed at exit with `--stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// `io_uring_enter` calls that waited for completions (the main loop's one system call).
    pub waits: u64,
    /// Extra `io_uring_enter` calls made only to free submission slots.
    pub early_submits: u64,
    /// Submissions that found the submission queue full and waited in the backlog.
    pub backlogged: u64,
    /// Times the kernel said completions had overflowed the completion queue.
    pub cq_overflows: u64,
    /// Completions handled.
    pub completions: u64,
    /// Multishot receives armed again after one ended.
    pub rearmed: u64,
    /// Receives that ended because the buffer ring was empty (ENOBUFS).
    pub enobufs: u64,
    /// Receives that ended with their connection holding `--buffer` bytes, so were not
    /// armed again until a send drained it (backpressure).
    pub at_bound: u64,
    /// Times accepting paused for lack of descriptors.
    pub accept_pauses: u64,
    /// Receive completions that carried bytes, each one provided buffer.
    pub recvs: u64,
    /// Send completions (a short send, sent again, counts twice).
    pub sends: u64,
}

/// An io_uring with a backlog for full submission queues and a count of requests in flight.
pub struct Ring {
    pub uring: IoUring,
    /// Submissions that did not fit in the submission queue, oldest first.
    backlog: VecDeque<squeue::Entry>,
    /// Requests submitted (or backlogged) whose last completion has not arrived.
    in_flight: usize,
    /// See [`RingSize::coalesce_us`]; 0 where the kernel cannot.
    coalesce_us: u32,
    /// Completions the last `reap` found: whether the ring is busy.
    last_reaped: usize,
    pub stats: Stats,
}

impl Ring {
    /// Sets up a ring of `size`, with the most helpful setup flags the kernel accepts.
    ///
    /// - SINGLE_ISSUER promises that one thread submits, which spares the kernel some locking.
    /// - DEFER_TASKRUN (which needs it) makes the kernel finish network requests, posting
    ///   their completions, only when this thread enters the ring to wait, instead of
    ///   interrupting it whenever a packet arrives: the work is batched into our own wait.
    /// - Without those (before Linux 6.1), COOP_TASKRUN at least avoids the interrupts.
    /// - SUBMIT_ALL keeps submitting a batch past an entry that fails at once.
    /// - CQSIZE sizes the completion queue apart from the submission queue.
    ///
    /// A kernel that does not know a flag refuses with EINVAL, so each set is tried in
    /// turn. Any other error (ENOSYS, or EPERM from a seccomp filter or
    /// `kernel.io_uring_disabled`) means io_uring is not available here at all.
    pub fn new(size: &RingSize) -> io::Result<(Ring, &'static str)> {
        type Setup = fn(&mut io_uring::Builder);
        let attempts: [(&str, Setup); 3] = [
            ("single issuer, deferred task work", |b| {
                b.setup_single_issuer().setup_defer_taskrun().setup_submit_all();
            }),
            ("cooperative task work", |b| {
                b.setup_coop_taskrun().setup_submit_all();
            }),
            ("plain", |_| {}),
        ];
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        for (name, setup) in attempts {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(size.cq_entries.max(size.sq_entries));
            setup(&mut builder);
            match builder.build(size.sq_entries) {
                Ok(uring) => {
                    let coalesce_us =
                        if uring.params().is_feature_min_timeout() { size.coalesce_us } else { 0 };
                    let ring = Ring {
                        uring,
                        backlog: VecDeque::new(),
                        in_flight: 0,
                        coalesce_us,
                        last_reaped: 0,
                        stats: Stats::default(),
                    };
                    return Ok((ring, name));
                }
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => last = err,
                Err(err) => return Err(err),
            }
        }
        Err(last)
    }

    /// Queues `entry`, tagged as `op`, for the next submission; if the submission queue is
    /// full, it waits in the backlog.
    ///
    /// # Safety
    ///
    /// Whatever memory `entry` points at (a send's bytes, a timeout's timespec) must stay
    /// valid, and unchanged, until the request's last completion has been reaped.
    pub unsafe fn push(&mut self, entry: squeue::Entry, op: Op) {
        let entry = entry.user_data(op.encode());
        self.in_flight += 1;
        // Order matters on a socket (a second send must not overtake the first), so once
        // anything waits in the backlog, everything after it waits too.
        // SAFETY: the caller guarantees the entry's memory outlives the request.
        if !self.backlog.is_empty() || unsafe { self.uring.submission().push(&entry) }.is_err() {
            self.stats.backlogged += 1;
            self.backlog.push_back(entry);
        }
    }

    /// Submits everything queued, backlog included, and waits until at least one
    /// completion is ready.
    ///
    /// This is the loop's one system call per turn: a single `io_uring_enter` carries every
    /// receive re-armed and every send started in the last batch, for every connection, and
    /// returns with the next batch of completions. A signal (EINTR) just ends the wait early.
    pub fn submit_and_wait(&mut self) -> io::Result<()> {
        if !self.feed_backlog()? {
            // The kernel is holding completions it could not post (see below): reap first.
            return Ok(());
        }
        self.stats.waits += 1;
        // Coalesce only while busy: a coalescing wait with nothing to find returns after
        // its time anyway (ETIME), so an idle ring would wake every few microseconds.
        let waited = if self.coalesce_us == 0 || self.last_reaped == 0 {
            self.uring.submit_and_wait(1)
        } else {
            let args = io_uring::types::SubmitArgs::new().min_wait_usec(self.coalesce_us);
            self.uring.submitter().submit_with_args(COALESCE_BATCH, &args)
        };
        match waited {
            Ok(_) => Ok(()),
            // A coalescing wait whose time ran out says ETIME, whatever it found.
            Err(err) if busy(&err) || err.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Like [`Ring::submit_and_wait`], giving up after `timeout` (used at shutdown).
    pub fn submit_and_wait_for(&mut self, timeout: std::time::Duration) -> io::Result<()> {
        if !self.feed_backlog()? {
            return Ok(());
        }
        let ts = io_uring::types::Timespec::from(timeout);
        let args = io_uring::types::SubmitArgs::new().timespec(&ts);
        match self.uring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(err) if busy(&err) || err.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Moves the backlog into the submission queue, submitting early whenever the queue
    /// fills. Returns false if the kernel would not take more now: with completions
    /// overflowing, it refuses (EBUSY) until some are reaped, and the loop must reap first.
    fn feed_backlog(&mut self) -> io::Result<bool> {
        while !self.backlog.is_empty() {
            {
                let mut sq = self.uring.submission();
                while let Some(entry) = self.backlog.front() {
                    // SAFETY: promised valid by the caller of `push` that queued it.
                    if unsafe { sq.push(entry) }.is_err() {
                        break;
                    }
                    self.backlog.pop_front();
                }
            }
            if self.backlog.is_empty() {
                break;
            }
            self.stats.early_submits += 1;
            match self.uring.submit() {
                Ok(_) => {}
                Err(err) if busy(&err) => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// Moves every completion that is ready into `out` and counts the requests that ended.
    ///
    /// When the completion queue is full, a kernel with IORING_FEAT_NODROP (every kernel
    /// this model runs on) keeps further completions on an overflow list and flags it; the
    /// next `io_uring_enter` that waits moves them in once we have made room. Nothing is
    /// lost, but a multishot request whose completion overflows is ended by the kernel, so
    /// overflow shows up to the loop as a multishot completion without `F_MORE`, which it
    /// handles like any other ending: by arming the request again.
    pub fn reap(&mut self, out: &mut Vec<cqueue::Entry>) {
        if self.uring.submission().cq_overflow() {
            self.stats.cq_overflows += 1;
        }
        let start = out.len();
        out.extend(self.uring.completion());
        for cqe in &out[start..] {
            // A multishot request lives on until a completion without F_MORE.
            if !cqueue::more(cqe.flags()) {
                self.in_flight -= 1;
            }
        }
        self.last_reaped = out.len() - start;
        self.stats.completions += self.last_reaped as u64;
    }

    /// Requests whose last completion has not been reaped yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl std::fmt::Debug for Ring {
    // IoUring has no Debug of its own; its size says what matters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("sq_entries", &self.uring.params().sq_entries())
            .field("cq_entries", &self.uring.params().cq_entries())
            .field("backlog", &self.backlog.len())
            .field("in_flight", &self.in_flight)
            .field("stats", &self.stats)
            .finish()
    }
}

/// EBUSY or EAGAIN from `io_uring_enter`: the kernel cannot take submissions until we reap.
fn busy(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN | libc::EINTR))
}

/// Caps a multishot receive at `limit` bytes in all: after that many, the kernel ends it
/// (a completion without `F_MORE`), and the loop decides whether to arm it again.
///
/// Linux 6.17 takes the cap from the entry's `optlen` field; the io-uring crate has no
/// setter for it on a receive yet, so it is written here. Earlier kernels refuse a receive
/// with the field set (EINVAL), which is how the start-up probe tells them apart.
pub fn with_total_limit(entry: squeue::Entry, limit: u32) -> squeue::Entry {
    /// Offset of the `splice_fd_in` / `file_index` / `optlen` union in `io_uring_sqe`.
    const OPTLEN: usize = 44;
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe`,
    // plain integers and unions of integers, so every bit pattern is a valid entry and the
    // two types convert both ways; bytes 44..48 are that union (kernel ABI), which a
    // receive leaves zero. `transmute` itself checks that the sizes agree.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[OPTLEN..OPTLEN + 4].copy_from_slice(&limit.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_consumed_whole_are_the_same_pool_in_4_kib_pieces() {
        let size = RingSize::default();
        assert_eq!(size.classic(16 << 10), (1024, 4096));
        assert_eq!(size.classic(1000), (1024, 1000), "never larger than --buffer");
        assert_eq!(RingSize { buffers: 1, ..size }.classic(16 << 10), (16, 4096));
        assert_eq!(RingSize { buffers: 1 << 15, ..size }.classic(16 << 10).0, 1 << 15);
    }

    #[test]
    fn every_op_survives_the_trip_through_user_data() {
        let ops = [
            Op::Accept,
            Op::Shutdown,
            Op::Timer,
            Op::CancelAll,
            Op::Recv(0),
            Op::Send(7),
            Op::Cancel(u32::MAX as usize),
        ];
        for op in ops {
            let nop = io_uring::opcode::Nop::new().build();
            // Round-trip through a real ring, so that the kernel's copy is what we decode.
            let mut ring =
                Ring::new(&RingSize { sq_entries: 2, cq_entries: 2, ..Default::default() })
                    .expect("io_uring")
                    .0;
            // SAFETY: a no-op points at no memory.
            unsafe { ring.push(nop, op) };
            ring.submit_and_wait().unwrap();
            let mut cqes = Vec::new();
            ring.reap(&mut cqes);
            assert_eq!(cqes.len(), 1);
            assert_eq!(Op::of(&cqes[0]), op);
            assert_eq!(ring.in_flight(), 0);
        }
    }
}
