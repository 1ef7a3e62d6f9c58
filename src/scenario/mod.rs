//! Scenarios: the RON files users write, checked once and expanded into runs.
//!
//! Data flows one way: RON text → [`ScenarioConfig`] (typed, unknown fields rejected, errors
//! located at file:line:column) → `--set` overrides and the `sweep` block applied on its JSON
//! form → one [`RunConfig`] per combination, each validated by [`RunConfig::build`] into a
//! [`RunPlan`] that the simulation runs. Every field is documented in `docs/scenarios.md`.

mod ron_value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use npsim_core::{
    Activation, CircuitBlueprint, CircuitConfig, CircuitError, Initializer, Loss, Noise, PopulationConfig,
    ProjectionConfig, Requirements, Shape,
};
use npsim_models::mnist::{DataError, MnistSets};
use npsim_models::sarcos::SarcosSets;
use npsim_models::{Cifar10Config, MnistConfig, SarcosConfig};

use crate::plugin::{PluginError, PluginLibrary};
use npsim_models::{DeepLinearConfig, LinearDims, LinearTeacherConfig};
use npsim_rules::{Baseline, NormalisationTarget};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// The scenario format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Numeric precision of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Precision {
    /// Single precision.
    F32,
    /// Double precision (default).
    #[default]
    F64,
}

/// The circuit: written out, or from a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CircuitSpec {
    /// The paper's one-hidden-layer linear network (`x → h → y`, projections `W1`, `W2`).
    DeepLinear(DeepLinearConfig),
    /// A fully connected network `x → h1 → … → y` (projections `W1`, `W2`, …, with biases).
    Mlp(MlpConfig),
    /// A convolutional network: convolution (and pooling) stages, then a dense readout.
    ConvNet(ConvNetConfig),
    /// Populations and projections written out.
    Explicit(CircuitConfig),
}

fn default_relu() -> Activation {
    Activation::Relu
}
fn default_softmax() -> Activation {
    Activation::Softmax
}
fn default_mlp_noise() -> f64 {
    1e-4
}
fn default_glorot_truncated() -> Initializer {
    Initializer::GlorotTruncated
}

/// Template for a multilayer perceptron (the paper's nonlinear networks, Figs. 4–5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Input size.
    pub input: usize,
    /// Hidden layer sizes, input side first.
    pub hidden: Vec<usize>,
    /// Output size.
    pub output: usize,
    /// Hidden activation (default `Relu`).
    #[serde(default = "default_relu")]
    pub activation: Activation,
    /// Output activation (default `Softmax`).
    #[serde(default = "default_softmax")]
    pub output_activation: Activation,
    /// Intrinsic noise std σ of every hidden and output unit (default 1e-4, the paper's).
    #[serde(default = "default_mlp_noise")]
    pub perturbation_std: f64,
    /// Initialiser of weights and biases (default `GlorotTruncated`, TensorFlow's
    /// `glorot_normal` as in the paper).
    #[serde(default = "default_glorot_truncated")]
    pub init: Initializer,
}

impl MlpConfig {
    /// The explicit circuit: populations `x`, `h1`, …, `y`; projections `W1`, … with biases.
    pub fn expand(&self) -> CircuitConfig {
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let mut populations = vec![PopulationConfig {
            name: "x".into(),
            size: self.input,
            shape: None,
            activation: Activation::Linear,
            noise: Noise::None,
        }];
        for (k, &size) in self.hidden.iter().enumerate() {
            populations.push(PopulationConfig {
                name: format!("h{}", k + 1),
                size,
                shape: None,
                activation: self.activation,
                noise,
            });
        }
        populations.push(PopulationConfig {
            name: "y".into(),
            size: self.output,
            shape: None,
            activation: self.output_activation,
            noise,
        });
        let projections = populations
            .windows(2)
            .enumerate()
            .map(|(k, pair)| ProjectionConfig {
                name: Some(format!("W{}", k + 1)),
                from: pair[0].name.clone(),
                to: pair[1].name.clone(),
                init: self.init,
                bias: Some(self.init),
                plastic: true,
                connectivity: Default::default(),
            })
            .collect();
        CircuitConfig {
            populations,
            projections,
        }
    }
}

/// Pooling after a convolution stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Pooling {
    /// No pooling (default).
    #[default]
    None,
    /// Max pooling over non-overlapping windows of this side.
    Max(usize),
    /// Average pooling over non-overlapping windows of this side.
    Avg(usize),
}

/// One convolution stage of a [`ConvNetConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvStageConfig {
    /// Output channels (feature maps).
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride (default 1).
    #[serde(default)]
    pub stride: Option<usize>,
    /// Zero padding on each side (default 0; `kernel / 2` keeps the size at stride 1).
    #[serde(default)]
    pub padding: usize,
    /// Pooling after the stage's activation (default `None`).
    #[serde(default)]
    pub pool: Pooling,
}

/// Template for a convolutional network (Fig. S5): `x → c1 (→ p1) → c2 (→ p2) … → h1 → … → y`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvNetConfig {
    /// Input shape `(channels, height, width)`; CIFAR-10 is `(3, 32, 32)`.
    pub input: (usize, usize, usize),
    /// Convolution stages, input side first.
    pub conv: Vec<ConvStageConfig>,
    /// Dense hidden layer sizes after the last stage (default none).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Output size.
    pub output: usize,
    /// Activation of convolution and dense hidden units (default `Relu`).
    #[serde(default = "default_relu")]
    pub activation: Activation,
    /// Output activation (default `Softmax`).
    #[serde(default = "default_softmax")]
    pub output_activation: Activation,
    /// Intrinsic noise std σ of every convolution, hidden and output unit (default 1e-4);
    /// pooling units are noiseless (they have no weights of their own to learn).
    #[serde(default = "default_mlp_noise")]
    pub perturbation_std: f64,
    /// Initialiser of weights and biases (default `GlorotTruncated`).
    #[serde(default = "default_glorot_truncated")]
    pub init: Initializer,
}

impl ConvNetConfig {
    /// The explicit circuit: populations `x`, `c1`, `p1`, …, `h1`, …, `y`; convolutions `K1`,
    /// …, pooling `P1`, …, dense projections `W1`, …; every convolution and dense projection
    /// with a bias.
    pub fn expand(&self) -> CircuitConfig {
        use npsim_core::Connectivity;
        use npsim_core::conv::output_side;
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let population =
            |name: String, shape: Option<Shape>, size: usize, activation, noise| PopulationConfig {
                name,
                size,
                shape,
                activation,
                noise,
            };
        let projection = |name: String, from: &str, to: &str, connectivity, bias| ProjectionConfig {
            name: Some(name),
            from: from.into(),
            to: to.into(),
            init: self.init,
            bias,
            plastic: true,
            connectivity,
        };
        let mut populations = vec![population(
            "x".into(),
            Some(self.input),
            0,
            Activation::Linear,
            Noise::None,
        )];
        let mut projections = Vec::new();
        let (mut shape, mut last) = (self.input, "x".to_string());
        // A window that does not fit leaves a 1 × 1 map, so that validation names the stage.
        let side = |input, kernel, stride, padding| output_side(input, kernel, stride, padding).unwrap_or(1);
        for (k, stage) in self.conv.iter().enumerate() {
            let stride = stage.stride.unwrap_or(1);
            let conv_shape = (
                stage.channels,
                side(shape.1, stage.kernel, stride, stage.padding),
                side(shape.2, stage.kernel, stride, stage.padding),
            );
            let name = format!("c{}", k + 1);
            populations.push(population(
                name.clone(),
                Some(conv_shape),
                0,
                self.activation,
                noise,
            ));
            projections.push(projection(
                format!("K{}", k + 1),
                &last,
                &name,
                Connectivity::Conv2d {
                    kernel: stage.kernel,
                    stride: stage.stride,
                    padding: stage.padding,
                },
                Some(self.init),
            ));
            (shape, last) = (conv_shape, name);
            let (window, connectivity) = match stage.pool {
                Pooling::None => continue,
                Pooling::Max(window) => (window, Connectivity::MaxPool { window, stride: None }),
                Pooling::Avg(window) => (window, Connectivity::AvgPool { window, stride: None }),
            };
            let pooled = (
                shape.0,
                side(shape.1, window, window, 0),
                side(shape.2, window, window, 0),
            );
            let name = format!("p{}", k + 1);
            populations.push(population(
                name.clone(),
                Some(pooled),
                0,
                Activation::Linear,
                Noise::None,
            ));
            projections.push(projection(
                format!("P{}", k + 1),
                &last,
                &name,
                connectivity,
                None,
            ));
            (shape, last) = (pooled, name);
        }
        let dense_sizes = self
            .hidden
            .iter()
            .map(|&h| (h, self.activation))
            .chain([(self.output, self.output_activation)]);
        for (k, (size, activation)) in dense_sizes.enumerate() {
            let name = if k == self.hidden.len() {
                "y".to_string()
            } else {
                format!("h{}", k + 1)
            };
            populations.push(population(name.clone(), None, size, activation, noise));
            projections.push(projection(
                format!("W{}", k + 1),
                &last,
                &name,
                Connectivity::Dense,
                Some(self.init),
            ));
            last = name;
        }
        CircuitConfig {
            populations,
            projections,
        }
    }
}

/// The data directory when none is given: `$NPSIM_DATA`, else `data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("NPSIM_DATA").map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

/// The task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskConfig {
    /// Linear teacher `y* = A x + σt ζ`.
    LinearTeacher(LinearTeacherConfig),
    /// MNIST digit classification (784 inputs, 10 outputs).
    Mnist(MnistConfig),
    /// CIFAR-10 image classification (3,072 inputs, 10 outputs).
    Cifar10(Cifar10Config),
    /// SARCOS inverse dynamics regression (21 inputs, 7 outputs).
    Sarcos(SarcosConfig),
}

/// A learning rate, absolute or relative to a theoretical rate of the linear network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LearningRate {
    /// η itself.
    Absolute(f64),
    /// A multiple of NP's critical rate η* (paper Eq. 83) for the circuit's sizes.
    RelativeToCritical(f64),
    /// A multiple of SGD's optimal rate `1/(Lx(α0 + β0))`.
    RelativeToSgdOptimal(f64),
}

/// The learning rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RuleConfig {
    /// Node perturbation (paper Eq. 3).
    NodePerturbation {
        /// η.
        learning_rate: LearningRate,
        /// `Clean` (the paper, default) or `RunningAverage(γ)` (no second pass).
        #[serde(default)]
        baseline: Baseline,
    },
    /// SGD by back-propagation (non-local baseline).
    Sgd {
        /// η.
        learning_rate: LearningRate,
    },
    /// Weight perturbation: noise on every plastic weight instead of on the nodes.
    WeightPerturbation {
        /// η.
        learning_rate: LearningRate,
        /// σ_w, the std of the weight noise.
        perturbation_std: f64,
    },
    /// REINFORCE (paper Eq. 15): the output-perturbation estimate of the output gradient,
    /// back-propagated (non-local).
    Reinforce {
        /// η.
        learning_rate: LearningRate,
        /// Also perturb hidden units (default false: output noise only).
        #[serde(default)]
        hidden_noise: bool,
    },
    /// A rule from a plugin library (see docs/plugins.md).
    Plugin {
        /// The shared library, relative to the current directory or absolute.
        path: String,
        /// The rule's name in the library.
        name: String,
        /// Parameter text handed to the rule (its format is the rule's; see `npsim rules --plugin`).
        #[serde(default)]
        params: String,
    },
}

impl RuleConfig {
    /// The rule's recorded name (`plugin:<name>` for plugin rules).
    pub fn name(&self) -> String {
        match self {
            RuleConfig::NodePerturbation { .. } => "node_perturbation".into(),
            RuleConfig::Sgd { .. } => "sgd".into(),
            RuleConfig::WeightPerturbation { .. } => "weight_perturbation".into(),
            RuleConfig::Reinforce { .. } => "reinforce".into(),
            RuleConfig::Plugin { name, .. } => format!("plugin:{name}"),
        }
    }

    /// Its learning rate as written (plugin rules take theirs in `params`).
    pub fn learning_rate(&self) -> Option<LearningRate> {
        match self {
            RuleConfig::NodePerturbation { learning_rate, .. }
            | RuleConfig::Sgd { learning_rate }
            | RuleConfig::WeightPerturbation { learning_rate, .. }
            | RuleConfig::Reinforce { learning_rate, .. } => Some(*learning_rate),
            RuleConfig::Plugin { .. } => None,
        }
    }
}

/// A step applied after every update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PostUpdateConfig {
    /// Per-neuron RMS normalisation of incoming weights (synaptic scaling, paper Fig. 3D).
    WeightNormalisation {
        /// `Initial` (each neuron's initial RMS, default) or `Value(x)`.
        #[serde(default)]
        target: NormalisationTarget,
        /// Projections it applies to (default: all plastic ones).
        #[serde(default)]
        projections: Option<Vec<String>>,
    },
    /// Multiplicative weight decay `W ← (1 − rate) W` after every update.
    WeightDecay {
        /// Fraction lost per step, in `[0, 1)`.
        rate: f64,
        /// Projections it applies to (default: all plastic ones).
        #[serde(default)]
        projections: Option<Vec<String>>,
    },
}

fn default_batch_size() -> usize {
    1
}
fn default_divergence_factor() -> f64 {
    100.0
}
fn default_sync_every() -> u64 {
    10_000
}
fn default_seed() -> u64 {
    1
}
fn default_true() -> bool {
    true
}

/// Training length and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Parameter sweep: dotted path → list of values; each combination is one run.
    #[serde(default, skip_serializing)]
    pub sweep: BTreeMap<String, Vec<Box<ron::value::RawValue>>>,
}

/// What is wrong with a scenario.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario `{}`: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The RON text does not fit the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A `--set` option or sweep entry is malformed or does not fit.
    #[error("{origin} `{path}`: {message}")]
    Override {
        /// `--set` or `sweep entry`.
        origin: &'static str,
        /// The dotted path.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value is out of range.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The circuit is inconsistent.
    #[error("circuit: {0}")]
    Circuit(CircuitError),
    /// The plugin rule cannot be used.
    #[error("rule: {0}")]
    Plugin(PluginError),
    /// The task's data cannot be used.
    #[error("task: {0}")]
    Data(DataError),
    /// Any of the above, in a named file.
    #[error("{}: {inner}", path.display())]
    InFile {
        /// The scenario file.
        path: PathBuf,
        /// The problem.
        inner: Box<ScenarioError>,
    },
}

impl From<CircuitError> for ScenarioError {
    fn from(error: CircuitError) -> Self {
        ScenarioError::Circuit(error)
    }
}

impl ScenarioError {
    /// Names the file, unless the message already does.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            ScenarioError::Read { .. } | ScenarioError::Syntax { .. } | ScenarioError::InFile { .. } => self,
            other => ScenarioError::InFile {
                path: path.to_path_buf(),
                inner: Box::new(other),
            },
        }
    }
}

fn located(path: &Path, err: ron::error::SpannedError) -> ScenarioError {
    let text = err.code.to_string();
    let mut chars = text.chars();
    let message = chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default();
    ScenarioError::Syntax {
        path: path.to_path_buf(),
        line: err.span.start.line,
        column: err.span.start.col,
        message,
    }
}

/// A scenario as read from a file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where it came from.
    pub path: PathBuf,
    /// The file's text, recorded verbatim in outputs.
    pub text: String,
    /// The parsed configuration, with `--set` overrides applied.
    pub config: ScenarioConfig,
    /// Where dataset tasks find their files unless they name a folder: `--data-dir`, else
    /// `NPSIM_DATA`, else `data`.
    pub data_dir: PathBuf,
}

/// One run of a scenario: its configuration and the sweep values that made it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Index within the scenario (0-based).
    pub index: usize,
    /// `path=value` for each sweep entry, in sweep order.
    pub assignments: Vec<(String, String)>,
    /// The resolved configuration.
    pub config: ScenarioConfig,
}

impl Scenario {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ScenarioError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(path, text)
    }

    /// Parses scenario text; `path` is used in messages.
    pub fn parse(path: &Path, text: String) -> Result<Self, ScenarioError> {
        let options = ron::Options::default().with_default_extension(
            ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES | ron::extensions::Extensions::IMPLICIT_SOME,
        );
        let config: ScenarioConfig = options.from_str(&text).map_err(|e| located(path, e))?;
        if config.version != FORMAT_VERSION {
            return Err(ScenarioError::Invalid {
                field: "version".into(),
                message: format!(
                    "this npsim reads scenario format {FORMAT_VERSION}, the file says {}; set `version: {FORMAT_VERSION}`",
                    config.version
                ),
            }
            .in_file(path));
        }
        let data_dir = default_data_dir();
        let scenario = Self {
            path: path.to_path_buf(),
            text,
            config,
            data_dir,
        };
        // Check every sweep value now, so a typo fails before anything runs.
        scenario.runs()?;
        Ok(scenario)
    }

    /// The validated plans of every run.
    pub fn plans(&self) -> Result<Vec<RunPlan>, ScenarioError> {
        self.runs()?
            .iter()
            .map(|r| r.build(&self.data_dir).map_err(|e| e.in_file(&self.path)))
            .collect()
    }

    /// Applies `path=value` overrides (the CLI's `--set`).
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<(), ScenarioError> {
        for item in overrides {
            let Some((path, value)) = item.split_once('=') else {
                return Err(ScenarioError::Override {
                    origin: "--set",
                    path: item.clone(),
                    message: "expected `path=value`, for example `train.steps=2000`".into(),
                });
            };
            let path = path.trim();
            if path == "sweep" || path.starts_with("sweep.") {
                return Err(ScenarioError::Override {
                    origin: "--set",
                    path: path.into(),
                    message: "the sweep block cannot be set from the command line; edit the file".into(),
                });
            }
            let sweep = std::mem::take(&mut self.config.sweep);
            let updated = set_path(&self.config, path, value.trim(), "--set")?;
            self.config = ScenarioConfig { sweep, ..updated };
        }
        self.runs()?;
        Ok(())
    }

    /// The runs: the cartesian product of the sweep (keys in alphabetical order, the last
    /// varying fastest), or the one run if there is no sweep.
    pub fn runs(&self) -> Result<Vec<RunConfig>, ScenarioError> {
        self.expand_sweep().map_err(|e| e.in_file(&self.path))
    }

    fn expand_sweep(&self) -> Result<Vec<RunConfig>, ScenarioError> {
        let entries: Vec<(&String, &Vec<Box<ron::value::RawValue>>)> = self.config.sweep.iter().collect();
        for (path, values) in &entries {
            if values.is_empty() {
                return Err(ScenarioError::Override {
                    origin: "sweep entry",
                    path: (*path).clone(),
                    message: "has no values; list at least one".into(),
                });
            }
        }
        let total: usize = entries.iter().map(|(_, v)| v.len()).product();
        let mut runs = Vec::with_capacity(total);
        let base = ScenarioConfig {
            sweep: BTreeMap::new(),
            ..self.config.clone()
        };
        for index in 0..total {
            let mut rest = index;
            let mut picks = vec![0; entries.len()];
            for (k, (_, values)) in entries.iter().enumerate().rev() {
                picks[k] = rest % values.len();
                rest /= values.len();
            }
            // Whole-block replacements first, so `rule` then `rule.learning_rate` compose.
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by_key(|&k| entries[k].0.matches('.').count());
            let mut config = base.clone();
            for k in order {
                let (path, values) = entries[k];
                config = set_path(&config, path, values[picks[k]].get_ron().trim(), "sweep entry")?;
            }
            let assignments = entries
                .iter()
                .zip(&picks)
                .map(|((path, values), &i)| ((*path).clone(), values[i].get_ron().trim().to_string()))
                .collect();
            runs.push(RunConfig {
                index,
                assignments,
                config,
            });
        }
        Ok(runs)
    }
}

/// Replaces the value at a dotted path of `config` (through enum variants transparently).
fn set_path(
    config: &ScenarioConfig,
    path: &str,
    value_text: &str,
    origin: &'static str,
) -> Result<ScenarioConfig, ScenarioError> {
    let fail = |message: String| ScenarioError::Override {
        origin,
        path: path.to_string(),
        message,
    };
    let value =
        ron_value::parse(value_text).map_err(|m| fail(format!("cannot read value `{value_text}`: {m}")))?;
    let mut tree = serde_json::to_value(config).expect("a scenario always serialises");
    let mut at = &mut tree;
    let mut walked = Vec::new();
    for key in path.split('.') {
        if descend(&mut at.clone(), key).is_none() {
            let here = if walked.is_empty() {
                "the scenario".to_string()
            } else {
                format!("`{}`", walked.join("."))
            };
            return Err(fail(format!(
                "{here} has no field `{key}`; fields there: {}",
                field_names(at)
            )));
        }
        at = descend(at, key).expect("checked above");
        walked.push(key);
    }
    *at = value;
    serde_json::from_value(tree).map_err(|e| fail(format!("{e}")))
}

/// The child `key` of `node`, stepping through a single-variant object (`{"DeepLinear": {..}}`).
fn descend<'a>(node: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let Value::Object(map) = node else { return None };
    if map.contains_key(key) {
        return map.get_mut(key);
    }
    if map.len() == 1 {
        let (variant, _) = map.iter().next().expect("one entry");
        if variant.starts_with(|c: char| c.is_ascii_uppercase()) {
            return map.values_mut().next().and_then(|inner| descend(inner, key));
        }
    }
    None
}

fn field_names(node: &Value) -> String {
    match node {
        Value::Object(map)
            if map.len() == 1
                && map
                    .keys()
                    .all(|k| k.starts_with(|c: char| c.is_ascii_uppercase())) =>
        {
            field_names(map.values().next().expect("one entry"))
        }
        Value::Object(map) => map
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none (it is a single value)".into(),
    }
}

/// The absolute learning rate for a written one.
fn resolve_learning_rate(
    written: LearningRate,
    linear_dims: Option<LinearDims>,
    init_scale: f64,
) -> Result<f64, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid {
        field: "rule.learning_rate".into(),
        message,
    };
    let learning_rate = match written {
        LearningRate::Absolute(eta) => eta,
        LearningRate::RelativeToCritical(rel) | LearningRate::RelativeToSgdOptimal(rel) => {
            let dims = linear_dims.ok_or_else(|| {
                invalid(
                    "relative learning rates need a one-hidden-layer linear circuit with Xavier initialisation; give `Absolute(..)`".into(),
                )
            })?;
            let reference = match written {
                LearningRate::RelativeToCritical(_) => dims.critical_learning_rate(init_scale),
                _ => dims.sgd_optimal_learning_rate(init_scale),
            };
            rel * reference
        }
    };
    if !(learning_rate > 0.0 && learning_rate.is_finite()) {
        return Err(invalid(format!(
            "must resolve to a finite number > 0, got {learning_rate}"
        )));
    }
    Ok(learning_rate)
}

/// A validated run, ready to simulate.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The run's configuration.
    pub run: RunConfig,
    /// The circuit structure.
    pub blueprint: CircuitBlueprint,
    /// Absolute learning rate (`None` for plugin rules).
    pub learning_rate: Option<f64>,
    /// The plugin library, for plugin rules.
    pub plugin: Option<Arc<PluginLibrary>>,
    /// Sizes if the circuit is a one-hidden-layer linear chain (theory applies).
    pub linear_dims: Option<LinearDims>,
    /// Scale `r` of the first projection's initial variance, for the theory.
    pub init_scale: f64,
    /// Training steps (from `steps`, or `epochs` × steps per epoch).
    pub steps: u64,
    /// Record every this many steps.
    pub record_every: u64,
    /// The dataset, for image tasks.
    pub mnist: Option<MnistSets>,
    /// The dataset, for SARCOS.
    pub sarcos: Option<Arc<SarcosSets>>,
}

impl RunConfig {
    /// The explicit circuit.
    pub fn circuit_config(&self) -> CircuitConfig {
        match &self.config.circuit {
            CircuitSpec::DeepLinear(t) => t.expand(),
            CircuitSpec::Mlp(t) => t.expand(),
            CircuitSpec::ConvNet(t) => t.expand(),
            CircuitSpec::Explicit(c) => c.clone(),
        }
    }

    /// Checks every value and resolves the learning rate, loading datasets from `data_dir`
    /// when the task does not name its own.
    pub fn build(&self, data_dir: &Path) -> Result<RunPlan, ScenarioError> {
        let c = &self.config;
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            field: field.into(),
            message,
        };
        if c.train.steps == Some(0) {
            return Err(invalid("train.steps", "must be at least 1".into()));
        }
        if c.train.epochs == Some(0) {
            return Err(invalid("train.epochs", "must be at least 1".into()));
        }
        if c.train.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be at least 1".into()));
        }
        if c.train.record_every == Some(0) {
            return Err(invalid("train.record_every", "must be at least 1".into()));
        }
        if c.train.sync_every == 0 {
            return Err(invalid("train.sync_every", "must be at least 1".into()));
        }
        if c.train.divergence_factor.is_nan() || c.train.divergence_factor <= 1.0 {
            return Err(invalid(
                "train.divergence_factor",
                format!("must be a number > 1, got {}", c.train.divergence_factor),
            ));
        }
        if let CircuitSpec::DeepLinear(t) = &c.circuit {
            for (name, v) in [("lx", t.lx), ("lh", t.lh), ("ly", t.ly)] {
                if v == 0 {
                    return Err(invalid(&format!("circuit.{name}"), "must be at least 1".into()));
                }
            }
            if !(t.init_scale > 0.0 && t.init_scale.is_finite()) {
                return Err(invalid(
                    "circuit.init_scale",
                    format!("must be a finite number > 0, got {}", t.init_scale),
                ));
            }
            if !(t.perturbation_std > 0.0 && t.perturbation_std.is_finite()) {
                return Err(invalid(
                    "circuit.perturbation_std",
                    format!("must be a finite number > 0, got {}", t.perturbation_std),
                ));
            }
        }
        let blueprint = self.circuit_config().build()?;
        let mut linear_dims = None;
        let mut init_scale = f64::NAN;
        let mut mnist = None;
        let mut sarcos = None;
        let mut steps_per_epoch = None;
        match &c.task {
            TaskConfig::LinearTeacher(task) => {
                if !(task.teacher_noise_std >= 0.0 && task.teacher_noise_std.is_finite()) {
                    return Err(invalid(
                        "task.teacher_noise_std",
                        format!("must be a finite number >= 0, got {}", task.teacher_noise_std),
                    ));
                }
                let chain = blueprint.linear_chain().ok_or_else(|| {
                    invalid(
                        "task",
                        "the linear teacher needs a chain of linear populations without biases (like `DeepLinear`)"
                            .into(),
                    )
                })?;
                let first = &blueprint.projections()[chain[0]];
                let lx = blueprint.populations()[blueprint.input()].size;
                let ly = blueprint.populations()[blueprint.output()].size;
                // The theory applies to one hidden layer with Glorot-initialised weights.
                if let Initializer::XavierNormal { variance_scale } = first.init {
                    init_scale = variance_scale;
                }
                linear_dims = (chain.len() == 2 && init_scale.is_finite()).then(|| LinearDims {
                    lx,
                    lh: blueprint.populations()[first.post].size,
                    ly,
                });
            }
            TaskConfig::Mnist(_) | TaskConfig::Cifar10(_) => {
                let (size, named_dir) = match &c.task {
                    TaskConfig::Mnist(t) => (npsim_models::mnist::PIXELS, &t.data_dir),
                    TaskConfig::Cifar10(t) => (npsim_models::cifar10::VALUES, &t.data_dir),
                    _ => unreachable!("matched above"),
                };
                blueprint.check_io(size, 10)?;
                let dir = named_dir
                    .as_ref()
                    .map_or_else(|| data_dir.to_path_buf(), PathBuf::from);
                let sets = match &c.task {
                    TaskConfig::Mnist(t) => t.load(&dir),
                    TaskConfig::Cifar10(t) => t.load(&dir),
                    _ => unreachable!("matched above"),
                }
                .map_err(ScenarioError::Data)?;
                let train = sets.train_range.1 - sets.train_range.0;
                steps_per_epoch = Some((train as u64).div_ceil(c.train.batch_size as u64));
                mnist = Some(sets);
            }
            TaskConfig::Sarcos(task) => {
                blueprint.check_io(npsim_models::sarcos::INPUTS, npsim_models::sarcos::OUTPUTS)?;
                let dir = task
                    .data_dir
                    .as_ref()
                    .map_or_else(|| data_dir.to_path_buf(), PathBuf::from);
                let sets = task.load(&dir).map_err(ScenarioError::Data)?;
                steps_per_epoch = Some((sets.train_x.ncols() as u64).div_ceil(c.train.batch_size as u64));
                sarcos = Some(Arc::new(sets));
            }
        }
        let steps = match (c.train.steps, c.train.epochs, steps_per_epoch) {
            (Some(steps), _, _) => steps,
            (None, Some(epochs), Some(per_epoch)) => epochs * per_epoch,
            (None, Some(_), None) => {
                return Err(invalid(
                    "train.epochs",
                    "this task has no dataset to count epochs in; give `steps`".into(),
                ));
            }
            (None, None, _) => {
                return Err(invalid(
                    "train",
                    "give `steps` (or `epochs` for dataset tasks)".into(),
                ));
            }
        };
        let record_every = c
            .train
            .record_every
            .unwrap_or(match (c.train.steps, steps_per_epoch) {
                (None, Some(per_epoch)) => per_epoch,
                _ => 100,
            });
        if c.loss == Loss::CrossEntropy {
            let output = &blueprint.populations()[blueprint.output()];
            if !matches!(output.activation, Activation::Softmax | Activation::Sigmoid) {
                return Err(invalid(
                    "loss",
                    format!(
                        "cross-entropy needs outputs in (0, 1]: give output population `{}` a `Softmax` or `Sigmoid` activation, or use `SquaredError`",
                        output.name
                    ),
                ));
            }
        }
        let learning_rate = match c.rule.learning_rate() {
            None => None,
            Some(written) => Some(resolve_learning_rate(written, linear_dims, init_scale)?),
        };
        let requirements = match &c.rule {
            RuleConfig::Plugin { .. } => None,
            RuleConfig::NodePerturbation { .. } => Some(Requirements {
                perturbation: true,
                ..Default::default()
            }),
            RuleConfig::Sgd { .. } | RuleConfig::WeightPerturbation { .. } => Some(Requirements::default()),
            RuleConfig::Reinforce { hidden_noise, .. } => Some(Requirements {
                perturbation: true,
                output_noise_only: !hidden_noise,
                ..Default::default()
            }),
        };
        if let RuleConfig::NodePerturbation {
            baseline: Baseline::RunningAverage(rate),
            ..
        } = &c.rule
            && !(*rate > 0.0 && *rate <= 1.0)
        {
            return Err(invalid(
                "rule.baseline",
                format!("the running-average rate must be in (0, 1], got {rate}"),
            ));
        }
        if let RuleConfig::WeightPerturbation { perturbation_std, .. } = &c.rule
            && !(*perturbation_std > 0.0 && perturbation_std.is_finite())
        {
            return Err(invalid(
                "rule.perturbation_std",
                format!("must be a finite number > 0, got {perturbation_std}"),
            ));
        }
        let output_only = requirements.is_some_and(|r| r.output_noise_only);
        let plugin = match &c.rule {
            RuleConfig::Plugin { path, name, params } => {
                let library = crate::plugin::load(Path::new(path)).map_err(ScenarioError::Plugin)?;
                // Create and drop one instance, so that bad parameters fail here, before any run.
                library
                    .instantiate::<f64>(name, params)
                    .map_err(ScenarioError::Plugin)?;
                Some(library)
            }
            _ => None,
        };
        let needs_noise = match (&plugin, &c.rule, requirements) {
            (Some(library), RuleConfig::Plugin { name, .. }, _) => {
                library
                    .rule(name)
                    .map_err(ScenarioError::Plugin)?
                    .requirements
                    .perturbation
            }
            (_, _, Some(r)) => r.perturbation,
            _ => false,
        };
        if needs_noise {
            for spec in blueprint
                .projections()
                .iter()
                .filter(|p| p.plastic && (!output_only || p.post == blueprint.output()))
            {
                let post = &blueprint.populations()[spec.post];
                if post.noise.std() == 0.0 {
                    return Err(invalid(
                        "rule",
                        format!(
                            "{} needs intrinsic noise on population `{}` (target of plastic projection `{}`); give it `noise: Gaussian(std: 1e-6)` or make the projection `plastic: false`",
                            if plugin.is_some() {
                                "this plugin rule"
                            } else {
                                "node perturbation"
                            },
                            post.name,
                            spec.name
                        ),
                    ));
                }
            }
        }
        for (k, step) in c.post_update.iter().enumerate() {
            let projections = match step {
                PostUpdateConfig::WeightNormalisation { target, projections } => {
                    if let NormalisationTarget::Value(v) = target
                        && !(*v > 0.0 && v.is_finite())
                    {
                        return Err(invalid(
                            &format!("post_update[{k}].target"),
                            format!("must be a finite number > 0, got {v}"),
                        ));
                    }
                    projections
                }
                PostUpdateConfig::WeightDecay { rate, projections } => {
                    if !(0.0..1.0).contains(rate) {
                        return Err(invalid(
                            &format!("post_update[{k}].rate"),
                            format!("must be in [0, 1), got {rate}"),
                        ));
                    }
                    projections
                }
            };
            for name in projections.iter().flatten() {
                if !blueprint
                    .projections()
                    .iter()
                    .any(|p| p.plastic && &p.name == name)
                {
                    let known: Vec<_> = blueprint
                        .projections()
                        .iter()
                        .filter(|p| p.plastic)
                        .map(|p| format!("`{}`", p.name))
                        .collect();
                    return Err(invalid(
                        &format!("post_update[{k}].projections"),
                        format!(
                            "no plastic projection `{name}`; plastic projections: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(RunPlan {
            run: self.clone(),
            blueprint,
            learning_rate,
            plugin,
            linear_dims,
            init_scale,
            steps,
            record_every,
            mnist,
            sarcos,
        })
    }

    /// A short label: the sweep assignments, or `"single run"`.
    pub fn label(&self) -> String {
        if self.assignments.is_empty() {
            "single run".into()
        } else {
            self.assignments
                .iter()
                .map(|(p, v)| format!("{p}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The HDF5 group name, `run_000` etc.
    pub fn group_name(&self) -> String {
        format!("run_{:03}", self.index)
    }
}
