//! The typed form of a scenario file: what each field holds and its default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use npsim_core::{Invalid, Loss};
use serde::{Deserialize, Serialize};

pub use npsim_core::Precision;
pub use npsim_models::TaskConfig;
pub use npsim_rules::{LearningRate, PostUpdateConfig};

pub use super::record::RecordConfig;
pub use super::templates::CircuitSpec;

/// The scenario format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// The data directory when none is given: `$NPSIM_DATA`, else `data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("NPSIM_DATA").map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

/// `Plugin(path:, name:, params:)`: a rule from a shared library (docs/plugins.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Plugin")]
pub struct PluginRuleConfig {
    /// The shared library: absolute, or relative to the scenario file's folder.
    pub path: String,
    /// The rule's name in the library.
    pub name: String,
    /// Parameter text handed to the rule (its format is the rule's; see `npsim rules --plugin`).
    #[serde(default)]
    pub params: String,
}

/// The registry entry of `Plugin(..)`, beside the built-in rules'.
pub const PLUGIN_ENTRY: npsim_core::Entry = npsim_core::Entry {
    name: "Plugin",
    summary: "a rule from a shared library (docs/plugins.md); `npsim rules --plugin PATH` lists a library's rules",
    params: &[
        npsim_core::Param {
            name: "path",
            unit: "path",
            default: "required",
            meaning: "the library file, absolute or relative to the scenario file's folder",
        },
        npsim_core::Param {
            name: "name",
            unit: "",
            default: "required",
            meaning: "the rule's name in the library",
        },
        npsim_core::Param {
            name: "params",
            unit: "",
            default: "\"\"",
            meaning: "text handed to the rule, such as \"learning_rate: 1e-3, trace_decay: 0.9\"",
        },
    ],
    example: "Plugin(path: \"target/release/libnpsim_example_rule.so\", name: \"np_trace\", params: \"learning_rate: 3e-6\")",
};

/// The learning rule of a scenario: a registered built-in rule or a plugin rule.
pub type RuleConfig = npsim_rules::RuleConfig<PluginRuleConfig>;

fn default_batch_size() -> usize {
    1
}
fn default_divergence_factor() -> f64 {
    100.0
}
fn default_sync_every() -> u64 {
    10_000
}
fn default_sync_seconds() -> f64 {
    30.0
}
fn default_seed() -> u64 {
    1
}
fn default_true() -> bool {
    true
}

/// Training length and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "train")]
pub struct TrainConfig {
    /// Number of updates; takes precedence over `epochs`.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Number of passes through a dataset's training set (dataset tasks only).
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Samples per update (default 1: the paper's per-sample learning).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Record metrics every this many steps, at step 0 and at the end (default: every epoch
    /// with `epochs`, otherwise every 100 steps).
    #[serde(default)]
    pub record_every: Option<u64>,
    /// A run whose error exceeds this multiple of its initial value is stopped and recorded
    /// as diverged (default 100).
    #[serde(default = "default_divergence_factor")]
    pub divergence_factor: f64,
    /// Flush recorded metrics to disk every this many steps (default 10,000).
    #[serde(default = "default_sync_every")]
    pub sync_every: u64,
    /// Also flush when this many seconds of wall time have passed since the last flush
    /// (default 30), so that slow runs lose at most that much to a crash.
    #[serde(default = "default_sync_seconds")]
    pub sync_seconds: f64,
}

impl TrainConfig {
    /// Checks every value; fields are relative to `train`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let at_least_one = |field: &str, value: Option<u64>| match value {
            Some(0) => Err(Invalid::new(field, "must be at least 1")),
            _ => Ok(()),
        };
        at_least_one("steps", self.steps)?;
        at_least_one("epochs", self.epochs)?;
        at_least_one("batch_size", Some(self.batch_size as u64))?;
        at_least_one("record_every", self.record_every)?;
        at_least_one("sync_every", Some(self.sync_every))?;
        if !(self.sync_seconds > 0.0 && self.sync_seconds.is_finite()) {
            return Err(Invalid::new(
                "sync_seconds",
                format!(
                    "must be a finite number of seconds > 0, got {}",
                    self.sync_seconds
                ),
            ));
        }
        if self.divergence_factor.is_nan() || self.divergence_factor <= 1.0 {
            return Err(Invalid::new(
                "divergence_factor",
                format!("must be a number > 1, got {}", self.divergence_factor),
            ));
        }
        Ok(())
    }

    /// Steps and the record interval, for a task with `training_samples` per epoch (`None`:
    /// no dataset); fields are relative to `train`.
    pub fn schedule(&self, training_samples: Option<usize>) -> Result<(u64, u64), Invalid> {
        let steps_per_epoch = training_samples.map(|n| (n as u64).div_ceil(self.batch_size as u64));
        let steps = match (self.steps, self.epochs, steps_per_epoch) {
            (Some(steps), _, _) => steps,
            (None, Some(epochs), Some(per_epoch)) => epochs * per_epoch,
            (None, Some(_), None) => {
                return Err(Invalid::new(
                    "epochs",
                    "this task has no dataset to count epochs in; give `steps`",
                ));
            }
            (None, None, _) => return Err(Invalid::new("", "give `steps` (or `epochs` for dataset tasks)")),
        };
        let record_every = self.record_every.unwrap_or(match (self.steps, steps_per_epoch) {
            (None, Some(per_epoch)) => per_epoch,
            _ => 100,
        });
        Ok((steps, record_every))
    }
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "scenario")]
pub struct ScenarioConfig {
    /// Format version; must be 1.
    pub version: u32,
    /// Name; the default output is `runs/<name>.h5`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `F32` or `F64` (default).
    #[serde(default)]
    pub precision: Precision,
    /// Run seed (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The circuit.
    pub circuit: CircuitSpec,
    /// The task.
    pub task: TaskConfig,
    /// The learning rule.
    pub rule: RuleConfig,
    /// The loss (default `SquaredError`, the paper's; `CrossEntropy` for softmax/sigmoid outputs).
    #[serde(default)]
    pub loss: Loss,
    /// Steps applied after each update, in order (default none).
    #[serde(default)]
    pub post_update: Vec<PostUpdateConfig>,
    /// Training settings.
    pub train: TrainConfig,
    /// Record the mean-field theory beside linear runs (default true).
    #[serde(default = "default_true")]
    pub theory: bool,
    /// Spikes and traces of chosen populations, recorded during the run (tasks in time).
    #[serde(default, skip_serializing_if = "RecordConfig::is_empty")]
    pub record: RecordConfig,
    /// What `npsim run` summarises at the end: a target metric, smoothing (see `npsim analyze`).
    #[serde(default)]
    pub analysis: crate::analysis::AnalysisConfig,
    /// Files written beside the recording when every run has ended.
    #[serde(default, skip_serializing_if = "OutputConfig::is_default")]
    pub output: OutputConfig,
    /// Parameter sweep: dotted path → list of values; each combination is one run.
    #[serde(default, skip_serializing)]
    pub sweep: BTreeMap<String, Vec<Box<ron::value::RawValue>>>,
}

/// `output: (nwb: true)`: files written beside the recording `<out>.h5` when every run has
/// ended (not for an interrupted scenario, nor for one cluster array task's share).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "output")]
pub struct OutputConfig {
    /// `<out>.nwb`, as `npsim export nwb` writes it.
    #[serde(default)]
    pub nwb: bool,
}

impl OutputConfig {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}
