//! The idle ballast (`--idle N`): connections opened before the run and held open and silent
//! to its end, so the server carries them while it serves the load.
//!
//! They are opened in parallel, non-blocking, from the coordinating thread: one at a time, a
//! server that accepts slowly (or a listener whose backlog is full) would cost a timeout per
//! connection, and thousands of them would keep the run from ever starting. Each attempt gets
//! `--timeout`; the whole ballast gets four times that; Ctrl-C (the [`Cancel`]) stops it at
//! once. What could not be opened is counted and described, never waited for.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::Cancel;
use crate::target::{Stream, Target};

/// Connection attempts in progress at once: enough to fill any listen backlog, few enough
/// not to flood a SYN queue (tcp_max_syn_backlog is 2048 here).
const IN_PROGRESS: usize = 512;
/// The whole ballast may take this many `--timeout`s.
const DEADLINE_TIMEOUTS: u32 = 4;
/// How often a Unix connect refused for a full backlog (EAGAIN) is tried again.
const UNIX_RETRY: Duration = Duration::from_millis(10);

/// The idle ballast and what became of it.
#[derive(Debug, Default)]
pub struct Idle {
    pub requested: usize,
    /// The connections opened, still held.
    pub streams: Vec<Stream>,
    pub failed: usize,
    pub first_error: Option<String>,
    pub closed_by_server: usize,
}

/// One connection being opened.
#[derive(Debug)]
struct Attempt {
    /// `None` while a Unix connect waits to be retried.
    stream: Option<Stream>,
    since: Instant,
    retry_at: Instant,
}

/// Opens `count` silent connections to `target`.
pub fn open(target: &Target, count: usize, timeout: Duration, cancel: &Cancel) -> Idle {
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
                started += 1;
                *slot = Some(Attempt { stream: None, since: now, retry_at: now });
            }
            let Some(attempt) = slot.as_mut() else { continue };
            if now.duration_since(attempt.since) > timeout {
                *slot = None;
                idle.fail(1, || format!("idle connection to {target}: connection timed out"));
                continue;
            }
            if attempt.stream.is_some() || now < attempt.retry_at {
                continue;
            }
            match start(target, &poll, i) {
                Ok(Begun::Open(stream)) => {
                    *slot = None;
                    idle.streams.push(stream);
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
            let Some(slot) = slots.get_mut(event.token().0) else { continue };
            let result = match slot.as_ref().and_then(|a| a.stream.as_ref()) {
                Some(stream) => stream.finish_connect(),
                None => continue,
            };
            match result {
                Ok(true) => {
                    if let Some(mut stream) = slot.take().and_then(|a| a.stream) {
                        // Silent from now on: its later events (a close) need not wake us.
                        let _ = poll.registry().deregister(&mut stream);
                        idle.streams.push(stream);
                    }
                }
                Ok(false) => {} // spurious: still connecting
                Err(err) => {
                    *slot = None;
                    idle.fail(1, || format!("idle connection to {target}: {err}"));
                }
            }
        }
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
