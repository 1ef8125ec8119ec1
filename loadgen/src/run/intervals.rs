//! The threads' interval histograms, merged as they arrive and written to the interval log
//! (`--hlog`) in order, each once every thread has moved past it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

use crate::config::Mode;
use crate::hlog::{self, HlogWriter};
use crate::stats::Recorder;

/// The threads' interval histograms, merged per interval and written in order once every
/// thread has moved past them. Without a log, only the total is kept.
#[derive(Debug)]
pub(super) struct Intervals {
    pub(super) total: Recorder,
    /// Whether an interval log is written (else `pending` stays empty).
    logging: bool,
    pending: BTreeMap<u64, Recorder>,
    /// Merged recorders already written, emptied for the next intervals.
    spare: Vec<Recorder>,
    /// The highest interval each thread has handed over (it will send no more at or below it).
    reported: Vec<Option<u64>>,
    pub(super) done: Vec<bool>,
    next_to_write: u64,
    length: Duration,
}

impl Intervals {
    pub(super) fn new(threads: usize, length: Duration, logging: bool) -> Intervals {
        Intervals {
            total: Recorder::new(),
            logging,
            pending: BTreeMap::new(),
            spare: Vec::new(),
            reported: vec![None; threads],
            done: vec![false; threads],
            next_to_write: 0,
            length,
        }
    }

    pub(super) fn add(&mut self, thread: usize, index: u64, recorder: &Recorder) -> Result<()> {
        self.add_last(index, recorder)?;
        self.reported[thread] = Some(index);
        Ok(())
    }

    /// A finished thread's last interval: it has not moved past it, so `reported` stays.
    pub(super) fn add_last(&mut self, index: u64, recorder: &Recorder) -> Result<()> {
        self.total.add(recorder)?;
        if self.logging {
            let spare = &mut self.spare;
            self.pending
                .entry(index)
                .or_insert_with(|| spare.pop().unwrap_or_default())
                .add(recorder)?;
        }
        Ok(())
    }

    /// Writes every interval all threads are done with; at the end (`last_ns` is the
    /// measured window plus drain) writes the rest, the last one cut to its real length.
    pub(super) fn write(
        &mut self,
        hlog: Option<&mut HlogWriter>,
        mode: Mode,
        last_ns: Option<u64>,
    ) -> Result<()> {
        let Some(log) = hlog else { return Ok(()) };
        let complete = match last_ns {
            Some(_) => self.pending.keys().next_back().copied(),
            // While threads run, an interval is complete once every running thread has moved
            // past it (finished threads have sent all they had). The run's last interval waits
            // for the end, when its real length is known.
            None => self
                .reported
                .iter()
                .zip(&self.done)
                .filter(|(_, done)| !**done)
                .map(|(reported, _)| *reported)
                .min()
                .flatten(),
        };
        let Some(upto) = complete else { return Ok(()) };
        while self.next_to_write <= upto {
            let index = self.next_to_write;
            // An interval no thread recorded anything in is written empty, keeping the timeline.
            let mut recorder = self.pending.remove(&index).unwrap_or_default();
            let start = Duration::from_nanos(self.length.as_nanos() as u64 * index);
            let mut length = self.length;
            if let Some(total_ns) = last_ns
                && index == upto
            {
                length = Duration::from_nanos(total_ns)
                    .saturating_sub(start)
                    .max(Duration::from_millis(1));
            }
            recorder.fold_failures(mode == Mode::Open)?;
            log.interval(None, start, length, &recorder.corrected)?;
            log.interval(Some(hlog::TAG_UNCORRECTED), start, length, &recorder.uncorrected)?;
            if mode == Mode::Churn {
                log.interval(Some(hlog::TAG_CONNECT), start, length, &recorder.connect)?;
            }
            recorder.reset();
            self.spare.push(recorder);
            self.next_to_write += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_log_intervals_only_add_to_the_total() {
        let mut intervals = Intervals::new(1, Duration::from_millis(10), false);
        let mut recorder = Recorder::new();
        recorder.corrected.saturating_record(1_000);
        for index in 0..50 {
            intervals.add(0, index, &recorder).unwrap();
            intervals.write(None, Mode::Closed, None).unwrap();
        }
        // No interval is kept for a log that is not written: memory stays flat however long
        // the run and however short the interval.
        assert!(intervals.pending.is_empty());
        assert_eq!(intervals.total.corrected.len(), 50);
    }

    #[test]
    fn written_intervals_give_their_memory_back() {
        let dir = std::env::temp_dir().join(format!("loadgen-intervals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = HlogWriter::create(&dir.join("t.hlog")).unwrap();
        let mut intervals = Intervals::new(1, Duration::from_millis(10), true);
        let recorder = Recorder::new();
        for index in 0..50 {
            intervals.add(0, index, &recorder).unwrap();
            intervals.write(Some(&mut log), Mode::Closed, None).unwrap();
        }
        // Each interval is written once the thread moves past it, and its recorder reused.
        assert!(intervals.pending.len() <= 1, "{} intervals held", intervals.pending.len());
        assert!(intervals.spare.len() <= 2, "{} spare recorders", intervals.spare.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
