//! TCP and UDP side by side: the one-line answer, whether the generator offered both the load
//! their rate names, and what the run showed of how each answers overload.

use super::{LOSS_LIMIT, SAME_LOAD, Step, percent, us};
use crate::text::thousands;

/// The TCP and the UDP curve: the first model of each transport.
type Pair<'c, 'a> = (&'c (&'a str, bool, Vec<Step>), &'c (&'a str, bool, Vec<Step>));

fn pair<'c, 'a>(curves: &'c [(&'a str, bool, Vec<Step>)]) -> Option<Pair<'c, 'a>> {
    Some((curves.iter().find(|c| !c.1)?, curves.iter().find(|c| c.1)?))
}

/// The rates both ran, with each one's step there, in rising rate.
fn common<'c>(tcp: &'c [Step], udp: &'c [Step]) -> Vec<(&'c Step, &'c Step)> {
    tcp.iter().filter_map(|t| Some((t, udp.iter().find(|u| u.rate == t.rate)?))).collect()
}

/// Whether a step's generator sent what the schedule asked: within [`SAME_LOAD`] of the rate.
/// Unknown (no loadgen report) counts as asked: nothing says otherwise, and [`offered`] says
/// nothing without the figures.
pub(super) fn sent_as_asked(s: &Step) -> bool {
    s.sent.is_nan() || s.sent >= (1.0 - SAME_LOAD) * s.rate
}

/// The scenario's one-line answer: what each lost at the highest rate both ran.
pub(super) fn headline(curves: &[(&str, bool, Vec<Step>)]) -> Option<String> {
    let ((tn, _, ts), (un, _, us_)) = pair(curves)?;
    let &(t, u) = common(ts, us_).last()?;
    let same = if sent_as_asked(t) && sent_as_asked(u) {
        ""
    } else {
        " (not offered the same load there: see below)"
    };
    Some(format!(
        "At {} msgs/s, TCP ({tn}) lost {} of its messages and UDP ({un}) {}{same}.",
        thousands(t.rate),
        percent(t.ratio),
        percent(u.ratio)
    ))
}

/// Whether both transports were offered the load their rate names: what each generator sent
/// per second at each rate, against the rate and against each other.
pub(super) fn offered(curves: &[(&str, bool, Vec<Step>)]) -> Option<String> {
    let ((tn, _, ts), (un, _, us_)) = pair(curves)?;
    let both = common(ts, us_);
    if both.is_empty() || both.iter().any(|(t, u)| t.sent.is_nan() || u.sent.is_nan()) {
        return None;
    }
    let short: Vec<String> = both
        .iter()
        .filter(|(t, u)| !sent_as_asked(t) || !sent_as_asked(u))
        .map(|(t, u)| {
            let one = |name: &str, s: &Step| {
                let held = if s.held > 0.0 {
                    format!(", {} sends per run never left the generator", thousands(s.held))
                } else {
                    String::new()
                };
                format!("{name} {}/s ({}{held})", thousands(s.sent), percent(s.sent / s.rate))
            };
            format!(
                "at {} msgs/s the generator sent {} and {}",
                thousands(t.rate),
                one(tn, t),
                one(un, u)
            )
        })
        .collect();
    Some(if short.is_empty() {
        format!(
            "Both were offered the same load at every rate: the generator sent within {:.0}% of \
             each rate to TCP and to UDP (loadgen's sends per second).",
            SAME_LOAD * 100.0
        )
    } else {
        format!(
            "The two were not offered the same load everywhere: {}. Where one was sent less than \
             its rate, the two are not compared at equal load, and that one's figures there say \
             what the generator managed, not only what the server did.",
            short.join("; ")
        )
    })
}

/// TCP against UDP at the highest rate both ran, and what the run showed of how each answers
/// overload: only a transport that was overloaded here shows it.
pub(super) fn comparison(curves: &[(&str, bool, Vec<Step>)]) -> Option<String> {
    let ((tn, _, ts), (un, _, us_)) = pair(curves)?;
    let &(t, u) = common(ts, us_).last()?;
    let at = format!(
        "At {} msgs/s, the highest rate both ran: TCP ({tn}) achieved {} with a p50 of {} and \
         lost {}; UDP ({un}) achieved {} with a p50 of {} and lost {}.",
        thousands(t.rate),
        thousands(t.achieved),
        us(t.p50),
        percent(t.ratio),
        thousands(u.achieved),
        us(u.p50),
        percent(u.ratio)
    );
    // Overloaded: the server echoed less than it was sent (TCP: lost none, but achieved less
    // than the rate with sends held back), or its p99 bent tenfold.
    let tcp_over = ts.iter().any(|s| s.achieved < 0.95 * s.rate && sent_as_asked(s)) || bent(ts);
    let udp_over = us_.iter().any(|s| s.ratio > LOSS_LIMIT);
    let saturated = ts.last().is_some_and(|s| s.saturated);
    let tcp_part = if tcp_over {
        "TCP answered its overload by waiting: its p99 rose while it lost nothing".to_string()
    } else {
        format!(
            "TCP was not overloaded at any rate here: it echoed what it was sent, its p99 never \
             rose tenfold{}, so this run does not show how TCP answers overload",
            if saturated { ", and the generator was saturated before it was" } else { "" }
        )
    };
    let udp_part = if udp_over {
        "UDP answered its overload with loss, and an application over UDP must decide itself \
         what a lost message means (resend it, and wait after all, or do without)"
            .to_string()
    } else {
        let most = us_.iter().map(|s| s.ratio).fold(0.0, f64::max);
        format!(
            "UDP lost at most {}, below the {:.0}% at which these findings call it overloaded",
            percent(most),
            LOSS_LIMIT * 100.0
        )
    };
    Some(format!("{at} {tcp_part}; {udp_part}."))
}

/// Whether a stream curve's p99 rose tenfold from some rate on (as the stream finding finds it).
fn bent(steps: &[Step]) -> bool {
    (1..steps.len()).any(|i| {
        let low = steps[..i].iter().map(|s| s.p99).fold(f64::INFINITY, f64::min);
        steps[i..].iter().all(|s| s.p99 >= 10.0 * low)
    })
}
