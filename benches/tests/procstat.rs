//! /proc sampling against real child processes: the tree, threads, PSS and CPU are found.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use harness::procstat::*;

#[test]
fn a_sleeping_child_is_one_process_with_a_thread() {
    let mut child = Command::new("sleep").arg("5").stdin(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let members = tree(pid).unwrap();
    let mut tracker = Tracker::new(pid);
    let snap = tracker.snapshot(true);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(members.len(), 1);
    let snap = snap.unwrap();
    assert_eq!(snap.processes, 1);
    assert!(snap.threads >= 1);
    assert!(snap.pss_kib.unwrap() > 0, "a live process has some PSS");
}

#[test]
fn a_process_memory_does_not_shrink_when_others_map_the_same_binary() {
    // PSS divides a file's pages among every process that maps them, so a server's PSS fell
    // when a second instance of its binary (the control) started. The figure the harness reads
    // leaves file pages out, so other processes of the same binary do not move it.
    let spawn = || Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
    let rollup = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |text: &str, key: &str| -> u64 {
        let v = text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("0");
        v.trim().trim_end_matches("kB").trim().parse().unwrap()
    };
    // A child counts once it runs `sleep` and has mapped it (until exec it is a copy of us).
    let ready = |pid: u32| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            if comm.trim() == "sleep" && field(&rollup(pid), "Pss_File:") > 0 {
                return;
            }
            assert!(Instant::now() < deadline, "sleep {pid} never started");
            thread::sleep(Duration::from_millis(5));
        }
    };
    let mut first = spawn();
    ready(first.id());
    let alone = rollup(first.id());
    let others: Vec<_> = (0..4).map(|_| spawn()).collect();
    others.iter().for_each(|o| ready(o.id()));
    let shared = rollup(first.id());
    let read = read_pss_kib(first.id()).unwrap();
    for mut c in others {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // The premise: the whole PSS fell as the others mapped the same file.
    assert!(field(&shared, "Pss:") < field(&alone, "Pss:"), "{alone}\n{shared}");
    assert_eq!(pss_without_files(&alone), read, "{alone}\n{shared}");
    assert!(read > 0, "a live process has anonymous memory");
}

#[test]
fn the_tree_includes_grandchildren_and_the_sampler_sees_them() {
    // `sh` forks a `sleep` and waits: two processes, the second a descendant of the first.
    let mut child = Command::new("sh").args(["-c", "sleep 5; true"]).spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tree(pid).unwrap().len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let sampler = Sampler::start(pid).unwrap();
    thread::sleep(Duration::from_millis(400));
    let samples = sampler.finish();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(samples.len() >= 2, "{} samples", samples.len());
    let usage = Usage::over(&samples, samples[0].at, samples.last().unwrap().at).unwrap();
    assert_eq!(usage.peak_processes, 2);
    assert!(usage.peak_threads >= 2);
    assert!(usage.peak_pss_kib > 0);
    assert!(usage.window_seconds > 0.0);
}

#[test]
fn cpu_spread_over_many_short_lived_workers_is_counted() {
    use std::os::unix::process::CommandExt;
    // Twenty children each spin a few milliseconds, then sleep: each one's stat shows 0 or
    // 1 tick, so summing ticks would lose most of it; schedstat keeps it all.
    let script = "for i in $(seq 20); do (n=0; while [ $n -lt 2000 ]; do n=$((n+1)); done; \
                  sleep 5) & done; wait";
    let mut child = Command::new("sh").args(["-c", script]).process_group(0).spawn().unwrap();
    let pid = child.id();
    let mut tracker = Tracker::new(pid);
    let first = tracker.snapshot(false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = first;
    // Wait until every child has finished spinning (the tree's CPU stops growing).
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(300));
        let now = tracker.snapshot(false).unwrap();
        let settled = now.cpu_ns == last.cpu_ns && now.processes >= 21;
        last = now;
        if settled {
            break;
        }
    }
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    child.wait().unwrap();
    let usage = Usage::over(&[first, last], first.at, last.at).unwrap();
    assert!(last.processes >= 21, "{} processes", last.processes);
    assert!(usage.cpu_seconds > 0.02, "{usage:?}");
}

#[test]
fn a_vanished_root_is_an_error_not_a_panic() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(tree(pid).is_err());
}

#[test]
fn waiting_for_the_tree_to_settle_sees_its_children_reaped() {
    // `sh` runs three short sleeps, reaps them, then becomes one long sleep: the tree shrinks
    // from four processes to one, as a forking server's does when a repeat's clients leave.
    let script = "sleep 1 & sleep 1 & sleep 1 & wait; exec sleep 10";
    let mut child = Command::new("sh").args(["-c", script]).spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tree(pid).unwrap().len() < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let busy = wait_for_processes(pid, 1, Duration::ZERO);
    let settled = wait_for_processes(pid, 1, Duration::from_secs(10));
    let members = tree(pid).unwrap().len();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!busy, "three children were still running");
    assert!(settled, "the children exited and were reaped");
    assert_eq!(members, 1);
}

/// A snapshot as the sampler would take it: CPU read when `cpu_ns` is given.
fn snap(at: Instant, cpu_ns: Option<u64>, processes: u32, mark: Option<loadgen::Mark>) -> Snapshot {
    Snapshot {
        at,
        cpu_ns: cpu_ns.unwrap_or(0),
        user_ticks: 0,
        sys_ticks: 0,
        ctx_voluntary: 0,
        ctx_involuntary: 0,
        processes,
        threads: processes,
        pss_kib: Some(u64::from(processes) * 100),
        kernel: None,
        page_tables_kib: Some(u64::from(processes) * 40),
        cpu: cpu_ns.is_some(),
        mark,
    }
}

#[test]
fn the_window_runs_from_mark_to_mark_and_peak_reads_count_only_for_peaks() {
    use loadgen::Mark;
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let samples = [
        snap(ms(0), Some(0), 1, None),
        snap(ms(100), Some(50_000_000), 3, Some(Mark::Start)),
        // A peak read: its CPU fields were never read and must not end the window.
        snap(ms(200), None, 9, None),
        snap(ms(1100), Some(550_000_000), 4, Some(Mark::End)),
        snap(ms(1300), Some(600_000_000), 1, None),
    ];
    // The caller's own guess at the window is off by 50 ms; the marks decide.
    let usage = Usage::over(&samples, ms(150), ms(1150)).unwrap();
    assert!((usage.window_seconds - 1.0).abs() < 1e-9, "{usage:?}");
    assert!((usage.cpu_seconds - 0.5).abs() < 1e-9, "{usage:?}");
    assert_eq!(usage.peak_processes, 9, "the peak read counts for the peaks");
    assert_eq!(usage.peak_pss_kib, 900);
    // Without marks the CPU snapshots inside the window are used, never a peak read.
    let unmarked: Vec<Snapshot> = samples.iter().map(|s| Snapshot { mark: None, ..*s }).collect();
    let usage = Usage::over(&unmarked, ms(50), ms(1200)).unwrap();
    assert!((usage.cpu_seconds - 0.5).abs() < 1e-9, "{usage:?}");
}

#[test]
fn kernel_memory_is_read_at_the_peak_against_the_first_reading() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let kernel = |slab: i64, stack: i64| KernelMemory {
        slab_unreclaimable_kib: slab,
        slab_reclaimable_kib: 1000,
        kernel_stack_kib: stack,
        page_tables_kib: 500,
    };
    let with = |s: Snapshot, k: KernelMemory| Snapshot { kernel: Some(k), ..s };
    let samples = [
        with(snap(ms(0), Some(0), 1, None), kernel(10_000, 100)),
        // The peak of PSS (9 processes): the kernel's figure is the one read with it, not the
        // larger one read later while the tree was already smaller.
        with(snap(ms(200), None, 9, None), kernel(12_000, 244)),
        with(snap(ms(900), None, 4, None), kernel(15_000, 300)),
    ];
    let usage = Usage::over(&samples, ms(0), ms(1000)).unwrap();
    let k = usage.kernel.expect("both readings present");
    assert_eq!((k.slab_kib(), k.kernel_stack_kib, k.page_tables_kib), (2000, 144, 0));
    assert_eq!(k.total_kib(), 2144);
    // The tree's own: 8 more threads (processes here) than at first, 8 x 40 KiB of page tables.
    let own = usage.server_kernel.expect("page tables read at both");
    assert_eq!((own.kernel_stack_kib, own.page_tables_kib), (8 * KERNEL_STACK_KIB, 320));
    // Without the first reading there is no change to state.
    let later = [samples[1], samples[2]].map(|s| Snapshot { kernel: None, cpu: true, ..s });
    assert_eq!(Usage::over(&later, ms(0), ms(1000)).unwrap().kernel, None);
}

#[test]
fn the_sampler_reads_cpu_when_marked_and_not_in_between() {
    use loadgen::Mark;
    let mut child = Command::new("sleep").arg("5").stdin(Stdio::null()).spawn().unwrap();
    let sampler = Sampler::start(child.id()).unwrap();
    let marker = sampler.marker();
    marker.mark(Mark::Start);
    marker.mark(Mark::End);
    let samples = sampler.finish();
    child.kill().unwrap();
    child.wait().unwrap();
    let cpu: Vec<Option<Mark>> = samples.iter().filter(|s| s.cpu).map(|s| s.mark).collect();
    // The first read, one per mark, the last: CPU is never read on the peaks' schedule.
    assert_eq!(cpu, [None, Some(Mark::Start), Some(Mark::End), None]);
    let start = samples.iter().find(|s| s.mark == Some(Mark::Start)).unwrap();
    assert!(start.pss_kib.is_some_and(|p| p > 0), "PSS is read as the window opens");
    assert!(samples[0].kernel.is_some(), "the kernel's memory is read before the load");
    assert!(start.kernel.is_some(), "and beside every PSS read");
    assert!(start.page_tables_kib.is_some_and(|p| p > 0), "sleep has page tables of its own");
    let end = samples.iter().position(|s| s.mark == Some(Mark::End)).unwrap();
    assert!(samples[end + 1].pss_kib.is_some_and(|p| p > 0), "PSS is read as the window closes");
}
