//! The progress bar on stderr, drawn by the coordinating thread (never by a load thread) and
//! only when the caller asks for it and stderr is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    warmup: Duration,
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl Progress {
    pub fn new(enabled: bool, warmup: Duration, duration: Duration) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some((warmup + duration).as_millis() as u64),
                ProgressDrawTarget::stderr(),
            );
            let style =
                ProgressStyle::with_template("{spinner} [{bar:30}] {elapsed:>4} / {prefix} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(humantime::format_duration(warmup + duration).to_string());
            bar.set_message("connecting");
            bar
        });
        Progress { bar, warmup, last: None, rate: 0.0 }
    }

    /// `elapsed` since the start; `received` is the measured total so far.
    pub fn update(&mut self, elapsed: Duration, received: u64) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(elapsed.as_millis() as u64);
        if elapsed < self.warmup {
            bar.set_message("warming up");
            return;
        }
        // The rate counts from the first update after warmup, when the measured count starts.
        let now = Instant::now();
        if let Some((at, count)) = self.last {
            let secs = now.duration_since(at).as_secs_f64();
            if secs >= 0.5 {
                self.rate = received.saturating_sub(count) as f64 / secs;
                self.last = Some((now, received));
            }
        } else {
            self.last = Some((now, received));
        }
        if self.rate > 0.0 {
            bar.set_message(format!("{} msgs/s", crate::summary::thousands(self.rate)));
        } else {
            bar.set_message("measuring");
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
