//! Helpers shared by the unit tests of this crate.

use nalgebra::DMatrix;

/// `len` values in [−0.5, 0.5) from a fixed linear congruential sequence: deterministic test
/// data that needs no random-number crate.
pub fn uniform_values(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
        .collect()
}

/// A `rows × cols` matrix of [`uniform_values`], column by column.
pub fn uniform_matrix(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    DMatrix::from_vec(rows, cols, uniform_values(rows * cols, seed))
}

/// Runs `work` on a pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(work)
}
