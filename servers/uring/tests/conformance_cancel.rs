//! The conformance suite again, with backpressure by cancellation (`--no-recv-limit`), the
//! path kernels before 6.17 take.
echobench_conformance::conformance_suite!(
    env!("CARGO_BIN_EXE_echo-uring"),
    &["--no-recv-limit"],
    skip_if = echobench_uring::unavailable
);
