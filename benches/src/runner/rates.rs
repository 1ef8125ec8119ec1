//! The rate each server of an open-loop point is offered: the point's fixed rate, a fraction
//! of the server's own closed-loop capacity, or a fraction of one capacity common to all (the
//! slowest server's, say), so that every model does the same work and their latency and cost
//! compare at equal load. The common figure needs every server's capacity, so the runner
//! chooses rates once all of them are known (`prepare` in runner.rs), before the first round.

use crate::plan::Point;
use crate::results::{Chosen, Offered};

/// A server of the point, as the choice sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Server {
    /// Its name in the results.
    pub name: String,
    /// Its closed-loop capacity in msgs/s, when measured.
    pub capacity: Option<f64>,
    /// It is the control: a second copy of a model, left out of a common figure so that model
    /// does not count twice.
    pub control: bool,
}

/// What one server is offered.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Choice {
    /// Msgs/s; `None` for a closed loop, or when there was no capacity to take a fraction of.
    pub rate: Option<f64>,
    /// How the rate was chosen, for the results; `None` for a closed loop.
    pub offered: Option<Offered>,
}

/// The choice for each of `servers` (in order; `None` for a server not running the point).
pub(super) fn choose(point: &Point, servers: &[Option<Server>]) -> Vec<Option<Choice>> {
    let rate = |r: f64| r.max(1.0).round();
    let common = point.rate_basis.and_then(|basis| {
        let figures: Vec<(&str, f64)> = servers
            .iter()
            .flatten()
            .filter(|s| !s.control)
            .filter_map(|s| Some((s.name.as_str(), s.capacity?)))
            .collect();
        let values: Vec<f64> = figures.iter().map(|f| f.1).collect();
        let capacity = basis.of(&values)?;
        // The server whose figure it is (none for the median of an even count, which is the
        // mean of two).
        let whose = figures.iter().find(|f| f.1 == capacity).map(|f| f.0.to_string());
        Some((basis, capacity, whose))
    });
    servers
        .iter()
        .map(|s| {
            s.as_ref()?;
            Some(match (point.rate, point.rate_fraction, point.rate_basis) {
                (Some(r), _, _) => Choice {
                    rate: Some(rate(r)),
                    offered: Some(Offered {
                        chosen: Chosen::Fixed,
                        fraction: None,
                        capacity: None,
                        server: None,
                    }),
                },
                (None, Some(f), Some(_)) => match &common {
                    Some((basis, capacity, whose)) => Choice {
                        rate: Some(rate(f * capacity)),
                        offered: Some(Offered {
                            chosen: Chosen::from(*basis),
                            fraction: Some(f),
                            capacity: Some(*capacity),
                            server: whose.clone(),
                        }),
                    },
                    None => Choice { rate: None, offered: None },
                },
                (None, Some(f), None) => {
                    let own = s.as_ref().and_then(|s| s.capacity);
                    Choice {
                        rate: own.map(|c| rate(f * c)),
                        offered: own.map(|c| Offered {
                            chosen: Chosen::Own,
                            fraction: Some(f),
                            capacity: Some(c),
                            server: s.as_ref().map(|s| s.name.clone()),
                        }),
                    }
                }
                (None, None, _) => Choice { rate: None, offered: None },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Basis;

    fn servers() -> Vec<Option<Server>> {
        let s = |name: &str, capacity: Option<f64>, control: bool| {
            Some(Server { name: name.into(), capacity, control })
        };
        vec![
            s("fork", Some(140_000.0), false),
            s("mio", Some(260_000.0), false),
            None,
            s("thread", Some(175_000.0), false),
            // A control slower than every model must not set the common rate.
            s("mio (control)", Some(100_000.0), true),
            s("probe-failed", None, false),
        ]
    }

    fn at(fraction: f64, basis: Option<Basis>) -> Point {
        let p = Point::closed("latency", 10, 64);
        Point { rate_fraction: Some(fraction), rate_basis: basis, ..p }
    }

    #[test]
    fn a_common_rate_is_the_same_for_every_server_and_a_fraction_of_the_slowest() {
        let chosen = choose(&at(0.75, Some(Basis::Slowest)), &servers());
        let rates: Vec<Option<f64>> = chosen.iter().map(|c| c.as_ref()?.rate).collect();
        let r = Some(105_000.0);
        assert_eq!(rates, [r, r, None, r, r, r]);
        let offered = chosen[0].as_ref().unwrap().offered.clone().unwrap();
        assert_eq!(offered.chosen, Chosen::Slowest);
        assert_eq!(offered.capacity, Some(140_000.0));
        assert_eq!(offered.server.as_deref(), Some("fork"));
    }

    #[test]
    fn a_rate_above_the_slowest_capacity_comes_from_the_median_or_the_fastest() {
        let median = choose(&at(0.9, Some(Basis::Median)), &servers());
        // Median of 140k, 175k, 260k (the control and the unmeasured left out): 175k, so 90%
        // of it is above fork's 140k, which fork cannot sustain.
        let rate = median[0].as_ref().unwrap().rate.unwrap();
        assert_eq!(rate, 157_500.0);
        assert!(rate > 140_000.0, "above the slowest's capacity");
        let fastest = choose(&at(1.0, Some(Basis::Fastest)), &servers());
        let offered = fastest[3].as_ref().unwrap().offered.clone().unwrap();
        assert_eq!((offered.capacity, offered.server.as_deref()), (Some(260_000.0), Some("mio")));
    }

    #[test]
    fn own_fractions_differ_per_server_and_fixed_rates_do_not() {
        let own = choose(&at(0.5, None), &servers());
        assert_eq!(own[0].as_ref().unwrap().rate, Some(70_000.0));
        assert_eq!(own[1].as_ref().unwrap().rate, Some(130_000.0));
        assert_eq!(own[5].as_ref().unwrap().rate, None, "no capacity, no rate");
        let fixed = Point { rate: Some(50_000.0), ..Point::closed("latency", 10, 64) };
        let chosen = choose(&fixed, &servers());
        assert!(chosen.iter().flatten().all(|c| c.rate == Some(50_000.0)));
        assert_eq!(chosen[0].as_ref().unwrap().offered.as_ref().unwrap().chosen, Chosen::Fixed);
    }

    #[test]
    fn without_any_capacity_a_common_rate_is_none() {
        let none = vec![Some(Server { name: "a".into(), capacity: None, control: false })];
        assert_eq!(choose(&at(0.5, Some(Basis::Slowest)), &none)[0].as_ref().unwrap().rate, None);
    }
}
