//! Convolution and pooling: back-propagated gradients against finite differences, and the
//! mean node-perturbation update against the back-propagated one, on a small convnet with
//! every kind of layer (convolution with stride and padding, max and average pooling,
//! flatten into a dense readout).

use nalgebra::{DMatrix, DVector};
use npsim_core::{
    Activation, Circuit, CircuitConfig, Connectivity, Engine, Initializer, LearningRule, Noise,
    PopulationConfig, ProjectionConfig, SeedStreams, Shape,
};
use npsim_rules::{NodePerturbation, Reinforce, Sgd, WeightPerturbation};

const SIGMA: f64 = 1e-6;

fn convnet() -> CircuitConfig {
    let pop = |name: &str, shape: Option<Shape>, size: usize, activation| PopulationConfig {
        name: name.into(),
        size,
        shape,
        activation,
        noise: if name == "x" {
            Noise::None
        } else {
            Noise::Gaussian { std: SIGMA }
        },
        model: Default::default(),
    };
    let proj = |name: &str, from: &str, to: &str, connectivity| ProjectionConfig {
        name: Some(name.into()),
        from: from.into(),
        to: to.into(),
        init: Initializer::XavierNormal { variance_scale: 2.0 },
        bias: match connectivity {
            Connectivity::MaxPool { .. } | Connectivity::AvgPool { .. } => None,
            _ => Some(Initializer::Normal { std: 0.2 }),
        },
        plastic: true,
        connectivity,
        synapse: Default::default(),
        delay: 0.0,
    };
    CircuitConfig {
        populations: vec![
            pop("x", Some((2, 6, 6)), 0, Activation::Linear),
            pop("c1", Some((3, 6, 6)), 0, Activation::Tanh),
            pop("p1", Some((3, 3, 3)), 0, Activation::Linear),
            pop("c2", Some((4, 2, 2)), 0, Activation::Relu),
            pop("p2", Some((4, 1, 1)), 0, Activation::Linear),
            pop("y", None, 3, Activation::Linear),
        ],
        projections: vec![
            proj(
                "K1",
                "x",
                "c1",
                Connectivity::Conv2d {
                    kernel: 3,
                    stride: None,
                    padding: 1,
                },
            ),
            proj(
                "pool1",
                "c1",
                "p1",
                Connectivity::MaxPool {
                    window: 2,
                    stride: None,
                },
            ),
            proj(
                "K2",
                "p1",
                "c2",
                Connectivity::Conv2d {
                    kernel: 2,
                    stride: Some(1),
                    padding: 0,
                },
            ),
            proj(
                "pool2",
                "c2",
                "p2",
                Connectivity::AvgPool {
                    window: 2,
                    stride: None,
                },
            ),
            proj("W", "p2", "y", Connectivity::Dense),
        ],
    }
}

/// The projections with weights, by index.
const PLASTIC: [usize; 3] = [0, 2, 4];

fn batch(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut state = seed;
    DMatrix::from_fn(rows, cols, |_, _| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

struct Setup {
    engine: Engine<f64>,
    x: DMatrix<f64>,
    t: DMatrix<f64>,
    weights: Vec<DMatrix<f64>>,
    biases: Vec<DVector<f64>>,
}

fn setup(seed: u64, samples: usize) -> Setup {
    let bp = convnet().build().unwrap();
    let streams = SeedStreams::new(seed);
    let mut circuit = Circuit::<f64>::instantiate(&bp, &streams);
    let weights = PLASTIC.iter().map(|&q| circuit.weights(q).clone()).collect();
    let biases = PLASTIC
        .iter()
        .map(|&q| circuit.bias(q).unwrap().clone())
        .collect();
    Setup {
        engine: Engine::new(circuit, &streams),
        x: batch(72, samples, seed + 10),
        t: batch(3, samples, seed + 11),
        weights,
        biases,
    }
}

impl Setup {
    fn restore(&mut self) {
        let circuit = self.engine.circuit_mut();
        for (i, &q) in PLASTIC.iter().enumerate() {
            circuit.weights_mut(q).copy_from(&self.weights[i]);
            circuit.bias_mut(q).unwrap().copy_from(&self.biases[i]);
        }
    }

    /// One update of `rule` from the stored state: every weight and bias change, flattened.
    fn update(&mut self, rule: &mut dyn LearningRule<f64>) -> DVector<f64> {
        self.restore();
        self.engine.step(&self.x, &self.t, rule, &mut []).unwrap();
        let circuit = self.engine.circuit_mut();
        let mut changes = Vec::new();
        for (i, &q) in PLASTIC.iter().enumerate() {
            changes.extend((circuit.weights(q) - &self.weights[i]).iter());
            changes.extend((circuit.bias(q).unwrap() - &self.biases[i]).iter());
        }
        DVector::from_vec(changes)
    }

    fn total_loss(&mut self) -> f64 {
        self.engine.forward(&self.x);
        self.engine.loss(&self.t).iter().sum()
    }

    /// Central finite differences of the total loss over every weight and bias, flattened
    /// as in [`Setup::update`].
    fn numeric_gradient(&mut self) -> DVector<f64> {
        self.restore();
        let h = 1e-6;
        let mut gradient = Vec::new();
        for &q in &PLASTIC {
            let len = self.engine.circuit_mut().weights(q).len();
            for i in 0..len {
                let w = self.engine.circuit_mut().weights_mut(q).as_mut_slice()[i];
                self.engine.circuit_mut().weights_mut(q).as_mut_slice()[i] = w + h;
                let up = self.total_loss();
                self.engine.circuit_mut().weights_mut(q).as_mut_slice()[i] = w - h;
                let down = self.total_loss();
                self.engine.circuit_mut().weights_mut(q).as_mut_slice()[i] = w;
                gradient.push((up - down) / (2.0 * h));
            }
            let len = self.engine.circuit().bias(q).unwrap().len();
            for i in 0..len {
                let b = self.engine.circuit().bias(q).unwrap()[i];
                self.engine.circuit_mut().bias_mut(q).unwrap()[i] = b + h;
                let up = self.total_loss();
                self.engine.circuit_mut().bias_mut(q).unwrap()[i] = b - h;
                let down = self.total_loss();
                self.engine.circuit_mut().bias_mut(q).unwrap()[i] = b;
                gradient.push((up - down) / (2.0 * h));
            }
        }
        DVector::from_vec(gradient)
    }
}

#[test]
fn backprop_through_convolution_and_pooling_matches_finite_differences() {
    for seed in [1, 2, 3] {
        let mut s = setup(seed, 3);
        // SGD with rate 1 on a summed loss changes each parameter by minus its gradient.
        let backprop = -s.update(&mut Sgd::new(1.0));
        let numeric = s.numeric_gradient();
        assert_eq!(backprop.len(), numeric.len());
        for (i, (b, n)) in backprop.iter().zip(numeric.iter()).enumerate() {
            // Central differences with h = 1e-6 are accurate to ~1e-9 here; a max-pool or ReLU
            // kink within h of a unit is avoided with overwhelming probability.
            assert!(
                (b - n).abs() < 1e-6 * (1.0 + n.abs()),
                "seed {seed} parameter {i}: backprop {b} vs finite differences {n}"
            );
        }
    }
}

#[test]
fn mean_node_perturbation_update_converges_to_the_backprop_update() {
    // The NP update u is unbiased: E[u] = g, the SGD update. The mean of N updates misses g
    // by E|ū − g|² = E|u − g|² / N; we estimate E|u − g|² from the same draws and require the
    // measured miss to be within a factor 2 of that prediction. All parameters share one
    // scalar signal per sample, so the miss has few effective degrees of freedom and the ratio
    // scatters: measured 1.37, 1.62 and 0.91 after 1,000, 3,000 and 12,000 draws (cosine
    // 0.90, 0.96, 0.99), while a bias would make it grow in proportion to the draws.
    let draws = 3000;
    let mut s = setup(4, 2);
    let g = s.update(&mut Sgd::new(1.0));
    let mut np = NodePerturbation::<f64>::new(1.0);
    let updates: Vec<DVector<f64>> = (0..draws).map(|_| s.update(&mut np)).collect();
    let mean = updates.iter().fold(DVector::zeros(g.len()), |acc, u| acc + u) / draws as f64;
    let spread = updates.iter().map(|u| (u - &g).norm_squared()).sum::<f64>() / draws as f64;
    let measured = (&mean - &g).norm_squared();
    let predicted = spread / draws as f64;
    let cosine = mean.dot(&g) / (mean.norm() * g.norm());
    eprintln!(
        "miss measured/predicted {:.3}, cosine {cosine:.4}",
        measured / predicted
    );
    assert!(
        (0.5..2.0).contains(&(measured / predicted)),
        "ratio {}",
        measured / predicted
    );
    assert!(cosine > 0.8, "cosine {cosine}");
}

#[test]
fn weight_perturbation_and_reinforce_follow_the_gradient_on_a_convnet() {
    // Both are unbiased estimates of the SGD update (WP of the weights only: it does not
    // perturb, and so does not learn, biases). With 3,000 draws the mean's expected squared
    // miss is at most ~4 % of |g|² for WP's 114 perturbed weights (cosine ≳ 0.98) and far
    // less for REINFORCE's 6 perturbed outputs; we require cosine > 0.9. Measured: WP 0.981,
    // REINFORCE 1.000 (to four digits).
    let draws = 3000;
    let mut s = setup(5, 2);
    let g = s.update(&mut Sgd::new(1.0));
    let is_weight: Vec<bool> = {
        let circuit = s.engine.circuit_mut();
        PLASTIC
            .iter()
            .flat_map(|&q| {
                let weights = circuit.weights(q).len();
                let biases = circuit.bias(q).unwrap().len();
                std::iter::repeat_n(true, weights).chain(std::iter::repeat_n(false, biases))
            })
            .collect()
    };
    let weights_only = |v: &DVector<f64>| {
        DVector::from_iterator(
            v.len(),
            v.iter().zip(&is_weight).map(|(&x, &w)| if w { x } else { 0.0 }),
        )
    };
    let cosine = |a: &DVector<f64>, b: &DVector<f64>| a.dot(b) / (a.norm() * b.norm());
    let mut mean_of = |rule: &mut dyn LearningRule<f64>| {
        (0..draws).fold(DVector::zeros(g.len()), |acc, _| acc + s.update(rule)) / draws as f64
    };
    let wp = mean_of(&mut WeightPerturbation::new(1.0, SIGMA));
    assert!(
        wp.iter().zip(&is_weight).all(|(&x, &w)| w || x == 0.0),
        "WP leaves biases alone"
    );
    let wp_cosine = cosine(&wp, &weights_only(&g));
    let reinforce_cosine = cosine(&mean_of(&mut Reinforce::new(1.0, false)), &g);
    eprintln!("cosine with SGD: WP {wp_cosine:.4}, REINFORCE {reinforce_cosine:.4}");
    assert!(wp_cosine > 0.9, "WP {wp_cosine}");
    assert!(reinforce_cosine > 0.9, "REINFORCE {reinforce_cosine}");
}
