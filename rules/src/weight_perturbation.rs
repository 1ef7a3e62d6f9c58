//! Weight perturbation (WP).
//!
//! # What it does
//! Instead of the neurons, the synapses are noisy: every plastic weight is perturbed at once,
//! the change in loss is broadcast, and each synapse correlates it with its own perturbation
//! (Jabri & Flower 1992; paper Section 2). Unbiased like NP, but the number of perturbed
//! quantities is the number of weights, not of neurons, so it is far noisier in wide
//! networks.
//!
//! # Equations
//! With one draw `Ψ = σ_w ψ`, `ψ ~ N(0, I)` per step on every plastic weight and the batch's
//! summed signal `δℓ = Σ_b [ℓ_b(W + Ψ) − ℓ_b(W)]` (computed without cancellation):
//! `ΔW = −(η / σ_w²) δℓ Ψ`. Biases are not perturbed and so not learned.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `learning_rate` | 1 | — | η |
//! | `perturbation_std` | weight | — | σ_w |
//!
//! # References
//! - M. Jabri, B. Flower (1992). Weight perturbation: an optimal architecture and learning
//!   technique for analog VLSI feedforward and recurrent multilayer networks. IEEE TNN 3.
//! - Hiratani et al. (2022), Section 2.

use npsim_core::{Entry, Invalid, LearningRule, Param, Real, Requirements, RuleContext, RuleError};
use serde::{Deserialize, Serialize};

use crate::learning_rate::{LEARNING_RATE_PARAM, LearningRate};
use crate::registry::RuleSpec;

/// `WeightPerturbation(learning_rate:, perturbation_std:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "WeightPerturbation")]
pub struct WeightPerturbationConfig {
    /// η.
    pub learning_rate: LearningRate,
    /// σ_w, the std of the weight noise.
    pub perturbation_std: f64,
}

impl RuleSpec for WeightPerturbationConfig {
    const ENTRY: Entry = Entry {
        name: "WeightPerturbation",
        summary: "weight perturbation: every plastic weight perturbed at once, ΔW = −(η/σ_w²) δℓ Ψ; local but far noisier than NP",
        params: &[
            LEARNING_RATE_PARAM,
            Param {
                name: "perturbation_std",
                unit: "weight",
                default: "required",
                meaning: "σ_w, the std of the noise on each weight",
            },
        ],
        example: "WeightPerturbation(learning_rate: Absolute(1e-5), perturbation_std: 1e-4)",
    };
    const SHORT: &'static str = "wp";

    fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    fn validate(&self) -> Result<(), Invalid> {
        npsim_core::registry::positive("perturbation_std", self.perturbation_std)
    }

    fn build<T: Real>(&self, learning_rate: f64) -> Box<dyn LearningRule<T>> {
        Box::new(WeightPerturbation::<T>::new(learning_rate, self.perturbation_std))
    }
}

/// Weight perturbation with a fixed learning rate and perturbation size.
#[derive(Debug, Clone)]
pub struct WeightPerturbation<T: Real> {
    learning_rate: T,
    std: f64,
}

impl<T: Real> WeightPerturbation<T> {
    /// WP with learning rate η and weight-noise std σ_w.
    pub fn new(learning_rate: f64, perturbation_std: f64) -> Self {
        Self {
            learning_rate: T::of(learning_rate),
            std: perturbation_std,
        }
    }
}

impl<T: Real> LearningRule<T> for WeightPerturbation<T> {
    fn name(&self) -> &str {
        "weight_perturbation"
    }

    fn requirements(&self) -> Requirements {
        Requirements {
            perturbation: true,
            weight_noise_std: self.std,
            ..Default::default()
        }
    }

    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError> {
        let signal: T = context.signal.iter().copied().sum();
        let sigma = T::of(self.std);
        let scale = -self.learning_rate * signal / (sigma * sigma);
        for projection in context.projections.iter_mut() {
            let noise = projection
                .weight_noise
                .expect("the engine draws weight noise when asked");
            projection.weights_mut().zip_apply(noise, |w, n| *w += scale * n);
        }
        Ok(())
    }
}
