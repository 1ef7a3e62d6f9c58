//! Population models: how a population's activity follows its input.
//!
//! | model | dynamics | engines |
//! |---|---|---|
//! | `Static` | `a = f(u + n)` at once | batch and trial |
//! | `LeakyRate(tau: τ)` | `τ dr/dt = −r + f(u + n)` | trial |
//! | `Lif(..)` | leaky integrate-and-fire: `τ_m dV/dt = −(V − E_L) + R I − R Σ_k g_k (V − E_k)`, a spike and a reset when `V ≥ θ` | trial |
//! | `Poisson(rate: λ)` | a noise source: independent Poisson spike trains at `λ` Hz, no input | trial |
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
//! `Lif` integrates its membrane exactly for inputs held over a step: with the current
//! `I = u + n` (instant and current-based synapses plus noise, nA) and the conductances
//! `g_k` (µS) of conductance-based synapses with reversal potentials `E_k` held constant,
//! `V(t + dt) = V∞ + (V(t) − V∞) e^{−dt (1 + R G)/τ_m}` with `G = Σ_k g_k` and
//! `V∞ = (E_L + R I + R Σ_k g_k E_k)/(1 + R G)`. A neuron whose `V` is at or above `θ` at the
//! end of a step spikes in that step (spike times are the step's; a spike's activity is 1
//! for that step), is reset to `V_reset` and held there for `refractory` ms (rounded to whole
//! steps). `V` starts at `E_L`. Spiking populations have no gradient: SGD and the cosine
//! diagnostic are unavailable for circuits with them.
//!
//! `Poisson` is a source of variability such as the songbird's LMAN: each unit spikes in a
//! step with probability `λ dt` (activity 1 in that step, drawn from the population's stream
//! `noise/<name>`), independently across units, steps and renditions. In a noise-free
//! rendition it delivers its mean instead, activity `λ dt` in every step, so the clean
//! rendition is the circuit driven by LMAN's mean input. What a postsynaptic unit receives
//! from it minus that mean — the synaptic current or conductance of the spikes minus the one
//! of the mean, through the projection's synapse — is the perturbation node perturbation
//! correlates with the reward. A `Poisson` population takes no projections and has no other
//! noise; it needs `λ dt ≤ 1`.
//!
//! # Parameters
//! | model | name | unit | default | meaning |
//! |---|---|---|---|---|
//! | `LeakyRate` | `tau` | ms | required | membrane (rate) time constant τ > 0 |
//! | `Lif` | `tau_m` | ms | 20.0 | membrane time constant |
//! | `Lif` | `v_rest` | mV | -60.0 | resting (leak reversal) potential `E_L` |
//! | `Lif` | `v_threshold` | mV | -50.0 | spike threshold `θ` (above `v_reset`) |
//! | `Lif` | `v_reset` | mV | -60.0 | potential after a spike |
//! | `Lif` | `refractory` | ms | 2.0 | time held at `v_reset` after a spike |
//! | `Lif` | `resistance` | MΩ | 100.0 | membrane resistance `R` (`R I` in mV for `I` in nA; `R g` dimensionless for `g` in µS) |
//! | `Poisson` | `rate` | Hz | required | firing rate λ ≥ 0 of each unit |
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
    /// Leaky integrate-and-fire (trial engine).
    Lif(LifParameters),
    /// Independent Poisson spike trains, a noise source with no input (trial engine).
    Poisson {
        /// Rate of each unit, Hz.
        rate: f64,
    },
}

fn default_tau_m() -> f64 {
    20.0
}
fn default_v_rest() -> f64 {
    -60.0
}
fn default_v_threshold() -> f64 {
    -50.0
}
fn default_refractory() -> f64 {
    2.0
}
fn default_resistance() -> f64 {
    100.0
}

/// The parameters of a leaky integrate-and-fire population (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Lif", deny_unknown_fields)]
pub struct LifParameters {
    /// Membrane time constant τ_m, ms (default 20).
    #[serde(default = "default_tau_m")]
    pub tau_m: f64,
    /// Resting potential E_L, mV (default −60).
    #[serde(default = "default_v_rest")]
    pub v_rest: f64,
    /// Threshold θ, mV (default −50).
    #[serde(default = "default_v_threshold")]
    pub v_threshold: f64,
    /// Reset potential, mV (default −60).
    #[serde(default = "default_v_rest")]
    pub v_reset: f64,
    /// Refractory period, ms (default 2).
    #[serde(default = "default_refractory")]
    pub refractory: f64,
    /// Membrane resistance R, MΩ (default 100).
    #[serde(default = "default_resistance")]
    pub resistance: f64,
}

impl Default for LifParameters {
    fn default() -> Self {
        Self {
            tau_m: default_tau_m(),
            v_rest: default_v_rest(),
            v_threshold: default_v_threshold(),
            v_reset: default_v_rest(),
            refractory: default_refractory(),
            resistance: default_resistance(),
        }
    }
}

impl PopulationModel {
    /// Whether the model has no state, so the batch engine can evaluate it.
    pub fn is_static(&self) -> bool {
        matches!(self, PopulationModel::Static)
    }

    /// `ρ = e^{−dt/τ}`, the fraction of the rate kept over a step of `dt` ms (0 for `Static`
    /// and `Lif`, whose activity is its spikes).
    pub fn retention(&self, dt: f64) -> f64 {
        match *self {
            PopulationModel::Static | PopulationModel::Lif(_) | PopulationModel::Poisson { .. } => 0.0,
            PopulationModel::LeakyRate { tau } => (-dt / tau).exp(),
        }
    }

    /// Whether the population spikes in response to its input (and so has no gradient).
    pub fn is_spiking(&self) -> bool {
        matches!(self, PopulationModel::Lif(_))
    }

    /// Whether the population is a noise source (no input; its variability perturbs the
    /// populations it projects to).
    pub fn is_source(&self) -> bool {
        matches!(self, PopulationModel::Poisson { .. })
    }

    /// A spike's probability per step of `dt` ms for a noise source (0 otherwise).
    pub fn spike_probability(&self, dt: f64) -> f64 {
        match *self {
            PopulationModel::Poisson { rate } => rate * dt / 1000.0,
            _ => 0.0,
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            PopulationModel::LeakyRate { tau } if !(tau > 0.0 && tau.is_finite()) => {
                Err(format!("tau must be a finite number of ms > 0, got {tau}"))
            }
            PopulationModel::Poisson { rate } if !(rate >= 0.0 && rate.is_finite()) => {
                Err(format!("rate must be a finite number of Hz >= 0, got {rate}"))
            }
            PopulationModel::Lif(p) => {
                for (name, value) in [("tau_m", p.tau_m), ("resistance", p.resistance)] {
                    if !(value > 0.0 && value.is_finite()) {
                        return Err(format!("{name} must be a finite number > 0, got {value}"));
                    }
                }
                if !(p.refractory >= 0.0 && p.refractory.is_finite()) {
                    return Err(format!(
                        "refractory must be a finite number of ms >= 0, got {}",
                        p.refractory
                    ));
                }
                if ![p.v_rest, p.v_threshold, p.v_reset].iter().all(|v| v.is_finite()) {
                    return Err("potentials must be finite numbers of mV".into());
                }
                if p.v_threshold <= p.v_reset {
                    return Err(format!(
                        "v_threshold ({} mV) must lie above v_reset ({} mV)",
                        p.v_threshold, p.v_reset
                    ));
                }
                Ok(())
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
    Entry {
        name: "Lif",
        summary: "leaky integrate-and-fire: τ_m dV/dt = −(V − E_L) + R I − R Σ_k g_k (V − E_k), exact exponential integration per step, spike and reset at V ≥ θ, refractory period (trial engine)",
        params: &[
            Param {
                name: "tau_m",
                unit: "ms",
                default: "20.0",
                meaning: "membrane time constant",
            },
            Param {
                name: "v_rest",
                unit: "mV",
                default: "-60.0",
                meaning: "resting potential E_L",
            },
            Param {
                name: "v_threshold",
                unit: "mV",
                default: "-50.0",
                meaning: "threshold θ, above v_reset",
            },
            Param {
                name: "v_reset",
                unit: "mV",
                default: "-60.0",
                meaning: "potential after a spike",
            },
            Param {
                name: "refractory",
                unit: "ms",
                default: "2.0",
                meaning: "time held at v_reset after a spike",
            },
            Param {
                name: "resistance",
                unit: "MΩ",
                default: "100.0",
                meaning: "membrane resistance R (R·I in mV for I in nA)",
            },
        ],
        example: "model: Lif(tau_m: 25.0, v_threshold: -49.0, v_reset: -72.0, refractory: 1.0)",
    },
    Entry {
        name: "Poisson",
        summary: "noise source: independent Poisson spike trains (spike probability λ·dt per step; its mean λ·dt in noise-free renditions); takes no projections; what it delivers minus its mean is the perturbation NP correlates (trial engine)",
        params: &[Param {
            name: "rate",
            unit: "Hz",
            default: "required",
            meaning: "rate λ ≥ 0 of each unit (λ·dt ≤ 1)",
        }],
        example: "model: Poisson(rate: 80.0)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_registered_and_its_example_parses() {
        let _exhaustive = |m: PopulationModel| match m {
            PopulationModel::Static
            | PopulationModel::LeakyRate { .. }
            | PopulationModel::Lif(_)
            | PopulationModel::Poisson { .. } => {}
        };
        for entry in POPULATION_MODELS {
            let text = entry.example.trim_start_matches("model: ");
            // Scenarios read newtype variants like struct variants (`Lif(tau_m: ..)`).
            let model: PopulationModel = ron::Options::default()
                .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
                .from_str(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(ron::to_string(&model).unwrap().starts_with(entry.name));
        }
        assert_eq!(PopulationModel::Static.retention(1.0), 0.0);
        let rho = PopulationModel::LeakyRate { tau: 20.0 }.retention(1.0);
        assert!((rho - (-0.05f64).exp()).abs() < 1e-15);
        assert!(PopulationModel::LeakyRate { tau: 0.0 }.check().is_err());
        let bad = PopulationModel::Lif(LifParameters {
            v_threshold: -70.0,
            ..Default::default()
        });
        assert_eq!(
            bad.check().unwrap_err(),
            "v_threshold (-70 mV) must lie above v_reset (-60 mV)"
        );
    }
}
