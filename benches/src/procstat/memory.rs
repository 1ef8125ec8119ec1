//! Memory, both halves: a process's PSS from `smaps_rollup` (what the server's own pages
//! cost) and the kernel's memory from /proc/meminfo (what PSS leaves out: socket buffers and
//! the structures behind each socket in the slab caches, and for thread and process models a
//! kernel stack and page tables per task).
//!
//! /proc/meminfo is machine-wide. A delta over a repeat counts everything the machine did
//! meanwhile: the generator's own sockets (the other end of every connection, the same for
//! every model), the generator process's own stacks and page tables (it starts after the
//! first read), and whatever else ran. It is a figure for the pair, never the server's alone.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

/// PSS of one process in KiB, from `smaps_rollup`, without its file-backed pages: `Pss` less
/// `Pss_File` (Linux 5.14 and later; older kernels give all of `Pss`).
///
/// The file-backed pages are the binary and its libraries. They cost the same whatever the
/// connections, and their share of PSS is divided among every process that maps the same file:
/// with every server of a scenario alive at once, one echo-mio's share of its own text halved
/// when the control (a second echo-mio) started, and the idle scenario read a peak below the
/// baseline it had taken alone (714 KiB against 1,098 KiB in the first run with rounds). What
/// is left, anonymous and shared memory, is the memory connections cost, and pages a forked
/// tree shares are still counted once across it.
pub fn read_pss_kib(pid: u32) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(pss_without_files(&text))
}

/// `Pss` less `Pss_File` of an `smaps_rollup` text, in KiB.
pub fn pss_without_files(text: &str) -> u64 {
    let field = |key: &str| -> Option<u64> { kib(text, key) };
    field("Pss:").unwrap_or(0).saturating_sub(field("Pss_File:").unwrap_or(0))
}

/// The page tables of one process in KiB: `VmPTE` of `/proc/PID/status` (every thread of a
/// process shares them).
pub fn read_page_tables_kib(pid: u32) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    kib(&text, "VmPTE:").ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmPTE"))
}

/// One kernel stack per task (thread or process), in KiB: THREAD_SIZE, 16 KiB on x86-64 and
/// aarch64 Linux without KASAN. /proc shows no task's own, so the tree's are counted from its
/// threads.
pub const KERNEL_STACK_KIB: i64 = 16;

/// The kernel memory that the server tree's own tasks hold, in KiB: its kernel stacks (from
/// its thread count) and its page tables (summed `VmPTE`); as [`Usage::server_kernel`](
/// super::Usage), the change from the idle tree before the load. Unlike /proc/meminfo's
/// figures, these are the server's alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeKernel {
    /// Kernel stacks: threads times [`KERNEL_STACK_KIB`].
    pub kernel_stack_kib: i64,
    /// Page tables, summed over the tree's processes.
    pub page_tables_kib: i64,
}

/// The kernel's own memory that grows with sockets and tasks, machine-wide, in KiB: a reading
/// of /proc/meminfo, or (as [`Usage::kernel`](super::Usage)) the change between two.
/// Signed, since a change may be negative: the machine freed more than the connections took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelMemory {
    /// `SUnreclaim`: slab objects the kernel cannot drop (a TCP socket, its buffers' heads,
    /// an epoll item, a task's structures).
    pub slab_unreclaimable_kib: i64,
    /// `SReclaimable`: slab objects it may drop under pressure (the socket's inode and
    /// dentry; also every file's, so other work on the machine moves it most).
    pub slab_reclaimable_kib: i64,
    /// `KernelStack`: one kernel stack per task (thread or process), 16 KiB on x86-64.
    pub kernel_stack_kib: i64,
    /// `PageTables`: page tables of every process; a process has its own, a thread adds
    /// those that map its stack.
    pub page_tables_kib: i64,
}

impl KernelMemory {
    /// Reads /proc/meminfo now.
    pub fn read() -> io::Result<KernelMemory> {
        let text = fs::read_to_string("/proc/meminfo")?;
        KernelMemory::parse(&text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "no slab or stack figures in /proc/meminfo")
        })
    }

    /// The figures of a /proc/meminfo text; `None` if one is missing.
    pub fn parse(text: &str) -> Option<KernelMemory> {
        let field = |key: &str| kib(text, key).map(|v| v as i64);
        Some(KernelMemory {
            slab_unreclaimable_kib: field("SUnreclaim:")?,
            slab_reclaimable_kib: field("SReclaimable:")?,
            kernel_stack_kib: field("KernelStack:")?,
            page_tables_kib: field("PageTables:")?,
        })
    }

    /// What changed from `before` to this reading.
    pub fn since(&self, before: &KernelMemory) -> KernelMemory {
        KernelMemory {
            slab_unreclaimable_kib: self.slab_unreclaimable_kib - before.slab_unreclaimable_kib,
            slab_reclaimable_kib: self.slab_reclaimable_kib - before.slab_reclaimable_kib,
            kernel_stack_kib: self.kernel_stack_kib - before.kernel_stack_kib,
            page_tables_kib: self.page_tables_kib - before.page_tables_kib,
        }
    }

    /// Both slab figures (meminfo's `Slab`).
    pub fn slab_kib(&self) -> i64 {
        self.slab_unreclaimable_kib + self.slab_reclaimable_kib
    }

    /// Everything: slab, kernel stacks and page tables.
    pub fn total_kib(&self) -> i64 {
        self.slab_kib() + self.kernel_stack_kib + self.page_tables_kib
    }
}

/// The value of a `Key:   123 kB` line, in KiB.
fn kib(text: &str, key: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix(key))?;
    v.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        8000000 kB\nSlab:             860080 kB\n\
        SReclaimable:     771528 kB\nSUnreclaim:        88552 kB\nKernelStack:        2720 kB\n\
        PageTables:         5976 kB\nSecPageTables:         0 kB\n";

    #[test]
    fn meminfo_parses_and_a_change_may_be_negative() {
        let before = KernelMemory::parse(MEMINFO).unwrap();
        assert_eq!(before.slab_kib(), 860_080, "SReclaimable + SUnreclaim is meminfo's Slab");
        assert_eq!(before.total_kib(), 860_080 + 2720 + 5976);
        let after = KernelMemory {
            slab_unreclaimable_kib: 88_552 + 4000,
            slab_reclaimable_kib: 771_528 - 1000,
            kernel_stack_kib: 2720 + 16_000,
            page_tables_kib: 5976 + 4000,
        };
        let d = after.since(&before);
        assert_eq!((d.slab_kib(), d.kernel_stack_kib, d.page_tables_kib), (3000, 16_000, 4000));
        assert_eq!(d.total_kib(), 23_000);
        assert_eq!(KernelMemory::parse("MemTotal: 1 kB\n"), None, "a missing field is no zero");
    }

    #[test]
    fn pss_leaves_out_file_pages() {
        assert_eq!(pss_without_files("Rss: 900 kB\nPss: 800 kB\nPss_File: 300 kB\n"), 500);
        assert_eq!(pss_without_files("Pss: 800 kB\n"), 800, "older kernels: all of Pss");
    }
}
