//! The comparison plan: every profile stays within its time budget and runs every scenario.

use std::time::Duration;

use loadgen::compare::plan::*;
use loadgen::compare::text::{format_bytes, format_duration};

fn plan(profile: Profile) -> Plan {
    let models = MODELS.iter().map(|m| m.to_string()).collect();
    Plan::new(profile, &ProfileSpec::of(profile), models, Scenario::ALL.to_vec(), Placement::Split)
}

#[test]
fn quick_profile_fits_in_about_a_minute() {
    let quick = plan(Profile::Quick);
    assert!(quick.estimate() <= Duration::from_secs(60), "{:?}", quick.estimate());
    // Every scenario still runs, so the quick profile exercises the whole pipeline.
    for scenario in Scenario::ALL {
        assert!(quick.points_of(scenario).count() >= 1, "{scenario} has no point");
    }
}

#[test]
fn standard_profile_fits_in_fifteen_minutes() {
    let standard = plan(Profile::Standard);
    assert!(standard.estimate() <= Duration::from_secs(15 * 60), "{:?}", standard.estimate());
    assert!(standard.repeats >= 3);
    let scale: Vec<u32> = standard.points_of(Scenario::Scale).map(|p| p.connections).collect();
    assert_eq!(scale, [1, 10, 100, 1000]);
}

#[test]
fn latency_capacity_comes_from_a_scale_point() {
    for profile in [Profile::Quick, Profile::Standard, Profile::Full] {
        let spec = ProfileSpec::of(profile);
        assert!(spec.scale_connections.contains(&LATENCY_CONNECTIONS), "{profile:?}");
    }
}

#[test]
fn labels_read_naturally() {
    let p = plan(Profile::Standard);
    let labels: Vec<String> = p.points.iter().map(Point::label).collect();
    for want in ["1 conn", "1000 conns", "64 B", "1 MiB", "8 clients", "4000 idle", "75% load"] {
        assert!(labels.iter().any(|l| l == want), "{want} not in {labels:?}");
    }
    assert_eq!(format_duration(Duration::from_secs(754)), "12 min 34 s");
    assert_eq!(format_bytes(65536), "64 KiB");
}
