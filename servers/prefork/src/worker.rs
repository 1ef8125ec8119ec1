//! What a pre-forked child runs: accept, serve that one connection with the blocking echo
//! loop, go back to `accept`; and keep its slot on the scoreboard true as it goes.
//!
//! Everything here runs in a child, after [`Children::spawn`](echobench_fork::Children::spawn)
//! has undone what it inherited. It never returns: it ends with `_exit`.

use std::convert::Infallible;
use std::thread;

use echobench_common::{ACCEPT_PAUSE, AcceptError, Listener, cli, echo};
use echobench_fork::exit_child;
use nix::sys::eventfd::EventFd;
use socket2::SockRef;

use crate::scoreboard::{Scoreboard, Slot, State};

/// What a child needs from its parent; all of it is the parent's memory, which the child
/// has a copy of (the board itself is shared, see `scoreboard.rs`).
#[derive(Debug)]
pub(crate) struct Worker<'a> {
    /// The listener every child blocks on, with its one-second `accept` timeout.
    pub listener: &'a Listener,
    pub board: &'a Scoreboard,
    /// This child's slot on the board.
    pub slot: usize,
    /// Written when this child takes the last idle place: the parent must fork more.
    pub wake: &'a EventFd,
    pub max_conns: usize,
    pub buffer: usize,
}

impl Worker<'_> {
    /// Serves connections one at a time until the parent retires this child (or a signal
    /// ends it).
    pub fn run(self) -> Infallible {
        let me = self.board.slot(self.slot);
        // One buffer for the child's whole life, allocated once: the parent is
        // single-threaded, so allocating in the child is safe.
        let mut buf = vec![0u8; self.buffer];
        // Starting to idle. The idle count has included this child since the fork.
        me.set(State::Idle);
        let mut reported = false;
        loop {
            let stream = match self.listener.accept() {
                Ok(stream) => stream,
                Err(err) => {
                    match AcceptError::classify(&err) {
                        // The accept timeout (SO_RCVTIMEO) ran out, or the connection died
                        // in the queue: nothing to do but look at our slot (below).
                        AcceptError::WouldBlock | AcceptError::Retry => {}
                        // Out of descriptors, or the listener is broken: pause and retry,
                        // as every model does, rather than spin or exit (the parent would
                        // only fork a replacement that fails the same way).
                        AcceptError::OutOfResources | AcceptError::Fatal => {
                            if !reported {
                                eprintln!("{}: a child cannot accept: {err}", cli::program());
                                reported = true;
                            }
                            thread::sleep(ACCEPT_PAUSE);
                        }
                    }
                    self.leave_if_retired(me);
                    continue;
                }
            };
            if !self.board.admit(self.max_conns) {
                // Over --max-conns: closed at once, so the client is not left hanging. Counted
                // first: once the client sees the close it may stop the server, and a child
                // killed between the close and the count would lose it.
                self.board.count_rejected();
                drop(stream);
                self.leave_if_retired(me);
                continue;
            }
            me.count_served();
            // Idle to busy. The idle count goes down before the state changes, so that a
            // child killed in between leaves the count too low (the safe side, see
            // `scoreboard.rs`).
            let idle_before = self.board.add_idle(-1);
            let retiring = !me.swap_if(State::Idle, State::Busy);
            if retiring {
                // The parent retired us while we were in accept, and took us out of the
                // idle count itself: undo our own decrement. The connection is ours now;
                // serve it, then leave. Busy, so that if we die meanwhile the parent still
                // frees our place under --max-conns.
                self.board.add_idle(1);
                me.set(State::Busy);
            } else if idle_before <= 1 {
                // We took the last idle place: every child is busy, and the next client
                // would wait in the backlog. Tell the parent at once. A failed write only
                // delays growth until the parent's next tick.
                let _ = self.wake.write(1);
            }

            // A TCP connection inherits the listener's receive timeout; clear it, or a
            // client that is silent for a second would have its connection closed.
            let _ = SockRef::from(&stream).set_read_timeout(None);
            let mut stream = stream;
            // A failed connection (typically reset by the client) ends only itself.
            let _ = echo::echo(&mut stream, &mut buf);

            // The books first, the close second. A client that reconnects the moment it
            // reads our FIN then finds this connection no longer counted against
            // --max-conns (and this child counted idle, so no child is forked for it).
            if retiring {
                me.set(State::Retiring);
                self.board.finish();
                drop(stream);
                exit_child(0);
            }
            me.set(State::Idle);
            self.board.add_idle(1);
            self.board.finish();
            drop(stream);
        }
    }

    /// Ends the child if the parent has retired it.
    fn leave_if_retired(&self, me: &Slot) {
        if me.state() == State::Retiring {
            exit_child(0);
        }
    }
}
