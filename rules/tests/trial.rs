//! Circuits in time: back-propagation through time against finite differences, and node
//! perturbation with an eligibility trace against back-propagation through time.
//!
//! The circuit is `x → h → y` with leaky-rate `h` (tanh, τ = 5 ms, with a bias) and leaky
//! linear `y` (τ = 3 ms), run for 20 steps of 1 ms on a fixed time-varying input. In the
//! small-σ limit the NP estimate of one rendition, `Ĝ = (1/σ²) δℓ Σ_t n_i(t) r_j(t)`, with
//! `δℓ = Σ g·n` (`g = ∂ℓ/∂u` over every noisy unit and step) has mean `G = ∂ℓ/∂W` and, by
//! Isserlis' theorem, variance `|g|² R_j + G_ij²` with `R_j = Σ_t r_j(t)²`.

use nalgebra::DMatrix;
use npsim_core::{
    Activation, Circuit, CircuitConfig, Initializer, LearningRule, Noise, PopulationConfig, PopulationModel,
    ProjectionConfig, Requirements, SeedStreams, TraceGate, TrialEngine, TrialTiming,
};
use npsim_rules::NodePerturbation;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const STEPS: usize = 20;

fn config(sigma: f64) -> CircuitConfig {
    let population = |name: &str, size, activation, model, noise| PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation,
        noise,
        model,
    };
    let noise = Noise::Gaussian { std: sigma };
    let projection = |name: &str, from: &str, to: &str, bias| ProjectionConfig {
        name: Some(name.into()),
        from: from.into(),
        to: to.into(),
        init: Initializer::XavierNormal { variance_scale: 4.0 },
        bias,
        plastic: true,
        connectivity: Default::default(),
        synapse: Default::default(),
        delay: 0.0,
    };
    CircuitConfig {
        populations: vec![
            population("x", 5, Activation::Linear, PopulationModel::Static, Noise::None),
            population(
                "h",
                6,
                Activation::Tanh,
                PopulationModel::LeakyRate { tau: 5.0 },
                noise,
            ),
            population(
                "y",
                2,
                Activation::Linear,
                PopulationModel::LeakyRate { tau: 3.0 },
                noise,
            ),
        ],
        projections: vec![
            projection("W1", "x", "h", Some(Initializer::Normal { std: 0.3 })),
            projection("W2", "h", "y", None),
        ],
    }
}

fn engine(sigma: f64, gate: TraceGate) -> TrialEngine<f64> {
    engine_for(&config(sigma), gate)
}

fn engine_for(config: &CircuitConfig, gate: TraceGate) -> TrialEngine<f64> {
    let blueprint = config.build().unwrap();
    let streams = SeedStreams::new(11);
    TrialEngine::new(
        Circuit::instantiate(&blueprint, &streams),
        &streams,
        TrialTiming {
            steps: STEPS,
            dt: 1.0,
        },
        gate,
    )
}

/// A fixed input and target, repeated for `batch` renditions (rendition-major columns).
fn data(batch: usize) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let x: DMatrix<f64> = DMatrix::from_fn(5, STEPS, |_, _| normal());
    let y: DMatrix<f64> = DMatrix::from_fn(2, STEPS, |_, _| normal());
    let repeat = |m: &DMatrix<f64>| DMatrix::from_fn(m.nrows(), STEPS * batch, |i, j| m[(i, j % STEPS)]);
    (repeat(&x), repeat(&y))
}

fn clean_loss(engine: &mut TrialEngine<f64>, x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    engine.prepare(x, y, Requirements::default(), false).unwrap();
    engine.losses().iter().sum()
}

/// Central finite differences of the summed clean loss against the engine's BPTT gradient, for
/// every weight of every projection.
fn check_gradients(mut engine: TrialEngine<f64>, projections: usize) {
    let (x, y) = data(2);
    engine.prepare(&x, &y, Requirements::default(), true).unwrap();
    for q in 0..projections {
        let gradient = engine.weight_gradient(q);
        let w0 = engine.circuit_mut().weights(q).clone();
        let h = 1e-6;
        for i in 0..w0.nrows() {
            for j in 0..w0.ncols() {
                let mut at = |delta: f64| {
                    engine.circuit_mut().weights_mut(q)[(i, j)] = w0[(i, j)] + delta;
                    clean_loss(&mut engine, &x, &y)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                engine.circuit_mut().weights_mut(q)[(i, j)] = w0[(i, j)];
                let scale = numeric.abs().max(1e-3);
                assert!(
                    (gradient[(i, j)] - numeric).abs() / scale < 1e-5,
                    "projection {q} ({i}, {j}): BPTT {} vs finite differences {numeric}",
                    gradient[(i, j)]
                );
            }
        }
    }
}

#[test]
fn backprop_through_time_matches_finite_differences() {
    check_gradients(engine(0.1, TraceGate::None), 2);
}

#[test]
fn backprop_through_delays_and_a_recurrent_loop_matches_finite_differences() {
    // x → h with a 2 ms delay, h → h recurrent with a 3 ms delay, h → y within the step.
    let mut config = config(0.1);
    config.projections[0].delay = 2.0;
    let mut recurrent = config.projections[1].clone();
    recurrent.name = Some("H".into());
    recurrent.from = "h".into();
    recurrent.to = "h".into();
    recurrent.delay = 3.0;
    recurrent.init = Initializer::Normal { std: 0.3 };
    config.projections.push(recurrent);
    check_gradients(engine_for(&config, TraceGate::None), 3);
}

/// For one projection: the BPTT gradient, the predicted per-entry variance of one
/// rendition's NP estimate, and the NP means over batches.
type Estimates = (DMatrix<f64>, DMatrix<f64>, Vec<DMatrix<f64>>);

/// The BPTT gradient of one rendition's loss, the predicted per-entry variance of one
/// rendition's NP estimate, and the means of NP estimates over batches of `batch`
/// renditions (`n` renditions in all), for W1 and W2.
fn np_estimates(n: usize, batch: usize, sigma: f64) -> [Estimates; 2] {
    let mut engine = engine(sigma, TraceGate::None);
    let (x1, y1) = data(1);
    engine.prepare(&x1, &y1, Requirements::default(), true).unwrap();
    // |g|² over every noisy unit (h and y) and step.
    let g2: f64 = (1..3).map(|p| engine.error(p).norm_squared()).sum();
    let mut results = (0..2).map(|q| {
        let gradient = engine.weight_gradient(q);
        // Projection q's presynaptic population is population q (x for W1, h for W2).
        let r2: Vec<f64> = engine
            .activity(q)
            .row_iter()
            .map(|row| row.norm_squared())
            .collect();
        let variance = DMatrix::from_fn(gradient.nrows(), gradient.ncols(), |i, j| {
            g2 * r2[j] + gradient[(i, j)] * gradient[(i, j)]
        });
        (gradient, variance, Vec::new())
    });
    let mut results = [results.next().unwrap(), results.next().unwrap()];
    let (x, y) = data(batch);
    let mut rule = NodePerturbation::<f64>::new(1.0);
    let w0: Vec<DMatrix<f64>> = (0..2).map(|q| engine.circuit_mut().weights(q).clone()).collect();
    // NP changes the bias of h too; it is put back after each batch with the weights.
    let b0 = engine.circuit_mut().bias(0).cloned().expect("W1 has a bias");
    for _ in 0..n / batch {
        engine.prepare(&x, &y, rule.requirements(), false).unwrap();
        engine.apply_rule(&mut rule, &mut []).unwrap();
        for (q, result) in results.iter_mut().enumerate() {
            // ΔW = −η Σ_b Ĝ_b with η = 1: minus the batch's summed estimate.
            let w = engine.circuit_mut().weights(q).clone();
            result.2.push((&w0[q] - &w) / batch as f64);
            engine.circuit_mut().weights_mut(q).copy_from(&w0[q]);
        }
        engine
            .circuit_mut()
            .bias_mut(0)
            .expect("W1 has a bias")
            .copy_from(&b0);
    }
    results
}

#[test]
fn eligibility_trace_np_is_unbiased_with_the_predicted_variance() {
    let (n, batch) = (40_000, 50);
    for (q, (gradient, variance, batch_means)) in np_estimates(n, batch, 1e-4).into_iter().enumerate() {
        let count = batch_means.len();
        let mean = batch_means
            .iter()
            .fold(DMatrix::zeros(gradient.nrows(), gradient.ncols()), |a, m| a + m)
            / count as f64;
        let cosine = mean.dot(&gradient) / (mean.norm() * gradient.norm());
        // Expected squared miss of the mean of n single-rendition estimates: Σ var / n.
        let expected_miss = variance.sum() / n as f64;
        let miss = (&mean - &gradient).norm_squared();
        // The spread of the batch means: Σ var / batch.
        let spread = batch_means
            .iter()
            .map(|m| (m - &mean).norm_squared())
            .sum::<f64>()
            / (count - 1) as f64;
        let expected_spread = variance.sum() / batch as f64;
        eprintln!(
            "W{}: cosine {cosine:.4}, squared miss {miss:.3e} (predicted {expected_miss:.3e}), spread {spread:.3e} (predicted {expected_spread:.3e})",
            q + 1
        );
        assert!(cosine > 0.98, "W{}: cosine {cosine}", q + 1);
        // The miss is a weighted sum of squared Gaussians over a few dozen entries: within a
        // factor 2 of its mean.
        assert!(
            miss > expected_miss / 2.0 && miss < expected_miss * 2.0,
            "W{}: squared miss {miss:e}, predicted {expected_miss:e}",
            q + 1
        );
        // 800 batch means: their spread is within 10 % of the prediction.
        assert!(
            (spread / expected_spread - 1.0).abs() < 0.1,
            "W{}: spread {spread:e}, predicted {expected_spread:e}",
            q + 1
        );
    }
}

/// The circuit of [`config`] with sparse projections: `x → h` with a fixed in-degree of 2,
/// `h → h` random (p = 0.4, 2 ms delay), `h → y` dense.
fn sparse_config() -> CircuitConfig {
    use npsim_core::Connectivity;
    let mut config = config(0.1);
    config.projections[0].connectivity = Connectivity::FixedInDegree { k: 2 };
    let mut recurrent = config.projections[1].clone();
    recurrent.name = Some("H".into());
    recurrent.from = "h".into();
    recurrent.to = "h".into();
    recurrent.delay = 2.0;
    recurrent.init = Initializer::Normal { std: 0.4 };
    recurrent.connectivity = Connectivity::Random { p: 0.4 };
    config.projections.push(recurrent);
    config
}

#[test]
fn backprop_through_sparse_projections_matches_finite_differences() {
    // Entries off the synapses are not weights: writing them changes nothing, and their
    // gradient is zero; both sides of the check see that.
    check_gradients(engine_for(&sparse_config(), TraceGate::None), 3);
}

#[test]
fn a_sparse_circuit_runs_as_the_dense_one_with_zeros_and_learns_only_its_synapses() {
    let sparse_config = sparse_config();
    let mut sparse = engine_for(&sparse_config, TraceGate::None);
    let mut dense_config = sparse_config.clone();
    dense_config
        .projections
        .iter_mut()
        .for_each(|p| p.connectivity = Default::default());
    let mut dense = engine_for(&dense_config, TraceGate::None);
    for q in 0..3 {
        let w = sparse.circuit_mut().weights(q).clone();
        dense.circuit_mut().weights_mut(q).copy_from(&w);
    }
    let b = sparse.circuit_mut().bias(0).cloned().unwrap();
    dense.circuit_mut().bias_mut(0).unwrap().copy_from(&b);
    // Fixed in-degree: every h unit has exactly 2 synapses from x.
    let (structure, values) = sparse.circuit_mut().sparse_weights(0).unwrap();
    assert!(structure.in_degrees().iter().all(|&d| d == 2));
    assert_eq!(values.len(), 12);
    let (x, y) = data(3);
    let out_sparse = sparse.forward(&x).clone();
    let out_dense = dense.forward(&x).clone();
    assert!((&out_sparse - &out_dense).amax() < 1e-12);
    // One NP update: the same noise (same streams), the same signal; the sparse change is
    // the dense change at the synapses, and nothing elsewhere.
    let mut rule = NodePerturbation::<f64>::new(0.5);
    let before: Vec<DMatrix<f64>> = (0..3).map(|q| sparse.circuit_mut().weights(q).clone()).collect();
    sparse.step(&x, &y, &mut rule, &mut []).unwrap();
    dense.step(&x, &y, &mut rule, &mut []).unwrap();
    for (q, before) in before.iter().enumerate() {
        let sparse_change = sparse.circuit_mut().weights(q) - before;
        let dense_change = dense.circuit_mut().weights(q) - before;
        let mask = before.map(|w| if w != 0.0 { 1.0 } else { 0.0 });
        assert!(
            (&sparse_change - dense_change.component_mul(&mask)).amax() < 1e-12,
            "projection {q}"
        );
        assert!(sparse_change.component_mul(&mask.map(|m| 1.0 - m)).amax() == 0.0);
        assert!(sparse_change.amax() > 0.0, "projection {q} learned");
    }
}

/// [`config`] with `h` noiseless but driven one-to-one by `lman`, 6 Poisson units at
/// `rate` Hz, through current synapses (τ = 3 ms) of fixed weight `w`; `W2` frozen (`y` is
/// not perturbed).
fn lman_config(rate: f64, w: f64) -> CircuitConfig {
    use npsim_core::{Connectivity, Synapse};
    let mut config = config(0.1);
    config.populations[1].noise = Noise::None;
    config.populations[2].noise = Noise::None;
    config.populations.push(PopulationConfig {
        name: "lman".into(),
        size: 6,
        shape: None,
        activation: Activation::Linear,
        noise: Noise::None,
        model: PopulationModel::Poisson { rate },
    });
    config.projections[1].plastic = false;
    config.projections.push(ProjectionConfig {
        name: Some("L".into()),
        from: "lman".into(),
        to: "h".into(),
        init: Initializer::Constant { value: w },
        bias: None,
        plastic: false,
        connectivity: Connectivity::OneToOne,
        synapse: Synapse::Current { tau: 3.0 },
        delay: 0.0,
    });
    config
}

#[test]
fn a_poisson_source_fires_at_its_rate_and_perturbs_by_its_filtered_spikes_minus_their_mean() {
    let (rate, w) = (100.0, 0.2);
    let mut engine = engine_for(&lman_config(rate, w), TraceGate::None);
    let (x, y) = data(400);
    let rule = NodePerturbation::<f64>::new(1.0);
    engine.prepare(&x, &y, rule.requirements(), false).unwrap();
    let (lman, h) = (3, 1);
    // Noise-free renditions carry the mean, λ·dt = 0.1 spikes per step.
    assert!(engine.activity(lman).iter().all(|&a| (a - 0.1).abs() < 1e-15));
    let spikes = engine.noisy_activity(lman).clone();
    let (n, p) = (spikes.len() as f64, 0.1);
    let count = spikes.sum();
    // 48,000 Bernoulli(0.1) draws: the count within 4 standard deviations of its mean.
    assert!(
        (count - n * p).abs() < 4.0 * (n * p * (1.0 - p)).sqrt(),
        "{count} spikes in {n} unit-steps"
    );
    assert!(spikes.iter().all(|&s| s == 0.0 || s == 1.0));
    // What h received: the synaptic trace of w·(spikes − λ dt), computed here step by step.
    let (batch, keep) = (400, (-1.0f64 / 3.0).exp());
    let received = engine.received_noise(h);
    let mut worst = 0.0f64;
    for b in 0..batch {
        let mut trace = nalgebra::DVector::<f64>::zeros(6);
        for t in 0..STEPS {
            let now = spikes.column(b * STEPS + t).map(|s| w * (s - p));
            trace = trace * keep + now;
            worst = worst.max((received.column(b * STEPS + t) - &trace).amax());
        }
    }
    assert!(worst < 1e-12, "received noise off by {worst}");
}

#[test]
fn eligibility_trace_np_with_a_poisson_source_follows_the_noise_covariance() {
    // To first order in the noise, E[ΔW_ij] = −η Σ_{t,t'} C(t, t') g_i(t') r_j(t) with g = ∂ℓ/∂u
    // of h and C the covariance of the filtered spike trains:
    // C(t, t') = w² p (1 − p) Σ_{s ≤ min(t, t')} ρ^{t−s} ρ^{t'−s}, ρ = e^{−dt/τ}.
    let (rate, w) = (100.0, 0.01);
    let (p, rho) = (0.1, (-1.0f64 / 3.0).exp());
    let mut engine = engine_for(&lman_config(rate, w), TraceGate::None);
    let (x1, y1) = data(1);
    engine.prepare(&x1, &y1, Requirements::default(), true).unwrap();
    let g = engine.error(1).clone();
    let r = engine.activity(0).clone();
    let covariance = DMatrix::from_fn(STEPS, STEPS, |t, u| {
        (0..=t.min(u))
            .map(|s| rho.powi((t - s) as i32) * rho.powi((u - s) as i32))
            .sum::<f64>()
            * w
            * w
            * p
            * (1.0 - p)
    });
    let expected = -(&g * &covariance) * r.transpose();
    let (x, y) = data(100);
    let mut rule = NodePerturbation::<f64>::new(1.0);
    let w0 = engine.circuit_mut().weights(0).clone();
    let b0 = engine.circuit_mut().bias(0).cloned().unwrap();
    let rounds = 400;
    let mut total = DMatrix::<f64>::zeros(w0.nrows(), w0.ncols());
    for _ in 0..rounds {
        engine.prepare(&x, &y, rule.requirements(), false).unwrap();
        engine.apply_rule(&mut rule, &mut []).unwrap();
        total += engine.circuit_mut().weights(0) - &w0;
        engine.circuit_mut().weights_mut(0).copy_from(&w0);
        engine.circuit_mut().bias_mut(0).unwrap().copy_from(&b0);
    }
    let mean = total / (rounds * 100) as f64;
    let cosine = mean.dot(&expected) / (mean.norm() * expected.norm());
    let ratio = mean.norm() / expected.norm();
    eprintln!("cosine {cosine:.4}, |mean| / |expected| {ratio:.4}");
    // 40,000 renditions: measured cosine 0.9999 and ratio 0.994; the bounds leave room
    // for the estimate's noise.
    assert!(cosine > 0.97, "cosine {cosine}");
    assert!((ratio - 1.0).abs() < 0.1, "ratio {ratio}");
}

#[test]
fn renditions_run_on_any_number_of_threads_with_the_same_numbers() {
    // Five renditions of the sparse, delayed, recurrent circuit driven by a Poisson source:
    // the noise is drawn before the renditions split over threads, so one and three threads
    // give the same update, bit for bit.
    let mut config = sparse_config();
    config.populations.push(PopulationConfig {
        name: "lman".into(),
        size: 6,
        shape: None,
        activation: Activation::Linear,
        noise: Noise::None,
        model: PopulationModel::Poisson { rate: 50.0 },
    });
    config.projections.push(ProjectionConfig {
        name: Some("L".into()),
        from: "lman".into(),
        to: "h".into(),
        init: Initializer::Constant { value: 0.1 },
        bias: None,
        plastic: false,
        connectivity: npsim_core::Connectivity::OneToOne,
        synapse: npsim_core::Synapse::Current { tau: 3.0 },
        delay: 0.0,
    });
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut engine = engine_for(&config, TraceGate::Clean);
            let (x, y) = data(5);
            let mut rule = NodePerturbation::<f64>::new(0.3);
            for _ in 0..3 {
                engine.step(&x, &y, &mut rule, &mut []).unwrap();
            }
            engine.prepare(&x, &y, Requirements::default(), true).unwrap();
            let mut numbers: Vec<f64> = (0..4)
                .flat_map(|q| {
                    engine
                        .circuit_mut()
                        .weights(q)
                        .iter()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .collect();
            numbers.extend(engine.error(1).iter());
            numbers.extend(engine.losses());
            numbers
        })
    };
    let (one, three) = (run(1), run(3));
    assert!(one.iter().zip(&three).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(one.len(), three.len());
}
