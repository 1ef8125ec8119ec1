//! The shared conformance suite (servers/conformance), run against `echo-tokio`.
echobench_conformance::conformance_suite!(env!("CARGO_BIN_EXE_echo-tokio"));
