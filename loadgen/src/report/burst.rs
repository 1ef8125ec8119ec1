//! The report's `burst` section (`--burst N`): what became of each of N connections opened
//! at once, and how long each took to connect and to get its echo back.

use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// One burst, as a whole and connection by connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    /// Connections opened at once (`--burst`).
    pub connections: usize,
    /// How long starting all the connects took, in microseconds: the calls are made one
    /// after another, so the last starts this much after the first (each connect's latency
    /// counts from the burst's start, and includes its wait for its turn).
    pub opening_us: f64,
    /// How many connections ended each way; they add up to `connections`.
    pub outcomes: Outcomes,
    /// From the burst's start to each connection's connect completing (connected ones only).
    pub connect_us: Latency,
    /// From the burst's start to each intact echo arriving (echoed ones only).
    pub echo_us: Latency,
    /// Every connection, in the order the connects were started.
    pub each: Vec<BurstConnection>,
}

/// How many connections of the burst ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub echoed: u64,
    pub refused: u64,
    pub connect_timeout: u64,
    pub error: u64,
    pub echo_timeout: u64,
    pub mismatch: u64,
}

impl Outcomes {
    /// Counts one more connection that ended as `outcome`.
    pub fn count(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Echoed => &mut self.echoed,
            Outcome::Refused => &mut self.refused,
            Outcome::ConnectTimeout => &mut self.connect_timeout,
            Outcome::Error => &mut self.error,
            Outcome::EchoTimeout => &mut self.echo_timeout,
            Outcome::Mismatch => &mut self.mismatch,
        };
        *slot += 1;
    }

    pub fn total(&self) -> u64 {
        self.echoed
            + self.refused
            + self.connect_timeout
            + self.error
            + self.echo_timeout
            + self.mismatch
    }
}

/// One connection of the burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurstConnection {
    /// From the burst's start to the connect completing; `null` if it never did.
    pub connect_us: Option<f64>,
    /// From the burst's start to the whole echo arriving (intact or not); `null` if it
    /// never did.
    pub echo_us: Option<f64>,
    pub outcome: Outcome,
}

/// How one connection of the burst ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Connected, sent its message, and got it back intact.
    Echoed,
    /// The connect was refused: nothing listens there (TCP), or a Unix listener's backlog
    /// was full (a non-blocking Unix connect is refused at once, EAGAIN, where TCP would
    /// drop the SYN and retry).
    Refused,
    /// Not connected within `--timeout`.
    ConnectTimeout,
    /// Any other failure: a connect that failed otherwise, or a connection reset or closed
    /// before its echo was complete, or the run was cancelled.
    Error,
    /// Connected, but the whole echo did not arrive within `--timeout` of connecting.
    EchoTimeout,
    /// The echo arrived whole but differed from the message.
    Mismatch,
}
