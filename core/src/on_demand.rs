//! Matrices formed only if someone reads them, at most once per step, into a kept buffer.
//!
//! A convolution's clean patches and its unfolded postsynaptic activity are tens of MB per
//! step; most rules never read them (they multiply by the presynaptic activity through
//! `ProjectionContext::add_outer_with_pre`), so the engine forms them on the first read.

use std::sync::{Mutex, OnceLock};

use nalgebra::DMatrix;

use crate::Real;

/// A matrix formed on first use since the last [`OnDemand::reset`].
#[derive(Debug, Default)]
pub(crate) struct OnDemand<T: Real> {
    formed: OnceLock<DMatrix<T>>,
    /// The buffer of an earlier step, reused by the next forming.
    spare: Mutex<DMatrix<T>>,
}

impl<T: Real> OnDemand<T> {
    /// Forgets what was formed (its storage is kept for the next forming).
    pub(crate) fn reset(&mut self) {
        if let Some(old) = self.formed.take() {
            *self.spare.get_mut().unwrap_or_else(|e| e.into_inner()) = old;
        }
    }

    /// The matrix, formed by `form` (given the kept buffer, any shape) if not yet formed.
    pub(crate) fn get_or_form(&self, form: impl FnOnce(&mut DMatrix<T>)) -> &DMatrix<T> {
        self.formed.get_or_init(|| {
            let mut buffer = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|e| e.into_inner()));
            form(&mut buffer);
            buffer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formed_once_until_reset_then_again_in_the_same_storage() {
        let mut lazy = OnDemand::<f64>::default();
        let mut calls = 0;
        let mut form = |m: &mut DMatrix<f64>| {
            calls += 1;
            *m = DMatrix::from_element(2, 2, calls as f64);
        };
        assert_eq!(lazy.get_or_form(&mut form)[(0, 0)], 1.0);
        assert_eq!(lazy.get_or_form(&mut form)[(0, 0)], 1.0);
        let storage = lazy.get_or_form(&mut form).as_ptr();
        lazy.reset();
        let reused = lazy.get_or_form(|m| m[(0, 0)] = 7.0);
        assert_eq!((reused[(0, 0)], reused.as_ptr()), (7.0, storage));
    }
}
