//! Whether the run was asked to stop (Ctrl-C, or SIGTERM): one counter that the signal
//! handler ([`crate::generator::install_interrupt_handler`]) bumps and the runner and the stop
//! schedule poll.
//!
//! It is a module of its own, beneath both the generator, whose handler bumps it, and the
//! stopper, whose schedule asks it before every SIGSTOP: with the counter in generator.rs the
//! two modules referred to each other, since the handler also resumes a stopped server.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Ctrl-C presses seen so far. The handler only bumps this counter (an async-signal-safe
/// store); the runner polls it between and during points.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Whether the user pressed Ctrl-C (or the harness got SIGTERM).
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::Relaxed) > 0
}

/// Flags the run as interrupted, as Ctrl-C does (for tests and for callers that stop a run).
pub fn request_interrupt() {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
}

/// Counts one more interrupt and returns how many came before it: one atomic add, so the
/// signal handler may call it.
pub fn count() -> usize {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed)
}
