//! The command line of `echo-udp`: the TCP models' contract where it means something here,
//! and a clear refusal where it does not.

use std::path::PathBuf;

use clap::Parser;

use crate::socket::DatagramEndpoint;

/// `echo-udp`'s flags.
#[derive(Debug, Parser)]
#[command(
    name = "echo-udp",
    version,
    about = "Datagram echo server: every datagram back to its sender, over UDP (IPv4, IPv6) or a Unix datagram socket",
    after_help = "The TCP models' --backlog, --max-conns and --buffer are refused: without \
connections there is no queue of connections to accept, no connection to count, and every \
datagram is received whole into a 64 KiB buffer of its own. A Unix client must bind a path of \
its own to get replies (an unbound sender has no address to answer to)."
)]
pub struct Args {
    /// Address to receive on: UDP over IPv4 or IPv6 (`[::1]:0`), numeric or `localhost`, with
    /// or without the ready line's `udp:` prefix; port 0 picks a free port. `unix:PATH`
    /// names a Unix datagram socket.
    #[arg(long, value_name = "[udp:]HOST:PORT", default_value = "127.0.0.1:7000", value_parser = DatagramEndpoint::parse)]
    pub addr: DatagramEndpoint,

    /// Receive on a Unix datagram socket at PATH instead of UDP (removed again on exit).
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    pub unix: Option<PathBuf>,

    /// Worker threads. Over UDP each has its own SO_REUSEPORT socket on the address and
    /// the kernel picks one per sender by a hash; over a Unix socket they share one socket.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: u16,

    /// Datagrams moved per system call: with K > 1, recvmmsg and sendmmsg move up to K at a
    /// time. Each of the K slots is a 64 KiB buffer, per worker.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch: u16,

    /// SO_RCVBUF of each UDP socket: how many bytes of datagrams the kernel queues before it
    /// drops (the kernel caps it at net.core.rmem_max, then doubles it) [default: the kernel's,
    /// net.core.rmem_default]. Refused for Unix sockets, whose queue is counted in datagrams.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub rcvbuf: Option<u64>,

    // The TCP models' flags, taken only to refuse them with a line that says why (clap's
    // own "unexpected argument" would leave a user wondering whether it was a typo).
    #[arg(long, hide = true, value_name = "N", allow_hyphen_values = true)]
    backlog: Option<String>,
    #[arg(long, hide = true, value_name = "N", allow_hyphen_values = true)]
    max_conns: Option<String>,
    #[arg(long, hide = true, value_name = "BYTES", allow_hyphen_values = true)]
    buffer: Option<String>,
}

impl Args {
    /// Where to receive: `--unix` wins over the default `--addr`.
    pub fn endpoint(&self) -> DatagramEndpoint {
        match &self.unix {
            Some(path) => DatagramEndpoint::Unix(path.clone()),
            None => self.addr.clone(),
        }
    }

    /// The combinations clap cannot refuse on its own, as one line each.
    pub fn check(&self) -> Result<(), String> {
        if self.backlog.is_some() {
            return Err("--backlog means nothing to a datagram server: there are no \
                        connections waiting to be accepted"
                .to_owned());
        }
        if self.max_conns.is_some() {
            return Err("--max-conns means nothing to a datagram server: there are no \
                        connections to count, one socket serves every client"
                .to_owned());
        }
        if self.buffer.is_some() {
            return Err("--buffer means nothing to a datagram server: each datagram is \
                        received whole into a 64 KiB buffer (see --batch)"
                .to_owned());
        }
        if self.rcvbuf.is_some() && matches!(self.endpoint(), DatagramEndpoint::Unix(_)) {
            return Err("--rcvbuf has no effect on a Unix datagram socket: its queue holds \
                        net.unix.max_dgram_qlen datagrams, whatever their size"
                .to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        let args =
            Args::try_parse_from([&["echo-udp"], args].concat()).map_err(|e| e.to_string())?;
        args.check().map(|()| args)
    }

    #[test]
    fn defaults_are_loopback_one_worker_one_datagram_per_call() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.endpoint().to_string(), "udp:127.0.0.1:7000");
        assert_eq!((args.workers, args.batch, args.rcvbuf), (1, 1, None));
    }

    #[test]
    fn the_tcp_models_flags_are_refused_saying_why() {
        for flag in ["--backlog", "--max-conns", "--buffer"] {
            let err = parse(&[flag, "10"]).unwrap_err();
            assert!(err.starts_with(&format!("{flag} means nothing")), "{err}");
        }
        let err = parse(&["--unix", "/tmp/x.sock", "--rcvbuf", "100000"]).unwrap_err();
        assert!(err.contains("max_dgram_qlen"), "{err}");
        assert!(parse(&["--addr", "unix:/tmp/x.sock", "--rcvbuf", "1"]).is_err());
        for zero in [["--workers", "0"], ["--batch", "0"], ["--rcvbuf", "0"]] {
            assert!(parse(&zero).is_err(), "{zero:?}");
        }
        assert!(parse(&["--batch", "257"]).is_err());
    }
}
