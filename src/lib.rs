//! # npsim
//!
//! Scenarios, simulation runs and recordings: the library behind the `npsim` command.

pub mod analysis;
pub mod bench;
pub mod catalog;
pub mod cluster;
pub mod export;
pub mod fetch;
pub mod network_run;
pub mod plot;
pub mod plugin;
pub mod recorder;
pub mod reproduce;
pub mod resume;
pub mod runner;
pub mod scenario;
pub mod simulate;
