//! The shared conformance suite (servers/conformance), run against `echo-uring`; every case
//! reports "skipped: io_uring unavailable: ..." where the kernel or a seccomp filter refuses
//! io_uring.
echobench_conformance::conformance_suite!(
    env!("CARGO_BIN_EXE_echo-uring"),
    &[],
    skip_if = echobench_uring::unavailable
);
