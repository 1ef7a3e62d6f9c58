//! Weight decay, a post-update step.
//!
//! # What it does
//! After every update, every plastic weight shrinks by a fixed fraction: a passive decay of
//! synaptic efficacy, and the L2 regulariser of machine learning. The paper's CIFAR-10
//! network (Fig. S5) is trained with weight regularisation.
//!
//! # Equations
//! `W ← (1 − λ) W` after each update (equivalently, a gradient step on `λ/(2η) |W|²`).
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `rate` | 1/step | — | λ, in `[0, 1)` |
//! | `projections` | names | all plastic | the projections it applies to |
//!
//! # References
//! - A. Krogh, J. A. Hertz (1991). A simple weight decay can improve generalization. NIPS 4.

use npsim_core::{Entry, Invalid, Param, PlasticWeights, PostUpdate, Real, RuleError};
use serde::{Deserialize, Serialize};

use crate::registry::PostUpdateSpec;

/// `WeightDecay(rate:, projections:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "WeightDecay")]
pub struct WeightDecayConfig {
    /// Fraction lost per step, in `[0, 1)`.
    pub rate: f64,
    /// Projections it applies to (default: all plastic ones).
    #[serde(default)]
    pub projections: Option<Vec<String>>,
}

impl PostUpdateSpec for WeightDecayConfig {
    const ENTRY: Entry = Entry {
        name: "WeightDecay",
        summary: "after each update, W ← (1 − rate) W (passive decay; L2 regularisation)",
        params: &[
            Param {
                name: "rate",
                unit: "1/step",
                default: "required",
                meaning: "λ, the fraction lost per step, in [0, 1)",
            },
            Param {
                name: "projections",
                unit: "names",
                default: "None",
                meaning: "the projections it applies to: `None` (every plastic one) or `Some([\"W1\", ...])`",
            },
        ],
        example: "WeightDecay(rate: 1e-4)",
    };

    fn validate(&self) -> Result<(), Invalid> {
        if (0.0..1.0).contains(&self.rate) {
            Ok(())
        } else {
            Err(Invalid::new("rate", format!("must be in [0, 1), got {}", self.rate)))
        }
    }

    fn projections(&self) -> Option<&[String]> {
        self.projections.as_deref()
    }

    fn build<T: Real>(&self) -> Box<dyn PostUpdate<T>> {
        Box::new(WeightDecay::<T>::new(self.rate, self.projections.clone()))
    }
}

/// Multiplicative weight decay.
#[derive(Debug, Clone)]
pub struct WeightDecay<T: Real> {
    keep: T,
    only: Option<Vec<String>>,
}

impl<T: Real> WeightDecay<T> {
    /// Decay by `rate` per step, on the named projections or (`None`) all plastic ones.
    pub fn new(rate: f64, projections: Option<Vec<String>>) -> Self {
        Self {
            keep: T::of(1.0 - rate),
            only: projections,
        }
    }
}

impl<T: Real> PostUpdate<T> for WeightDecay<T> {
    fn name(&self) -> &str {
        "weight_decay"
    }

    fn apply(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        for p in projections.iter_mut() {
            if self
                .only
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == p.name))
            {
                *p.weights *= self.keep;
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
    fn decays_geometrically_and_only_where_asked() {
        let mut a = DMatrix::from_element(2, 2, 1.0f64);
        let mut b = DMatrix::from_element(2, 2, 1.0f64);
        let mut decay = WeightDecay::<f64>::new(0.1, Some(vec!["A".into()]));
        for _ in 0..10 {
            decay
                .apply(&mut [
                    PlasticWeights {
                        name: "A",
                        weights: &mut a,
                    },
                    PlasticWeights {
                        name: "B",
                        weights: &mut b,
                    },
                ])
                .unwrap();
        }
        assert!((a[(0, 0)] - 0.9f64.powi(10)).abs() < 1e-15);
        assert_eq!(b[(1, 1)], 1.0);
    }
}
