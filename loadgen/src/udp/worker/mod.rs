//! A UDP load thread: one mio event loop over its share of the sockets, closed or open loop.
//!
//! - Closed loop: each socket starts with `--pipeline` datagrams out and sends one more for
//!   every datagram settled: echoed (intact or corrupt) or declared lost after `--timeout`.
//! - Open loop: the [`Schedule`] says when the next datagram is due and on which socket; it is
//!   sent then whatever came back. A send the kernel refuses (the socket buffer is full) is not
//!   queued: it counts as `backlogged`, as a TCP send that could not be written does.
//!
//! A readable event is drained until the socket is empty, and a closed loop then sends what the
//! echoes freed: with `recvmmsg` and `sendmmsg` where several datagrams are in flight per socket
//! (`batch.rs`), else with a `recv` per echo (and one that finds nothing) and a `send` per
//! datagram, which cost less one at a time. The open loop sends each datagram with one `send`
//! when it is due. Sockets are registered for reads only, and for writes only while a closed
//! loop's send waits for buffer space, so sending does not wake the loop with a writable event
//! per datagram.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::batch::{RecvBatch, SendBatch};
use super::flow::{Flow, Loss};
use super::{Counters, OwnDir, Peer};
use crate::config::Mode;
use crate::meter::{Meter, Msg, Shared, Timeline};
use crate::phase::Phase;
use crate::schedule::{Schedule, Timer};
use crate::stats::Recorder;
use crate::target::Target;
use crate::worker::Plan;

mod open;

/// The timerfd's token; sockets use their index.
const TIMER: Token = Token(usize::MAX - 1);
/// Timeouts are checked this often, at most, and every eighth of `--timeout`, at least every
/// millisecond (the event loop's poll sleeps in whole milliseconds).
const MAX_HOUSEKEEPING_NS: u64 = 10_000_000;
const MIN_HOUSEKEEPING_NS: u64 = 1_000_000;

/// Runs one UDP load thread to completion; everything it measured goes to the coordinator.
pub fn thread_main(
    mut plan: Plan,
    poll: Poll,
    shared: Arc<Shared>,
    channels: (Sender<Msg>, Receiver<Box<Recorder>>),
) {
    let mut meter = Meter::new(
        plan.thread,
        plan.mode == Mode::Open,
        channels,
        shared.clone(),
        plan.interval.map(|length| length.as_nanos() as u64),
    );
    if let Some(cpu) = plan.cpu {
        match crate::cpu::pin_current_thread(&[cpu]) {
            Ok(_) => meter.pinned = Some(cpu),
            Err(err) => meter.trouble(|| format!("{err:#}")),
        }
    }
    let Target::Datagram(peer) = plan.target.clone() else {
        meter.trouble(|| "a UDP load thread was given a stream target".to_owned());
        return meter.finish(0, 0);
    };
    let timeout_ns = plan.timeout.as_nanos() as u64;
    let mut worker = Worker {
        flows: Vec::with_capacity(plan.ids.len()),
        schedule: plan.schedule.take(),
        housekeeping_ns: (timeout_ns / 8).clamp(MIN_HOUSEKEEPING_NS, MAX_HOUSEKEEPING_NS),
        wbuf: vec![0; plan.size],
        sends: SendBatch::new(plan.size, if plan.mode == Mode::Open { 1 } else { plan.pipeline }),
        // A closed loop has at most its pipeline waiting (duplicates aside), so one more
        // slot usually ends the read with a short batch. Below three in flight, and in the
        // open loop (a socket's echoes come one by one, as its sends went), a batch costs more
        // than it saves (see `batch.rs`): one at a time.
        batch: RecvBatch::new(
            plan.size,
            match plan.mode {
                Mode::Open => 1,
                _ if plan.pipeline < 3 => 1,
                _ => plan.pipeline + 1,
            },
        ),
        plan,
        poll,
        meter,
        udp: Counters::default(),
        shared,
        timer: None,
        dir: None,
    };
    worker.open(&peer);
    worker.run();
}

struct Worker {
    plan: Plan,
    poll: Poll,
    flows: Vec<Flow>,
    meter: Meter,
    udp: Counters,
    shared: Arc<Shared>,
    schedule: Option<Schedule>,
    timer: Option<Timer>,
    housekeeping_ns: u64,
    /// A datagram sent alone (the open loop's, a closed loop's one at a time), rebuilt for each.
    wbuf: Vec<u8>,
    /// Closed loop: the datagrams a socket owes its pipeline, sent with one call.
    sends: SendBatch,
    batch: RecvBatch,
    /// Unix peers: where this thread's sockets have their own addresses.
    dir: Option<OwnDir>,
}

impl Worker {
    /// Opens and registers a socket per flow. One that cannot be opened counts as a connect
    /// error and stays closed: the run then has fewer sockets than asked, and says so.
    fn open(&mut self, peer: &Peer) {
        if peer.needs_dir() {
            match OwnDir::new() {
                Ok(dir) => self.dir = Some(dir),
                Err(err) => self.meter.error(true, || format!("{err:#}")),
            }
        }
        let in_flight = if self.plan.mode == Mode::Open { 16 } else { self.plan.pipeline };
        for (i, &id) in self.plan.ids.iter().enumerate() {
            let opened = peer.open(self.dir.as_ref(), &id.to_string()).and_then(|socket| {
                socket.set_nonblocking(true)?;
                let fd = socket.as_raw_fd();
                self.poll.registry().register(&mut SourceFd(&fd), Token(i), Interest::READABLE)?;
                Ok(socket)
            });
            let socket = match opened {
                Ok(socket) => Some(socket),
                Err(err) => {
                    self.meter.counters.connect_errors += 1;
                    self.meter.error(true, || format!("cannot open a socket to {peer}: {err}"));
                    None
                }
            };
            self.flows.push(Flow::new(id, socket, in_flight));
        }
    }

    fn run(mut self) {
        self.meter.ready();
        let tl = self.wait_for_start();
        self.meter.begin(&tl);
        if let Some(schedule) = &self.schedule {
            self.timer = crate::pace::timer(schedule, self.poll.registry(), TIMER, &mut self.meter);
        }
        self.meter.initial_up = self.flows.iter().filter(|f| f.socket.is_some()).count() as u64;
        if self.plan.mode != Mode::Open {
            for i in 0..self.flows.len() {
                self.flows[i].want = self.plan.pipeline;
                self.send_wanted(i, 0, &tl);
            }
        }
        let mut events = Events::with_capacity(1024);
        let mut phase = Phase::new(self.housekeeping_ns);
        loop {
            let now = tl.now_ns();
            self.meter.tick(now);
            let cancelled = self.shared.cancel.is_cancelled();
            if let Some(stopped_ns) = phase.stop(now, cancelled, &tl) {
                self.meter.stop_window(stopped_ns);
                if self.schedule.is_some() {
                    self.send_due(now, &tl);
                }
                self.give_up_until(stopped_ns, &tl);
            }
            if phase.done(now, cancelled, self.meter.in_flight) {
                break;
            }
            let sending = phase.sending();
            if phase.housekeeping_due(now) {
                self.housekeeping(now, sending, &tl);
            }
            let mut timeout = Some(phase.timeout(now, &tl));
            if sending && self.schedule.is_some() {
                self.send_due(now, &tl);
                timeout = self.arm_timer(&tl).or(timeout);
            }
            if let Err(err) = self.poll.poll(&mut events, timeout)
                && err.kind() != io::ErrorKind::Interrupted
            {
                self.meter.trouble(|| format!("epoll_wait failed, the thread stopped: {err}"));
                break;
            }
            let woke = if self.timer.is_some() && !events.is_empty() { tl.now_ns() } else { 0 };
            for event in &events {
                if event.token() == TIMER {
                    if let Some(timer) = self.timer.as_mut() {
                        crate::pace::timer_fired(timer, &mut self.meter, woke);
                    }
                    continue;
                }
                let i = event.token().0;
                if i >= self.flows.len() {
                    continue;
                }
                if event.is_readable() || event.is_error() {
                    self.read(i, sending, &tl);
                }
                if event.is_writable() && self.flows[i].blocked {
                    self.send_wanted(i, tl.now_ns(), &tl);
                }
            }
        }
        // Echoes already in the sockets are taken before the rest is given up (and late
        // echoes and duplicates waiting there are counted).
        for i in 0..self.flows.len() {
            self.read(i, false, &tl);
        }
        let end = tl.now_ns();
        let loss = if self.shared.cancel.is_cancelled() { Loss::Cancelled } else { Loss::Timeout };
        for flow in &mut self.flows {
            if flow.abandon(end, loss, &mut self.meter) > 0 {
                let id = flow.id;
                self.meter.error(true, || match loss {
                    Loss::Timeout => {
                        format!("socket {id}: datagrams not echoed by the end of the drain")
                    }
                    Loss::Cancelled => {
                        format!("socket {id}: datagrams in flight when the run was cancelled")
                    }
                });
            }
        }
        self.meter.udp = self.udp;
        self.meter.finish(phase.stopped_ns(), end);
    }

    /// Waits, asleep, for the coordinator to start the run once every thread is ready.
    fn wait_for_start(&self) -> Timeline {
        loop {
            if let Some(&start) = self.shared.start.get() {
                let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                let measure_ns = ns(self.plan.warmup);
                return Timeline {
                    base: start,
                    measure_ns,
                    end_ns: measure_ns.saturating_add(ns(self.plan.duration)),
                    timeout_ns: ns(self.plan.timeout),
                };
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Receives every datagram waiting on socket `i`, judges each, and (closed loop) sends
    /// one datagram for each it settled.
    fn read(&mut self, i: usize, sending: bool, tl: &Timeline) {
        let Some(fd) = self.flows[i].socket.as_ref().map(|s| s.as_raw_fd()) else { return };
        let size = self.plan.size;
        let mut settled = 0;
        let mut now;
        loop {
            let result = self.batch.recv(fd);
            // One clock read per batch: the moment these echoes were seen.
            now = tl.now_ns();
            match result {
                Ok(n) => {
                    let flow = &mut self.flows[i];
                    for k in 0..n {
                        let data = self.batch.get(k);
                        if flow.receive(data, now, size, &mut self.meter, &mut self.udp) {
                            settled += 1;
                        }
                    }
                    // A batch with room to spare drained the socket.
                    if n < self.batch.capacity() {
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // Typically an ICMP port unreachable queued on the socket: the server
                    // went away.
                    self.socket_error(i, now, &err);
                    break;
                }
            }
        }
        if self.plan.mode != Mode::Open && sending && now < tl.end_ns && settled > 0 {
            self.flows[i].want += settled;
            self.send_wanted(i, now, tl);
        }
    }

    /// Closed loop: sends what socket `i` owes its pipeline, until the socket buffer is full
    /// (then it waits for a writable event) or the kernel refuses (then housekeeping retries).
    fn send_wanted(&mut self, i: usize, now: u64, tl: &Timeline) {
        if self.flows[i].socket.is_none() {
            return;
        }
        let measured = now >= tl.measure_ns;
        while self.flows[i].want > 0 {
            let flow = &mut self.flows[i];
            let wanted = flow.want.min(self.sends.capacity());
            // One datagram goes with a plain `send`: `sendmmsg` costs more for a single one.
            let result = match wanted {
                1 => flow.send(&mut self.wbuf, now, now, measured, &mut self.meter).map(|()| 1),
                _ => flow.send_batch(&mut self.sends, wanted, now, measured, &mut self.meter),
            };
            let full_now = match result {
                Ok(sent) => {
                    flow.want -= sent;
                    // Fewer went than asked: the buffer filled (or a later send failed, which
                    // the kernel does not say); wait for room, and housekeeping retries too.
                    sent < wanted
                }
                Err(err) if full(&err) => true,
                Err(err) => {
                    self.socket_error(i, now, &err);
                    return;
                }
            };
            if full_now {
                if !self.flows[i].blocked {
                    self.flows[i].blocked = true;
                    self.reregister(i, Interest::READABLE | Interest::WRITABLE);
                }
                return;
            }
        }
        if self.flows[i].blocked {
            self.flows[i].blocked = false;
            self.reregister(i, Interest::READABLE);
        }
    }

    fn reregister(&mut self, i: usize, interest: Interest) {
        let Some(socket) = self.flows[i].socket.as_ref() else { return };
        let fd = socket.as_raw_fd();
        if let Err(err) = self.poll.registry().reregister(&mut SourceFd(&fd), Token(i), interest) {
            self.meter.trouble(|| format!("cannot wait for socket {}: {err}", self.flows[i].id));
        }
    }

    /// A send or receive on socket `i` failed with something other than a full buffer.
    fn socket_error(&mut self, i: usize, now: u64, err: &io::Error) {
        socket_error(&mut self.meter, &mut self.udp, self.flows[i].id, now, err);
    }

    /// Declares lost what waited `--timeout`; a closed loop refills those slots, and retries
    /// sends that the kernel refused.
    fn housekeeping(&mut self, now: u64, sending: bool, tl: &Timeline) {
        let refill = self.plan.mode != Mode::Open && sending && now < tl.end_ns;
        for i in 0..self.flows.len() {
            if self.flows[i].overdue(now, tl.timeout_ns) {
                // An echo already waiting in the socket is not lost: a load thread that was
                // kept off its CPU would otherwise charge its own delay to the server.
                self.read(i, sending, tl);
            }
            let expired = self.flows[i].expire(now, tl.timeout_ns, &mut self.meter);
            if expired > 0 {
                let id = self.flows[i].id;
                let counted = self.meter.adopts(now);
                self.meter.error(counted, || {
                    format!("socket {id}: a datagram was not echoed within the timeout")
                });
            }
            if refill {
                self.flows[i].want += expired;
                // Blocked ones too: a send refused for want of memory (ENOBUFS) brings no
                // writable event.
                if self.flows[i].want > 0 {
                    self.send_wanted(i, now, tl);
                }
            }
        }
    }
}

/// Counts a failed send or receive: a refusal (an ICMP error the kernel queued on the socket,
/// reported once; the socket itself still works) or, for anything else, an I/O error.
fn socket_error(meter: &mut Meter, udp: &mut Counters, id: u32, now: u64, err: &io::Error) {
    let counted = meter.measuring(now);
    if err.kind() == io::ErrorKind::ConnectionRefused {
        if counted {
            udp.refused += 1;
        }
    } else if counted {
        meter.counters.io_errors += 1;
    }
    meter.error(counted, || format!("socket {id}: {err}"));
}

/// Whether a send failed only because the socket buffer (or, over Unix, the server's receive
/// queue) is full for now.
fn full(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock || err.raw_os_error() == Some(libc::ENOBUFS)
}
