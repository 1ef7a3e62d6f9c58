//! Leaky integrate-and-fire neurons in the trial engine, against closed forms and fine-step
//! references: the f–I curve, exact subthreshold integration, and a conductance synapse's
//! response to one presynaptic spike.

use nalgebra::DMatrix;
use npsim_core::{
    Circuit, CircuitConfig, Initializer, LifParameters, PopulationConfig, PopulationModel, ProjectionConfig,
    SeedStreams, Synapse, TraceGate, TrialEngine, TrialTiming,
};

const LIF: LifParameters = LifParameters {
    tau_m: 20.0,
    v_rest: -60.0,
    v_threshold: -50.0,
    v_reset: -65.0,
    refractory: 2.0,
    resistance: 100.0,
};

/// `drive` (n input units) → `cell` (n LIF neurons), unit k to neuron k with weight `weight`.
fn circuit(n: usize, weight: f64, synapse: Synapse, lif: LifParameters) -> CircuitConfig {
    let population = |name: &str, model| PopulationConfig {
        name: name.into(),
        size: n,
        shape: None,
        activation: Default::default(),
        noise: Default::default(),
        model,
    };
    CircuitConfig {
        populations: vec![
            population("drive", PopulationModel::Static),
            population("cell", PopulationModel::Lif(lif)),
        ],
        projections: vec![ProjectionConfig {
            name: Some("in".into()),
            from: "drive".into(),
            to: "cell".into(),
            init: Initializer::Pools { weight },
            bias: None,
            plastic: false,
            connectivity: Default::default(),
            synapse,
            delay: 0.0,
        }],
    }
}

fn engine(config: &CircuitConfig, steps: usize, dt: f64) -> TrialEngine<f64> {
    let streams = SeedStreams::new(1);
    TrialEngine::new(
        Circuit::instantiate(&config.build().unwrap(), &streams),
        &streams,
        TrialTiming { steps, dt },
        TraceGate::None,
    )
}

#[test]
fn the_firing_rate_follows_the_analytic_f_i_curve() {
    // Currents (nA) from below rheobase (0.1 nA: R I = 10 mV = θ − E_L) to strong drive.
    let currents = [0.05, 0.099, 0.11, 0.15, 0.2, 0.3, 0.5, 1.0];
    let (dt, duration) = (0.01, 1000.0);
    let steps = (duration / dt) as usize;
    let mut engine = engine(&circuit(currents.len(), 1.0, Synapse::Instant, LIF), steps, dt);
    let inputs = DMatrix::from_fn(currents.len(), steps, |k, _| currents[k]);
    let spikes = engine.forward(&inputs).clone();
    for (k, &current) in currents.iter().enumerate() {
        let times: Vec<f64> = (0..steps)
            .filter(|&t| spikes[(k, t)] == 1.0)
            .map(|t| t as f64 * dt)
            .collect();
        let drive = LIF.resistance * current + LIF.v_rest;
        if drive <= LIF.v_threshold {
            assert!(
                times.is_empty(),
                "{current} nA is below rheobase but fired {} times",
                times.len()
            );
            continue;
        }
        // Time from reset to threshold, plus the refractory period.
        let analytic = LIF.refractory + LIF.tau_m * ((drive - LIF.v_reset) / (drive - LIF.v_threshold)).ln();
        assert!(times.len() > 2, "{current} nA: {} spikes", times.len());
        let intervals: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
        eprintln!(
            "{current} nA: {} spikes, mean interval {mean:.3} ms, analytic {analytic:.3} ms",
            times.len()
        );
        // Spikes are timed to the step: each interval is the analytic one rounded up to whole
        // steps (at most one step longer).
        assert!(
            mean >= analytic - 1e-9 && mean <= analytic + dt + 1e-9,
            "{current} nA: mean interval {mean} ms, analytic {analytic} ms"
        );
        // The first spike comes from rest, not from reset.
        let first = LIF.tau_m * ((drive - LIF.v_rest) / (drive - LIF.v_threshold)).ln();
        assert!(
            (times[0] - first).abs() <= dt + 1e-9,
            "{current} nA: first spike {} vs {first}",
            times[0]
        );
    }
}

#[test]
fn subthreshold_integration_is_exact_and_agrees_with_a_fine_euler_reference() {
    // A current that steps from 0.05 to 0.08 nA at 30 ms: V relaxes exponentially to
    // E_L + R I on each piece.
    let (dt, steps) = (1.0, 80);
    let current = |t: f64| if t < 30.0 { 0.05 } else { 0.08 };
    let mut engine = engine(&circuit(1, 1.0, Synapse::Instant, LIF), steps, dt);
    // The current of step k is held over (k dt, (k + 1) dt].
    let inputs = DMatrix::from_fn(1, steps, |_, k| current(k as f64 * dt));
    engine.forward(&inputs);
    let v = engine.state(1).clone();
    // Closed form, step by step.
    let mut exact = LIF.v_rest;
    // Fine Euler reference (0.1 µs steps) of τ dV/dt = −(V − E_L) + R I.
    let (fine, mut reference) = (1e-4, LIF.v_rest);
    for k in 0..steps {
        let target = LIF.v_rest + LIF.resistance * current(k as f64 * dt);
        exact = target + (exact - target) * (-dt / LIF.tau_m).exp();
        for _ in 0..(dt / fine).round() as usize {
            reference += fine / LIF.tau_m * (target - reference);
        }
        assert!(
            (v[(0, k)] - exact).abs() < 1e-10,
            "step {k}: {} vs exact {exact}",
            v[(0, k)]
        );
        assert!(
            (v[(0, k)] - reference).abs() < 1e-3,
            "step {k}: {} vs Euler {reference}",
            v[(0, k)]
        );
    }
}

#[test]
fn a_conductance_synapse_responds_to_one_spike_as_its_closed_form_drive() {
    // One presynaptic spike at 5 ms through an excitatory conductance (τ_s = 5 ms, E = 0 mV,
    // 0.002 µS). The conductance is g(t) = w e^{−(t − t_s)/τ_s}; the membrane obeys
    // τ_m dV/dt = −(V − E_L) − R g(t) (V − E). The engine holds g over each step; compare
    // with a fine Runge–Kutta integration of the continuous equation.
    let lif = LifParameters {
        v_threshold: 0.0,
        ..LIF
    };
    let (dt, steps, w, tau_s, reversal) = (0.05, 1200, 0.002, 5.0, 0.0);
    let spike_step = 100;
    let mut engine = engine(
        &circuit(1, w, Synapse::Conductance { tau: tau_s, reversal }, lif),
        steps,
        dt,
    );
    let inputs = DMatrix::from_fn(1, steps, |_, k| if k == spike_step { 1.0 } else { 0.0 });
    engine.forward(&inputs);
    let v = engine.state(1).clone();
    // The trace jumps by w in the spike's step and then decays: g_k = w e^{−(k − k_s) dt/τ_s},
    // held over (k dt, (k + 1) dt]. The continuous reference starts the conductance at the
    // start of that interval.
    let start = spike_step as f64 * dt;
    let g = |t: f64| {
        if t < start {
            0.0
        } else {
            w * (-(t - start) / tau_s).exp()
        }
    };
    let dv = |t: f64, v: f64| (-(v - lif.v_rest) - lif.resistance * g(t) * (v - reversal)) / lif.tau_m;
    let (h, mut t, mut reference) = (dt / 100.0, 0.0, lif.v_rest);
    let mut peak: f64 = 0.0;
    let mut worst: f64 = 0.0;
    for k in 0..steps {
        for _ in 0..100 {
            let k1 = dv(t, reference);
            let k2 = dv(t + h / 2.0, reference + h / 2.0 * k1);
            let k3 = dv(t + h / 2.0, reference + h / 2.0 * k2);
            let k4 = dv(t + h, reference + h * k3);
            reference += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
            t += h;
        }
        peak = peak.max(reference - lif.v_rest);
        worst = worst.max((v[(0, k)] - reference).abs());
    }
    eprintln!("peak {peak} mV, largest difference {worst} mV");
    // Depolarisation of a few mV; holding g over a step errs by O(dt/τ_s) = 1 % of it.
    assert!(peak > 1.0 && peak < 10.0, "peak depolarisation {peak} mV");
    assert!(
        worst < 0.02 * peak,
        "largest difference {worst} mV for a peak of {peak} mV"
    );
    // Before the spike the membrane rests.
    assert!((0..spike_step).all(|k| (v[(0, k)] - lif.v_rest).abs() < 1e-12));
}
