//! Node perturbation (NP).
//!
//! # What it does
//! Every neuron is noisy. The circuit is run twice on the same input, once clean and once with
//! each unit's intrinsic noise `σ ξ` added to its pre-activation. A neuromodulator broadcasts
//! the change in loss `δℓ = ℓ(noisy) − ℓ(clean)`; each synapse correlates it with its own
//! postsynaptic noise and presynaptic activity. For small σ the update is an unbiased
//! estimate of the SGD update (Hiratani et al. 2022, Eq. 4–5), with variance growing with the
//! number of perturbed units.
//!
//! # Equations
//! Paper Eq. 3, summed over the samples `b` of a batch, each with its own noise:
//!
//! `ΔW_k = −(η / σ) Σ_b δℓ_b ξ_{k,b} x_{k−1,b}ᵀ = −(η / σ²) Σ_b δℓ_b (σ ξ_{k,b}) x_{k−1,b}ᵀ`,
//!
//! and likewise `Δb_k = −(η / σ²) Σ_b δℓ_b σ ξ_{k,b}` for biases. `x_{k−1}` is the clean
//! presynaptic activity and σ the postsynaptic population's noise std.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `learning_rate` | 1 | — | η, absolute (scenarios may give it relative to η*) |
//!
//! | `baseline` | — | `Clean` | what the noisy loss is compared with: `Clean`, the clean pass (the paper; `δℓ = ℓ̃ − ℓ`); `RunningAverage(γ)`, a running average `b ← (1 − γ) b + γ ℓ̃` of past noisy losses (biologically plausible: no second pass; `δℓ = ℓ̃ − b`); or `BatchMean`, the mean noisy loss of the other renditions (samples) of the same update, `δℓ_b = ℓ̃_b − (Σ_{b'≠b} ℓ̃_{b'})/(B − 1)` (leaving `b` out keeps the estimate unbiased; needs `B ≥ 2` samples per update) |
//!
//! Perturbation strength σ is a property of each population's intrinsic noise, not of the rule.
//!
//! # References
//! - N. Hiratani, Y. Mehta, T. P. Lillicrap, P. E. Latham (2022). On the stability and
//!   scalability of node perturbation learning. NeurIPS 35.
//! - B. Widrow, M. A. Lehr (1990). 30 years of adaptive neural networks. Proc. IEEE 78.

use npsim_core::{Entry, Invalid, LearningRule, Param, Real, Requirements, RuleContext, RuleError};
use serde::{Deserialize, Serialize};

use crate::learning_rate::{LEARNING_RATE_PARAM, LearningRate};
use crate::registry::RuleSpec;

/// `NodePerturbation(learning_rate:, baseline:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "NodePerturbation")]
pub struct NodePerturbationConfig {
    /// η.
    pub learning_rate: LearningRate,
    /// `Clean` (the paper, default) or `RunningAverage(γ)` (no second pass).
    #[serde(default)]
    pub baseline: Baseline,
}

impl RuleSpec for NodePerturbationConfig {
    const ENTRY: Entry = Entry {
        name: "NodePerturbation",
        summary: "node perturbation (paper Eq. 3): ΔW = −(η/σ²) Σ_b δℓ_b (σξ_b) x_bᵀ; local, needs noisy postsynaptic populations",
        params: &[
            LEARNING_RATE_PARAM,
            Param {
                name: "baseline",
                unit: "",
                default: "Clean",
                meaning: "what the noisy loss is compared with: `Clean` (a noise-free pass, the paper), `RunningAverage(γ)` (b ← (1 − γ) b + γ ℓ̃, γ in (0, 1]) or `BatchMean` (the mean noisy loss of the batch's other samples; batch ≥ 2)",
            },
        ],
        example: "NodePerturbation(learning_rate: Absolute(1e-3))",
    };
    const SHORT: &'static str = "np";

    fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    fn validate(&self) -> Result<(), Invalid> {
        match self.baseline {
            Baseline::RunningAverage(rate) if !(rate > 0.0 && rate <= 1.0) => Err(Invalid::new(
                "baseline",
                format!("the running-average rate must be in (0, 1], got {rate}"),
            )),
            _ => Ok(()),
        }
    }

    fn min_batch_size(&self) -> usize {
        if self.baseline == Baseline::BatchMean { 2 } else { 1 }
    }
    fn build<T: Real>(&self, learning_rate: f64) -> Box<dyn LearningRule<T>> {
        Box::new(NodePerturbation::<T>::with_baseline(learning_rate, self.baseline))
    }
}

/// What the noisy loss is compared with.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename = "baseline")]
pub enum Baseline {
    /// The clean pass on the same input (the paper).
    #[default]
    Clean,
    /// A running average of past noisy losses, updated with rate γ after each step.
    RunningAverage(f64),
    /// The mean noisy loss of the other samples (renditions) of the same update.
    BatchMean,
}

/// Node perturbation with a fixed learning rate.
#[derive(Debug, Clone)]
pub struct NodePerturbation<T: Real> {
    learning_rate: T,
    baseline: Baseline,
    average: Option<T>,
    relative: Vec<T>,
    last_baseline: Option<f64>,
}

impl<T: Real> NodePerturbation<T> {
    /// NP with learning rate η.
    pub fn new(learning_rate: f64) -> Self {
        Self::with_baseline(learning_rate, Baseline::Clean)
    }

    /// NP with learning rate η and the given baseline.
    pub fn with_baseline(learning_rate: f64, baseline: Baseline) -> Self {
        Self {
            learning_rate: T::of(learning_rate),
            baseline,
            average: None,
            relative: Vec::new(),
            last_baseline: None,
        }
    }
}

/// Each sample's noisy loss, `ℓ + δℓ`.
fn noisy_losses<T: Real>(context: &RuleContext<'_, T>) -> Vec<T> {
    context.loss.iter().zip(context.signal).map(|(&l, &s)| l + s).collect()
}

impl<T: Real> LearningRule<T> for NodePerturbation<T> {
    fn name(&self) -> &str {
        "node_perturbation"
    }

    fn requirements(&self) -> Requirements {
        Requirements {
            perturbation: true,
            backprop: false,
            ..Default::default()
        }
    }

    fn last_baseline(&self) -> Option<f64> {
        self.last_baseline
    }

    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError> {
        let signal: &[T] = match self.baseline {
            Baseline::Clean => context.signal,
            Baseline::RunningAverage(rate) => {
                // Noisy loss per sample, compared with the average of earlier steps'.
                let noisy = noisy_losses(context);
                let mean = noisy.iter().copied().sum::<T>() / T::of(noisy.len().max(1) as f64);
                let average = *self.average.get_or_insert(mean);
                self.relative = noisy.iter().map(|&l| l - average).collect();
                let gamma = T::of(rate);
                self.average = Some((T::one() - gamma) * average + gamma * mean);
                &self.relative
            }
            Baseline::BatchMean => {
                let count = context.signal.len();
                if count < 2 {
                    return Err(RuleError::Failed {
                        rule: "node_perturbation".into(),
                        message: "the `BatchMean` baseline compares the samples of one update with each other and needs at least 2: raise `train.batch_size`".into(),
                    });
                }
                let noisy = noisy_losses(context);
                let total: T = noisy.iter().copied().sum();
                let others = T::of((count - 1) as f64);
                self.relative = noisy.iter().map(|&l| l - (total - l) / others).collect();
                &self.relative
            }
        };
        // Each sample's baseline is its noisy loss less the difference the update uses.
        let samples = signal.len().max(1) as f64;
        let baselines = context.loss.iter().zip(context.signal).zip(signal);
        self.last_baseline =
            Some(baselines.map(|((&l, &noisy_minus_clean), &s)| (l + noisy_minus_clean - s).f64()).sum::<f64>() / samples);
        for projection in context.projections.iter_mut() {
            let Some(noise) = projection.post_noise else {
                return Err(RuleError::Unsupported {
                    rule: "node_perturbation".into(),
                    projection: projection.name.into(),
                    problem: "its postsynaptic population has no intrinsic noise; give it `noise: Gaussian(std: ...)`"
                        .into(),
                });
            };
            let sigma = projection.noise_std;
            // ΔW = −(η/σ²) Σ_b δℓ_b (σξ_b) x_bᵀ.
            let scale = -self.learning_rate / (sigma * sigma);
            projection.add_weighted_outer_with_pre(scale, noise, signal);
            projection.add_weighted_to_bias(scale, noise, signal);
        }
        Ok(())
    }
}
