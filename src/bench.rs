//! `npsim bench`: throughput of npsim's hot loops, for comparison with the reference
//! implementations in `shared/bench/` measured on the same machine in the same sitting.

use std::time::Instant;

use nalgebra::DMatrix;
use npsim_core::{Circuit, Engine, Real, SeedStreams};
use npsim_models::{DeepLinearConfig, LinearTeacherConfig, Task};
use npsim_rules::NodePerturbation;

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
}

/// Median iterations per second of the paper's per-sample NP (one step = task sample, clean
/// pass, perturbed pass, signal, update), through the same engine scenarios use.
pub fn linear_np<T: Real>(settings: LinearNpBench) -> f64 {
    let template = DeepLinearConfig {
        lx: settings.lx,
        lh: settings.lh,
        ly: settings.ly,
        init_scale: 1.0,
        perturbation_std: 1e-6,
    };
    let blueprint = template.expand().build().expect("the template is valid");
    let streams = SeedStreams::new(1);
    let mut task = LinearTeacherConfig {
        teacher_noise_std: 0.0,
    }
    .build::<T>(&blueprint, &streams)
    .expect("valid");
    let mut engine = Engine::new(Circuit::<T>::instantiate(&blueprint, &streams), &streams);
    // A small rate keeps the weights bounded however long the benchmark runs.
    let mut rule = NodePerturbation::<T>::new(0.1 * template.dims().critical_learning_rate(1.0));
    let mut x = DMatrix::zeros(settings.lx, 1);
    let mut t = DMatrix::zeros(settings.ly, 1);
    let mut step = |n: usize| {
        for _ in 0..n {
            task.next_batch(&mut x, &mut t);
            engine
                .step(&x, &t, &mut rule, &mut [])
                .expect("NP on a noisy circuit cannot fail");
        }
    };
    // Warm up and size a repetition to last at least `seconds`.
    let mut n = 16;
    loop {
        let start = Instant::now();
        step(n);
        if start.elapsed().as_secs_f64() > settings.seconds / 4.0 {
            break;
        }
        n *= 2;
    }
    let n = n * 4;
    let mut rates: Vec<f64> = (0..settings.reps.max(1))
        .map(|_| {
            let start = Instant::now();
            step(n);
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
