//! The shared conformance suite (servers/conformance), run against `echo-thread`.
echobench_conformance::conformance_suite!(env!("CARGO_BIN_EXE_echo-thread"));
