//! Intrinsic noise of populations: the perturbation source of node perturbation.

use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Real, seed::StreamRng};

/// Intrinsic noise added to a population's pre-activation on the perturbed pass.
///
/// | variant | added to each unit's pre-activation, per sample |
/// |---------|----------------------------|
/// | `None` | nothing: the population is not perturbed |
/// | `Gaussian(std: σ)` | `σ ξ`, `ξ ~ N(0, 1)` independent across units, samples and steps |
///
/// Time-stepped noise processes (Ornstein–Uhlenbeck, Poisson) will be further variants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Noise {
    /// No intrinsic noise.
    #[default]
    None,
    /// Gaussian white noise of standard deviation `std` (units of the pre-activation).
    Gaussian {
        /// Standard deviation σ.
        std: f64,
    },
}

impl Noise {
    /// The standard deviation (0 for `None`).
    pub fn std(&self) -> f64 {
        match *self {
            Noise::None => 0.0,
            Noise::Gaussian { std } => std,
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Noise::Gaussian { std } if !(std > 0.0 && std.is_finite()) => Err(format!(
                "std must be a finite number > 0, got {std} (use `None` for a noiseless population)"
            )),
            _ => Ok(()),
        }
    }
}

/// Fills `out` with `std · ξ`, drawing column by column (sample by sample).
pub fn fill_gaussian<T: Real>(out: &mut DMatrix<T>, std: f64, rng: &mut StreamRng) {
    for value in out.iter_mut() {
        let z: f64 = StandardNormal.sample(rng);
        *value = T::of(std * z);
    }
}
