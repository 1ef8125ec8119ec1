//! `echobench`: the comparison harness, run by hand.
//!
//! `echobench compare --models mio,hybrid --scenarios scale` measures; `echobench rerender DIR`
//! rewrites a stored run's report. `cargo bench` runs the same harness in-process.
fn main() {
    std::process::exit(harness::cli::main());
}
