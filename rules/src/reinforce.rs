//! REINFORCE with back-propagation of the perturbation estimate (paper Eq. 15).
//!
//! # What it does
//! Only the output units are perturbed (or, in the variant, every unit, but only the output
//! noise is used). The perturbation gives an unbiased estimate of the output gradient,
//! `ĝ_b = (δℓ_b / σ²) σξ_b`, which is then back-propagated through the network like SGD's
//! error. It needs back-propagation, so it is not local; it isolates the cost of estimating
//! the gradient at the output from the cost of perturbing every hidden unit.
//!
//! # Equations
//! `e_K = ĝ`, `e_k = f'(u_k) ⊙ W_{k+1}ᵀ e_{k+1}`, `ΔW_k = −η Σ_b e_{k,b} x_{k−1,b}ᵀ`,
//! `Δb_k = −η Σ_b e_{k,b}`.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `learning_rate` | 1 | — | η |
//! | `hidden_noise` | bool | `false` | also perturb the hidden units (the paper's dashed lines) |
//!
//! # References
//! - R. J. Williams (1992). Simple statistical gradient-following algorithms for
//!   connectionist reinforcement learning. Machine Learning 8.
//! - Hiratani et al. (2022), Eq. 15, Figs. 4E and 5B.

use npsim_core::{Entry, LearningRule, Param, Real, Requirements, RuleContext, RuleError};
use serde::{Deserialize, Serialize};

use crate::learning_rate::{LEARNING_RATE_PARAM, LearningRate};
use crate::registry::RuleSpec;

/// `Reinforce(learning_rate:, hidden_noise:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Reinforce")]
pub struct ReinforceConfig {
    /// η.
    pub learning_rate: LearningRate,
    /// Also perturb hidden units (default false: output noise only).
    #[serde(default)]
    pub hidden_noise: bool,
}

impl RuleSpec for ReinforceConfig {
    const ENTRY: Entry = Entry {
        name: "Reinforce",
        summary: "REINFORCE (paper Eq. 15): output perturbation estimates the output gradient, which is back-propagated; non-local",
        params: &[
            LEARNING_RATE_PARAM,
            Param {
                name: "hidden_noise",
                unit: "bool",
                default: "false",
                meaning: "also perturb the hidden units (the paper's dashed lines); only the output noise is used",
            },
        ],
        example: "Reinforce(learning_rate: Absolute(1e-2))",
    };
    const SHORT: &'static str = "reinforce";

    fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    fn build<T: Real>(&self, learning_rate: f64) -> Box<dyn LearningRule<T>> {
        Box::new(Reinforce::<T>::new(learning_rate, self.hidden_noise))
    }
}

/// REINFORCE with a fixed learning rate.
#[derive(Debug, Clone)]
pub struct Reinforce<T: Real> {
    learning_rate: T,
    hidden_noise: bool,
}

impl<T: Real> Reinforce<T> {
    /// REINFORCE with learning rate η; `hidden_noise` also perturbs hidden units.
    pub fn new(learning_rate: f64, hidden_noise: bool) -> Self {
        Self {
            learning_rate: T::of(learning_rate),
            hidden_noise,
        }
    }
}

impl<T: Real> LearningRule<T> for Reinforce<T> {
    fn name(&self) -> &str {
        "reinforce"
    }

    fn requirements(&self) -> Requirements {
        Requirements {
            perturbation: true,
            output_noise_only: !self.hidden_noise,
            backprop: true,
            backprop_estimate: true,
            ..Default::default()
        }
    }

    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError> {
        crate::sgd::descend_along_errors(context, self.learning_rate);
        Ok(())
    }
}
