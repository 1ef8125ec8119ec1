//! The provided-buffer ring: a pool of receive buffers that the kernel picks from itself.
//!
//! A multishot receive is armed with no buffer. When bytes arrive, the kernel takes the next
//! buffer from this ring, copies the bytes into it, and posts a completion that names the
//! buffer (its *buffer id*). From then on the buffer is ours: the kernel will not touch it
//! again until we hand it back by writing its address into the ring and moving the ring's
//! tail. So ownership moves in a circle: the kernel owns every buffer in the ring, the loop
//! owns a buffer from its completion until [`BufRing::recycle`], and the memory itself may
//! only be freed once the ring is unregistered and no receive can pick a buffer any more.
//!
//! The ring is two allocations. The *entries* (16 bytes each: address, length, id) are
//! shared with the kernel, page-aligned as it requires; the 16-bit tail, which only we
//! write, lives in the first entry's reserved field. The *pool* is `count` buffers of `size`
//! bytes, touched once at start-up: the kernel hands buffers out in ring order, so in a
//! long run every buffer is used, and touching them first makes the server's memory a fixed
//! figure from the start instead of one that creeps up as the ring turns. For the same
//! reason the pool asks for huge pages: in ring order, each receive lands on a different
//! 4 KiB page, and with a thousand connections busy that is a TLB miss per message (costly
//! in a virtual machine, where a miss walks two page tables); two 2 MiB pages cover it all.
//!
//! # Incremental consumption (Linux 6.12)
//!
//! A classic ring gives each receive a whole buffer, however few bytes it carries, so the
//! buffer size is a trade: small buffers waste no memory on 64-byte messages, but cut a
//! big message into many receives, each a trip through the TCP stack and a completion, and
//! each echoed as a send of its own. With 4 KiB buffers a 64 KiB message took 16 receives
//! and about 12 sends here, against about 4 reads and 4 writes for the mio model's 16 KiB
//! scratch buffer, and cost about twice its CPU (see *Big messages* in `lib.rs`).
//!
//! Registered with `IOU_PBUF_RING_INC`, the kernel instead fills a buffer piece by piece:
//! each receive takes only the bytes it carries from the buffer at the head of the ring,
//! and the next receive, on whichever connection, continues where it stopped. A completion
//! flagged `IORING_CQE_F_BUF_MORE` means the kernel keeps the buffer for more; one without
//! it means the buffer is full and ours. So the pool can hold few, large buffers (64 of 64
//! KiB, the same 4 MiB): a big message arrives in receives as large as `--buffer` allows,
//! and a thousand 64-byte messages share one buffer. The loop copies every receive out at
//! once, so it only has to remember where in each buffer the kernel will write next
//! (`offsets`), and recycle a buffer when a completion without `BUF_MORE` names it.
//! Kernels without the flag refuse it (EINVAL), and the worker falls back to 4 KiB buffers
//! consumed whole.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

/// The pool's alignment: a transparent huge page on x86-64, so that the pool can be backed
/// by a few of them.
const HUGE_PAGE: usize = 2 << 20;

/// The buffer group id of the one ring each worker registers; receives name it.
pub const GROUP: u16 = 0;

/// `IOU_PBUF_RING_INC`: the kernel consumes each buffer incrementally (Linux 6.12).
const INCREMENTAL: u16 = 2;

/// A registered ring of provided buffers.
#[derive(Debug)]
pub struct BufRing {
    /// `count` entries shared with the kernel.
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    /// `count * size` bytes. A raw pointer, not a `Vec`: the kernel writes into it behind
    /// Rust's back, so no `&mut` to it may exist while the ring is registered.
    pool: NonNull<u8>,
    pool_layout: Layout,
    size: usize,
    count: u16,
    /// The next tail to publish; the kernel sees it only at [`BufRing::commit`].
    tail: u16,
    /// Registered with a ring and not yet unregistered: the memory must not be freed.
    registered: bool,
    /// Registered for incremental consumption: for each buffer, the offset at which the
    /// kernel writes the next receive. Empty for a classic ring, whose receives all start
    /// at a buffer's beginning.
    offsets: Vec<u32>,
}

impl BufRing {
    /// Allocates `count` buffers of `size` bytes (`count` a power of two, at most 32,768),
    /// puts them all in the ring and registers it with `ring` as group [`GROUP`], for
    /// incremental consumption if `incremental` (a kernel without it refuses: EINVAL).
    pub fn register(
        ring: &IoUring,
        count: u16,
        size: usize,
        incremental: bool,
    ) -> io::Result<BufRing> {
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        if !count.is_power_of_two() || count > 1 << 15 {
            return Err(invalid("the buffer count must be a power of two up to 32768"));
        }
        if size == 0 || u32::try_from(size).is_err() {
            return Err(invalid("a buffer must hold 1 byte to 4 GiB"));
        }
        let entries_layout = Layout::array::<BufRingEntry>(usize::from(count))
            .and_then(|layout| layout.align_to(4096))
            .map_err(|_| invalid("buffer ring too large"))?;
        let pool_layout = Layout::from_size_align(usize::from(count) * size, HUGE_PAGE)
            .map_err(|_| invalid("buffer pool too large"))?;
        // SAFETY: both layouts have a non-zero size (count and size are at least 1).
        let (entries, pool) =
            unsafe { (alloc::alloc_zeroed(entries_layout), alloc::alloc(pool_layout)) };
        let (Some(entries), Some(pool)) = (NonNull::new(entries), NonNull::new(pool)) else {
            alloc::handle_alloc_error(entries_layout);
        };
        // Huge pages where the kernel offers them (see the module comment). Only a hint:
        // without them the pool works the same, a little slower.
        // SAFETY: madvise only changes how the kernel backs our own, aligned allocation.
        unsafe { libc::madvise(pool.as_ptr().cast(), pool_layout.size(), libc::MADV_HUGEPAGE) };
        // Touch every page of the pool now (see the module comment).
        // SAFETY: `pool` points at `pool_layout.size()` freshly allocated bytes.
        unsafe { pool.as_ptr().write_bytes(0, pool_layout.size()) };
        let mut ring_buffers = BufRing {
            entries: entries.cast(),
            entries_layout,
            pool,
            pool_layout,
            size,
            count,
            tail: 0,
            registered: false,
            offsets: if incremental { vec![0; usize::from(count)] } else { Vec::new() },
        };
        for bid in 0..count {
            ring_buffers.recycle(bid);
        }
        ring_buffers.commit();
        // SAFETY: the entries stay allocated, at this address, until `unregister` (or the
        // ring's own teardown); Drop frees them only after a successful unregister.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                ring_buffers.entries.as_ptr() as u64,
                count,
                GROUP,
                if incremental { INCREMENTAL } else { 0 },
            )?;
        }
        ring_buffers.registered = true;
        Ok(ring_buffers)
    }

    /// The size of each buffer: the most one receive completion can carry.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the kernel consumes the buffers incrementally.
    pub fn incremental(&self) -> bool {
        !self.offsets.is_empty()
    }

    /// The `len` bytes that a completion has just put in buffer `bid`: at its beginning in
    /// a classic ring, where the last receive into it stopped in an incremental one.
    ///
    /// # Safety
    ///
    /// `bid` must have been named by a completion that is being handled now and not yet
    /// passed to [`BufRing::consumed`], so that the kernel is not writing into these bytes;
    /// the slice must be dropped before that call.
    pub unsafe fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let offset = self.offsets.get(usize::from(bid)).map_or(0, |&offset| offset as usize);
        assert!(bid < self.count && offset + len <= self.size, "buffer {bid}: {offset}+{len}");
        // SAFETY: in bounds (checked above); the caller guarantees the kernel is done with
        // these bytes (it writes an incremental buffer only past them).
        unsafe {
            let start = self.pool.as_ptr().add(usize::from(bid) * self.size + offset);
            std::slice::from_raw_parts(start, len)
        }
    }

    /// Handles a completion that named buffer `bid` with result `res` and completion
    /// `flags`, once its bytes have been copied out: the buffer goes back to the kernel if
    /// the kernel is done with it. A classic buffer always is. An incremental one is when
    /// the completion lacks `BUF_MORE` and carried bytes; a completion of no bytes (end of
    /// file, an error) consumed nothing, and the kernel keeps the buffer at the head of
    /// the ring, so recycling it would put it in the ring twice.
    pub fn consumed(&mut self, bid: u16, res: i32, flags: u32) {
        let Some(offset) = self.offsets.get_mut(usize::from(bid)) else {
            return self.recycle(bid);
        };
        if res <= 0 {
            return;
        }
        *offset += res as u32;
        if !io_uring::cqueue::buffer_more(flags) {
            *offset = 0;
            self.recycle(bid);
        }
    }

    /// Gives buffer `bid` back to the kernel. It becomes visible at the next [`commit`], so
    /// a batch of completions costs one store to the shared tail, not one per buffer.
    ///
    /// [`commit`]: BufRing::commit
    fn recycle(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` < count, inside the entries allocation. The kernel reads entries only
        // between its head and the published tail, and this slot is past the tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        // SAFETY: bid < count, so the buffer lies inside the pool.
        let addr = unsafe { self.pool.as_ptr().add(usize::from(bid) * self.size) };
        entry.set_addr(addr as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes every buffer recycled since the last commit.
    pub fn commit(&self) {
        // SAFETY: the tail field lies in the first entry, inside our allocation; the kernel
        // only reads it. A release store makes the entries written before it visible first.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Unregisters the ring from `ring`, after which the kernel cannot pick a buffer again
    /// and the memory may be freed. Call it only once nothing that can receive is in flight.
    pub fn unregister(&mut self, ring: &IoUring) -> io::Result<()> {
        if self.registered {
            ring.submitter().unregister_buf_ring(GROUP)?;
            self.registered = false;
        }
        Ok(())
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.registered {
            // Still registered: a request might still pick a buffer, so the memory is left
            // to the process rather than freed under the kernel. (Only a shutdown that timed
            // out waiting for its completions gets here; the process is about to exit.)
            return;
        }
        // SAFETY: allocated in `register` with exactly these layouts, and no longer shared.
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            alloc::dealloc(self.pool.as_ptr(), self.pool_layout);
        }
    }
}
