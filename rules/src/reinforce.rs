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

use npsim_core::{LearningRule, Real, Requirements, RuleContext, RuleError};

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
