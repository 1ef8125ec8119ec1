//! The idle ballast (`--idle N`): connections opened before the run and held open and silent
//! to its end, so the server carries them while it serves the load.
//!
//! They are opened in parallel, non-blocking, from the coordinating thread: one at a time, a
//! server that accepts slowly (or a listener whose backlog is full) would cost a timeout per
//! connection, and thousands of them would keep the run from ever starting. Each attempt gets
//! `--timeout`; the whole ballast gets four times that; Ctrl-C (the [`Cancel`]) stops it at
//! once. What could not be opened is counted and described, never waited for.
//!
//! With `--idle-echo` each connection, once open, sends one message of `--size` bytes and
//! reads its echo back, checked byte for byte, before it goes quiet: an idle connection in
//! real life (a keep-alive after a request) has spoken once, and a server may keep what that
//! cost it (a read buffer, a grown task) for as long as the connection lives. The echo counts
//! within the attempt's `--timeout`; a connection whose echo fails is closed and counted as
//! not opened.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::target::{Stream, Target};
use crate::{Cancel, payload};

/// Connection attempts in progress at once: enough to fill any listen backlog, few enough
/// not to flood a SYN queue (tcp_max_syn_backlog is 2048 here).
const IN_PROGRESS: usize = 512;
/// The whole ballast may take this many `--timeout`s.
const DEADLINE_TIMEOUTS: u32 = 4;
/// How often a Unix connect refused for a full backlog (EAGAIN) is tried again.
const UNIX_RETRY: Duration = Duration::from_millis(10);
/// The payload's connection id of idle connection 0 (`--idle-echo`), the others following:
/// above every load connection's (at most 2^20 of them), within the payload's 24 bits.
const IDLE_ID_BASE: u32 = 1 << 21;

/// The idle ballast and what became of it.
#[derive(Debug, Default)]
pub struct Idle {
    pub requested: usize,
    /// The connections opened, still held.
    pub streams: Vec<Stream>,
    pub failed: usize,
    pub first_error: Option<String>,
    pub closed_by_server: usize,
    /// With `--idle-echo`: connections whose one message came back intact before they went
    /// quiet (every one in `streams`).
    pub echoed: usize,
}

/// One connection being opened.
#[derive(Debug)]
struct Attempt {
    /// `None` while a Unix connect waits to be retried.
    stream: Option<Stream>,
    since: Instant,
    retry_at: Instant,
    /// `--idle-echo`: the message under way once the connection is open.
    echo: Option<Echo>,
}

/// One idle connection's message and how far its echo has come.
#[derive(Debug)]
struct Echo {
    /// The message's payload id (`payload::fill`), distinct per idle connection.
    id: u32,
    size: usize,
    /// Whether the connection is open and registered for both directions.
    begun: bool,
    written: usize,
    read: usize,
}

/// Opens `count` silent connections to `target`; with `echo` (a message size), each sends
/// one message of that size and reads its echo before it goes quiet.
pub fn open(
    target: &Target,
    count: usize,
    echo: Option<usize>,
    timeout: Duration,
    cancel: &Cancel,
) -> Idle {
    let mut idle = Idle { requested: count, ..Idle::default() };
    if count == 0 {
        return idle;
    }
    let mut poll = match Poll::new() {
        Ok(poll) => poll,
        Err(err) => {
            idle.fail(count, || {
                format!("idle connections: cannot create an epoll instance: {err}")
            });
            return idle;
        }
    };
    let began = Instant::now();
    let deadline = began.checked_add(timeout.saturating_mul(DEADLINE_TIMEOUTS)).unwrap_or(began);
    let mut slots: Vec<Option<Attempt>> = (0..IN_PROGRESS.min(count)).map(|_| None).collect();
    let mut started = 0;
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        let in_progress = slots.iter().filter(|s| s.is_some()).count();
        let why = if cancel.is_cancelled() {
            Some("the run was cancelled")
        } else if now >= deadline {
            Some("the ballast was not open in time")
        } else {
            None
        };
        if let Some(why) = why {
            let left = count - started + in_progress;
            idle.fail(left, || format!("{left} idle connections to {target} not opened: {why}"));
            return idle;
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_none() && started < count {
                let echo = echo.map(|size| Echo {
                    id: IDLE_ID_BASE + started as u32,
                    size,
                    begun: false,
                    written: 0,
                    read: 0,
                });
                started += 1;
                *slot = Some(Attempt { stream: None, since: now, retry_at: now, echo });
            }
            let Some(attempt) = slot.as_mut() else { continue };
            if now.duration_since(attempt.since) > timeout {
                let what = match &attempt.echo {
                    Some(e) if e.begun => "no whole echo of its message within --timeout",
                    _ => "connection timed out",
                };
                *slot = None;
                idle.fail(1, || format!("idle connection to {target}: {what}"));
                continue;
            }
            if attempt.stream.is_some() || now < attempt.retry_at {
                continue;
            }
            match start(target, &poll, i) {
                Ok(Begun::Open(stream)) => {
                    attempt.stream = Some(stream);
                    settle(slot, &poll, i, &mut idle, target);
                }
                Ok(Begun::Connecting(stream)) => attempt.stream = Some(stream),
                Ok(Begun::Wait) => attempt.retry_at = now + UNIX_RETRY,
                Err(err) => {
                    *slot = None;
                    idle.fail(1, || format!("idle connection to {target}: {err}"));
                }
            }
        }
        if started == count && slots.iter().all(Option::is_none) {
            return idle;
        }
        let wait = deadline.saturating_duration_since(now).min(Duration::from_millis(50));
        let wait = if slots.iter().flatten().any(|a| a.stream.is_none()) {
            wait.min(UNIX_RETRY)
        } else {
            wait
        };
        if let Err(err) = poll.poll(&mut events, Some(wait))
            && err.kind() != io::ErrorKind::Interrupted
        {
            let left = count - started + slots.iter().flatten().count();
            idle.fail(left, || format!("idle connections: epoll_wait failed: {err}"));
            return idle;
        }
        for event in &events {
            let i = event.token().0;
            let Some(slot) = slots.get_mut(i) else { continue };
            let result = match slot.as_ref() {
                Some(Attempt { echo: Some(e), .. }) if e.begun => Ok(true),
                Some(Attempt { stream: Some(stream), .. }) => stream.finish_connect(),
                _ => continue,
            };
            match result {
                Ok(true) => settle(slot, &poll, i, &mut idle, target),
                Ok(false) => {} // spurious: still connecting
                Err(err) => {
                    *slot = None;
                    idle.fail(1, || format!("idle connection to {target}: {err}"));
                }
            }
        }
    }
}

/// Moves an open connection on: with no message to echo (or its echo complete) it joins the
/// ballast, silent from now on; otherwise its message is written and its echo read as far as
/// the socket allows, and the slot waits for the next event. A failed echo frees the slot.
fn settle(slot: &mut Option<Attempt>, poll: &Poll, token: usize, idle: &mut Idle, target: &Target) {
    let Some(attempt) = slot.as_mut() else { return };
    let Some(stream) = attempt.stream.as_mut() else { return };
    if let Some(echo) = attempt.echo.as_mut() {
        // A Unix stream arrives open and unregistered; a TCP one is registered for its
        // connect. Either way the echo needs both directions from here on.
        let registry = poll.registry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = if !echo.begun {
            echo.begun = true;
            match stream {
                Stream::Unix(_) => registry.register(stream, Token(token), interest),
                Stream::Tcp(_) => registry.reregister(stream, Token(token), interest),
            }
        } else {
            Ok(())
        };
        match registered.and_then(|()| echo.advance(stream)) {
            Ok(false) => return,
            Ok(true) => idle.echoed += 1,
            Err(err) => {
                *slot = None;
                idle.fail(1, || format!("idle connection to {target}: its one message: {err}"));
                return;
            }
        }
    }
    if let Some(mut stream) = slot.take().and_then(|a| a.stream) {
        // Silent from now on: its later events (a close) need not wake us.
        let _ = poll.registry().deregister(&mut stream);
        idle.streams.push(stream);
    }
}

impl Echo {
    /// Writes what is left of the message and reads what has come back of its echo, each
    /// until the socket would block; checks every byte read. `Ok(true)` once the whole echo
    /// is back.
    fn advance(&mut self, stream: &mut Stream) -> io::Result<bool> {
        let mut message = vec![0; self.size];
        payload::fill(self.id, 0, &mut message);
        while self.written < self.size {
            match stream.write(&message[self.written..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let mut buf = [0u8; 4096];
        // One byte more than the message may hold is read too: an echo longer than what was
        // sent is as wrong as a short one.
        while self.read <= self.size {
            match stream.read(&mut buf) {
                Ok(0) => {
                    let msg = "the server closed the connection before the whole echo came back";
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
                }
                Ok(n) => {
                    let got = &buf[..n];
                    if self.read + n > self.size
                        || !payload::matches(self.id, 0, self.size, self.read, got)
                    {
                        let msg = "the echo differed from what was sent";
                        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                    }
                    self.read += n;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(self.read == self.size)
    }
}

/// How a connection attempt began.
#[derive(Debug)]
enum Begun {
    /// Connected already (a Unix connect completes once the listener's backlog takes it).
    Open(Stream),
    /// In progress: the writable event that ends it will come to this slot's token.
    Connecting(Stream),
    /// A Unix listener's backlog is full (EAGAIN): not an error yet, only a wait.
    Wait,
}

/// Starts one non-blocking connect.
fn start(target: &Target, poll: &Poll, slot: usize) -> io::Result<Begun> {
    match target.connect(None) {
        Ok(stream @ Stream::Unix(_)) => Ok(Begun::Open(stream)),
        Ok(mut stream) => {
            poll.registry().register(&mut stream, Token(slot), Interest::WRITABLE)?;
            Ok(Begun::Connecting(stream))
        }
        Err(err)
            if matches!(target, Target::Unix(_)) && err.kind() == io::ErrorKind::WouldBlock =>
        {
            Ok(Begun::Wait)
        }
        Err(err) => Err(err),
    }
}

impl Idle {
    fn fail(&mut self, count: usize, describe: impl FnOnce() -> String) {
        self.failed += count;
        if count > 0 && self.first_error.is_none() {
            self.first_error = Some(describe());
        }
    }
}
