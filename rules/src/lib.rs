//! # npsim-rules
//!
//! The built-in learning rules of npsim, each a [`LearningRule`] trait object, and the
//! built-in [`PostUpdate`] steps.
//!
//! | rule | locality | module |
//! |------|----------|--------|
//! | node perturbation | local: pre, post noise, one broadcast scalar | [`node_perturbation`] |
//! | SGD (backprop) | **non-local**: needs back-propagated errors | [`sgd`] |
//! | weight perturbation | local: own weight noise, one broadcast scalar | [`weight_perturbation`] |
//! | REINFORCE (Eq. 15) | **non-local**: back-propagates an output estimate | [`reinforce`] |
//! | weight normalisation (synaptic scaling) | local post-update step | [`normalisation`] |
//! | weight decay | local post-update step | [`decay`] |
//!
//! [`LearningRule`]: npsim_core::LearningRule
//! [`PostUpdate`]: npsim_core::PostUpdate

pub mod decay;
pub mod node_perturbation;
pub mod normalisation;
pub mod reinforce;
pub mod sgd;
pub mod weight_perturbation;

pub use decay::WeightDecay;
pub use node_perturbation::{Baseline, NodePerturbation};
pub use normalisation::{NormalisationTarget, WeightNormalisation};
pub use reinforce::Reinforce;
pub use sgd::Sgd;
pub use weight_perturbation::WeightPerturbation;
