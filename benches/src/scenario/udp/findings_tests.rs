//! The udp findings against the figures of the run of 2026-12-07 (vm-2), under which the old
//! sentences were wrong: UDP's echoes waited a p50 of 91 ms at 300,000 msgs/s ("its latency
//! stayed bounded"), its generator sent only 63% of that rate while TCP's sent all of it, and
//! TCP was never overloaded ("TCP turns overload into waiting").

use super::*;

#[allow(clippy::too_many_arguments)]
fn step(
    rate: f64,
    sent: f64,
    achieved: f64,
    ratio: f64,
    p50: f64,
    p99: f64,
    echoed: (f64, f64),
    saturated: bool,
) -> Step {
    Step {
        rate,
        achieved,
        p50,
        p99,
        echoed_p99: echoed.1,
        echoed_p50: echoed.0,
        sent,
        lost: (ratio * sent * 1.5).round(),
        ratio,
        rcvbuf: Some((ratio * sent * 1.5).round()),
        held: if sent < rate { (rate - sent) * 1.5 } else { 0.0 },
        cpu: Some(3.0),
        utilization: 0.8,
        saturated,
    }
}

fn tcp() -> Vec<Step> {
    vec![
        step(10e3, 10e3, 10e3, 0.0, 65.3, 1104.0, (60.0, 445.0), false),
        step(30e3, 30e3, 29_997.0, 0.0, 65.9, 1449.0, (60.0, 505.0), false),
        step(100e3, 100e3, 100_004.0, 0.0, 84.5, 1366.0, (70.0, 484.0), true),
        step(300e3, 300e3, 300e3, 0.0, 107.0, 3478.0, (90.0, 1080.0), true),
    ]
}

fn udp() -> Vec<Step> {
    vec![
        step(10e3, 10e3, 9_995.0, 0.0, 105.0, 1338.0, (100.0, 706.0), false),
        step(30e3, 30e3, 29_973.0, 0.00082, 63.9, 2691.0, (60.0, 2163.0), false),
        step(100e3, 100e3, 99_069.0, 0.0145, 105.0, 52_134.0, (100.0, 4260.0), true),
        step(300e3, 187_864.0, 135_307.0, 0.287, 91_226.0, 192_807.0, (90_000.0, 90_898.0), true),
    ]
}

fn curves() -> Vec<(&'static str, bool, Vec<Step>)> {
    vec![("mio", false, tcp()), ("udp", true, udp())]
}

#[test]
fn latency_that_grew_past_the_buffer_is_not_called_bounded() {
    let s = datagram_finding("udp", &udp(), Some(&tcp()));
    assert!(!s.contains("stayed bounded"), "{s}");
    assert!(s.contains("Its latency did not stay bounded"), "{s}");
    assert!(
        s.contains("p50 went from 100 us to 90.0 ms and their p99 from 706 us to 90.9 ms"),
        "{s}"
    );
    assert!(s.contains("UDP (udp) lost more than 1% at every rate from 100,000 msgs/s"), "{s}");
}

#[test]
fn latency_within_the_buffer_at_every_rate_is_called_bounded() {
    let mut u = udp();
    u[3] = step(300e3, 300e3, 250e3, 0.15, 900.0, 60_000.0, (800.0, 1900.0), false);
    let s = datagram_finding("udp", &u, Some(&tcp()));
    assert!(s.contains("stayed within 5 ms at every rate from 100,000 msgs/s up"), "{s}");
}

#[test]
fn unequal_offered_load_is_said_and_qualifies_the_headline() {
    let s = offered(&curves()).unwrap();
    assert!(s.starts_with("The two were not offered the same load"), "{s}");
    assert!(s.contains("udp 187,864/s (62.6%"), "{s}");
    assert!(s.contains("mio 300,000/s (100%)"), "{s}");
    let h = headline(&curves()).unwrap();
    assert!(h.contains("not offered the same load there"), "{h}");
    // Where both sent what their rate asked, the sentence says they had the same load.
    let mut u = udp();
    u[3].sent = 299_000.0;
    let c = vec![("mio", false, tcp()), ("udp", true, u)];
    assert!(offered(&c).unwrap().starts_with("Both were offered the same load"));
    assert!(!headline(&c).unwrap().contains("not offered"));
    // Without the generator's figures, nothing is said either way.
    let mut u = udp();
    u[3].sent = f64::NAN;
    let c = vec![("mio", false, tcp()), ("udp", true, u)];
    assert!(offered(&c).is_none());
    assert!(!headline(&c).unwrap().contains("not offered"));
}

#[test]
fn tcp_never_overloaded_is_not_said_to_turn_overload_into_waiting() {
    let s = comparison(&curves()).unwrap();
    assert!(!s.contains("TCP turns overload into waiting"), "{s}");
    assert!(s.contains("TCP was not overloaded at any rate here"), "{s}");
    assert!(s.contains("the generator was saturated before it was"), "{s}");
    assert!(s.contains("UDP answered its overload with loss"), "{s}");
}

#[test]
fn tcp_whose_p99_bent_is_said_to_have_waited() {
    let mut t = tcp();
    t[2].p99 = 20_000.0;
    t[3].p99 = 80_000.0;
    let s = comparison(&[("mio", false, t), ("udp", true, udp())]).unwrap();
    assert!(s.contains("TCP answered its overload by waiting"), "{s}");
}
