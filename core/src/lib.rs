//! # npsim-core
//!
//! The circuit engine of npsim: populations of rate neurons with intrinsic noise, projections
//! between them in a petgraph graph, batched clean and perturbed passes, and the
//! [`LearningRule`] interface through which rules see a step.
//!
//! Data flows one way: a [`CircuitConfig`] (from a scenario) is validated into a
//! [`CircuitBlueprint`], instantiated into a [`Circuit`] with weights drawn from named
//! [`SeedStreams`], and run by an [`Engine`] that hands each step to a rule.

pub mod activation;
pub mod analysis;
mod attr;
pub mod circuit;
pub mod conv;
pub mod engine;
pub mod gemm;
pub mod init;
pub mod kernels;
pub mod measure;
pub mod network;
pub mod noise;
mod on_demand;
pub mod population;
pub mod quadrature;
mod real;
pub mod registry;
pub mod rule;
pub mod seed;
pub mod sparse;
pub mod synapse;
#[cfg(test)]
mod test_support;
pub mod trial;

pub use activation::Activation;
pub use attr::Attr;
pub use circuit::{
    Circuit, CircuitBlueprint, CircuitConfig, CircuitError, Geometry, Population, PopulationConfig,
    ProjectionConfig, ProjectionSpec,
};
pub use conv::{Connectivity, Shape};
pub use engine::{Engine, Loss, Perturbation};
pub use init::Initializer;
pub use measure::Measure;
pub use network::{InitialState, InitialValue, NetworkError, Spike, SpikingNetwork};
pub use noise::Noise;
pub use population::{LifParameters, PopulationModel};
pub use real::{Precision, Real};
pub use registry::{Entry, Invalid, Param};
pub use rule::{
    LearningRule, PlasticWeights, PostUpdate, ProjectionContext, Requirements, RuleContext, RuleError,
};
pub use seed::{SeedStreams, StreamRng};
pub use synapse::Synapse;
pub use trial::{TraceGate, TrialEngine, TrialTiming};
