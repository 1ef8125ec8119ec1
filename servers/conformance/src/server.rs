//! Starting a server binary, waiting for its ready line, stopping it, and never leaking it.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::proc;

/// How long a server may take to print its ready line. Generous: the machine is shared and
/// a cold start may page in the binary, but a server that never gets ready fails, not hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Server::terminate`] waits before it gives up, kills the server and fails.
/// The contract's one second is asserted by the shutdown cases themselves; this is only the
/// point at which waiting longer is pointless.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a running server listens, parsed from its ready line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A datagram server's UDP socket (`listening on udp:ADDR`).
    Udp(SocketAddr),
    /// A datagram server's Unix datagram socket (`listening on udp:unix:PATH`).
    UnixDatagram(PathBuf),
}

/// A server binary running as a child process. Dropping it kills the server and its
/// descendants, so a test that fails halfway leaves nothing behind.
#[derive(Debug)]
pub struct Server {
    child: Child,
    ready_line: String,
    addr: Addr,
    stdout: Collector,
    stderr: Collector,
    /// Set once the child has been waited for; Drop then has nothing to do.
    exited: bool,
}

/// How a server (or a rejected command line) ended, and everything it printed.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// Time from the signal (or the start, for [`run_to_exit`]) to the exit.
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// How soon after SIGINT or SIGTERM every server must have exited: the contract's "within a
/// second".
pub const EXIT_WITHIN: Duration = Duration::from_secs(1);

impl Exit {
    /// Asserts the exit the contract asks after `signal`: status 0, within [`EXIT_WITHIN`].
    /// `while_` says what the server was doing ("with connections open", "under load").
    pub fn assert_prompt_and_clean(&self, signal: Signal, while_: &str) {
        assert_eq!(
            self.status.code(),
            Some(0),
            "after {signal} {while_} the server ended with {:?}; stderr: {}",
            self.status,
            self.stderr
        );
        assert!(
            self.elapsed < EXIT_WITHIN,
            "the server took {:?} to exit after {signal}",
            self.elapsed
        );
    }

    /// Asserts a clean exit (status 0) whose summary on stderr counts `served` connections,
    /// as the models' smoke tests check after SIGTERM.
    pub fn assert_clean_after_serving(&self, served: u64) {
        assert!(self.status.success(), "exit status {:?}; stderr: {}", self.status, self.stderr);
        let expected = format!("serving {served} connections");
        assert!(
            self.stderr.contains(&expected),
            "expected `{expected}` on stderr: {}",
            self.stderr
        );
    }
}

impl Server {
    /// Starts `bin` with `args` and waits for its ready line; panics (with the server's
    /// stderr) if it exits first or stays silent for `READY_TIMEOUT` (10 s).
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Server::spawn(command(bin, args), bin, args)
    }

    /// Like [`Server::start`], with the server's descriptor limit (`RLIMIT_NOFILE`) lowered to
    /// `limit`, so that it runs out of descriptors (EMFILE) after a few dozen connections.
    pub fn start_with_fd_limit(bin: &str, args: &[&str], limit: u64) -> Server {
        let mut cmd = command(bin, args);
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed. It makes one setrlimit system call (nix's
        // wrapper only converts the result) and neither allocates nor takes a lock.
        unsafe {
            cmd.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
            });
        }
        Server::spawn(cmd, bin, args)
    }

    fn spawn(mut cmd: Command, bin: &str, args: &[&str]) -> Server {
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout =
            Collector::start(child.stdout.take().expect("stdout is piped"), Some(ready_tx));
        let mut stderr = Collector::start(child.stderr.take().expect("stderr is piped"), None);
        // The reader thread sends the first line as soon as it arrives; if the server exits
        // without one, the sender is dropped and `recv_timeout` reports a disconnect.
        let line = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(err) => {
                kill_tree(&mut child);
                let stderr = stderr.finish(Duration::from_secs(1));
                panic!("{bin} {args:?} printed no ready line ({err}); stderr: {stderr:?}");
            }
        };
        let Some(addr) = parse_ready_line(&line) else {
            kill_tree(&mut child);
            panic!("{bin} {args:?}: ready line {line:?} is not `listening on ADDR`");
        };
        Server { child, ready_line: line, addr, stdout, stderr, exited: false }
    }

    /// The first line the server printed, without its newline.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Where the server listens.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// The TCP address the server listens on; panics for a Unix socket server.
    pub fn tcp_addr(&self) -> SocketAddr {
        match &self.addr {
            Addr::Tcp(addr) => *addr,
            other => panic!("server listens on {other:?}, not TCP"),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the server process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        !self.exited && matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit; see [`Server::stop_with`].
    pub fn terminate(&mut self) -> Exit {
        self.stop_with(Signal::SIGTERM)
    }

    /// Sends SIGTERM and asserts a clean exit (status 0) that took the server's Unix socket
    /// file at `path` with it, stream or datagram alike.
    pub fn terminate_removing(&mut self, path: &std::path::Path) {
        let exit = self.terminate();
        assert!(
            exit.status.success(),
            "exit after SIGTERM: {:?}; stderr: {}",
            exit.status,
            exit.stderr
        );
        assert!(!path.exists(), "the socket file {} is still there after SIGTERM", path.display());
    }

    /// Sends `signal` and waits for the server to exit, then collects what it printed.
    /// Panics (after killing the server) if it is still running after `EXIT_TIMEOUT` (5 s).
    pub fn stop_with(&mut self, signal: Signal) -> Exit {
        assert!(!self.exited, "the server was already stopped");
        let sent = Instant::now();
        kill(Pid::from_raw(self.pid()), signal).expect("cannot signal the server");
        let Some(status) = wait_until(&mut self.child, sent + EXIT_TIMEOUT) else {
            self.kill_tree();
            panic!("the server was still running {EXIT_TIMEOUT:?} after {signal}");
        };
        let elapsed = sent.elapsed();
        self.exited = true;
        // A forked child that outlived the server would hold the pipes open; the collectors
        // then return what they have after a short wait instead of waiting forever.
        let stdout = self.stdout.finish(Duration::from_secs(1));
        let stderr = self.stderr.finish(Duration::from_secs(1));
        Exit { status, elapsed, stdout, stderr }
    }

    /// Kills the server and its descendants, or, if it has exited, whatever it left in its
    /// process group.
    fn kill_tree(&mut self) {
        if !self.exited {
            kill_tree(&mut self.child);
            self.exited = true;
        } else {
            for pid in proc::group_members(self.pid()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_tree();
    }
}

/// Runs `bin` with `args` to its exit (for command lines the server must refuse), killing
/// it and panicking if it is still running after `EXIT_TIMEOUT` (5 s).
pub fn run_to_exit(bin: &str, args: &[&str]) -> Exit {
    let started = Instant::now();
    let mut child =
        command(bin, args).spawn().unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let mut stdout = Collector::start(child.stdout.take().expect("stdout is piped"), None);
    let mut stderr = Collector::start(child.stderr.take().expect("stderr is piped"), None);
    let Some(status) = wait_until(&mut child, started + EXIT_TIMEOUT) else {
        kill_tree(&mut child);
        panic!("{bin} {args:?} was still running after {EXIT_TIMEOUT:?}; it should have refused");
    };
    let elapsed = started.elapsed();
    Exit {
        status,
        elapsed,
        stdout: stdout.finish(Duration::from_secs(1)),
        stderr: stderr.finish(Duration::from_secs(1)),
    }
}

/// SIGKILLs the child's descendants (forked connection handlers), then the child, and reaps it.
fn kill_tree(child: &mut Child) {
    // The group catches children that outlived the server; descendants catch any that moved
    // to a group of their own.
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    for pid in proc::descendants(child.id() as i32) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn command(bin: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A process group of its own (its id is the server's pid), inherited by anything the
    // server forks: after the server exits, the group still names its leftovers. It also
    // keeps a Ctrl-C meant for `cargo test` from reaching the server's own handler.
    cmd.process_group(0);
    cmd
}

/// Polls for the child's exit until `deadline`. (std has no wait with a timeout; a few
/// milliseconds between polls is far below what any case measures.)
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Parses `listening on 127.0.0.1:PORT`, `listening on [::1]:PORT` or `listening on unix:PATH`,
/// and a datagram server's `listening on udp:ADDR` and `listening on udp:unix:PATH`.
fn parse_ready_line(line: &str) -> Option<Addr> {
    let addr = line.strip_prefix("listening on ")?;
    if let Some(datagram) = addr.strip_prefix("udp:") {
        return match datagram.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Some(Addr::UnixDatagram(PathBuf::from(path))),
            Some(_) => None,
            None => datagram.parse().ok().map(Addr::Udp),
        };
    }
    match addr.strip_prefix("unix:") {
        Some(path) if !path.is_empty() => Some(Addr::Unix(PathBuf::from(path))),
        Some(_) => None,
        None => addr.parse().ok().map(Addr::Tcp),
    }
}

/// Reads one of the child's output pipes to its end on a thread, so that a chatty server
/// never blocks on a full pipe, and hands over the first line as soon as it arrives.
#[derive(Debug)]
struct Collector {
    text: Arc<Mutex<Vec<u8>>>,
    /// Reports that the pipe reached end of file (every writer closed it).
    done: Receiver<()>,
}

impl Collector {
    fn start(
        mut pipe: impl Read + Send + 'static,
        first_line: Option<Sender<String>>,
    ) -> Collector {
        let text = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::clone(&text);
        thread::spawn(move || {
            let mut first_line = first_line;
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                let mut text = shared.lock().unwrap();
                text.extend_from_slice(&chunk[..n]);
                if let Some(end) = text.iter().position(|&b| b == b'\n')
                    && let Some(tx) = first_line.take()
                {
                    let _ = tx.send(String::from_utf8_lossy(&text[..end]).into_owned());
                }
            }
            let _ = done_tx.send(());
        });
        Collector { text, done }
    }

    /// Waits up to `grace` for end of file, then returns everything read so far.
    fn finish(&mut self, grace: Duration) -> String {
        let _ = self.done.recv_timeout(grace);
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse_into_addresses() {
        assert_eq!(
            parse_ready_line("listening on 127.0.0.1:7000"),
            Some(Addr::Tcp("127.0.0.1:7000".parse().unwrap()))
        );
        assert_eq!(
            parse_ready_line("listening on [::1]:80"),
            Some(Addr::Tcp("[::1]:80".parse().unwrap()))
        );
        assert_eq!(parse_ready_line("listening on unix:/tmp/x"), Some(Addr::Unix("/tmp/x".into())));
        assert_eq!(
            parse_ready_line("listening on udp:[::1]:80"),
            Some(Addr::Udp("[::1]:80".parse().unwrap()))
        );
        assert_eq!(
            parse_ready_line("listening on udp:unix:/tmp/x"),
            Some(Addr::UnixDatagram("/tmp/x".into()))
        );
        for bad in [
            "listening on unix:",
            "listening on udp:unix:",
            "listening on udp:7000",
            "listening on 7000",
            "listening at 127.0.0.1:1",
            "",
        ] {
            assert_eq!(parse_ready_line(bad), None, "{bad:?}");
        }
    }
}
