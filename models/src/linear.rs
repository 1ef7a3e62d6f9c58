//! The deep linear student–teacher (paper Section 4, Figs. 1–3).
//!
//! # What it does
//! A linear student `y = W2 W1 x` learns a linear teacher `y* = A x + σt ζ` from one Gaussian
//! input per step, `x ~ N(0, I)`, `ζ ~ N(0, I)`. The teacher's weights are Xavier–Glorot:
//! `A ~ N(0, 2/(Lx + Ly))`.
//!
//! # Metrics
//! | name | definition |
//! |------|------------|
//! | `alpha` | `|W1|²_F / Lx` (first projection) |
//! | `beta` | `|W2|²_F / Ly` (last projection) |
//! | `epsilon` | `|W2 W1 − A|²_F / (Lx Ly)` (the paper's error; product of the whole chain) |
//!
//! # Parameters of the `DeepLinear` template
//! | name | unit | default | meaning |
//! |------|------|---------|---------|
//! | `lx`, `lh`, `ly` | neurons | — | layer sizes |
//! | `init_scale` | 1 | 1.0 | `r`: `W1 ~ N(0, 2r/(Lx + Lh))`, `W2 ~ N(0, 2/(Lh + Ly))` |
//! | `perturbation_std` | pre-activation | 1e-6 | σ of the hidden and output populations' noise |

use nalgebra::DMatrix;
use npsim_core::{
    Activation, CircuitBlueprint, CircuitConfig, Engine, Initializer, Noise, PopulationConfig,
    ProjectionConfig, Real, SeedStreams, StreamRng,
};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::task::Task;
use crate::theory::LinearDims;

fn default_init_scale() -> f64 {
    1.0
}
fn default_perturbation_std() -> f64 {
    1e-6
}

/// Template for the paper's one-hidden-layer linear network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepLinearConfig {
    /// Input size `Lx`.
    pub lx: usize,
    /// Hidden size `Lh`.
    pub lh: usize,
    /// Output size `Ly`.
    pub ly: usize,
    /// Scale `r` of `W1`'s initial variance (default 1).
    #[serde(default = "default_init_scale")]
    pub init_scale: f64,
    /// Intrinsic noise std σ of hidden and output units (default 1e-6).
    #[serde(default = "default_perturbation_std")]
    pub perturbation_std: f64,
}

impl DeepLinearConfig {
    /// The explicit circuit: populations `x`, `h`, `y`; projections `W1: x→h`, `W2: h→y`.
    pub fn expand(&self) -> CircuitConfig {
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let pop = |name: &str, size, noise| PopulationConfig {
            name: name.into(),
            size,
            shape: None,
            activation: Activation::Linear,
            noise,
        };
        let proj = |name: &str, from: &str, to: &str, variance_scale| ProjectionConfig {
            name: Some(name.into()),
            from: from.into(),
            to: to.into(),
            init: Initializer::XavierNormal { variance_scale },
            bias: None,
            plastic: true,
            connectivity: Default::default(),
        };
        CircuitConfig {
            populations: vec![
                pop("x", self.lx, Noise::None),
                pop("h", self.lh, noise),
                pop("y", self.ly, noise),
            ],
            projections: vec![proj("W1", "x", "h", self.init_scale), proj("W2", "h", "y", 1.0)],
        }
    }

    /// The sizes, for the theory.
    pub fn dims(&self) -> LinearDims {
        LinearDims {
            lx: self.lx,
            lh: self.lh,
            ly: self.ly,
        }
    }
}

/// Settings of the linear teacher.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearTeacherConfig {
    /// σt: std of the Gaussian noise added to each teacher output (default 0).
    #[serde(default)]
    pub teacher_noise_std: f64,
}

/// What is wrong with a linear-teacher setup.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LinearTaskError {
    /// The circuit is not a chain of linear populations.
    #[error(
        "the linear teacher task needs a chain of linear populations without biases (like `DeepLinear`); this circuit is not one"
    )]
    NotALinearChain,
    /// Bad noise.
    #[error("task.teacher_noise_std must be a finite number >= 0, got {0}")]
    TeacherNoise(f64),
}

/// The linear teacher task, bound to a circuit's chain of projections.
pub struct LinearTeacher<T: Real> {
    teacher: DMatrix<T>,
    teacher_f64: DMatrix<f64>,
    noise_std: f64,
    chain: Vec<usize>,
    inputs_rng: StreamRng,
    noise_rng: StreamRng,
}

impl LinearTeacherConfig {
    /// Checks the settings against the circuit and draws the teacher from stream `task/teacher`;
    /// inputs come from `task/inputs`, teacher noise from `task/teacher_noise`.
    pub fn build<T: Real>(
        &self,
        blueprint: &CircuitBlueprint,
        streams: &SeedStreams,
    ) -> Result<LinearTeacher<T>, LinearTaskError> {
        if !(self.teacher_noise_std >= 0.0 && self.teacher_noise_std.is_finite()) {
            return Err(LinearTaskError::TeacherNoise(self.teacher_noise_std));
        }
        let chain = blueprint.linear_chain().ok_or(LinearTaskError::NotALinearChain)?;
        let lx = blueprint.populations()[blueprint.input()].size;
        let ly = blueprint.populations()[blueprint.output()].size;
        let teacher_f64: DMatrix<f64> = Initializer::XavierNormal { variance_scale: 1.0 }.draw(
            ly,
            lx,
            &mut streams.stream("task/teacher"),
        );
        Ok(LinearTeacher {
            teacher: teacher_f64.map(T::of),
            teacher_f64,
            noise_std: self.teacher_noise_std,
            chain,
            inputs_rng: streams.stream("task/inputs"),
            noise_rng: streams.stream("task/teacher_noise"),
        })
    }
}

impl<T: Real> Task<T> for LinearTeacher<T> {
    fn input_size(&self) -> usize {
        self.teacher.ncols()
    }

    fn output_size(&self) -> usize {
        self.teacher.nrows()
    }

    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>) {
        for x in inputs.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut self.inputs_rng);
            *x = T::of(z);
        }
        targets.gemm(T::one(), &self.teacher, inputs, T::zero());
        if self.noise_std > 0.0 {
            for t in targets.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut self.noise_rng);
                *t += T::of(self.noise_std * z);
            }
        }
    }

    fn metric_names(&self) -> Vec<String> {
        vec!["alpha".into(), "beta".into(), "epsilon".into()]
    }

    fn error_metric(&self) -> usize {
        2
    }

    fn metrics(&mut self, engine: &mut Engine<T>) -> Vec<f64> {
        let circuit = engine.circuit_mut();
        circuit.flush();
        let (lx, ly) = (self.teacher.ncols() as f64, self.teacher.nrows() as f64);
        let widen = |m: &DMatrix<T>| m.map(|v| v.f64());
        let first = widen(circuit.weights(self.chain[0]));
        let last = widen(circuit.weights(*self.chain.last().expect("a chain has a projection")));
        // Multiply from the output end: (Ly × Lh)(Lh × Lx) costs Ly·Lh·Lx, not Lh·Lx·Lx.
        let mut product = last.clone();
        for &q in self.chain.iter().rev().skip(1) {
            product = &product * widen(circuit.weights(q));
        }
        let epsilon = (product - &self.teacher_f64).norm_squared() / (lx * ly);
        vec![first.norm_squared() / lx, last.norm_squared() / ly, epsilon]
    }
}
