//! Back-propagated gradients of every layer type and loss against central finite
//! differences, and the loss differences the NP signal uses against naive evaluation.

mod common;

use common::batch;
use npsim_core::{
    Activation, Circuit, CircuitConfig, Engine, Initializer, Loss, Noise, PopulationConfig, ProjectionConfig,
    SeedStreams,
};

fn network(hidden: Activation, output: Activation) -> CircuitConfig {
    let pop = |name: &str, size, activation| PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation,
        noise: Noise::Gaussian { std: 1e-6 },
        model: Default::default(),
    };
    let proj = |name: &str, from: &str, to: &str| ProjectionConfig {
        name: Some(name.into()),
        from: from.into(),
        to: to.into(),
        init: Initializer::XavierNormal { variance_scale: 2.0 },
        bias: Some(Initializer::Normal { std: 0.3 }),
        plastic: true,
        connectivity: Default::default(),
        synapse: Default::default(),
        delay: 0.0,
    };
    CircuitConfig {
        populations: vec![
            PopulationConfig {
                name: "x".into(),
                size: 5,
                shape: None,
                activation: Activation::Linear,
                noise: Noise::None,
                model: Default::default(),
            },
            pop("h1", 7, hidden),
            pop("h2", 6, hidden),
            pop("y", 4, output),
        ],
        projections: vec![
            proj("W1", "x", "h1"),
            proj("W2", "h1", "h2"),
            proj("W3", "h2", "y"),
        ],
    }
}

#[test]
fn backprop_matches_finite_differences_for_every_layer_and_loss() {
    for hidden in [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        for (output, loss) in [
            (Activation::Linear, Loss::SquaredError),
            (Activation::Sigmoid, Loss::SquaredError),
            (Activation::Softmax, Loss::SquaredError),
            (Activation::Softmax, Loss::CrossEntropy),
        ] {
            let blueprint = network(hidden, output).build().unwrap();
            let streams = SeedStreams::new(4);
            let mut engine = Engine::new(Circuit::<f64>::instantiate(&blueprint, &streams), &streams);
            engine.set_loss(loss);
            let x = batch(5, 3, 1);
            let t = if output == Activation::Softmax {
                // Probability targets for the softmax.
                let mut t = batch(4, 3, 2).map(|v| v.abs() + 0.1);
                for mut c in t.column_iter_mut() {
                    let total = c.sum();
                    c /= total;
                }
                t
            } else {
                batch(4, 3, 2).map(|v| 0.5 + 0.4 * v)
            };
            let total_loss = |engine: &mut Engine<f64>| {
                engine.forward(&x);
                engine.loss(&t).iter().sum::<f64>()
            };
            engine.forward(&x);
            engine.loss(&t);
            engine.backprop(&t);
            for q in 0..3 {
                let spec = blueprint.projections()[q].clone();
                let analytic = engine.error(spec.post) * engine.activity(spec.pre).transpose();
                let (rows, cols) = analytic.shape();
                for i in 0..rows {
                    for j in 0..cols {
                        let h = 1e-6;
                        let w = engine.circuit_mut().weights_mut(q)[(i, j)];
                        engine.circuit_mut().weights_mut(q)[(i, j)] = w + h;
                        let up = total_loss(&mut engine);
                        engine.circuit_mut().weights_mut(q)[(i, j)] = w - h;
                        let down = total_loss(&mut engine);
                        engine.circuit_mut().weights_mut(q)[(i, j)] = w;
                        let numeric = (up - down) / (2.0 * h);
                        // ReLU kinks are avoided with overwhelming probability for these inputs;
                        // central differences are accurate to ~1e-8 here.
                        assert!(
                            (numeric - analytic[(i, j)]).abs() < 1e-6 * (1.0 + numeric.abs()),
                            "{hidden:?}/{output:?}/{loss:?} W{} ({i},{j}): numeric {numeric} vs backprop {}",
                            q + 1,
                            analytic[(i, j)]
                        );
                    }
                }
                // Restore the engine's state for the next projection.
                engine.forward(&x);
                engine.loss(&t);
                engine.backprop(&t);
            }
        }
    }
}

#[test]
fn loss_differences_are_accurate() {
    // Against the naive difference in f64 for moderate d, and in f32 for d ~ 1e-6 against
    // the f64 value (relative 1e-4; the naive f32 difference is pure rounding there).
    let a = [0.2f64, 0.5, 0.3];
    let t = [0.0f64, 1.0, 0.0];
    for loss in [Loss::SquaredError, Loss::CrossEntropy] {
        let d = [0.01, -0.02, 0.01];
        let shifted: Vec<f64> = a.iter().zip(&d).map(|(x, y)| x + y).collect();
        let naive = loss.value(&shifted, &t) - loss.value(&a, &t);
        assert!((loss.difference(&a, &d, &t) - naive).abs() < 1e-12, "{loss:?}");
        let tiny = [1e-6, -2e-6, 1e-6];
        let exact = loss.difference(&a, &tiny, &t);
        let single = loss.difference(
            &a.map(|v| v as f32),
            &tiny.map(|v| v as f32),
            &t.map(|v| v as f32),
        );
        assert!(
            (f64::from(single) - exact).abs() < 1e-4 * exact.abs(),
            "{loss:?}: {single} vs {exact}"
        );
    }
}
