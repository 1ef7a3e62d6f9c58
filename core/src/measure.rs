//! What a task may do with an engine to measure a circuit, whichever engine runs it.

use nalgebra::DMatrix;

use crate::trial::TrialEngine;
use crate::{Circuit, Engine, Real};

/// Clean passes and current weights: what [`Engine`] and [`TrialEngine`] both offer a task's
/// metrics.
///
/// # Implementing
/// `forward` runs the circuit without noise on `inputs` (for the trial engine: rendition-major
/// renditions, `steps` columns per rendition) and returns the output activity in the same
/// layout; `activity` is a population's activity in the last `forward`. Neither changes
/// weights.
pub trait Measure<T: Real> {
    /// A noise-free pass; returns the output activity.
    fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T>;
    /// Activity of population `index` in the last [`Measure::forward`].
    fn activity(&self, index: usize) -> &DMatrix<T>;
    /// The circuit, to read current weights.
    fn circuit_mut(&mut self) -> &mut Circuit<T>;
}

impl<T: Real> Measure<T> for Engine<T> {
    fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T> {
        Engine::forward(self, inputs)
    }
    fn activity(&self, index: usize) -> &DMatrix<T> {
        Engine::activity(self, index)
    }
    fn circuit_mut(&mut self) -> &mut Circuit<T> {
        Engine::circuit_mut(self)
    }
}

impl<T: Real> Measure<T> for TrialEngine<T> {
    fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T> {
        TrialEngine::forward(self, inputs)
    }
    fn activity(&self, index: usize) -> &DMatrix<T> {
        TrialEngine::activity(self, index)
    }
    fn circuit_mut(&mut self) -> &mut Circuit<T> {
        TrialEngine::circuit_mut(self)
    }
}
