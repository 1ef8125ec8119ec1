//! Beyond one machine, proven here: the harness runs the server in one network namespace and
//! drives two generators in two others through `ip netns exec`, each joined to the server's
//! bridge by a veth pair, with addresses from 198.18.0.0/15 (RFC 2544's benchmarking range)
//! and only inside the namespaces this test makes. The merged counts must equal the sum of
//! the shards, every echo must have verified, and the report must name both generators.
//!
//! Namespaces need root and `ip`; without them the test prints "skipped: needs network
//! namespaces" and passes.

use std::process::{Command, Output};

use harness::results::{RepeatStatus, Results};

mod util;
use util::{bin_dir, built};

/// The namespaces of one test run, deleted (with their links) however the test ends.
struct Namespaces {
    prefix: String,
}

impl Namespaces {
    fn name(&self, which: &str) -> String {
        format!("{}-{which}", self.prefix)
    }

    /// `srv` with a bridge at 198.18.0.1/24; `g1` and `g2` at .2 and .3, each on a veth
    /// pair whose other end is a port of the bridge. `None` when namespaces cannot be made.
    fn create() -> Option<Namespaces> {
        // /proc/self belongs to the process's effective user.
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").ok()?);
        if uid != 0 {
            return None;
        }
        // Unique per run (and per concurrent run): the pid and the clock.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        let prefix = format!("ebt{}-{}", std::process::id(), nanos.subsec_micros());
        let ns = Namespaces { prefix };
        let (srv, g1, g2) = (ns.name("srv"), ns.name("g1"), ns.name("g2"));
        let mut steps: Vec<Vec<String>> = Vec::new();
        let mut step = |s: &str| steps.push(s.split(' ').map(str::to_owned).collect());
        for n in [&srv, &g1, &g2] {
            step(&format!("netns add {n}"));
            step(&format!("-n {n} link set lo up"));
        }
        step(&format!("-n {srv} link add br0 type bridge"));
        step(&format!("-n {srv} addr add 198.18.0.1/24 dev br0"));
        step(&format!("-n {srv} link set br0 up"));
        for (i, g) in [(1, &g1), (2, &g2)] {
            // Created directly inside the namespaces: no name is ever taken outside them.
            step(&format!("link add v{i} netns {srv} type veth peer name eth0 netns {g}"));
            step(&format!("-n {srv} link set v{i} master br0"));
            step(&format!("-n {srv} link set v{i} up"));
            step(&format!("-n {g} addr add 198.18.0.{}/24 dev eth0", i + 1));
            step(&format!("-n {g} link set eth0 up"));
        }
        for args in steps {
            let out = Command::new("ip").args(&args).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    let why = String::from_utf8_lossy(&o.stderr);
                    eprintln!("ip {}: {}", args.join(" "), why.trim());
                    return None; // `ns` is dropped here, deleting what was made.
                }
                Err(e) => {
                    eprintln!("cannot run ip: {e}");
                    return None;
                }
            }
        }
        Some(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for which in ["srv", "g1", "g2"] {
            let _ = Command::new("ip").args(["netns", "del", &self.name(which)]).output();
        }
    }
}

fn run_in(ns: &Namespaces, args: &[String]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name("srv")])
        .arg(env!("CARGO_BIN_EXE_echobench"))
        .args(args)
        .output()
        .expect("run echobench")
}

#[test]
fn two_generators_in_other_namespaces_load_one_server_and_their_shards_add_up() {
    let Some(ns) = Namespaces::create() else {
        println!("skipped: needs network namespaces");
        return;
    };
    let bin = bin_dir("netns");
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    let out_dir = bin.join("results");
    let launchers =
        [format!("ip netns exec {}", ns.name("g1")), format!("ip netns exec {}", ns.name("g2"))];
    let mut args: Vec<String> = ["compare", "--models", "mio", "--scenarios", "scale", "--quick"]
        .map(String::from)
        .to_vec();
    // Unpinned: the namespaces share this machine's CPUs, and so do other tests.
    args.extend(["--placement", "unpinned", "--server-addr", "198.18.0.1"].map(String::from));
    for l in &launchers {
        args.extend(["--generator".to_owned(), l.clone()]);
    }
    args.extend(["--bin-dir".into(), bin.display().to_string()]);
    args.extend(["--out".into(), out_dir.display().to_string()]);
    let output = run_in(&ns, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    // A quick run writes only its own folder.
    let run = std::fs::read_dir(&out_dir).unwrap().flatten().find(|e| e.path().is_dir()).unwrap();
    let json = std::fs::read_to_string(run.path().join("results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let remote = r.plan.remote.as_ref().expect("the plan records the generators");
    assert_eq!(remote.generators, launchers);
    let mio = &r.models[0];
    let scale = mio.scenario("scale").unwrap();
    let mut sharded = 0;
    for point in &scale.points {
        for repeat in &point.repeats {
            let label = &point.point.label;
            assert_eq!(repeat.status, RepeatStatus::Ok, "{label}: {:?}", scale.server.faults);
            let report = repeat.loadgen.as_ref().expect("a merged report");
            let generators = repeat.generators.as_ref().expect("the generators are recorded");
            // Every payload verified: each message sent came back intact, none failed.
            let (m, e) = (&report.messages, &report.errors);
            assert!(m.received > 0, "{label}: nothing echoed");
            assert_eq!(m.received, m.sent, "{label}: {e:?}");
            assert_eq!(
                (e.mismatch, e.timeout, e.lost, e.io, e.connect),
                (0, 0, 0, 0, 0),
                "{label}"
            );
            // The merged counts are the sum of the shards'.
            let sum: u64 = generators.each.iter().map(|g| g.received).sum();
            assert_eq!(m.received, sum, "{label}");
            for g in &generators.each {
                assert!(g.failure.is_none() && g.received > 0, "{label}: {g:?}");
                assert!(g.cpus > 0 && g.threads > 0 && !g.host.is_empty(), "{label}: {g:?}");
            }
            // One connection runs on the first generator alone; more are split in two.
            let want = if point.point.connections >= 2 { 2 } else { 1 };
            assert_eq!(generators.each.len(), want, "{label}");
            if want == 2 {
                sharded += 1;
                assert!(generators.start_spread_ms.is_some(), "{label}");
                assert_eq!(report.connections.requested as u32, point.point.connections);
            }
        }
    }
    assert!(sharded >= 1, "no point ran on both generators");
    let addr = scale.server.address.as_deref().unwrap_or_default();
    assert!(addr.starts_with("198.18.0.1:"), "the server bound {addr}");
    // The server bound the benchmarking address, and the report names both generators.
    let md = [run.path().join("report.md"), run.path().join("details.md")]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .concat();
    let row = md.lines().find(|l| l.starts_with("- **Generators**:")).expect("a Generators line");
    for l in &launchers {
        assert!(row.contains(l.as_str()), "{row}");
    }
    assert!(row.contains("198.18.0.1"), "{row}");
    drop(ns);
    let _ = std::fs::remove_dir_all(&bin);
}

/// A launcher needs no network of its own: `env` runs loadgen here, so this part runs
/// without root. One generator that fails fails its repeat, and the fault quotes its stderr's
/// last line; the other's report is not passed off as the whole load.
#[test]
fn a_failed_generator_fails_its_repeat_and_is_quoted() {
    let bin = bin_dir("failed-generator");
    std::os::unix::fs::symlink(built("echobench-mio", "echo-mio"), bin.join("echo-mio")).unwrap();
    let out_dir = bin.join("results");
    let failing = "sh -c 'echo first >&2; echo no route to load2 >&2; exit 3' sh";
    let output = Command::new(env!("CARGO_BIN_EXE_echobench"))
        .args(["compare", "--models", "mio", "--scenarios", "scale", "--connections", "4"])
        .args(["--repeats", "1", "--warmup", "100ms", "--duration", "300ms"])
        .args(["--placement", "unpinned", "--control", "none", "--server-addr", "127.0.0.1"])
        .args(["--generator", "env", "--generator", failing])
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The run completes and reports the fault (its exit status says a fault was recorded).
    assert!(stderr.contains("generator failed: generator 2"), "{stderr}");
    let json = std::fs::read_to_string(out_dir.join("latest/results.json")).unwrap();
    let r: Results = serde_json::from_str(&json).unwrap();
    let scale = r.models[0].scenario("scale").unwrap();
    let repeat = &scale.points[0].repeats[0];
    assert_eq!(repeat.status, RepeatStatus::GeneratorFailed);
    assert!(repeat.loadgen.is_none(), "half a load was merged as if whole");
    let each = &repeat.generators.as_ref().unwrap().each;
    assert!(each[0].failure.is_none() && each[0].received > 0, "{:?}", each[0]);
    let why = each[1].failure.as_deref().unwrap();
    assert!(
        why.contains("exited with status 3") && why.ends_with("stderr: no route to load2"),
        "{why}"
    );
    assert!(scale.server.faults.iter().any(|f| f.detail.contains("no route to load2")));
    let _ = std::fs::remove_dir_all(&bin);
}
