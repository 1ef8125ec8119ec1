//! The one list of the suite's server models. Everything else derives from it: the default
//! `--models`, the packages `cargo bench` builds, the criterion benches' list, the report's
//! one-line shapes, the chart colours, and how many workers each model is given.
//!
//! Adding a model is its crate under `servers/`, its `tests/conformance.rs`, and one entry in
//! [`MODELS`]. A test fails when a `servers/*` crate with an `echo-*` binary is missing here,
//! or when an entry names a package that does not exist.

/// What the harness knows about one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// The name on the command line and in the report (`mio`).
    pub name: &'static str,
    /// Its Cargo package (`echobench-mio`).
    pub package: &'static str,
    /// Its binary (`echo-mio`), found in the harness's `--bin-dir`.
    pub binary: &'static str,
    /// Whether it echoes a byte stream (TCP, Unix stream) or datagrams: a scenario that loads
    /// byte streams runs only the stream models, and the other way round.
    pub transport: Transport,
    /// How it schedules connections, in a few words, for the report.
    pub shape: &'static str,
    /// What each new connection makes the server create.
    pub per_connection: PerConnection,
    /// How it uses the CPUs it is given.
    pub cpus: CpuUse,
    /// Flags the harness passes besides `--addr` (and the worker flag of [`CpuUse::Workers`]).
    pub args: &'static [&'static str],
    /// The model this one is best read against, and what the pair teaches: the findings set
    /// the two side by side wherever both ran.
    pub against: Option<Against>,
}

/// A model's neighbour in the lineage, and the lesson of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Against {
    /// The other model's name.
    pub model: &'static str,
    /// What the difference between them shows, in a few words.
    pub lesson: &'static str,
}

/// What a model echoes: the kind of socket a generator must open to load it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream: TCP or a Unix stream socket. Every connection-based model.
    Stream,
    /// Datagrams: UDP or a Unix datagram socket. No connection, no accept.
    Datagram,
}

/// What a model creates for each new connection: the cost that churn and idle show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerConnection {
    /// A whole process (forked, later reaped).
    Process,
    /// A thread with its own stack.
    Thread,
    /// A process or thread from a pool made beforehand, held for the connection's life and
    /// then reused: nothing is created per connection, but each concurrent one holds a worker.
    Pooled,
    /// Only the connection's state, in a loop or a pool that already exists.
    State,
}

/// How a model uses the CPUs the harness gives it (`--server-cpus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuUse {
    /// One thread serves everything: more CPUs do not help it.
    OneThread,
    /// A fixed pool of workers, sized by `flag`; `default` says how many the harness asks for.
    Workers { flag: &'static str, default: WorkerDefault },
    /// A process or thread per connection: the kernel spreads them over every CPU given.
    PerConnection,
}

/// How many workers the harness asks a [`CpuUse::Workers`] model for, unless the user says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerDefault {
    /// One per CPU the server is pinned to (every allowed CPU when unpinned).
    PerServerCpu,
    /// This many, whatever the placement (a model whose headline is one loop against one).
    Fixed(u32),
}

/// The models, in the order the report lists them.
pub const MODELS: &[Model] = &[
    Model {
        name: "fork",
        package: "echobench-fork",
        binary: "echo-fork",
        transport: Transport::Stream,
        shape: "a process per connection",
        per_connection: PerConnection::Process,
        cpus: CpuUse::PerConnection,
        args: &[],
        against: None,
    },
    Model {
        name: "prefork",
        package: "echobench-prefork",
        binary: "echo-prefork",
        transport: Transport::Stream,
        shape: "a pool of pre-forked processes, one connection each at a time",
        per_connection: PerConnection::Pooled,
        cpus: CpuUse::PerConnection,
        args: &[],
        against: Some(Against {
            model: "fork",
            lesson: "what forking before the connection arrives saves",
        }),
    },
    Model {
        name: "thread",
        package: "echobench-thread",
        binary: "echo-thread",
        transport: Transport::Stream,
        shape: "a thread per connection",
        per_connection: PerConnection::Thread,
        cpus: CpuUse::PerConnection,
        args: &[],
        against: None,
    },
    Model {
        name: "mio",
        package: "echobench-mio",
        binary: "echo-mio",
        transport: Transport::Stream,
        shape: "one event loop on one thread",
        per_connection: PerConnection::State,
        cpus: CpuUse::OneThread,
        args: &[],
        against: None,
    },
    Model {
        name: "poll",
        package: "echobench-poll",
        binary: "echo-poll",
        transport: Transport::Stream,
        shape: "one poll(2) loop on one thread",
        per_connection: PerConnection::State,
        cpus: CpuUse::OneThread,
        args: &[],
        against: Some(Against {
            model: "mio",
            lesson: "what epoll removed: scanning every descriptor per wake-up",
        }),
    },
    Model {
        name: "hybrid",
        package: "echobench-hybrid",
        binary: "echo-hybrid",
        transport: Transport::Stream,
        shape: "an acceptor feeding event-loop workers",
        per_connection: PerConnection::State,
        cpus: CpuUse::Workers { flag: "--workers", default: WorkerDefault::PerServerCpu },
        args: &[],
        against: None,
    },
    Model {
        name: "tokio",
        package: "echobench-tokio",
        binary: "echo-tokio",
        transport: Transport::Stream,
        shape: "a task per connection on tokio's work-stealing runtime",
        per_connection: PerConnection::State,
        cpus: CpuUse::Workers { flag: "--workers", default: WorkerDefault::PerServerCpu },
        args: &[],
        against: Some(Against {
            model: "mio",
            lesson: "what a work-stealing runtime and a task per connection cost over a hand-rolled loop",
        }),
    },
    Model {
        name: "uring",
        package: "echobench-uring",
        binary: "echo-uring",
        transport: Transport::Stream,
        shape: "one io_uring completion loop on one thread",
        per_connection: PerConnection::State,
        // One ring by default, so that the headline is one ring against one epoll loop.
        cpus: CpuUse::Workers { flag: "--workers", default: WorkerDefault::Fixed(1) },
        args: &[],
        against: Some(Against {
            model: "mio",
            lesson: "completion against readiness: batched submissions instead of a call per operation",
        }),
    },
    Model {
        name: "reuseport",
        package: "echobench-reuseport",
        binary: "echo-reuseport",
        transport: Transport::Stream,
        shape: "event-loop workers, each on its own SO_REUSEPORT listener",
        per_connection: PerConnection::State,
        cpus: CpuUse::Workers { flag: "--workers", default: WorkerDefault::PerServerCpu },
        args: &[],
        against: Some(Against {
            model: "hybrid",
            lesson: "the kernel balancing by hash against an acceptor balancing by load",
        }),
    },
    Model {
        name: "udp",
        package: "echobench-udp",
        binary: "echo-udp",
        transport: Transport::Datagram,
        shape: "datagrams on one socket per worker (SO_REUSEPORT), no connections",
        // Nothing is made per client: a sender is only an address in a datagram.
        per_connection: PerConnection::State,
        // One worker by default, so that the headline is one socket and one thread against
        // one epoll loop; `--batch` stays 1, the loop a reader sees first.
        cpus: CpuUse::Workers { flag: "--workers", default: WorkerDefault::Fixed(1) },
        args: &[],
        against: Some(Against {
            model: "mio",
            lesson: "what a connection costs: datagrams trade ordering and delivery for no per-client state",
        }),
    },
];

/// What the harness assumes of a model the registry does not know (a model under
/// development, a test's server) or of a server the user started: a byte stream, one thread.
/// Scenarios that run every stream model run it; those that choose a few by name do not.
pub const UNKNOWN: Model = Model {
    name: "",
    package: "",
    binary: "",
    transport: Transport::Stream,
    shape: "(not in the registry)",
    per_connection: PerConnection::State,
    cpus: CpuUse::OneThread,
    args: &[],
    against: None,
};

/// The registry's entry for `name`, or [`UNKNOWN`].
pub fn find_or_unknown(name: &str) -> &'static Model {
    find(name).unwrap_or(&UNKNOWN)
}

/// The load generator's package: built with the models, since the harness drives its binary.
pub const GENERATOR_PACKAGE: &str = "echobench-loadgen";

/// The model named `name`, if the suite has it. The harness also runs any other `echo-NAME`
/// binary it finds (a model under development, or a test's server): it then knows nothing
/// about it but its name.
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

/// Every model's name, in order: the default `--models`.
pub fn names() -> Vec<String> {
    MODELS.iter().map(|m| m.name.to_string()).collect()
}

/// The packages whose binaries a comparison runs: every model and the generator.
pub fn packages() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.package).chain([GENERATOR_PACKAGE]).collect()
}

/// The binary of the model `name`: the registry's, or `echo-NAME` for a model it does not know.
pub fn binary(name: &str) -> String {
    find(name).map_or_else(|| format!("echo-{name}"), |m| m.binary.to_string())
}

/// "mio (one event loop on one thread)", or the bare name for a model the registry lacks.
pub fn named(name: &str) -> String {
    match find(name) {
        Some(m) => format!("{name} ({})", m.shape),
        None => name.to_string(),
    }
}

/// The server's command line besides `--addr`: the registry's flags, and the worker count
/// for a model with workers (`workers` overrides the registry's default). Returns the flags
/// and the worker count asked for, if the model has workers.
pub fn server_args(
    name: &str,
    server_cpus: usize,
    workers: Option<u32>,
) -> (Vec<String>, Option<u32>) {
    let Some(model) = find(name) else { return (Vec::new(), None) };
    let mut args: Vec<String> = model.args.iter().map(|a| a.to_string()).collect();
    let mut asked = None;
    if let CpuUse::Workers { flag, default } = model.cpus {
        let n = workers.unwrap_or(match default {
            WorkerDefault::PerServerCpu => server_cpus.max(1) as u32,
            WorkerDefault::Fixed(n) => n,
        });
        args.extend([flag.to_string(), n.to_string()]);
        asked = Some(n);
    }
    (args, asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_packages_and_binaries_are_unique() {
        for (i, a) in MODELS.iter().enumerate() {
            for b in &MODELS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.package, b.package);
                assert_ne!(a.binary, b.binary);
            }
        }
    }

    #[test]
    fn a_worker_model_gets_one_worker_per_server_cpu_unless_told() {
        assert_eq!(server_args("hybrid", 4, None), (vec!["--workers".into(), "4".into()], Some(4)));
        assert_eq!(server_args("hybrid", 4, Some(2)).1, Some(2));
        assert_eq!(server_args("mio", 4, Some(2)), (Vec::new(), None));
        assert_eq!(server_args("unknown", 4, None), (Vec::new(), None));
        assert_eq!(binary("unknown"), "echo-unknown");
    }
}
