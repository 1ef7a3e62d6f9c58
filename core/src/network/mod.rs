//! Free-running spiking networks: `Lif` populations joined by synapses, running on their own
//! (no task, no input, no learning) step after step for as long as asked — the recurrent
//! networks of computational neuroscience, such as the Vogels–Abbott COBA benchmark.
//!
//! The trial engine ([`crate::trial`]) keeps every step of a rendition for learning; this
//! engine keeps only the present state and hands out the spikes, so an hour of network time
//! costs no more memory than a millisecond.
//!
//! # Equations
//! Each neuron follows its population's [`PopulationModel::Lif`] (see [`crate::population`]):
//! `τ_m dV/dt = −(V − E_L) + R I − R Σ_k g_k (V − E_k)`, integrated exactly for inputs held
//! over a step (the trial engine's update; Brian2's exponential Euler), a spike when `V ≥ θ`
//! at the end of a step, then `V = V_reset` for `refractory` ms (rounded to whole steps).
//! Each projection is a *channel* of its postsynaptic neurons: a trace `s` (conductance in µS
//! with reversal `E`, or current in nA) that decays by `e^{−dt/τ_s}` each step (`Instant`: it
//! lasts one step) and jumps by the weight `w` when a presynaptic spike arrives. Biases are
//! constant currents (nA).
//!
//! # Order within a step `t`
//! 1. each channel takes the spikes arriving at `t`: `s ← s + Σ w`;
//! 2. every membrane advances with the traces and currents held over the step;
//! 3. neurons at or above threshold spike, reset and turn refractory;
//! 4. every trace decays; each spike is sent down its outgoing synapses to arrive at
//!    `t + d`, `d = round(delay/dt) ≥ 1` steps.
//!
//! Arrivals are summed in the order of presynaptic neurons. With `d = 1` each weight is added
//! to the decayed trace as it is sent (`s ← e^{−dt/τ_s} s + w₁ + w₂ + …`); with longer delays
//! the weights are first summed in an arrival slot (a ring buffer as long as the longest
//! delay), which step 1 adds to the trace.
//!
//! With `d = 1` a spike of step `t` acts on the membrane from step `t + 1` on: Brian2's order
//! for synapses without delay and NEST's with a delay of one step. The trial engine treats a
//! projection with a delay of one step the same way, so both engines integrate the same
//! equations.
//!
//! # Threads and determinism
//! Each population is cut into as many contiguous blocks as there are threads; a thread owns
//! its blocks' neurons and the synapses onto them (compressed by presynaptic neuron), so
//! delivering a spike touches only the thread's own memory. Threads meet once per step, after
//! step 3: each then reads every thread's new spikes, in block order, and delivers them into
//! its own traces and arrival slots. A neuron's inputs are
//! therefore summed in the order of presynaptic neurons whatever the thread count, and the
//! membrane loop computes each neuron alone: the spikes are the same on any number of threads.
//!
//! # Initial state
//! Potentials start at `E_L` and traces at 0 unless [`InitialState`] draws them: potentials of
//! a population from the stream `initial/<population>`, traces of a projection's channel
//! from `initial/<projection>`, neuron by neuron.
//!
//! # References
//! - T. P. Vogels, L. F. Abbott (2005). Signal propagation and logic gating in networks of
//!   integrate-and-fire neurons. J. Neurosci. 25, 10786.
//! - R. Brette et al. (2007). Simulation of networks of spiking neurons: a review of tools
//!   and strategies. J. Comput. Neurosci. 23, 349 (benchmark 1, COBA).

mod initial;
pub mod kernel;
pub mod statistics;

use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use thiserror::Error;

use crate::circuit::{Circuit, CircuitBlueprint, Geometry};
use crate::{Noise, PopulationModel, SeedStreams, Synapse};
pub use initial::{InitialState, InitialValue, check_initial};
use kernel::{Membrane, SpinBarrier, any_at_or_above, intake};
pub use statistics::{FiringStatistics, FiringTally, histogram};

/// Why a circuit cannot run as a free-running spiking network.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NetworkError {
    /// A population that is not `Lif`.
    #[error(
        "population `{0}` is not a `Lif` population: free-running networks take leaky integrate-and-fire populations only (rate models and Poisson sources need a task in time)"
    )]
    NotSpiking(String),
    /// Intrinsic noise, which this engine does not draw.
    #[error(
        "population `{0}` has intrinsic noise: free-running networks do not draw it yet; set `noise: None`"
    )]
    Noise(String),
    /// A convolution or pooling projection.
    #[error(
        "projection `{0}` is a convolution or pooling: free-running networks take dense and sparse projections"
    )]
    Geometry(String),
    /// A delay under one step.
    #[error(
        "projection `{projection}` has a delay of {delay} ms, under one step of {dt} ms: a spike takes at least one step in a free-running network; give `delay: {dt}` or more"
    )]
    Delay {
        /// The projection.
        projection: String,
        /// Its delay, ms.
        delay: f64,
        /// The step, ms.
        dt: f64,
    },
    /// A time constant shorter than the step, or a bad step.
    #[error("{0}")]
    Timing(String),
    /// An initial value for something that does not exist.
    #[error("{what} `{name}` does not exist; known: {known}")]
    UnknownName {
        /// `potential` or `synapse`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// A bad initial value.
    #[error("{what} of `{name}`: {problem}")]
    Initial {
        /// `potential` or `synapse`.
        what: &'static str,
        /// The population or projection.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// No threads.
    #[error("threads must be at least 1")]
    Threads,
}

/// One spike: the step, the population (definition order) and the neuron within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spike {
    /// Step index from the start of the simulation.
    pub step: u64,
    /// Population index.
    pub population: u32,
    /// Neuron index within the population.
    pub neuron: u32,
}

/// Neurons per block of the step's inner loops.
const BLOCK: usize = 256;
/// Neurons per chunk of the threshold scan: a chunk is looked at one by one only when its
/// highest potential reaches threshold.
const SCAN: usize = 16;

/// A population's constants.
#[derive(Debug, Clone)]
struct Group {
    membrane: Membrane,
    threshold: f64,
    /// Steps held at reset after a spike.
    hold: i64,
    size: usize,
    /// Projections arriving (channels).
    incoming: Vec<usize>,
    /// Summed biases of the incoming projections (constant currents, nA), if any.
    bias: Option<Vec<f64>>,
}

/// A projection's constants.
#[derive(Debug, Clone)]
struct Channel {
    pre: usize,
    post: usize,
    keep: f64,
    reversal: Option<f64>,
    delay: usize,
}

/// A projection's synapses onto one thread's block, by presynaptic neuron.
#[derive(Debug, Clone, Default)]
struct Rows {
    start: Vec<usize>,
    target: Vec<u32>,
    weight: Vec<f64>,
}

/// What one thread owns: its blocks of every population, their traces and arrivals, and the
/// synapses onto them.
#[derive(Debug)]
struct Part {
    blocks: Vec<Range<usize>>,
    potential: Vec<Vec<f64>>,
    refractory_until: Vec<Vec<i64>>,
    trace: Vec<Vec<f64>>,
    /// Per channel with a delay over one step, `ring_len` slots of the block's size (empty
    /// otherwise: spikes are added to the trace directly).
    arrivals: Vec<Vec<f64>>,
    rows: Vec<Rows>,
    recorded: Vec<Spike>,
    /// This step's spikes, per population (neuron indices in the population).
    fired: Vec<Vec<u32>>,
    /// Scratch for another thread's spikes.
    received: Vec<u32>,
}

/// A free-running network of spiking populations; see the module documentation.
#[derive(Debug)]
pub struct SpikingNetwork {
    step: u64,
    ring_len: usize,
    groups: Vec<Group>,
    channels: Vec<Channel>,
    parts: Vec<Part>,
    /// Per part, its spikes of the last two steps (even and odd).
    outbox: Vec<[Outbox; 2]>,
}

/// Which projections leave each population.
fn outgoing(channels: &[Channel], groups: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); groups];
    for (c, channel) in channels.iter().enumerate() {
        out[channel.pre].push(c);
    }
    out
}

/// Checks that the blueprint can run free with steps of `dt` ms.
pub fn check_network(bp: &CircuitBlueprint, dt: f64) -> Result<(), NetworkError> {
    if !(dt > 0.0 && dt.is_finite()) {
        return Err(NetworkError::Timing(format!(
            "dt must be a finite number of ms > 0, got {dt}"
        )));
    }
    for pop in bp.populations() {
        if !pop.model.is_spiking() {
            return Err(NetworkError::NotSpiking(pop.name.clone()));
        }
        if pop.noise != Noise::None {
            return Err(NetworkError::Noise(pop.name.clone()));
        }
    }
    for spec in bp.projections() {
        if !matches!(spec.geometry, Geometry::Dense | Geometry::Sparse(_)) {
            return Err(NetworkError::Geometry(spec.name.clone()));
        }
        if (spec.delay / dt).round() < 1.0 {
            return Err(NetworkError::Delay {
                projection: spec.name.clone(),
                delay: spec.delay,
                dt,
            });
        }
    }
    crate::trial::check_circuit(bp, dt).map_err(NetworkError::Timing)
}

/// Cuts `0..size` into `parts` contiguous blocks, as equal as possible.
fn block(size: usize, parts: usize, j: usize) -> Range<usize> {
    size * j / parts..size * (j + 1) / parts
}

impl SpikingNetwork {
    /// Builds the network of an instantiated circuit with steps of `dt` ms on `threads`
    /// threads (the number of threads changes the speed, never the spikes), drawing the
    /// initial state from `streams`.
    pub fn new(
        circuit: &mut Circuit<f64>,
        streams: &SeedStreams,
        dt: f64,
        initial: &InitialState,
        threads: usize,
    ) -> Result<Self, NetworkError> {
        if threads == 0 {
            return Err(NetworkError::Threads);
        }
        let bp = circuit.blueprint().clone();
        check_network(&bp, dt)?;
        check_initial(&bp, initial)?;
        let channels: Vec<Channel> = bp
            .projections()
            .iter()
            .map(|spec| Channel {
                pre: spec.pre,
                post: spec.post,
                keep: spec.synapse.retention(dt),
                reversal: match spec.synapse {
                    Synapse::Conductance { reversal, .. } => Some(reversal),
                    _ => None,
                },
                delay: (spec.delay / dt).round() as usize,
            })
            .collect();
        let ring_len = channels.iter().map(|c| c.delay).max().unwrap_or(1).max(1);
        let mut groups = Vec::new();
        for (p, pop) in bp.populations().iter().enumerate() {
            let PopulationModel::Lif(lif) = pop.model else {
                unreachable!("checked above")
            };
            let mut bias: Option<Vec<f64>> = None;
            for &q in bp.incoming(p) {
                if let Some(b) = circuit.bias(q) {
                    let sum = bias.get_or_insert_with(|| vec![0.0; pop.size]);
                    sum.iter_mut().zip(b.iter()).for_each(|(s, &b)| *s += b);
                }
            }
            groups.push(Group {
                membrane: Membrane {
                    dt,
                    tau_m: lif.tau_m,
                    v_rest: lif.v_rest,
                    v_reset: lif.v_reset,
                    resistance: lif.resistance,
                },
                threshold: lif.v_threshold,
                hold: (lif.refractory / dt).round() as i64,
                size: pop.size,
                incoming: bp.incoming(p).to_vec(),
                bias,
            });
        }
        // The initial state, drawn neuron by neuron over whole populations.
        let potentials: Vec<Vec<f64>> = groups
            .iter()
            .zip(bp.populations())
            .map(|(g, pop)| match initial.potential.get(&pop.name) {
                Some(value) => {
                    let mut rng = streams.stream(&format!("initial/{}", pop.name));
                    (0..g.size).map(|_| value.draw(&mut rng)).collect()
                }
                None => vec![g.membrane.v_rest; g.size],
            })
            .collect();
        let traces: Vec<Vec<f64>> = channels
            .iter()
            .zip(bp.projections())
            .map(|(c, spec)| match initial.synapse.get(&spec.name) {
                Some(value) => {
                    let mut rng = streams.stream(&format!("initial/{}", spec.name));
                    let floor = if c.reversal.is_some() {
                        0.0
                    } else {
                        f64::NEG_INFINITY
                    };
                    (0..groups[c.post].size)
                        .map(|_| value.draw(&mut rng).max(floor))
                        .collect()
                }
                None => vec![0.0; groups[c.post].size],
            })
            .collect();
        // Each projection's synapses as (pre, post, weight), by presynaptic neuron.
        let synapses: Vec<Vec<(u32, u32, f64)>> = (0..channels.len())
            .map(|q| match circuit.sparse_weights(q) {
                Some((structure, values)) => {
                    let (_, cols) = structure.shape();
                    let mut list = Vec::with_capacity(structure.len());
                    for j in 0..cols {
                        let (targets, start) = structure.targets(j);
                        for (k, &i) in targets.iter().enumerate() {
                            list.push((j as u32, i, values[start + k]));
                        }
                    }
                    list
                }
                None => {
                    let w = circuit.weights(q);
                    let mut list = Vec::new();
                    for j in 0..w.ncols() {
                        for i in 0..w.nrows() {
                            if w[(i, j)] != 0.0 {
                                list.push((j as u32, i as u32, w[(i, j)]));
                            }
                        }
                    }
                    list
                }
            })
            .collect();
        let parts: Vec<Part> = (0..threads)
            .map(|j| {
                let blocks: Vec<Range<usize>> = groups.iter().map(|g| block(g.size, threads, j)).collect();
                let rows = channels
                    .iter()
                    .zip(&synapses)
                    .map(|(c, list)| {
                        let own = &blocks[c.post];
                        let mut rows = Rows {
                            start: vec![0; groups[c.pre].size + 1],
                            ..Rows::default()
                        };
                        for &(pre, post, w) in list {
                            if own.contains(&(post as usize)) {
                                rows.start[pre as usize + 1] += 1;
                                rows.target.push(post - own.start as u32);
                                rows.weight.push(w);
                            }
                        }
                        for k in 1..rows.start.len() {
                            rows.start[k] += rows.start[k - 1];
                        }
                        rows
                    })
                    .collect();
                Part {
                    potential: blocks
                        .iter()
                        .zip(&potentials)
                        .map(|(b, v)| v[b.clone()].to_vec())
                        .collect(),
                    refractory_until: blocks.iter().map(|b| vec![i64::MIN; b.len()]).collect(),
                    trace: channels
                        .iter()
                        .zip(&traces)
                        .map(|(c, s)| s[blocks[c.post].clone()].to_vec())
                        .collect(),
                    arrivals: channels
                        .iter()
                        .map(|c| {
                            let slots = if c.delay > 1 { ring_len } else { 0 };
                            vec![0.0; slots * blocks[c.post].len()]
                        })
                        .collect(),
                    rows,
                    recorded: Vec::new(),
                    fired: blocks.iter().map(|b| Vec::with_capacity(b.len())).collect(),
                    received: Vec::with_capacity(groups.iter().map(|g| g.size).max().unwrap_or(0)),
                    blocks,
                }
            })
            .collect();
        let outbox = parts
            .iter()
            .map(|part| {
                let capacity: Vec<usize> = part.blocks.iter().map(Range::len).collect();
                [Outbox::new(&capacity), Outbox::new(&capacity)]
            })
            .collect();
        Ok(Self {
            step: 0,
            ring_len,
            groups,
            channels,
            parts,
            outbox,
        })
    }

    /// Steps simulated so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// The number of neurons.
    pub fn neurons(&self) -> usize {
        self.groups.iter().map(|g| g.size).sum()
    }

    /// The number of synapses.
    pub fn synapses(&self) -> usize {
        self.parts
            .iter()
            .flat_map(|part| part.rows.iter().map(|rows| rows.target.len()))
            .sum()
    }

    /// The membrane potentials of population `p` (mV), in neuron order.
    pub fn potentials(&self, p: usize) -> Vec<f64> {
        self.parts
            .iter()
            .flat_map(|part| part.potential[p].iter().copied())
            .collect()
    }

    /// The traces of projection `q`'s channel (µS or nA), in postsynaptic neuron order.
    pub fn traces(&self, q: usize) -> Vec<f64> {
        self.parts
            .iter()
            .flat_map(|part| part.trace[q].iter().copied())
            .collect()
    }

    /// Runs `steps` steps and returns their spikes, sorted by step, population and neuron.
    pub fn run(&mut self, steps: u64) -> Vec<Spike> {
        let start = self.step as i64;
        let end = start + steps as i64;
        let barrier = SpinBarrier::new(self.parts.len());
        let outgoing = outgoing(&self.channels, self.groups.len());
        let shared = Shared {
            groups: &self.groups,
            channels: &self.channels,
            outgoing: &outgoing,
            outbox: &self.outbox,
            barrier: &barrier,
            ring_len: self.ring_len,
        };
        if let [only] = self.parts.as_mut_slice() {
            shared.run(0, only, start..end);
        } else {
            std::thread::scope(|s| {
                for (j, part) in self.parts.iter_mut().enumerate() {
                    let shared = &shared;
                    s.spawn(move || shared.run(j, part, start..end));
                }
            });
        }
        self.step = end as u64;
        let mut spikes: Vec<Spike> = self.parts.iter_mut().flat_map(|p| p.recorded.drain(..)).collect();
        spikes.sort_unstable();
        spikes
    }
}

/// What every thread reads during a run.
struct Shared<'a> {
    groups: &'a [Group],
    channels: &'a [Channel],
    outgoing: &'a [Vec<usize>],
    outbox: &'a [[Outbox; 2]],
    barrier: &'a SpinBarrier,
    ring_len: usize,
}

impl Shared<'_> {
    /// Thread `j`'s loop over steps `steps` with its part.
    fn run(&self, j: usize, part: &mut Part, steps: Range<i64>) {
        for t in steps {
            let parity = (t & 1) as usize;
            self.advance(part, t);
            let own = &self.outbox[j][parity];
            for (p, fired) in part.fired.iter().enumerate() {
                own.publish(p, fired);
            }
            self.barrier.wait();
            for outbox in self.outbox {
                for p in 0..self.groups.len() {
                    let mut received = std::mem::take(&mut part.received);
                    outbox[parity].read(p, &mut received);
                    self.deliver(part, t, p, &received);
                    part.received = received;
                }
            }
        }
    }

    /// Steps 1–3 and the decay of step 4 for one thread's neurons; their spikes into `fired`.
    /// Neurons go in blocks of [`BLOCK`], so that a block's inputs stay in the first-level
    /// cache between the channels, the membrane and the threshold.
    fn advance(&self, part: &mut Part, t: i64) {
        let slot = t as usize % self.ring_len;
        let mut current = [0.0; BLOCK];
        let mut conductance = [0.0; BLOCK];
        let mut driven = [0.0; BLOCK];
        for (p, group) in self.groups.iter().enumerate() {
            part.fired[p].clear();
            let range = part.blocks[p].clone();
            let n = range.len();
            for first in (0..n).step_by(BLOCK) {
                let here = first..(first + BLOCK).min(n);
                let m = here.len();
                let (current, conductance, driven) =
                    (&mut current[..m], &mut conductance[..m], &mut driven[..m]);
                // Each kind of input is written by its first source and added to by the others;
                // kinds with no source are left out of the membrane update.
                let mut current_set = false;
                if let Some(bias) = &group.bias {
                    current.copy_from_slice(&bias[range.start + here.start..range.start + here.end]);
                    current_set = true;
                }
                let mut conductance_set = false;
                for &c in &group.incoming {
                    let channel = &self.channels[c];
                    let arrivals = &mut part.arrivals[c];
                    let waiting = (!arrivals.is_empty())
                        .then(|| &mut arrivals[slot * n + here.start..slot * n + here.end]);
                    let set = if channel.reversal.is_some() {
                        &mut conductance_set
                    } else {
                        &mut current_set
                    };
                    intake(
                        &mut part.trace[c][here.clone()],
                        waiting,
                        channel.keep,
                        channel.reversal,
                        !*set,
                        current,
                        conductance,
                        driven,
                    );
                    *set = true;
                }
                let v = &mut part.potential[p][here.clone()];
                let until = &mut part.refractory_until[p][here.clone()];
                group.membrane.advance(
                    t,
                    v,
                    until,
                    current_set.then_some(&*current),
                    conductance_set.then_some((&*conductance, &*driven)),
                );
                for (chunk, v) in v.chunks_mut(SCAN).enumerate() {
                    if !any_at_or_above(v, group.threshold) {
                        continue;
                    }
                    for (k, v) in v.iter_mut().enumerate() {
                        if *v < group.threshold {
                            continue;
                        }
                        let k = chunk * SCAN + k;
                        *v = group.membrane.v_reset;
                        until[k] = t + 1 + group.hold;
                        let neuron = (range.start + here.start + k) as u32;
                        part.fired[p].push(neuron);
                        part.recorded.push(Spike {
                            step: t as u64,
                            population: p as u32,
                            neuron,
                        });
                    }
                }
            }
        }
    }

    /// Step 4's sending: one thread's spikes of step `t` in population `p` into `part`'s
    /// traces and arrival slots.
    fn deliver(&self, part: &mut Part, t: i64, p: usize, spikes: &[u32]) {
        if spikes.is_empty() {
            return;
        }
        for &c in &self.outgoing[p] {
            let channel = &self.channels[c];
            let n = part.blocks[channel.post].len();
            if n == 0 {
                continue;
            }
            // A delay of one step adds straight onto the decayed trace; longer ones wait in
            // their arrival slot.
            let arrivals = if channel.delay == 1 {
                &mut part.trace[c][..]
            } else {
                let slot = (t as usize + channel.delay) % self.ring_len;
                &mut part.arrivals[c][slot * n..(slot + 1) * n]
            };
            let rows = &part.rows[c];
            for &i in spikes {
                let synapses = rows.start[i as usize]..rows.start[i as usize + 1];
                for (&target, &w) in rows.target[synapses.clone()].iter().zip(&rows.weight[synapses]) {
                    arrivals[target as usize] += w;
                }
            }
        }
    }
}

/// One thread's spikes of one step, per population, for every thread to read after the
/// barrier. Relaxed atomics suffice: the barrier orders the writes before the reads.
#[derive(Debug)]
struct Outbox {
    counts: Vec<AtomicUsize>,
    neurons: Vec<Vec<AtomicU32>>,
}

impl Outbox {
    /// Room for as many spikes per population as the thread has neurons in it.
    fn new(capacity: &[usize]) -> Self {
        Self {
            counts: capacity.iter().map(|_| AtomicUsize::new(0)).collect(),
            neurons: capacity
                .iter()
                .map(|&n| (0..n).map(|_| AtomicU32::new(0)).collect())
                .collect(),
        }
    }

    fn publish(&self, p: usize, spikes: &[u32]) {
        for (slot, &neuron) in self.neurons[p].iter().zip(spikes) {
            slot.store(neuron, Ordering::Relaxed);
        }
        self.counts[p].store(spikes.len(), Ordering::Relaxed);
    }

    fn read(&self, p: usize, into: &mut Vec<u32>) {
        into.clear();
        let count = self.counts[p].load(Ordering::Relaxed);
        into.extend(self.neurons[p][..count].iter().map(|n| n.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests;
