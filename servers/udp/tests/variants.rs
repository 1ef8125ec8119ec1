//! The datagram cases that several workers or batches could break, run again: `--workers 3`
//! (three sockets in one SO_REUSEPORT group over UDP, one socket shared by three threads over
//! a Unix path) and `--batch 32` (recvmmsg and sendmmsg, with the K-slot headers reused from
//! call to call). Bad input does not depend on either.

mod workers {
    echobench_conformance::datagram_suite!(@cases env!("CARGO_BIN_EXE_echo-udp"), &["--workers", "3"];
        ready_line_and_echo_over_udp_ipv4,
        ready_line_and_echo_over_udp_ipv6,
        ready_line_and_echo_over_unix_datagrams_then_file_removed,
        every_size_comes_back_whole_one_for_one,
        hundred_clients_each_get_only_their_own_replies,
        a_unix_client_that_never_reads_does_not_stall_others,
        sigterm_while_flooded_over_udp_exits_cleanly,
        sigint_while_flooded_over_unix_removes_the_file,
        datagram_rejects_port_in_use,
    );
}

mod batch {
    echobench_conformance::datagram_suite!(@cases env!("CARGO_BIN_EXE_echo-udp"), &["--batch", "32"];
        ready_line_and_echo_over_udp_ipv4,
        ready_line_and_echo_over_udp_ipv6,
        ready_line_and_echo_over_unix_datagrams_then_file_removed,
        every_size_comes_back_whole_one_for_one,
        a_datagram_too_large_to_echo_whole_is_not_echoed_cut_short,
        hundred_clients_each_get_only_their_own_replies,
        a_unix_client_that_never_reads_does_not_stall_others,
        sigterm_while_flooded_over_udp_exits_cleanly,
        sigint_while_flooded_over_unix_removes_the_file,
    );
}
