//! Activation functions of rate populations.
//!
//! | name | `f(u)` | `f'(u)` |
//! |------|--------|---------|
//! | `Linear` | `u` | `1` |
//! | `Relu` | `max(u, 0)` | `1` if `u > 0`, else `0` |
//! | `Tanh` | `tanh(u)` | `1 − tanh²(u)` |
//! | `Sigmoid` | `1 / (1 + e^{−u})` | `f(u)(1 − f(u))` |
//! | `Softmax` | `e^{u_i} / Σ_j e^{u_j}` over the population | `∂f_i/∂u_j = f_i (δ_ij − f_j)` |
//!
//! Softmax acts on a whole population (one column per sample), so it is applied through the
//! column functions ([`Activation::apply_columns`] and friends); it is meant for an output
//! population. Its perturbed difference uses
//! `s_i(u + d) − s_i(u) = s_i (m_i − S) / (1 + S)` with `m_j = expm1(d_j)`, `S = Σ_j s_j m_j`,
//! and, for the most active unit `k`, `m_k − S = Σ_{j≠k} s_j (m_k − m_j)`, which does not
//! cancel when `s_k` is close to 1 (a confident output).
//!
//! Node perturbation compares a noisy pass with a clean one; with perturbations of `1e-6`
//! the difference `f(u + d) − f(u)` computed naively loses most of its digits in `f32`.
//! [`Activation::difference`] therefore uses identities without cancellation:
//! `tanh(u+d) − tanh(u) = sinh(d) / (cosh(u+d) cosh(u))` and
//! `σ(u+d) − σ(u) = −σ(u+d)(1 − σ(u)) expm1(−d)`.

use serde::{Deserialize, Serialize};

use crate::Real;
use crate::kernels::{by_column_blocks, by_entry_parts};

/// The transfer function of a rate population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename = "activation")]
pub enum Activation {
    /// `f(u) = u`.
    #[default]
    Linear,
    /// Rectified linear unit, `f(u) = max(u, 0)`.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softmax over the population (for output populations).
    Softmax,
}

impl Activation {
    /// `f(u)`.
    #[inline]
    pub fn apply<T: Real>(self, u: T) -> T {
        match self {
            Activation::Linear => u,
            Activation::Relu => {
                if u > T::zero() {
                    u
                } else {
                    T::zero()
                }
            }
            Activation::Tanh => u.tanh(),
            Activation::Sigmoid => T::one() / (T::one() + (-u).exp()),
            Activation::Softmax => unreachable!("softmax acts on whole columns: use apply_columns"),
        }
    }

    /// `f'(u)`.
    #[inline]
    pub fn derivative<T: Real>(self, u: T) -> T {
        match self {
            Activation::Linear => T::one(),
            Activation::Relu => {
                if u > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::Tanh => {
                let t = u.tanh();
                T::one() - t * t
            }
            Activation::Sigmoid => {
                let s = self.apply(u);
                s * (T::one() - s)
            }
            Activation::Softmax => unreachable!("softmax acts on whole columns: use backprop_columns"),
        }
    }

    /// `f(u + d) − f(u)`, accurate to working precision even when `|d| ≪ |u|`.
    #[inline]
    pub fn difference<T: Real>(self, u: T, d: T) -> T {
        match self {
            Activation::Linear => d,
            Activation::Relu => {
                let v = u + d;
                match (u > T::zero(), v > T::zero()) {
                    (true, true) => d,
                    (false, false) => T::zero(),
                    (false, true) => v,
                    (true, false) => -u,
                }
            }
            Activation::Tanh => d.sinh() / ((u + d).cosh() * u.cosh()),
            Activation::Sigmoid => {
                let s_shifted = self.apply(u + d);
                let s = self.apply(u);
                -(s_shifted * (T::one() - s)) * (-d).exp_m1()
            }
            Activation::Softmax => unreachable!("softmax acts on whole columns: use difference_columns"),
        }
    }

    /// Runs a column pass of this activation over `out` and `inputs`, shared among threads:
    /// softmax by whole columns, the elementwise activations by entries (one part per thread).
    fn by_parts<T: Real, const N: usize>(
        self,
        rows: usize,
        out: &mut [T],
        inputs: [&[T]; N],
        pass: impl Fn(&mut [T], [&[T]; N]) + Sync,
    ) {
        if self == Activation::Softmax {
            by_column_blocks(rows, out, inputs, pass);
        } else {
            by_entry_parts(out, inputs, pass);
        }
    }

    /// Whether the activation acts on each entry alone (all but softmax), so that a column can
    /// be processed in parts.
    pub fn is_elementwise(self) -> bool {
        self != Activation::Softmax
    }

    /// `out = f(u)` for a part of a column, on this thread (elementwise activations only).
    pub(crate) fn apply_part<T: Real>(self, u: &[T], out: &mut [T]) {
        debug_assert!(self.is_elementwise(), "softmax acts on whole columns");
        self.apply_columns_serial(u.len(), u, out);
    }

    /// `out = f(u + d) − f(u)` for a part of a column, on this thread (elementwise activations
    /// only).
    pub(crate) fn difference_part<T: Real>(self, u: &[T], act: &[T], d: &[T], out: &mut [T]) {
        debug_assert!(self.is_elementwise(), "softmax acts on whole columns");
        self.difference_columns_serial(u.len(), u, act, d, out);
    }

    /// `out = f(u)` for column-major data with `rows` units per column (sample).
    pub fn apply_columns<T: Real>(self, rows: usize, u: &[T], out: &mut [T]) {
        self.by_parts(rows, out, [u], |out, [u]| self.apply_columns_serial(rows, u, out));
    }

    fn apply_columns_serial<T: Real>(self, rows: usize, u: &[T], out: &mut [T]) {
        match self {
            Activation::Linear => out.copy_from_slice(u),
            Activation::Softmax => {
                for (uc, oc) in u.chunks_exact(rows).zip(out.chunks_exact_mut(rows)) {
                    let max = uc
                        .iter()
                        .copied()
                        .reduce(|a, b| if b > a { b } else { a })
                        .unwrap_or_else(T::zero);
                    let mut total = T::zero();
                    for (o, &v) in oc.iter_mut().zip(uc) {
                        *o = (v - max).exp();
                        total += *o;
                    }
                    oc.iter_mut().for_each(|o| *o /= total);
                }
            }
            _ => out.iter_mut().zip(u).for_each(|(o, &v)| *o = self.apply(v)),
        }
    }

    /// `out = f(u + d) − f(u)`, accurately (see the module documentation). `act` is `f(u)`.
    pub fn difference_columns<T: Real>(self, rows: usize, u: &[T], act: &[T], d: &[T], out: &mut [T]) {
        self.by_parts(rows, out, [u, act, d], |out, [u, act, d]| {
            self.difference_columns_serial(rows, u, act, d, out)
        });
    }

    fn difference_columns_serial<T: Real>(self, rows: usize, u: &[T], act: &[T], d: &[T], out: &mut [T]) {
        match self {
            Activation::Linear => out.copy_from_slice(d),
            Activation::Softmax => {
                for ((sc, dc), oc) in act
                    .chunks_exact(rows)
                    .zip(d.chunks_exact(rows))
                    .zip(out.chunks_exact_mut(rows))
                {
                    let mut total = T::zero();
                    for (o, (&s, &dv)) in oc.iter_mut().zip(sc.iter().zip(dc)) {
                        *o = dv.exp_m1();
                        total += s * *o;
                    }
                    // For the most active unit k, `m_k − S` cancels as `s_k → 1`; the same
                    // quantity as `Σ_{j≠k} s_j (m_k − m_j)` (because `Σ s_j = 1`) does not.
                    let dominant = sc
                        .iter()
                        .enumerate()
                        .fold(0, |best, (j, &s)| if s > sc[best] { j } else { best });
                    let m_dominant = oc[dominant];
                    let dominant_gap: T = sc
                        .iter()
                        .zip(oc.iter())
                        .enumerate()
                        .filter(|&(j, _)| j != dominant)
                        .map(|(_, (&s, &m))| s * (m_dominant - m))
                        .sum();
                    let denominator = T::one() + total;
                    for (j, (o, &s)) in oc.iter_mut().zip(sc).enumerate() {
                        let gap = if j == dominant { dominant_gap } else { *o - total };
                        *o = s * gap / denominator;
                    }
                }
            }
            _ => out
                .iter_mut()
                .zip(u.iter().zip(d))
                .for_each(|(o, (&v, &dv))| *o = self.difference(v, dv)),
        }
    }

    /// Turns `∂ℓ/∂a` into `∂ℓ/∂u` in place (`e ← Jᵀ e`). `act` is `f(u)`.
    pub fn backprop_columns<T: Real>(self, rows: usize, u: &[T], act: &[T], e: &mut [T]) {
        self.by_parts(rows, e, [u, act], |e, [u, act]| {
            self.backprop_columns_serial(rows, u, act, e)
        });
    }

    fn backprop_columns_serial<T: Real>(self, rows: usize, u: &[T], act: &[T], e: &mut [T]) {
        match self {
            Activation::Linear => {}
            Activation::Softmax => {
                for (sc, ec) in act.chunks_exact(rows).zip(e.chunks_exact_mut(rows)) {
                    let dot: T = sc.iter().zip(ec.iter()).map(|(&s, &g)| s * g).sum();
                    for (g, &s) in ec.iter_mut().zip(sc) {
                        *g = s * (*g - dot);
                    }
                }
            }
            _ => e.iter_mut().zip(u).for_each(|(g, &v)| *g *= self.derivative(v)),
        }
    }

    /// Whether `f` is the identity (lets the engine and theory skip work).
    pub fn is_linear(self) -> bool {
        self == Activation::Linear
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Activation; 4] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
    ];

    #[test]
    fn column_passes_give_the_same_numbers_on_any_thread_count() {
        use crate::test_support::{on_threads, uniform_values};
        // 1000 units × 100 samples: above the threshold for sharing among threads.
        let (rows, cols) = (1000, 100);
        let u: Vec<f64> = uniform_values(rows * cols, 1)
            .iter()
            .map(|v| 4.0 * v - 2.0)
            .collect();
        let d: Vec<f64> = uniform_values(rows * cols, 2)
            .iter()
            .map(|v| 1e-3 * (v - 0.5))
            .collect();
        for act in ALL.into_iter().chain([Activation::Softmax]) {
            let run = |threads| {
                on_threads(threads, || {
                    let mut a = vec![0.0; rows * cols];
                    act.apply_columns(rows, &u, &mut a);
                    let mut diff = vec![0.0; rows * cols];
                    act.difference_columns(rows, &u, &a, &d, &mut diff);
                    let mut e = d.clone();
                    act.backprop_columns(rows, &u, &a, &mut e);
                    (a, diff, e)
                })
            };
            let one = run(1);
            assert_eq!(run(2), one, "{act:?}");
            if act != Activation::Softmax {
                // And the same as unit by unit.
                let serial: Vec<f64> = u.iter().map(|&v| act.apply(v)).collect();
                assert_eq!(one.0, serial, "{act:?}");
            }
        }
    }

    proptest! {
        // In f64 the naive difference is exact enough when d is not tiny: the identities must
        // agree with it to 1e-9 relative to |d|.
        #[test]
        fn difference_matches_naive_f64(u in -5.0f64..5.0, d in -1.0f64..1.0) {
            for act in ALL {
                let naive = act.apply(u + d) - act.apply(u);
                let exact = act.difference(u, d);
                prop_assert!((naive - exact).abs() <= 1e-9 * d.abs().max(1e-12), "{act:?} u={u} d={d}");
            }
        }

        // In f32 with a perturbation of 1e-6 the identity must match the f64 truth to 1e-5
        // relative, where the naive f32 difference is off by up to 100 %.
        #[test]
        fn difference_is_accurate_in_f32_for_tiny_perturbations(u in -3.0f64..3.0, z in -3.0f64..3.0) {
            let d = 1e-6 * z;
            for act in ALL {
                let truth = act.difference(u, d);
                let single = f64::from(act.difference(u as f32, d as f32));
                // The inputs themselves are rounded to f32, so compare against the f64 value
                // at the rounded inputs.
                let truth_rounded = act.difference(f64::from(u as f32), f64::from(d as f32));
                prop_assert!((single - truth_rounded).abs() <= 1e-5 * truth.abs() + 1e-13, "{act:?} u={u} d={d}");
            }
        }

        // Softmax over a column: values sum to one, the accurate difference matches the
        // naive one in f64 (1e-9 relative to |d|) and the f64 truth in f32 with d ~ 1e-4
        // (1e-4 relative, where the naive f32 difference is off by ~1e-3).
        #[test]
        fn softmax_columns(u in proptest::collection::vec(-4.0f64..4.0, 5), z in proptest::collection::vec(-3.0f64..3.0, 5)) {
            let act = Activation::Softmax;
            let mut s = vec![0.0; 5];
            act.apply_columns(5, &u, &mut s);
            prop_assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for scale in [1e-1, 1e-4] {
                let d: Vec<f64> = z.iter().map(|v| v * scale).collect();
                let shifted: Vec<f64> = u.iter().zip(&d).map(|(a, b)| a + b).collect();
                let mut s2 = vec![0.0; 5];
                act.apply_columns(5, &shifted, &mut s2);
                let mut diff = vec![0.0; 5];
                act.difference_columns(5, &u, &s, &d, &mut diff);
                for i in 0..5 {
                    prop_assert!((diff[i] - (s2[i] - s[i])).abs() <= 1e-9 * scale);
                }
                let (u32, d32): (Vec<f32>, Vec<f32>) = (u.iter().map(|&v| v as f32).collect(), d.iter().map(|&v| v as f32).collect());
                let mut s32 = vec![0.0f32; 5];
                act.apply_columns(5, &u32, &mut s32);
                let mut diff32 = vec![0.0f32; 5];
                act.difference_columns(5, &u32, &s32, &d32, &mut diff32);
                let norm: f64 = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
                let err: f64 = diff.iter().zip(&diff32).map(|(a, &b)| (a - f64::from(b)).powi(2)).sum::<f64>().sqrt();
                prop_assert!(err <= 1e-4 * norm + 1e-12, "f32 error {err} vs norm {norm}");
            }
        }

        #[test]
        fn softmax_backprop_matches_finite_differences(u in proptest::collection::vec(-3.0f64..3.0, 4), g in proptest::collection::vec(-1.0f64..1.0, 4)) {
            // ℓ = g·softmax(u): ∂ℓ/∂u by the Jacobian-transpose product and by central differences.
            let act = Activation::Softmax;
            let loss = |u: &[f64]| { let mut s = vec![0.0; 4]; act.apply_columns(4, u, &mut s); s.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() };
            let mut s = vec![0.0; 4];
            act.apply_columns(4, &u, &mut s);
            let mut e = g.clone();
            act.backprop_columns(4, &u, &s, &mut e);
            for i in 0..4 {
                let h = 1e-6;
                let (mut up, mut down) = (u.clone(), u.clone());
                up[i] += h;
                down[i] -= h;
                prop_assert!(((loss(&up) - loss(&down)) / (2.0 * h) - e[i]).abs() < 1e-7);
            }
        }

        #[test]
        fn derivative_matches_central_difference(u in -4.0f64..4.0) {
            prop_assume!(u.abs() > 1e-3); // ReLU's kink
            for act in ALL {
                let h = 1e-6;
                let numeric = (act.apply(u + h) - act.apply(u - h)) / (2.0 * h);
                prop_assert!((numeric - act.derivative(u)).abs() < 1e-6, "{act:?} u={u}");
            }
        }
    }
}
