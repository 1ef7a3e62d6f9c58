//! From one run's configuration to a validated plan: each part checks itself, and this module
//! composes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use npsim_core::{Activation, CircuitBlueprint, CircuitConfig, Invalid, LearningRule, Loss, Requirements};
use npsim_models::{PreparedTask, TaskContext, TaskError};
use npsim_rules::ReferenceRates;

use super::config::{PluginRuleConfig, RuleConfig, ScenarioConfig};
use super::{RunConfig, ScenarioError};
use crate::plugin::{PluginLibrary, PluginRule};

/// Where a run's files are found.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Datasets, when a task names no folder of its own.
    pub data_dir: PathBuf,
    /// The scenario file's folder: relative plugin paths start here.
    pub scenario_dir: PathBuf,
}

/// The learning rule of a plan, as built once to ask it what it needs.
#[derive(Debug, Clone)]
pub struct RulePlan {
    /// The name recorded with the run (`node_perturbation`, `plugin:np_trace`).
    pub name: String,
    /// What the rule asked of the engine.
    pub requirements: Requirements,
    /// Absolute learning rate (`None` for plugin rules, which take theirs in `params`).
    pub learning_rate: Option<f64>,
    /// The plugin library, for plugin rules.
    pub plugin: Option<Arc<PluginLibrary>>,
}

/// A validated run, ready to simulate.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The run's configuration.
    pub run: RunConfig,
    /// The circuit structure.
    pub blueprint: CircuitBlueprint,
    /// The task, checked against the circuit, with its data.
    pub task: PreparedTask,
    /// The rule.
    pub rule: RulePlan,
    /// Training steps (from `steps`, or `epochs` × steps per epoch).
    pub steps: u64,
    /// Record every this many steps.
    pub record_every: u64,
    /// Spikes and traces recorded at record steps.
    pub record: super::RecordPlan,
}

impl RunPlan {
    /// Absolute learning rate (`None` for plugin rules).
    pub fn learning_rate(&self) -> Option<f64> {
        self.rule.learning_rate
    }
}

impl From<Invalid> for ScenarioError {
    fn from(invalid: Invalid) -> Self {
        ScenarioError::Invalid {
            field: invalid.field,
            message: invalid.message,
        }
    }
}

fn task_error(error: TaskError) -> ScenarioError {
    match error {
        TaskError::Invalid(invalid) => invalid.under("task").into(),
        TaskError::Data(data) => ScenarioError::Data(data),
        TaskError::Circuit(circuit) => ScenarioError::Circuit(circuit),
    }
}

impl RunConfig {
    /// The explicit circuit.
    pub fn circuit_config(&self) -> CircuitConfig {
        self.config.circuit.expand()
    }

    /// Checks every value, loads the task's data and builds the rule once, so that nothing a
    /// run needs can fail after the recording is created.
    pub fn build(&self, context: &BuildContext) -> Result<RunPlan, ScenarioError> {
        let c = &self.config;
        c.train.validate().map_err(|e| e.under("train"))?;
        c.circuit.validate().map_err(|e| e.under("circuit"))?;
        c.analysis.build().map_err(|e| e.under("analysis"))?;
        let blueprint = self.circuit_config().build()?;
        let task = c
            .task
            .prepare(&TaskContext {
                blueprint: &blueprint,
                data_dir: &context.data_dir,
                loss: c.loss,
            })
            .map_err(task_error)?;
        let (steps, record_every) = c
            .train
            .schedule(task.training_samples())
            .map_err(|e| e.under("train"))?;
        check_loss(c.loss, &blueprint)?;
        let rule = build_rule(c, &task, &blueprint, context)?;
        check_engine(&task, &blueprint, &rule)?;
        check_post_updates(c, &blueprint)?;
        let record = c
            .record
            .plan(&blueprint, task.trial().map(|setup| setup.timing))
            .map_err(|e| e.under("record"))?;
        let columns = c.train.batch_size as u64 * task.trial().map_or(1, |setup| setup.timing.steps as u64);
        let value_bytes = match c.precision {
            npsim_core::Precision::F32 => 4,
            npsim_core::Precision::F64 => 8,
        };
        check_memory(blueprint.estimated_bytes(value_bytes, columns))?;
        Ok(RunPlan {
            run: self.clone(),
            blueprint,
            task,
            rule,
            steps,
            record_every,
            record,
        })
    }
}

/// Memory the operating system says it can still give (`MemAvailable`), in bytes; `None`
/// where it does not say.
fn available_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory `estimate` (bytes) asks for and the memory available, both in GiB, when the
/// first is more than the second; `None` when it fits or the system does not say.
pub(crate) fn memory_shortfall(estimate: u128) -> Option<(f64, f64)> {
    let available = available_memory()?;
    let gib = |bytes: u128| bytes as f64 / (1u64 << 30) as f64;
    (estimate > available).then(|| (gib(estimate), gib(available)))
}

/// Refuses a run whose circuit would not fit in memory, with its estimate, rather than
/// letting the allocator abort it part-way.
pub(crate) fn check_memory(estimate: u128) -> Result<(), ScenarioError> {
    let Some((needed, available)) = memory_shortfall(estimate) else {
        return Ok(());
    };
    Err(ScenarioError::Invalid {
        field: "circuit".into(),
        message: format!(
            "needs at least {needed:.1} GiB for its weights, their updates and its activity, more than the {available:.1} GiB this machine has available: make the populations (or the batch) smaller"
        ),
    })
}

/// A static task runs each sample at once (the batch engine); a task in time runs renditions
/// step by step (the trial engine). Each takes what it can run.
fn check_engine(
    task: &PreparedTask,
    blueprint: &CircuitBlueprint,
    rule: &RulePlan,
) -> Result<(), ScenarioError> {
    if let Some(setup) = task.trial() {
        npsim_core::trial::check_circuit(blueprint, setup.timing.dt)
            .map_err(|m| Invalid::new("circuit", m))?;
        if let Some(library) = rule.plugin.as_ref().filter(|l| l.interface_version < 2) {
            return Err(Invalid::new(
                "rule",
                format!(
                    "plugin `{}` speaks interface version {}, which has no time axis: rebuild it against this npsim's npsim-plugin (version 2), or use `NodePerturbation` or `Sgd` for tasks in time",
                    library.path.display(),
                    library.interface_version
                ),
            )
            .into());
        }
        let r = rule.requirements;
        if r.backprop && blueprint.populations().iter().any(|p| p.model.is_spiking()) {
            return Err(Invalid::new(
                "rule",
                format!(
                    "`{}` needs a gradient, and spiking populations have none: use node perturbation, or rate populations (`LeakyRate`)",
                    rule.name
                ),
            )
            .into());
        }
        if r.weight_noise_std > 0.0 || r.backprop_estimate || r.output_noise_only {
            return Err(Invalid::new(
                "rule",
                format!(
                    "`{}` runs on static tasks only: tasks in time perturb nodes (NP) or back-propagate through time (SGD)",
                    rule.name
                ),
            )
            .into());
        }
        return Ok(());
    }
    if let Some(spec) = blueprint
        .projections()
        .iter()
        .find(|p| matches!(p.geometry, npsim_core::Geometry::Sparse(_)))
    {
        return Err(Invalid::new(
            "circuit",
            format!(
                "projection `{}` is sparse (`OneToOne`, `Random` or `FixedInDegree`), which runs in time only, but this task presents static samples: use `connectivity: Dense`, or a task in time such as `Birdsong`",
                spec.name
            ),
        )
        .into());
    }
    if let Some(spec) = blueprint.projections().iter().find(|p| p.delay > 0.0) {
        return Err(Invalid::new(
            "circuit",
            format!(
                "projection `{}` has a delay, but this task presents static samples: remove the delay, or use a task in time such as `Birdsong`",
                spec.name
            ),
        )
        .into());
    }
    if let Some(spec) = blueprint
        .projections()
        .iter()
        .find(|p| p.synapse != npsim_core::Synapse::Instant)
    {
        return Err(Invalid::new(
            "circuit",
            format!(
                "projection `{}` has a synapse with a time constant, but this task presents static samples: use `synapse: Instant`, or a task in time such as `Birdsong`",
                spec.name
            ),
        )
        .into());
    }
    for pop in blueprint.populations() {
        if !pop.model.is_static() || matches!(pop.noise, npsim_core::Noise::OrnsteinUhlenbeck { .. }) {
            return Err(Invalid::new(
                "circuit",
                format!(
                    "population `{}` has dynamics in time (a `LeakyRate` or `Lif` model, or `OrnsteinUhlenbeck` noise), but this task presents static samples: use `model: Static` and `Gaussian` noise, or a task in time such as `Birdsong`",
                    pop.name
                ),
            )
            .into());
        }
    }
    Ok(())
}

fn check_loss(loss: Loss, blueprint: &CircuitBlueprint) -> Result<(), ScenarioError> {
    let output = &blueprint.populations()[blueprint.output()];
    if loss == Loss::CrossEntropy && !matches!(output.activation, Activation::Softmax | Activation::Sigmoid) {
        return Err(Invalid::new(
            "loss",
            format!(
                "cross-entropy needs outputs in (0, 1]: give output population `{}` a `Softmax` or `Sigmoid` activation, or use `SquaredError`",
                output.name
            ),
        )
        .into());
    }
    Ok(())
}

/// The plugin library a scenario names, its path taken from the scenario's folder when
/// relative.
fn load_plugin(
    config: &PluginRuleConfig,
    context: &BuildContext,
) -> Result<Arc<PluginLibrary>, ScenarioError> {
    let path = Path::new(&config.path);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        context.scenario_dir.join(path)
    };
    crate::plugin::load(&path).map_err(ScenarioError::Plugin)
}

/// Validates the rule, resolves its learning rate, builds it once (in f64) and asks it what it
/// needs; checks that the circuit provides it.
fn build_rule(
    c: &ScenarioConfig,
    task: &PreparedTask,
    blueprint: &CircuitBlueprint,
    context: &BuildContext,
) -> Result<RulePlan, ScenarioError> {
    let rule: &RuleConfig = &c.rule;
    rule.validate().map_err(|e| e.under("rule"))?;
    if c.train.batch_size < rule.min_batch_size() {
        return Err(Invalid::new(
            "train.batch_size",
            format!(
                "the rule compares the samples of one update with each other and needs at least {} per update, got {}: raise `batch_size`",
                rule.min_batch_size(),
                c.train.batch_size
            ),
        )
        .into());
    }
    let reference = task.theory().map(|t| ReferenceRates {
        critical: t.dims.critical_learning_rate(t.init_scale),
        sgd_optimal: t.dims.sgd_optimal_learning_rate(t.init_scale),
    });
    let learning_rate = rule
        .learning_rate()
        .map(|written| written.resolve(reference).map_err(|e| e.under("rule")))
        .transpose()?;
    let (built, plugin): (Box<dyn LearningRule<f64>>, _) = match rule.plugin() {
        None => (
            rule.build_builtin::<f64>(learning_rate.expect("built-in rules have a learning rate"))
                .expect("a built-in rule"),
            None,
        ),
        Some(config) => {
            let library = load_plugin(config, context)?;
            // Created and dropped here, so that bad parameters fail before any run.
            let instance: PluginRule<f64> = library
                .instantiate::<f64>(&config.name, &config.params)
                .map_err(ScenarioError::Plugin)?;
            (Box::new(instance), Some(library))
        }
    };
    let requirements = built.requirements();
    if requirements.perturbation {
        let who = match rule.plugin() {
            Some(config) => format!("plugin rule `{}`", config.name),
            None => format!("`{}`", rule.builtin_name().unwrap_or_default()),
        };
        for spec in blueprint
            .projections()
            .iter()
            .filter(|p| p.plastic && (!requirements.output_noise_only || p.post == blueprint.output()))
        {
            let post = &blueprint.populations()[spec.post];
            if !npsim_core::trial::perturbed(blueprint, spec.post) {
                return Err(Invalid::new(
                    "rule",
                    format!(
                        "{who} needs a perturbed population `{}` (target of plastic projection `{}`); give it `noise: Gaussian(std: 1e-6)`, a projection from a `Poisson` noise source (tasks in time), or make the projection `plastic: false`",
                        post.name, spec.name
                    ),
                )
                .into());
            }
        }
    }
    Ok(RulePlan {
        name: built.name().to_string(),
        requirements,
        learning_rate,
        plugin,
    })
}

fn check_post_updates(c: &ScenarioConfig, blueprint: &CircuitBlueprint) -> Result<(), ScenarioError> {
    let plastic: Vec<&str> = blueprint
        .projections()
        .iter()
        .filter(|p| p.plastic)
        .map(|p| p.name.as_str())
        .collect();
    for (k, step) in c.post_update.iter().enumerate() {
        let field = format!("post_update[{k}]");
        step.validate().map_err(|e| e.under(&field))?;
        for name in step.projections().into_iter().flatten() {
            if !plastic.contains(&name.as_str()) {
                let known: Vec<String> = plastic.iter().map(|p| format!("`{p}`")).collect();
                return Err(Invalid::new(
                    format!("{field}.projections"),
                    format!(
                        "no plastic projection `{name}`{}; plastic projections: {}",
                        super::overrides::did_you_mean(name, &plastic),
                        known.join(", ")
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}
