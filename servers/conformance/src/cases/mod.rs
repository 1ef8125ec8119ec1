//! The cases: one public function per promise of the server contract.
//!
//! Every case takes the server binary's path and the model's extra arguments (appended to
//! every command line it runs), starts its own server on a free port or a unique socket path,
//! and asserts something a broken server would fail. Cases share nothing, so libtest can run
//! them in parallel. [`crate::conformance_suite!`] turns each into a `#[test]`.
//!
//! | file | promises |
//! |---|---|
//! | `addresses.rs` | the ready line and echo over IPv4, IPv6 and Unix sockets |
//! | `payloads.rs` | byte-transparent echo: small, binary, multi-megabyte; half-close |
//! | `clients.rs` | many clients, resetting, silent and never-reading clients, TCP_NODELAY |
//! | `limits.rs` | `--max-conns`, and running out of file descriptors (EMFILE) |
//! | `signals.rs` | SIGTERM and SIGINT with open connections |
//! | `bad_input.rs` | refusing bad command lines with one line on stderr |

mod addresses;
mod bad_input;
mod clients;
mod limits;
mod payloads;
mod signals;

pub use addresses::*;
pub use bad_input::*;
pub use clients::*;
pub use limits::*;
pub use payloads::*;
pub use signals::*;

use crate::Server;

/// Starts `bin` on a free IPv4 loopback port, with the case's `args` and the model's `extra`.
fn start_tcp(bin: &str, extra: &[&str], args: &[&str]) -> Server {
    Server::start(bin, &[&["--addr", "127.0.0.1:0"], args, extra].concat())
}
