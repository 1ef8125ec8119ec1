//! The shared conformance suite (servers/conformance), run against `echo-hybrid`.
//!
//! Two workers, so that connections really are spread over more than one event loop even
//! on a machine with one CPU.
echobench_conformance::conformance_suite!(env!("CARGO_BIN_EXE_echo-hybrid"), &["--workers", "2"]);
