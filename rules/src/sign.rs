//! Sign constraint, a post-update step: excitatory synapses stay excitatory.
//!
//! # What it does
//! After every update, every weight of the chosen projections that became negative is set to
//! zero: a synapse can weaken to silence but not change sign (Dale's principle for an
//! excitatory pathway such as HVC → RA).
//!
//! # Equations
//! `W ← max(W, 0)`, entry by entry, after each update.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `projections` | names | all plastic | the projections it applies to |
//!
//! # References
//! - P. Strata, R. Harvey (1999). Dale's principle. Brain Res. Bull. 50.

use npsim_core::{Entry, Param, PlasticWeights, PostUpdate, Real, RuleError};
use serde::{Deserialize, Serialize};

use crate::registry::PostUpdateSpec;

/// `NonNegative(projections:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "NonNegative")]
pub struct NonNegativeConfig {
    /// Projections it applies to (default: all plastic ones).
    #[serde(default)]
    pub projections: Option<Vec<String>>,
}

impl PostUpdateSpec for NonNegativeConfig {
    const ENTRY: Entry = Entry {
        name: "NonNegative",
        summary: "after each update, W ← max(W, 0): synapses of the chosen projections keep their (excitatory) sign",
        params: &[Param {
            name: "projections",
            unit: "names",
            default: "None",
            meaning: "the projections it applies to: `None` (every plastic one) or `Some([\"W1\", ...])`",
        }],
        example: "NonNegative(projections: Some([\"HVC_RA\"]))",
    };

    fn projections(&self) -> Option<&[String]> {
        self.projections.as_deref()
    }

    fn build<T: Real>(&self) -> Box<dyn PostUpdate<T>> {
        Box::new(NonNegative {
            only: self.projections.clone(),
        })
    }
}

/// The step.
#[derive(Debug, Clone)]
pub struct NonNegative {
    only: Option<Vec<String>>,
}

impl<T: Real> PostUpdate<T> for NonNegative {
    fn name(&self) -> &str {
        "non_negative"
    }

    fn initialise(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        self.apply(projections)
    }

    fn apply(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        for p in projections
            .iter_mut()
            .filter(|p| self.only.as_ref().is_none_or(|names| names.iter().any(|n| n == p.name)))
        {
            p.weights.iter_mut().for_each(|w| {
                if *w < T::zero() {
                    *w = T::zero();
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn negative_weights_of_the_chosen_projections_become_zero() {
        let mut a = DMatrix::from_row_slice(2, 2, &[1.0, -2.0, -0.5, 3.0]);
        let mut b = DMatrix::from_row_slice(1, 2, &[-1.0, 1.0]);
        let mut step = NonNegative {
            only: Some(vec!["A".into()]),
        };
        let mut weights = [
            PlasticWeights {
                name: "A",
                weights: &mut a,
            },
            PlasticWeights {
                name: "B",
                weights: &mut b,
            },
        ];
        PostUpdate::<f64>::apply(&mut step, &mut weights).unwrap();
        assert_eq!(a.as_slice(), &[1.0, 0.0, 0.0, 3.0]);
        assert_eq!(b.as_slice(), &[-1.0, 1.0], "B is not chosen");
    }
}
