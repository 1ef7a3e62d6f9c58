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
//! The circuit is any chain of linear populations without biases; the `DeepLinear` template
//! builds the paper's `x → h → y`. With one hidden layer and Glorot-initialised weights the
//! mean-field theory applies ([`Prepared::theory`]).

use nalgebra::DMatrix;
use npsim_core::{Attr, Measure, Entry, Initializer, Invalid, Param, Real, SeedStreams, StreamRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::registry::{MetricSpec, Prepared, TaskContext, TaskError, TaskSpec, TheoryBasis};
use crate::task::Task;
use crate::theory::LinearDims;

/// `LinearTeacher(teacher_noise_std:)` in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "LinearTeacher")]
pub struct LinearTeacherConfig {
    /// σt: std of the Gaussian noise added to each teacher output (default 0).
    #[serde(default)]
    pub teacher_noise_std: f64,
}

/// The linear teacher checked against its circuit: the chain of projections it measures, and
/// what the theory needs where it applies.
#[derive(Debug)]
pub struct LinearPrepared {
    noise_std: f64,
    chain: Vec<usize>,
    lx: usize,
    ly: usize,
    theory: Option<TheoryBasis>,
    metrics: MetricSpec,
}

impl TaskSpec for LinearTeacherConfig {
    const ENTRY: Entry = Entry {
        name: "LinearTeacher",
        summary: "linear student–teacher: y* = A x + σt ζ, x, ζ ~ N(0, I), A Glorot; one sample per step and batch column; records α, β and the error ε = |W2 W1 − A|²/(Lx Ly)",
        params: &[Param {
            name: "teacher_noise_std",
            unit: "output units",
            default: "0.0",
            meaning: "σt, the std of the noise on each teacher output (paper Fig. 3: σt² = 0.1)",
        }],
        example: "LinearTeacher(teacher_noise_std: 0.0)",
    };
    type Prepared = LinearPrepared;

    fn prepare(&self, context: &TaskContext<'_>) -> Result<LinearPrepared, TaskError> {
        let noise_std = self.teacher_noise_std;
        if !(noise_std >= 0.0 && noise_std.is_finite()) {
            return Err(TaskError::Invalid(Invalid::new(
                "teacher_noise_std",
                format!("must be a finite number >= 0, got {noise_std}"),
            )));
        }
        let blueprint = context.blueprint;
        blueprint.single_input().map_err(TaskError::Circuit)?;
        let chain = blueprint.linear_chain().ok_or_else(|| {
            TaskError::Invalid(Invalid::new(
                "",
                "the linear teacher needs a chain of linear populations joined by dense projections without biases (like `DeepLinear`)",
            ))
        })?;
        let first = &blueprint.projections()[chain[0]];
        let lx = blueprint.populations()[blueprint.input()].size;
        let ly = blueprint.populations()[blueprint.output()].size;
        // The theory applies to one hidden layer with Glorot-initialised weights.
        let theory = match first.init {
            Initializer::XavierNormal { variance_scale } if chain.len() == 2 => Some(TheoryBasis {
                dims: LinearDims {
                    lx,
                    lh: blueprint.populations()[first.post].size,
                    ly,
                },
                init_scale: variance_scale,
                teacher_noise_var: noise_std * noise_std,
            }),
            _ => None,
        };
        Ok(LinearPrepared {
            noise_std,
            chain,
            lx,
            ly,
            theory,
            metrics: MetricSpec {
                names: vec!["alpha".into(), "beta".into(), "epsilon".into()],
                error: 2,
                classification: false,
            },
        })
    }
}

impl Prepared for LinearPrepared {
    fn metrics(&self) -> &MetricSpec {
        &self.metrics
    }

    fn training_samples(&self) -> Option<usize> {
        None
    }

    fn attributes(&self) -> Vec<(String, Attr)> {
        let mut attributes = vec![
            ("task".into(), Attr::Text("linear_teacher".into())),
            ("teacher_noise_std".into(), Attr::Float(self.noise_std)),
        ];
        if let Some(TheoryBasis { dims, init_scale, .. }) = self.theory {
            attributes.extend([
                ("lx".into(), Attr::Int(dims.lx as i64)),
                ("lh".into(), Attr::Int(dims.lh as i64)),
                ("ly".into(), Attr::Int(dims.ly as i64)),
                ("init_scale".into(), Attr::Float(init_scale)),
                (
                    "eta_star".into(),
                    Attr::Float(dims.critical_learning_rate(init_scale)),
                ),
                (
                    "eta_sgd_optimal".into(),
                    Attr::Float(dims.sgd_optimal_learning_rate(init_scale)),
                ),
            ]);
        }
        attributes
    }

    fn theory(&self) -> Option<TheoryBasis> {
        self.theory
    }

    fn build<T: Real>(&self, streams: &SeedStreams) -> Box<dyn Task<T>> {
        Box::new(LinearTeacher::<T>::new(self, streams))
    }
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

impl<T: Real> LinearTeacher<T> {
    /// Draws the teacher from stream `task/teacher`; inputs come from `task/inputs`, teacher
    /// noise from `task/teacher_noise`.
    pub fn new(prepared: &LinearPrepared, streams: &SeedStreams) -> Self {
        let teacher_f64: DMatrix<f64> = Initializer::XavierNormal { variance_scale: 1.0 }.draw(
            prepared.ly,
            prepared.lx,
            &mut streams.stream("task/teacher"),
        );
        LinearTeacher {
            teacher: teacher_f64.map(T::of),
            teacher_f64,
            noise_std: prepared.noise_std,
            chain: prepared.chain.clone(),
            inputs_rng: streams.stream("task/inputs"),
            noise_rng: streams.stream("task/teacher_noise"),
        }
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

    fn metrics(&mut self, engine: &mut dyn Measure<T>) -> Vec<f64> {
        let circuit = engine.circuit_mut();
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
