//! Activation functions of rate populations.
//!
//! | name | `f(u)` | `f'(u)` |
//! |------|--------|---------|
//! | `Linear` | `u` | `1` |
//! | `Relu` | `max(u, 0)` | `1` if `u > 0`, else `0` |
//! | `Tanh` | `tanh(u)` | `1 − tanh²(u)` |
//! | `Sigmoid` | `1 / (1 + e^{−u})` | `f(u)(1 − f(u))` |
//!
//! Node perturbation compares a noisy pass with a clean one; with perturbations of `1e-6`
//! the difference `f(u + d) − f(u)` computed naively loses most of its digits in `f32`.
//! [`Activation::difference`] therefore uses identities without cancellation:
//! `tanh(u+d) − tanh(u) = sinh(d) / (cosh(u+d) cosh(u))` and
//! `σ(u+d) − σ(u) = −σ(u+d)(1 − σ(u)) expm1(−d)`.

use serde::{Deserialize, Serialize};

use crate::Real;

/// The transfer function of a rate population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
        }
    }

    /// `out[i] = f(u[i])`.
    pub fn apply_slice<T: Real>(self, u: &[T], out: &mut [T]) {
        match self {
            Activation::Linear => out.copy_from_slice(u),
            _ => out.iter_mut().zip(u).for_each(|(o, &v)| *o = self.apply(v)),
        }
    }

    /// `out[i] = f(u[i] + d[i]) − f(u[i])`.
    pub fn difference_slice<T: Real>(self, u: &[T], d: &[T], out: &mut [T]) {
        match self {
            Activation::Linear => out.copy_from_slice(d),
            _ => out
                .iter_mut()
                .zip(u.iter().zip(d))
                .for_each(|(o, (&v, &dv))| *o = self.difference(v, dv)),
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
