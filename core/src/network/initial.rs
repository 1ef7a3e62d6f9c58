//! The state a free-running network starts from, when it is not rest.

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::NetworkError;
use crate::CircuitBlueprint;

/// How a state variable's starting value is drawn, neuron by neuron.
///
/// | variant | value |
/// |---|---|
/// | `Constant(value: c)` | `c` |
/// | `Uniform(low: a, high: b)` | uniform in `[a, b)` |
/// | `Normal(mean: m, std: s)` | `N(m, s²)`; a conductance drawn below 0 is set to 0 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename = "initial", deny_unknown_fields)]
pub enum InitialValue {
    /// Every neuron the same.
    Constant {
        /// The value.
        value: f64,
    },
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end, `>= low`.
        high: f64,
    },
    /// Normal.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation, `>= 0`.
        std: f64,
    },
}

impl InitialValue {
    fn check(&self) -> Result<(), String> {
        let finite = |values: &[f64]| values.iter().all(|v| v.is_finite());
        match *self {
            InitialValue::Constant { value } if !finite(&[value]) => Err("value must be finite".into()),
            InitialValue::Uniform { low, high } if !finite(&[low, high]) || high < low => Err(format!(
                "low and high must be finite with low <= high, got low {low}, high {high}"
            )),
            InitialValue::Normal { mean, std } if !finite(&[mean, std]) || std < 0.0 => Err(format!(
                "mean and std must be finite with std >= 0, got mean {mean}, std {std}"
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn draw(&self, rng: &mut crate::StreamRng) -> f64 {
        match *self {
            InitialValue::Constant { value } => value,
            InitialValue::Uniform { low, high } => {
                let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                low + (high - low) * u
            }
            InitialValue::Normal { mean, std } => {
                let z: f64 = StandardNormal.sample(rng);
                mean + std * z
            }
        }
    }
}

/// Starting values that are not the resting state, by population and projection name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "initial_state", deny_unknown_fields)]
pub struct InitialState {
    /// Membrane potentials (mV) by population (default `E_L`).
    #[serde(default)]
    pub potential: BTreeMap<String, InitialValue>,
    /// Synaptic traces by projection: conductance (µS, kept >= 0) or current (nA) (default 0).
    #[serde(default)]
    pub synapse: BTreeMap<String, InitialValue>,
}

/// Checks the initial state's names and values against the blueprint.
pub fn check_initial(bp: &CircuitBlueprint, initial: &InitialState) -> Result<(), NetworkError> {
    let known = |names: Vec<&str>| names.join(", ");
    for (name, value) in &initial.potential {
        if bp.population_index(name).is_none() {
            return Err(NetworkError::UnknownName {
                what: "potential",
                name: name.clone(),
                known: known(bp.populations().iter().map(|p| p.name.as_str()).collect()),
            });
        }
        value.check().map_err(|problem| NetworkError::Initial {
            what: "potential",
            name: name.clone(),
            problem,
        })?;
    }
    for (name, value) in &initial.synapse {
        if bp.projection_index(name).is_none() {
            return Err(NetworkError::UnknownName {
                what: "synapse",
                name: name.clone(),
                known: known(bp.projections().iter().map(|p| p.name.as_str()).collect()),
            });
        }
        value.check().map_err(|problem| NetworkError::Initial {
            what: "synapse",
            name: name.clone(),
            problem,
        })?;
    }
    Ok(())
}
