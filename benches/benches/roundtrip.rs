//! Criterion benches: what one message and one connection cost, per model.
//!
//! Run with `cargo bench --bench roundtrip` (or plain `cargo bench`, which also runs the
//! comparison harness). Each model's real binary runs as a child process pinned to CPU 0 and
//! this bench's client runs pinned to CPU 1, the same "split" placement the harness uses by
//! default; on this virtual machine a wake-up across CPUs costs about 35 us, which dominates a
//! single connection's round trip, so placement is part of every figure.
//!
//! Two groups, one question each:
//! - `roundtrip/<model>`: one 64-byte message written and its echo read back, over one
//!   long-lived connection. The models are timed one after another, each in its own stretch,
//!   so criterion's interval leaves out how the machine drifted between them; the report
//!   ranks them only where the scale scenario's paired rounds at one connection agree
//!   (`harness::criterion_notes`).
//! - `connect_echo_close/<model>`: connect, send 64 bytes, half-close, read the echo to EOF.
//!   The server closes first, so TIME_WAIT lands on the server's side and the client's
//!   ephemeral ports are not exhausted however many iterations criterion asks for.
//!
//! `ECHOBENCH_QUICK=1` shortens every measurement so that CI can smoke-test the pipeline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use harness::binaries::{build_release_binaries, env_flag, release_dir, results_root};
use harness::registry::{self, MODELS, Transport};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

const MESSAGE: [u8; 64] = *b"echobench-roundtrip-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF";
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

fn config() -> Criterion {
    let criterion = Criterion::default().configure_from_args();
    if env_flag("ECHOBENCH_QUICK") {
        // Enough to prove every piece runs; not enough to trust the figures.
        criterion
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
            .without_plots()
    } else {
        // No plots: they cost about 3 s per benchmark here, and the report shows the
        // figures (criterion's estimates) itself.
        criterion
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .without_plots()
    }
}

fn roundtrip(c: &mut Criterion) {
    let bins = server_binaries();
    pin_self(CLIENT_CPU);
    let mut group = c.benchmark_group("roundtrip");
    group.throughput(Throughput::Elements(1));
    for model in stream_models() {
        let server = Server::start(&bins, model);
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut reply = [0u8; MESSAGE.len()];
        group.bench_function(model, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    stream.write_all(&MESSAGE).expect("write");
                    stream.read_exact(&mut reply).expect("read");
                }
                start.elapsed()
            });
        });
        assert_eq!(reply, MESSAGE, "{model} echoed something else");
    }
    group.finish();
}

fn connect_echo_close(c: &mut Criterion) {
    let bins = server_binaries();
    pin_self(CLIENT_CPU);
    let mut group = c.benchmark_group("connect_echo_close");
    group.throughput(Throughput::Elements(1));
    for model in stream_models() {
        let server = Server::start(&bins, model);
        group.bench_function(model, |b| {
            b.iter_custom(|iters| {
                let mut reply = Vec::with_capacity(MESSAGE.len());
                let start = Instant::now();
                for _ in 0..iters {
                    let mut stream = TcpStream::connect(server.addr).expect("connect");
                    stream.set_nodelay(true).expect("TCP_NODELAY");
                    stream.write_all(&MESSAGE).expect("write");
                    stream.shutdown(Shutdown::Write).expect("half-close");
                    reply.clear();
                    stream.read_to_end(&mut reply).expect("read");
                    assert_eq!(reply.len(), MESSAGE.len(), "{model} lost bytes");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// One server child process, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `model` pinned to the server CPU, with the flags the harness would give it there
    /// (one worker for a model with a pool of them: it has one CPU).
    fn start(bins: &Path, model: &str) -> Server {
        let path = bins.join(registry::binary(model));
        let (args, _) = registry::server_args(model, 1, None);
        let mut command = Command::new(&path);
        command.args(["--addr", "127.0.0.1:0"]).args(&args);
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // sched_setaffinity system call, which is async-signal-safe; it touches no locks or
        // allocator state of this (multi-threaded) process.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                let mut set = CpuSet::new();
                set.set(SERVER_CPU).map_err(std::io::Error::from)?;
                sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
            });
        }
        let mut child =
            command.spawn().unwrap_or_else(|err| panic!("cannot start {}: {err}", path.display()));
        // The ready line says the listener is bound; no sleep is needed before connecting.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the ready line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{} printed {line:?}, not a ready line", path.display()));
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The models these benches can measure: those that echo a byte stream. A datagram server
/// (echo-udp) has no connection to open or to send a message down; the harness's `udp` and
/// `batch` scenarios measure it.
fn stream_models() -> impl Iterator<Item = &'static str> {
    MODELS.iter().filter(|m| m.transport == Transport::Stream).map(|m| m.name)
}

/// Builds the server binaries (a no-op when they are up to date) and returns their folder.
fn server_binaries() -> PathBuf {
    let packages: Vec<&str> =
        MODELS.iter().filter(|m| m.transport == Transport::Stream).map(|m| m.package).collect();
    build_release_binaries(&packages).expect("building the server binaries");
    release_dir().expect("the release folder")
}

fn pin_self(cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_err() {
        eprintln!("roundtrip: cannot pin the client to CPU {cpu}; figures are unpinned");
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = roundtrip, connect_echo_close
}

/// What `criterion_main!` does, then the figures go into the newest comparison run's report
/// (`cargo bench` runs the comparison first), so that a reader finds them there.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--list") || !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let home = harness::criterion::home(&release_dir().expect("the release folder"));
    let figures = harness::criterion::read(&home, &["roundtrip", "connect_echo_close"]);
    match harness::render::attach(&results_root(), figures, harness::scenario::ALL) {
        Ok(Some(dir)) => {
            eprintln!("roundtrip: figures added to {}", dir.join("report.md").display())
        }
        Ok(None) => eprintln!("roundtrip: no comparison run to add the figures to"),
        Err(e) => eprintln!("roundtrip: cannot add the figures to the report: {e:#}"),
    }
}
