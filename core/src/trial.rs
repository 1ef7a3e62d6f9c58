//! The trial engine: circuits that run in time, rendition by rendition.
//!
//! Why one long file: the rendition loop, back-propagation through time and the layout for
//! rules share the engine's private buffers.
//!
//! A *rendition* (trial) runs a circuit for `steps` time steps of `dt` ms on a time-varying
//! input. Several renditions with independent noise run side by side as the batch dimension.
//! Each population follows its [`PopulationModel`] (static or leaky rate, see
//! [`crate::population`]); its intrinsic noise is drawn afresh at every step (white Gaussian)
//! or follows an Ornstein–Uhlenbeck process ([`crate::noise`]).
//!
//! # What a step does
//! 1. a noise-free rendition with the current weights (its loss is the clean loss `ℓ_b` of
//!    each rendition `b`, the paper's baseline);
//! 2. if the rule asks for perturbation, the noisy renditions, and the signal
//!    `δℓ_b = ℓ̃_b − ℓ_b`;
//! 3. if the rule asks for back-propagation, back-propagation through time on the clean
//!    rendition (the exact gradient, for SGD and the cosine diagnostic);
//! 4. the rule, through the same [`RuleContext`] as the batch engine. Time is laid out as
//!    columns: each rendition contributes `steps` consecutive columns (one "sample" of
//!    `columns_per_sample = steps` columns), so a rule's `ΔW = Σ_j c_s(j) U[:, j] V[:, j]ᵀ` sums
//!    over time within each rendition. Node perturbation then is the eligibility-trace rule
//!    `ΔW = −(η/σ²) Σ_b δℓ_b Σ_t n_b(t) r_b(t)ᵀ` and SGD is back-propagation through time,
//!    without either rule knowing about time.
//!
//! The loss of a rendition is the mean over its steps of the per-step loss (`½|y(t) − y*(t)|²`
//! for `SquaredError`), so `δℓ` and the gradient do not grow with the number of steps.
//!
//! # The trace's gate
//! For rectified units the noise a synapse correlates with the reward can be gated by whether
//! its unit was active: [`TraceGate::Clean`] multiplies `n(t)` by `f'(u(t))` of the noise-free
//! rendition (still unbiased for small noise: a silent unit's noise changes nothing),
//! [`TraceGate::Noisy`] by `f'(ũ(t))` of the noisy one (what a synapse could see; biased), and
//! [`TraceGate::None`] leaves it as it is (exact node perturbation).
//!
//! Noise is drawn population by population, step by step, from each population's named
//! stream (`noise/<population>`), so results do not depend on the thread count.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::circuit::Circuit;
use crate::rule::{LearningRule, PostUpdate, ProjectionContext, Requirements, RuleContext, RuleError};
use crate::{Geometry, Loss, Noise, PopulationModel, Real, SeedStreams, StreamRng, Synapse};

/// Which activity gates the noise in a synapse's eligibility trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename = "trace_gate")]
pub enum TraceGate {
    /// No gate: the trace is the noise itself (exact node perturbation).
    #[default]
    None,
    /// `f'(u)` of the noise-free rendition.
    Clean,
    /// `f'(ũ)` of the noisy rendition.
    Noisy,
}

/// The time axis of a trial task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialTiming {
    /// Steps per rendition.
    pub steps: usize,
    /// Step, in ms.
    pub dt: f64,
}

/// Activity of every population over one set of renditions, time-major: column `t·B + b`
/// is step `t` of rendition `b`.
#[derive(Debug, Clone, Default)]
struct Rendition<T: Real> {
    /// Activity.
    act: Vec<DMatrix<T>>,
    /// Pre-activation `u` (summed input plus noise).
    u: Vec<DMatrix<T>>,
}

/// Runs circuits in time; see the module documentation.
pub struct TrialEngine<T: Real> {
    circuit: Circuit<T>,
    timing: TrialTiming,
    gate: TraceGate,
    loss: Loss,
    retention: Vec<T>,
    /// Each projection's delay in whole steps.
    delays: Vec<usize>,
    /// Whether each population is perturbed: intrinsic noise, or input from a noise source.
    perturbed: Vec<bool>,
    noise_streams: Vec<StreamRng>,
    clean: Rendition<T>,
    noisy: Rendition<T>,
    /// Noise each population received, time-major.
    noise: Vec<DMatrix<T>>,
    /// `∂ℓ/∂u` after back-propagation through time, time-major.
    error: Vec<DMatrix<T>>,
    /// What rules see, rendition-major (column `b·steps + t`): clean activity, gated noise,
    /// errors.
    rule_act: Vec<DMatrix<T>>,
    rule_noise: Vec<DMatrix<T>>,
    rule_error: Vec<DMatrix<T>>,
    /// Presynaptic activity of delayed plastic projections, delayed, rendition-major.
    rule_delayed_pre: Vec<DMatrix<T>>,
    clean_loss: Vec<T>,
    signal: Vec<T>,
    /// `f(u)` of one step, for the population being updated.
    scratch: Vec<T>,
    /// Current, conductance and reversal-weighted conductance of one step.
    scratch_inputs: Vec<T>,
}

/// `u += W x` for each of the columns of `u` (`rows` each) and `x` (`cols` each), `W`
/// column-major `rows × cols`, skipping presynaptic units that are silent: a sparse input
/// such as a timing population's bursts costs only its active units.
fn accumulate<T: Real>(u: &mut [T], w: &[T], x: &[T], rows: usize, cols: usize) {
    for (u, x) in u.chunks_exact_mut(rows).zip(x.chunks_exact(cols)) {
        for (j, &xj) in x.iter().enumerate() {
            if xj != T::zero() {
                let column = &w[j * rows..(j + 1) * rows];
                u.iter_mut().zip(column).for_each(|(u, &w)| *u += xj * w);
            }
        }
    }
}

/// Why a circuit cannot run in the trial engine with steps of `dt` ms.
pub fn check_circuit(bp: &crate::CircuitBlueprint, dt: f64) -> Result<(), String> {
    for pop in bp.populations() {
        if pop.model.spike_probability(dt) > 1.0 {
            return Err(format!(
                "population `{}` fires at {} Hz, more than one spike per step of {dt} ms: lower its rate or dt",
                pop.name,
                pop.model.spike_probability(dt) * 1000.0 / dt
            ));
        }
    }
    for spec in bp.projections() {
        if spec.delay > 0.0 && (spec.delay / dt).round() < 1.0 {
            return Err(format!(
                "projection `{}` has a delay of {} ms, less than half a step of {dt} ms: give a delay of at least one step or a smaller dt",
                spec.name, spec.delay
            ));
        }
        if !matches!(spec.geometry, Geometry::Dense | Geometry::Sparse(_)) {
            return Err(format!(
                "projection `{}` is a convolution or pooling: time-stepped circuits take dense and sparse projections",
                spec.name
            ));
        }
    }
    Ok(())
}

impl<T: Real> TrialEngine<T> {
    /// An engine for `circuit` (dense projections only, see [`check_circuit`]).
    pub fn new(circuit: Circuit<T>, streams: &SeedStreams, timing: TrialTiming, gate: TraceGate) -> Self {
        let bp = circuit.blueprint().clone();
        let n = bp.populations().len();
        let retention = bp
            .populations()
            .iter()
            .map(|p| T::of(p.model.retention(timing.dt)))
            .collect();
        let noise_streams = bp
            .populations()
            .iter()
            .map(|p| streams.stream(&format!("noise/{}", p.name)))
            .collect();
        let delays = bp
            .projections()
            .iter()
            .map(|q| (q.delay / timing.dt).round() as usize)
            .collect();
        let empty = || vec![DMatrix::zeros(0, 0); n];
        let perturbed = (0..n).map(|p| perturbed(&bp, p)).collect();
        Self {
            circuit,
            timing,
            gate,
            loss: Loss::SquaredError,
            retention,
            delays,
            perturbed,
            noise_streams,
            clean: Rendition {
                act: empty(),
                u: empty(),
            },
            noisy: Rendition {
                act: empty(),
                u: empty(),
            },
            noise: empty(),
            error: empty(),
            rule_act: empty(),
            rule_noise: empty(),
            rule_error: empty(),
            rule_delayed_pre: vec![DMatrix::zeros(0, 0); bp.projections().len()],
            clean_loss: Vec::new(),
            signal: Vec::new(),
            scratch: Vec::new(),
            scratch_inputs: Vec::new(),
        }
    }

    /// The loss renditions are scored by (default [`Loss::SquaredError`]).
    pub fn set_loss(&mut self, loss: Loss) {
        self.loss = loss;
    }

    /// The time axis.
    pub fn timing(&self) -> TrialTiming {
        self.timing
    }

    /// The circuit and its weights.
    pub fn circuit_mut(&mut self) -> &mut Circuit<T> {
        &mut self.circuit
    }

    /// Clean activity of population `index` in the last noise-free renditions, time-major.
    pub fn activity(&self, index: usize) -> &DMatrix<T> {
        &self.clean.act[index]
    }

    /// Whether the circuit has a gradient (no spiking population).
    pub fn differentiable(&self) -> bool {
        self.circuit
            .blueprint()
            .populations()
            .iter()
            .all(|p| !p.model.is_spiking())
    }

    /// The state of population `index` in the last noise-free renditions, time-major: its
    /// summed input `u` (with noise, for a noisy rendition) for rate populations, its membrane
    /// potential (mV) for `Lif` populations.
    pub fn state(&self, index: usize) -> &DMatrix<T> {
        &self.clean.u[index]
    }

    /// Activity of population `index` in the last noisy renditions, time-major (the spikes
    /// that happened, for spiking and `Poisson` populations); empty before any.
    pub fn noisy_activity(&self, index: usize) -> &DMatrix<T> {
        &self.noisy.act[index]
    }

    /// The perturbation population `index` received in the last noisy renditions,
    /// time-major: its intrinsic noise plus what noise sources delivered beyond their mean.
    pub fn received_noise(&self, index: usize) -> &DMatrix<T> {
        &self.noise[index]
    }

    /// `∂ℓ/∂u` of population `index` after the last back-propagation through time,
    /// time-major.
    pub fn error(&self, index: usize) -> &DMatrix<T> {
        &self.error[index]
    }

    /// Clean loss of each of the last renditions.
    pub fn losses(&self) -> &[T] {
        &self.clean_loss
    }

    /// `ℓ̃_b − ℓ_b` of each of the last renditions (empty without perturbation).
    pub fn signal(&self) -> &[T] {
        &self.signal
    }

    /// Renditions in `inputs` (time-major, `input_size × steps·B`).
    fn renditions(&self, inputs: &DMatrix<T>) -> usize {
        assert_eq!(
            inputs.ncols() % self.timing.steps,
            0,
            "inputs must have a whole number of renditions of {} steps",
            self.timing.steps
        );
        inputs.ncols() / self.timing.steps
    }

    /// Runs the renditions: noise-free, or with each population's noise drawn afresh.
    fn run(&mut self, inputs: &DMatrix<T>, noisy: bool) {
        self.circuit.flush();
        let batch = self.renditions(inputs);
        let steps = self.timing.steps;
        let columns = steps * batch;
        let bp = self.circuit.blueprint().clone();
        let input = bp.input();
        let rendition = if noisy { &mut self.noisy } else { &mut self.clean };
        for (p, pop) in bp.populations().iter().enumerate() {
            for m in [&mut rendition.act[p], &mut rendition.u[p]] {
                if m.shape() != (pop.size, columns) {
                    *m = DMatrix::zeros(pop.size, columns);
                }
            }
            if noisy && self.noise[p].shape() != (pop.size, columns) {
                self.noise[p] = DMatrix::zeros(pop.size, columns);
            }
        }
        rendition.act[input].copy_from(inputs);
        let widest = bp.populations().iter().map(|p| p.size).max().unwrap_or(0);
        self.scratch.resize(widest * batch, T::zero());
        self.scratch_inputs.resize(5 * widest * batch, T::zero());
        let dt = self.timing.dt;
        // For projections from noise sources: their synaptic trace under the source's mean
        // activity (the same in every rendition), driven by the weights' row sums.
        let mut mean_traces: Vec<Option<(Vec<T>, Vec<T>)>> = bp
            .projections()
            .iter()
            .enumerate()
            .map(|(q, spec)| {
                let source = &bp.populations()[spec.pre];
                (noisy && source.model.is_source()).then(|| {
                    let mean = T::of(source.model.spike_probability(dt));
                    let proj = &self.circuit.projections[q];
                    let post_size = bp.populations()[spec.post].size;
                    let mut drive = vec![T::zero(); post_size];
                    let means = vec![mean; source.size];
                    match &proj.sparse {
                        Some(s) => s.structure.accumulate(&s.values, &means, &mut drive),
                        None => accumulate(
                            &mut drive,
                            proj.weights.as_slice(),
                            &means,
                            post_size,
                            source.size,
                        ),
                    }
                    (vec![T::zero(); drive.len()], drive)
                })
            })
            .collect();
        // Ornstein–Uhlenbeck state per noisy population, started from its stationary law.
        let mut ou: Vec<Option<(DMatrix<T>, f64)>> = bp
            .populations()
            .iter()
            .enumerate()
            .map(|(p, pop)| match pop.noise {
                Noise::OrnsteinUhlenbeck { std, tau } if noisy => {
                    let rng = &mut self.noise_streams[p];
                    let state = DMatrix::from_fn(pop.size, batch, |_, _| {
                        let z: f64 = StandardNormal.sample(rng);
                        T::of(std * z)
                    });
                    Some((state, (-dt / tau).exp()))
                }
                _ => None,
            })
            .collect();
        // Synaptic traces per projection (current or conductance), and refractory steps left
        // per spiking neuron: both start at rest in each rendition.
        let mut traces: Vec<Vec<T>> = bp
            .projections()
            .iter()
            .map(|spec| match spec.synapse {
                Synapse::Instant => Vec::new(),
                _ => vec![T::zero(); bp.populations()[spec.post].size * batch],
            })
            .collect();
        let mut refractory: Vec<Vec<u32>> = bp
            .populations()
            .iter()
            .map(|pop| {
                if pop.model.is_spiking() {
                    vec![0; pop.size * batch]
                } else {
                    Vec::new()
                }
            })
            .collect();
        for t in 0..steps {
            for &p in bp.order() {
                if p == input {
                    continue;
                }
                let pop = &bp.populations()[p];
                let size = pop.size;
                let here = t * batch * size..(t + 1) * batch * size;
                if pop.model.is_source() {
                    let chance = pop.model.spike_probability(dt);
                    let act = &mut rendition.act[p].as_mut_slice()[here];
                    if noisy {
                        let rng = &mut self.noise_streams[p];
                        act.iter_mut().for_each(|a| {
                            let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                            *a = if u < chance { T::one() } else { T::zero() };
                        });
                    } else {
                        act.fill(T::of(chance));
                    }
                    continue;
                }
                // The current (instant and current-based synapses) and, for a membrane, the
                // conductances and their reversal-weighted sum; what noise sources delivered
                // beyond their mean; one projection's instant input.
                let (current, rest) = self.scratch_inputs.split_at_mut(size * batch);
                let (conductance, rest) = rest.split_at_mut(size * batch);
                let (driven, rest) = rest.split_at_mut(size * batch);
                let (received, rest) = rest.split_at_mut(size * batch);
                let instant = &mut rest[..size * batch];
                current.fill(T::zero());
                conductance.fill(T::zero());
                driven.fill(T::zero());
                received.fill(T::zero());
                for &q in bp.incoming(p) {
                    let spec = &bp.projections()[q];
                    let proj = &self.circuit.projections[q];
                    let pre_size = bp.populations()[spec.pre].size;
                    // A delayed projection reads its presynaptic activity `delay` steps back;
                    // before the rendition's start there was none.
                    let Some(then) = t.checked_sub(self.delays[q]) else {
                        if let Some(trace) = traces.get_mut(q).filter(|t| !t.is_empty()) {
                            let keep = T::of(spec.synapse.retention(dt));
                            trace.iter_mut().for_each(|s| *s *= keep);
                        }
                        continue;
                    };
                    // The trace the source's mean would leave, one step on.
                    if let Some((mean, drive)) = &mut mean_traces[q] {
                        let keep = T::of(spec.synapse.retention(dt));
                        mean.iter_mut()
                            .zip(drive.iter())
                            .for_each(|(m, &d)| *m = keep * *m + d);
                    }
                    let pre = &rendition.act[spec.pre].as_slice()
                        [then * batch * pre_size..(then + 1) * batch * pre_size];
                    let add = |into: &mut [T]| match &proj.sparse {
                        Some(s) => s.structure.accumulate(&s.values, pre, into),
                        None => accumulate(into, proj.weights.as_slice(), pre, size, pre_size),
                    };
                    match spec.synapse {
                        Synapse::Instant => {
                            instant.fill(T::zero());
                            add(instant);
                            current.iter_mut().zip(instant.iter()).for_each(|(c, &i)| *c += i);
                        }
                        synapse => {
                            let trace = &mut traces[q];
                            let keep = T::of(synapse.retention(dt));
                            trace.iter_mut().for_each(|s| *s *= keep);
                            add(trace);
                            if let Synapse::Conductance { reversal, .. } = synapse {
                                let e = T::of(reversal);
                                for ((g, d), &s) in
                                    conductance.iter_mut().zip(driven.iter_mut()).zip(trace.iter())
                                {
                                    *g += s;
                                    *d += s * e;
                                }
                            } else {
                                current.iter_mut().zip(trace.iter()).for_each(|(c, &s)| *c += s);
                            }
                        }
                    }
                    if let Some((mean, _)) = &mean_traces[q] {
                        let delivered: &[T] = match spec.synapse {
                            Synapse::Instant => instant,
                            _ => &traces[q],
                        };
                        for (r, d) in received.chunks_exact_mut(size).zip(delivered.chunks_exact(size)) {
                            for ((r, &d), &m) in r.iter_mut().zip(d).zip(mean.iter()) {
                                *r += d - m;
                            }
                        }
                    }
                    if let Some(bias) = &proj.bias {
                        for column in current.chunks_exact_mut(size) {
                            column.iter_mut().zip(bias.iter()).for_each(|(u, &b)| *u += b);
                        }
                    }
                }
                let u = &mut rendition.u[p].as_mut_slice()[here.clone()];
                u.copy_from_slice(current);
                if noisy && self.perturbed[p] {
                    let n = &mut self.noise[p].as_mut_slice()[here.clone()];
                    n.fill(T::zero());
                    let rng = &mut self.noise_streams[p];
                    match (pop.noise, &mut ou[p]) {
                        (Noise::None, _) => {}
                        (Noise::OrnsteinUhlenbeck { std, .. }, Some((state, rho))) => {
                            let kick = std * (1.0 - *rho * *rho).sqrt();
                            for (s, out) in state.iter_mut().zip(n.iter_mut()) {
                                let z: f64 = StandardNormal.sample(rng);
                                *s = *s * T::of(*rho) + T::of(kick * z);
                                *out = *s;
                            }
                        }
                        (noise, _) => {
                            let std = noise.std();
                            for out in n.iter_mut() {
                                let z: f64 = StandardNormal.sample(rng);
                                *out = T::of(std * z);
                            }
                        }
                    }
                    u.iter_mut().zip(n.iter()).for_each(|(u, &n)| *u += n);
                    // What noise sources delivered beyond their mean is already in the input.
                    n.iter_mut().zip(received.iter()).for_each(|(n, &r)| *n += r);
                }
                if let PopulationModel::Lif(lif) = pop.model {
                    // `u` holds the current; the membrane potential replaces it in the record.
                    let (before, now) = rendition.u[p].as_mut_slice().split_at_mut(here.start);
                    let previous = if t == 0 {
                        None
                    } else {
                        Some(&before[here.start - batch * size..])
                    };
                    let spikes = &mut rendition.act[p].as_mut_slice()[here.clone()];
                    let refractory = &mut refractory[p];
                    let hold = (lif.refractory / dt).round() as u32;
                    let (tau, r) = (lif.tau_m, lif.resistance);
                    let conductance = &self.scratch_inputs[size * batch..2 * size * batch];
                    let driven = &self.scratch_inputs[2 * size * batch..3 * size * batch];
                    for k in 0..size * batch {
                        let v_then = previous.map_or(lif.v_rest, |v| v[k].f64());
                        let (i, g, ge) = (now[k].f64(), conductance[k].f64(), driven[k].f64());
                        let (v, spike) = if refractory[k] > 0 {
                            refractory[k] -= 1;
                            (lif.v_reset, false)
                        } else {
                            let leak = 1.0 + r * g;
                            let v_inf = (lif.v_rest + r * i + r * ge) / leak;
                            let v = v_inf + (v_then - v_inf) * (-dt * leak / tau).exp();
                            if v >= lif.v_threshold {
                                refractory[k] = hold;
                                (lif.v_reset, true)
                            } else {
                                (v, false)
                            }
                        };
                        now[k] = T::of(v);
                        spikes[k] = if spike { T::one() } else { T::zero() };
                    }
                    continue;
                }
                let f = &mut self.scratch[..size * batch];
                pop.activation.apply_columns(size, u, f);
                let rho = self.retention[p];
                let act = rendition.act[p].as_mut_slice();
                if rho == T::zero() || t == 0 {
                    // A leaky unit starts from rest: r(0) = (1 − ρ) f(u(0)).
                    let gain = T::one() - rho;
                    act[here]
                        .iter_mut()
                        .zip(f.iter())
                        .for_each(|(a, &f)| *a = gain * f);
                } else {
                    let (before, now) = act.split_at_mut(here.start);
                    let previous = &before[here.start - batch * size..];
                    let gain = T::one() - rho;
                    for ((a, &r), &f) in now[..batch * size].iter_mut().zip(previous).zip(f.iter()) {
                        *a = rho * r + gain * f;
                    }
                }
            }
        }
    }

    /// Each rendition's loss: the mean over its steps of the per-step loss.
    fn rendition_losses(&self, act: &DMatrix<T>, targets: &DMatrix<T>) -> Vec<T> {
        let steps = self.timing.steps;
        let batch = act.ncols() / steps;
        let mut losses = vec![T::zero(); batch];
        for (j, (a, y)) in act.column_iter().zip(targets.column_iter()).enumerate() {
            losses[j % batch] += self.loss.value(a.as_slice(), y.as_slice());
        }
        let per_step = T::one() / T::of(steps as f64);
        losses.iter_mut().for_each(|l| *l *= per_step);
        losses
    }

    /// Noise-free renditions of `inputs` (time-major); returns the output activity.
    pub fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T> {
        self.run(inputs, false);
        &self.clean.act[self.circuit.blueprint().output()]
    }

    /// Everything a rule with `requirements` needs for one update on `inputs` and `targets`
    /// (time-major, `steps · B` columns): clean renditions and their losses, noisy renditions
    /// and the signal, back-propagation through time; then the rule-facing copies.
    pub fn prepare(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        requirements: Requirements,
        always_backprop: bool,
    ) -> Result<(), String> {
        if requirements.weight_noise_std > 0.0
            || requirements.backprop_estimate
            || requirements.output_noise_only
        {
            return Err(
                "the trial engine perturbs nodes and back-propagates true errors; weight perturbation and REINFORCE run on static tasks only"
                    .into(),
            );
        }
        let differentiable = self.differentiable();
        if requirements.backprop && !differentiable {
            return Err("spiking populations have no gradient: back-propagation through time (SGD) needs rate populations".into());
        }
        let output = self.circuit.blueprint().output();
        self.run(inputs, false);
        self.clean_loss = self.rendition_losses(&self.clean.act[output], targets);
        self.signal.clear();
        if requirements.perturbation {
            self.run(inputs, true);
            let noisy = self.rendition_losses(&self.noisy.act[output], targets);
            self.signal = noisy.iter().zip(&self.clean_loss).map(|(&n, &c)| n - c).collect();
        }
        if requirements.backprop || always_backprop {
            self.backprop_through_time(targets);
        }
        self.lay_out_for_rules(
            requirements.perturbation,
            requirements.backprop || always_backprop,
        );
        Ok(())
    }

    /// `∂ℓ_b/∂u_p(t)` of the clean renditions, backwards in time and, within a step, in
    /// reverse topological order: `λ_p(t) = ∂ℓ/∂r_p(t)` collects the loss at the output, the
    /// leak's carry `ρ_p λ_p(t + 1)` and the projections out of `p`; `δ_p(t) = f'(u_p(t))ᵀ
    /// (1 − ρ_p) λ_p(t)`.
    fn backprop_through_time(&mut self, targets: &DMatrix<T>) {
        let bp = self.circuit.blueprint().clone();
        let steps = self.timing.steps;
        let columns = self.clean.act[bp.output()].ncols();
        let batch = columns / steps;
        let per_step = T::one() / T::of(steps as f64);
        for (p, pop) in bp.populations().iter().enumerate() {
            if self.error[p].shape() != (pop.size, columns) {
                self.error[p] = DMatrix::zeros(pop.size, columns);
            }
        }
        let mut carry: Vec<DMatrix<T>> = bp
            .populations()
            .iter()
            .map(|pop| DMatrix::zeros(pop.size, batch))
            .collect();
        for t in (0..steps).rev() {
            let mut lambda: Vec<DMatrix<T>> = carry.clone();
            for &p in bp.order().iter().rev() {
                if p == bp.input() || bp.populations()[p].model.is_source() {
                    continue;
                }
                let pop = &bp.populations()[p];
                if p == bp.output() {
                    let a = self.clean.act[p].columns(t * batch, batch);
                    let y = targets.columns(t * batch, batch);
                    let mut g = DMatrix::zeros(pop.size, batch);
                    for ((a, y), mut g) in a.column_iter().zip(y.column_iter()).zip(g.column_iter_mut()) {
                        let (a, y) = (a.into_owned(), y.into_owned());
                        self.loss.gradient(a.as_slice(), y.as_slice(), g.as_mut_slice());
                    }
                    lambda[p] += g * per_step;
                }
                for &q in bp.outgoing(p) {
                    // Activity at t reached the postsynaptic population `delay` steps later,
                    // whose error is known already (later steps are done first).
                    let spec = &bp.projections()[q];
                    let reached = t + self.delays[q];
                    if reached >= steps {
                        continue;
                    }
                    let delta = self.error[spec.post].columns(reached * batch, batch);
                    match &self.circuit.projections[q].sparse {
                        Some(s) => {
                            let delta = delta.into_owned();
                            s.structure.accumulate_transposed(
                                &s.values,
                                delta.as_slice(),
                                lambda[p].as_mut_slice(),
                            );
                        }
                        None => lambda[p].gemm_tr(
                            T::one(),
                            &self.circuit.projections[q].weights,
                            &delta,
                            T::one(),
                        ),
                    }
                }
                let rho = self.retention[p];
                let mut delta = &lambda[p] * (T::one() - rho);
                let u = self.clean.u[p].columns(t * batch, batch).into_owned();
                let mut f = DMatrix::zeros(pop.size, batch);
                pop.activation
                    .apply_columns(pop.size, u.as_slice(), f.as_mut_slice());
                pop.activation
                    .backprop_columns(pop.size, u.as_slice(), f.as_slice(), delta.as_mut_slice());
                self.error[p].columns_mut(t * batch, batch).copy_from(&delta);
                carry[p] = &lambda[p] * rho;
            }
        }
    }

    /// Rendition-major copies of what rules read: clean activity, gated noise, errors.
    fn lay_out_for_rules(&mut self, noise: bool, errors: bool) {
        let steps = self.timing.steps;
        let bp = self.circuit.blueprint().clone();
        let to_rendition_major = |m: &DMatrix<T>, out: &mut DMatrix<T>| {
            let batch = m.ncols() / steps;
            if out.shape() != m.shape() {
                *out = DMatrix::zeros(m.nrows(), m.ncols());
            }
            for t in 0..steps {
                for b in 0..batch {
                    out.column_mut(b * steps + t).copy_from(&m.column(t * batch + b));
                }
            }
        };
        for (p, pop) in bp.populations().iter().enumerate() {
            to_rendition_major(&self.clean.act[p], &mut self.rule_act[p]);
            if noise && self.perturbed[p] {
                let gated = match self.gate {
                    TraceGate::None => self.noise[p].clone(),
                    TraceGate::Clean => gate(&self.noise[p], &self.clean.u[p], pop.activation),
                    TraceGate::Noisy => gate(&self.noise[p], &self.noisy.u[p], pop.activation),
                };
                to_rendition_major(&gated, &mut self.rule_noise[p]);
            }
            if errors && p != bp.input() && !pop.model.is_source() {
                to_rendition_major(&self.error[p], &mut self.rule_error[p]);
            }
        }
        // A delayed projection's synapses pair postsynaptic activity at t with presynaptic
        // activity at t − delay.
        for (q, spec) in bp.projections().iter().enumerate() {
            if self.delays[q] > 0 && spec.plastic {
                let delayed = self.delayed(&self.clean.act[spec.pre], self.delays[q]);
                to_rendition_major(&delayed, &mut self.rule_delayed_pre[q]);
            }
        }
    }

    /// `m` (time-major) shifted `delay` steps later, zero before.
    fn delayed(&self, m: &DMatrix<T>, delay: usize) -> DMatrix<T> {
        let batch = m.ncols() / self.timing.steps;
        let mut out = DMatrix::zeros(m.nrows(), m.ncols());
        let shift = (delay * batch).min(m.ncols());
        out.columns_mut(shift, m.ncols() - shift)
            .copy_from(&m.columns(0, m.ncols() - shift));
        out
    }

    /// The gradient `∂(Σ_b ℓ_b)/∂W` of projection `q` after a step that back-propagated (zero
    /// where a sparse projection has no synapse).
    pub fn weight_gradient(&self, q: usize) -> DMatrix<T> {
        let spec = &self.circuit.blueprint().projections()[q];
        let pre = self.delayed(&self.clean.act[spec.pre], self.delays[q]);
        let gradient = &self.error[spec.post] * pre.transpose();
        match &self.circuit.projections[q].sparse {
            // Only the synapses that exist have a gradient.
            Some(s) => {
                let mut at_synapses = vec![T::zero(); s.structure.len()];
                s.structure.gather(&gradient, &mut at_synapses);
                let mut masked = DMatrix::zeros(0, 0);
                s.structure.scatter(&at_synapses, &mut masked);
                masked
            }
            None => gradient,
        }
    }

    /// Hands the prepared step to `rule`, then runs `post_updates` in order.
    pub fn apply_rule(
        &mut self,
        rule: &mut dyn LearningRule<T>,
        post_updates: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<(), RuleError> {
        let requirements = rule.requirements();
        let bp = self.circuit.blueprint().clone();
        let steps = self.timing.steps;
        let projections = bp
            .projections()
            .iter()
            .enumerate()
            .zip(self.circuit.projections.iter_mut())
            .filter(|((_, spec), _)| spec.plastic)
            .map(|((q, spec), state)| {
                let post_pop = &bp.populations()[spec.post];
                let noisy = requirements.perturbation && self.perturbed[spec.post];
                ProjectionContext {
                    name: &spec.name,
                    pre: if self.delays[q] > 0 {
                        &self.rule_delayed_pre[q]
                    } else {
                        &self.rule_act[spec.pre]
                    },
                    post: &self.rule_act[spec.post],
                    columns_per_sample: steps,
                    post_noise: noisy.then_some(&self.rule_noise[spec.post]),
                    noise_std: T::of(noise_scale(post_pop)),
                    post_error: requirements.backprop.then_some(&self.rule_error[spec.post]),
                    weight_noise: None,
                    state,
                }
            })
            .collect();
        let signal: &[T] = if requirements.perturbation {
            &self.signal
        } else {
            &[]
        };
        let mut context = RuleContext {
            signal,
            loss: &self.clean_loss,
            projections,
        };
        rule.update(&mut context)?;
        self.circuit.apply_post_updates(post_updates)
    }

    /// One update: prepare what the rule needs, then apply it. Returns the mean clean loss
    /// of the renditions.
    pub fn step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post_updates: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<f64, RuleError> {
        self.prepare(inputs, targets, rule.requirements(), false)
            .map_err(|message| RuleError::Failed {
                rule: rule.name().to_string(),
                message,
            })?;
        let loss = self.clean_loss.iter().map(|l| l.f64()).sum::<f64>() / self.clean_loss.len() as f64;
        self.apply_rule(rule, post_updates)?;
        Ok(loss)
    }
}

/// The σ a rule divides by: the population's intrinsic noise std, or 1 when its only
/// perturbation comes from noise sources (whose scale the learning rate then absorbs).
fn noise_scale(pop: &crate::Population) -> f64 {
    match pop.noise.std() {
        std if std > 0.0 => std,
        _ => 1.0,
    }
}

/// Whether population `p` is perturbed: intrinsic noise, or a projection from a noise source.
pub fn perturbed(bp: &crate::CircuitBlueprint, p: usize) -> bool {
    bp.populations()[p].noise.std() > 0.0
        || bp
            .incoming(p)
            .iter()
            .any(|&q| bp.populations()[bp.projections()[q].pre].model.is_source())
}

/// `n ⊙ f'(u)`, column by column (through the activation's Jacobian, so a softmax gates by
/// its full Jacobian).
fn gate<T: Real>(noise: &DMatrix<T>, u: &DMatrix<T>, activation: crate::Activation) -> DMatrix<T> {
    let mut f = DMatrix::zeros(u.nrows(), u.ncols());
    activation.apply_columns(u.nrows(), u.as_slice(), f.as_mut_slice());
    let mut gated = noise.clone();
    activation.backprop_columns(u.nrows(), u.as_slice(), f.as_slice(), gated.as_mut_slice());
    gated
}
