//! The registry of tasks.
//!
//! A task is a config type implementing [`TaskSpec`] — serde fields = the scenario's
//! parameters, an [`Entry`] documenting them — listed once in `register_tasks!` in `lib.rs`.
//! [`TaskSpec::prepare`] checks it against the circuit and loads its data once per run
//! plan; the [`Prepared`] result declares the metrics the task records (their names, which
//! one defines divergence, whether it is a classification), the attributes recorded with
//! each run, the training-set size for `epochs`, and builds the [`Task`] a simulation draws
//! batches from.

use std::path::{Path, PathBuf};

use npsim_core::{
    Attr, CircuitBlueprint, CircuitError, Entry, Geometry, Invalid, Loss, Real, SeedStreams, TraceGate,
    TrialTiming,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::data::DataError;
use crate::task::Task;
use crate::theory::LinearDims;

/// What a task may look at while it is prepared.
#[derive(Debug, Clone, Copy)]
pub struct TaskContext<'a> {
    /// The circuit it will train.
    pub blueprint: &'a CircuitBlueprint,
    /// Where datasets are when the task names no folder of its own.
    pub data_dir: &'a Path,
    /// The run's loss.
    pub loss: Loss,
}

impl TaskContext<'_> {
    /// The task's own folder, or the run's data directory.
    pub fn data_dir_or(&self, named: &Option<String>) -> PathBuf {
        named
            .as_ref()
            .map_or_else(|| self.data_dir.to_path_buf(), PathBuf::from)
    }

    /// Projections that have weights (index, name): all but pooling.
    pub fn weighted_projections(&self) -> Vec<(usize, String)> {
        self.blueprint
            .projections()
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p.geometry, Geometry::Pool(_)))
            .map(|(q, p)| (q, p.name.clone()))
            .collect()
    }

    /// Hidden populations (index, name) without a feature-map shape: their participation
    /// ratio is recorded (a feature map's covariance would be (channels·height·width)²).
    pub fn hidden_populations(&self) -> Vec<(usize, String)> {
        let bp = self.blueprint;
        bp.order()
            .iter()
            .filter(|&&p| p != bp.input() && p != bp.output() && bp.populations()[p].shape.is_none())
            .map(|&p| (p, bp.populations()[p].name.clone()))
            .collect()
    }
}

/// The metrics a task records, in order, after the run's `step` column.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Their names.
    pub names: Vec<String>,
    /// Index into `names` of the error whose growth beyond `divergence_factor` times its
    /// initial value marks a run as diverged.
    pub error: usize,
    /// Whether the task is a classification with one-hot targets (runs then also record
    /// `train_accuracy`).
    pub classification: bool,
}

impl MetricSpec {
    /// The name of the error metric.
    pub fn error_name(&self) -> &str {
        &self.names[self.error]
    }
}

/// Why a task cannot be prepared.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TaskError {
    /// A parameter is out of range or does not fit the circuit (field relative to the task).
    #[error(transparent)]
    Invalid(Invalid),
    /// Its data cannot be used.
    #[error(transparent)]
    Data(DataError),
    /// The circuit's input or output does not fit the data.
    #[error(transparent)]
    Circuit(CircuitError),
}

/// What the mean-field theory needs to describe a run: a one-hidden-layer linear network with
/// Glorot-initialised weights learning a linear teacher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TheoryBasis {
    /// Layer sizes.
    pub dims: LinearDims,
    /// Scale `r` of the first projection's initial variance.
    pub init_scale: f64,
    /// σt², the teacher's noise variance.
    pub teacher_noise_var: f64,
}

/// How a task in time is run: its time axis, and which activity gates the noise in a
/// synapse's eligibility trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialSetup {
    /// Steps per rendition and their length.
    pub timing: TrialTiming,
    /// The trace's gate.
    pub gate: TraceGate,
}

/// A task's scenario config: what a task must provide to be registered.
///
/// # Implementing
/// An implementor **must** be a serde struct whose fields are the scenario's parameters
/// (`#[serde(deny_unknown_fields, rename = "<Entry name>")]`), document them in
/// [`TaskSpec::ENTRY`], and check in [`TaskSpec::prepare`] its values, the circuit's input and
/// output sizes, and its data, loading the data there (once per run plan, shared by a sweep's
/// runs where it can). It **need not** know the learning rule.
pub trait TaskSpec: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// Name, summary, parameters, example.
    const ENTRY: Entry;
    /// The checked task with its data.
    type Prepared: Prepared;
    /// Checks the task against the circuit and loads its data.
    fn prepare(&self, context: &TaskContext<'_>) -> Result<Self::Prepared, TaskError>;
}

/// A checked task with its data, ready to build one [`Task`] per run.
///
/// # Implementing
/// [`Prepared::metrics`] is the single declaration of what the task records: the recorder
/// creates one dataset per name and rejects rows of another length, so [`Task::metrics`]
/// must return exactly these values in this order.
pub trait Prepared: Send + Sync + std::fmt::Debug {
    /// The metrics [`Task::metrics`] returns.
    fn metrics(&self) -> &MetricSpec;
    /// Samples in one pass through the training set (`None`: no dataset, `epochs` does not
    /// apply).
    fn training_samples(&self) -> Option<usize>;
    /// Attributes recorded with each run (`task` first).
    fn attributes(&self) -> Vec<(String, Attr)>;
    /// The theory's description of the run, where it applies.
    fn theory(&self) -> Option<TheoryBasis> {
        None
    }
    /// For a task in time: its time axis and the trace gate, so that the run uses the trial
    /// engine (`None`: static samples, the batch engine).
    fn trial(&self) -> Option<TrialSetup> {
        None
    }
    /// The group under each run where [`Task::recordings`] go (`None`: it records none).
    fn recording_group(&self) -> Option<&'static str> {
        None
    }
    /// The task for one run, drawing from `streams`.
    fn build<T: Real>(&self, streams: &SeedStreams) -> Box<dyn Task<T>>;
}

/// Declares the tasks: one line `module::Config => Variant` each (`Variant` is the name
/// scenarios write). Generates the modules, [`crate::TaskConfig`], [`crate::PreparedTask`]
/// and [`crate::TASKS`].
macro_rules! register_tasks {
    ($($module:ident :: $config:ident => $variant:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// The task of a scenario.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename = "task")]
        pub enum TaskConfig {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant($module::$config),
            )+
        }

        /// A task checked against its circuit, with its data loaded.
        #[derive(Debug, Clone)]
        pub enum PreparedTask {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant(std::sync::Arc<<$module::$config as $crate::registry::TaskSpec>::Prepared>),
            )+
        }

        /// Every registered task.
        pub const TASKS: &[npsim_core::Entry] = &[$(<$module::$config as $crate::registry::TaskSpec>::ENTRY,)+];

        impl TaskConfig {
            /// Its registered name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(TaskConfig::$variant(_) => <$module::$config as $crate::registry::TaskSpec>::ENTRY.name,)+
                }
            }

            /// Checks it against the circuit and loads its data.
            pub fn prepare(
                &self,
                context: &$crate::registry::TaskContext<'_>,
            ) -> Result<PreparedTask, $crate::registry::TaskError> {
                Ok(match self {
                    $(TaskConfig::$variant(c) => PreparedTask::$variant(std::sync::Arc::new(
                        $crate::registry::TaskSpec::prepare(c, context)?,
                    )),)+
                })
            }
        }

        impl PreparedTask {
            fn inner(&self) -> &dyn $crate::registry::PreparedInfo {
                match self {
                    $(PreparedTask::$variant(p) => &**p,)+
                }
            }

            /// The metrics its runs record after `step`.
            pub fn metrics(&self) -> &$crate::registry::MetricSpec {
                self.inner().metrics()
            }

            /// Samples per epoch (`None` without a dataset).
            pub fn training_samples(&self) -> Option<usize> {
                self.inner().training_samples()
            }

            /// Attributes recorded with each run.
            pub fn attributes(&self) -> Vec<(String, npsim_core::Attr)> {
                self.inner().attributes()
            }

            /// The theory's description of the run, where it applies.
            pub fn theory(&self) -> Option<$crate::registry::TheoryBasis> {
                self.inner().theory()
            }

            /// For a task in time, how it is run (`None`: the batch engine).
            pub fn trial(&self) -> Option<$crate::registry::TrialSetup> {
                self.inner().trial()
            }

            /// The group its end-of-run recordings go in, if any.
            pub fn recording_group(&self) -> Option<&'static str> {
                self.inner().recording_group()
            }

            /// The task for one run.
            pub fn build<T: npsim_core::Real>(&self, streams: &npsim_core::SeedStreams) -> Box<dyn $crate::Task<T>> {
                match self {
                    $(PreparedTask::$variant(p) => $crate::registry::Prepared::build::<T>(&**p, streams),)+
                }
            }
        }
    };
}

pub(crate) use register_tasks;

/// The object-safe part of [`Prepared`] (everything but `build`), for dispatch.
pub trait PreparedInfo {
    /// See [`Prepared::metrics`].
    fn metrics(&self) -> &MetricSpec;
    /// See [`Prepared::training_samples`].
    fn training_samples(&self) -> Option<usize>;
    /// See [`Prepared::attributes`].
    fn attributes(&self) -> Vec<(String, Attr)>;
    /// See [`Prepared::theory`].
    fn theory(&self) -> Option<TheoryBasis>;
    /// See [`Prepared::trial`].
    fn trial(&self) -> Option<TrialSetup>;
    /// See [`Prepared::recording_group`].
    fn recording_group(&self) -> Option<&'static str>;
}

impl<P: Prepared> PreparedInfo for P {
    fn metrics(&self) -> &MetricSpec {
        Prepared::metrics(self)
    }
    fn training_samples(&self) -> Option<usize> {
        Prepared::training_samples(self)
    }
    fn attributes(&self) -> Vec<(String, Attr)> {
        Prepared::attributes(self)
    }
    fn theory(&self) -> Option<TheoryBasis> {
        Prepared::theory(self)
    }
    fn trial(&self) -> Option<TrialSetup> {
        Prepared::trial(self)
    }
    fn recording_group(&self) -> Option<&'static str> {
        Prepared::recording_group(self)
    }
}
