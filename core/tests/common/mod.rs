//! Helpers shared by this crate's integration tests.

use nalgebra::DMatrix;

/// A `rows × cols` matrix of values in [−1, 1) from a fixed linear congruential sequence:
/// deterministic test data that needs no random-number crate.
pub fn batch(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut state = seed;
    DMatrix::from_fn(rows, cols, |_, _| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}
