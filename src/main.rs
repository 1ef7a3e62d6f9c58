//! The `npsim` command: run, validate and inspect scenarios; theory; benchmarks.
//!
//! Why one long file: it holds only the command line's argument types and their dispatch to
//! the library, where each command's work lives.

mod bench_cli;
mod network_cli;
mod recording_cli;
mod study_cli;
use study_cli::ReproduceOptions;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use npsim::recorder::{self, Attr};
use npsim::runner::{self, RunError};
use npsim::scenario::{Scenario, ScenarioError};
use npsim_models::{LinearDims, TheorySettings};

#[derive(Parser)]
#[command(
    name = "npsim",
    version,
    about = "Simulate neural circuits that learn from their own noise"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and record it to HDF5.
    Run {
        /// The scenario (RON).
        #[arg(required_unless_present = "resume")]
        scenario: Option<PathBuf>,
        /// Finish an interrupted sweep recorded in FILE (or FILE.partial): keep the runs that
        /// ended, redo the others; the scenario and overrides come from the file.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "out", "seed", "set", "only_run", "emit_slurm", "force"])]
        resume: Option<PathBuf>,
        /// Output file (default `runs/<scenario name>.h5`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override a field: `--set train.steps=2000` (repeatable; see docs/scenarios.md).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Replace an existing output file (only once the new one is complete).
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Worker threads (default: all cores).
        #[arg(long, value_parser = thread_count)]
        threads: Option<usize>,
        /// Folder of datasets (default: $NPSIM_DATA, else `data`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Run only this run of the sweep (0-based; a cluster array task's share).
        #[arg(long, value_name = "INDEX", conflicts_with = "emit_slurm")]
        only_run: Option<usize>,
        /// Write a SLURM job-array script (one task per run) into DIR instead of running.
        #[arg(long, value_name = "DIR")]
        emit_slurm: Option<PathBuf>,
    },
    /// Combine the part files of a cluster sweep into one recording laid out like a local sweep.
    Merge {
        /// The parts (`DIR/part_*.h5`).
        parts: Vec<PathBuf>,
        /// The merged file.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Check a scenario without running it.
    Validate {
        /// The scenario (RON).
        scenario: PathBuf,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Folder of datasets (default: $NPSIM_DATA, else `data`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Mean-field theory of the deep linear network.
    Theory {
        #[command(subcommand)]
        what: TheoryCommand,
    },
    /// Convert a recording for sharing: `npsim export nwb FILE.h5 --out FILE.nwb`.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// List the runs in a recording with their status and final metrics.
    Inspect {
        /// The HDF5 file.
        file: PathBuf,
    },
    /// Draw a recording's figures (SVG): learning curves, and minimum training time against
    /// the swept size when the sweep has one.
    Plot {
        /// The HDF5 file.
        file: PathBuf,
        /// Folder for the figures.
        #[arg(long)]
        out: PathBuf,
        /// The metric of the learning curves (default: the runs' error metric).
        #[arg(long)]
        metric: Option<String>,
    },
    /// Reproduce a figure of the paper: run its scenario (reusing a complete recording,
    /// resuming an interrupted one), analyse it and draw it.
    Reproduce {
        /// The figure (`npsim reproduce --list`).
        #[arg(required_unless_present = "list")]
        figure: Option<String>,
        /// List the figures: what each shows, what the paper found, expected run times.
        #[arg(long)]
        list: bool,
        /// `quick` (minutes, reduced sizes) or `paper` (the paper's sizes; hours).
        #[arg(long, default_value = "quick", value_parser = ["quick", "paper"])]
        scale: String,
        /// Folder for the recording and figures (default `reproduce/<figure>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a field on top of the scale's, as for `run`: e.g. `--set
        /// 'task.split=TestSetSplit(train: 8000)'` where only MNIST's test set is at hand.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Worker threads (default: all cores).
        #[arg(long, value_parser = thread_count)]
        threads: Option<usize>,
        /// Folder of datasets (default: $NPSIM_DATA, else `data`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Summarise a recording: time to target, minimum training time over learning rates,
    /// onset of instability; printed and stored under `/summary` in the file.
    Analyze {
        /// The HDF5 file.
        file: PathBuf,
        /// `metric=value` or `metric=percent%` of its initial value (default: the scenario's
        /// `analysis.target`, else each run's error metric at 1 %: `error_metric=1%`).
        #[arg(long)]
        target: Option<String>,
        /// Records in the moving average that finds the minimum (default: the stored one, else 5).
        #[arg(long)]
        smoothing: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the learning rules and post-update steps, built in or from a plugin library.
    Rules {
        /// Also list the rules of this plugin library.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        what: bench_cli::BenchCommand,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download a dataset (mnist, cifar10 or sarcos) into the data directory and verify it;
    /// an interrupted download resumes when run again.
    Fetch {
        /// mnist, cifar10 or sarcos.
        dataset: String,
        /// Folder of datasets (default: $NPSIM_DATA, else `data`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Base address to download from instead of the canonical sources (repeatable).
        #[arg(long)]
        mirror: Vec<String>,
        /// Only these files of the dataset (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        files: Vec<String>,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct Dims {
    /// Input size.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    lx: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    lh: usize,
    /// Output size.
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    ly: usize,
    /// Scale r of W1's initial variance.
    #[arg(long, default_value_t = 1.0, value_parser = finite_non_negative)]
    init_scale: f64,
}

impl Dims {
    fn dims(&self) -> LinearDims {
        LinearDims {
            lx: self.lx,
            lh: self.lh,
            ly: self.ly,
        }
    }
}

#[derive(Subcommand)]
enum ExportCommand {
    /// An NWB 2.x file (Neurodata Without Borders): the scenario under /general, each run's
    /// metrics as TimeSeries in /processing/<run>, recorded spikes as /units, final weights in
    /// /analysis. Reads in pynwb, NWB Widgets and pynapple.
    Nwb {
        /// The recording (`.h5`, or a `.partial` one).
        file: PathBuf,
        /// The NWB file to write (default: FILE with the extension `.nwb`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum TheoryCommand {
    /// NP's critical learning rate η* and SGD's optimal rate.
    EtaStar {
        #[command(flatten)]
        dims: Dims,
    },
    /// Theory curves (two- and four-variable models) to a CSV or HDF5 file.
    Trajectory {
        #[command(flatten)]
        dims: Dims,
        /// Learning rate relative to η* (default 1).
        #[arg(long, conflicts_with = "eta")]
        eta_relative: Option<f64>,
        /// Absolute learning rate η, instead of `--eta-relative`.
        #[arg(long)]
        eta: Option<f64>,
        /// Teacher noise std σt.
        #[arg(long, default_value_t = 0.0, value_parser = finite_non_negative)]
        teacher_noise_std: f64,
        /// Iterations (at most 10⁹: the theory is integrated one iteration at a time).
        #[arg(long, default_value_t = 100_000, value_parser = iterations)]
        steps: u64,
        /// Record every this many iterations.
        #[arg(long, default_value_t = 100, value_parser = iterations)]
        record_every: u64,
        /// Output: `.h5` for HDF5, anything else for CSV.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    F32,
    F64,
}

fn finite_non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("must be a finite number ≥ 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn iterations(text: &str) -> Result<u64, String> {
    const MOST: u64 = 1_000_000_000;
    match text.parse::<u64>() {
        Ok(n) if n <= MOST => Ok(n),
        Ok(n) => Err(format!("must be at most {MOST}, got {n}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A worker thread count: at least one, and no more than a machine could use.
fn thread_count(text: &str) -> Result<usize, String> {
    const MOST: usize = 1024;
    match text.parse::<usize>() {
        Ok(n) if (1..=MOST).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "must be 1 to {MOST} (this machine has {} cores; leave the option out to use them all), got {n}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Exit status for input the user must fix (bad scenario, existing output).
const BAD_INPUT: u8 = 2;

/// A mistake in the command line the user must fix: exit status 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A write past the file-size limit (`ulimit -f`, a cluster's quota) would otherwise kill
    // npsim without a word: with the signal caught, the write fails with EFBIG and the run
    // ends with a message, its recording readable up to the last flush.
    #[cfg(unix)]
    let _ = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, Arc::new(AtomicBool::new(false)));
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            let bad_input = err.chain().any(|e| {
                e.downcast_ref::<ScenarioError>().is_some()
                    || e.downcast_ref::<BadInput>().is_some()
                    || matches!(
                        e.downcast_ref::<RunError>(),
                        Some(RunError::Scenario(_) | RunError::NoSuchRun { .. })
                    )
                    || matches!(
                        e.downcast_ref::<npsim::resume::ResumeError>(),
                        Some(
                            npsim::resume::ResumeError::NotFound(_)
                                | npsim::resume::ResumeError::NotARecording { .. }
                                | npsim::resume::ResumeError::Mismatch { .. }
                                | npsim::resume::ResumeError::Scenario { .. }
                        )
                    )
                    || matches!(
                        e.downcast_ref::<npsim::cluster::ClusterError>(),
                        Some(
                            npsim::cluster::ClusterError::NoParts
                                | npsim::cluster::ClusterError::Mismatch { .. }
                                | npsim::cluster::ClusterError::Duplicate { .. }
                                | npsim::cluster::ClusterError::Missing { .. }
                                | npsim::cluster::ClusterError::Recorder(recorder::RecorderError::Exists(_))
                        )
                    )
                    || matches!(
                        e.downcast_ref::<recorder::RecorderError>(),
                        Some(recorder::RecorderError::Exists(_))
                    )
                    || matches!(
                        e.downcast_ref::<RunError>(),
                        Some(RunError::Recorder(recorder::RecorderError::Exists(_)))
                    )
                    || matches!(
                        e.downcast_ref::<npsim::fetch::FetchError>(),
                        Some(
                            npsim::fetch::FetchError::UnknownDataset(_)
                                | npsim::fetch::FetchError::UnknownFile { .. }
                        )
                    )
            });
            ExitCode::from(if bad_input { BAD_INPUT } else { 1 })
        }
    }
}

/// Writes what the scenario's `output` asks for beside a finished recording.
fn write_outputs(
    output: &npsim::scenario::config::OutputConfig,
    recording: &Path,
    force: bool,
) -> Result<()> {
    if let Some(report) = npsim::export::write_outputs(output, recording, force)? {
        println!("nwb: {}", report.path.display());
    }
    Ok(())
}

/// The worker pool of a sweep, and the flag Ctrl-C or SIGTERM raises: runs stop after their
/// current update; a second signal while they wind down is ignored.
fn interruptible_pool(threads: Option<usize>) -> Result<(rayon::ThreadPool, Arc<AtomicBool>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || handler_stop.store(true, Ordering::Relaxed));
    Ok((pool, stop))
}

fn load(path: &Path, set: &[String], data_dir: Option<PathBuf>) -> Result<Scenario> {
    let mut scenario = Scenario::load(path)?;
    scenario.apply_overrides(set)?;
    if let Some(dir) = data_dir {
        scenario.data_dir = dir;
    }
    Ok(scenario)
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            seed,
            mut set,
            force,
            quiet,
            threads,
            data_dir,
            only_run,
            emit_slurm,
            resume,
        } => {
            if let Some(file) = resume {
                return study_cli::resume_sweep(&file, data_dir, threads, quiet);
            }
            if let Some(seed) = seed {
                set.push(format!("seed={seed}"));
            }
            let scenario_path = scenario.expect("clap requires it without --resume");
            if network_cli::is_network_file(&scenario_path) {
                let sweep_only = [
                    (only_run.is_some(), "--only-run"),
                    (emit_slurm.is_some(), "--emit-slurm"),
                ];
                return network_cli::run(network_cli::NetworkRunArgs {
                    path: &scenario_path,
                    set: &set,
                    out,
                    force,
                    quiet,
                    threads,
                    sweep_only: sweep_only.iter().find(|(given, _)| *given).map(|(_, flag)| *flag),
                });
            }
            let scenario = load(&scenario_path, &set, data_dir.clone())?;
            let plans = runner::plans(&scenario)?;
            if let Some(dir) = emit_slurm {
                let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                let (dir, scenario_file) = (absolute(&dir), absolute(&scenario_path));
                let data_dir = data_dir.as_deref().map(absolute);
                let executable = std::env::current_exe()?;
                let script = npsim::cluster::write_slurm_script(&npsim::cluster::ArrayJob {
                    name: &scenario.config.name,
                    scenario: &scenario_file,
                    executable: &executable,
                    runs: plans.len(),
                    dir: &dir,
                    overrides: &set,
                    data_dir: data_dir.as_deref(),
                    cpus_per_task: threads.unwrap_or(1),
                })?;
                println!(
                    "wrote {} ({} array tasks); submit with `sbatch {}`",
                    script.display(),
                    plans.len(),
                    script.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let out =
                out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}.h5", scenario.config.name)));
            if out.exists() && !force {
                return Err(recorder::RecorderError::Exists(out).into());
            }
            let (pool, stop) = interruptible_pool(threads)?;
            if !quiet {
                eprintln!(
                    "{}: {} run(s) → {}",
                    scenario.config.name,
                    plans.len(),
                    out.display()
                );
            }
            let report = pool.install(|| {
                runner::run_only(
                    &scenario,
                    only_run.as_ref().map(std::slice::from_ref),
                    &out,
                    force,
                    !quiet,
                    &stop,
                )
            })?;
            recording_cli::print_report(&report);
            if report.interrupted {
                eprintln!("interrupted: partial recording kept at {}", report.path.display());
                return Ok(ExitCode::from(130));
            }
            study_cli::summarise(&scenario, &report.path, quiet)?;
            if only_run.is_none() {
                write_outputs(&scenario.config.output, &report.path, force)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { plugin } => {
            for section in npsim::catalog::sections() {
                println!("# {}s (`{}`)\n", section.kind, section.field);
                for entry in &section.entries {
                    println!("{}", npsim::catalog::describe(section.kind, entry));
                }
            }
            if let Some(path) = plugin {
                let library = npsim::plugin::load(&path)?;
                warn_plugin(&library);
                println!(
                    "\nplugin {} (sha256 {}, built by {})",
                    library.path.display(),
                    library.sha256,
                    library.rustc_version
                );
                for rule in &library.rules {
                    println!(
                        "Plugin(name: \"{}\") (rule{})\n    {}\n    parameters: {}",
                        rule.name,
                        if rule.requirements.perturbation {
                            ", perturbation"
                        } else {
                            ""
                        },
                        rule.doc,
                        rule.params
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate {
            scenario,
            set,
            data_dir,
        } => {
            if network_cli::is_network_file(&scenario) {
                return network_cli::validate(&scenario, &set);
            }
            let loaded = load(&scenario, &set, data_dir)?;
            let plans = runner::plans(&loaded)?;
            warn_plans(&plans);
            println!("{}: valid, {} run(s)", scenario.display(), plans.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Theory {
            what: TheoryCommand::EtaStar { dims },
        } => {
            let d = dims.dims();
            check_dims(&d)?;
            println!("eta_star: {:.6e}", d.critical_learning_rate(dims.init_scale));
            println!(
                "eta_sgd_optimal: {:.6e}",
                d.sgd_optimal_learning_rate(dims.init_scale)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Theory {
            what:
                TheoryCommand::Trajectory {
                    dims,
                    eta_relative,
                    eta,
                    teacher_noise_std,
                    steps,
                    record_every,
                    out,
                },
        } => {
            let d = dims.dims();
            check_dims(&d)?;
            if record_every == 0 {
                return Err(BadInput("--record-every must be at least 1".into()).into());
            }
            let eta = eta
                .unwrap_or_else(|| eta_relative.unwrap_or(1.0) * d.critical_learning_rate(dims.init_scale));
            if !(eta > 0.0 && eta.is_finite()) {
                return Err(BadInput(format!(
                    "the learning rate (--eta, or --eta-relative times η*) must be a finite number > 0, got {eta}"
                ))
                .into());
            }
            let settings = TheorySettings {
                dims: d,
                init_scale: dims.init_scale,
                learning_rate: eta,
                teacher_noise_var: teacher_noise_std.powi(2),
            };
            let curves: Vec<(String, Vec<f64>)> = settings.curves(steps, record_every);
            if out.extension().is_some_and(|e| e == "h5") {
                let attrs = vec![
                    (
                        "npsim_version".to_string(),
                        Attr::Text(env!("CARGO_PKG_VERSION").into()),
                    ),
                    ("lx".to_string(), Attr::Int(d.lx as i64)),
                    ("lh".to_string(), Attr::Int(d.lh as i64)),
                    ("ly".to_string(), Attr::Int(d.ly as i64)),
                    ("learning_rate".to_string(), Attr::Float(eta)),
                    ("teacher_noise_std".to_string(), Attr::Float(teacher_noise_std)),
                ];
                recorder::write_curves(&out, &attrs, &curves)?;
            } else {
                let mut text = curves
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n";
                for i in 0..curves[0].1.len() {
                    let row: Vec<String> = curves.iter().map(|(_, v)| format!("{}", v[i])).collect();
                    text += &(row.join(",") + "\n");
                }
                std::fs::write(&out, text).with_context(|| format!("cannot write `{}`", out.display()))?;
            }
            println!("wrote {} points to {}", curves[0].1.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { parts, out, force } => study_cli::merge(&parts, &out, force),
        Command::Reproduce {
            figure,
            list,
            scale,
            out,
            set,
            threads,
            data_dir,
            quiet,
        } => study_cli::reproduce_command(
            figure,
            list,
            &scale,
            out,
            ReproduceOptions {
                set,
                threads,
                data_dir,
                quiet,
            },
        ),
        Command::Plot { file, out, metric } => study_cli::plot(&file, &out, metric.as_deref()),
        Command::Analyze {
            file,
            target,
            smoothing,
            json,
        } => study_cli::analyze(&file, target, smoothing, json),
        Command::Export {
            what: ExportCommand::Nwb { file, out, force },
        } => recording_cli::export_nwb(&file, out, force),
        Command::Inspect { file } => recording_cli::inspect(&file),
        Command::Data {
            what:
                DataCommand::Fetch {
                    dataset,
                    data_dir,
                    mirror,
                    files,
                },
        } => {
            use npsim::fetch::{FetchOptions, Outcome, dataset as known_dataset, fetch};
            let dir = data_dir.unwrap_or_else(npsim::scenario::default_data_dir);
            let dataset = known_dataset(&dataset)?;
            let options = FetchOptions {
                mirrors: mirror,
                only: files,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            for (file, outcome) in fetch(&dataset, &dir, &options)? {
                match outcome {
                    Outcome::Present => println!("{file}: already in {}, verified", dir.display()),
                    Outcome::Downloaded { resumed_from: 0, url } => {
                        println!("{file}: downloaded from {url}, verified")
                    }
                    Outcome::Downloaded { resumed_from, url } => {
                        println!("{file}: resumed at byte {resumed_from} from {url}, verified")
                    }
                }
            }
            println!("{}: ready in {}", dataset.name, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { what } => bench_cli::run_bench(what),
    }
}

fn warn_plugin(library: &npsim::plugin::PluginLibrary) {
    for warning in &library.warnings {
        eprintln!("warning: {warning}");
    }
}

fn warn_plans(plans: &[npsim::scenario::RunPlan]) {
    let mut seen = std::collections::HashSet::new();
    for library in plans.iter().filter_map(|p| p.rule.plugin.as_ref()) {
        if seen.insert(library.path.clone()) {
            warn_plugin(library);
        }
    }
}

fn check_dims(d: &LinearDims) -> Result<()> {
    if d.lx == 0 || d.lh == 0 || d.ly == 0 {
        bail!("--lx, --lh and --ly must be at least 1");
    }
    Ok(())
}
