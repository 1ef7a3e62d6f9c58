//! # npsim-models
//!
//! Tasks and theory for npsim's scenarios: the deep linear student–teacher of the paper's
//! Section 4 ([`linear`]) and its mean-field theory ([`theory`]).

pub mod cifar10;
pub mod linear;
pub mod mnist;
pub mod sarcos;
pub mod task;
pub mod theory;

pub use cifar10::Cifar10Config;
pub use linear::{DeepLinearConfig, LinearTaskError, LinearTeacher, LinearTeacherConfig};
pub use mnist::{MnistConfig, MnistSplit, MnistTask};
pub use sarcos::{SarcosConfig, SarcosTask};
pub use task::Task;
pub use theory::{LinearDims, TheorySettings};
