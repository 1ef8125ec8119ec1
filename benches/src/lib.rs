//! The comparison harness: every server model under the same loads, and the report.
//!
//! For each model and scenario the harness starts the model's binary on a free loopback port,
//! waits for its ready line, runs each point of the scenario by spawning the `loadgen` binary
//! (its command line made from loadgen's own typed `Config`), samples the server's process
//! tree from /proc meanwhile, and finally stops the server with SIGTERM and checks that it
//! exits cleanly. After every repeat it writes `results.json` (schema in results/SCHEMA.md)
//! and the histogram logs in `results/<date>-<host>/`, which `results/latest` (a link) and
//! `results/latest.md` (a page) point at (except for a quick run, whose rough figures never
//! replace the newest trustworthy report). When the
//! run ends, completed or stopped by Ctrl-C, it draws `results.csv`, the SVG charts and
//! `report.md` from those results; `echobench rerender DIR` draws them again.
//!
//! The harness is in layers, and they depend on each other one way (tests/layers checks it,
//! and that no modules form a cycle):
//!
//! - **Measuring**: [`plan`] (profiles, placement, the time budget), [`point`] (what one point
//!   asks for), [`measure`] (a scenario's measuring half, [`measure::Measure`]), [`runner`]
//!   (the loop), [`server`] (the server child), [`target`] (a started or [`external`]
//!   server), [`generator`] (the loadgen child, the Ctrl-C handler), [`interrupt`] (whether
//!   Ctrl-C was pressed), [`stopper`] (SIGSTOP schedules, always resumed), [`counters`] (the
//!   kernel's network counters), [`procstat`] (/proc sampling), [`disturb`] (what disturbed a
//!   repeat: steal, run delay, the harness's CPU), [`strace`], [`env`](mod@env) (the
//!   machine), [`registry`] (the models), [`binaries`] (what the bench targets build),
//!   [`metrics`] (figures from loadgen's report), [`results`] (the schema), [`criterion`]
//!   (criterion's figures) and [`output`] (the run folder and results.json). It never refers
//!   to the rendering side.
//! - **Rendering**: [`render`] (the entry: CSV, charts, report.md from the results),
//!   [`present`] (a scenario's presenting half, [`present::Present`], the whole
//!   [`present::Scenario`], and the [`present::View`] findings read), [`report`], [`charts`],
//!   [`csv`], [`findings`] (the pieces of the prose), [`caveats`] and [`baseline`]. It reads
//!   the measuring side's types and runs nothing.
//! - **Scenarios**: [`scenario`], one file per scenario implementing both halves, and the
//!   list [`scenario::ALL`].
//! - **The top**: [`session`] (measure, then render, then the exit status) and [`cli`] (the
//!   flags), which alone hold whole scenarios and use both layers.
//!
//! [`text`] (number formatting) is a leaf that refers to no other module. This file only
//! declares the modules and re-exports the entry points; modules name the module that
//! defines an item, never `crate::Item`.
//!
//! `cargo bench --bench compare` calls [`run`] in-process; the `echobench` binary calls
//! [`cli::main`].
//!
//! Adding a model: its crate in `servers/`, its `tests/conformance.rs`, and one entry in
//! [`registry::MODELS`]. Adding a scenario: one file in `src/scenario/` implementing
//! [`measure::Measure`] and [`present::Present`], and one entry in [`scenario::ALL`].

pub mod baseline;
pub mod binaries;
pub mod caveats;
pub mod charts;
pub mod cli;
pub mod compare;
pub mod counters;
pub mod criterion;
pub mod criterion_notes;
pub mod csv;
pub mod disturb;
pub mod env;
pub mod external;
pub mod findings;
pub mod generator;
pub mod generators;
pub mod hosts;
pub mod interrupt;
pub mod measure;
pub mod metrics;
pub mod noise;
pub mod output;
pub mod plan;
pub mod point;
pub mod present;
pub mod procstat;
pub mod registry;
pub mod remote;
pub mod render;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod session;
pub mod stopper;
pub mod strace;
pub mod target;
pub mod text;

pub use cli::CompareArgs;
pub use session::{Options, Outcome, check_regressions, fault_count, main, print_plan, run};
