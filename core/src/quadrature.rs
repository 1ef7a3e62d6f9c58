//! Numerical integration.

/// `∫ f(x) dx` over `[from, to]` by the composite Simpson's rule on `intervals` equal
/// intervals (an even number). Its error is `(to − from) h⁴ max|f⁗| / 180` with
/// `h = (to − from) / intervals`: exact for cubics.
pub fn simpson(f: impl Fn(f64) -> f64, from: f64, to: f64, intervals: usize) -> f64 {
    assert!(
        intervals >= 2 && intervals.is_multiple_of(2),
        "Simpson's rule needs an even number of intervals, not {intervals}"
    );
    let h = (to - from) / intervals as f64;
    let sum: f64 = (0..=intervals)
        .map(|k| {
            let weight = if k == 0 || k == intervals {
                1.0
            } else if k % 2 == 1 {
                4.0
            } else {
                2.0
            };
            weight * f(from + k as f64 * h)
        })
        .sum();
    sum * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_for_cubics_and_fourth_order_for_smooth_functions() {
        let cubic = simpson(|x| x * x * x - 2.0 * x, 0.0, 2.0, 2);
        assert!((cubic - 0.0).abs() < 1e-14, "∫₀² x³ − 2x = 0: {cubic}");
        let pi = std::f64::consts::PI;
        // ∫₀^π sin = 2; the error bound π h⁴ / 180 is 1.7e-8 at 100 intervals, 1.1e-9 at 200.
        let coarse = (simpson(f64::sin, 0.0, pi, 100) - 2.0).abs();
        let fine = (simpson(f64::sin, 0.0, pi, 200) - 2.0).abs();
        assert!(coarse < 1.7e-8 && fine < 1.1e-9, "{coarse} {fine}");
        assert!(
            (coarse / fine - 16.0).abs() < 0.1,
            "fourth order: {}",
            coarse / fine
        );
    }
}
