//! The scoreboard: a page of memory that the parent and every child share, one slot per
//! child, as in Apache's prefork MPM.
//!
//! It is an anonymous `MAP_SHARED` mapping, made before the first fork. An ordinary
//! allocation would be copied on write into each child; a shared mapping stays one set of
//! pages, so a store by one process is seen by all. Every field is an atomic, which on
//! x86-64 and AArch64 is lock-free and works between processes as between threads: there is
//! no lock to be left held by a child that dies.
//!
//! What the board holds, and who writes it:
//!
//! - Per child, a [`Slot`]: its [`State`] and how many connections it served. The parent
//!   writes a slot when it forks a child into it and reads it when it reaps that child;
//!   in between the child writes it, and the parent may only move it from idle to
//!   retiring (a compare-and-swap, so that it never races a child taking a connection).
//! - Two counts that the children keep as they change state, so that no one has to scan
//!   every slot: `idle`, children waiting in `accept` or about to be, and `busy`,
//!   connections being served, which is what `--max-conns` bounds. And `rejected`,
//!   connections turned away over the limit.
//!
//! The counts are signed on purpose. A child that is killed between two of its writes
//! (only a signal from outside can stop it there) leaves a count off by one, and each
//! state change orders its writes so that the error falls on the safe side: `busy` one too
//! high (one connection fewer admitted) or `idle` one too low (one child more forked),
//! never a pool that believes it has an idle child that does not exist, which would leave
//! a client waiting.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::SeqCst};

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};

/// What a slot's child is doing. Stored as a `u32` in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// No child: the slot is free for the next fork.
    Free = 0,
    /// Forked, not yet in `accept`. Counted as idle: it will be there in a moment.
    Starting = 1,
    /// In `accept`, or between connections on its way back there.
    Idle = 2,
    /// Serving a connection.
    Busy = 3,
    /// Told by the parent to leave: it exits when its `accept` next returns (after serving
    /// the connection, if it returned one). Counted nowhere.
    Retiring = 4,
}

impl State {
    fn from_u32(value: u32) -> State {
        match value {
            1 => State::Starting,
            2 => State::Idle,
            3 => State::Busy,
            4 => State::Retiring,
            _ => State::Free,
        }
    }
}

/// One child's place on the board.
#[derive(Debug)]
#[repr(C)]
pub struct Slot {
    state: AtomicU32,
    /// Connections this child admitted, for the spread printed at exit.
    served: AtomicU64,
}

impl Slot {
    /// The child's state.
    pub fn state(&self) -> State {
        State::from_u32(self.state.load(SeqCst))
    }

    /// Sets the state (each transition's caller says why it may).
    pub fn set(&self, state: State) {
        self.state.store(state as u32, SeqCst);
    }

    /// Moves the state from `from` to `to` if it is still `from`; true if it did.
    pub fn swap_if(&self, from: State, to: State) -> bool {
        self.state.compare_exchange(from as u32, to as u32, SeqCst, SeqCst).is_ok()
    }

    /// Connections this child has admitted so far.
    pub fn served(&self) -> u64 {
        self.served.load(SeqCst)
    }

    /// Counts one more admitted connection.
    pub fn count_served(&self) {
        self.served.fetch_add(1, SeqCst);
    }

    /// Makes the slot ready for a new child: starting, nothing served.
    pub fn reset(&self) {
        self.served.store(0, SeqCst);
        self.set(State::Starting);
    }
}

/// The counts at the top of the board.
#[derive(Debug)]
#[repr(C)]
struct Header {
    /// Children starting or idle.
    idle: AtomicI64,
    /// Connections admitted and not yet finished.
    busy: AtomicI64,
    /// Connections accepted and closed at once over `--max-conns`.
    rejected: AtomicU64,
}

/// The shared mapping: a [`Header`], then the slots.
#[derive(Debug)]
pub struct Scoreboard {
    base: NonNull<Header>,
    slots: usize,
    bytes: usize,
}

impl Scoreboard {
    /// Maps a zeroed board with room for `slots` children (every slot free, every count 0).
    pub fn new(slots: usize) -> io::Result<Scoreboard> {
        let bytes = size_of::<Header>() + slots * size_of::<Slot>();
        let length = NonZeroUsize::new(bytes).expect("the header alone is not empty");
        // SAFETY: a fresh anonymous mapping aliases nothing. The kernel fills it with zeros,
        // which is a valid value for every atomic in it: all slots `Free`, all counts 0.
        // Pages that are never touched (slots of children never forked) cost nothing.
        let base = unsafe {
            mmap_anonymous(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(Scoreboard { base: base.cast(), slots, bytes })
    }

    fn header(&self) -> &Header {
        // SAFETY: `base` points at a live mapping at least as long as the header, page
        // aligned (so aligned for it), and only ever accessed through atomics.
        unsafe { self.base.as_ref() }
    }

    /// The slot at `index`.
    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < self.slots, "slot {index} of {}", self.slots);
        // SAFETY: the slots follow the header in the mapping, which has room for
        // `self.slots` of them; `Header` and `Slot` are both 8-byte aligned and sized in
        // multiples of 8, so each slot is aligned. Access is through atomics only.
        unsafe { &*self.base.as_ptr().add(1).cast::<Slot>().add(index) }
    }

    /// How many slots the board has: the most children the pool may have at once.
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Children starting or idle. At or below 0, every child is busy.
    pub fn idle(&self) -> i64 {
        self.header().idle.load(SeqCst)
    }

    /// Adds `delta` to the idle count and returns the count from before.
    pub fn add_idle(&self, delta: i64) -> i64 {
        self.header().idle.fetch_add(delta, SeqCst)
    }

    /// Admits one connection if fewer than `max_conns` are being served, counting it busy.
    /// This is `--max-conns`: one atomic check-and-add shared by every child, so that two
    /// children accepting at the same moment cannot both take the last place.
    pub fn admit(&self, max_conns: usize) -> bool {
        let max = i64::try_from(max_conns).unwrap_or(i64::MAX);
        let busy = &self.header().busy;
        busy.fetch_update(SeqCst, SeqCst, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// Counts one admitted connection as finished.
    pub fn finish(&self) {
        self.header().busy.fetch_sub(1, SeqCst);
    }

    /// Counts one connection turned away over `--max-conns`.
    pub fn count_rejected(&self) {
        self.header().rejected.fetch_add(1, SeqCst);
    }

    /// Connections turned away so far.
    pub fn rejected(&self) -> u64 {
        self.header().rejected.load(SeqCst)
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // Only the parent drops the board (a child ends with `_exit`), after every child
        // has been reaped. Unmapping our view leaves any other process's view alone.
        // SAFETY: `base` and `bytes` are exactly what mmap returned and was asked for, and
        // no reference into the mapping outlives `self`.
        let _ = unsafe { munmap(self.base.cast(), self.bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_board_is_all_free_and_admits_up_to_the_limit() {
        let board = Scoreboard::new(3).unwrap();
        assert!((0..3).all(|i| board.slot(i).state() == State::Free));
        assert_eq!(board.idle(), 0);
        assert!(board.admit(2) && board.admit(2));
        assert!(!board.admit(2), "a third connection over --max-conns 2");
        board.finish();
        assert!(board.admit(2), "a finished connection frees its place");
    }

    #[test]
    fn only_an_idle_child_can_be_retired() {
        let board = Scoreboard::new(1).unwrap();
        let slot = board.slot(0);
        slot.reset();
        assert!(!slot.swap_if(State::Idle, State::Retiring), "a starting child is not idle");
        slot.set(State::Idle);
        assert!(slot.swap_if(State::Idle, State::Retiring));
        assert!(!slot.swap_if(State::Idle, State::Busy), "a retiring child stays retiring");
        assert_eq!(slot.state(), State::Retiring);
    }
}
