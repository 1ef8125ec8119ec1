//! The datagram conformance suite (servers/conformance, `datagram`), run against `echo-udp`
//! as a user starts it: one worker, one datagram per system call.
echobench_conformance::datagram_suite!(env!("CARGO_BIN_EXE_echo-udp"), &[]);
