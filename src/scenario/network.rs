//! Network scenarios: a spiking network that runs on its own — no task, no learning — for a
//! stretch of network time, recording its spikes and population rates (the Vogels–Abbott
//! COBA benchmark, `scenarios/coba.ron`, is one).
//!
//! A scenario file is a network scenario when it has a `network:` field instead of
//! `circuit:`, `task:` and `rule:`; `npsim run` and `npsim validate` take either kind. The
//! data flow is the same: RON → [`NetworkScenarioConfig`] (errors located at file:line:column)
//! → `--set` overrides on its JSON form → [`NetworkScenario::plan`], which checks everything
//! once → the run (`crate::network_run`).

use std::path::{Path, PathBuf};

use npsim_core::network::{InitialState, SpikingNetwork, check_initial, check_network};
use npsim_core::{Circuit, CircuitBlueprint, CircuitConfig, SeedStreams};
use serde::{Deserialize, Serialize};

use super::{ScenarioError, check_version, located, overrides, read_text, ron_options, split_override};

fn default_seed() -> u64 {
    1
}
fn default_bin() -> f64 {
    100.0
}

/// How long to run and at what resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "simulate")]
pub struct SimulateConfig {
    /// Network time to simulate, ms.
    pub duration: f64,
    /// Step, ms.
    pub dt: f64,
    /// Width of the bins the population rates are recorded in, ms (default 100; a whole
    /// number of steps).
    #[serde(default = "default_bin")]
    pub bin: f64,
}

/// What is recorded beside the population rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "record")]
pub struct NetworkRecordConfig {
    /// Populations whose every spike is recorded (default none).
    #[serde(default)]
    pub spikes: Vec<String>,
}

/// A network scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "scenario")]
pub struct NetworkScenarioConfig {
    /// Format version; must be 1.
    pub version: u32,
    /// Name; the default output is `runs/<name>.h5`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Seed of the connectivity, weights and initial state (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The network: `Lif` populations and the projections between them, written like an
    /// `Explicit(..)` circuit.
    pub network: CircuitConfig,
    /// Duration and step.
    pub simulate: SimulateConfig,
    /// Starting potentials and synaptic traces other than rest (default: at rest).
    #[serde(default)]
    pub initial: InitialState,
    /// Spikes to record.
    #[serde(default)]
    pub record: NetworkRecordConfig,
    /// Files written beside the recording at the end (`output: (nwb: true)`).
    #[serde(default)]
    pub output: super::config::OutputConfig,
}

/// Whether scenario text describes a free-running network (it has a `network:` field).
pub fn is_network_scenario(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        network: Option<serde::de::IgnoredAny>,
    }
    ron_options()
        .from_str::<Probe>(text)
        .is_ok_and(|probe| probe.network.is_some())
}

/// A network scenario as read from a file.
#[derive(Debug, Clone)]
pub struct NetworkScenario {
    /// Where it came from.
    pub path: PathBuf,
    /// The file's text, recorded verbatim in outputs.
    pub text: String,
    /// The parsed configuration, with `--set` overrides applied.
    pub config: NetworkScenarioConfig,
    /// The `--set` overrides applied, in order.
    pub overrides: Vec<String>,
}

/// A checked network scenario, ready to run.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    /// The network's structure.
    pub blueprint: CircuitBlueprint,
    /// Steps to run.
    pub steps: u64,
    /// Steps per rate bin.
    pub bin_steps: u64,
    /// Populations whose spikes are recorded (index, name).
    pub spikes: Vec<(usize, String)>,
}

impl NetworkScenario {
    /// The network of a checked plan, its connectivity, weights and initial state drawn from
    /// the scenario's seed, on `threads` threads.
    pub fn build_network(&self, plan: &NetworkPlan, threads: usize) -> Result<SpikingNetwork, ScenarioError> {
        let c = &self.config;
        let streams = SeedStreams::new(c.seed);
        let mut circuit = Circuit::<f64>::instantiate(&plan.blueprint, &streams);
        SpikingNetwork::new(&mut circuit, &streams, c.simulate.dt, &c.initial, threads).map_err(|e| {
            ScenarioError::Invalid {
                field: "network".into(),
                message: e.to_string(),
            }
            .in_file(&self.path)
        })
    }

    /// Reads and parses a network scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        Self::parse(path, read_text(path)?)
    }

    /// Parses network scenario text; `path` is used in messages.
    pub fn parse(path: &Path, text: String) -> Result<Self, ScenarioError> {
        let config: NetworkScenarioConfig = ron_options().from_str(&text).map_err(|e| located(path, e))?;
        check_version(config.version, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
            config,
            overrides: Vec::new(),
        })
    }

    /// Applies `path=value` overrides (the CLI's `--set`), e.g. `simulate.duration=2000` or
    /// `network.projections.EE.init.value=0.007`.
    pub fn apply_overrides(&mut self, items: &[String]) -> Result<(), ScenarioError> {
        for item in items {
            let (path, value) = split_override(item, "simulate.duration=2000")?;
            self.config = overrides::set_path(&self.config, path, value.trim(), "--set")?;
            self.overrides.push(item.clone());
        }
        Ok(())
    }

    /// Checks everything once: the network, the step, the initial state, what is recorded.
    pub fn plan(&self) -> Result<NetworkPlan, ScenarioError> {
        self.check().map_err(|e| e.in_file(&self.path))
    }

    fn check(&self) -> Result<NetworkPlan, ScenarioError> {
        let c = &self.config;
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            field: field.into(),
            message,
        };
        let blueprint = c.network.build_network()?;
        super::plan::check_memory(blueprint.estimated_bytes(8, 1))?;
        let SimulateConfig { duration, dt, bin } = c.simulate;
        check_network(&blueprint, dt).map_err(|e| invalid("network", e.to_string()))?;
        if !(duration >= dt && duration.is_finite()) {
            return Err(invalid(
                "simulate.duration",
                format!("must be a finite number of ms, at least one step ({dt} ms), got {duration}"),
            ));
        }
        let whole_steps = |value: f64| {
            let steps = (value / dt).round();
            (steps >= 1.0 && ((steps * dt - value).abs() <= 1e-9 * value.abs().max(1.0)))
                .then_some(steps as u64)
        };
        let bin_steps = whole_steps(bin).ok_or_else(|| {
            invalid(
                "simulate.bin",
                format!("must be a whole number (>= 1) of steps of {dt} ms, got {bin} ms"),
            )
        })?;
        check_initial(&blueprint, &c.initial).map_err(|e| invalid("initial", e.to_string()))?;
        let spikes = c
            .record
            .spikes
            .iter()
            .map(|name| {
                blueprint
                    .population_index(name)
                    .map(|p| (p, name.clone()))
                    .ok_or_else(|| {
                        let known: Vec<&str> =
                            blueprint.populations().iter().map(|p| p.name.as_str()).collect();
                        invalid(
                            "record.spikes",
                            format!("population `{name}` does not exist; known: {}", known.join(", ")),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkPlan {
            steps: (duration / dt).round() as u64,
            bin_steps,
            spikes,
            blueprint,
        })
    }
}
