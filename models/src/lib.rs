//! # npsim-models
//!
//! Tasks and theory for npsim's scenarios: the deep linear student–teacher of the paper's
//! Section 4 ([`linear`]) and its mean-field theory ([`theory`]), image classification on
//! MNIST and CIFAR-10 ([`images`]), SARCOS regression ([`sarcos`]), and the registry scenarios
//! choose tasks from ([`TaskConfig`], [`TASKS`]).
//!
//! Adding a task is one new file (a config implementing [`registry::TaskSpec`], its prepared
//! form and the [`Task`]) and one line below; `docs/architecture.md` walks through it.

pub mod data;
pub mod images;
pub mod registry;
pub mod sgd_theory;
pub mod task;
pub mod theory;

use registry::register_tasks;

register_tasks! {
    linear::LinearTeacherConfig => LinearTeacher,
    mnist::MnistConfig => Mnist,
    cifar10::Cifar10Config => Cifar10,
    sarcos::SarcosConfig => Sarcos,
    birdsong::BirdsongConfig => Birdsong,
}

pub use cifar10::Cifar10Config;
pub use data::DataError;
pub use images::{ImageClassification, ImageSets, ImageSplit, LabelledImages};
pub use linear::{LinearTeacher, LinearTeacherConfig};
pub use mnist::MnistConfig;
pub use registry::{MetricSpec, TaskContext, TaskError, TheoryBasis, TrialSetup};
pub use sarcos::{SarcosConfig, SarcosTask};
pub use task::Task;
pub use theory::{LinearDims, TheorySettings};
