//! One run: build the circuit, task and rule from a [`RunPlan`], train, and emit records.

use std::sync::atomic::{AtomicBool, Ordering};

use nalgebra::DMatrix;
use npsim_core::analysis::cosine;
use npsim_core::circuit::lookahead::{LOOKAHEAD_STEPS, SamplesAhead};
use npsim_core::{
    Attr, Circuit, Engine, Geometry, LearningRule, Measure, PostUpdate, Precision, Real, RuleError,
    SeedStreams, TrialEngine,
};
use npsim_models::{Task, TheorySettings};
use npsim_rules::Baseline;
use npsim_rules::node_perturbation::NodePerturbationConfig;

use crate::recorder::{ActivityBlock, WeightData, WeightMatrix};
use crate::scenario::{RecordPlan, RuleConfig, RunPlan, TraceVariable};

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// All steps done.
    Completed,
    /// Stopped because loss or weights became non-finite or the error grew too large.
    Diverged {
        /// The step at which it was detected.
        step: u64,
        /// What was detected.
        reason: String,
    },
    /// Stopped by the user (Ctrl-C, SIGTERM) after this step.
    Interrupted {
        /// The last update done.
        step: u64,
    },
    /// A rule failed.
    Failed(String),
}

impl RunStatus {
    /// The `status` attribute.
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Diverged { .. } => "diverged",
            RunStatus::Interrupted { .. } => "interrupted",
            RunStatus::Failed(_) => "failed",
        }
    }

    /// Extra attributes describing the ending.
    pub fn attributes(&self) -> Vec<(String, Attr)> {
        match self {
            RunStatus::Diverged { step, reason } => vec![
                ("diverged_at_step".into(), Attr::Int(*step as i64)),
                ("diverged_reason".into(), Attr::Text(reason.clone())),
            ],
            RunStatus::Failed(message) => vec![("error".into(), Attr::Text(message.clone()))],
            RunStatus::Interrupted { step } => vec![("interrupted_at_step".into(), Attr::Int(*step as i64))],
            RunStatus::Completed => Vec::new(),
        }
    }
}

/// What a run sends to the recorder, in order.
#[derive(Debug)]
pub enum Event {
    /// One row of metrics (in [`metric_names`] order).
    Row {
        /// Run index.
        run: usize,
        /// Values.
        row: Vec<f64>,
    },
    /// Flush this run's metrics to disk.
    Sync {
        /// Run index.
        run: usize,
        /// Steps done so far.
        steps_done: u64,
    },
    /// Spikes and trace samples of a recorded update, one block per group of
    /// [`activity_groups`].
    Activity {
        /// Run index.
        run: usize,
        /// The events.
        blocks: Vec<ActivityBlock>,
    },
    /// Steps advanced (for the progress bar).
    Progress(u64),
    /// The run ended.
    Finished {
        /// Run index.
        run: usize,
        /// The outcome.
        outcome: Box<RunOutcome>,
    },
}

/// The end of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// Steps done.
    pub steps_done: u64,
    /// The last recorded metrics row.
    pub last_row: Vec<f64>,
    /// Final weights.
    pub weights: Vec<WeightMatrix>,
    /// What the task records at the end (e.g. the song beside its tutor).
    pub recordings: Vec<WeightMatrix>,
}

/// The groups a run's recorded activity goes in, in the order of [`Event::Activity`]'s
/// blocks: `spikes/<population>` (no value), then `traces/<population>/<variable>`.
pub fn activity_groups(record: &RecordPlan) -> Vec<(String, bool)> {
    record
        .spikes
        .iter()
        .map(|(_, name)| (format!("spikes/{name}"), false))
        .chain(record.traces.iter().map(|t| (t.path(), true)))
        .collect()
}

/// Metric names of a plan, `step` first, then the task's, then `train_loss` (and
/// `train_accuracy` for classification), then the cosines.
pub fn metric_names(plan: &RunPlan) -> Vec<String> {
    let spec = plan.task.metrics();
    let mut names = vec!["step".to_string()];
    names.extend(spec.names.iter().cloned());
    names.push("train_loss".into());
    if spec.classification {
        names.push("train_accuracy".into());
    }
    if plan.task.trial().is_some() {
        names.push("reward".into());
        names.push("baseline".into());
    }
    names.extend(
        plastic(plan)
            .iter()
            .map(|&q| format!("cosine_{}", plan.blueprint.projections()[q].name)),
    );
    names
}

/// Samples of a batch whose largest output is their target class (one-hot targets).
fn correct_predictions<T: Real>(outputs: &DMatrix<T>, targets: &DMatrix<T>) -> usize {
    outputs
        .column_iter()
        .zip(targets.column_iter())
        .filter(|(y, t)| {
            let predicted = y
                .iter()
                .enumerate()
                .fold((0, y[0]), |best, (k, &v)| if v > best.1 { (k, v) } else { best })
                .0;
            t[predicted] == T::one()
        })
        .count()
}

fn plastic(plan: &RunPlan) -> Vec<usize> {
    plan.blueprint
        .projections()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.plastic)
        .map(|(q, _)| q)
        .collect()
}

/// What the training loop needs from an engine: the batch engine for static tasks, the
/// trial engine for tasks in time.
trait Trainer<T: Real>: Measure<T> {
    /// One update; returns the mean clean loss of the batch.
    fn train_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<f64, RuleError>;

    /// One update that also measures, for each plastic projection, the cosine between the
    /// weight change the rule made and the gradient-descent update on the same batch (paper
    /// Fig. 4A; back-propagation through time for the trial engine). It performs the same
    /// arithmetic as [`Trainer::train_step`], so measuring does not change the run.
    fn diagnostic_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
        plastic: &[usize],
    ) -> Result<(f64, Vec<f64>), RuleError>;

    /// Announces the inputs of the next per-sample steps (see [`Engine::look_ahead`]); engines
    /// that cannot use them ignore them.
    fn look_ahead(&mut self, _inputs: &DMatrix<T>) {}

    /// The mean loss of the last update's noisy renditions (trial engine with perturbation).
    fn noisy_loss(&self) -> Option<f64> {
        None
    }

    /// The spikes and trace samples `record` asks for, from the last update's renditions
    /// (numbered from `first_rendition`), one block per group of [`activity_groups`].
    fn recorded_activity(&self, _record: &RecordPlan, _first_rendition: u64) -> Vec<ActivityBlock> {
        Vec::new()
    }
}

fn widen<T: Real>(m: &DMatrix<T>) -> DMatrix<f64> {
    m.map(|v| v.f64())
}

/// The cosines between each plastic projection's change (now minus `before`) and `descent`.
fn cosines<T: Real>(
    circuit: &mut Circuit<T>,
    plastic: &[usize],
    descent: &[DMatrix<f64>],
    before: &[DMatrix<f64>],
) -> Vec<f64> {
    plastic
        .iter()
        .zip(descent.iter().zip(before))
        .map(|(&q, (g, w0))| cosine(&(widen(circuit.weights(q)) - w0), g))
        .collect()
}

impl<T: Real> Trainer<T> for Engine<T> {
    fn look_ahead(&mut self, inputs: &DMatrix<T>) {
        Engine::look_ahead(self, inputs);
    }

    fn train_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<f64, RuleError> {
        self.step(inputs, targets, rule, post)
    }

    fn diagnostic_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
        plastic: &[usize],
    ) -> Result<(f64, Vec<f64>), RuleError> {
        let requirements = rule.requirements();
        self.forward(inputs);
        let loss = self.loss(targets).iter().map(|l| l.f64()).sum::<f64>() / inputs.ncols() as f64;
        // The true gradient first (it draws no noise), then what the rule needs, as in
        // `Engine::step`.
        self.backprop(targets);
        let descent: Vec<DMatrix<f64>> = plastic
            .iter()
            .map(|&q| -widen(&self.weight_gradient(q)))
            .collect();
        let before: Vec<DMatrix<f64>> = plastic
            .iter()
            .map(|&q| widen(self.circuit_mut().weights(q)))
            .collect();
        self.prepare(targets, requirements, false);
        self.apply_rule(rule, post)?;
        Ok((loss, cosines(self.circuit_mut(), plastic, &descent, &before)))
    }
}

impl<T: Real> Trainer<T> for TrialEngine<T> {
    fn train_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<f64, RuleError> {
        self.step(inputs, targets, rule, post)
    }

    fn diagnostic_step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post: &mut [Box<dyn PostUpdate<T>>],
        plastic: &[usize],
    ) -> Result<(f64, Vec<f64>), RuleError> {
        self.prepare(inputs, targets, rule.requirements(), true)
            .map_err(|message| RuleError::Failed {
                rule: rule.name().to_string(),
                message,
            })?;
        let loss = self.losses().iter().map(|l| l.f64()).sum::<f64>() / self.losses().len() as f64;
        if !self.differentiable() {
            // Spiking circuits have no gradient to compare with.
            self.apply_rule(rule, post)?;
            return Ok((loss, vec![f64::NAN; plastic.len()]));
        }
        let descent: Vec<DMatrix<f64>> = plastic
            .iter()
            .map(|&q| -widen(&self.weight_gradient(q)))
            .collect();
        let before: Vec<DMatrix<f64>> = plastic
            .iter()
            .map(|&q| widen(self.circuit_mut().weights(q)))
            .collect();
        self.apply_rule(rule, post)?;
        Ok((loss, cosines(self.circuit_mut(), plastic, &descent, &before)))
    }

    fn recorded_activity(&self, record: &RecordPlan, first_rendition: u64) -> Vec<ActivityBlock> {
        // The renditions that made the update: the noisy ones when there were any.
        let noisy = !self.signal().is_empty();
        let steps = self.timing().steps;
        let dt = record.dt;
        let mut blocks = Vec::new();
        for &(p, _) in &record.spikes {
            let act = if noisy {
                self.noisy_activity(p)
            } else {
                self.activity(p)
            };
            let mut block = ActivityBlock::default();
            for (j, column) in act.column_iter().enumerate() {
                for (unit, _) in column.iter().enumerate().filter(|(_, a)| **a != T::zero()) {
                    block.time.push((j % steps) as f64 * dt);
                    block.unit.push(unit as u32);
                    block.rendition.push(first_rendition + (j / steps) as u64);
                }
            }
            blocks.push(block);
        }
        for trace in &record.traces {
            let p = trace.population;
            let values = match (trace.variable, noisy) {
                (TraceVariable::State, true) => Some(self.noisy_state(p)),
                (TraceVariable::State, false) => Some(self.state(p)),
                (TraceVariable::Activity, true) => Some(self.noisy_activity(p)),
                (TraceVariable::Activity, false) => Some(self.activity(p)),
                (TraceVariable::Noise, true) => Some(self.received_noise(p)).filter(|m| !m.is_empty()),
                (TraceVariable::Noise, false) => None,
            };
            let columns = self.activity(p).ncols();
            let mut block = ActivityBlock::default();
            for j in (0..columns).filter(|j| (j % steps).is_multiple_of(record.trace_every)) {
                for &unit in &trace.units {
                    block.time.push((j % steps) as f64 * dt);
                    block.unit.push(unit as u32);
                    block.rendition.push(first_rendition + (j / steps) as u64);
                    block.value.push(values.map_or(0.0, |m| m[(unit, j)].f64()));
                }
            }
            blocks.push(block);
        }
        blocks
    }

    fn noisy_loss(&self) -> Option<f64> {
        let signal = self.signal();
        (!signal.is_empty()).then(|| {
            self.losses()
                .iter()
                .zip(signal)
                .map(|(l, s)| (*l + *s).f64())
                .sum::<f64>()
                / signal.len() as f64
        })
    }
}

/// Index in [`metric_names`] of the task's error metric (the one that defines divergence).
pub fn error_column(plan: &RunPlan) -> usize {
    1 + plan.task.metrics().error
}

/// The mean-field theory curves for a plan, `step` first: NP runs with the paper's clean
/// baseline (the paper's model) and SGD runs (its counterpart, `npsim_models::sgd_theory`).
pub fn theory_curves(plan: &RunPlan) -> Vec<(String, Vec<f64>)> {
    let c = &plan.run.config;
    let Some(basis) = plan.task.theory().filter(|_| c.theory) else {
        return Vec::new();
    };
    let settings = TheorySettings {
        dims: basis.dims,
        init_scale: basis.init_scale,
        learning_rate: plan.learning_rate().unwrap_or(f64::NAN),
        teacher_noise_var: basis.teacher_noise_var,
    };
    match c.rule {
        RuleConfig::NodePerturbation(NodePerturbationConfig {
            baseline: Baseline::Clean,
            ..
        }) => settings.curves(plan.steps, plan.record_every),
        RuleConfig::Sgd(_) => settings.sgd_curves(plan.steps, plan.record_every),
        _ => Vec::new(),
    }
}

fn failed_before_start(run: usize, message: String) -> Event {
    let outcome = RunOutcome {
        status: RunStatus::Failed(message),
        steps_done: 0,
        last_row: Vec::new(),
        weights: Vec::new(),
        recordings: Vec::new(),
    };
    Event::Finished {
        run,
        outcome: Box::new(outcome),
    }
}

pub(crate) fn build_rule<T: Real>(plan: &RunPlan) -> Result<Box<dyn LearningRule<T>>, String> {
    let rule = &plan.run.config.rule;
    if let Some(config) = rule.plugin() {
        let library = plan.rule.plugin.as_ref().ok_or("the plugin was not loaded")?;
        return Ok(Box::new(
            library
                .instantiate::<T>(&config.name, &config.params)
                .map_err(|e| e.to_string())?,
        ));
    }
    rule.build_builtin::<T>(plan.learning_rate().unwrap_or(f64::NAN))
        .ok_or_else(|| "not a built-in rule".to_string())
}

pub(crate) fn build_post_updates<T: Real>(plan: &RunPlan) -> Vec<Box<dyn PostUpdate<T>>> {
    plan.run
        .config
        .post_update
        .iter()
        .map(|step| step.build::<T>())
        .collect()
}

fn final_weights<T: Real>(circuit: &mut Circuit<T>) -> Vec<WeightMatrix> {
    circuit.flush();
    let specs = circuit.blueprint().projections().to_vec();
    specs
        .iter()
        .enumerate()
        // Pooling has no weights to record.
        .filter(|(_, spec)| !matches!(spec.geometry, Geometry::Pool(_)))
        .map(|(q, spec)| {
            let w = circuit.weights(q);
            let row_major = w.transpose();
            let data = if T::PRECISION == Precision::F32 {
                WeightData::F32(row_major.iter().map(|v| v.f64() as f32).collect())
            } else {
                WeightData::F64(row_major.iter().map(|v| v.f64()).collect())
            };
            WeightMatrix {
                name: spec.name.clone(),
                rows: w.nrows(),
                cols: w.ncols(),
                data,
            }
        })
        .collect()
}

/// Trains one run, sending its records to `emit`. Never panics on divergence: a run whose
/// loss or weights become non-finite, or whose error exceeds `divergence_factor` times its
/// initial value, ends with [`RunStatus::Diverged`].
pub fn simulate<T: Real>(plan: &RunPlan, stop: &AtomicBool, emit: &mut dyn FnMut(Event)) {
    let c = &plan.run.config;
    let streams = SeedStreams::new(c.seed);
    let circuit = Circuit::<T>::instantiate(&plan.blueprint, &streams);
    match plan.task.trial() {
        None => {
            let mut engine = Engine::new(circuit, &streams);
            engine.set_loss(c.loss);
            train(plan, engine, 1, &streams, stop, emit);
        }
        Some(setup) => {
            let mut engine = TrialEngine::new(circuit, &streams, setup.timing, setup.gate);
            engine.set_loss(c.loss);
            train(plan, engine, setup.timing.steps, &streams, stop, emit);
        }
    }
}

/// The training loop, for either engine; `columns_per_sample` is 1 for static tasks and the
/// steps of a rendition for tasks in time.
fn train<T: Real, E: Trainer<T>>(
    plan: &RunPlan,
    mut engine: E,
    columns_per_sample: usize,
    streams: &SeedStreams,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Event),
) {
    let run = plan.run.index;
    let c = &plan.run.config;
    let mut task = plan.task.build::<T>(streams);
    let mut rule = match build_rule::<T>(plan) {
        Ok(rule) => rule,
        Err(message) => return emit(failed_before_start(run, message)),
    };
    let mut post = build_post_updates::<T>(plan);
    let finish = |engine: &mut E,
                  task: &mut dyn Task<T>,
                  status: RunStatus,
                  steps_done: u64,
                  last_row: Vec<f64>,
                  emit: &mut dyn FnMut(Event)| {
        let weights = final_weights(engine.circuit_mut());
        let recordings = task
            .recordings(engine)
            .into_iter()
            .map(|(name, rows, cols, data)| WeightMatrix {
                name,
                rows,
                cols,
                data: WeightData::F64(data),
            })
            .collect();
        emit(Event::Finished {
            run,
            outcome: Box::new(RunOutcome {
                status,
                steps_done,
                last_row,
                weights,
                recordings,
            }),
        });
    };
    {
        let mut weights = engine.circuit_mut().plastic_weights();
        for step in post.iter_mut() {
            if let Err(e) = step.initialise(&mut weights) {
                drop(weights);
                return finish(
                    &mut engine,
                    task.as_mut(),
                    RunStatus::Failed(e.to_string()),
                    0,
                    Vec::new(),
                    emit,
                );
            }
        }
    }
    let batch = c.train.batch_size;
    let mut inputs = DMatrix::<T>::zeros(task.input_size(), batch * columns_per_sample);
    let mut targets = DMatrix::<T>::zeros(task.output_size(), batch * columns_per_sample);
    let spec = plan.task.metrics();
    let error_index = spec.error;
    let classification = spec.classification;
    let in_time = plan.task.trial().is_some();
    let output = plan.blueprint.output();
    // After the task's metrics: the training loss, then the accuracy (classification) or the
    // reward of the noisy renditions and the rule's baseline as a reward (tasks in time), each
    // over the record interval.
    let record = |engine: &mut E, task: &mut dyn Task<T>, step: u64, train: (f64, f64, f64, f64)| {
        let mut row = vec![step as f64];
        row.extend(task.metrics(engine));
        row.push(train.0);
        if classification {
            row.push(train.1);
        }
        if in_time {
            row.extend([train.2, train.3]);
        }
        row
    };
    let plastic = plastic(plan);
    let mut row = record(
        &mut engine,
        task.as_mut(),
        0,
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
    );
    row.extend(vec![f64::NAN; plastic.len()]);
    let initial_error = row[1 + error_index];
    emit(Event::Row {
        run,
        row: row.clone(),
    });
    let (mut loss_sum, mut loss_count, mut correct, mut noisy_sum) = (0.0, 0u64, 0usize, 0.0);
    let mut baseline_sum = 0.0;
    let mut reported = 0;
    // The last step with a metrics row, and when the recorder last flushed.
    let mut recorded_step = 0u64;
    let mut last_sync = std::time::Instant::now();
    // Per-sample training without post-update steps (which change the weights every step)
    // draws the samples of fixed windows of steps ahead and announces them; results are the
    // same up to rounding, and since the windows do not depend on the record steps (reading
    // the weights does not end a lookahead), the same whatever the recording interval.
    let mut ahead = (batch * columns_per_sample == 1 && post.is_empty())
        .then(|| SamplesAhead::<T>::new(task.input_size(), task.output_size()));
    for step in 1..=plan.steps {
        let at_record = step % plan.record_every == 0 || step == plan.steps;
        match ahead.as_mut() {
            Some(ahead) if (step - 1) % LOOKAHEAD_STEPS as u64 == 0 => {
                let count = (plan.steps - step + 1).min(LOOKAHEAD_STEPS as u64) as usize;
                let announced = ahead.draw(count, &mut inputs, &mut targets, |x, t| task.next_batch(x, t));
                engine.look_ahead(&announced);
                ahead.next_into(&mut inputs, &mut targets);
            }
            Some(ahead) => {
                ahead.next_into(&mut inputs, &mut targets);
            }
            None => task.next_batch(&mut inputs, &mut targets),
        }
        let outcome = if at_record {
            engine.diagnostic_step(&inputs, &targets, rule.as_mut(), &mut post, &plastic)
        } else {
            engine
                .train_step(&inputs, &targets, rule.as_mut(), &mut post)
                .map(|loss| (loss, Vec::new()))
        };
        let (loss, cosines) = match outcome {
            Ok(result) if at_record && !plan.record.is_empty() => {
                // Before the task's metrics run the circuit again.
                let first = (step - 1) * batch as u64;
                emit(Event::Activity {
                    run,
                    blocks: engine.recorded_activity(&plan.record, first),
                });
                result
            }
            Ok(result) => result,
            Err(e) => {
                return finish(
                    &mut engine,
                    task.as_mut(),
                    RunStatus::Failed(e.to_string()),
                    step - 1,
                    row,
                    emit,
                );
            }
        };
        loss_sum += loss;
        loss_count += 1;
        noisy_sum += engine.noisy_loss().unwrap_or(f64::NAN);
        baseline_sum += rule.last_baseline().unwrap_or(f64::NAN);
        if classification {
            correct += correct_predictions(engine.activity(output), &targets);
        }
        if !loss.is_finite() || at_record {
            let samples = (loss_count * batch as u64) as f64;
            let train = (
                loss_sum / loss_count as f64,
                correct as f64 / samples,
                -noisy_sum / loss_count as f64,
                -baseline_sum / loss_count as f64,
            );
            row = record(&mut engine, task.as_mut(), step, train);
            row.extend(if cosines.is_empty() {
                vec![f64::NAN; plastic.len()]
            } else {
                cosines
            });
            (loss_sum, loss_count, correct, noisy_sum, baseline_sum) = (0.0, 0, 0, 0.0, 0.0);
            emit(Event::Row {
                run,
                row: row.clone(),
            });
            emit(Event::Progress(step - reported));
            reported = step;
            let error = row[1 + error_index];
            let reason = if !loss.is_finite() {
                Some(format!("training loss became {loss}"))
            } else if engine.circuit_mut().has_non_finite() {
                Some("weights became non-finite".to_string())
            } else if error.is_nan() || error > c.train.divergence_factor * initial_error {
                Some(format!(
                    "error {error:.4e} exceeded {} times its initial value {initial_error:.4e}",
                    c.train.divergence_factor
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                return finish(
                    &mut engine,
                    task.as_mut(),
                    RunStatus::Diverged { step, reason },
                    step,
                    row,
                    emit,
                );
            }
            recorded_step = step;
        }
        if stop.load(Ordering::Relaxed) {
            // Noticed at every step, not only at records: Ctrl-C and SIGTERM take effect
            // within one update. `steps_done` stays the last recorded step, which the metrics
            // reach; the final weights are those of this step (`interrupted_at_step`).
            return finish(
                &mut engine,
                task.as_mut(),
                RunStatus::Interrupted { step },
                recorded_step,
                row,
                emit,
            );
        }
        if step % c.train.sync_every == 0 || last_sync.elapsed().as_secs_f64() >= c.train.sync_seconds {
            emit(Event::Sync {
                run,
                steps_done: recorded_step,
            });
            last_sync = std::time::Instant::now();
        }
    }
    finish(
        &mut engine,
        task.as_mut(),
        RunStatus::Completed,
        plan.steps,
        row,
        emit,
    )
}
