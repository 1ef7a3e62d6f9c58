//! The mean-field theory's minimum training time beside a group of runs on the linear network
//! (paper Eq. 13: the lines of Fig. 2).
//!
//! A group qualifies when every run in it is NP (with the paper's clean baseline: the runs
//! carry the theory's curves) or SGD on the one-hidden-layer linear network learning a linear
//! teacher (the runs record `eta_star`), without updates after the rule (normalisation,
//! decay), all with the same sizes, initial scale and teacher noise, and the analysed metric
//! is `epsilon`. The target is the analysis's:
//! a percentage of the theory's `ε0`, or an absolute `ε`.

use npsim_core::Attr;
use npsim_models::theory::{LinearDims, MinimumTrainingTime, Model, TheorySettings};
use serde::Serialize;

use super::{RunResult, Threshold};
use crate::recorder::RunSummary;

/// What the theory needs to know about a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearSetting {
    /// Layer sizes.
    pub dims: LinearDims,
    /// Initial scale `r` of `W1`.
    pub init_scale: f64,
    /// Teacher noise variance `σt²`.
    pub teacher_noise_var: f64,
    /// SGD (else NP).
    pub sgd: bool,
    /// Iterations the run was asked for.
    pub steps: f64,
}

/// The setting of a run the theory describes, `None` for any other run.
pub fn linear_setting(run: &RunSummary) -> Option<LinearSetting> {
    let number = |key: &str| match run.attributes.get(key)? {
        Attr::Float(v) => Some(*v),
        Attr::Int(v) => Some(*v as f64),
        _ => None,
    };
    let size = |key: &str| number(key).filter(|v| *v >= 1.0).map(|v| v as usize);
    number("eta_star")?;
    // The theory knows neither normalisation nor decay after updates.
    if run
        .attributes
        .get("post_update")
        .is_some_and(|p| !p.to_string().is_empty())
    {
        return None;
    }
    let sgd = match run.attributes.get("rule")?.to_string().as_str() {
        "sgd" => true,
        // NP runs carry the theory's curves exactly when it describes them (the paper's clean
        // baseline).
        "node_perturbation" if !run.theory.is_empty() => false,
        _ => return None,
    };
    Some(LinearSetting {
        dims: LinearDims {
            lx: size("lx")?,
            lh: size("lh")?,
            ly: size("ly")?,
        },
        init_scale: number("init_scale")?,
        teacher_noise_var: number("teacher_noise_std")?.powi(2),
        sgd,
        steps: number("steps")?,
    })
}

/// The theory's minimum training times for a group's runs, when it describes them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupTheory {
    /// Paper Eq. 13: SGD's `Lx log(ε0/ε_target)`; NP's two-variable model (a wide hidden
    /// layer) minimised over the rate.
    pub eq13: Option<MinimumTrainingTime>,
    /// NP's four-variable model (finite widths) minimised over the rate.
    pub four_variable: Option<MinimumTrainingTime>,
}

/// The theory's minimum training times for a group's runs, when it describes them. NP's search
/// over rates is bounded at ten times the longest run (at least 10⁵ iterations): a time
/// beyond that could not be compared with the runs anyway.
pub fn group_minimum(members: &[&RunResult], threshold: Threshold) -> Option<GroupTheory> {
    let first = members.first()?.linear?;
    if members
        .iter()
        .any(|r| r.metric != "epsilon" || r.linear.is_none_or(|s| !same_setting(&s, &first)))
    {
        return None;
    }
    let eps0 = first.dims.initial_state(first.init_scale).epsilon;
    let target = match threshold {
        Threshold::Absolute(v) => v,
        Threshold::RelativeToInitial(fraction) => fraction * eps0,
    };
    if first.sgd {
        // Eq. 13's SGD time holds without teacher noise, from above the target.
        return (first.teacher_noise_var == 0.0 && target > 0.0 && target < eps0).then(|| GroupTheory {
            eq13: Some(first.dims.sgd_minimum_training_time(first.init_scale, target)),
            four_variable: None,
        });
    }
    let longest = members
        .iter()
        .filter_map(|r| r.linear.map(|s| s.steps))
        .fold(0.0, f64::max);
    let bound = (10.0 * longest).clamp(1e5, 1e9) as u64;
    let minimum = |model| {
        first
            .dims
            .np_minimum_training_time(model, first.init_scale, first.teacher_noise_var, target, bound)
    };
    Some(GroupTheory {
        eq13: minimum(Model::TwoVariable),
        four_variable: minimum(Model::FourVariable),
    })
}

fn same_setting(a: &LinearSetting, b: &LinearSetting) -> bool {
    a.dims == b.dims
        && a.init_scale == b.init_scale
        && a.teacher_noise_var == b.teacher_noise_var
        && a.sgd == b.sgd
}

/// The theory's times to instability at one learning rate (paper Fig. 3B's lines).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InstabilityPoint {
    /// The learning rate η.
    pub learning_rate: f64,
    /// The two-variable model's `τc`: the first iteration at which `ε` rises (Eq. 84a).
    pub onset: Option<f64>,
    /// The four-variable model's.
    pub onset_four_variable: Option<f64>,
    /// The two-variable model's return of `ε` to its initial value.
    pub back_at_initial: Option<f64>,
}

/// The theory's times to instability for NP runs in `setting` at `points` rates spaced evenly
/// in log from `lowest` to `highest`, each model iterated for at most `max_steps`.
pub fn instability_lines(
    setting: &LinearSetting,
    (lowest, highest): (f64, f64),
    points: usize,
    max_steps: u64,
) -> Vec<InstabilityPoint> {
    (0..points)
        .map(|k| {
            let learning_rate = lowest * (highest / lowest).powf(k as f64 / (points.max(2) - 1) as f64);
            let settings = TheorySettings {
                dims: setting.dims,
                init_scale: setting.init_scale,
                learning_rate,
                teacher_noise_var: setting.teacher_noise_var,
            };
            InstabilityPoint {
                learning_rate,
                onset: settings.instability_onset(max_steps).map(|(step, _)| step as f64),
                onset_four_variable: settings
                    .four_variable_instability_onset(max_steps)
                    .map(|s| s as f64),
                back_at_initial: settings.return_to_initial(max_steps).map(|s| s as f64),
            }
        })
        .collect()
}
