//! An example npsim plugin with two rules.
//!
//! Build it with `cargo build --release -p npsim-example-rule`; the library is then
//! `target/release/libnpsim_example_rule.so` (`.dylib` on macOS, `.dll` on Windows) and a
//! scenario uses it with
//! `rule: Plugin(path: "target/release/libnpsim_example_rule.so", name: "np_trace", params: "learning_rate: 1e-4")`.

use npsim_plugin::{Context, Params, Rule, Scalar, export_rules};

/// Node perturbation with an eligibility trace and a running-average reward baseline.
///
/// # What it does
/// A more biological NP: the neuromodulator does not compare a noisy pass with a clean one
/// but the reward now with its running average, and each synapse keeps a decaying trace of
/// its recent noise–activity coincidences, so that a late reward still credits them.
///
/// # Equations
/// With noisy loss `ℓ̃ = ℓ + δℓ` (mean over the batch), baseline `b`, trace `E` per projection:
/// `E ← λ E + Σ_b (σξ_b) x_bᵀ / σ²`, `ΔW = −η (ℓ̃ − b) E`, then `b ← (1 − γ) b + γ ℓ̃`.
/// With `λ = 0` and `b` equal to the clean loss this is plain NP.
///
/// # Parameters
/// | name | unit | default | meaning |
/// |------|------|---------|---------|
/// | `learning_rate` | 1 | required | η |
/// | `trace_decay` | 1 | 0 | λ, in `[0, 1)` |
/// | `baseline_rate` | 1 | 0.05 | γ, in `(0, 1]` |
///
/// # References
/// R. J. Williams (1992). Simple statistical gradient-following algorithms for connectionist
/// reinforcement learning. Machine Learning 8. Hiratani et al. (2022), Section 2.
pub struct NpTrace {
    learning_rate: f64,
    trace_decay: f64,
    baseline_rate: f64,
    baseline: Option<f64>,
    traces: Vec<Vec<f64>>,
}

impl Rule for NpTrace {
    const NAME: &'static str = "np_trace";
    const DOC: &'static str = "node perturbation with an eligibility trace and a running-average reward baseline (no clean pass in the signal)";
    const PARAMS: &'static str = "learning_rate: η (required); trace_decay: λ in [0, 1) (default 0); baseline_rate: γ in (0, 1] (default 0.05)";

    fn new(params: &str) -> Result<Self, String> {
        let p = Params::parse(params, &["learning_rate", "trace_decay", "baseline_rate"])?;
        let learning_rate = p.require("learning_rate")?;
        let trace_decay = p.get_or("trace_decay", 0.0)?;
        let baseline_rate = p.get_or("baseline_rate", 0.05)?;
        if learning_rate <= 0.0 {
            return Err(format!(
                "parameter `learning_rate` must be > 0, got {learning_rate}"
            ));
        }
        if !(0.0..1.0).contains(&trace_decay) {
            return Err(format!(
                "parameter `trace_decay` must be in [0, 1), got {trace_decay}"
            ));
        }
        if !(baseline_rate > 0.0 && baseline_rate <= 1.0) {
            return Err(format!(
                "parameter `baseline_rate` must be in (0, 1], got {baseline_rate}"
            ));
        }
        Ok(Self {
            learning_rate,
            trace_decay,
            baseline_rate,
            baseline: None,
            traces: Vec::new(),
        })
    }

    fn update<T: Scalar>(&mut self, context: &mut Context<'_, T>) -> Result<(), String> {
        let batch = context.batch.max(1) as f64;
        let noisy_loss = context
            .loss
            .iter()
            .zip(context.signal)
            .map(|(&l, &s)| l.to_f64() + s.to_f64())
            .sum::<f64>()
            / batch;
        let baseline = *self.baseline.get_or_insert(noisy_loss);
        let advantage = noisy_loss - baseline;
        self.traces.resize_with(context.projections.len(), Vec::new);
        for (p, trace) in context.projections.iter_mut().zip(&mut self.traces) {
            let noise = p
                .post_noise
                .ok_or_else(|| format!("projection `{}` has no noisy target", p.name))?;
            let (rows, cols) = (p.weights.rows(), p.weights.cols());
            trace.resize(rows * cols, 0.0);
            let inverse_variance = 1.0 / (p.noise_std * p.noise_std);
            for j in 0..cols {
                for i in 0..rows {
                    // Every column: the samples, and on tasks in time their steps.
                    let coincidence: f64 = (0..noise.cols())
                        .map(|c| noise.get(i, c).to_f64() * p.pre.get(j, c).to_f64())
                        .sum::<f64>();
                    let e = &mut trace[j * rows + i];
                    *e = self.trace_decay * *e + coincidence * inverse_variance;
                    let w = p.weights.get(i, j).to_f64() - self.learning_rate * advantage * *e;
                    p.weights.set(i, j, T::from_f64(w));
                }
            }
        }
        self.baseline = Some((1.0 - self.baseline_rate) * baseline + self.baseline_rate * noisy_loss);
        Ok(())
    }
}

/// npsim's built-in node perturbation, exported through the plugin interface.
///
/// It performs the same floating-point operations in the same order as the built-in rule, so
/// that the two give bit-identical weights: proof that a plugin behaves exactly like a
/// built-in rule.
///
/// # Equations
/// `ΔW = −(η/σ²) Σ_b δℓ_b (σξ_b) x_bᵀ`, `Δb = −(η/σ²) Σ_b δℓ_b (σξ_b)` (paper Eq. 3).
///
/// # Parameters
/// | name | unit | default | meaning |
/// |------|------|---------|---------|
/// | `learning_rate` | 1 | required | η |
pub struct PluginNodePerturbation {
    learning_rate: f64,
}

impl Rule for PluginNodePerturbation {
    const NAME: &'static str = "node_perturbation";
    const DOC: &'static str = "node perturbation (paper Eq. 3), as the built-in rule";
    const PARAMS: &'static str = "learning_rate: η (required)";

    fn new(params: &str) -> Result<Self, String> {
        let learning_rate = Params::parse(params, &["learning_rate"])?.require("learning_rate")?;
        if learning_rate <= 0.0 {
            return Err(format!(
                "parameter `learning_rate` must be > 0, got {learning_rate}"
            ));
        }
        Ok(Self { learning_rate })
    }

    fn update<T: Scalar>(&mut self, context: &mut Context<'_, T>) -> Result<(), String> {
        let rate = T::from_f64(self.learning_rate);
        // One column per sample on static tasks; on tasks in time a rendition's steps, so
        // that the sum over them is the eligibility trace `Σ_t n(t) x(t)ᵀ` of that rendition.
        let steps = context.columns_per_sample;
        for p in context.projections.iter_mut() {
            let noise = p
                .post_noise
                .ok_or_else(|| format!("projection `{}` has no noisy target", p.name))?;
            let sigma = T::from_f64(p.noise_std);
            let scale = -rate / (sigma * sigma);
            for (b, &signal) in context.signal.iter().enumerate() {
                for c in b * steps..(b + 1) * steps {
                    let weighted: Vec<T> = noise.column(c).iter().map(|&n| n * signal).collect();
                    for j in 0..p.weights.cols() {
                        let a = scale * p.pre.get(j, c);
                        if a != T::default() {
                            for (w, &u) in p.weights.column_mut(j).iter_mut().zip(&weighted) {
                                *w += a * u;
                            }
                        }
                    }
                    if let Some(bias) = p.bias.as_deref_mut() {
                        let a = scale * signal;
                        for (v, &n) in bias.iter_mut().zip(noise.column(c)) {
                            *v += a * n;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

export_rules!(NpTrace, PluginNodePerturbation);
