//! Tasks: where inputs and targets come from, and what is measured.

use nalgebra::DMatrix;
use npsim_core::analysis::participation_ratio;
use npsim_core::{Measure, Real};

/// A supervised task a circuit is trained on, for one run.
///
/// # Implementing
/// An implementor **must** fill whole batches from its own seeded streams (so runs repeat
/// exactly) and return from [`Task::metrics`] exactly the metrics its [`Prepared`] declares,
/// in that order (the recorder rejects a row of another length). It **need not** know the
/// learning rule.
///
/// [`Prepared`]: crate::registry::Prepared
pub trait Task<T: Real>: Send {
    /// Values per input sample.
    fn input_size(&self) -> usize;
    /// Values per target sample.
    fn output_size(&self) -> usize;
    /// Fills `inputs` (`input_size × batch`) and `targets` (`output_size × batch`).
    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>);
    /// Measures the circuit now. It may run clean forward passes through `engine` (which
    /// overwrite the engine's activities but not its weights).
    fn metrics(&mut self, engine: &mut dyn Measure<T>) -> Vec<f64>;
    /// What the task records once, when the run ends, in the group its [`Prepared`] names
    /// (`(name, rows, columns, row-major values)`; default none).
    fn recordings(&mut self, _engine: &mut dyn Measure<T>) -> Vec<(String, usize, usize, Vec<f64>)> {
        Vec::new()
    }
}

/// Names of the structural metrics dataset tasks record after their own: `norm_<projection>`
/// for each projection with weights, then `participation_<population>` for each hidden
/// population (index, name pairs).
pub fn structure_metric_names(projections: &[(usize, String)], hidden: &[(usize, String)]) -> Vec<String> {
    let norms = projections.iter().map(|(_, p)| format!("norm_{p}"));
    norms
        .chain(hidden.iter().map(|(_, h)| format!("participation_{h}")))
        .collect()
}

/// Participation ratio of each hidden population's activity in the engine's last clean pass.
pub fn participation_ratios<T: Real>(engine: &dyn Measure<T>, hidden: &[(usize, String)]) -> Vec<f64> {
    hidden
        .iter()
        .map(|(p, _)| participation_ratio(&engine.activity(*p).map(|v| v.f64())))
        .collect()
}

/// Squared Frobenius norm of the weights of each of `projections` (index, name).
pub fn weight_norms<T: Real>(engine: &mut dyn Measure<T>, projections: &[(usize, String)]) -> Vec<f64> {
    let circuit = engine.circuit_mut();
    projections
        .iter()
        .map(|&(q, _)| circuit.weights(q).iter().map(|w| w.f64() * w.f64()).sum())
        .collect()
}
