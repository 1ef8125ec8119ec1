//! The scenarios: one file each, each answering one question with its points, its table, its
//! findings and its charts.
//!
//! A scenario provides both halves of the harness: what to measure ([`Measure`], on the
//! measuring side: its points, its server and loadgen settings) and how to present it
//! ([`Present`], on the rendering side: its question, table, findings and charts). A type
//! with both is a [`Scenario`]. [`ALL`] lists them in the order a run executes them. The
//! command line (`--scenarios` and each scenario's points flag), the plan, the runner and the
//! report all iterate that list, so adding a scenario is one file here and one entry in
//! [`ALL`]; nothing else changes.
//!
//! A scenario file imports the traits from [`crate::measure`] and [`crate::present`], never
//! from this module, so that this list (which names every file) is the only thing that ties
//! them together.

mod backlog;
mod batch;
mod churn;
mod cores;
mod idle;
mod latency;
mod nagle;
mod pipeline;
mod scale;
mod size;
mod stall;
mod syscalls;
mod udp;

pub use crate::measure::{Headline, Measure, P99, PointsFlag, THROUGHPUT, counts, find, installed};
pub use crate::present::{Cell, Column, Present, Scenario, View, col};
pub use cores::placements;
pub use idle::{IdleCost, idle_cost};

/// Every scenario, in the order a run executes them. A scenario whose rates refer to another's
/// figure (latency uses scale's capacity) comes after it.
pub static ALL: &[&dyn Scenario] = &[
    &scale::Scale,
    &size::Size,
    &churn::Churn,
    &idle::Idle,
    &latency::Latency,
    &syscalls::Syscalls,
    &backlog::Backlog,
    &pipeline::Pipeline,
    &stall::Stall,
    &nagle::Nagle,
    &cores::Cores,
    &udp::Udp,
    &batch::Batch,
];

/// Every built-in scenario's name: the default `--scenarios`.
pub fn names() -> Vec<String> {
    ALL.iter().map(|s| s.name().to_string()).collect()
}
