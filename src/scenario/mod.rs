//! Scenarios: the RON files users write, checked once and expanded into runs.
//!
//! Data flows one way: RON text → [`ScenarioConfig`] (typed, unknown fields rejected, errors
//! located at file:line:column) → `--set` overrides and the `sweep` block applied on its JSON
//! form ([`overrides`]) → one [`RunConfig`] per combination, each checked by
//! [`RunConfig::build`] ([`plan`]) into a [`RunPlan`] that the simulation runs. Every field is
//! documented in `docs/scenarios.md`.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the scenario's typed form: top level, `train`, the rule alias, `Plugin` |
//! | [`templates`] | `DeepLinear`, `Mlp` and `ConvNet` circuits |
//! | [`overrides`] | dotted paths: `--set` and sweep entries |
//! | [`plan`] | validation of one run, composed from each part's own |
//! | [`network`] | network scenarios: spiking networks that run on their own |

pub mod config;
pub mod network;
pub mod overrides;
pub mod plan;
pub mod record;
mod ron_value;
pub mod templates;

use std::path::{Path, PathBuf};

use npsim_core::CircuitError;
use npsim_models::DataError;
use thiserror::Error;

pub use config::{
    CircuitSpec, FORMAT_VERSION, LearningRate, PLUGIN_ENTRY, PluginRuleConfig, PostUpdateConfig, Precision,
    RuleConfig, ScenarioConfig, TaskConfig, TrainConfig, default_data_dir,
};
pub use plan::{BuildContext, RulePlan, RunPlan};
pub use record::{RecordPlan, TracePlan, TraceVariable};
pub use templates::{ConvNetConfig, ConvStageConfig, DeepLinearConfig, MlpConfig, Pooling};

use crate::plugin::PluginError;

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

/// A RON error at its place, in the scenario's words: a close name is suggested for an
/// unknown field or variant.
fn located(path: &Path, err: ron::error::SpannedError) -> ScenarioError {
    // ron names the enum a variant belongs to; scenarios know it as a field.
    let text = err.code.to_string().replace(" in enum `", " in `");
    let mut chars = text.chars();
    let mut message: String = chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default();
    if let Some(suggestion) = suggestion(&message) {
        message += &suggestion;
    }
    ScenarioError::Syntax {
        path: path.to_path_buf(),
        line: err.span.start.line,
        column: err.span.start.col,
        message,
    }
}

/// ` (did you mean `x`?)` for ron's "unexpected variant/field named `w` …, expected …".
fn suggestion(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unexpected variant named `")
        .or_else(|| message.strip_prefix("unexpected field named `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let hint = overrides::did_you_mean(word, &names);
    (!hint.is_empty()).then_some(hint)
}

/// A scenario file's text.
fn read_text(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|cause| ScenarioError::Read {
        path: path.to_path_buf(),
        cause,
    })
}

/// Refuses a scenario format this build does not read.
fn check_version(version: u32, path: &Path) -> Result<(), ScenarioError> {
    if version == FORMAT_VERSION {
        return Ok(());
    }
    Err(ScenarioError::Invalid {
        field: "version".into(),
        message: format!(
            "this npsim reads scenario format {FORMAT_VERSION}, the file says {version}; set `version: {FORMAT_VERSION}`"
        ),
    }
    .in_file(path))
}

/// `path=value` of a `--set` option, trimmed; `example` shows the form in the message.
fn split_override<'a>(item: &'a str, example: &str) -> Result<(&'a str, &'a str), ScenarioError> {
    let Some((path, value)) = item.split_once('=') else {
        return Err(ScenarioError::Override {
            origin: "--set",
            path: item.to_string(),
            message: format!("expected `path=value`, for example `{example}`"),
        });
    };
    Ok((path.trim(), value))
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
    /// The `--set` overrides applied, in order (recorded, so a sweep can be resumed).
    pub overrides: Vec<String>,
}

impl Scenario {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        Self::parse(path, read_text(path)?)
    }

    /// Parses scenario text; `path` is used in messages and locates relative plugin paths.
    pub fn parse(path: &Path, text: String) -> Result<Self, ScenarioError> {
        if network::is_network_scenario(&text) {
            return Err(ScenarioError::Invalid {
                field: "network".into(),
                message: "this is a network scenario (a spiking network that runs on its own, no task): `npsim run` and `npsim validate` take it, commands that study learning need a scenario with a task".into(),
            }
            .in_file(path));
        }
        let config: ScenarioConfig = ron_options().from_str(&text).map_err(|e| located(path, e))?;
        check_version(config.version, path)?;
        let scenario = Self {
            path: path.to_path_buf(),
            text,
            config,
            data_dir: default_data_dir(),
            overrides: Vec::new(),
        };
        // Check every sweep value now, so a typo fails before anything runs.
        scenario.runs()?;
        Ok(scenario)
    }

    /// Where the files a run needs are found.
    pub fn build_context(&self) -> BuildContext {
        BuildContext {
            data_dir: self.data_dir.clone(),
            scenario_dir: self
                .path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        }
    }

    /// The validated plans of every run.
    pub fn plans(&self) -> Result<Vec<RunPlan>, ScenarioError> {
        let context = self.build_context();
        self.runs()?
            .iter()
            .map(|r| r.build(&context).map_err(|e| e.in_file(&self.path)))
            .collect()
    }

    /// Applies `path=value` overrides (the CLI's `--set`). A path the sweep would overwrite in
    /// every run is refused rather than silently ignored.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<(), ScenarioError> {
        for item in overrides {
            let (path, value) = split_override(item, "train.steps=2000")?;
            if path == "sweep" || path.starts_with("sweep.") {
                return Err(ScenarioError::Override {
                    origin: "--set",
                    path: path.into(),
                    message: "the sweep block cannot be set from the command line; edit the file".into(),
                });
            }
            overrides::check_not_swept(path, &self.config.sweep).map_err(|e| e.in_file(&self.path))?;
            // The sweep is not serialisable (raw RON); it is set aside while the path is set.
            let sweep = std::mem::take(&mut self.config.sweep);
            let updated = overrides::set_path(&self.config, path, value.trim(), "--set");
            self.config.sweep = sweep;
            let updated = updated?;
            self.config = ScenarioConfig {
                sweep: std::mem::take(&mut self.config.sweep),
                ..updated
            };
            self.overrides.push(item.clone());
        }
        self.runs()?;
        Ok(())
    }

    /// The runs: the cartesian product of the sweep (keys in alphabetical order, the last
    /// varying fastest), or the one run if there is no sweep.
    pub fn runs(&self) -> Result<Vec<RunConfig>, ScenarioError> {
        overrides::expand_sweep(&self.config).map_err(|e| e.in_file(&self.path))
    }
}

/// How scenario files are read: newtype variants written like struct variants
/// (`NodePerturbation(learning_rate: ..)`), and `Some` implicit.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES | ron::extensions::Extensions::IMPLICIT_SOME,
    )
}

/// A value in scenario syntax (as a scenario file would write it), on one line.
pub fn to_scenario_syntax<T: serde::Serialize>(value: &T) -> String {
    let one_line = ron::ser::PrettyConfig::new()
        .compact_structs(true)
        .compact_arrays(true)
        .compact_maps(true)
        .new_line(String::new())
        .indentor(String::new());
    ron_options()
        .to_string_pretty(value, one_line)
        .unwrap_or_default()
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

impl RunConfig {
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
