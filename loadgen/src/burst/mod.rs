//! `--burst N`: N connections opened at once, one message each, to see what a server's
//! listen backlog does with a crowd.
//!
//! Every connect is started from one event loop, back to back and non-blocking, so they all
//! reach the server within a few milliseconds. Each connection that connects sends one
//! message, waits for its echo, and closes. When the server does not accept fast enough (it
//! is stopped, or busy) the kernel completes handshakes only until the listener's queue
//! holds `--backlog` + 1 of them, and drops the SYNs after that: those clients hear nothing
//! and retransmit their SYN after 1 s, then 3 s, 7 s... So the connect latencies, counted
//! from the burst's start, fall in steps, and the per-connection list (`burst.each` in the
//! report) is there to draw them.
//!
//! One thread, not `--threads`: a loopback connect, handshake included, took about 100 us
//! here, so 400 of them leave within 50 ms, against steps of a second (the report's
//! `burst.opening_us` says how long it took). There is no warm-up and no
//! window: the burst ends when every connection has its outcome, each bounded by `--timeout`
//! to connect and `--timeout` more for its echo, so the whole burst by about two of them.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use mio::{Events, Poll, Token};

use crate::config::Config;
use crate::conn::split_end;
use crate::cpu::CpuTime;
use crate::env::Environment;
use crate::hlog::{self, HlogWriter};
use crate::report::Report;
use crate::report::burst::Outcome;
use crate::target::{Stream, Target};
use crate::{Cancel, payload};

mod report;

/// How often deadlines are checked when no event wakes the loop.
const TICK: Duration = Duration::from_millis(10);
/// Connects started between two looks at the ones that completed.
const OPENING_BATCH: usize = 16;

/// One connection of the burst, from its connect to its outcome. Times are nanoseconds
/// since the burst's start.
#[derive(Debug)]
pub struct Slot {
    stream: Option<Stream>,
    /// When its connect completed.
    pub connect_ns: Option<u64>,
    /// When its message's last byte was written (0 until then).
    pub sent_ns: u64,
    /// When the whole echo arrived, intact or not.
    pub echo_ns: Option<u64>,
    written: usize,
    received: usize,
    bad: bool,
    pub outcome: Option<Outcome>,
    /// What went wrong, for the report's first error.
    pub why: Option<String>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            stream: None,
            connect_ns: None,
            sent_ns: 0,
            echo_ns: None,
            written: 0,
            received: 0,
            bad: false,
            outcome: None,
            why: None,
        }
    }

    /// Whether its whole message reached the socket (it then counts as sent).
    pub fn sent(&self) -> bool {
        self.sent_ns > 0
    }

    /// The connection is over: closes it and keeps how it ended.
    fn end(&mut self, outcome: Outcome, why: Option<String>) {
        self.stream = None;
        self.outcome = Some(outcome);
        self.why = why;
    }
}

/// What the burst measured, for the report.
#[derive(Debug)]
pub struct Measured {
    pub slots: Vec<Slot>,
    /// From the burst's start to the last connect call returning.
    pub opening_ns: u64,
    /// From the burst's start to the last connection's outcome.
    pub finished_ns: u64,
    pub interrupted: bool,
}

/// Runs the burst `config` asks for and reports it (the interval log, if asked for, gets
/// one interval: the message latency, untagged, `uncorrected`, and `connect`).
pub fn run(
    config: &Config,
    target: &Target,
    cancel: &Cancel,
    hlog: Option<HlogWriter>,
) -> Result<Report> {
    let started_at = SystemTime::now();
    let environment = Environment::detect();
    let (process, thread) = (CpuTime::process(), CpuTime::thread());
    let poll = Poll::new().context("cannot create an epoll instance")?;
    let measured = measure(poll, config, target, config.burst.unwrap_or(1), cancel);
    let cpu = CpuTime::thread().since(&thread);
    let process_cpu = CpuTime::process().since(&process);
    let length = Duration::from_nanos(measured.finished_ns.max(1_000_000));
    let parts =
        report::Parts { config, target, started_at, environment, measured, cpu, process_cpu };
    let (report, rec) = report::report(parts);
    if let Some(mut log) = hlog {
        let comment = format!(
            "{} against {target}: a burst of {} connections; untagged: message latency in ns, \
             failed messages included at --timeout or more; Tag=uncorrected: echoed messages \
             only; Tag=connect: connect latency in ns from the burst's start",
            crate::tool(),
            report.connections.requested
        );
        log.header(started_at, &comment)?;
        log.interval(None, Duration::ZERO, length, &rec.corrected)?;
        log.interval(Some(hlog::TAG_UNCORRECTED), Duration::ZERO, length, &rec.uncorrected)?;
        log.interval(Some(hlog::TAG_CONNECT), Duration::ZERO, length, &rec.connect)?;
        log.finish()?;
    }
    Ok(report)
}

/// Opens the burst against `target` and follows every connection to its outcome.
fn measure(
    poll: Poll,
    config: &Config,
    target: &Target,
    count: usize,
    cancel: &Cancel,
) -> Measured {
    let mut burst = Burst {
        poll,
        slots: (0..count).map(|_| Slot::new()).collect(),
        size: config.size,
        split: config.split_writes,
        timeout_ns: u64::try_from(config.timeout.as_nanos()).unwrap_or(u64::MAX),
        start: Instant::now(),
        rbuf: vec![0; 64 * 1024],
        wbuf: vec![0; config.size],
    };
    let mut events = Events::with_capacity(1024);
    for i in 0..count {
        burst.start_connect(target, i);
        // Every few connects, the connects completed meanwhile are noted (without waiting):
        // otherwise the first ones would be timed only after the last had started.
        if i % OPENING_BATCH == OPENING_BATCH - 1 && !burst.turn(&mut events, Duration::ZERO) {
            break;
        }
    }
    let opening_ns = burst.now_ns();
    let interrupted = burst.follow(&mut events, cancel);
    let finished_ns = burst.now_ns();
    Measured { slots: burst.slots, opening_ns, finished_ns, interrupted }
}

struct Burst {
    poll: Poll,
    slots: Vec<Slot>,
    size: usize,
    split: bool,
    timeout_ns: u64,
    start: Instant,
    rbuf: Vec<u8>,
    /// The message being written: each connection's is its own (its id is in it).
    wbuf: Vec<u8>,
}

impl Burst {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Starts connection `i`'s connect. A Unix connect completes (or fails) at once.
    fn start_connect(&mut self, target: &Target, i: usize) {
        let registered = target.connect_registered(None, self.poll.registry(), Token(i));
        match registered {
            Ok(stream) => {
                let unix = matches!(stream, Stream::Unix(_));
                self.slots[i].stream = Some(stream);
                if unix {
                    self.connected(i);
                }
            }
            Err(err) => self.slots[i].end(connect_outcome(&err), Some(connect_error(target, &err))),
        }
    }

    /// Runs the event loop until every connection has its outcome (or `cancel` is set);
    /// returns whether it was cancelled.
    fn follow(&mut self, events: &mut Events, cancel: &Cancel) -> bool {
        loop {
            if self.slots.iter().all(|s| s.outcome.is_some()) {
                return false;
            }
            if cancel.is_cancelled() {
                for slot in self.slots.iter_mut().filter(|s| s.outcome.is_none()) {
                    slot.end(Outcome::Error, Some("the run was cancelled".to_owned()));
                }
                return true;
            }
            self.check_deadlines();
            if !self.turn(events, TICK) {
                return false;
            }
        }
    }

    /// Waits up to `timeout` for events and handles them. If epoll itself fails, every
    /// connection not yet done ends as an error, and this returns false.
    fn turn(&mut self, events: &mut Events, timeout: Duration) -> bool {
        if let Err(err) = self.poll.poll(events, Some(timeout))
            && err.kind() != io::ErrorKind::Interrupted
        {
            let why = format!("epoll_wait failed: {err}");
            for slot in self.slots.iter_mut().filter(|s| s.outcome.is_none()) {
                slot.end(Outcome::Error, Some(why.clone()));
            }
            return false;
        }
        for event in events.iter() {
            let i = event.token().0;
            if i < self.slots.len() {
                self.on_event(i);
            }
        }
        true
    }

    /// A connect not done within `--timeout`, or an echo not back within `--timeout` of
    /// the connect, ends its connection.
    fn check_deadlines(&mut self) {
        let now = self.now_ns();
        let timeout_ns = self.timeout_ns;
        for slot in self.slots.iter_mut().filter(|s| s.outcome.is_none()) {
            match slot.connect_ns {
                None if now > timeout_ns => slot.end(Outcome::ConnectTimeout, None),
                Some(at) if now.saturating_sub(at) > timeout_ns => {
                    slot.end(Outcome::EchoTimeout, Some("no echo within the timeout".to_owned()))
                }
                _ => {}
            }
        }
    }

    fn on_event(&mut self, i: usize) {
        if self.slots[i].outcome.is_some() {
            return; // a stale event for a connection already closed
        }
        if self.slots[i].connect_ns.is_none() {
            let finished = self.slots[i].stream.as_ref().map(Stream::finish_connect);
            match finished {
                Some(Ok(true)) => self.connected(i),
                Some(Err(err)) => {
                    let why = format!("connecting failed: {err}");
                    self.slots[i].end(connect_outcome(&err), Some(why));
                }
                // Spurious: still connecting.
                _ => {}
            }
            return;
        }
        // Edge-triggered: whatever is readable or writable is taken now.
        self.write(i);
        self.read(i);
    }

    /// Connection `i` is up: it sends its one message.
    fn connected(&mut self, i: usize) {
        self.slots[i].connect_ns = Some(self.now_ns());
        self.write(i);
    }

    /// Writes what is left of the message (with `--split-writes`, in two calls).
    fn write(&mut self, i: usize) {
        let size = self.size;
        let slot = &mut self.slots[i];
        if slot.written < size {
            payload::fill(i as u32, 0, &mut self.wbuf);
        }
        while slot.outcome.is_none() && slot.written < size {
            let Some(stream) = slot.stream.as_mut() else { return };
            let end = if self.split { split_end(slot.written, size) } else { size };
            match stream.write(&self.wbuf[slot.written..end]) {
                Ok(0) => slot.end(Outcome::Error, Some("the connection took no bytes".to_owned())),
                Ok(n) => slot.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => slot.end(Outcome::Error, Some(format!("writing failed: {err}"))),
            }
        }
        if slot.written == size && slot.sent_ns == 0 {
            slot.sent_ns = self.start.elapsed().as_nanos() as u64;
        }
    }

    /// Reads and checks the echo; once it is whole, the connection is done.
    fn read(&mut self, i: usize) {
        let size = self.size;
        loop {
            let slot = &mut self.slots[i];
            let Some(stream) = slot.stream.as_mut() else { return };
            match stream.read(&mut self.rbuf) {
                Ok(0) => {
                    let why = "the server closed the connection before echoing".to_owned();
                    return slot.end(Outcome::Error, Some(why));
                }
                Ok(n) => {
                    let take = n.min(size - slot.received);
                    let got = &self.rbuf[..take];
                    if n > take || !payload::matches(i as u32, 0, size, slot.received, got) {
                        slot.bad = true;
                    }
                    // Bytes before the message was whole cannot be its echo.
                    if slot.sent_ns == 0 {
                        slot.bad = true;
                    }
                    slot.received += take;
                    if slot.received == size {
                        slot.echo_ns = Some(self.start.elapsed().as_nanos() as u64);
                        let outcome = if slot.bad { Outcome::Mismatch } else { Outcome::Echoed };
                        let why = slot.bad.then(|| format!("connection {i}: the echo differs"));
                        return slot.end(outcome, why);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    return slot.end(Outcome::Error, Some(format!("reading failed: {err}")));
                }
            }
        }
    }
}

/// How a failed connect counts: refused, timed out (the kernel's own SYN retries ran out,
/// which takes minutes, so rarely), or another error.
fn connect_outcome(err: &io::Error) -> Outcome {
    match err.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused,
        // A Unix listener with a full backlog refuses a non-blocking connect at once.
        Some(libc::EAGAIN) => Outcome::Refused,
        Some(libc::ETIMEDOUT) => Outcome::ConnectTimeout,
        _ => Outcome::Error,
    }
}

fn connect_error(target: &Target, err: &io::Error) -> String {
    format!("cannot connect to {target}: {err}")
}
