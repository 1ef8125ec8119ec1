//! A point's rounds: each runs every server of the scenario once, in an order shuffled per
//! round, so that drift on a shared machine falls on every server alike instead of turning into
//! a difference between servers measured minutes apart (randomized multiple interleaved
//! trials: ../shared/MEASURING.md). Rounds go on past the plan's least while some pair of
//! servers is undecided, up to the plan's most and within its budget; then the point's paired
//! comparisons are made from them.

use anyhow::Result;

use super::{Live, Runner, now_rfc3339_millis};
use crate::compare::{self, Comparison, Figure, Verdict};
use crate::generator::interrupted;
use crate::measure::Measure;
use crate::plan::Point;
use crate::results::*;

use super::repeat::{self, Each};

impl Runner<'_> {
    /// Runs the rounds of `point` over the servers running it.
    pub(super) fn rounds(
        &mut self,
        scenario: &dyn Measure,
        point: &Point,
        live: &mut [Live],
    ) -> Result<()> {
        let (least, most) = (self.plan().repeats_of(point), self.plan().max_rounds_of(point));
        let servers = live.iter().filter(|l| l.running).count();
        for round in 1..=most {
            if interrupted() || !live.iter().any(|l| l.running) {
                break;
            }
            if round > least {
                if self.decided(scenario, point) {
                    break;
                }
                if !self.within_budget(point, servers) {
                    eprintln!("  no more rounds at {}: the run's budget is spent", point.label);
                    break;
                }
            }
            let names: Vec<(usize, String)> = live
                .iter()
                .filter(|l| l.running)
                .map(|l| (l.who, self.results.models[l.who].name.clone()))
                .collect();
            let order = shuffled(names, self.plan().seed, point, round);
            self.results.order.push(RoundOrder {
                scenario: point.scenario.clone(),
                point: point.label.clone(),
                round,
                servers: order.iter().map(|(_, n)| n.clone()).collect(),
            });
            for (who, _) in order {
                let Some(l) = live.iter_mut().find(|l| l.who == who) else { continue };
                let traced = point.traced(round, least);
                if !self.measure(scenario, point, l, round, round, traced)? {
                    l.running = false;
                    l.out = true;
                }
            }
            if round == least {
                self.planned_done += self.plan().point_time(point).as_secs_f64() * servers as f64;
            }
        }
        Ok(())
    }

    /// A point's traced extra repeat (pipeline's count of system calls), for every server,
    /// after its rounds and outside them: strace slows the server, so it pairs with nothing.
    pub(super) fn traced_extra(
        &mut self,
        scenario: &dyn Measure,
        point: &Point,
        live: &mut [Live],
    ) -> Result<()> {
        if point.trace != crate::plan::Trace::Extra {
            return Ok(());
        }
        for l in live.iter_mut().filter(|l| l.running) {
            self.who = l.who;
            let index = self.point_mut().repeats.len() as u32 + 1;
            if !self.measure(scenario, point, l, index, 0, true)? {
                l.out = true;
            }
        }
        Ok(())
    }

    /// One repeat of `point` against the server `l`, recorded with its round, and run once
    /// more at once if something outside the harness disturbed it (steal above
    /// [`crate::disturb::STEAL_LIMIT`]): the first is kept in the results, marked `replaced`,
    /// and the figures leave it out. `false` when the server died and can go on no longer.
    fn measure(
        &mut self,
        scenario: &dyn Measure,
        point: &Point,
        l: &mut Live,
        index: u32,
        round: u32,
        traced: bool,
    ) -> Result<bool> {
        self.who = l.who;
        if traced && !crate::measure::installed("strace") {
            let note = "calls/msg skipped: strace not installed".to_string();
            if !self.scenario_mut().notes.contains(&note) {
                eprintln!("  {note}");
                self.scenario_mut().notes.push(note);
            }
            return Ok(true);
        }
        let mut again = true;
        loop {
            self.progress(point, round.max(index));
            let current = l.current.as_mut().expect("a running server");
            let setup = current.setup.clone();
            let each = Each { point, setup: &setup, rate: l.rate, index, traced };
            let started_at = now_rfc3339_millis();
            let mut repeat = self.repeat(&mut current.target, scenario, each);
            repeat.round = round;
            repeat.started_at = Some(started_at);
            let died = repeat.status == RepeatStatus::ServerDied;
            let line = repeat.metrics.as_ref().map(|m| repeat::one_line(m, scenario.unit()));
            let disturbed = repeat.disturbance.as_ref().and_then(|d| d.disturbed());
            let rerun = again && !died && !interrupted() && disturbed.is_some();
            if rerun {
                repeat.replaced = disturbed.clone();
            }
            let run_dir = self.out.run_dir.clone();
            let entry = self.point_mut();
            entry.repeats.push(repeat);
            entry.summary = Summary::of(&entry.repeats);
            if entry.target_rate.is_some() {
                entry.merged = merge(&run_dir, &entry.repeats);
            }
            if let Some(line) = line {
                eprintln!("{line}");
            }
            self.save()?;
            if !rerun {
                return Ok(!died);
            }
            eprintln!("  run again: {}", disturbed.unwrap_or_default());
            again = false;
        }
    }

    /// Whether every pair of servers at `point` is decided (different, or equivalent within
    /// the margin) on both figures.
    fn decided(&self, scenario: &dyn Measure, point: &Point) -> bool {
        let all = comparisons(&self.results, scenario, point);
        all.iter().all(|c| c.verdict != Verdict::Undecided)
    }

    /// Whether one more round of `point` (on `servers` servers) keeps the run within its
    /// budget: the run may have spent, when the round ends, no more than the budget's share
    /// of the least-rounds work done by then. So unused time carries forward, and a run that
    /// fell behind its estimate adds no rounds.
    fn within_budget(&self, point: &Point, servers: usize) -> bool {
        let Some(budget) = self.plan().budget else { return true };
        let round = (self.plan().run_time_of(point) * servers as u32).as_secs_f64();
        let share = (self.planned_done / self.planned_total.max(1e-9)).min(1.0);
        let allowed = budget.as_secs_f64() * share;
        self.started.elapsed().as_secs_f64() + round <= allowed
    }

    /// Makes `point`'s comparisons and puts them in the results, replacing any earlier ones
    /// of the point.
    pub(super) fn compare_point(&mut self, scenario: &dyn Measure, point: &Point) {
        let made = comparisons(&self.results, scenario, point);
        let same = |c: &Comparison| c.scenario == point.scenario && c.point == point.label;
        self.results.comparisons.retain(|c| !same(c));
        self.results.comparisons.extend(made);
    }
}

/// Every pair of servers at `point` of `scenario`, on its headline figure and on server CPU
/// per message.
pub fn comparisons(results: &Results, scenario: &dyn Measure, point: &Point) -> Vec<Comparison> {
    let h = scenario.headline();
    let headline = Figure { name: h.name, of: h.figure, higher_is_better: h.higher_is_better };
    let mut out = compare::at_point(results, point, &headline);
    if headline.name != compare::CPU_PER_MSG.name {
        out.extend(compare::at_point(results, point, &compare::CPU_PER_MSG));
    }
    out
}

/// The servers in the order round `round` of `point` runs them: shuffled by a generator
/// seeded from the run's seed, the point and the round, so that `--seed` repeats every
/// round's order whatever number of rounds the points before it took.
fn shuffled<T>(mut servers: Vec<T>, seed: u64, point: &Point, round: u32) -> Vec<T> {
    // FNV-1a over the point's identity: a stable mix, unlike std's randomly keyed hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let key = format!("{}\u{0}{}\u{0}{round}", point.scenario, point.label);
    for b in seed.to_le_bytes().iter().chain(key.as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    fastrand::Rng::with_seed(h).shuffle(&mut servers);
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_each_rounds_order_and_rounds_differ() {
        let p = crate::plan::Point::closed("scale", 1, 64).named("1 conn", 1.0);
        let names: Vec<u32> = (0..10).collect();
        let a = shuffled(names.clone(), 7, &p, 3);
        assert_eq!(a, shuffled(names.clone(), 7, &p, 3));
        assert_ne!(a, shuffled(names.clone(), 7, &p, 4));
        assert_ne!(a, shuffled(names.clone(), 8, &p, 3));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, names);
    }
}
