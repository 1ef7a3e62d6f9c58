//! The trial engine: circuits that run in time, rendition by rendition.
//!
//! The engine (this file: renditions, back-propagation through time, what rules see) and one
//! rendition's dynamics and noise ([`dynamics`]) are split by concern.
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
//! # Layout and threads
//! Inputs, targets and everything the engine shows are *rendition-major*: column
//! `b·steps + t` is step `t` of rendition `b`, so each rendition is a contiguous block of
//! columns. Noise (Gaussian, Ornstein–Uhlenbeck, `Poisson` spikes) is drawn first, population
//! by population from its named stream (`noise/<population>`), step by step and rendition by
//! rendition; the renditions then run, and back-propagate, independently on the threads of
//! the current rayon pool. Results therefore do not depend on the thread count.

mod dynamics;

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::circuit::{Circuit, CircuitBlueprint};
use crate::rule::{
    LearningRule, PostUpdate, Postsynaptic, Presynaptic, ProjectionContext, Requirements, RuleContext,
    RuleError,
};
use crate::{Geometry, Loss, Noise, PopulationModel, Real, SeedStreams, StreamRng, Synapse};
use dynamics::{Columns, Dynamics, blocks, draw_noise, project, project_back};

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

/// Activity of every population over one set of renditions, rendition-major.
#[derive(Debug, Clone, Default)]
struct Rendition<T: Real> {
    /// Activity.
    act: Vec<DMatrix<T>>,
    /// Pre-activation `u` (summed input plus noise), or a `Lif` population's membrane
    /// potential.
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
    /// The perturbation each population received in the noisy renditions.
    noise: Vec<DMatrix<T>>,
    /// `∂ℓ/∂u` after back-propagation through time.
    error: Vec<DMatrix<T>>,
    /// The noise rules see, gated by `f'` (unused with [`TraceGate::None`]).
    gated_noise: Vec<DMatrix<T>>,
    /// Presynaptic activity of delayed plastic projections, delayed.
    delayed_pre: Vec<DMatrix<T>>,
    clean_loss: Vec<T>,
    signal: Vec<T>,
}

/// Why a circuit cannot run in the trial engine with steps of `dt` ms.
pub fn check_circuit(bp: &CircuitBlueprint, dt: f64) -> Result<(), String> {
    for pop in bp.populations() {
        if pop.model.spike_probability(dt) > 1.0 {
            return Err(format!(
                "population `{}` fires at {} Hz, more than one spike per step of {dt} ms: lower its rate or dt",
                pop.name,
                pop.model.spike_probability(dt) * 1000.0 / dt
            ));
        }
    }
    // Exponential integration is stable for any step, but a step longer than a time constant
    // skips the dynamics it sets.
    let too_long = |what: String, tau: f64| -> Result<(), String> {
        if dt > tau {
            Err(format!(
                "{what} has a time constant of {tau} ms, shorter than the step of {dt} ms: its dynamics would be lost between steps; use dt <= {tau} ms"
            ))
        } else {
            Ok(())
        }
    };
    for pop in bp.populations() {
        match pop.model {
            PopulationModel::LeakyRate { tau } => too_long(format!("population `{}`", pop.name), tau)?,
            PopulationModel::Lif(lif) => too_long(format!("population `{}`", pop.name), lif.tau_m)?,
            _ => {}
        }
        if let Noise::OrnsteinUhlenbeck { tau, .. } = pop.noise {
            too_long(format!("the noise of population `{}`", pop.name), tau)?;
        }
    }
    for spec in bp.projections() {
        if let Synapse::Current { tau } | Synapse::Conductance { tau, .. } = spec.synapse {
            too_long(format!("the synapse of projection `{}`", spec.name), tau)?;
        }
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
    /// An engine for `circuit` (dense and sparse projections only, see [`check_circuit`]).
    pub fn new(circuit: Circuit<T>, streams: &SeedStreams, timing: TrialTiming, gate: TraceGate) -> Self {
        let bp = circuit.blueprint();
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
        let perturbed = (0..n).map(|p| perturbed(bp, p)).collect();
        let empty = |count| vec![DMatrix::zeros(0, 0); count];
        let projections = bp.projections().len();
        Self {
            timing,
            gate,
            loss: Loss::SquaredError,
            retention,
            delays,
            perturbed,
            noise_streams,
            clean: Rendition {
                act: empty(n),
                u: empty(n),
            },
            noisy: Rendition {
                act: empty(n),
                u: empty(n),
            },
            noise: empty(n),
            error: empty(n),
            gated_noise: empty(n),
            delayed_pre: empty(projections),
            clean_loss: Vec::new(),
            signal: Vec::new(),
            circuit,
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

    /// Clean activity of population `index` in the last noise-free renditions,
    /// rendition-major.
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

    /// The state of population `index` in the last noise-free renditions, rendition-major:
    /// its summed input `u` for rate populations, its membrane potential (mV) for `Lif`
    /// populations.
    pub fn state(&self, index: usize) -> &DMatrix<T> {
        &self.clean.u[index]
    }

    /// Activity of population `index` in the last noisy renditions, rendition-major (the
    /// spikes that happened, for spiking and `Poisson` populations); empty before any.
    pub fn noisy_activity(&self, index: usize) -> &DMatrix<T> {
        &self.noisy.act[index]
    }

    /// The state of population `index` in the last noisy renditions, rendition-major (see
    /// [`TrialEngine::state`]); empty before any.
    pub fn noisy_state(&self, index: usize) -> &DMatrix<T> {
        &self.noisy.u[index]
    }

    /// The perturbation population `index` received in the last noisy renditions,
    /// rendition-major: its intrinsic noise plus what noise sources delivered beyond their
    /// mean.
    pub fn received_noise(&self, index: usize) -> &DMatrix<T> {
        &self.noise[index]
    }

    /// `∂ℓ/∂u` of population `index` after the last back-propagation through time,
    /// rendition-major.
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

    /// Renditions in `inputs` (`input_size × B·steps`).
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
        let TrialTiming { steps, dt } = self.timing;
        let columns = steps * batch;
        let bp = self.circuit.blueprint();
        let rendition = if noisy { &mut self.noisy } else { &mut self.clean };
        for (p, pop) in bp.populations().iter().enumerate() {
            for m in [&mut rendition.act[p], &mut rendition.u[p]] {
                if m.shape() != (pop.size, columns) {
                    *m = DMatrix::zeros(pop.size, columns);
                }
            }
            let noise_shape = if noisy && self.perturbed[p] {
                (pop.size, columns)
            } else {
                (0, 0)
            };
            if noisy && self.noise[p].shape() != noise_shape {
                self.noise[p] = DMatrix::zeros(noise_shape.0, noise_shape.1);
            }
        }
        // Several input populations take the task's input rows in definition order.
        let mut first_row = 0;
        for &p in bp.inputs() {
            let size = bp.populations()[p].size;
            rendition.act[p].copy_from(&inputs.rows(first_row, size));
            first_row += size;
        }
        debug_assert_eq!(
            first_row,
            inputs.nrows(),
            "the task's input rows fill the input populations"
        );
        for (p, pop) in bp.populations().iter().enumerate() {
            if noisy {
                draw_noise(
                    pop,
                    &mut self.noise_streams[p],
                    steps,
                    batch,
                    dt,
                    &mut rendition.act[p],
                    &mut self.noise[p],
                );
            } else if pop.model.is_source() {
                rendition.act[p].fill(T::of(pop.model.spike_probability(dt)));
            }
        }
        let mean_drive: Vec<Option<Vec<T>>> = bp
            .projections()
            .iter()
            .enumerate()
            .map(|(q, spec)| {
                let source = &bp.populations()[spec.pre];
                (noisy && source.model.is_source()).then(|| {
                    let mean = vec![T::of(source.model.spike_probability(dt)); source.size];
                    let mut drive = vec![T::zero(); bp.populations()[spec.post].size];
                    project(&self.circuit.projections[q], &mean, &mut drive);
                    drive
                })
            })
            .collect();
        let dynamics = Dynamics {
            bp,
            projections: &self.circuit.projections,
            delays: &self.delays,
            retention: &self.retention,
            perturbed: &self.perturbed,
            dt,
            steps,
            noisy,
            mean_drive: &mean_drive,
        };
        let act = blocks(&mut rendition.act, steps, batch);
        let u = blocks(&mut rendition.u, steps, batch);
        let noise = if noisy {
            blocks(&mut self.noise, steps, batch)
        } else {
            (0..batch).map(|_| Vec::new()).collect()
        };
        act.into_par_iter()
            .zip(u)
            .zip(noise)
            .for_each(|((act, u), noise)| dynamics.run(Columns { act, u, noise }));
    }

    /// Each rendition's loss: the mean over its steps of the per-step loss.
    fn rendition_losses(&self, act: &DMatrix<T>, targets: &DMatrix<T>) -> Vec<T> {
        let steps = self.timing.steps;
        let per_step = T::one() / T::of(steps as f64);
        (0..act.ncols() / steps)
            .map(|b| {
                (b * steps..(b + 1) * steps)
                    .map(|j| {
                        self.loss
                            .value(act.column(j).as_slice(), targets.column(j).as_slice())
                    })
                    .sum::<T>()
                    * per_step
            })
            .collect()
    }

    /// Noise-free renditions of `inputs` (rendition-major); returns the output activity.
    pub fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T> {
        self.run(inputs, false);
        &self.clean.act[self.circuit.blueprint().output()]
    }

    /// Everything a rule with `requirements` needs for one update on `inputs` and `targets`
    /// (rendition-major, `B · steps` columns): clean renditions and their losses, noisy
    /// renditions and the signal, back-propagation through time; then what rules read.
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
        self.lay_out_for_rules(requirements.perturbation);
        Ok(())
    }

    /// `∂ℓ_b/∂u_p(t)` of the clean renditions, each rendition on its own thread, backwards in
    /// time and, within a step, in reverse topological order: `λ_p(t) = ∂ℓ/∂r_p(t)` collects
    /// the loss at the output, the leak's carry `ρ_p λ_p(t + 1)` and the projections out of
    /// `p`; `δ_p(t) = f'(u_p(t))ᵀ (1 − ρ_p) λ_p(t)`.
    fn backprop_through_time(&mut self, targets: &DMatrix<T>) {
        let bp = self.circuit.blueprint();
        let steps = self.timing.steps;
        let columns = self.clean.act[bp.output()].ncols();
        let batch = columns / steps;
        for (p, pop) in bp.populations().iter().enumerate() {
            if self.error[p].shape() != (pop.size, columns) {
                self.error[p] = DMatrix::zeros(pop.size, columns);
            }
        }
        let outputs = bp.populations()[bp.output()].size;
        let errors = blocks(&mut self.error, steps, batch);
        let (clean, projections) = (&self.clean, &self.circuit.projections);
        let (retention, delays, loss) = (&self.retention, &self.delays, self.loss);
        errors.into_par_iter().enumerate().for_each(|(b, mut error)| {
            fn block<T: Real>(m: &DMatrix<T>, b: usize, len: usize) -> &[T] {
                &m.as_slice()[b * len..(b + 1) * len]
            }
            let per_step = T::one() / T::of(steps as f64);
            let widest = bp.populations().iter().map(|p| p.size).max().unwrap_or(0);
            let mut carry: Vec<Vec<T>> = bp.populations().iter().map(|p| vec![T::zero(); p.size]).collect();
            let mut lambda = vec![T::zero(); widest];
            let mut f = vec![T::zero(); widest];
            let mut gradient = vec![T::zero(); outputs];
            let targets = block(targets, b, steps * outputs);
            for t in (0..steps).rev() {
                for &p in bp.order().iter().rev() {
                    let pop = &bp.populations()[p];
                    if bp.is_input(p) || pop.model.is_source() {
                        continue;
                    }
                    let size = pop.size;
                    let here = t * size..(t + 1) * size;
                    let lambda = &mut lambda[..size];
                    lambda.copy_from_slice(&carry[p]);
                    if p == bp.output() {
                        let a = &block(&clean.act[p], b, steps * size)[here.clone()];
                        loss.gradient(a, &targets[here.clone()], &mut gradient);
                        lambda
                            .iter_mut()
                            .zip(&gradient)
                            .for_each(|(l, &g)| *l += g * per_step);
                    }
                    for &q in bp.outgoing(p) {
                        // Activity at t reached the postsynaptic population `delay` steps
                        // later, whose error is known already (later steps are done first).
                        let spec = &bp.projections()[q];
                        let reached = t + delays[q];
                        if reached >= steps {
                            continue;
                        }
                        let post_size = bp.populations()[spec.post].size;
                        let delta = &error[spec.post][reached * post_size..(reached + 1) * post_size];
                        project_back(&projections[q], delta, lambda);
                    }
                    let rho = retention[p];
                    let u = &block(&clean.u[p], b, steps * size)[here.clone()];
                    let f = &mut f[..size];
                    pop.activation.apply_columns(size, u, f);
                    let delta = &mut error[p][here];
                    delta
                        .iter_mut()
                        .zip(lambda.iter())
                        .for_each(|(d, &l)| *d = l * (T::one() - rho));
                    pop.activation.backprop_columns(size, u, f, delta);
                    carry[p]
                        .iter_mut()
                        .zip(lambda.iter())
                        .for_each(|(c, &l)| *c = l * rho);
                }
            }
        });
    }

    /// What rules read beyond the renditions themselves: the gated noise and the delayed
    /// presynaptic activity of delayed plastic projections.
    fn lay_out_for_rules(&mut self, noise: bool) {
        let bp = self.circuit.blueprint();
        if noise && self.gate != TraceGate::None {
            for (p, pop) in bp.populations().iter().enumerate() {
                if self.perturbed[p] {
                    let u = match self.gate {
                        TraceGate::Clean => &self.clean.u[p],
                        _ => &self.noisy.u[p],
                    };
                    self.gated_noise[p] = gate(&self.noise[p], u, pop.activation);
                }
            }
        }
        // A delayed projection's synapses pair postsynaptic activity at t with presynaptic
        // activity at t − delay.
        for (q, spec) in bp.projections().iter().enumerate() {
            if self.delays[q] > 0 && spec.plastic {
                self.delayed_pre[q] = self.delayed(&self.clean.act[spec.pre], self.delays[q]);
            }
        }
    }

    /// `m` shifted `delay` steps later within each rendition, zero before.
    fn delayed(&self, m: &DMatrix<T>, delay: usize) -> DMatrix<T> {
        let steps = self.timing.steps;
        let mut out = DMatrix::zeros(m.nrows(), m.ncols());
        let shift = delay.min(steps);
        for b in 0..m.ncols() / steps {
            out.columns_mut(b * steps + shift, steps - shift)
                .copy_from(&m.columns(b * steps, steps - shift));
        }
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
        let steps = self.timing.steps;
        // The blueprint and the projections' states are borrowed apart: no copy per update.
        let Circuit {
            blueprint: bp,
            projections: states,
        } = &mut self.circuit;
        let noise = if self.gate == TraceGate::None {
            &self.noise
        } else {
            &self.gated_noise
        };
        let projections = bp
            .projections()
            .iter()
            .enumerate()
            .zip(states.iter_mut())
            .filter(|((_, spec), _)| spec.plastic)
            .map(|((q, spec), state)| {
                let post_pop = &bp.populations()[spec.post];
                let noisy = requirements.perturbation && self.perturbed[spec.post];
                ProjectionContext {
                    name: &spec.name,
                    pre: Presynaptic::Activity(if self.delays[q] > 0 {
                        &self.delayed_pre[q]
                    } else {
                        &self.clean.act[spec.pre]
                    }),
                    post: Postsynaptic::Activity(&self.clean.act[spec.post]),
                    columns_per_sample: steps,
                    post_noise: noisy.then_some(&noise[spec.post]),
                    noise_std: T::of(noise_scale(post_pop)),
                    post_error: requirements.backprop.then_some(&self.error[spec.post]),
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
