//! `record`: spikes and traces of chosen populations, recorded while a task in time runs.

use npsim_core::{CircuitBlueprint, Invalid, TrialTiming};
use serde::{Deserialize, Serialize};

/// What a trace samples (see [`RecordConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "variable")]
pub enum TraceVariable {
    /// A `Lif` population's membrane potential (mV); a rate population's summed input `u`.
    State,
    /// Activity: a rate, or 1 in a step with a spike.
    Activity,
    /// The perturbation the unit received (intrinsic noise plus what noise sources delivered
    /// beyond their mean; 0 in a rendition without noise).
    Noise,
}

/// One sampled trace: some units of a population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "trace")]
pub struct TraceConfig {
    /// The population.
    pub population: String,
    /// Its units to sample, by index.
    pub units: Vec<usize>,
    /// What to sample (default `State`).
    #[serde(default = "default_variable")]
    pub variable: TraceVariable,
}

fn default_variable() -> TraceVariable {
    TraceVariable::State
}

/// `record: (spikes: [..], traces: [..], trace_interval: ms)`: activity recorded while a task
/// in time runs, at every record step (`train.record_every`), from the renditions of that
/// update — the noisy ones when the rule perturbs, else the noise-free ones.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "record")]
pub struct RecordConfig {
    /// Populations whose spikes are recorded (`Lif` or `Poisson`).
    #[serde(default)]
    pub spikes: Vec<String>,
    /// Traces of chosen units.
    #[serde(default)]
    pub traces: Vec<TraceConfig>,
    /// ms between trace samples (default: every step).
    #[serde(default)]
    pub trace_interval: Option<f64>,
}

/// One validated trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePlan {
    /// Population index.
    pub population: usize,
    /// Population name.
    pub name: String,
    /// Units sampled.
    pub units: Vec<usize>,
    /// What is sampled.
    pub variable: TraceVariable,
}

/// What a run records of its renditions, checked against the circuit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordPlan {
    /// Spiking populations recorded: index and name.
    pub spikes: Vec<(usize, String)>,
    /// Traces.
    pub traces: Vec<TracePlan>,
    /// Steps between trace samples.
    pub trace_every: usize,
    /// The step, ms.
    pub dt: f64,
}

impl TracePlan {
    /// Where its samples go under the run's group: `traces/<population>/<variable>`.
    pub fn path(&self) -> String {
        let variable = match self.variable {
            TraceVariable::State => "state",
            TraceVariable::Activity => "activity",
            TraceVariable::Noise => "noise",
        };
        format!("traces/{}/{variable}", self.name)
    }
}

impl RecordPlan {
    /// Whether anything is recorded.
    pub fn is_empty(&self) -> bool {
        self.spikes.is_empty() && self.traces.is_empty()
    }
}

impl RecordConfig {
    /// Whether it records nothing (the default).
    pub fn is_empty(&self) -> bool {
        self.spikes.is_empty() && self.traces.is_empty() && self.trace_interval.is_none()
    }

    /// Checks the names, units and interval against the circuit and the task's time axis
    /// (`None` for a static task); fields are relative to `record`.
    pub fn plan(
        &self,
        blueprint: &CircuitBlueprint,
        timing: Option<TrialTiming>,
    ) -> Result<RecordPlan, Invalid> {
        if self.spikes.is_empty() && self.traces.is_empty() {
            return Ok(RecordPlan::default());
        }
        let Some(timing) = timing else {
            return Err(Invalid::new(
                "",
                "spikes and traces are recorded from renditions in time, but this task presents static samples: remove `record`, or use a task in time such as `Birdsong`",
            ));
        };
        let names = || {
            blueprint
                .populations()
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |field: String, name: &str| {
            blueprint
                .populations()
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| {
                    Invalid::new(
                        field,
                        format!("no population `{name}`; the circuit has {}", names()),
                    )
                })
        };
        let mut spikes = Vec::new();
        for (i, name) in self.spikes.iter().enumerate() {
            let p = find(format!("spikes[{i}]"), name)?;
            let model = blueprint.populations()[p].model;
            if !(model.is_spiking() || model.is_source()) {
                return Err(Invalid::new(
                    format!("spikes[{i}]"),
                    format!(
                        "population `{name}` does not spike (only `Lif` and `Poisson` populations do): record its activity in `traces` instead"
                    ),
                ));
            }
            spikes.push((p, name.clone()));
        }
        let mut traces = Vec::new();
        for (i, trace) in self.traces.iter().enumerate() {
            let p = find(format!("traces[{i}].population"), &trace.population)?;
            let size = blueprint.populations()[p].size;
            if trace.units.is_empty() {
                return Err(Invalid::new(
                    format!("traces[{i}].units"),
                    "name at least one unit, e.g. `units: [0, 1, 2]`",
                ));
            }
            if let Some(&unit) = trace.units.iter().find(|&&u| u >= size) {
                return Err(Invalid::new(
                    format!("traces[{i}].units"),
                    format!(
                        "unit {unit} does not exist: `{}` has units 0 to {}",
                        trace.population,
                        size - 1
                    ),
                ));
            }
            if traces
                .iter()
                .any(|t: &TracePlan| t.population == p && t.variable == trace.variable)
            {
                return Err(Invalid::new(
                    format!("traces[{i}]"),
                    format!(
                        "`{}`'s {:?} is traced twice: list all its units in one trace",
                        trace.population, trace.variable
                    ),
                ));
            }
            traces.push(TracePlan {
                population: p,
                name: trace.population.clone(),
                units: trace.units.clone(),
                variable: trace.variable,
            });
        }
        let trace_every = match self.trace_interval {
            None => 1,
            Some(ms) if ms > 0.0 && ms.is_finite() => ((ms / timing.dt).round() as usize).max(1),
            Some(ms) => {
                return Err(Invalid::new(
                    "trace_interval",
                    format!("must be a finite number of ms > 0, got {ms}"),
                ));
            }
        };
        Ok(RecordPlan {
            spikes,
            traces,
            trace_every,
            dt: timing.dt,
        })
    }
}
