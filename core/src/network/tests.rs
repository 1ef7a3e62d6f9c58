use std::collections::BTreeMap;

use super::*;
use crate::CircuitConfig;

fn blueprint(text: &str) -> CircuitBlueprint {
    let config: CircuitConfig = ron::Options::default()
        .with_default_extension(
            ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES | ron::extensions::Extensions::IMPLICIT_SOME,
        )
        .from_str(text)
        .unwrap_or_else(|e| panic!("{e}"));
    config.build_network().unwrap_or_else(|e| panic!("{e}"))
}

fn instantiate(bp: &CircuitBlueprint, seed: u64) -> Circuit<f64> {
    Circuit::instantiate(bp, &SeedStreams::new(seed))
}

/// A driven neuron fires regularly with the period the exact solution gives: from reset,
/// `V(t) = V∞ + (V_reset − V∞) e^{−t/τ}` reaches θ after `t* = τ ln((V∞ − V_reset)/(V∞ − θ))`,
/// so spikes come every `⌈t*/dt⌉ + refractory/dt` steps, the first after `⌈t*/dt⌉`.
#[test]
fn a_driven_neuron_fires_at_the_period_of_the_exact_solution() {
    let bp = blueprint(
        r#"Explicit(
            populations: [
                (name: "silent", size: 1, model: Lif()),
                (name: "driven", size: 3, model: Lif(refractory: 2.0)),
            ],
            projections: [(from: "silent", to: "driven", init: Constant(value: 0.0), bias: Some(Constant(value: 0.15)), synapse: Current(tau: 5.0), delay: 0.1)],
        )"#,
    );
    let mut circuit = instantiate(&bp, 1);
    let mut net = SpikingNetwork::new(
        &mut circuit,
        &SeedStreams::new(1),
        0.1,
        &InitialState::default(),
        1,
    )
    .unwrap();
    let spikes = net.run(1000);
    // V∞ = −60 + 100 MΩ · 0.15 nA = −45 mV; t* = 20 ln(15/5) = 21.97 ms → 220 steps.
    let t_star: f64 = 20.0 * (15.0f64 / 5.0).ln();
    let climb = (t_star / 0.1).ceil() as u64;
    assert_eq!(climb, 220);
    let expected: Vec<u64> = (0..)
        .map(|k| climb - 1 + k * (climb + 20))
        .take_while(|&s| s < 1000)
        .collect();
    for neuron in 0..3 {
        let steps: Vec<u64> = spikes
            .iter()
            .filter(|s| s.population == 1 && s.neuron == neuron)
            .map(|s| s.step)
            .collect();
        assert_eq!(steps, expected, "neuron {neuron}");
    }
    assert!(
        spikes.iter().all(|s| s.population == 1),
        "the undriven population stays silent"
    );
}

const RECURRENT: &str = r#"Explicit(
    populations: [
        (name: "exc", size: 48, model: Lif(refractory: 1.0)),
        (name: "inh", size: 12, model: Lif(tau_m: 10.0, refractory: 0.5)),
    ],
    projections: [
        (name: "EE", from: "exc", to: "exc", connectivity: Random(p: 0.3), init: LogNormal(mean: 0.01, std: 0.005), bias: Some(Constant(value: 0.11)), synapse: Conductance(tau: 5.0, reversal: 0.0), delay: 0.1),
        (name: "EI", from: "exc", to: "inh", connectivity: Random(p: 0.3), init: Constant(value: 0.02), bias: Some(Normal(std: 0.05)), synapse: Current(tau: 2.0), delay: 0.3),
        (name: "IE", from: "inh", to: "exc", connectivity: Random(p: 0.5), init: Constant(value: 0.05), synapse: Conductance(tau: 10.0, reversal: -80.0), delay: 0.2),
        (name: "II", from: "inh", to: "inh", init: Constant(value: 0.01), synapse: Instant, delay: 0.1),
    ],
)"#;

fn recurrent_initial() -> InitialState {
    InitialState {
        potential: [
            (
                "exc".to_string(),
                InitialValue::Uniform {
                    low: -60.0,
                    high: -50.0,
                },
            ),
            (
                "inh".to_string(),
                InitialValue::Uniform {
                    low: -60.0,
                    high: -50.0,
                },
            ),
        ]
        .into(),
        synapse: [(
            "IE".to_string(),
            InitialValue::Normal {
                mean: 0.02,
                std: 0.02,
            },
        )]
        .into(),
    }
}

/// The equations of the module documentation, written out plainly over dense weight
/// matrices: arrivals summed in presynaptic order, the membrane by the scalar formula.
fn reference(
    circuit: &mut Circuit<f64>,
    initial: &[Vec<f64>],
    traces: &[Vec<f64>],
    steps: u64,
) -> Vec<Spike> {
    let bp = circuit.blueprint().clone();
    let dt = 0.1;
    let mut v = initial.to_vec();
    let mut trace = traces.to_vec();
    let mut until: Vec<Vec<i64>> = bp.populations().iter().map(|p| vec![i64::MIN; p.size]).collect();
    // arrivals[q] maps an arrival step to the summed weights.
    let mut arrivals: Vec<BTreeMap<i64, Vec<f64>>> = vec![BTreeMap::new(); bp.projections().len()];
    let mut spikes = Vec::new();
    for t in 0..steps as i64 {
        let mut fired: Vec<Vec<usize>> = vec![Vec::new(); bp.populations().len()];
        for (p, pop) in bp.populations().iter().enumerate() {
            let PopulationModel::Lif(lif) = pop.model else {
                unreachable!()
            };
            let n = pop.size;
            let mut current = vec![0.0; n];
            let (mut g, mut driven) = (vec![0.0; n], vec![0.0; n]);
            for &q in bp.incoming(p) {
                if let Some(b) = circuit.bias(q) {
                    (0..n).for_each(|i| current[i] += b[i]);
                }
            }
            for &q in bp.incoming(p) {
                if let Some(arrived) = arrivals[q].remove(&t) {
                    (0..n).for_each(|i| trace[q][i] += arrived[i]);
                }
                match bp.projections()[q].synapse {
                    Synapse::Conductance { reversal, .. } => (0..n).for_each(|i| {
                        g[i] += trace[q][i];
                        driven[i] += reversal * trace[q][i];
                    }),
                    _ => (0..n).for_each(|i| current[i] += trace[q][i]),
                }
            }
            for i in 0..n {
                let r = lif.resistance;
                let leak = 1.0 + r * g[i];
                let v_inf = (lif.v_rest + r * current[i] + r * driven[i]) / leak;
                v[p][i] = if t < until[p][i] {
                    lif.v_reset
                } else {
                    v_inf + (v[p][i] - v_inf) * kernel::exp(leak * (-dt / lif.tau_m))
                };
                if v[p][i] >= lif.v_threshold {
                    v[p][i] = lif.v_reset;
                    until[p][i] = t + 1 + (lif.refractory / dt).round() as i64;
                    fired[p].push(i);
                    spikes.push(Spike {
                        step: t as u64,
                        population: p as u32,
                        neuron: i as u32,
                    });
                }
            }
            for &q in bp.incoming(p) {
                let keep = bp.projections()[q].synapse.retention(dt);
                trace[q].iter_mut().for_each(|s| *s *= keep);
            }
        }
        for (q, spec) in bp.projections().iter().enumerate() {
            let w = circuit.weights(q).clone();
            let delay = (spec.delay / dt).round() as i64;
            for &j in &fired[spec.pre] {
                // One step: onto the decayed trace, spike by spike; longer: summed apart first.
                let slot = if delay == 1 {
                    &mut trace[q]
                } else {
                    arrivals[q]
                        .entry(t + delay)
                        .or_insert_with(|| vec![0.0; w.nrows()])
                };
                for i in 0..w.nrows() {
                    if w[(i, j)] != 0.0 {
                        slot[i] += w[(i, j)];
                    }
                }
            }
        }
    }
    spikes
}

#[test]
fn a_recurrent_network_follows_the_plain_reference_spike_for_spike() {
    let bp = blueprint(RECURRENT);
    let streams = SeedStreams::new(7);
    let mut circuit = instantiate(&bp, 7);
    let mut net = SpikingNetwork::new(&mut circuit, &streams, 0.1, &recurrent_initial(), 1).unwrap();
    let initial: Vec<Vec<f64>> = (0..2).map(|p| net.potentials(p)).collect();
    let traces: Vec<Vec<f64>> = (0..4).map(|q| net.traces(q)).collect();
    assert!(traces[2].iter().all(|&g| g >= 0.0), "conductances are kept >= 0");
    assert!(traces[2].iter().any(|&g| g > 0.0) && traces[0].iter().all(|&g| g == 0.0));
    let mut spikes = net.run(1200);
    spikes.extend(net.run(800));
    let expected = reference(&mut circuit, &initial, &traces, 2000);
    assert!(
        expected.len() > 500,
        "the network is active: {} spikes",
        expected.len()
    );
    let fired_inh = expected.iter().filter(|s| s.population == 1).count();
    assert!(fired_inh > 0, "inhibitory neurons fire too");
    assert_eq!(spikes, expected);
}

#[test]
fn the_thread_count_changes_no_spike_and_no_potential() {
    let bp = blueprint(RECURRENT);
    let run = |threads| {
        let mut circuit = instantiate(&bp, 3);
        let mut net = SpikingNetwork::new(
            &mut circuit,
            &SeedStreams::new(3),
            0.1,
            &recurrent_initial(),
            threads,
        )
        .unwrap();
        let spikes = net.run(1500);
        let bits: Vec<u64> = (0..2).flat_map(|p| net.potentials(p)).map(f64::to_bits).collect();
        (spikes, bits)
    };
    let one = run(1);
    assert!(one.0.len() > 300);
    for threads in [2, 3, 5] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

#[test]
fn bad_networks_and_initial_states_are_refused_with_their_names() {
    let rate = blueprint(
        r#"Explicit(populations: [(name: "a", size: 2, model: Lif()), (name: "b", size: 2, model: LeakyRate(tau: 5.0))],
            projections: [(from: "a", to: "b", delay: 1.0)])"#,
    );
    let streams = SeedStreams::new(1);
    let none = InitialState::default();
    let err = SpikingNetwork::new(&mut instantiate(&rate, 1), &streams, 0.1, &none, 1).unwrap_err();
    assert_eq!(err, NetworkError::NotSpiking("b".into()));
    let undelayed = blueprint(
        r#"Explicit(populations: [(name: "a", size: 2, model: Lif()), (name: "b", size: 2, model: Lif())],
            projections: [(name: "ab", from: "a", to: "b", delay: 0.04)])"#,
    );
    let err = SpikingNetwork::new(&mut instantiate(&undelayed, 1), &streams, 0.1, &none, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "projection `ab` has a delay of 0.04 ms, under one step of 0.1 ms: a spike takes at least one step in a free-running network; give `delay: 0.1` or more"
    );
    let bp = blueprint(RECURRENT);
    let typo = InitialState {
        potential: [("exc".to_string(), InitialValue::Constant { value: -55.0 })].into(),
        synapse: [("EX".to_string(), InitialValue::Constant { value: 0.0 })].into(),
    };
    let err = SpikingNetwork::new(&mut instantiate(&bp, 1), &streams, 0.1, &typo, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "synapse `EX` does not exist; known: EE, EI, IE, II"
    );
    let reversed = InitialState {
        potential: [(
            "inh".to_string(),
            InitialValue::Uniform {
                low: -50.0,
                high: -60.0,
            },
        )]
        .into(),
        ..InitialState::default()
    };
    let err = SpikingNetwork::new(&mut instantiate(&bp, 1), &streams, 0.1, &reversed, 1).unwrap_err();
    assert!(
        err.to_string().starts_with("potential of `inh`: low and high"),
        "{err}"
    );
    let err = SpikingNetwork::new(&mut instantiate(&bp, 1), &streams, 0.1, &none, 0).unwrap_err();
    assert_eq!(err, NetworkError::Threads);
}

/// Potentials drawn uniform in [−60, −50) have the uniform law's mean and spread (5,000
/// neurons: standard error of the mean 0.04 mV), and the draw depends on the seed only.
#[test]
fn initial_potentials_follow_their_law() {
    let bp = blueprint(
        r#"Explicit(populations: [(name: "a", size: 5000, model: Lif())], projections: [(from: "a", to: "a", init: Constant(value: 0.0), connectivity: OneToOne, delay: 0.1)])"#,
    );
    let initial = InitialState {
        potential: [(
            "a".to_string(),
            InitialValue::Uniform {
                low: -60.0,
                high: -50.0,
            },
        )]
        .into(),
        ..InitialState::default()
    };
    let draw = |threads| {
        SpikingNetwork::new(
            &mut instantiate(&bp, 1),
            &SeedStreams::new(2),
            0.1,
            &initial,
            threads,
        )
        .unwrap()
        .potentials(0)
    };
    let v = draw(1);
    assert_eq!(v, draw(4));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    assert!((mean + 55.0).abs() < 0.2, "mean {mean}");
    assert!((var - 100.0 / 12.0).abs() < 0.5, "variance {var}");
    assert!(v.iter().all(|&x| (-60.0..-50.0).contains(&x)));
}
