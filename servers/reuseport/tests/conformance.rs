//! The shared conformance suite (servers/conformance), run against `echo-reuseport`.
//!
//! With one worker, because the case `backlog_reaches_listen` expects `ss` to list exactly
//! one listening socket on the port, and this model listens with one socket per worker.
//! `tests/workers.rs` runs the cases that several workers could break again with three,
//! and `tests/smoke.rs` checks the backlog of each of several listeners.
echobench_conformance::conformance_suite!(
    env!("CARGO_BIN_EXE_echo-reuseport"),
    &["--workers", "1"]
);
