//! The inner loops of a free-running spiking network: a portable exponential, the membrane
//! update over a block of neurons, and the barrier its threads meet at once per step.
//!
//! Every loop here is branch-free over neurons so that the compiler vectorises it (AVX2 on
//! x86-64-v3: four neurons per instruction in f64). Fused multiply-adds appear only where
//! written (`mul_add`, always fused, in hardware or software), never by contraction, so a
//! vectorised lane and the scalar remainder give the same bits: results do not depend on
//! where a thread's block of neurons starts.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `1.5 · 2⁵²`: adding it rounds a float of magnitude below 2⁵¹ to an integer held in the low
/// mantissa bits.
const ROUND_SHIFT: f64 = 6_755_399_441_055_744.0;
/// `ln 2` split into a part exact in 32 bits and the rest (Cody–Waite reduction).
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `eˣ` for `x` in `[−700, 700]` (clamped beyond), within 2 ulp of the correctly rounded
/// value, computed the same way on every platform (unlike the C library's `exp`), and
/// vectorisable: `x = k ln 2 + r` with `|r| ≤ ln 2 / 2`, `eʳ` by its Taylor polynomial to
/// degree 13 (truncation below 2·10⁻¹⁷) evaluated by Estrin's scheme with fused
/// multiply-adds (short dependency chains), and `2ᵏ` added to the exponent bits.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let shifted = x * std::f64::consts::LOG2_E + ROUND_SHIFT;
    let k = shifted - ROUND_SHIFT;
    let r = (-k).mul_add(LN2_LO, (-k).mul_add(LN2_HI, x));
    // 1/n! for n = 0..=13.
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let pair = |n: usize| C[n + 1].mul_add(r, C[n]);
    let r2 = r * r;
    let r4 = r2 * r2;
    let low = pair(2).mul_add(r2, pair(0));
    let mid = pair(6).mul_add(r2, pair(4));
    let high = pair(10).mul_add(r2, pair(8));
    let lower = mid.mul_add(r4, low);
    let upper = pair(12).mul_add(r4, high);
    let p = upper.mul_add(r4 * r4, lower);
    // The low bits of `shifted` hold k (two's complement modulo 2¹²): shifted into the
    // exponent field, a wrapping add multiplies p by 2ᵏ.
    f64::from_bits(p.to_bits().wrapping_add(shifted.to_bits() << 52))
}

/// What the membrane update of one `Lif` population needs, in the units of its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Membrane {
    /// Step, ms.
    pub dt: f64,
    /// Membrane time constant, ms.
    pub tau_m: f64,
    /// Resting potential, mV.
    pub v_rest: f64,
    /// Potential after a spike, mV.
    pub v_reset: f64,
    /// Membrane resistance, MΩ.
    pub resistance: f64,
}

impl Membrane {
    /// Advances the potentials `v` by one step (step index `t`), with the current `current`
    /// (nA) and the total conductance (µS) and its reversal-weighted sum (µS·mV) in
    /// `conductance` held over the step (either absent: zero): `V ← V∞ + (V − V∞)
    /// e^{−dt (1 + R G)/τ_m}`, `V∞ = (E_L + R I + R Σ g E)/(1 + R G)`; neurons with
    /// `t < refractory_until` stay at `v_reset`.
    pub fn advance(
        &self,
        t: i64,
        v: &mut [f64],
        refractory_until: &[i64],
        current: Option<&[f64]>,
        conductance: Option<(&[f64], &[f64])>,
    ) {
        // One loop per combination of inputs present, so that none reads an array of zeros.
        match (current, conductance) {
            (Some(i), Some((g, e))) => self.advance_with::<true, true>(t, v, refractory_until, i, g, e),
            (Some(i), None) => self.advance_with::<true, false>(t, v, refractory_until, i, &[], &[]),
            (None, Some((g, e))) => self.advance_with::<false, true>(t, v, refractory_until, &[], g, e),
            (None, None) => self.advance_with::<false, false>(t, v, refractory_until, &[], &[], &[]),
        }
    }

    #[inline(always)]
    fn advance_with<const CURRENT: bool, const CONDUCTANCE: bool>(
        &self,
        t: i64,
        v: &mut [f64],
        refractory_until: &[i64],
        current: &[f64],
        conductance: &[f64],
        driven: &[f64],
    ) {
        let Membrane {
            dt,
            tau_m,
            v_rest,
            v_reset,
            resistance: r,
        } = *self;
        let n = v.len();
        let refractory_until = &refractory_until[..n];
        let current = if CURRENT { &current[..n] } else { current };
        let (conductance, driven) = if CONDUCTANCE {
            (&conductance[..n], &driven[..n])
        } else {
            (conductance, driven)
        };
        let rate = -dt / tau_m;
        for k in 0..n {
            let leak = if CONDUCTANCE {
                1.0 + r * conductance[k]
            } else {
                1.0
            };
            let mut drive = v_rest;
            if CURRENT {
                drive += r * current[k];
            }
            if CONDUCTANCE {
                drive += r * driven[k];
            }
            let v_inf = if CONDUCTANCE { drive / leak } else { drive };
            let free = v_inf + (v[k] - v_inf) * exp(leak * rate);
            v[k] = if t < refractory_until[k] { v_reset } else { free };
        }
    }
}

/// One channel's part of a step for a block of neurons: the trace `s` takes this step's
/// arrivals, if they wait in a slot of their own (which is emptied), goes to the neurons'
/// input — a conductance with reversal `E` to `conductance` and `E·s` to `driven`, a current to
/// `current`; written there when `first` (the first channel of its kind), added otherwise —
/// and decays by `keep` for the next step.
#[allow(clippy::too_many_arguments)]
pub fn intake(
    trace: &mut [f64],
    arrivals: Option<&mut [f64]>,
    keep: f64,
    reversal: Option<f64>,
    first: bool,
    current: &mut [f64],
    conductance: &mut [f64],
    driven: &mut [f64],
) {
    let n = trace.len();
    if let Some(arrivals) = arrivals {
        let arrivals = &mut arrivals[..n];
        for k in 0..n {
            trace[k] += arrivals[k];
            arrivals[k] = 0.0;
        }
    }
    match (reversal, first) {
        (Some(e), true) => {
            let (conductance, driven) = (&mut conductance[..n], &mut driven[..n]);
            for k in 0..n {
                let s = trace[k];
                conductance[k] = s;
                driven[k] = e * s;
                trace[k] = s * keep;
            }
        }
        (Some(e), false) => {
            let (conductance, driven) = (&mut conductance[..n], &mut driven[..n]);
            for k in 0..n {
                let s = trace[k];
                conductance[k] += s;
                driven[k] += e * s;
                trace[k] = s * keep;
            }
        }
        (None, true) => {
            let current = &mut current[..n];
            for k in 0..n {
                let s = trace[k];
                current[k] = s;
                trace[k] = s * keep;
            }
        }
        (None, false) => {
            let current = &mut current[..n];
            for k in 0..n {
                let s = trace[k];
                current[k] += s;
                trace[k] = s * keep;
            }
        }
    }
}

/// Whether any of `v` is at or above `threshold`, by chunks the compiler vectorises.
#[inline]
pub fn any_at_or_above(v: &[f64], threshold: f64) -> bool {
    // `if` rather than `f64::max`, whose NaN rule keeps the compiler from vectorising.
    v.iter()
        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m })
        >= threshold
}

/// A barrier for a fixed number of threads that spins (then yields) instead of sleeping: a
/// step of a network of a few thousand neurons takes microseconds, less than waking a
/// sleeping thread.
#[derive(Debug)]
pub struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    /// A barrier for `threads` threads.
    pub fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Returns once all threads have called it (for this generation).
    pub fn wait(&self) {
        if self.threads <= 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // No thread touches `arrived` again before it sees the new generation.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 20_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                // Another process holds the core we wait for: give it the time slice.
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_is_exact_at_integers_of_ln2_and_clamps() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(std::f64::consts::LN_2), 2.0);
        assert!(ulps(exp(-10.0 * std::f64::consts::LN_2), 2f64.powi(-10)) <= 1);
        assert_eq!(exp(-1e9), exp(-700.0));
        assert!(exp(-700.0) > 0.0 && exp(700.0).is_finite());
    }

    proptest! {
        /// Within 2 ulp of the C library over the whole range, and the relative error
        /// below 5e-16 over the membrane's range (arguments in (−5, 0]).
        #[test]
        fn exp_matches_the_c_library(x in -700.0f64..700.0, small in -5.0f64..0.0) {
            prop_assert!(ulps(exp(x), x.exp()) <= 2, "x = {x}: {} vs {}", exp(x), x.exp());
            prop_assert!(((exp(small) - small.exp()) / small.exp()).abs() < 5e-16);
        }

        /// The vectorised loop and a scalar evaluation of the same formula agree bit for bit,
        /// whatever the block's length (so thread blocks never change a result).
        #[test]
        fn membrane_update_is_the_scalar_formula(
            start in prop::collection::vec((-80.0f64..-40.0, 0.0f64..0.2, 0.0f64..0.1, -0.5f64..1.0), 1..40),
            t in 0i64..4,
        ) {
            let m = Membrane { dt: 0.1, tau_m: 20.0, v_rest: -60.0, v_reset: -60.0, resistance: 100.0 };
            let n = start.len();
            let mut v: Vec<f64> = start.iter().map(|s| s.0).collect();
            let g: Vec<f64> = start.iter().map(|s| s.1 + s.2).collect();
            let driven: Vec<f64> = start.iter().map(|s| -80.0 * s.2).collect();
            let current: Vec<f64> = start.iter().map(|s| s.3).collect();
            let until: Vec<i64> = (0..n as i64).map(|k| k % 5).collect();
            m.advance(t, &mut v, &until, Some(&current), Some((&g, &driven)));
            for k in 0..n {
                let leak = 1.0 + 100.0 * g[k];
                let v_inf = (-60.0 + 100.0 * current[k] + 100.0 * driven[k]) / leak;
                let free = v_inf + (start[k].0 - v_inf) * exp(leak * (-0.1 / 20.0));
                let expected = if t < until[k] { -60.0 } else { free };
                prop_assert_eq!(v[k].to_bits(), expected.to_bits());
                // And the exact solution (C library's exp) to 1e-12 mV.
                let exact = if t < until[k] { -60.0 } else {
                    v_inf + (start[k].0 - v_inf) * (-0.1 * leak / 20.0).exp()
                };
                prop_assert!((v[k] - exact).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn spin_barrier_holds_every_thread_until_all_arrive() {
        let barrier = SpinBarrier::new(3);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for round in 0..200 {
                        counter.fetch_add(1, Ordering::SeqCst);
                        barrier.wait();
                        // Every thread has counted this round before any passes the barrier.
                        assert!(counter.load(Ordering::SeqCst) >= 3 * (round + 1));
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::SeqCst), 600);
    }
}
