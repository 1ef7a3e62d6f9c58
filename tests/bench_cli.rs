//! The `npsim bench` commands end to end: what they print, in what order, and that their
//! figures agree with each other.

use std::process::Output;

mod common;
use common::npsim;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `name: number` lines a benchmark prints, in order (its description line and any other
/// text left out).
fn printed_figures(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect()
}

#[test]
fn bench_linear_np_profile_prints_the_phases_in_order_then_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "linear-np",
        "--lx",
        "6",
        "--lh",
        "40",
        "--ly",
        "3",
        "--reps",
        "1",
        "--profile",
    ];
    let out = npsim(&args, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let fields = printed_figures(&text);
    let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    let phases = [
        "announce_us",
        "clean_pass_us",
        "loss_us",
        "perturbed_pass_us",
        "rule_us",
    ];
    assert_eq!(
        names,
        [&phases[..], &["iterations_per_second"]].concat(),
        "{text}"
    );
    assert!(fields.iter().all(|(_, v)| v.is_finite() && *v >= 0.0), "{text}");
    // The phases are the step, timed: µs per step and steps per second agree in size (the
    // phases' mean includes the warm-up, the rate is a median, hence the wide band).
    let step_us: f64 = fields[1..5].iter().map(|(_, v)| v).sum();
    let rate = fields[5].1;
    assert!(step_us > 0.0 && rate > 0.0, "{text}");
    let product = step_us * rate / 1e6;
    assert!(
        (0.1..10.0).contains(&product),
        "phases {step_us} µs a step at {rate} steps/s: {text}"
    );
}

#[test]
fn bench_noise_prints_the_time_per_draw_then_the_rate_and_they_agree() {
    let dir = tempfile::tempdir().unwrap();
    for precision in ["f32", "f64"] {
        let args = [
            "bench",
            "noise",
            "--entries",
            "3000",
            "--precision",
            precision,
            "--reps",
            "1",
        ];
        let out = npsim(&args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let figures = printed_figures(&text);
        let value = |name: &str| {
            let figure = figures.iter().find(|(n, _)| *n == name);
            figure.unwrap_or_else(|| panic!("{name}: {text}")).1
        };
        let (ns, rate) = (value("ns_per_draw"), value("draws_per_second"));
        assert!(
            text.lines().last().unwrap().starts_with("draws_per_second: "),
            "{text}"
        );
        // Printed to 3 decimals: equal to 0.1 % or 0.0005 ns.
        let product = ns * rate / 1e9;
        assert!(
            (product - 1.0).abs() < 1e-3 + 5e-4 / ns,
            "{ns} ns a draw at {rate}/s: {text}"
        );
    }
}

#[test]
fn bench_gemm_prints_its_rate_last_plain_fused_and_lookahead() {
    let dir = tempfile::tempdir().unwrap();
    let passes = [
        (None, "gemm 60x30 times 30x7"),
        (Some("--fused"), "fused rank-7 update of 60x30"),
        (Some("--lookahead"), "lookahead's rank-7 update of 60x30"),
    ];
    for (pass, description) in passes {
        let mut args: Vec<&str> = "bench gemm --m 60 --n 7 --k 30 --precision f64 --reps 1"
            .split(' ')
            .collect();
        args.extend(pass);
        let out = npsim(&args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let last = text.lines().last().unwrap_or_default();
        let rate: f64 = last
            .strip_prefix("gflops: ")
            .unwrap_or_else(|| panic!("last line {last:?}"))
            .parse()
            .unwrap();
        assert!(rate > 0.0 && rate.is_finite(), "{last}");
        assert!(text.contains(description), "{pass:?}: {text}");
    }
}
