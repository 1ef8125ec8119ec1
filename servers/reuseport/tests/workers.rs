//! The conformance cases that several workers could break, run again with three: three
//! listeners in one SO_REUSEPORT group (or one Unix listener shared by three loops), and
//! one count, one limit, one descriptor table and one signal for all of them. The other
//! cases (payloads, bad input) do not depend on how many workers there are, and
//! `backlog_reaches_listen` expects one listening socket on the port, where this model has
//! one per worker: `tests/smoke.rs` checks each one's backlog instead.
echobench_conformance::conformance_suite!(@cases env!("CARGO_BIN_EXE_echo-reuseport"), &["--workers", "3"], echobench_conformance::never_skip;
    // Every listener of the group, and the shared Unix listener, serve; the group holds its
    // port against anyone else.
    ready_line_and_echo_over_ipv4,
    ready_line_and_echo_over_ipv6,
    ready_line_and_echo_over_unix_then_socket_file_removed,
    rejects_port_in_use,
    // Connections spread over three loops, each one fair to its own.
    hundreds_of_concurrent_clients,
    silent_clients_do_not_delay_others,
    streaming_clients_do_not_stall_a_ping_pong_client,
    // One count of open connections for every worker.
    max_conns_closes_extra_connections_and_counts_them,
    max_conns_frees_a_slot_when_a_client_leaves,
    max_conns_counts_only_open_connections,
    // One process's descriptors, and one shutdown, for all of them.
    emfile_is_survived_without_spinning,
    sigterm_with_open_connections_exits_cleanly,
    sigint_with_open_connections_exits_cleanly,
);
