//! # npsim-rules
//!
//! The built-in learning rules of npsim, each a [`LearningRule`] trait object, and the
//! built-in [`PostUpdate`] steps, with the registries scenarios choose them from.
//!
//! | rule | locality | module |
//! |------|----------|--------|
//! | node perturbation | local: pre, post noise, one broadcast scalar | [`node_perturbation`] |
//! | SGD (backprop) | **non-local**: needs back-propagated errors | [`sgd`] |
//! | weight perturbation | local: own weight noise, one broadcast scalar | [`weight_perturbation`] |
//! | REINFORCE (Eq. 15) | **non-local**: back-propagates an output estimate | [`reinforce`] |
//! | weight normalisation (synaptic scaling) | local post-update step | [`normalisation`] |
//! | weight decay | local post-update step | [`decay`] |
//! | sign constraint (`W ≥ 0`) | local post-update step | [`sign`] |
//!
//! Adding a rule is one new file (a config implementing [`RuleSpec`] and the rule) and one
//! line below; `docs/architecture.md` walks through it.
//!
//! [`LearningRule`]: npsim_core::LearningRule
//! [`PostUpdate`]: npsim_core::PostUpdate

pub mod learning_rate;
pub mod registry;

use registry::{register_post_updates, register_rules};

register_rules! {
    node_perturbation::NodePerturbationConfig => NodePerturbation,
    sgd::SgdConfig => Sgd,
    weight_perturbation::WeightPerturbationConfig => WeightPerturbation,
    reinforce::ReinforceConfig => Reinforce,
}

register_post_updates! {
    normalisation::WeightNormalisationConfig => WeightNormalisation,
    decay::WeightDecayConfig => WeightDecay,
    sign::NonNegativeConfig => NonNegative,
}

pub use decay::WeightDecay;
pub use learning_rate::{LearningRate, ReferenceRates};
pub use node_perturbation::{Baseline, NodePerturbation};
pub use normalisation::{NormalisationTarget, WeightNormalisation};
pub use registry::{PostUpdateSpec, RuleEntry, RuleSpec};
pub use reinforce::Reinforce;
pub use sgd::Sgd;
pub use weight_perturbation::WeightPerturbation;
