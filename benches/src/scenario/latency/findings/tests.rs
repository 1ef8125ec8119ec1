use super::*;
use crate::results::Verdict;

fn pair(a: &str, b: &str, better: Option<&str>) -> Comparison {
    Comparison {
        scenario: "latency".into(),
        point: "75% of slowest".into(),
        figure: "server CPU us/msg".into(),
        a: a.into(),
        b: b.into(),
        ratio: 1.0,
        low: 0.9,
        high: 1.1,
        confidence: 0.99,
        better: better.map(Into::into),
        verdict: if better.is_some() { Verdict::Different } else { Verdict::Undecided },
        rounds: 8,
        higher_is_better: false,
    }
}

#[test]
fn a_model_short_of_the_rate_or_queueing_through_the_window_is_overloaded() {
    // 80% of the rate: overloaded, whatever its latency.
    let short = Overload::judge(100_000.0, 80_000.0, 300.0, 0.5, false).unwrap();
    assert_eq!(short.describe("fork"), "fork (80% of the rate)");
    // The full rate but a median of 120 ms in a 500 ms window: its queue grew throughout.
    let queue = Overload::judge(100_000.0, 99_000.0, 120_000.0, 0.5, false).unwrap();
    assert!(queue.describe("thread").contains("growing queue"), "{queue:?}");
    // The full rate and a median of 300 us: sustained.
    assert_eq!(Overload::judge(100_000.0, 99_000.0, 300.0, 0.5, false), None);
    // Short because loadgen itself was busy: still overloaded there, and said so.
    let pair_bound = Overload::judge(100_000.0, 70_000.0, 300.0, 0.5, true).unwrap();
    assert!(pair_bound.describe("mio").ends_with("generator busy)"));
}

#[test]
fn the_lag_finding_names_only_the_models_whose_latency_the_lag_makes() {
    let rows = [("mio", 400.0, 600.0), ("fork", 20.0, 900.0), ("thread", 0.0, 0.0)];
    let said = lag_finding("100 msgs/s", &rows).unwrap();
    assert!(said.contains("mio (lag 400 of 600 us)"), "{said}");
    assert!(!said.contains("fork") && !said.contains("thread"), "{said}");
    // Lag well under the p99 everywhere: the server makes the latency, and nothing is said.
    assert_eq!(lag_finding("100 msgs/s", &[("mio", 40.0, 600.0), ("fork", 299.0, 600.0)]), None);
    assert!(lag_made(&rows[0]) && !lag_made(&rows[1]) && !lag_made(&rows[2]));
}

#[test]
fn extremes_name_a_least_model_only_with_those_the_rounds_could_not_tell_from_it() {
    let values = [("fork", 4.8), ("mio", 2.5), ("poll", 2.6), ("thread", 4.5)];
    let all_called = [
        pair("fork", "mio", Some("mio")),
        pair("mio", "poll", Some("mio")),
        pair("mio", "thread", Some("mio")),
        pair("fork", "poll", Some("poll")),
        pair("fork", "thread", Some("thread")),
        pair("poll", "thread", Some("poll")),
    ];
    let said = extremes(&values, &all_called, "us");
    assert_eq!(said, "least mio 2.50 us; most fork 4.80 us");
    // The rounds cannot tell mio from poll, nor fork from thread: each end names its tie.
    let some_undecided = [
        pair("fork", "mio", Some("mio")),
        pair("mio", "poll", None),
        pair("mio", "thread", Some("mio")),
        pair("fork", "poll", Some("poll")),
        pair("fork", "thread", None),
        pair("poll", "thread", Some("poll")),
    ];
    let said = extremes(&values, &some_undecided, "us");
    assert_eq!(
        said,
        "least mio 2.50 us (not told apart from poll); most fork 4.80 us (not told apart from \
         thread)"
    );
    // No paired rounds (one round, the quick profile): medians only, no order.
    let said = extremes(&values, &[], "us");
    assert!(said.starts_with("not compared in paired rounds"), "{said}");
    // Nothing told apart at all: no "most" claim beside the least.
    let none = [pair("fork", "mio", None), pair("mio", "poll", None), pair("mio", "thread", None)];
    let said = extremes(&values, &none, "us");
    assert!(said.starts_with("no order the paired rounds could tell"), "{said}");
    assert!(!said.contains("least"), "{said}");
}

fn offered_at(point: &Point, rate: f64, offered: Option<crate::results::Offered>) -> PointResults {
    PointResults {
        point: point.clone(),
        target_rate: Some(rate),
        offered,
        repeats: Vec::new(),
        summary: None,
        merged: None,
        server: None,
        copied_from: None,
    }
}

#[test]
fn the_rate_is_named_with_how_it_was_chosen_and_own_rates_are_not_one_rate() {
    use crate::plan::Basis;
    use crate::results::Offered;
    let base = Point::closed("latency", 10, 64);
    let common =
        Point { rate_fraction: Some(0.75), rate_basis: Some(Basis::Slowest), ..base.clone() };
    let offered = Offered {
        chosen: Chosen::Slowest,
        fraction: Some(0.75),
        capacity: Some(143_628.0),
        server: Some("fork".into()),
    };
    let p = offered_at(&common, 107_721.0, Some(offered));
    assert_eq!(
        rate_phrase(&[("mio", &p), ("fork", &p)], &common),
        "107,721 msgs/s (75% of the slowest model's capacity, fork's)"
    );
    // Each model at its own rate (a file from before common rates): no single rate is named,
    // since mio's and fork's differ.
    let own = Point { rate_fraction: Some(0.75), ..base.clone() };
    let (mio, fork) = (offered_at(&own, 199_367.0, None), offered_at(&own, 107_721.0, None));
    assert_eq!(
        rate_phrase(&[("mio", &mio), ("fork", &fork)], &own),
        "75% of each model's own capacity"
    );
    let fixed = Point { rate: Some(50_000.0), ..base };
    let f = offered_at(&fixed, 50_000.0, None);
    assert_eq!(rate_phrase(&[("mio", &f)], &fixed), "50,000 msgs/s");
}
