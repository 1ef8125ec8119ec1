//! The conformance suite again, with backpressure by cancellation (`--no-recv-limit`) and
//! provided buffers consumed whole (`--no-incremental-buffers`): the paths kernels before
//! 6.17 and 6.12 take.
echobench_conformance::conformance_suite!(
    env!("CARGO_BIN_EXE_echo-uring"),
    &["--no-recv-limit", "--no-incremental-buffers"],
    skip_if = echobench_uring::unavailable
);
