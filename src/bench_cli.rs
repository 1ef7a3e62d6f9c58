//! `npsim bench`: its subcommands, their options and how a benchmark's result is printed.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};

use super::{BadInput, PrecisionArg, at_least_one, thread_count};

fn repetitions(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "must be 1 to 1000 (each repetition lasts about a second), got {n}"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Threads and repetitions of a benchmark.
#[derive(clap::Args, Clone, Copy)]
pub(super) struct BenchRunArgs {
    /// Threads (default: all cores, as for `run`).
    #[arg(long, value_parser = thread_count)]
    threads: Option<usize>,
    /// Timed repetitions (median reported).
    #[arg(long, default_value_t = 5, value_parser = repetitions)]
    reps: usize,
}

/// The rule and batch of a training-step benchmark.
#[derive(clap::Args, Clone)]
pub(super) struct TrainingBenchArgs {
    /// A built-in rule, by its short name (np, sgd, wp, reinforce) or its scenario name; it
    /// runs with the parameters of its example in `npsim rules`.
    #[arg(long, default_value = "np", value_parser = bench_rule)]
    rule: npsim::scenario::RuleConfig,
    /// Samples per step.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    batch: usize,
}

fn bench_rule(name: &str) -> Result<npsim::scenario::RuleConfig, String> {
    npsim::bench::rule_by_name(name)
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        Ok(p) => Err(format!("must lie in (0, 1], got {p}")),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_ms(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("must be a finite number of ms > 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(v) => Err(format!("must be a number of seconds in (0, 3600], got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The shipped birdsong scenarios.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum SongModelArg {
    Rate,
    Spiking,
}

#[derive(Subcommand)]
pub(super) enum BenchCommand {
    /// Mini-batch training steps on a 784-H-10 ReLU/softmax MLP (the paper's MNIST setting).
    Mlp {
        #[command(flatten)]
        training: TrainingBenchArgs,
        /// Hidden width H.
        #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
        hidden: usize,
        /// Precision.
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// Mini-batch training steps on the CIFAR-10 convnet of `scenarios/cifar10_conv.ron`
    /// (3×32×32, two 5×5 convolution stages of 16 and 32 maps with 2×2 max pooling, 128, 10).
    Conv {
        #[command(flatten)]
        training: TrainingBenchArgs,
        /// Precision.
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// The matrix product behind every batched pass, `C (m×n) += A (m×k) B (k×n)`; the
    /// defaults are the first layer of the MLP benchmark at H = 1000.
    Gemm {
        /// Rows of `A` and `C`.
        #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
        m: usize,
        /// Columns of `B` and `C`.
        #[arg(long, default_value_t = 100, value_parser = at_least_one)]
        n: usize,
        /// The summed dimension.
        #[arg(long, default_value_t = 784, value_parser = at_least_one)]
        k: usize,
        /// Time a training step's pair instead: the rank-n update `A += U Vᵀ` (`U` m×n, `V`
        /// k×n), then `C += A B`, block of rows by block of rows (the GEMM-bound part of an
        /// MLP step; 4mnk flop).
        #[arg(long)]
        fused: bool,
        /// Time the per-sample lookahead's pair instead: as `--fused`, with `C = A B` assigned
        /// and each thread keeping its run of row blocks from call to call (the announcement of
        /// the next 32 inputs of a per-sample run; 4mnk flop).
        #[arg(long, conflicts_with = "fused")]
        lookahead: bool,
        /// Precision.
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// Standard normal draws as a perturbed pass draws one population's noise (the engine's
    /// generator, blocks of 1,024 shared among threads); prints the ns per draw, then draws
    /// per second.
    Noise {
        /// Draws per call (a population's size; the paper's hidden layer has 10,000).
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        entries: usize,
        /// Precision.
        #[arg(long, value_enum, default_value = "f64")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// Training updates of a shipped birdsong scenario (renditions per second).
    Birdsong {
        /// Which scenario: `spiking` (scenarios/birdsong_spiking.ron) or `rate`
        /// (scenarios/birdsong_rate.ron).
        #[arg(long, value_enum, default_value = "spiking")]
        model: SongModelArg,
        /// Renditions per update.
        #[arg(long, default_value_t = 1, value_parser = at_least_one)]
        batch: usize,
        /// Precision.
        #[arg(long, value_enum, default_value = "f64")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// A random network of LIF neurons (80 % excitatory, COBA parameters, driven by a
    /// constant current) run by the trial engine; prints the mean rate, then neuron-steps per
    /// second.
    Lif {
        /// Neurons.
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        neurons: usize,
        /// Connection probability.
        #[arg(long, default_value_t = 0.02, value_parser = probability)]
        p: f64,
        /// Simulated ms per rendition.
        #[arg(long, default_value_t = 100.0, value_parser = positive_ms)]
        duration: f64,
        /// Step, ms.
        #[arg(long, default_value_t = 0.1, value_parser = positive_ms)]
        dt: f64,
        /// Precision.
        #[arg(long, value_enum, default_value = "f64")]
        precision: PrecisionArg,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// The Vogels–Abbott COBA network of `scenarios/coba.ron` (4,000 LIF neurons,
    /// conductance synapses, dt 0.1 ms), free-running; prints the mean rate and ISI CV, then
    /// neuron-steps per second (network construction not timed).
    Coba {
        /// Network time per repetition, s.
        #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
        seconds: f64,
        #[command(flatten)]
        run: BenchRunArgs,
    },
    /// Per-sample NP on the deep linear network (the paper's setting is 100-10000-10, f64).
    LinearNp {
        /// Input size.
        #[arg(long, default_value_t = 100, value_parser = at_least_one)]
        lx: usize,
        /// Hidden size.
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        lh: usize,
        /// Output size.
        #[arg(long, default_value_t = 10, value_parser = at_least_one)]
        ly: usize,
        /// Precision.
        #[arg(long, value_enum, default_value = "f64")]
        precision: PrecisionArg,
        /// Also time the step's phases, printed as `<phase>_us: <µs per step>` before the rate.
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        run: BenchRunArgs,
    },
}

pub(super) fn run_bench(what: BenchCommand) -> Result<ExitCode> {
    match what {
        BenchCommand::Mlp {
            training: TrainingBenchArgs { rule, batch },
            hidden,
            precision,
            run,
        } => {
            let name = rule.builtin_name().unwrap_or_default();
            let settings = npsim::bench::MlpBench {
                rule,
                hidden,
                batch,
                reps: run.reps,
                seconds: 1.0,
            };
            timed(
                run,
                precision,
                format!("mlp 784-{hidden}-10, rule {name}, batch {batch}"),
                "samples_per_second",
                || npsim::bench::mlp::<f32>(&settings),
                || npsim::bench::mlp::<f64>(&settings),
            )
        }
        BenchCommand::Conv {
            training: TrainingBenchArgs { rule, batch },
            precision,
            run,
        } => {
            let config = npsim::bench::cifar10_convnet();
            timed(
                run,
                precision,
                format!(
                    "conv cifar10 convnet, rule {}, batch {batch}",
                    rule.builtin_name().unwrap_or_default()
                ),
                "samples_per_second",
                || npsim::bench::training_steps::<f32>(&config, &rule, batch, run.reps, 1.0),
                || npsim::bench::training_steps::<f64>(&config, &rule, batch, run.reps, 1.0),
            )
        }
        BenchCommand::Gemm {
            m,
            n,
            k,
            fused,
            lookahead,
            precision,
            run,
        } => {
            use npsim::bench::GemmPass;
            let (pass, description) = if lookahead {
                let text =
                    format!("lookahead's rank-{n} update of {m}x{k} then product with {k}x{n}, rows kept");
                (GemmPass::Lookahead, text)
            } else if fused {
                let text = format!("fused rank-{n} update of {m}x{k} then product with {k}x{n}");
                (GemmPass::Fused, text)
            } else {
                (GemmPass::Plain, format!("gemm {m}x{k} times {k}x{n}"))
            };
            timed(
                run,
                precision,
                description,
                "gflops",
                || npsim::bench::gemm::<f32>(m, n, k, pass, run.reps, 1.0),
                || npsim::bench::gemm::<f64>(m, n, k, pass, run.reps, 1.0),
            )
        }
        BenchCommand::Noise {
            entries,
            precision,
            run,
        } => {
            // The time per draw is printed before the throughput, which stays the last line.
            let report = |measured: Result<f64, String>| {
                measured.inspect(|&rate| println!("ns_per_draw: {:.3}", 1e9 / rate))
            };
            timed(
                run,
                precision,
                format!("noise, {entries} draws per call"),
                "draws_per_second",
                || report(npsim::bench::noise::<f32>(entries, run.reps, 1.0)),
                || report(npsim::bench::noise::<f64>(entries, run.reps, 1.0)),
            )
        }
        BenchCommand::Birdsong {
            model,
            batch,
            precision,
            run,
        } => {
            let (model, name) = match model {
                SongModelArg::Rate => (npsim::bench::SongModel::Rate, "rate"),
                SongModelArg::Spiking => (npsim::bench::SongModel::Spiking, "spiking"),
            };
            timed(
                run,
                precision,
                format!("birdsong {name} (scenarios/birdsong_{name}.ron), batch {batch}"),
                "renditions_per_second",
                || npsim::bench::birdsong::<f32>(model, batch, run.reps, 1.0),
                || npsim::bench::birdsong::<f64>(model, batch, run.reps, 1.0),
            )
        }
        BenchCommand::Lif {
            neurons,
            p,
            duration,
            dt,
            precision,
            run,
        } => {
            if duration / dt < 1.0 {
                return Err(BadInput(format!(
                    "--duration {duration} ms is shorter than one step (--dt {dt} ms)"
                ))
                .into());
            }
            let settings = npsim::bench::LifBench {
                neurons,
                p,
                duration,
                dt,
                reps: run.reps,
            };
            // The mean rate is printed before the throughput, which stays the last line.
            let report = |measured: Result<(f64, f64), String>| {
                measured.map(|(rate, hz)| {
                    println!("mean_rate_hz: {hz:.2}");
                    rate
                })
            };
            timed(
                run,
                precision,
                format!("lif network of {neurons} neurons, p {p}, {duration} ms at dt {dt} ms"),
                "neuron_steps_per_second",
                || report(npsim::bench::lif_network::<f32>(settings)),
                || report(npsim::bench::lif_network::<f64>(settings)),
            )
        }
        BenchCommand::Coba { seconds, run } => {
            let threads = run
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let m = npsim::bench::coba(seconds, threads, run.reps).map_err(BadInput)?;
            println!(
                "bench: coba (scenarios/coba.ron), {seconds} s of network time, threads {threads}, reps {}",
                run.reps
            );
            println!("mean_rate_hz: {:.2}", m.mean_rate_hz);
            println!("mean_isi_cv: {:.3}", m.mean_cv);
            println!("synaptic_events_per_second: {:.4e}", m.synaptic_events_per_second);
            println!("neuron_steps_per_second: {:.4e}", m.neuron_steps_per_second);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::LinearNp {
            lx,
            lh,
            ly,
            precision,
            profile,
            run,
        } => {
            let settings = npsim::bench::LinearNpBench {
                lx,
                lh,
                ly,
                reps: run.reps,
                seconds: 1.0,
                profile,
            };
            timed(
                run,
                precision,
                format!("linear-np {lx}-{lh}-{ly}"),
                "iterations_per_second",
                || npsim::bench::linear_np::<f32>(settings),
                || npsim::bench::linear_np::<f64>(settings),
            )
        }
    }
}

/// Runs a benchmark on its own pool in the chosen precision; prints what ran, then
/// `<unit>: <rate>` as the last line.
fn timed<F32: Into<npsim::bench::Measured>, F64: Into<npsim::bench::Measured>>(
    run: BenchRunArgs,
    precision: PrecisionArg,
    description: String,
    unit: &str,
    in_f32: impl FnOnce() -> Result<F32, String> + Send,
    in_f64: impl FnOnce() -> Result<F64, String> + Send,
) -> Result<ExitCode> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(run.threads.unwrap_or(0))
        .build()?;
    let threads = pool.current_num_threads();
    let measured = pool
        .install(|| match precision {
            PrecisionArg::F32 => in_f32().map(Into::into),
            PrecisionArg::F64 => in_f64().map(Into::into),
        })
        .map_err(BadInput)?;
    println!("bench: {description}, threads {threads}, reps {}", run.reps);
    for (phase, us) in measured.profile.iter().flat_map(|p| p.phases()) {
        println!("{phase}_us: {us:.1}");
    }
    println!("{unit}: {:.1}", measured.rate);
    Ok(ExitCode::SUCCESS)
}
