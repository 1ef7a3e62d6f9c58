use super::*;
use crate::SeedStreams;

fn pop(name: &str, size: usize) -> PopulationConfig {
    PopulationConfig {
        name: name.into(),
        size,
        shape: None,
        activation: Activation::Linear,
        noise: Noise::None,
        model: Default::default(),
    }
}
fn proj(from: &str, to: &str) -> ProjectionConfig {
    ProjectionConfig {
        name: None,
        from: from.into(),
        to: to.into(),
        init: Initializer::default(),
        bias: None,
        plastic: true,
        connectivity: Connectivity::Dense,
        synapse: Default::default(),
        delay: 0.0,
    }
}

/// Counted by hand: weights (20·10 + 3·20) twice in f64 = 4,160 bytes, activity 33 units ×
/// 5 columns × 3 arrays × 8 bytes = 3,960; a sparse 1000 → 1000 projection at p = 0.1
/// adds 100,000 synapses × (2 · 8 + 4) bytes.
#[test]
fn estimated_memory_counts_weights_updates_and_activity() {
    let config = CircuitConfig {
        populations: vec![pop("x", 10), pop("h", 20), pop("y", 3)],
        projections: vec![proj("x", "h"), proj("h", "y")],
    };
    assert_eq!(config.build().unwrap().estimated_bytes(8, 5), 4_160 + 3_960);
    // Per sample, the input projection looks ahead: a copy of its 20 × 10 weights and 32 steps
    // of products and factors (32 · (2 · 20 + 2 · 10)), in f64; activity 33 × 1 × 3 × 8.
    assert_eq!(
        config.build().unwrap().estimated_bytes(8, 1),
        4_160 + (200 + 32 * 60) * 8 + 792
    );
    let mut sparse = proj("a", "b");
    sparse.connectivity = Connectivity::Random { p: 0.1 };
    let config = CircuitConfig {
        populations: vec![pop("a", 1000), pop("b", 1000)],
        projections: vec![sparse],
    };
    assert_eq!(
        config.build().unwrap().estimated_bytes(8, 1),
        100_000 * 20 + 2000 * 3 * 8
    );
}

#[test]
fn chain_compiles_in_topological_order() {
    let config = CircuitConfig {
        populations: vec![pop("y", 2), pop("h", 3), pop("x", 4)],
        projections: vec![proj("h", "y"), proj("x", "h")],
    };
    let bp = config.build().unwrap();
    let names: Vec<_> = bp
        .order()
        .iter()
        .map(|&i| bp.populations()[i].name.as_str())
        .collect();
    assert_eq!(names, ["x", "h", "y"]);
    assert_eq!(bp.populations()[bp.input()].name, "x");
    assert_eq!(bp.populations()[bp.output()].name, "y");
    assert_eq!(bp.linear_chain().unwrap(), vec![1, 0]);
    assert!(bp.check_io(4, 2).is_ok());
    assert!(matches!(
        bp.check_io(5, 2),
        Err(CircuitError::SizeMismatch {
            expected: 5,
            found: 4,
            ..
        })
    ));
}

#[test]
fn errors_name_the_offender() {
    let unknown = CircuitConfig {
        populations: vec![pop("x", 1), pop("y", 1)],
        projections: vec![proj("x", "z")],
    };
    assert_eq!(
        unknown.build().unwrap_err().to_string(),
        "projection `x->z` refers to unknown population `z`; known populations: `x`, `y`"
    );
    let cycle = CircuitConfig {
        populations: vec![pop("x", 1), pop("a", 1), pop("b", 1), pop("y", 1)],
        projections: vec![proj("x", "a"), proj("a", "b"), proj("b", "a"), proj("b", "y")],
    };
    assert!(matches!(cycle.build().unwrap_err(), CircuitError::Cycle(_)));
    let two_inputs = CircuitConfig {
        populations: vec![pop("x", 1), pop("x2", 1), pop("y", 1)],
        projections: vec![proj("x", "y"), proj("x2", "y")],
    };
    let bp = two_inputs.build().unwrap();
    assert_eq!(bp.inputs(), [0, 1]);
    assert!(bp.check_io(2, 1).unwrap_err().to_string().starts_with(
        "populations `x`, `x2` have no incoming projection, but a static task feeds a single input population"
    ));
    let empty = CircuitConfig {
        populations: vec![pop("x", 0), pop("y", 1)],
        projections: vec![proj("x", "y")],
    };
    assert_eq!(
        empty.build().unwrap_err(),
        CircuitError::EmptyPopulation("x".into())
    );
}

#[test]
fn initial_weights_have_glorot_variance() {
    let config = CircuitConfig {
        populations: vec![pop("x", 300), pop("y", 200)],
        projections: vec![proj("x", "y")],
    };
    let mut circuit: Circuit<f64> = Circuit::instantiate(&config.build().unwrap(), &SeedStreams::new(3));
    let w = circuit.weights(0);
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    // 60,000 draws: the sample variance is within 2 % of 2/(300+200) with overwhelming probability.
    assert!((var / (2.0 / 500.0) - 1.0).abs() < 0.02, "variance {var}");
}

#[test]
fn scheduled_updates_scale_either_factor_to_the_same_result() {
    use crate::test_support::uniform_matrix;
    // Post larger than pre and the reverse (the scales go on the smaller factor); few
    // columns and many; dense (deferred) and with two columns per sample (convolution,
    // applied at once).
    for (post_rows, pre_rows, columns_per_sample) in [(50, 20, 1), (20, 50, 1), (50, 20, 2), (20, 50, 2)] {
        for columns in [4, 12] {
            let w = uniform_matrix(post_rows, pre_rows, 1);
            let post = uniform_matrix(post_rows, columns, 2);
            let pre = uniform_matrix(pre_rows, columns, 3);
            let scales: Vec<f64> = (0..columns / columns_per_sample)
                .map(|s| 1.0 - 0.3 * s as f64)
                .collect();
            let mut scaled_post = post.clone();
            for (j, mut column) in scaled_post.column_iter_mut().enumerate() {
                column *= scales[j / columns_per_sample];
            }
            let expected = &w + &scaled_post * pre.transpose() * -0.5;
            let mut projection = Projection::new(w.clone(), None);
            projection.schedule(
                -0.5,
                &post,
                Some(&scales),
                columns_per_sample,
                &pre,
                Default::default(),
            );
            projection.flush();
            let miss = (&projection.weights - &expected).amax();
            assert!(miss < 1e-12, "{post_rows}×{pre_rows}, {columns} columns: {miss}");
        }
    }
}
