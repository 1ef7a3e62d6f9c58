//! The per-sample losses a circuit is trained on, and their differences without cancellation.

use crate::Real;

/// The per-sample loss a circuit is trained on.
///
/// | loss | `ℓ(a, t)` | perturbed difference `ℓ(a + d) − ℓ(a)`, without cancellation | `∂ℓ/∂a` |
/// |------|-----------|------------------------------|---------|
/// | `SquaredError` | `½|a − t|²` | `d·(a − t) + ½|d|²` | `a − t` |
/// | `CrossEntropy` | `−Σ t_i ln a_i` (outputs in (0, 1], e.g. softmax) | `−Σ t_i ln1p(d_i / a_i)` | `−t_i / a_i` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename = "loss")]
pub enum Loss {
    /// Half the squared error (the paper's).
    #[default]
    SquaredError,
    /// Cross-entropy against target probabilities.
    CrossEntropy,
}

impl Loss {
    /// `ℓ(a, t)` for one sample.
    pub fn value<T: Real>(self, a: &[T], t: &[T]) -> T {
        match self {
            Loss::SquaredError => {
                a.iter().zip(t).map(|(&ai, &ti)| (ai - ti) * (ai - ti)).sum::<T>() * T::of(0.5)
            }
            Loss::CrossEntropy => -a
                .iter()
                .zip(t)
                .filter(|(_, ti)| **ti != T::zero())
                .map(|(&ai, &ti)| ti * ai.ln())
                .sum::<T>(),
        }
    }

    /// `ℓ(a + d, t) − ℓ(a, t)` for one sample, accurate when `|d| ≪ |a|`.
    pub fn difference<T: Real>(self, a: &[T], d: &[T], t: &[T]) -> T {
        let half = T::of(0.5);
        match self {
            Loss::SquaredError => a
                .iter()
                .zip(d)
                .zip(t)
                .map(|((&ai, &di), &ti)| di * (ai - ti) + half * di * di)
                .sum(),
            Loss::CrossEntropy => -a
                .iter()
                .zip(d)
                .zip(t)
                .filter(|(_, ti)| **ti != T::zero())
                .map(|((&ai, &di), &ti)| ti * (di / ai).ln_1p())
                .sum::<T>(),
        }
    }

    /// Writes `∂ℓ/∂a` for column-major batches.
    pub fn gradient<T: Real>(self, a: &[T], t: &[T], out: &mut [T]) {
        match self {
            Loss::SquaredError => out
                .iter_mut()
                .zip(a.iter().zip(t))
                .for_each(|(o, (&ai, &ti))| *o = ai - ti),
            Loss::CrossEntropy => out
                .iter_mut()
                .zip(a.iter().zip(t))
                .for_each(|(o, (&ai, &ti))| *o = if ti == T::zero() { T::zero() } else { -ti / ai }),
        }
    }
}
