//! Command lines a server must refuse: non-zero exit, exactly one line on stderr, no panic,
//! nothing on stdout (which a parent reads for the ready line), and no hang.

use std::net::TcpListener;

use crate::{Exit, run_to_exit};

/// An unknown flag.
pub fn rejects_unknown_flag(bin: &str, extra: &[&str]) {
    refused(bin, &[&["--addr", "127.0.0.1:0", "--no-such-flag"], extra].concat());
}

/// An address that does not parse.
pub fn rejects_nonsense_addr(bin: &str, extra: &[&str]) {
    refused(bin, &[&["--addr", "nonsense"], extra].concat());
}

/// A port beyond 65535.
pub fn rejects_out_of_range_port(bin: &str, extra: &[&str]) {
    refused(bin, &[&["--addr", "127.0.0.1:99999"], extra].concat());
}

/// A zero-byte buffer, which could never echo anything.
pub fn rejects_zero_buffer(bin: &str, extra: &[&str]) {
    refused(bin, &[&["--addr", "127.0.0.1:0", "--buffer", "0"], extra].concat());
}

/// `--max-conns 0`, which would refuse every client.
pub fn rejects_zero_max_conns(bin: &str, extra: &[&str]) {
    refused(bin, &[&["--addr", "127.0.0.1:0", "--max-conns", "0"], extra].concat());
}

/// A port another socket is listening on; the line names the address that failed.
pub fn rejects_port_in_use(bin: &str, extra: &[&str]) {
    // Ours stays bound (and listening) until the server has given up.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let exit = refused(bin, &[&["--addr", addr.as_str()], extra].concat());
    let port = addr.rsplit(':').next().unwrap();
    assert!(exit.stderr.contains(port), "the error should name port {port}: {:?}", exit.stderr);
    drop(taken);
}

/// A Unix socket path in a directory that does not exist; the line names the path.
pub fn rejects_unbindable_unix_path(bin: &str, extra: &[&str]) {
    let path = "/nonexistent/dir/x.sock";
    let exit = refused(bin, &[&["--unix", path], extra].concat());
    assert!(exit.stderr.contains(path), "the error should name {path}: {:?}", exit.stderr);
}

/// Runs `bin` with `args` and asserts that it refused them properly: a non-zero exit that is
/// not a crash, exactly one line on stderr, nothing on stdout. Returns the [`Exit`] so that a
/// caller can check more (the exact status, what the line names). Public for the models' own
/// smoke tests, which refuse their model-specific flags the same way; the suite's macro
/// only instantiates the cases it names, so this is not run as a case of its own.
pub fn refused(bin: &str, args: &[&str]) -> Exit {
    let exit = run_to_exit(bin, args);
    // `code()` is None when a signal ended the process: a crash (an abort, a segfault) is no
    // way to refuse input either.
    assert!(
        matches!(exit.status.code(), Some(code) if code != 0),
        "{args:?}: expected a non-zero exit status, got {:?}; stderr: {:?}",
        exit.status,
        exit.stderr
    );
    assert!(!exit.stderr.contains("panicked"), "{args:?}: the server panicked: {:?}", exit.stderr);
    assert!(exit.stdout.is_empty(), "{args:?}: nothing belongs on stdout, got {:?}", exit.stdout);
    let lines: Vec<&str> = exit.stderr.lines().collect();
    assert!(
        lines.len() == 1 && !lines[0].trim().is_empty() && exit.stderr.ends_with('\n'),
        "{args:?}: stderr should be exactly one line, got {:?}",
        exit.stderr
    );
    exit
}
