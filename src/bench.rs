//! `npsim bench`: throughput of npsim's hot loops, for comparison with the reference
//! implementations in `shared/bench/` measured on the same machine in the same sitting.

use std::time::Instant;

use nalgebra::DMatrix;
use npsim_core::circuit::lookahead::{LOOKAHEAD_STEPS, SamplesAhead};
use npsim_core::{Circuit, Engine, LearningRule, Real, SeedStreams};
use npsim_models::{LinearTeacherConfig, TaskConfig, TaskContext};
use npsim_rules::{NodePerturbation, RULES};

use crate::scenario::{DeepLinearConfig, RuleConfig};

/// Settings of the per-sample linear NP benchmark.
#[derive(Debug, Clone, Copy)]
pub struct LinearNpBench {
    /// Input size.
    pub lx: usize,
    /// Hidden size.
    pub lh: usize,
    /// Output size.
    pub ly: usize,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
    /// Minimum seconds per repetition.
    pub seconds: f64,
    /// Time the step's phases (see [`StepProfile`]) instead of the step as a whole.
    pub profile: bool,
}

/// Where the time of a per-sample step goes, in µs per step averaged over every step a
/// benchmark ran (warm-up included): the phases of [`Engine::step`] timed one by one, and the
/// announcement of each block of samples ([`Engine::look_ahead`], with the drawing of its
/// samples) shared among its steps. A phase that does not halve on two threads is the one
/// that keeps the step from halving.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StepProfile {
    /// Drawing the next block's samples and announcing them (the lookahead's GEMM).
    pub announce_us: f64,
    /// The clean pass ([`Engine::forward_before`]; it carries a chained hidden population's
    /// perturbed pass too).
    pub clean_pass_us: f64,
    /// The clean loss ([`Engine::loss`]).
    pub loss_us: f64,
    /// The rest of the perturbed pass and the signal ([`Engine::prepare`]).
    pub perturbed_pass_us: f64,
    /// The rule's update, queued or applied ([`Engine::apply_rule`]).
    pub rule_us: f64,
}

impl StepProfile {
    /// The phases' names and times, in the order a step runs them.
    pub fn phases(&self) -> [(&'static str, f64); 5] {
        [
            ("announce", self.announce_us),
            ("clean_pass", self.clean_pass_us),
            ("loss", self.loss_us),
            ("perturbed_pass", self.perturbed_pass_us),
            ("rule", self.rule_us),
        ]
    }
}

/// Refuses a benchmark whose buffers (at least `estimate` bytes) would not fit in the memory
/// the machine has available, naming the options that size it, before anything is allocated.
fn fits_in_memory(estimate: u128, options: &str) -> Result<(), String> {
    match crate::scenario::plan::memory_shortfall(estimate) {
        None => Ok(()),
        Some((needed, available)) => Err(format!(
            "needs at least {needed:.1} GiB, more than the {available:.1} GiB this machine has available: make {options} smaller"
        )),
    }
}

/// A benchmark's rate, with where the time went when that was asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The median rate.
    pub rate: f64,
    /// The step's phases (`--profile`).
    pub profile: Option<StepProfile>,
}

impl From<f64> for Measured {
    fn from(rate: f64) -> Self {
        Self { rate, profile: None }
    }
}

/// Median iterations per second of the paper's per-sample NP (one step = task sample, clean
/// pass, perturbed pass, signal, update), through the same engine scenarios use; with
/// `settings.profile`, the step's phases are also timed one by one.
pub fn linear_np<T: Real>(settings: LinearNpBench) -> Result<Measured, String> {
    let template = DeepLinearConfig {
        lx: settings.lx,
        lh: settings.lh,
        ly: settings.ly,
        init_scale: 1.0,
        perturbation_std: 1e-6,
    };
    let blueprint = template.expand().build().expect("the template is valid");
    fits_in_memory(
        blueprint.estimated_bytes(std::mem::size_of::<T>() as u64, 1),
        "--lx, --lh or --ly",
    )?;
    let streams = SeedStreams::new(1);
    let task = TaskConfig::LinearTeacher(LinearTeacherConfig {
        teacher_noise_std: 0.0,
    })
    .prepare(&TaskContext {
        blueprint: &blueprint,
        data_dir: std::path::Path::new("."),
        loss: Default::default(),
    })
    .expect("the template fits the linear teacher");
    let mut task = task.build::<T>(&streams);
    let mut engine = Engine::new(Circuit::<T>::instantiate(&blueprint, &streams), &streams);
    // A small rate keeps the weights bounded however long the benchmark runs.
    let mut rule = NodePerturbation::<T>::new(0.1 * template.dims().critical_learning_rate(1.0));
    // As scenarios train per sample: the next steps' samples drawn and announced first.
    let mut ahead = SamplesAhead::new(settings.lx, settings.ly);
    let mut x = DMatrix::zeros(settings.lx, 1);
    let mut t = DMatrix::zeros(settings.ly, 1);
    let mut totals = StepProfile::default();
    let mut steps = 0usize;
    let profile = settings.profile;
    let mut step = |n: usize| {
        for block in (0..n).step_by(LOOKAHEAD_STEPS) {
            let count = LOOKAHEAD_STEPS.min(n - block);
            let mut clock = PhaseClock::start(profile);
            engine.look_ahead(&ahead.draw(count, &mut x, &mut t, |x, t| task.next_batch(x, t)));
            clock.lap(&mut totals.announce_us);
            while ahead.next_into(&mut x, &mut t) {
                if !profile {
                    engine
                        .step(&x, &t, &mut rule, &mut [])
                        .expect("NP on a noisy circuit cannot fail");
                    continue;
                }
                // Engine::step, phase by phase (its public phases: a change to step must be
                // made here too).
                let mut clock = PhaseClock::start(true);
                engine.forward_before(&x, LearningRule::requirements(&rule));
                clock.lap(&mut totals.clean_pass_us);
                engine.loss(&t);
                clock.lap(&mut totals.loss_us);
                engine.prepare(&t, LearningRule::requirements(&rule), false);
                clock.lap(&mut totals.perturbed_pass_us);
                engine
                    .apply_rule(&mut rule, &mut [])
                    .expect("NP on a noisy circuit cannot fail");
                clock.lap(&mut totals.rule_us);
            }
            steps += count;
        }
    };
    let rate = median_rate(&mut step, 1, settings.seconds, settings.reps);
    let per_step = |total: f64| total / steps.max(1) as f64;
    let profile = profile.then(|| StepProfile {
        announce_us: per_step(totals.announce_us),
        clean_pass_us: per_step(totals.clean_pass_us),
        loss_us: per_step(totals.loss_us),
        perturbed_pass_us: per_step(totals.perturbed_pass_us),
        rule_us: per_step(totals.rule_us),
    });
    Ok(Measured { rate, profile })
}

/// Adds the µs since the last lap to a phase's total; does nothing when not profiling.
struct PhaseClock(Option<Instant>);

impl PhaseClock {
    fn start(enabled: bool) -> Self {
        Self(enabled.then(Instant::now))
    }

    fn lap(&mut self, total_us: &mut f64) {
        if let Some(last) = &mut self.0 {
            let now = Instant::now();
            *total_us += (now - *last).as_secs_f64() * 1e6;
            *last = now;
        }
    }
}

/// Warms up, sizes a repetition to last at least `seconds`, and returns the median over
/// `reps` repetitions of (calls × `per_call`) per second.
fn median_rate(step: &mut dyn FnMut(usize), per_call: usize, seconds: f64, reps: usize) -> f64 {
    let mut n = 2;
    loop {
        let start = Instant::now();
        step(n);
        if start.elapsed().as_secs_f64() > seconds / 4.0 {
            break;
        }
        n *= 2;
    }
    let n = n * 4;
    let mut rates: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            step(n);
            (n * per_call) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Which product [`gemm`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmPass {
    /// `C += A B`, the product the engine uses for batched passes (faer on nalgebra storage).
    Plain,
    /// The pair a training step runs through a weight matrix `A`: the rank-`n` update
    /// `A += U Vᵀ`, then `C += A B`, block of rows by block of rows, the blocks shared by
    /// rayon's splitting (a mini-batch's deferred update and next product).
    Fused,
    /// The per-sample lookahead's pair: as [`GemmPass::Fused`] with `C = A B` assigned, each
    /// thread keeping its run of row blocks from call to call (the announcement of
    /// `LOOKAHEAD_STEPS` inputs with the updates queued since the last).
    Lookahead,
}

/// Median GFLOP/s of the product `pass` names with `A` `m × k` and `B` `k × n`.
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    pass: GemmPass,
    reps: usize,
    seconds: f64,
) -> Result<f64, String> {
    use npsim_core::gemm::{
        Operand, gemm, update_then_assign_product_by_row_blocks, update_then_multiply_by_row_blocks,
    };
    let (m128, n128, k128) = (m as u128, n as u128, k as u128);
    // A, B, C, and for the fused pairs the factors U (m × n) and V (k × n).
    let values = m128 * k128 + k128 * n128 + 2 * m128 * n128 + k128 * n128;
    fits_in_memory(values * std::mem::size_of::<T>() as u128, "--m, --n or --k")?;
    let entry = |i: usize, j: usize| T::of(((i * 7 + j * 3) % 11) as f64 * 0.01 - 0.05);
    let mut a = DMatrix::from_fn(m, k, entry);
    let b = DMatrix::from_fn(k, n, entry);
    let mut c = DMatrix::zeros(m, n);
    // The update's factors are tiny, so `A` stays bounded over any number of calls.
    let u = match pass {
        GemmPass::Plain => DMatrix::zeros(0, 0),
        GemmPass::Fused | GemmPass::Lookahead => DMatrix::from_fn(m, n, |i, j| entry(i, j) * T::of(1e-6)),
    };
    let mut step = |calls: usize| {
        for _ in 0..calls {
            match pass {
                GemmPass::Plain => gemm(&mut c, true, T::one(), Operand::plain(&a), Operand::plain(&b)),
                GemmPass::Fused => {
                    update_then_multiply_by_row_blocks(&mut a, Some((-T::one(), &u, &b)), Some((&b, &mut c)))
                }
                GemmPass::Lookahead => {
                    update_then_assign_product_by_row_blocks(&mut a, Some((-T::one(), &u, &b)), (&b, &mut c))
                }
            }
        }
    };
    let flop = if pass == GemmPass::Plain {
        2 * m * n * k
    } else {
        4 * m * n * k
    };
    Ok(median_rate(&mut step, flop, seconds, reps) / 1e9)
}

/// Median standard normal draws per second of one population's noise: `entries` draws per
/// call through the engine's generator ([`npsim_core::noise::fill_gaussian`]: blocks of 1,024
/// draws, shared among the pool's threads), as a perturbed pass draws a population's noise.
/// The paper's hidden layer is 10,000 draws a step.
pub fn noise<T: Real>(entries: usize, reps: usize, seconds: f64) -> Result<f64, String> {
    fits_in_memory(entries as u128 * std::mem::size_of::<T>() as u128, "--entries")?;
    let mut noise = DMatrix::<T>::zeros(entries, 1);
    let mut stream = SeedStreams::new(1).stream("bench/noise");
    let mut step = |calls: usize| {
        for _ in 0..calls {
            npsim_core::noise::fill_gaussian(&mut noise, 1.0, &mut stream);
        }
    };
    Ok(median_rate(&mut step, entries, seconds, reps))
}

/// A built-in rule to time, by its short name (`np`, `sgd`, `wp`, `reinforce`) or the name
/// scenarios write, with the parameters of its registered example.
pub fn rule_by_name(name: &str) -> Result<RuleConfig, String> {
    let entry = RULES
        .iter()
        .find(|r| r.short == name || r.entry.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = RULES.iter().map(|r| r.short).collect();
            format!("no built-in rule `{name}`; choose one of {}", names.join(", "))
        })?;
    Ok(crate::scenario::ron_options()
        .from_str(entry.entry.example)
        .expect("registered examples parse (tested)"))
}

/// Settings of the MLP benchmark.
#[derive(Debug, Clone)]
pub struct MlpBench {
    /// The rule.
    pub rule: RuleConfig,
    /// Hidden width H of the 784-H-10 network.
    pub hidden: usize,
    /// Samples per step.
    pub batch: usize,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
    /// Minimum seconds per repetition.
    pub seconds: f64,
}

/// Median samples per second of training steps on a 784-H-10 ReLU/softmax MLP (squared
/// error, σ = 1e-4, the paper's MNIST setting) on synthetic MNIST-shaped data, through the
/// engine scenarios use.
pub fn mlp<T: Real>(settings: &MlpBench) -> Result<f64, String> {
    use npsim_core::{Activation, CircuitConfig, Initializer, Noise, PopulationConfig, ProjectionConfig};
    let noise = Noise::Gaussian { std: 1e-4 };
    let pop = |name: &str, size, activation, noise| PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation,
        noise,
        model: Default::default(),
    };
    let proj = |name: &str, from: &str, to: &str| ProjectionConfig {
        name: Some(name.into()),
        from: from.into(),
        to: to.into(),
        init: Initializer::GlorotTruncated,
        bias: Some(Initializer::Zeros),
        plastic: true,
        connectivity: Default::default(),
        synapse: Default::default(),
        delay: 0.0,
    };
    let config = CircuitConfig {
        populations: vec![
            pop("x", 784, Activation::Linear, Noise::None),
            pop("h", settings.hidden, Activation::Relu, noise),
            pop("y", 10, Activation::Softmax, noise),
        ],
        projections: vec![proj("W1", "x", "h"), proj("W2", "h", "y")],
    };
    training_steps::<T>(
        &config,
        &settings.rule,
        settings.batch,
        settings.reps,
        settings.seconds,
    )
}

/// The CIFAR-10 convnet of `scenarios/cifar10_conv.ron` (read from the shipped file, so the
/// benchmark times exactly the scenario's circuit): 3×32×32 → conv 5×5 (16, padding 2) →
/// max-pool 2 → conv 5×5 (32, padding 2) → max-pool 2 → 128 → 10, ReLU and softmax.
pub fn cifar10_convnet() -> npsim_core::CircuitConfig {
    let text = include_str!("../scenarios/cifar10_conv.ron");
    let scenario =
        crate::scenario::Scenario::parse(std::path::Path::new("scenarios/cifar10_conv.ron"), text.into())
            .expect("the shipped scenario is valid");
    scenario.runs().expect("the shipped scenario is valid")[0].circuit_config()
}

/// Median samples per second of training steps of `rule` on `config` (noisy populations as
/// configured), on synthetic inputs in [0, 1) with one-hot targets.
pub fn training_steps<T: Real>(
    config: &npsim_core::CircuitConfig,
    rule: &RuleConfig,
    batch: usize,
    reps: usize,
    seconds: f64,
) -> Result<f64, String> {
    use rand::Rng;
    let blueprint = config.build().expect("valid circuit");
    // The circuit's buffers, and the pool of 20 synthetic batches cycled through.
    let pool_values = 20
        * batch as u128
        * blueprint
            .populations()
            .iter()
            .map(|p| p.size as u128)
            .sum::<u128>();
    fits_in_memory(
        blueprint.estimated_bytes(std::mem::size_of::<T>() as u64, batch as u64)
            + pool_values * std::mem::size_of::<T>() as u128,
        "--batch (or --hidden)",
    )?;
    let (inputs_size, outputs_size) = (
        blueprint.populations()[blueprint.input()].size,
        blueprint.populations()[blueprint.output()].size,
    );
    let streams = SeedStreams::new(1);
    let mut engine = Engine::new(Circuit::<T>::instantiate(&blueprint, &streams), &streams);
    let learning_rate = rule
        .learning_rate()
        .and_then(|r| r.resolve(None).ok())
        .expect("benchmarked rules have an absolute learning rate");
    let mut rule = rule
        .build_builtin::<T>(learning_rate)
        .expect("benchmarked rules are built in");
    // A pool of synthetic samples, cycled, as in the reference scripts.
    let mut data_rng = streams.stream("bench/data");
    let pool = 20;
    let inputs: Vec<DMatrix<T>> = (0..pool)
        .map(|_| {
            DMatrix::from_fn(inputs_size, batch, |_, _| {
                T::of((data_rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
            })
        })
        .collect();
    let targets: Vec<DMatrix<T>> = (0..pool)
        .map(|_| {
            let mut t = DMatrix::zeros(outputs_size, batch);
            for c in 0..batch {
                t[((data_rng.next_u64() % outputs_size as u64) as usize, c)] = T::one();
            }
            t
        })
        .collect();
    let mut at = 0;
    let mut step = |n: usize| {
        for _ in 0..n {
            engine
                .step(&inputs[at], &targets[at], rule.as_mut(), &mut [])
                .expect("built-in rules do not fail here");
            at = (at + 1) % pool;
        }
    };
    Ok(median_rate(&mut step, batch, seconds, reps))
}

/// Which shipped birdsong scenario to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SongModel {
    /// `scenarios/birdsong_rate.ron`: leaky-rate RA with correlated noise.
    Rate,
    /// `scenarios/birdsong_spiking.ron`: LIF RA, sparse HVC synapses, Poisson LMAN.
    Spiking,
}

/// Median renditions per second of training updates (noise-free and noisy renditions, the
/// rule, the post-update steps) of a shipped birdsong scenario with `batch` renditions per
/// update, through the engine and rule `npsim run` uses.
pub fn birdsong<T: Real>(model: SongModel, batch: usize, reps: usize, seconds: f64) -> Result<f64, String> {
    use npsim_core::TrialEngine;
    let (name, text) = match model {
        SongModel::Rate => (
            "scenarios/birdsong_rate.ron",
            include_str!("../scenarios/birdsong_rate.ron"),
        ),
        SongModel::Spiking => (
            "scenarios/birdsong_spiking.ron",
            include_str!("../scenarios/birdsong_spiking.ron"),
        ),
    };
    let mut scenario = crate::scenario::Scenario::parse(std::path::Path::new(name), text.into())
        .expect("the shipped scenario is valid");
    scenario
        .apply_overrides(&[format!("train.batch_size={batch}")])
        .expect("a batch size of at least 1 is valid");
    // The plan checks the memory a batch of renditions needs.
    let plan = scenario
        .plans()
        .map_err(|e| format!("--batch {batch}: {e}"))?
        .swap_remove(0);
    let setup = plan.task.trial().expect("birdsong is a task in time");
    let streams = SeedStreams::new(plan.run.config.seed);
    let circuit = Circuit::<T>::instantiate(&plan.blueprint, &streams);
    let mut engine = TrialEngine::new(circuit, &streams, setup.timing, setup.gate);
    engine.set_loss(plan.run.config.loss);
    let mut task = plan.task.build::<T>(&streams);
    let mut rule = crate::simulate::build_rule::<T>(&plan).expect("built-in rules build");
    let mut post = crate::simulate::build_post_updates::<T>(&plan);
    let columns = batch * setup.timing.steps;
    let mut inputs = DMatrix::<T>::zeros(task.input_size(), columns);
    let mut targets = DMatrix::<T>::zeros(task.output_size(), columns);
    let mut step = |n: usize| {
        for _ in 0..n {
            task.next_batch(&mut inputs, &mut targets);
            engine
                .step(&inputs, &targets, rule.as_mut(), &mut post)
                .expect("the shipped rule does not fail");
        }
    };
    Ok(median_rate(&mut step, batch, seconds, reps))
}

/// Settings of the LIF network benchmark.
#[derive(Debug, Clone, Copy)]
pub struct LifBench {
    /// Neurons (80 % excitatory).
    pub neurons: usize,
    /// Connection probability of every projection.
    pub p: f64,
    /// Simulated ms per rendition.
    pub duration: f64,
    /// Step, ms.
    pub dt: f64,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
}

/// Neuron-steps per second and the mean rate (Hz) of a random network of LIF neurons run by
/// the trial engine: 80 % excitatory and 20 % inhibitory, Vogels–Abbott COBA parameters (τ_m
/// 20 ms, E_L = V_reset = −60 mV, θ = −50 mV, refractory 5 ms, conductance synapses of 6 nS
/// with τ = 5 ms and E = 0 mV from excitatory, 67 nS with τ = 10 ms and E = −80 mV from
/// inhibitory neurons), sparse random connectivity with probability `p` and a delay of one
/// step, each neuron driven by a constant current drawn lognormal with mean 0.12 nA and std
/// 0.02 nA (12 mV above rest on average: the network fires from the start of each rendition,
/// and neurons that start together at rest drift apart).
pub fn lif_network<T: Real>(settings: LifBench) -> Result<(f64, f64), String> {
    use npsim_core::{
        Activation, CircuitConfig, Connectivity, Initializer, LifParameters, Noise, PopulationConfig,
        PopulationModel, ProjectionConfig, Synapse, TrialEngine, TrialTiming,
    };
    let excitatory = settings.neurons * 4 / 5;
    let lif = PopulationModel::Lif(LifParameters {
        tau_m: 20.0,
        v_rest: -60.0,
        v_threshold: -50.0,
        v_reset: -60.0,
        refractory: 5.0,
        resistance: 100.0,
    });
    let pop = |name: &str, size, model| PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation: Activation::Linear,
        noise: Noise::None,
        model,
    };
    let projection = |from: &str, to: &str, init, connectivity, synapse, delay| ProjectionConfig {
        name: None,
        from: from.into(),
        to: to.into(),
        init,
        bias: None,
        plastic: false,
        connectivity,
        synapse,
        delay,
    };
    let (ampa, gaba) = (
        Synapse::Conductance {
            tau: 5.0,
            reversal: 0.0,
        },
        Synapse::Conductance {
            tau: 10.0,
            reversal: -80.0,
        },
    );
    let random = Connectivity::Random { p: settings.p };
    // Drives spread around 0.12 nA, so that neurons starting together at rest drift apart.
    let drive = Initializer::LogNormal {
        mean: 0.12,
        std: 0.02,
    };
    let mut projections = vec![
        projection("x", "e", drive, Connectivity::Dense, Synapse::Instant, 0.0),
        projection("x", "i", drive, Connectivity::Dense, Synapse::Instant, 0.0),
        projection(
            "e",
            "y",
            Initializer::Zeros,
            Connectivity::Dense,
            Synapse::Instant,
            0.0,
        ),
    ];
    for (from, weight, synapse) in [("e", 0.006, ampa), ("i", 0.067, gaba)] {
        for to in ["e", "i"] {
            let init = Initializer::Constant { value: weight };
            projections.push(projection(from, to, init, random, synapse, settings.dt));
        }
    }
    let config = CircuitConfig {
        populations: vec![
            pop("x", 1, PopulationModel::Static),
            pop("e", excitatory, lif),
            pop("i", settings.neurons - excitatory, lif),
            pop("y", 1, PopulationModel::Static),
        ],
        projections,
    };
    let blueprint = config.build().expect("the benchmark network is valid");
    let steps = (settings.duration / settings.dt).round();
    // Every step of a rendition is a column of activity.
    let columns = if steps < 1e15 { steps as u64 } else { u64::MAX };
    fits_in_memory(
        blueprint.estimated_bytes(std::mem::size_of::<T>() as u64, columns),
        "--neurons, --p or --duration (or a larger --dt)",
    )?;
    let steps = steps as usize;
    let streams = SeedStreams::new(1);
    let mut engine = TrialEngine::new(
        Circuit::<T>::instantiate(&blueprint, &streams),
        &streams,
        TrialTiming {
            steps,
            dt: settings.dt,
        },
        Default::default(),
    );
    let drive = DMatrix::from_element(1, steps, T::one());
    let mut rates = Vec::new();
    let mut step = |n: usize| {
        for _ in 0..n {
            engine.forward(&drive);
            let spikes: f64 = [1, 2].iter().map(|&p| engine.activity(p).sum().f64()).sum();
            rates.push(spikes / settings.neurons as f64 / (settings.duration / 1000.0));
        }
    };
    let per_rendition = settings.neurons * steps;
    let throughput = median_rate(&mut step, per_rendition, 0.5, settings.reps);
    let mean_rate = rates.iter().sum::<f64>() / rates.len() as f64;
    Ok((throughput, mean_rate))
}

/// The network scenario `npsim bench coba` times: `scenarios/coba.ron`, built in.
pub const COBA_SCENARIO: &str = include_str!("../scenarios/coba.ron");

/// What one sitting of the COBA benchmark measured.
#[derive(Debug, Clone)]
pub struct CobaMeasurement {
    /// Median neuron-steps per second of wall time over the repetitions.
    pub neuron_steps_per_second: f64,
    /// Mean rate over all neurons, Hz (the same in every repetition: same seed).
    pub mean_rate_hz: f64,
    /// Mean ISI coefficient of variation over neurons with at least three spikes.
    pub mean_cv: f64,
    /// Spikes delivered per second of wall time (spikes times synapses per spike), median run.
    pub synaptic_events_per_second: f64,
}

/// Runs the COBA network of `scenarios/coba.ron` for `seconds` of network time on `threads`
/// threads, `reps` times from the same start; building the network is not timed (as Brian2's
/// compilation and NEST's network construction are not in their references).
pub fn coba(seconds: f64, threads: usize, reps: usize) -> Result<CobaMeasurement, String> {
    use crate::scenario::network::NetworkScenario;
    use npsim_core::network::FiringStatistics;
    let scenario = NetworkScenario::parse(std::path::Path::new("scenarios/coba.ron"), COBA_SCENARIO.into())
        .map_err(|e| e.to_string())?;
    let plan = scenario.plan().map_err(|e| e.to_string())?;
    let dt = scenario.config.simulate.dt;
    let steps = (seconds * 1000.0 / dt).round().max(1.0) as u64;
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..reps.max(1) {
        let mut network = scenario
            .build_network(&plan, threads)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let spikes = network.run(steps);
        walls.push(start.elapsed().as_secs_f64());
        last = Some((spikes, network.neurons(), network.synapses() as f64));
    }
    let (spikes, neurons, synapses) = last.expect("at least one repetition");
    walls.sort_by(f64::total_cmp);
    let wall = walls[walls.len() / 2];
    let per_population: Vec<FiringStatistics> = plan
        .blueprint
        .populations()
        .iter()
        .enumerate()
        .map(|(p, pop)| FiringStatistics::measure(&spikes, p as u32, pop.size, steps, dt))
        .collect();
    let cvs: Vec<f64> = per_population.iter().flat_map(|s| s.cv.iter().copied()).collect();
    let known: Vec<f64> = cvs.into_iter().filter(|c| !c.is_nan()).collect();
    Ok(CobaMeasurement {
        neuron_steps_per_second: (neurons as u64 * steps) as f64 / wall,
        mean_rate_hz: spikes.len() as f64 / neurons as f64 / seconds,
        mean_cv: known.iter().sum::<f64>() / known.len().max(1) as f64,
        // Every neuron has on average synapses/neurons outgoing synapses.
        synaptic_events_per_second: spikes.len() as f64 * synapses / neurons as f64 / wall,
    })
}
