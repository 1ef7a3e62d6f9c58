//! Per-sample training with announced inputs (`Engine::look_ahead`) against the same steps
//! taken one by one: the same weights and losses up to rounding, the same bits on any number
//! of threads, and current weights for anyone who reads them mid-block.

mod common;

use common::batch;
use nalgebra::DMatrix;
use npsim_core::{
    Activation, Circuit, CircuitConfig, Engine, Initializer, LearningRule, Noise, PopulationConfig,
    ProjectionConfig, Requirements, RuleContext, RuleError, SeedStreams,
};

/// NP with the clean baseline, written here so that the test does not depend on the rules
/// crate: `ΔW = −(η/σ²) δℓ (σξ) xᵀ`, bias likewise.
struct Np(f64);

impl LearningRule<f64> for Np {
    fn name(&self) -> &str {
        "np"
    }
    fn requirements(&self) -> Requirements {
        Requirements {
            perturbation: true,
            ..Default::default()
        }
    }
    fn update(&mut self, context: &mut RuleContext<'_, f64>) -> Result<(), RuleError> {
        let signal = context.signal;
        for projection in context.projections.iter_mut() {
            let noise = projection.post_noise.expect("noisy populations");
            let scale = -self.0 / (projection.noise_std * projection.noise_std);
            projection.add_weighted_outer(scale, noise, signal, projection.pre());
            projection.add_weighted_to_bias(scale, noise, signal);
        }
        Ok(())
    }
}

const INPUTS: usize = 12;
const HIDDEN: usize = 700;
const OUTPUTS: usize = 3;

fn engine() -> Engine<f64> {
    engine_with_hidden(HIDDEN)
}

fn engine_with_hidden(hidden: usize) -> Engine<f64> {
    let pop = |name: &str, size, std: f64| PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation: Activation::Linear,
        noise: if std > 0.0 {
            Noise::Gaussian { std }
        } else {
            Noise::None
        },
        model: Default::default(),
    };
    let proj = |name: &str, from: &str, to: &str| ProjectionConfig {
        name: Some(name.into()),
        from: from.into(),
        to: to.into(),
        init: Initializer::XavierNormal { variance_scale: 1.0 },
        bias: Some(Initializer::Normal { std: 0.1 }),
        plastic: true,
        connectivity: Default::default(),
        synapse: Default::default(),
        delay: 0.0,
    };
    let config = CircuitConfig {
        populations: vec![
            pop("x", INPUTS, 0.0),
            pop("h", hidden, 1e-3),
            pop("y", OUTPUTS, 1e-3),
        ],
        projections: vec![proj("W1", "x", "h"), proj("W2", "h", "y")],
    };
    let blueprint = config.build().expect("a valid circuit");
    let streams = SeedStreams::new(5);
    Engine::new(Circuit::instantiate(&blueprint, &streams), &streams)
}

const STEPS: usize = 75;

/// Trains `STEPS` per-sample steps, announcing blocks of `ahead` inputs when `ahead > 1`;
/// `inspect(step, engine)` runs after each step. Returns the losses and the final weights.
fn train(ahead: usize, inspect: impl FnMut(usize, &mut Engine<f64>)) -> (Vec<f64>, Vec<DMatrix<f64>>) {
    train_engine(engine(), STEPS, 2e-3, ahead, inspect)
}

/// [`train`] for any engine, number of steps and learning rate.
fn train_engine(
    mut engine: Engine<f64>,
    steps: usize,
    rate: f64,
    ahead: usize,
    mut inspect: impl FnMut(usize, &mut Engine<f64>),
) -> (Vec<f64>, Vec<DMatrix<f64>>) {
    let xs = batch(INPUTS, steps, 1);
    let ts = batch(OUTPUTS, steps, 2);
    let mut rule = Np(rate);
    let mut losses = Vec::new();
    for step in 0..steps {
        if ahead > 1 && step % ahead == 0 {
            let n = ahead.min(steps - step);
            engine.look_ahead(&xs.columns(step, n).into_owned());
        }
        let x = xs.columns(step, 1).into_owned();
        let t = ts.columns(step, 1).into_owned();
        losses.push(engine.step(&x, &t, &mut rule, &mut []).expect("np steps"));
        inspect(step, &mut engine);
    }
    let weights = (0..2).map(|q| engine.circuit_mut().weights(q).clone()).collect();
    (losses, weights)
}

fn relative_difference(a: &DMatrix<f64>, b: &DMatrix<f64>, initial: &DMatrix<f64>) -> f64 {
    (a - b).amax() / (b - initial).amax()
}

#[test]
fn announced_steps_give_the_step_by_step_numbers_up_to_rounding() {
    let initial: Vec<DMatrix<f64>> = {
        let mut e = engine();
        (0..2).map(|q| e.circuit_mut().weights(q).clone()).collect()
    };
    let (losses, weights) = train(1, |_, _| {});
    for ahead in [2, 8, 32] {
        let (ahead_losses, ahead_weights) = train(ahead, |_, _| {});
        for (a, b) in ahead_losses.iter().zip(&losses) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "loss {a} vs {b} (ahead {ahead})"
            );
        }
        // The weights' changes agree to 1e-9 of their size (f64 rounding of two summation
        // orders over 75 steps; a missing or doubled update would be of order 1e-2).
        for (q, (a, b)) in ahead_weights.iter().zip(&weights).enumerate() {
            let difference = relative_difference(a, b, &initial[q]);
            assert!(
                difference < 1e-9,
                "W{} differs by {difference:e} (ahead {ahead})",
                q + 1
            );
        }
    }
}

#[test]
fn announced_steps_give_the_same_bits_on_any_thread_count() {
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train(32, |_, _| {}))
    };
    assert_eq!(on(1), on(2));
}

#[test]
fn reading_the_weights_mid_block_sees_every_update_so_far() {
    let mut step_by_step = Vec::new();
    train(1, |step, engine| {
        if step == 5 || step == 40 {
            step_by_step.push(engine.circuit_mut().weights(0).clone());
        }
    });
    let mut read = Vec::new();
    let (losses, _) = train(32, |step, engine| {
        if step == 5 || step == 40 {
            read.push(engine.circuit_mut().weights(0).clone());
        }
    });
    let initial = engine().circuit_mut().weights(0).clone();
    for (a, b) in read.iter().zip(&step_by_step) {
        assert!(relative_difference(a, b, &initial) < 1e-9);
    }
    // Reading does not end the lookahead or change what follows: the same bits as a run
    // that never reads.
    let (unread, _) = train(32, |_, _| {});
    assert_eq!(losses, unread);
}

#[test]
fn writing_the_weights_mid_block_ends_the_lookahead_and_keeps_the_numbers() {
    let initial = engine().circuit_mut().weights(0).clone();
    let (_, reference) = train(1, |_, _| {});
    let (_, written) = train(32, |step, engine| {
        if step == 5 {
            // A no-op write: takes the weights for writing (as a post-update step does).
            let w = engine.circuit_mut().weights_mut(0);
            w[(0, 0)] += 0.0;
        }
    });
    assert!(relative_difference(&written[0], &reference[0], &initial) < 1e-9);
}

#[test]
fn a_step_whose_input_was_not_announced_is_computed_from_the_current_weights() {
    let mut engine_ahead = engine();
    let mut engine_plain = engine();
    let xs = batch(INPUTS, 10, 1);
    let ts = batch(OUTPUTS, 10, 2);
    let other = batch(INPUTS, 1, 3);
    let mut rules = (Np(2e-3), Np(2e-3));
    engine_ahead.look_ahead(&xs);
    for step in 0..10 {
        // Step 4 trains on an input other than the announced one.
        let x = if step == 4 {
            other.clone()
        } else {
            xs.columns(step, 1).into_owned()
        };
        let t = ts.columns(step, 1).into_owned();
        let a = engine_ahead.step(&x, &t, &mut rules.0, &mut []).unwrap();
        let b = engine_plain.step(&x, &t, &mut rules.1, &mut []).unwrap();
        assert!((a - b).abs() <= 1e-12 * b.abs(), "step {step}: loss {a} vs {b}");
    }
}

/// Hidden units enough for the output sweep (3 rows) to be cut in two, so that a step is
/// carried through the hidden population in one region per pass (`Engine::set_chained_passes`).
const WIDE_HIDDEN: usize = 11_000;

/// Losses and final weights of 40 per-sample steps on the wide network, announcing blocks of
/// `ahead` inputs when `ahead > 1`.
fn train_wide(ahead: usize, chained: bool) -> (Vec<f64>, Vec<DMatrix<f64>>) {
    let mut engine = engine_with_hidden(WIDE_HIDDEN);
    engine.set_chained_passes(chained);
    train_engine(engine, 40, 2e-4, ahead, |_, _| {})
}

#[test]
fn chained_passes_give_the_population_by_population_bits_on_any_thread_count() {
    let on = |threads: usize, ahead: usize, chained: bool| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train_wide(ahead, chained))
    };
    // With announced inputs both passes are chained; without, the perturbed pass only.
    for ahead in [32, 1] {
        let reference = on(1, ahead, false);
        // The run trained: the loss moved (a chain that dropped the update would not).
        let (first, last) = (reference.0[0], *reference.0.last().unwrap());
        assert!(first != last, "ahead {ahead}: the loss never moved");
        for threads in [1, 2] {
            assert!(
                on(threads, ahead, true) == reference,
                "ahead {ahead}, {threads} thread(s)"
            );
        }
    }
}
