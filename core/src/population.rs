//! Population models: how a population's activity follows its input.
//!
//! | model | dynamics | engines |
//! |---|---|---|
//! | `Static` | `a = f(u + n)` at once | batch and trial |
//! | `LeakyRate(tau: τ)` | `τ dr/dt = −r + f(u + n)` | trial |
//!
//! `u` is the summed input (weights times presynaptic activity, plus bias), `n` the
//! population's intrinsic noise and `f` its activation.
//!
//! # Integration (trial engine)
//! `LeakyRate` is integrated by exponential Euler, `r(t + dt) = ρ r(t) + (1 − ρ) f(u(t) + n(t))`
//! with `ρ = e^{−dt/τ}`: exact for an input held constant over the step, stable for any `dt`,
//! and with no `dt`-dependent gain. Rates start at 0 at the beginning of each rendition.
//! Within a step populations are updated in the circuit's topological order, so a leaky
//! population sees its presynaptic populations' activity of the same step.
//!
//! # Parameters
//! | model | name | unit | default | meaning |
//! |---|---|---|---|---|
//! | `LeakyRate` | `tau` | ms | required | membrane (rate) time constant τ > 0 |
//!
//! # References
//! - P. Dayan, L. F. Abbott (2001). Theoretical Neuroscience, ch. 7 (firing-rate models).

use serde::{Deserialize, Serialize};

use crate::registry::{Entry, Param};

/// How a population's activity follows its input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "model", deny_unknown_fields)]
pub enum PopulationModel {
    /// `a = f(u + n)`: no state (the batch engine's neurons).
    #[default]
    Static,
    /// `τ dr/dt = −r + f(u + n)` (trial engine).
    LeakyRate {
        /// Time constant τ, in ms.
        tau: f64,
    },
}

impl PopulationModel {
    /// Whether the model has no state, so the batch engine can evaluate it.
    pub fn is_static(&self) -> bool {
        matches!(self, PopulationModel::Static)
    }

    /// `ρ = e^{−dt/τ}`, the fraction of the rate kept over a step of `dt` ms (0 for `Static`).
    pub fn retention(&self, dt: f64) -> f64 {
        match *self {
            PopulationModel::Static => 0.0,
            PopulationModel::LeakyRate { tau } => (-dt / tau).exp(),
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            PopulationModel::LeakyRate { tau } if !(tau > 0.0 && tau.is_finite()) => {
                Err(format!("tau must be a finite number of ms > 0, got {tau}"))
            }
            _ => Ok(()),
        }
    }
}

/// The registered population models.
pub const POPULATION_MODELS: &[Entry] = &[
    Entry {
        name: "Static",
        summary: "a = f(u + n): no state, evaluated at once (batch and trial engines)",
        params: &[],
        example: "model: Static",
    },
    Entry {
        name: "LeakyRate",
        summary: "τ dr/dt = −r + f(u + n), exponential Euler r ← ρ r + (1 − ρ) f(u + n), ρ = e^{−dt/τ} (trial engine)",
        params: &[Param {
            name: "tau",
            unit: "ms",
            default: "required",
            meaning: "time constant τ > 0",
        }],
        example: "model: LeakyRate(tau: 25.0)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_registered_and_its_example_parses() {
        let _exhaustive = |m: PopulationModel| match m {
            PopulationModel::Static | PopulationModel::LeakyRate { .. } => {}
        };
        for entry in POPULATION_MODELS {
            let text = entry.example.trim_start_matches("model: ");
            let model: PopulationModel = ron::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(ron::to_string(&model).unwrap().starts_with(entry.name));
        }
        assert_eq!(PopulationModel::Static.retention(1.0), 0.0);
        let rho = PopulationModel::LeakyRate { tau: 20.0 }.retention(1.0);
        assert!((rho - (-0.05f64).exp()).abs() < 1e-15);
        assert!(PopulationModel::LeakyRate { tau: 0.0 }.check().is_err());
    }
}
