//! Node perturbation is an unbiased, noisy estimate of the SGD update (paper Eqs. 4–6).
//!
//! Everything here is checked against closed-form statistics of Gaussian perturbations in the
//! small-σ limit, where `δℓ = g·σξ` with `g = ∂ℓ/∂u` over all perturbed units:
//! - the NP update of node `i` has mean `g_i` and variance `|g|² + g_i²`, so the mean of `N`
//!   updates misses the SGD update by `E|mean − sgd|² = Σ_k |x_{k−1}|² (L_k |g|² + |g_k|²) / N`;
//! - with one perturbed layer of `L` units the single-update cosine is `|ĝ·u|` with `u`
//!   uniform on the sphere, whose mean is `Γ(L/2) / (√π Γ((L+1)/2)) ≈ √(2/(πL))` (Eq. 6);
//! - for layer `k` of a deeper circuit it is `≈ √(2/π) |g_k| / (|g| √L_k)`.

use nalgebra::DMatrix;
use npsim_core::{
    Activation, Circuit, CircuitConfig, Engine, Initializer, LearningRule, Noise, PopulationConfig,
    ProjectionConfig, Real, SeedStreams,
};
use npsim_rules::{NodePerturbation, Sgd};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const SIGMA: f64 = 1e-6;

fn circuit(sizes: &[usize], hidden: Activation) -> CircuitConfig {
    let populations = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| PopulationConfig {
            name: format!("p{i}"),
            size,
            shape: None,
            activation: if i == 0 || i == sizes.len() - 1 {
                Activation::Linear
            } else {
                hidden
            },
            noise: if i == 0 {
                Noise::None
            } else {
                Noise::Gaussian { std: SIGMA }
            },
            model: Default::default(),
        })
        .collect();
    let projections = (1..sizes.len())
        .map(|i| ProjectionConfig {
            name: Some(format!("W{i}")),
            from: format!("p{}", i - 1),
            to: format!("p{i}"),
            init: Initializer::default(),
            bias: None,
            plastic: true,
            connectivity: Default::default(),
            synapse: Default::default(),
            delay: 0.0,
        })
        .collect();
    CircuitConfig {
        populations,
        projections,
    }
}

struct Setup<T: Real> {
    engine: Engine<T>,
    x: DMatrix<T>,
    t: DMatrix<T>,
    initial: Vec<DMatrix<T>>,
}

fn setup<T: Real>(sizes: &[usize], hidden: Activation, seed: u64) -> Setup<T> {
    let bp = circuit(sizes, hidden).build().unwrap();
    let streams = SeedStreams::new(seed);
    let mut circuit = Circuit::<T>::instantiate(&bp, &streams);
    let initial = (0..sizes.len() - 1).map(|q| circuit.weights(q).clone()).collect();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut draw = |n: usize| DMatrix::from_fn(n, 1, |_, _| T::of(StandardNormal.sample(&mut rng)));
    let x = draw(sizes[0]);
    let t = draw(*sizes.last().unwrap());
    Setup {
        engine: Engine::new(circuit, &streams),
        x,
        t,
        initial,
    }
}

impl<T: Real> Setup<T> {
    /// One update of `rule` from the initial weights, as a list of per-projection ΔW in f64.
    fn restore(&mut self) {
        for (q, w) in self.initial.iter().enumerate() {
            self.engine.circuit_mut().weights_mut(q).copy_from(w);
        }
    }

    fn update(&mut self, rule: &mut dyn LearningRule<T>) -> Vec<DMatrix<f64>> {
        self.restore();
        self.engine.step(&self.x, &self.t, rule, &mut []).unwrap();
        self.initial
            .iter()
            .enumerate()
            .map(|(q, w0)| (self.engine.circuit_mut().weights(q) - w0).map(|v| v.f64()))
            .collect()
    }

    /// `|x_{k−1}|²` and `|g_k|²` for each projection, from the SGD pass.
    fn gradient_norms(&mut self) -> (Vec<f64>, Vec<f64>) {
        let n = self.initial.len();
        self.restore();
        self.engine.forward(&self.x);
        self.engine.backprop(&self.t);
        let x2 = (0..n)
            .map(|k| self.engine.activity(k).map(|v| v.f64()).norm_squared())
            .collect();
        let g2 = (0..n)
            .map(|k| self.engine.error(k + 1).map(|v| v.f64()).norm_squared())
            .collect();
        (x2, g2)
    }
}

fn frobenius_dot(a: &[DMatrix<f64>], b: &[DMatrix<f64>]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.dot(y)).sum()
}

/// Mean of `n` NP updates against the SGD update: returns (measured / predicted squared
/// error, cosine of mean with SGD).
fn mean_update_error<T: Real>(sizes: &[usize], hidden: Activation, n: usize, seed: u64) -> (f64, f64) {
    let mut s = setup::<T>(sizes, hidden, seed);
    let sgd = s.update(&mut Sgd::new(1.0));
    let mut np = NodePerturbation::<T>::new(1.0);
    let mut mean: Vec<DMatrix<f64>> = sgd.iter().map(|m| DMatrix::zeros(m.nrows(), m.ncols())).collect();
    for _ in 0..n {
        for (acc, d) in mean.iter_mut().zip(s.update(&mut np)) {
            *acc += d / n as f64;
        }
    }
    let miss: Vec<_> = mean.iter().zip(&sgd).map(|(m, g)| m - g).collect();
    let measured = frobenius_dot(&miss, &miss);
    let (x2, g2) = s.gradient_norms();
    let g_total: f64 = g2.iter().sum();
    let predicted: f64 = (0..sgd.len())
        .map(|k| x2[k] * (sizes[k + 1] as f64 * g_total + g2[k]))
        .sum::<f64>()
        / n as f64;
    let cosine =
        frobenius_dot(&mean, &sgd) / (frobenius_dot(&mean, &mean) * frobenius_dot(&sgd, &sgd)).sqrt();
    (measured / predicted, cosine)
}

fn check_mean_converges<T: Real>(hidden: Activation) {
    // 3 perturbed layers of 20 units: the squared miss is a sum of ~60 comparable terms, so
    // its ratio to the prediction fluctuates by about sqrt(2/60) ≈ 0.18; [0.5, 1.6] is ~3σ.
    let sizes = [12, 20, 20, 20];
    for (n, min_cos) in [(1000, 0.9), (8000, 0.99)] {
        let (ratio, cosine) = mean_update_error::<T>(&sizes, hidden, n, 11);
        eprintln!(
            "{} {hidden:?} n={n}: miss/predicted {ratio:.3}, cosine {cosine:.4}",
            T::NAME
        );
        assert!(
            (0.5..1.6).contains(&ratio),
            "{} {hidden:?} n={n}: miss/predicted = {ratio}",
            T::NAME
        );
        assert!(cosine > min_cos, "{} {hidden:?} n={n}: cosine {cosine}", T::NAME);
    }
}

#[test]
fn mean_np_update_converges_to_sgd_linear_f64() {
    check_mean_converges::<f64>(Activation::Linear);
}

#[test]
fn mean_np_update_converges_to_sgd_relu_f64() {
    check_mean_converges::<f64>(Activation::Relu);
}

#[test]
fn mean_np_update_converges_to_sgd_linear_f32() {
    check_mean_converges::<f32>(Activation::Linear);
}

#[test]
fn mean_np_update_converges_to_sgd_relu_f32() {
    check_mean_converges::<f32>(Activation::Relu);
}

/// Mean single-update cosine per layer over `n` draws, and the norms it depends on.
fn mean_cosines<T: Real>(sizes: &[usize], hidden: Activation, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut s = setup::<T>(sizes, hidden, seed);
    let sgd = s.update(&mut Sgd::new(1.0));
    let mut np = NodePerturbation::<T>::new(1.0);
    let mut mean = vec![0.0; sgd.len()];
    for _ in 0..n {
        for (k, d) in s.update(&mut np).iter().enumerate() {
            mean[k] += d.dot(&sgd[k]) / (d.norm() * sgd[k].norm()) / n as f64;
        }
    }
    let (_, g2) = s.gradient_norms();
    (mean, g2)
}

/// `E|u_1|` for `u` uniform on the unit sphere in `l` dimensions.
fn sphere_abs_coordinate(l: usize) -> f64 {
    let (mut c, mut at) = if l % 2 == 1 {
        (1.0, 1)
    } else {
        (2.0 / std::f64::consts::PI, 2)
    };
    while at < l {
        c *= at as f64 / (at + 1) as f64;
        at += 2;
    }
    c
}

fn check_single_layer_cosine<T: Real>() {
    // One perturbed layer: the mean cosine is exactly E|u_1|; 4000 draws estimate it to
    // about 1.5 % (the cosine's std is about its mean), so 6 % is 4σ.
    for l in [16usize, 64, 256] {
        let (cos, _) = mean_cosines::<T>(&[30, l], Activation::Linear, 4000, l as u64);
        let predicted = sphere_abs_coordinate(l);
        eprintln!(
            "{} L={l}: mean cosine {:.4}, predicted {predicted:.4}",
            T::NAME,
            cos[0]
        );
        assert!(
            (cos[0] / predicted - 1.0).abs() < 0.06,
            "{} L={l}: cos {} vs {predicted}",
            T::NAME,
            cos[0]
        );
        assert!((predicted * (l as f64).sqrt() / (2.0 / std::f64::consts::PI).sqrt() - 1.0).abs() < 0.02);
    }
}

#[test]
fn single_update_cosine_scales_as_one_over_sqrt_l_f64() {
    check_single_layer_cosine::<f64>();
}

#[test]
fn single_update_cosine_scales_as_one_over_sqrt_l_f32() {
    check_single_layer_cosine::<f32>();
}

fn check_hidden_layer_cosine<T: Real>(hidden: Activation) {
    // Hidden layer of a 2-layer circuit: cos ≈ √(2/π)|g_h|/(|g|√L_h). The approximation
    // (|ξ_h| ≈ √L_h) and 3000 draws leave about 10 %.
    for lh in [25usize, 100, 400] {
        let (cos, g2) = mean_cosines::<T>(&[20, lh, 10], hidden, 3000, 100 + lh as u64);
        let g = (g2[0] + g2[1]).sqrt();
        let predicted = (2.0 / std::f64::consts::PI).sqrt() * g2[0].sqrt() / (g * (lh as f64).sqrt());
        eprintln!(
            "{} {hidden:?} Lh={lh}: hidden cosine {:.4}, predicted {predicted:.4}",
            T::NAME,
            cos[0]
        );
        assert!(
            (cos[0] / predicted - 1.0).abs() < 0.12,
            "{} {hidden:?} Lh={lh}: {} vs {predicted}",
            T::NAME,
            cos[0]
        );
    }
}

#[test]
fn hidden_layer_cosine_follows_eq6_linear_f64() {
    check_hidden_layer_cosine::<f64>(Activation::Linear);
}

#[test]
fn hidden_layer_cosine_follows_eq6_relu_f32() {
    check_hidden_layer_cosine::<f32>(Activation::Relu);
}

#[test]
fn np_in_f32_with_tiny_noise_agrees_with_f64() {
    // Same seed: the same noise and initial weights up to rounding. With σ = 1e-6 a naive
    // ℓ̃ − ℓ in f32 would be pure rounding error; the difference propagation keeps the f32
    // update within 1e-4 (relative, Frobenius) of the f64 one.
    for hidden in [Activation::Linear, Activation::Relu, Activation::Tanh] {
        let sizes = [30, 50, 10];
        let mut s64 = setup::<f64>(&sizes, hidden, 5);
        let mut s32 = setup::<f32>(&sizes, hidden, 5);
        let d64 = s64.update(&mut NodePerturbation::new(1e-3));
        let d32 = s32.update(&mut NodePerturbation::new(1e-3));
        for (a, b) in d64.iter().zip(&d32) {
            let rel = (a - b).norm() / a.norm();
            eprintln!("{hidden:?}: f32 vs f64 relative difference {rel:.2e}");
            assert!(rel < 1e-4, "{hidden:?}: f32 vs f64 relative difference {rel}");
        }
    }
}

/// Mean of `n` updates of `rule` and the SGD update, from the same state.
fn mean_and_sgd<T: Real>(
    s: &mut Setup<T>,
    rule: &mut dyn LearningRule<T>,
    n: usize,
) -> (Vec<DMatrix<f64>>, Vec<DMatrix<f64>>) {
    let sgd = s.update(&mut Sgd::new(1.0));
    let mut mean: Vec<DMatrix<f64>> = sgd.iter().map(|m| DMatrix::zeros(m.nrows(), m.ncols())).collect();
    for _ in 0..n {
        for (acc, d) in mean.iter_mut().zip(s.update(rule)) {
            *acc += d / n as f64;
        }
    }
    (mean, sgd)
}

#[test]
fn weight_perturbation_is_unbiased_with_the_predicted_variance() {
    // WP's update of weight i is (G·ψ)ψ_i with G the full weight gradient (P weights): mean
    // G_i, variance |G|² + G_i², so E|mean − sgd|² = (P + 1)|G|²/N.
    for hidden in [Activation::Linear, Activation::Relu] {
        let sizes = [6, 8, 4];
        let n = 8000;
        let mut s = setup::<f64>(&sizes, hidden, 21);
        let (mean, sgd) = mean_and_sgd(&mut s, &mut npsim_rules::WeightPerturbation::new(1.0, 1e-6), n);
        let weights: usize = sgd.iter().map(|m| m.len()).sum();
        let g2 = frobenius_dot(&sgd, &sgd);
        let miss: Vec<_> = mean.iter().zip(&sgd).map(|(m, g)| m - g).collect();
        let ratio = frobenius_dot(&miss, &miss) / ((weights as f64 + 1.0) * g2 / n as f64);
        let cosine = frobenius_dot(&mean, &sgd) / (frobenius_dot(&mean, &mean) * g2).sqrt();
        eprintln!("WP {hidden:?}: miss/predicted {ratio:.3}, cosine {cosine:.4}");
        // 80 weights: the ratio fluctuates by about sqrt(2/80) ≈ 0.16.
        assert!((0.55..1.5).contains(&ratio), "{hidden:?}: {ratio}");
        assert!(cosine > 0.99, "{hidden:?}: {cosine}");
    }
}

#[test]
fn reinforce_is_unbiased_with_the_predicted_variance() {
    // Output-only noise: ĝ = (g·ξ)ξ estimates the output gradient g (Ly units) with covariance
    // |g|² I + g gᵀ, back-propagated to the hidden layer of a linear net by W2ᵀ. Per draw,
    // E|ΔW2 − G2|² = |h|²(Ly + 1)|g|² and E|ΔW1 − G1|² = |x|²(|g|²|W2|²_F + |W2ᵀg|²).
    let sizes = [10, 30, 5];
    for seed in [3, 4] {
        let mut s = setup::<f64>(&sizes, Activation::Linear, seed);
        let sgd = s.update(&mut Sgd::new(1.0));
        let mut rule = npsim_rules::Reinforce::new(1.0, false);
        let n = 20000;
        let mut squared = [0.0; 2];
        let mut mean: Vec<DMatrix<f64>> = sgd.iter().map(|m| DMatrix::zeros(m.nrows(), m.ncols())).collect();
        for _ in 0..n {
            let d = s.update(&mut rule);
            for k in 0..2 {
                squared[k] += (&d[k] - &sgd[k]).norm_squared() / n as f64;
                mean[k] += &d[k] / n as f64;
            }
        }
        s.restore();
        s.engine.forward(&s.x);
        s.engine.backprop(&s.t);
        let g = s.engine.error(2).map(|v| v.f64());
        let w2 = s.initial[1].map(|v| v.f64());
        let x2 = s.engine.activity(0).map(|v| v.f64()).norm_squared();
        let h2 = s.engine.activity(1).map(|v| v.f64()).norm_squared();
        let g2 = g.norm_squared();
        let predicted = [
            x2 * (g2 * w2.norm_squared() + (w2.transpose() * &g).norm_squared()),
            h2 * (sizes[2] as f64 + 1.0) * g2,
        ];
        let cosine =
            frobenius_dot(&mean, &sgd) / (frobenius_dot(&mean, &mean) * frobenius_dot(&sgd, &sgd)).sqrt();
        eprintln!(
            "REINFORCE seed {seed}: per-draw squared error / predicted {:.3}, {:.3}; cosine of the mean {cosine:.5}",
            squared[0] / predicted[0],
            squared[1] / predicted[1]
        );
        // 20,000 draws estimate these fourth moments of Gaussians to about 3 %; 10 % is >3σ.
        for k in 0..2 {
            assert!(
                (squared[k] / predicted[k] - 1.0).abs() < 0.1,
                "seed {seed} layer {k}"
            );
        }
        // Unbiased: the mean of 20,000 updates points along SGD's.
        assert!(cosine > 0.995, "seed {seed}: {cosine}");
    }
}

#[test]
fn running_average_baseline_np_is_unbiased() {
    // For a fixed input the running average converges to the mean noisy loss, so
    // ℓ̃ − b ≈ δℓ and the mean update again points along SGD's (no clean pass needed).
    let sizes = [12, 20, 20, 20];
    let mut s = setup::<f64>(&sizes, Activation::Relu, 11);
    let mut rule = NodePerturbation::<f64>::with_baseline(1.0, npsim_rules::Baseline::RunningAverage(0.05));
    let (mean, sgd) = mean_and_sgd(&mut s, &mut rule, 8000);
    let cosine =
        frobenius_dot(&mean, &sgd) / (frobenius_dot(&mean, &mean) * frobenius_dot(&sgd, &sgd)).sqrt();
    eprintln!("running-average baseline: cosine of the mean with SGD {cosine:.4}");
    assert!(cosine > 0.98, "{cosine}");
}

#[test]
fn batch_mean_baseline_np_is_unbiased() {
    // Eight samples of one input per update: each noisy loss is compared with the mean of
    // the other seven, independent of its own noise, so the mean update points along SGD's.
    let sizes = [12, 20, 20, 20];
    let mut s = setup::<f64>(&sizes, Activation::Relu, 13);
    let repeat = |m: &DMatrix<f64>| DMatrix::from_fn(m.nrows(), 8, |i, _| m[(i, 0)]);
    (s.x, s.t) = (repeat(&s.x), repeat(&s.t));
    let mut rule = NodePerturbation::<f64>::with_baseline(1.0, npsim_rules::Baseline::BatchMean);
    let (mean, sgd) = mean_and_sgd(&mut s, &mut rule, 2000);
    let cosine =
        frobenius_dot(&mean, &sgd) / (frobenius_dot(&mean, &mean) * frobenius_dot(&sgd, &sgd)).sqrt();
    let ratio = (frobenius_dot(&mean, &mean) / frobenius_dot(&sgd, &sgd)).sqrt();
    eprintln!("batch-mean baseline: cosine of the mean with SGD {cosine:.4}, norm ratio {ratio:.3}");
    assert!(cosine > 0.98, "{cosine}");
    assert!((ratio - 1.0).abs() < 0.1, "{ratio}");
}
