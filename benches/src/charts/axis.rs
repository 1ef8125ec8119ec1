//! How a chart's value axis is scaled, decided from the data so that every chart kind decides
//! alike: a log axis when the values span more than two decades (on a linear one the small
//! values would be invisible: idle memory's event loops beside fork's processes), linear from
//! zero otherwise. The axis's name then says which.

/// The widest span, largest over smallest, that a linear axis shows: beyond two decades the
/// smallest values are under 1% of the axis, a bar of a pixel or two.
pub const LINEAR_SPAN: f64 = 100.0;

/// Whether values call for a log axis: all of them above zero (a zero has no place on one)
/// and the largest more than [`LINEAR_SPAN`] times the smallest. Values that are not numbers
/// are left out.
pub fn wants_log(values: impl IntoIterator<Item = f64>) -> bool {
    let v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if v.is_empty() || v.iter().any(|&x| x <= 0.0) {
        return false;
    }
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    hi / lo > LINEAR_SPAN
}

/// The axis's name, saying it is logarithmic (unless the name already does).
pub fn logged(desc: &str) -> String {
    if desc.contains("log") { desc.to_string() } else { format!("{desc} (log scale)") }
}

/// The range of a log axis around values from `lo` to `hi`: a little room either side, and
/// `up` times the top for what is drawn above the values (bar labels).
pub fn log_range(lo: f64, hi: f64, up: f64) -> std::ops::Range<f64> {
    lo / 1.6..hi * 1.6 * up
}

/// The ticks of a log axis from `lo` to `hi`: every decade, with 2 and 5 between them while
/// the axis spans few enough decades for them to fit.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let steps: &[f64] = if last - first <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut ticks = Vec::new();
    for k in first..=last {
        for m in steps {
            let t = m * 10f64.powi(k);
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
    }
    ticks
}

/// The height at a fraction `f` of the axis above `v`, on a log axis from `lo` to `hi` or a
/// linear one up to `hi`: where a label over a bar goes.
pub fn above(v: f64, f: f64, (lo, hi): (f64, f64), log: bool) -> f64 {
    if log { v * (hi / lo).powf(f) } else { v + hi * f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_two_decades_is_log() {
        // Idle memory: event loops at tens of bytes, fork at 72 KiB.
        assert!(wants_log([65.0, 61.0, 1200.0, 72_000.0, 82_000.0]));
        // Exactly two decades still fit a linear axis; a little over does not.
        assert!(!wants_log([1.0, 100.0]));
        assert!(wants_log([1.0, 101.0]));
        // Throughput from 80k to 300k is one scale.
        assert!(!wants_log([80_000.0, 300_000.0]));
    }

    #[test]
    fn a_zero_or_no_values_keep_the_axis_linear() {
        assert!(!wants_log([0.0, 0.05, 8.0]));
        assert!(!wants_log([f64::NAN]));
        assert!(!wants_log(std::iter::empty()));
        // A value that is not a number is left out, not taken as a zero.
        assert!(wants_log([f64::NAN, 0.5, 900.0]));
    }

    #[test]
    fn ticks_thin_out_over_many_decades() {
        assert_eq!(log_ticks(40.0, 600.0), [50.0, 100.0, 200.0, 500.0]);
        assert_eq!(log_ticks(30.0, 200_000.0), [100.0, 1e3, 1e4, 1e5]);
        assert_eq!(logged("bytes per connection"), "bytes per connection (log scale)");
        assert_eq!(logged("MiB/s (log)"), "MiB/s (log)");
    }
}
