//! The commands that study recordings: `analyze`, `plot`, `merge`, `reproduce`, and the
//! resumption of interrupted sweeps shared by `run --resume` and `reproduce`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use npsim::analysis::{Analysis, AnalysisConfig};
use npsim::recorder::{self, Attr};
use npsim::runner;
use npsim::scenario::Scenario;

use super::recording_cli::print_report;
use super::{BadInput, interruptible_pool};

/// The analysis settings: those given, else those stored in the file's `/summary`, else the
/// defaults.
fn stored_analysis(file: &Path, target: Option<String>, smoothing: Option<usize>) -> Result<Analysis> {
    let (stored_target, stored_smoothing) = recorder::summary_settings(file);
    Ok(AnalysisConfig {
        target: target.or(stored_target),
        smoothing: smoothing.or(stored_smoothing).unwrap_or(5),
    }
    .build()
    .map_err(|e| BadInput(format!("--{}: {}", e.field, e.message)))?)
}

fn existing(file: &Path) -> Result<()> {
    if !file.exists() {
        return Err(BadInput(format!("no recording at `{}`", file.display())).into());
    }
    Ok(())
}

/// `npsim analyze`.
pub(super) fn analyze(
    file: &Path,
    target: Option<String>,
    smoothing: Option<usize>,
    json: bool,
) -> Result<ExitCode> {
    existing(file)?;
    let recording = recorder::read(file)?;
    if recording.attributes.get("scenario_kind") == Some(&recorder::Attr::Text("network".into())) {
        return Err(BadInput(format!(
            "`{}` records a network scenario, which does not learn: `analyze` studies learning curves; `npsim inspect` shows the network's rates and ISI CVs, `npsim plot` its rates over time",
            file.display()
        ))
        .into());
    }
    let analysis = stored_analysis(file, target, smoothing)?;
    let summary = npsim::analysis::analyse(&recording, &analysis);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.table());
    }
    let (attributes, tables) = summary.tables();
    recorder::write_summary(file, &attributes, &tables)?;
    Ok(ExitCode::SUCCESS)
}

/// `npsim plot`.
pub(super) fn plot(file: &Path, out: &Path, metric: Option<&str>) -> Result<ExitCode> {
    existing(file)?;
    let recording = recorder::read(file)?;
    let (metric, curves) =
        npsim::plot::curves(&recording, metric).map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let title = recording
        .attributes
        .get("scenario_name")
        .map(|a| a.to_string())
        .unwrap_or_default();
    let curves_path = out.join("learning_curves.svg");
    npsim::plot::draw_learning_curves(&metric, &curves, &title, &curves_path)?;
    println!(
        "wrote {} ({} curves of {metric})",
        curves_path.display(),
        curves.len()
    );
    let summary = npsim::analysis::analyse(&recording, &stored_analysis(file, None, None)?);
    let times_path = out.join("minimum_training_time.svg");
    if npsim::plot::draw_minimum_training_times(&summary, &times_path)?.is_some() {
        println!("wrote {}", times_path.display());
    }
    let phase_path = out.join("phase_plane.svg");
    if npsim::plot::draw_phase_plane(&recording, &title, &phase_path)?.is_some() {
        println!("wrote {}", phase_path.display());
    }
    let cosine_path = out.join("cosine.svg");
    if npsim::plot::draw_cosines(&recording, &summary, &cosine_path)?.is_some() {
        println!("wrote {}", cosine_path.display());
    }
    let instability_path = out.join("instability.svg");
    if npsim::plot::draw_instability(&summary, &instability_path)?.is_some() {
        println!("wrote {}", instability_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `npsim merge`.
pub(super) fn merge(parts: &[PathBuf], out: &Path, force: bool) -> Result<ExitCode> {
    let merged = npsim::cluster::merge(parts, out, force)?;
    let recording = recorder::read(&merged)?;
    // The scenario's own analysis settings, from its text and overrides stored in the file.
    let analysis = npsim::resume::recorded_scenario(&merged, &recording)
        .ok()
        .and_then(|s| s.config.analysis.build().ok())
        .unwrap_or_default();
    let (attributes, tables) = npsim::analysis::analyse(&recording, &analysis).tables();
    recorder::write_summary(&merged, &attributes, &tables)?;
    println!(
        "merged {} part(s), {} run(s) → {}",
        parts.len(),
        recording.runs.len(),
        merged.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// How `npsim reproduce` runs a figure, beyond which figure and scale.
pub(super) struct ReproduceOptions {
    /// Overrides on top of the scale's.
    pub set: Vec<String>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// Folder of datasets.
    pub data_dir: Option<PathBuf>,
    /// No progress bar.
    pub quiet: bool,
}

/// `npsim reproduce`.
pub(super) fn reproduce_command(
    figure: Option<String>,
    list: bool,
    scale: &str,
    out: Option<PathBuf>,
    options: ReproduceOptions,
) -> Result<ExitCode> {
    if list {
        print!("{}", npsim::reproduce::list());
        return Ok(ExitCode::SUCCESS);
    }
    let name = figure.expect("clap requires it without --list");
    let Some(figure) = npsim::reproduce::find(&name) else {
        let names: Vec<&str> = npsim::reproduce::FIGURES.iter().map(|f| f.name).collect();
        return Err(BadInput(format!(
            "no figure `{name}`; reproducible: {} (`npsim reproduce --list` says what each shows)",
            names.join(", ")
        ))
        .into());
    };
    reproduce(figure, scale, out, options)
}

/// Writes a finished recording's `/summary`, printing it when the scenario asks for one.
pub(super) fn summarise(scenario: &Scenario, path: &Path, quiet: bool) -> Result<()> {
    let analysis = scenario.config.analysis.build().unwrap_or_default();
    let summary = npsim::analysis::analyse(&recorder::read(path)?, &analysis);
    let (attributes, tables) = summary.tables();
    recorder::write_summary(path, &attributes, &tables)?;
    if scenario.config.analysis.target.is_some() && !quiet {
        println!("\n{}", summary.table());
    }
    Ok(())
}

/// `npsim reproduce FIGURE`.
fn reproduce(
    figure: &npsim::reproduce::Figure,
    scale: &str,
    out: Option<PathBuf>,
    options: ReproduceOptions,
) -> Result<ExitCode> {
    let ReproduceOptions {
        set: extra,
        threads,
        data_dir,
        quiet,
    } = options;
    let out = out.unwrap_or_else(|| PathBuf::from("reproduce").join(figure.name));
    let recording = out.join(format!("{}_{scale}.h5", figure.name));
    let (file, text, overrides) = figure.scenario_at(scale);
    let mut set: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    set.extend(extra);
    set.push(format!("analysis.target=\"{}\"", figure.target));
    let partial = recorder::partial_path(&recording);
    if let Some(existing) = [&recording, &partial].into_iter().find(|p| p.exists()) {
        let recorded = recorder::read(existing)?;
        let stored = |name: &str| match recorded.attributes.get(name) {
            Some(Attr::Text(text)) => text.clone(),
            _ => String::new(),
        };
        let problem = if stored("overrides") != set.join("\n") {
            Some(format!(
                "with other settings (--set {}) than asked for now (--set {})",
                stored("overrides").replace('\n', " --set "),
                set.join(" --set ")
            ))
        } else if stored("scenario") != text {
            Some(format!("from another version of `{file}` than this npsim's"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(BadInput(format!(
                "`{}` was recorded {problem}; remove it or give another --out",
                existing.display()
            ))
            .into());
        }
    }
    if recording.exists() {
        println!("reusing {}", recording.display());
    } else if partial.exists() {
        let code = resume_sweep(&recording, data_dir, threads, quiet)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    } else {
        let mut scenario = Scenario::parse(&Path::new("scenarios").join(file), text.to_string())?;
        scenario.apply_overrides(&set)?;
        if let Some(dir) = data_dir {
            scenario.data_dir = dir;
        }
        runner::plans(&scenario)?;
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
        let (pool, stop) = interruptible_pool(threads)?;
        eprintln!(
            "{}: {} at {scale} scale (expected about {} min on 2 cores) → {}",
            figure.name,
            figure.shows,
            if scale == "paper" {
                figure.minutes.1
            } else {
                figure.minutes.0
            },
            recording.display()
        );
        let report = pool.install(|| runner::run(&scenario, &recording, false, !quiet, &stop))?;
        print_report(&report);
        if report.interrupted {
            eprintln!(
                "interrupted: `npsim reproduce {} --scale {scale}` again resumes it",
                figure.name
            );
            return Ok(ExitCode::from(130));
        }
        summarise(&scenario, &report.path, true)?;
    }
    let file = recorder::read(&recording)?;
    let analysis = stored_analysis(&recording, None, None)?;
    let summary = npsim::analysis::analyse(&file, &analysis);
    println!("{}", summary.table());
    let metric = analysis.target.metric.clone();
    let (metric, curves) = npsim::plot::curves(&file, metric.as_deref())?;
    // What the figure shows is printed; a caption that long would be cut off.
    let title = format!("{} ({})", figure.name, figure.scenario_at(scale).0);
    npsim::plot::draw_learning_curves(&metric, &curves, &title, &out.join("learning_curves.svg"))?;
    npsim::plot::draw_minimum_training_times(&summary, &out.join("minimum_training_time.svg"))?;
    npsim::plot::draw_instability(&summary, &out.join("instability.svg"))?;
    npsim::plot::draw_phase_plane(&file, &title, &out.join("phase_plane.svg"))?;
    npsim::plot::draw_cosines(&file, &summary, &out.join("cosine.svg"))?;
    println!(
        "the paper found: {}\nfigures in {}",
        figure.paper_found,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `npsim run --resume FILE`.
pub(super) fn resume_sweep(
    file: &Path,
    data_dir: Option<PathBuf>,
    threads: Option<usize>,
    quiet: bool,
) -> Result<ExitCode> {
    let (pool, stop) = interruptible_pool(threads)?;
    let resumed = pool.install(|| npsim::resume::resume(file, data_dir, !quiet, &stop))?;
    match &resumed.redone {
        None => println!(
            "every run had ended ({} kept): {}",
            resumed.kept,
            resumed.path.display()
        ),
        Some(report) => {
            println!(
                "kept {} run(s) that had ended; redid {}:",
                resumed.kept,
                report.rows.len()
            );
            print_report(report);
        }
    }
    if resumed.path.extension().is_some_and(|e| e == "partial") {
        eprintln!(
            "interrupted again: resume once more with `npsim run --resume {}`",
            resumed.path.display()
        );
        return Ok(ExitCode::from(130));
    }
    let recording = recorder::read(&resumed.path)?;
    if let Ok(scenario) = npsim::resume::recorded_scenario(&resumed.path, &recording) {
        summarise(&scenario, &resumed.path, quiet)?;
        super::write_outputs(&scenario.config.output, &resumed.path, true)?;
    }
    println!("recording: {}", resumed.path.display());
    Ok(ExitCode::SUCCESS)
}
