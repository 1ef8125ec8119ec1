//! The conformance suite: the server contract, written once, checked against every model.
//!
//! Every echobench stream server (fork, prefork, thread, mio, poll, hybrid, reuseport, tokio,
//! uring) promises the same things: the ready line, byte-transparent echo over IPv4, IPv6 and Unix sockets,
//! half-close, bounded memory, a fair share for every client, `--max-conns` and
//! `--backlog`, TCP_NODELAY, surviving EMFILE, a clean exit on SIGINT/SIGTERM and one line
//! of error for bad input. This crate checks each promise against the real binary, from the
//! outside, the way a user would see it: it starts the server as a child process, talks to
//! it over loopback sockets and reads `/proc` to see what the server's processes cost.
//!
//! The crate has three parts:
//!
//! - [`Server`] (in `server.rs`) starts a binary, waits for its ready line on a channel
//!   (never a sleep), signals it, and kills it on drop so that a failing test leaks nothing.
//!   [`proc`] reads the server's process tree from `/proc` (descendants, threads, PSS, CPU).
//!   A few client helpers ([`connect`], [`round_trip`], [`closed_by_server`]) are exported
//!   too: each model's own smoke tests start and talk to its binary with this same harness.
//! - [`cases`]: one plain function per promise, taking the binary's path and the model's
//!   extra arguments. Each asserts something that a broken server would fail.
//! - [`datagram`]: the same for a datagram server (`echo-udp`): the ready line's `udp:`
//!   forms, every size from 0 to 65,507 bytes one for one, 100 clients each getting only its
//!   own replies, Unix datagram sockets, signals under a flood, bad input; and
//!   [`datagram_suite!`], its macro.
//! - [`conformance_suite!`] turns the cases into one `#[test]` per case, so a model's whole
//!   `tests/conformance.rs` is one line and `cargo test` lists every case by name:
//!
//! ```text
//! echobench_conformance::conformance_suite!(env!("CARGO_BIN_EXE_echo-mio"), &["--workers", "2"]);
//! ```
//!
//! (`CARGO_BIN_EXE_<name>` is only set for the tests of the package that owns the binary,
//! which is why the suite is a library that each model's test file instantiates.)
//!
//! Cases run in parallel on a busy two-core machine, so they are independent (port 0,
//! unique socket paths), bounded in time and count, and their few timing checks are set an
//! order of magnitude away from what they detect.

pub mod cases;
mod client;
pub mod datagram;
pub mod proc;
mod server;

// The client helpers the models' own tests (tests/smoke.rs) share with the cases, so that no
// model keeps a private copy of connecting, echoing or recognising a closed connection.
pub use client::{
    assert_same, closed_by_server, connect, pattern, round_trip, write_until_stalled,
};
pub use server::{Addr, Exit, Server, run_to_exit};

/// Expands to one `#[test]` per conformance case, run against `bin` with `extra` arguments
/// appended to every command line (for flags only one model has, such as `--workers 2`).
///
/// `bin` is usually `env!("CARGO_BIN_EXE_<name>")`; `extra` may be omitted.
///
/// A model that needs something the machine may not offer (io_uring, which containers often
/// forbid) adds `skip_if = PATH`, a function `fn() -> Option<String>`: each case calls it
/// first, and where it returns a reason, the case prints `skipped: REASON` and passes
/// without starting the server. The cases themselves do not change.
///
/// ```text
/// echobench_conformance::conformance_suite!(env!("CARGO_BIN_EXE_echo-uring"), &[],
///     skip_if = echobench_uring::unavailable);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($bin:expr $(,)?) => {
        $crate::conformance_suite!($bin, &[]);
    };
    ($bin:expr, $extra:expr, skip_if = $skip:path $(,)?) => {
        $crate::conformance_suite!(@list $bin, $extra, $skip);
    };
    ($bin:expr, $extra:expr $(,)?) => {
        $crate::conformance_suite!(@list $bin, $extra, $crate::never_skip);
    };
    (@list $bin:expr, $extra:expr, $skip:path) => {
        $crate::conformance_suite!(@cases $bin, $extra, $skip;
            ready_line_and_echo_over_ipv4,
            ready_line_and_echo_over_ipv6,
            ready_line_and_echo_over_unix_then_socket_file_removed,
            small_payloads_round_trip_in_order,
            binary_payload_round_trips_every_byte_value,
            large_payload_streams_back_identical,
            half_close_returns_every_byte_then_eof,
            hundreds_of_concurrent_clients,
            resetting_clients_do_not_disturb_others,
            silent_clients_do_not_delay_others,
            streaming_clients_do_not_stall_a_ping_pong_client,
            never_reading_client_keeps_memory_bounded,
            small_writes_are_not_held_back_by_nagle,
            nagle_flag_leaves_small_writes_waiting,
            max_conns_closes_extra_connections_and_counts_them,
            max_conns_frees_a_slot_when_a_client_leaves,
            max_conns_counts_only_open_connections,
            backlog_reaches_listen,
            emfile_is_survived_without_spinning,
            sigterm_with_open_connections_exits_cleanly,
            sigint_with_open_connections_exits_cleanly,
            rejects_unknown_flag,
            rejects_nonsense_addr,
            rejects_out_of_range_port,
            rejects_zero_buffer,
            rejects_zero_max_conns,
            rejects_port_in_use,
            rejects_unbindable_unix_path,
        );
    };
    (@cases $bin:expr, $extra:expr, $skip:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(reason) = $skip() {
                    eprintln!("skipped: {reason}");
                    return;
                }
                $crate::cases::$case($bin, $extra);
            }
        )*
    };
}

/// Expands to one `#[test]` per case of the datagram contract ([`datagram`]), run against
/// `bin` with `extra` arguments appended to every command line, as [`conformance_suite!`]
/// does for the stream servers. `@cases` runs a chosen few (the ones a flag such as
/// `--workers 3` could break again).
///
/// ```text
/// echobench_conformance::datagram_suite!(env!("CARGO_BIN_EXE_echo-udp"), &[]);
/// echobench_conformance::datagram_suite!(@cases env!("CARGO_BIN_EXE_echo-udp"), &["--batch", "32"];
///     every_size_comes_back_whole_one_for_one);
/// ```
#[macro_export]
macro_rules! datagram_suite {
    ($bin:expr $(,)?) => {
        $crate::datagram_suite!($bin, &[]);
    };
    ($bin:expr, $extra:expr $(,)?) => {
        $crate::datagram_suite!(@cases $bin, $extra;
            ready_line_and_echo_over_udp_ipv4,
            ready_line_and_echo_over_udp_ipv6,
            ready_line_and_echo_over_unix_datagrams_then_file_removed,
            every_size_comes_back_whole_one_for_one,
            a_datagram_too_large_to_echo_whole_is_not_echoed_cut_short,
            hundred_clients_each_get_only_their_own_replies,
            a_unix_client_that_never_reads_does_not_stall_others,
            sigterm_while_flooded_over_udp_exits_cleanly,
            sigint_while_flooded_over_udp_exits_cleanly,
            sigterm_while_flooded_over_unix_removes_the_file,
            sigint_while_flooded_over_unix_removes_the_file,
            datagram_rejects_unknown_flag,
            datagram_rejects_nonsense_addr,
            datagram_rejects_the_connection_flags,
            datagram_rejects_port_in_use,
            datagram_rejects_unbindable_unix_path,
        );
    };
    (@cases $bin:expr, $extra:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::datagram::$case($bin, $extra);
            }
        )*
    };
}

/// The skip hook of a suite that never skips (see [`conformance_suite!`]).
#[doc(hidden)]
pub fn never_skip() -> Option<String> {
    None
}
