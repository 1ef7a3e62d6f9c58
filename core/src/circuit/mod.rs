//! Circuits: populations joined by projections, as a petgraph graph.
//!
//! A [`CircuitConfig`] is what a scenario writes; [`CircuitConfig::build`] validates it once
//! and returns a [`CircuitBlueprint`] holding the graph and its execution plan (populations in
//! topological order). [`Circuit::instantiate`] then draws the weights from named streams.
//!
//! This module holds the description and its validation; `geometry` checks each projection's
//! connectivity against its populations, and [`state`] holds the instantiated circuit
//! (weights, biases, deferred updates); the unit tests are in `tests.rs`.

mod geometry;
pub mod lookahead;
mod state;
pub(crate) use state::FactorSources;

pub use state::{Circuit, PendingUpdate, Projection};

use std::collections::HashMap;

use petgraph::{algo::toposort, graph::DiGraph};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conv::{Connectivity, ConvGeometry, PoolGeometry, Shape};
use crate::sparse::SparseKind;
use crate::{Activation, Initializer, Noise, PopulationModel, Synapse};

/// One population of rate neurons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "population", deny_unknown_fields)]
pub struct PopulationConfig {
    /// Unique name, used by projections and in recordings.
    pub name: String,
    /// Number of neurons (may be left out when `shape` is given).
    #[serde(default)]
    pub size: usize,
    /// Layout as feature maps `(channels, height, width)`, needed by convolution and
    /// pooling projections; `size` is then `channels · height · width` (default: none).
    #[serde(default)]
    pub shape: Option<Shape>,
    /// Transfer function (default `Linear`).
    #[serde(default)]
    pub activation: Activation,
    /// Intrinsic noise on the pre-activation (default `None`).
    #[serde(default)]
    pub noise: Noise,
    /// How activity follows input over time (default `Static`; `LeakyRate(tau:)` needs a
    /// time-stepped task).
    #[serde(default)]
    pub model: PopulationModel,
}

fn default_true() -> bool {
    true
}

/// A dense projection from one population to another: `u_to += W a_from (+ b)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "projection", deny_unknown_fields)]
pub struct ProjectionConfig {
    /// Name used in recordings (default `"<from>-><to>"`).
    #[serde(default)]
    pub name: Option<String>,
    /// Presynaptic population.
    pub from: String,
    /// Postsynaptic population.
    pub to: String,
    /// Initial weights (default `XavierNormal(variance_scale: 1.0)`).
    #[serde(default)]
    pub init: Initializer,
    /// Bias of the postsynaptic units and its initialiser; `None` for no bias (default).
    #[serde(default)]
    pub bias: Option<Initializer>,
    /// Whether learning rules may change this projection (default `true`; pooling
    /// projections have no weights and are never plastic).
    #[serde(default = "default_true")]
    pub plastic: bool,
    /// Dense, convolution or pooling (default `Dense`).
    #[serde(default)]
    pub connectivity: Connectivity,
    /// How input reaches the postsynaptic population over time (default `Instant`; the
    /// others need a task in time).
    #[serde(default)]
    pub synapse: Synapse,
    /// Conduction delay, in ms (default 0; a delay needs a task in time, where it is rounded
    /// to whole steps). Every cycle of projections must contain a delayed one.
    #[serde(default)]
    pub delay: f64,
}

impl ProjectionConfig {
    /// The projection's name, explicit or derived.
    pub fn resolved_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", self.from, self.to))
    }
}

/// A feedforward circuit written out population by population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Explicit", deny_unknown_fields)]
pub struct CircuitConfig {
    /// The populations. The one without incoming projections is the input; the one without
    /// outgoing projections is the output.
    pub populations: Vec<PopulationConfig>,
    /// The projections between them.
    pub projections: Vec<ProjectionConfig>,
}

/// What is wrong with a circuit description.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CircuitError {
    /// A circuit needs populations.
    #[error("the circuit has no populations: add at least an input and an output population")]
    Empty,
    /// Two populations share a name.
    #[error("population `{0}` is defined twice: population names must be unique")]
    DuplicatePopulation(String),
    /// Two projections share a name.
    #[error("projection `{0}` is defined twice: give one of them another `name`")]
    DuplicateProjection(String),
    /// A population of no neurons.
    #[error("population `{0}` has size 0: a population needs at least one neuron")]
    EmptyPopulation(String),
    /// A projection names a population that does not exist.
    #[error(
        "projection `{projection}` refers to unknown population `{population}`; known populations: {known}"
    )]
    UnknownPopulation {
        /// The projection.
        projection: String,
        /// The missing name.
        population: String,
        /// The defined names, comma-separated.
        known: String,
    },
    /// The graph has a cycle.
    #[error(
        "the circuit has a cycle through population `{0}` in which no projection has a delay: give a projection of the cycle a `delay:` (ms, tasks in time) or remove one"
    )]
    Cycle(String),
    /// No input population.
    #[error(
        "the circuit has no input population: at least one population other than noise sources must have no incoming projection"
    )]
    NoInput,
    /// No unique output population.
    #[error(
        "the circuit has no single output population (found {0}): exactly one population must have no outgoing projection"
    )]
    NoOutput(String),
    /// Several inputs where the task feeds one.
    #[error(
        "populations {0} have no incoming projection, but a static task feeds a single input population: connect all but one of them, or use a task in time (`Birdsong`), which drives several"
    )]
    SeveralInputs(String),
    /// The input population is given noise.
    #[error("input population `{0}` has intrinsic noise: inputs are not perturbed, set its `noise: None`")]
    NoisyInput(String),
    /// A bad parameter.
    #[error("{what}: {problem}")]
    Parameter {
        /// Which component and field.
        what: String,
        /// The problem and its fix.
        problem: String,
    },
    /// A population's size does not match what the task provides or expects.
    #[error(
        "{role} population `{population}` has size {found} but the task {role_verb} {expected} values per sample: set its size to {expected}"
    )]
    SizeMismatch {
        /// `input` or `output`.
        role: &'static str,
        /// How the task relates to it.
        role_verb: &'static str,
        /// The population.
        population: String,
        /// The size the task needs.
        expected: usize,
        /// The size given.
        found: usize,
    },
}

/// Static description of one population in a validated circuit.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// Name.
    pub name: String,
    /// Number of neurons.
    pub size: usize,
    /// Transfer function.
    pub activation: Activation,
    /// Intrinsic noise.
    pub noise: Noise,
    /// Layout as feature maps, if given.
    pub shape: Option<Shape>,
    /// Dynamics.
    pub model: PopulationModel,
}

/// How a validated projection maps its presynaptic population onto its postsynaptic one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// Dense: weights `post_size × pre_size`.
    Dense,
    /// Convolution: weights `c_out × c_in·k·k`.
    Conv(ConvGeometry),
    /// Pooling: no weights.
    Pool(PoolGeometry),
    /// Sparse: some synapses of a `post_size × pre_size` matrix, stored compressed (see
    /// [`crate::sparse`]).
    Sparse(SparseKind),
}

impl Geometry {
    /// Columns per sample of the matrices rules see: output positions for a convolution,
    /// 1 otherwise.
    pub fn columns_per_sample(&self) -> usize {
        match self {
            Geometry::Conv(g) => g.positions(),
            _ => 1,
        }
    }
}

/// Static description of one projection in a validated circuit.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionSpec {
    /// Name.
    pub name: String,
    /// Index of the presynaptic population.
    pub pre: usize,
    /// Index of the postsynaptic population.
    pub post: usize,
    /// Weight initialiser.
    pub init: Initializer,
    /// Bias initialiser, if the projection has a bias.
    pub bias: Option<Initializer>,
    /// Whether rules may change it.
    pub plastic: bool,
    /// Dense, convolution or pooling.
    pub geometry: Geometry,
    /// Synapse kind.
    pub synapse: Synapse,
    /// Conduction delay, ms (0: within the step).
    pub delay: f64,
}

impl ProjectionSpec {
    /// Shape of the weight matrix (`0 × 0` for pooling).
    pub fn weight_shape(&self, populations: &[Population]) -> (usize, usize) {
        match self.geometry {
            Geometry::Dense | Geometry::Sparse(_) => {
                (populations[self.post].size, populations[self.pre].size)
            }
            Geometry::Conv(g) => (g.output.0, g.patch_len()),
            Geometry::Pool(_) => (0, 0),
        }
    }

    /// `(fan_in, fan_out)` for initialisers: a convolution's counts its kernel's taps.
    pub(crate) fn fans(&self, populations: &[Population]) -> (usize, usize) {
        match self.geometry {
            Geometry::Conv(g) => (g.patch_len(), g.output.0 * g.kernel * g.kernel),
            Geometry::Sparse(kind) => {
                let (pre, post) = (populations[self.pre].size, populations[self.post].size);
                // An initialiser's scale follows the synapses a unit actually has.
                let fan_in = kind.fan_in(pre).round().max(1.0) as usize;
                let fan_out = kind.fan_out(pre, post).round().max(1.0) as usize;
                (fan_in, fan_out)
            }
            _ => (populations[self.pre].size, populations[self.post].size),
        }
    }
}

/// A validated circuit: the graph plus the order in which to evaluate it.
#[derive(Debug, Clone)]
pub struct CircuitBlueprint {
    graph: DiGraph<usize, usize>,
    populations: Vec<Population>,
    projections: Vec<ProjectionSpec>,
    order: Vec<usize>,
    incoming: Vec<Vec<usize>>,
    outgoing: Vec<Vec<usize>>,
    inputs: Vec<usize>,
    output: Option<usize>,
}

impl CircuitConfig {
    /// Validates the description and compiles the execution plan of a circuit that a task
    /// drives: it needs input populations and one output population.
    pub fn build(&self) -> Result<CircuitBlueprint, CircuitError> {
        self.build_graph(true)
    }

    /// Validates a circuit that runs on its own ([`crate::network`]): no population needs to
    /// be an input or the output, and [`CircuitBlueprint::output`] must not be asked for.
    pub fn build_network(&self) -> Result<CircuitBlueprint, CircuitError> {
        self.build_graph(false)
    }

    fn build_graph(&self, needs_io: bool) -> Result<CircuitBlueprint, CircuitError> {
        if self.populations.is_empty() {
            return Err(CircuitError::Empty);
        }
        let mut graph = DiGraph::new();
        let mut within_step = DiGraph::<usize, usize>::new();
        let mut index_of = HashMap::new();
        let mut populations = Vec::new();
        for (i, p) in self.populations.iter().enumerate() {
            within_step.add_node(i);
            if index_of.insert(p.name.clone(), graph.add_node(i)).is_some() {
                return Err(CircuitError::DuplicatePopulation(p.name.clone()));
            }
            let mut size = p.size;
            if let Some((c, h, w)) = p.shape {
                let product = c * h * w;
                if product == 0 {
                    return Err(CircuitError::EmptyPopulation(p.name.clone()));
                }
                if size == 0 {
                    size = product;
                } else if size != product {
                    return Err(CircuitError::Parameter {
                        what: format!("population `{}` size", p.name),
                        problem: format!(
                            "size {size} does not match shape ({c}, {h}, {w}) = {product} units: leave `size` out or set it to {product}"
                        ),
                    });
                }
            }
            if size == 0 {
                return Err(CircuitError::EmptyPopulation(p.name.clone()));
            }
            p.noise.check().map_err(|problem| CircuitError::Parameter {
                what: format!("population `{}` noise", p.name),
                problem,
            })?;
            if p.activation == Activation::Softmax && p.shape.is_some() {
                return Err(CircuitError::Parameter {
                    what: format!("population `{}` activation", p.name),
                    problem: "softmax normalises a whole population and cannot act on feature maps: use it on a flat output population".into(),
                });
            }
            p.model.check().map_err(|problem| CircuitError::Parameter {
                what: format!("population `{}` model", p.name),
                problem,
            })?;
            populations.push(Population {
                name: p.name.clone(),
                size,
                activation: p.activation,
                noise: p.noise,
                shape: p.shape,
                model: p.model,
            });
        }
        let known = || {
            self.populations
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut projections = Vec::new();
        let mut names = HashMap::new();
        for (j, q) in self.projections.iter().enumerate() {
            let name = q.resolved_name();
            if names.insert(name.clone(), j).is_some() {
                return Err(CircuitError::DuplicateProjection(name));
            }
            let lookup = |population: &str| {
                index_of
                    .get(population)
                    .copied()
                    .ok_or_else(|| CircuitError::UnknownPopulation {
                        projection: name.clone(),
                        population: population.to_string(),
                        known: known(),
                    })
            };
            let (from, to) = (lookup(&q.from)?, lookup(&q.to)?);
            for (field, init) in [("init", Some(q.init)), ("bias", q.bias)] {
                if let Some(init) = init {
                    init.check().map_err(|problem| CircuitError::Parameter {
                        what: format!("projection `{name}` {field}"),
                        problem,
                    })?;
                }
            }
            let geometry =
                geometry::geometry(&name, q, &populations[from.index()], &populations[to.index()])?;
            if matches!(geometry, Geometry::Sparse(_)) && matches!(q.init, Initializer::Pools { .. }) {
                return Err(CircuitError::Parameter {
                    what: format!("projection `{name}` init"),
                    problem: "`Pools` lays out a dense readout and cannot fill sparse synapses: use `Constant`, `Normal`, `LogNormal` or `XavierNormal`".into(),
                });
            }
            q.synapse.check().map_err(|problem| CircuitError::Parameter {
                what: format!("projection `{name}` synapse"),
                problem,
            })?;
            if matches!(q.synapse, Synapse::Conductance { .. }) && !populations[to.index()].model.is_spiking()
            {
                return Err(CircuitError::Parameter {
                    what: format!("projection `{name}` synapse"),
                    problem: format!(
                        "a conductance drives a membrane potential, but `{}` is not a `Lif` population: use `Current(tau:)` or make it `Lif`",
                        populations[to.index()].name
                    ),
                });
            }
            if !(q.delay >= 0.0 && q.delay.is_finite()) {
                return Err(CircuitError::Parameter {
                    what: format!("projection `{name}` delay"),
                    problem: format!("must be a finite number of ms >= 0, got {}", q.delay),
                });
            }
            graph.add_edge(from, to, j);
            if q.delay == 0.0 {
                within_step.add_edge(from, to, j);
            }
            projections.push(ProjectionSpec {
                name,
                pre: from.index(),
                post: to.index(),
                init: q.init,
                bias: q.bias,
                plastic: q.plastic && !matches!(geometry, Geometry::Pool(_)),
                geometry,
                synapse: q.synapse,
                delay: q.delay,
            });
        }
        // Populations are evaluated in the order of the projections acting within a step;
        // delayed projections read the past and may close cycles.
        let order: Vec<usize> = toposort(&within_step, None)
            .map_err(|cycle| CircuitError::Cycle(populations[cycle.node_id().index()].name.clone()))?
            .into_iter()
            .map(|n| n.index())
            .collect();
        let mut incoming = vec![Vec::new(); populations.len()];
        let mut outgoing = vec![Vec::new(); populations.len()];
        for (j, q) in projections.iter().enumerate() {
            incoming[q.post].push(j);
            outgoing[q.pre].push(j);
        }
        let names_where = |pred: &dyn Fn(usize) -> bool| -> Vec<usize> {
            (0..populations.len()).filter(|&i| pred(i)).collect()
        };
        let describe = |list: &[usize]| {
            if list.is_empty() {
                "none".to_string()
            } else {
                list.iter()
                    .map(|&i| format!("`{}`", populations[i].name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        for (i, pop) in populations.iter().enumerate() {
            if !pop.model.is_source() {
                continue;
            }
            if let Some(&q) = incoming[i].first() {
                return Err(CircuitError::Parameter {
                    what: format!("population `{}` model", pop.name),
                    problem: format!(
                        "a `Poisson` population is a noise source and takes no input, but projection `{}` arrives at it: remove the projection or use another model",
                        projections[q].name
                    ),
                });
            }
            if pop.noise.std() > 0.0 {
                return Err(CircuitError::Parameter {
                    what: format!("population `{}` noise", pop.name),
                    problem: "a `Poisson` population's spikes are its variability: set `noise: None`".into(),
                });
            }
        }
        let sources = names_where(&|i| incoming[i].is_empty() && !populations[i].model.is_source());
        let sinks = names_where(&|i| outgoing[i].is_empty() && !populations[i].model.is_source());
        let output = match (sources.is_empty(), sinks.as_slice()) {
            _ if !needs_io => None,
            (true, _) => return Err(CircuitError::NoInput),
            (false, &[sink]) if !sources.contains(&sink) => Some(sink),
            _ => return Err(CircuitError::NoOutput(describe(&sinks))),
        };
        let inputs = sources;
        if let Some(&noisy) = inputs.iter().find(|&&i| populations[i].noise.std() > 0.0) {
            return Err(CircuitError::NoisyInput(populations[noisy].name.clone()));
        }
        Ok(CircuitBlueprint {
            graph,
            populations,
            projections,
            order,
            incoming,
            outgoing,
            inputs,
            output,
        })
    }
}

impl CircuitBlueprint {
    /// The populations, in definition order.
    pub fn populations(&self) -> &[Population] {
        &self.populations
    }
    /// The projections, in definition order.
    pub fn projections(&self) -> &[ProjectionSpec] {
        &self.projections
    }
    /// Population indices in evaluation (topological) order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    /// Projections arriving at each population.
    pub fn incoming(&self, population: usize) -> &[usize] {
        &self.incoming[population]
    }
    /// Projections leaving each population.
    pub fn outgoing(&self, population: usize) -> &[usize] {
        &self.outgoing[population]
    }
    /// Index of the (first) input population: the only one of a circuit on a static task.
    pub fn input(&self) -> usize {
        self.inputs[0]
    }
    /// The input populations (no incoming projection, not noise sources), in definition
    /// order: a task's input rows fill them in this order.
    pub fn inputs(&self) -> &[usize] {
        &self.inputs
    }
    /// Refuses several input populations (static tasks feed one).
    pub fn single_input(&self) -> Result<(), CircuitError> {
        if self.inputs.len() == 1 {
            return Ok(());
        }
        let names: Vec<String> = self
            .inputs
            .iter()
            .map(|&i| format!("`{}`", self.populations[i].name))
            .collect();
        Err(CircuitError::SeveralInputs(names.join(", ")))
    }
    /// Whether population `p` is an input.
    pub fn is_input(&self, p: usize) -> bool {
        self.inputs.contains(&p)
    }
    /// Index of the output population (circuits built for a task; a network built by
    /// [`CircuitConfig::build_network`] has none and panics).
    pub fn output(&self) -> usize {
        self.output
            .expect("a circuit built for a task has an output population")
    }
    /// The underlying graph (node weights: population indices; edge weights: projection indices).
    pub fn graph(&self) -> &DiGraph<usize, usize> {
        &self.graph
    }
    /// Index of the population with this name.
    pub fn population_index(&self, name: &str) -> Option<usize> {
        self.populations.iter().position(|p| p.name == name)
    }
    /// Index of the projection with this name.
    pub fn projection_index(&self, name: &str) -> Option<usize> {
        self.projections.iter().position(|p| p.name == name)
    }

    /// A lower bound on the memory, in bytes, a run of this circuit takes with `value_bytes`
    /// per number and `columns` columns of activity (samples × steps per rendition): every
    /// weight twice (the weights and an update of their size), a sparse synapse's postsynaptic
    /// index beside it, and each population's activity, input and noise per column. Computed
    /// without overflow, so that an absurd circuit is refused before anything is allocated.
    pub fn estimated_bytes(&self, value_bytes: u64, columns: u64) -> u128 {
        let value = u128::from(value_bytes);
        let weights: u128 = self
            .projections
            .iter()
            .map(|spec| {
                let (rows, cols) = spec.weight_shape(&self.populations);
                match spec.geometry {
                    Geometry::Sparse(kind) => {
                        let synapses = (kind.fan_in(cols) * rows as f64).ceil() as u128;
                        synapses * (2 * value + 4)
                    }
                    _ => rows as u128 * cols as u128 * 2 * value,
                }
            })
            .sum();
        // Per-sample training looks ahead through the input's dense projections: products and
        // queued factors for a window of steps, and a copy of the weights for readers.
        let lookahead: u128 = match self.inputs.first() {
            Some(&input) if columns == 1 => {
                let steps = lookahead::LOOKAHEAD_STEPS as u128;
                self.outgoing(input)
                    .iter()
                    .map(|&q| &self.projections[q])
                    .filter(|spec| matches!(spec.geometry, Geometry::Dense))
                    .map(|spec| {
                        let (rows, cols) = spec.weight_shape(&self.populations);
                        let (rows, cols) = (rows as u128, cols as u128);
                        (rows * cols + steps * (2 * rows + 2 * cols)) * value
                    })
                    .sum()
            }
            _ => 0,
        };
        let units: u128 = self.populations.iter().map(|p| p.size as u128).sum();
        weights + lookahead + units * u128::from(columns) * 3 * value
    }

    /// Checks the input and output sizes against a task's.
    /// A static task feeds one input population.
    pub fn check_io(&self, input_size: usize, output_size: usize) -> Result<(), CircuitError> {
        self.single_input()?;
        let input = &self.populations[self.input()];
        if input.size != input_size {
            return Err(CircuitError::SizeMismatch {
                role: "input",
                role_verb: "provides",
                population: input.name.clone(),
                expected: input_size,
                found: input.size,
            });
        }
        let output = &self.populations[self.output()];
        if output.size != output_size {
            return Err(CircuitError::SizeMismatch {
                role: "output",
                role_verb: "expects",
                population: output.name.clone(),
                expected: output_size,
                found: output.size,
            });
        }
        Ok(())
    }

    /// If the circuit is a chain of linear populations (each with one incoming projection and
    /// no biases), the projection indices from input to output.
    pub fn linear_chain(&self) -> Option<Vec<usize>> {
        if self.inputs.len() != 1 {
            return None;
        }
        let mut chain = Vec::new();
        let mut at = self.input();
        while at != self.output() {
            let [next] = self.outgoing[at].as_slice() else {
                return None;
            };
            let q = &self.projections[*next];
            if q.bias.is_some()
                || q.geometry != Geometry::Dense
                || self.incoming[q.post].len() != 1
                || !self.populations[q.post].activation.is_linear()
            {
                return None;
            }
            chain.push(*next);
            at = q.post;
        }
        Some(chain)
    }
}

#[cfg(test)]
mod tests;
