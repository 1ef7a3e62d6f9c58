//! Weight normalisation (synaptic scaling), a post-update step.
//!
//! # What it does
//! After every update, each neuron rescales all its incoming weights together so that their
//! root-mean-square stays at a target — a homeostatic synaptic scaling (Turrigiano 2008). In
//! the paper (Fig. 3D) it removes the diffusive growth of weight norms that makes NP unstable
//! under teacher noise, at the cost of a bias in the update.
//!
//! # Equations
//! For each row `w_i` of a plastic weight matrix (the incoming weights of neuron `i`):
//! `w_i ← w_i · target_i / rms(w_i)`, `rms(w_i) = sqrt(mean_j w_ij²)`.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `target` | weight | `Initial` | `Initial`: each neuron's RMS at the start of the run; `Value(x)`: the same `x` for all |
//! | `projections` | names | all plastic | the projections it applies to |
//!
//! # References
//! - G. G. Turrigiano (2008). The self-tuning neuron: synaptic scaling of excitatory
//!   synapses. Cell 135.
//! - Hiratani et al. (2022), Section 4 and Fig. 3D.

use std::collections::HashMap;

use npsim_core::{Entry, Invalid, Param, PlasticWeights, PostUpdate, Real, RuleError};
use serde::{Deserialize, Serialize};

use crate::registry::PostUpdateSpec;

/// `WeightNormalisation(target:, projections:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "WeightNormalisation")]
pub struct WeightNormalisationConfig {
    /// `Initial` (each neuron's initial RMS, default) or `Value(x)`.
    #[serde(default)]
    pub target: NormalisationTarget,
    /// Projections it applies to (default: all plastic ones).
    #[serde(default)]
    pub projections: Option<Vec<String>>,
}

impl PostUpdateSpec for WeightNormalisationConfig {
    const ENTRY: Entry = Entry {
        name: "WeightNormalisation",
        summary: "after each update, each neuron's incoming-weight RMS is rescaled to a target (synaptic scaling, Fig. 3D)",
        params: &[
            Param {
                name: "target",
                unit: "weight",
                default: "Initial",
                meaning: "`Initial` (each neuron's RMS at the start) or `Value(x)` (the same x > 0 for all)",
            },
            Param {
                name: "projections",
                unit: "names",
                default: "None",
                meaning: "the projections it applies to: `None` (every plastic one) or `Some([\"W1\", ...])`",
            },
        ],
        example: "WeightNormalisation(target: Initial)",
    };

    fn validate(&self) -> Result<(), Invalid> {
        match self.target {
            NormalisationTarget::Value(v) => npsim_core::registry::positive("target", v),
            NormalisationTarget::Initial => Ok(()),
        }
    }

    fn projections(&self) -> Option<&[String]> {
        self.projections.as_deref()
    }

    fn build<T: Real>(&self) -> Box<dyn PostUpdate<T>> {
        Box::new(WeightNormalisation::<T>::new(self.target, self.projections.clone()))
    }
}

/// The RMS each neuron's incoming weights are held at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "target")]
pub enum NormalisationTarget {
    /// Each neuron's own RMS at the start of the run.
    #[default]
    Initial,
    /// One value for every neuron.
    Value(f64),
}

/// Per-neuron RMS normalisation of incoming weights.
#[derive(Debug, Clone)]
pub struct WeightNormalisation<T: Real> {
    target: NormalisationTarget,
    only: Option<Vec<String>>,
    targets: HashMap<String, Vec<T>>,
}

impl<T: Real> WeightNormalisation<T> {
    /// Normalisation to `target`, on the named projections or (`None`) on all plastic ones.
    pub fn new(target: NormalisationTarget, projections: Option<Vec<String>>) -> Self {
        Self {
            target,
            only: projections,
            targets: HashMap::new(),
        }
    }

    fn applies_to(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

fn row_rms<T: Real>(weights: &nalgebra::DMatrix<T>, row: usize) -> T {
    let n = T::of(weights.ncols() as f64);
    (weights.row(row).iter().map(|&w| w * w).sum::<T>() / n).sqrt()
}

impl<T: Real> PostUpdate<T> for WeightNormalisation<T> {
    fn name(&self) -> &str {
        "weight_normalisation"
    }

    fn initialise(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        if let Some(names) = &self.only {
            for name in names {
                if !projections.iter().any(|p| p.name == name) {
                    let known: Vec<_> = projections.iter().map(|p| format!("`{}`", p.name)).collect();
                    return Err(RuleError::Failed {
                        rule: "weight_normalisation".into(),
                        message: format!(
                            "no plastic projection `{name}`; plastic projections: {}",
                            known.join(", ")
                        ),
                    });
                }
            }
        }
        for p in projections.iter() {
            if self.applies_to(p.name) {
                let targets = (0..p.weights.nrows())
                    .map(|i| match self.target {
                        NormalisationTarget::Initial => row_rms(p.weights, i),
                        NormalisationTarget::Value(v) => T::of(v),
                    })
                    .collect();
                self.targets.insert(p.name.to_string(), targets);
            }
        }
        Ok(())
    }

    fn apply(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        for p in projections.iter_mut() {
            let Some(targets) = self.targets.get(p.name) else {
                continue;
            };
            for (i, &target) in targets.iter().enumerate() {
                let rms = row_rms(p.weights, i);
                if rms > T::zero() {
                    let factor = target / rms;
                    p.weights.row_mut(i).iter_mut().for_each(|w| *w *= factor);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn rows_return_to_their_initial_rms() {
        let mut w = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 2.0, 0.0, 3.0, 4.0]);
        let mut norm = WeightNormalisation::<f64>::new(NormalisationTarget::Initial, None);
        norm.initialise(&mut [PlasticWeights {
            name: "W",
            weights: &mut w,
        }])
        .unwrap();
        w *= 3.0;
        w[(0, 0)] += 1.0;
        norm.apply(&mut [PlasticWeights {
            name: "W",
            weights: &mut w,
        }])
        .unwrap();
        assert!((row_rms(&w, 0) - 3f64.sqrt()).abs() < 1e-12);
        assert!((row_rms(&w, 1) - (25.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // Direction is kept: row 1 was only scaled.
        assert!((w[(1, 2)] / w[(1, 1)] - 4.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn unknown_projection_is_an_error() {
        let mut w = DMatrix::<f64>::identity(2, 2);
        let mut norm = WeightNormalisation::<f64>::new(NormalisationTarget::Initial, Some(vec!["W9".into()]));
        let err = norm
            .initialise(&mut [PlasticWeights {
                name: "W1",
                weights: &mut w,
            }])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no plastic projection `W9`; plastic projections: `W1`")
        );
    }
}
