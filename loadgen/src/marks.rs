//! `--marks`: a line on stdout the moment the measured window opens, and another the moment it
//! closes, for a caller that measures something else over the same window.
//!
//! The echobench harness reads a server's CPU time at these two instants. CPU time is
//! cumulative, so two reads at the window's edges give the window's CPU exactly; before the
//! marks it snapshotted the whole server tree every 150 ms to find the edges afterwards, and
//! for a forking server with 4,000 children those walks took the CPU the generator needed.
//!
//! The coordinating thread prints the marks (never a load thread), waking at each mark's due
//! instant, so a mark is late by a timer wake-up (tens of microseconds), not by its 50 ms
//! progress tick. Standard output is line-buffered, so each line leaves at once. A window
//! that waits past the warm-up for connections' first echoes (see `phase::Gate`) opens when
//! the coordinator sees the last one, which it checks every millisecond while it waits:
//! `window start` is printed at that decision, which is the window's edge.

use std::io::Write;

/// What a mark line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The warm-up is over: from now on every message counts.
    Start,
    /// Sending stops: the window is over (the drain that follows is outside it).
    End,
}

impl Mark {
    /// The line printed for this mark (without its newline).
    pub fn line(self) -> &'static str {
        match self {
            Mark::Start => "window start",
            Mark::End => "window end",
        }
    }

    /// The mark a line of loadgen's standard output announces, if it is one.
    pub fn parse(line: &str) -> Option<Mark> {
        [Mark::Start, Mark::End].into_iter().find(|m| line.trim_end() == m.line())
    }

    /// Prints the mark on standard output and flushes it. A closed stdout is ignored: the
    /// marks are for the caller, and a caller that stopped reading has no use for them.
    pub(crate) fn print(self) {
        if ON_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
            let mut out = std::io::stderr().lock();
            let _ = writeln!(out, "{}", self.line()).and_then(|()| out.flush());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.line()).and_then(|()| out.flush());
        }
    }
}

/// Whether marks go to stderr: with `--json -` the report owns standard output.
static ON_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends the marks to stderr (`true`) or stdout.
pub(crate) fn to_stderr(yes: bool) {
    ON_STDERR.store(yes, std::sync::atomic::Ordering::Relaxed);
}

/// When each mark is due, and which have been printed.
#[derive(Debug)]
pub(crate) struct Marks {
    open: std::time::Instant,
    close: std::time::Instant,
    printed: u8,
}

impl Marks {
    /// The marks of a window that opens at `open` (the warm-up's end, or later if the
    /// window waited for first echoes: see `phase::Gate`) and lasts `duration`.
    pub fn new(open: std::time::Instant, duration: std::time::Duration) -> Marks {
        Marks { open, close: open + duration, printed: 0 }
    }

    /// The instant the next mark is due, if one is still to come.
    pub fn next_due(&self) -> Option<std::time::Instant> {
        match self.printed {
            0 => Some(self.open),
            1 => Some(self.close),
            _ => None,
        }
    }

    /// Prints every mark due by `now`. A cancelled run's window closes at once, but only a
    /// window that opened closes: a run cancelled during the warm-up prints no mark at all.
    pub fn print_due(&mut self, now: std::time::Instant, cancelled: bool) {
        if self.printed == 0 && now >= self.open && !cancelled {
            Mark::Start.print();
            self.printed = 1;
        }
        if self.printed == 1 && (now >= self.close || cancelled) {
            Mark::End.print();
            self.printed = 2;
        }
    }

    /// At the end of the run: a window that opened is closed, whatever stopped the threads.
    pub fn finish(&mut self) {
        if self.printed == 1 {
            Mark::End.print();
            self.printed = 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back_to_their_marks_and_nothing_else_does() {
        for mark in [Mark::Start, Mark::End] {
            assert_eq!(Mark::parse(mark.line()), Some(mark));
            assert_eq!(Mark::parse(&format!("{}\n", mark.line())), Some(mark));
        }
        assert_eq!(Mark::parse("window started"), None);
        assert_eq!(Mark::parse("throughput: 100 msgs/s"), None);
    }

    #[test]
    fn marks_fall_due_in_order() {
        let start = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        let mut marks = Marks::new(start + ms(100), ms(200));
        assert_eq!(marks.next_due(), Some(start + ms(100)));
        marks.print_due(start + ms(50), false);
        assert_eq!(marks.printed, 0, "still warming up");
        marks.print_due(start + ms(100), false);
        assert_eq!(marks.next_due(), Some(start + ms(300)));
        marks.print_due(start + ms(300), false);
        assert_eq!(marks.next_due(), None);
    }

    #[test]
    fn a_run_cancelled_in_its_warmup_prints_no_mark_and_one_in_its_window_closes_it() {
        let start = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        let mut warming = Marks::new(start + ms(100), ms(200));
        warming.print_due(start + ms(50), true);
        warming.finish();
        assert_eq!(warming.printed, 0);
        let mut measuring = Marks::new(start + ms(100), ms(200));
        measuring.print_due(start + ms(150), false);
        measuring.print_due(start + ms(160), true);
        assert_eq!(measuring.printed, 2);
    }
}
