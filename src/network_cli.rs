//! `npsim run` and `npsim validate` for network scenarios (a spiking network that runs on its
//! own; see `npsim::scenario::network`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use npsim::scenario::network::{NetworkScenario, is_network_scenario};

use super::{BadInput, interruptible_pool};

/// Whether the file at `path` is a network scenario (unreadable files are not: the ordinary
/// loader then reports why).
pub(super) fn is_network_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| is_network_scenario(&text))
}

fn load(path: &Path, set: &[String]) -> Result<NetworkScenario> {
    let mut scenario = NetworkScenario::load(path)?;
    scenario.apply_overrides(set)?;
    Ok(scenario)
}

/// The options of `npsim run` that a network scenario takes.
pub(super) struct NetworkRunArgs<'a> {
    pub(super) path: &'a Path,
    pub(super) set: &'a [String],
    pub(super) out: Option<PathBuf>,
    pub(super) force: bool,
    pub(super) quiet: bool,
    pub(super) threads: Option<usize>,
    /// Options of sweeps that do not apply, by flag, if given.
    pub(super) sweep_only: Option<&'static str>,
}

/// `npsim run NETWORK.ron`.
pub(super) fn run(args: NetworkRunArgs<'_>) -> Result<ExitCode> {
    if let Some(flag) = args.sweep_only {
        return Err(BadInput(format!(
            "{flag} applies to sweeps of scenarios with a task; `{}` is a network scenario, which runs once",
            args.path.display()
        ))
        .into());
    }
    let scenario = load(args.path, args.set)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}.h5", scenario.config.name)));
    if out.exists() && !args.force {
        return Err(npsim::recorder::RecorderError::Exists(out).into());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (_pool, stop) = interruptible_pool(Some(1))?;
    if !args.quiet {
        eprintln!(
            "{}: network of {} neurons, {} ms at dt {} ms, {threads} thread(s) → {}",
            scenario.config.name,
            scenario
                .plan()?
                .blueprint
                .populations()
                .iter()
                .map(|p| p.size)
                .sum::<usize>(),
            scenario.config.simulate.duration,
            scenario.config.simulate.dt,
            out.display()
        );
    }
    let report = npsim::network_run::run(&scenario, &out, args.force, threads, !args.quiet, &stop)?;
    println!(
        "{:<12} {:>14} {:>12}",
        "population", "mean_rate_hz", "mean_isi_cv"
    );
    for p in &report.populations {
        println!("{:<12} {:>14.3} {:>12.3}", p.name, p.mean_rate, p.mean_cv);
    }
    println!("steps: {}", report.steps_done);
    println!("recording: {}", report.path.display());
    if report.interrupted {
        eprintln!("interrupted: partial recording kept at {}", report.path.display());
        return Ok(ExitCode::from(130));
    }
    super::write_outputs(&scenario.config.output, &report.path, args.force)?;
    Ok(ExitCode::SUCCESS)
}

/// `npsim validate NETWORK.ron`.
pub(super) fn validate(path: &Path, set: &[String]) -> Result<ExitCode> {
    let scenario = load(path, set)?;
    let plan = scenario.plan()?;
    println!(
        "{}: valid network scenario, {} populations, {} steps",
        path.display(),
        plan.blueprint.populations().len(),
        plan.steps
    );
    Ok(ExitCode::SUCCESS)
}

/// For a network recording (`npsim inspect`), each run's mean rate and ISI CV per population.
pub(super) fn print_firing(summary: &npsim::recorder::FileSummary) {
    use npsim::recorder::Attr;
    if summary.attributes.get("scenario_kind") != Some(&Attr::Text("network".into())) {
        return;
    }
    for run in &summary.runs {
        let mut populations: Vec<(&str, f64)> = run
            .attributes
            .iter()
            .filter_map(|(k, v)| match (k.strip_prefix("mean_rate_"), v) {
                (Some(name), Attr::Float(rate)) => Some((name, *rate)),
                _ => None,
            })
            .collect();
        populations.sort_by(|a, b| a.0.cmp(b.0));
        for (name, rate) in populations {
            let cv = match run.attributes.get(&format!("mean_cv_{name}")) {
                Some(Attr::Float(cv)) => format!("{cv:.3}"),
                _ => "-".into(),
            };
            println!("{}: {name}: mean rate {rate:.3} Hz, mean ISI CV {cv}", run.group);
        }
    }
}
