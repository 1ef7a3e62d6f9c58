//! Stochastic gradient descent by back-propagation: the baseline.
//!
//! # What it does
//! The exact gradient of the squared error, obtained by propagating the output error back
//! through the transposed weights. It is the one **non-local** rule in npsim: a synapse needs
//! the error of its postsynaptic unit, which depends on every downstream weight. It is here
//! as the reference NP is measured against.
//!
//! # Equations
//! With `e_K = (a_K − t) ⊙ f'(u_K)` and `e_k = f'(u_k) ⊙ W_{k+1}ᵀ e_{k+1}`, summed over the
//! samples of a batch: `ΔW_k = −η Σ_b e_{k,b} x_{k−1,b}ᵀ`, `Δb_k = −η Σ_b e_{k,b}`.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `learning_rate` | 1 | — | η |
//!
//! # References
//! - D. E. Rumelhart, G. E. Hinton, R. J. Williams (1986). Learning representations by
//!   back-propagating errors. Nature 323.

use npsim_core::{Entry, LearningRule, Real, Requirements, RuleContext, RuleError};
use serde::{Deserialize, Serialize};

use crate::learning_rate::{LEARNING_RATE_PARAM, LearningRate};
use crate::registry::RuleSpec;

/// `Sgd(learning_rate:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Sgd")]
pub struct SgdConfig {
    /// η.
    pub learning_rate: LearningRate,
}

impl RuleSpec for SgdConfig {
    const ENTRY: Entry = Entry {
        name: "Sgd",
        summary: "SGD by back-propagation: ΔW = −η Σ_b e_b x_bᵀ; the non-local baseline",
        params: &[LEARNING_RATE_PARAM],
        example: "Sgd(learning_rate: Absolute(1e-2))",
    };
    const SHORT: &'static str = "sgd";

    fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    fn build<T: Real>(&self, learning_rate: f64) -> Box<dyn LearningRule<T>> {
        Box::new(Sgd::<T>::new(learning_rate))
    }
}

/// SGD with a fixed learning rate.
#[derive(Debug, Clone)]
pub struct Sgd<T: Real> {
    learning_rate: T,
}

impl<T: Real> Sgd<T> {
    /// SGD with learning rate η.
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate: T::of(learning_rate),
        }
    }
}

impl<T: Real> LearningRule<T> for Sgd<T> {
    fn name(&self) -> &str {
        "sgd"
    }

    fn requirements(&self) -> Requirements {
        Requirements {
            perturbation: false,
            backprop: true,
            ..Default::default()
        }
    }

    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError> {
        descend_along_errors(context, self.learning_rate);
        Ok(())
    }
}

/// `ΔW = −η Σ_b e_b x_bᵀ`, `Δb = −η Σ_b e_b` with the back-propagated errors `e` the engine
/// provided (true ones for SGD, estimated ones for REINFORCE).
pub(crate) fn descend_along_errors<T: Real>(context: &mut RuleContext<'_, T>, learning_rate: T) {
    for projection in context.projections.iter_mut() {
        let error = projection
            .post_error
            .expect("the engine provides errors when backprop is required");
        projection.add_outer_with_pre(-learning_rate, error);
        projection.add_to_bias(-learning_rate, error);
    }
}
