//! What a server's process tree costs, read from `/proc`.
//!
//! A server is one process (thread, mio, hybrid, reuseport) or a parent with one forked child
//! per connection (fork), so every measure here covers the tree: the server and its
//! descendants.
//! Two traps, both noted in the project's field notes:
//!
//! - RSS summed over forked children counts the pages they share with the parent once per
//!   process. PSS (proportional set size, from `smaps_rollup`) divides each shared page among
//!   its sharers, so the sum over the tree is the memory the tree really uses.
//! - A reaped child's CPU time moves into its parent's `cutime`/`cstime`; the tree's CPU is
//!   the live processes' `utime + stime` plus the root's `cutime + cstime`.

use std::collections::HashMap;
use std::fs;

/// The fields of `/proc/PID/stat` the suite uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// One letter: R running, S sleeping, Z zombie, ...
    pub state: char,
    pub ppid: i32,
    /// Process group: the suite starts each server in a group of its own, which its
    /// children inherit, so the group finds them even after the server is gone.
    pub pgrp: i32,
    /// CPU time in clock ticks (see [`ticks_per_second`]), for this process's live threads.
    pub utime: u64,
    pub stime: u64,
    /// CPU time of children this process has waited for.
    pub cutime: u64,
    pub cstime: u64,
    pub num_threads: u64,
    /// Start time since boot, in ticks: with the pid, it names one process even if the pid
    /// is later reused.
    pub starttime: u64,
}

/// Reads `/proc/PID/stat`, or `None` if the process no longer exists.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `/proc/PID/stat` line. The command name, in parentheses, may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 of proc(5) (state), so field N is `fields[N - 3]`.
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
        num_threads: field(20)?,
        starttime: field(22)?,
    })
}

/// Every process (zombies aside) in process group `pgrp`.
pub fn group_members(pgrp: i32) -> Vec<i32> {
    all_stats().filter(|s| s.pgrp == pgrp && s.state != 'Z').map(|s| s.pid).collect()
}

/// Every process's stat that can be read.
fn all_stats() -> impl Iterator<Item = Stat> {
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(|entry| stat(entry.file_name().to_str()?.parse().ok()?))
}

/// Every live process whose parent chain leads to `root` (not `root` itself), found by
/// scanning `/proc/*/stat` for parent ids.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for stat in all_stats() {
        children.entry(stat.ppid).or_default().push(stat.pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// The children of `pid`'s main thread (a fork server's connections), zombies included,
/// from `/proc/PID/task/PID/children`; empty if the process is gone.
pub fn children(pid: i32) -> Vec<i32> {
    let list = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace().filter_map(|pid| pid.parse().ok()).collect()
}

/// Whether the process is asleep in accept(2) or accept4(2), as `/proc/PID/syscall` shows
/// (a pre-forked worker between two connections); false if it is gone or running.
pub fn in_accept(pid: i32) -> bool {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let number = text.split_whitespace().next().and_then(|n| n.parse::<libc::c_long>().ok());
    number.is_some_and(|n| n == libc::SYS_accept || n == libc::SYS_accept4)
}

/// `root` and its descendants.
pub fn tree(root: i32) -> Vec<i32> {
    let mut pids = vec![root];
    pids.extend(descendants(root));
    pids
}

/// Threads in the tree (a process counts its main thread).
pub fn tree_threads(root: i32) -> u64 {
    tree(root).into_iter().filter_map(stat).map(|s| s.num_threads).sum()
}

/// The names of the process's threads (`/proc/PID/task/*/comm`, at most 15 bytes each, as
/// the kernel keeps them), sorted; empty if the process is gone. A runtime that names its
/// threads can be seen to start exactly the ones it should, and no others.
pub fn thread_names(pid: i32) -> Vec<String> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    let mut names: Vec<String> = tasks
        .filter_map(|task| fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

/// The tree's proportional set size in KiB: resident memory with shared pages divided among
/// the processes that share them.
pub fn tree_pss_kib(root: i32) -> u64 {
    tree(root).into_iter().filter_map(|pid| rollup_kib(pid, "Pss:")).sum()
}

/// The anonymous part of the tree's PSS in KiB: heap, stacks and other memory the processes
/// allocated, with pages that forked children still share with their parent divided among
/// them. Unlike the whole PSS it leaves out file pages (the binary, shared libraries), whose
/// share moves whenever another process mapping the same file starts or exits: a parallel
/// test's server exiting added 900 KiB to this server's PSS here.
pub fn tree_pss_anon_kib(root: i32) -> u64 {
    tree(root).into_iter().filter_map(|pid| rollup_kib(pid, "Pss_Anon:")).sum()
}

/// The tree's resident set size in KiB (shared pages counted once per process).
pub fn tree_rss_kib(root: i32) -> u64 {
    tree(root).into_iter().filter_map(|pid| rollup_kib(pid, "Rss:")).sum()
}

/// One line of `/proc/PID/smaps_rollup`, such as `Pss:   1234 kB`, in KiB.
fn rollup_kib(pid: i32, key: &str) -> Option<u64> {
    rollup_field(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?, key)
}

/// The line of `smaps_rollup` text that starts with `key`, in KiB.
fn rollup_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU time used by the tree so far, in clock ticks: the live processes' own time plus what
/// the root's reaped children used.
pub fn tree_cpu_ticks(root: i32) -> u64 {
    let own: u64 = tree(root).into_iter().filter_map(stat).map(|s| s.utime + s.stime).sum();
    let reaped = stat(root).map_or(0, |s| s.cutime + s.cstime);
    own + reaped
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times (100 on Linux).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf takes no pointers and only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Descriptors the process has open (the entries of `/proc/PID/fd`), 0 if it is gone.
pub fn open_fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// What each of the process's open descriptors refers to (the targets of the links in
/// `/proc/PID/fd`, such as `socket:[1234]` or `/dev/null`), empty if it is gone. Meant for
/// failure messages: a count from [`open_fds`] says that a descriptor leaked, this says which.
pub fn fd_targets(pid: i32) -> Vec<String> {
    let entries = fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
    entries
        .filter_map(|entry| fs::read_link(entry.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

/// Whether the process named by `pid` and `starttime` still runs: it exists (the pid was not
/// reused by a newer process) and is not a zombie waiting to be reaped.
pub fn is_alive(pid: i32, starttime: u64) -> bool {
    stat(pid).is_some_and(|s| s.starttime == starttime && s.state != 'Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (odd) name)) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    7 3 2 1 20 0 5 0 123456 1000000 200 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.pid, stat.state, stat.ppid, stat.pgrp), (4242, 'S', 17, 4242));
        assert_eq!((stat.utime, stat.stime, stat.cutime, stat.cstime), (7, 3, 2, 1));
        assert_eq!((stat.num_threads, stat.starttime), (5, 123456));
    }

    /// Held by the tests that measure this process's tree or add to it, so that one's child
    /// does not appear in the other's tree between two readings.
    static TREE: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn this_process_is_measured() {
        let _tree = TREE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let me = std::process::id() as i32;
        let stat = stat(me).unwrap();
        assert_eq!(stat.pid, me);
        assert!(is_alive(me, stat.starttime));
        assert!(!is_alive(me, stat.starttime + 1), "a different start time is another process");
        assert!(tree_threads(me) >= 1);
        assert!(!thread_names(me).is_empty());
        assert!(tree_pss_kib(me) > 0);
        assert!(tree_pss_anon_kib(me) > 0);
        assert!(tree_rss_kib(me) > 0);
        // A test process holds at least stdin, stdout and stderr.
        assert!(fd_targets(me).len() >= 3, "{:?}", fd_targets(me));
        // Compared within one reading: other tests' threads allocate and free meanwhile.
        let rollup = fs::read_to_string(format!("/proc/{me}/smaps_rollup")).unwrap();
        let [rss, pss, anon] =
            ["Rss:", "Pss:", "Pss_Anon:"].map(|key| rollup_field(&rollup, key).unwrap());
        assert!(rss >= pss && pss >= anon, "Rss {rss}, Pss {pss}, Pss_Anon {anon} KiB");
    }

    #[test]
    fn a_spawned_child_is_a_descendant_and_leads_its_own_group() {
        let _tree = TREE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        use std::os::unix::process::CommandExt;
        let mut child =
            std::process::Command::new("sleep").arg("5").process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let found = descendants(std::process::id() as i32).contains(&pid);
        let group = group_members(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
        assert_eq!(group, [pid]);
    }
}
