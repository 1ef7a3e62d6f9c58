//! Dense kernels, including the fused "apply pending update, then multiply" pass.
//!
//! Per-sample node perturbation on a wide layer is bound by memory traffic: each step reads
//! the weights for the forward product and reads and writes them again for the rank-one
//! update. The fused kernel applies the update of step `t` while computing the product of step
//! `t + 1`, streaming the weights once per step.
//!
//! Results do not depend on the number of threads: large matrices are always split into the
//! same [`CHUNKS`] column blocks whose partial products are summed in a fixed order.

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::Real;
use crate::circuit::PendingUpdate;

/// Fused path is taken when both the pending update and the product have at most this many
/// columns; beyond it a GEMM is cheaper than repeated column sweeps.
pub const FUSE_MAX_COLUMNS: usize = 4;
/// Matrices with at least this many entries are split into [`CHUNKS`] column blocks.
pub const SPLIT_MIN_ENTRIES: usize = 1 << 15;
/// Number of column blocks for large matrices (fixed, so that results do not depend on threads).
pub const CHUNKS: usize = 4;

/// `w += scale · u vᵀ`, where `u` is `rows × b` and `v` is `cols × b`.
pub fn apply_outer<T: Real>(w: &mut DMatrix<T>, scale: T, u: &DMatrix<T>, v: &DMatrix<T>) {
    debug_assert_eq!(u.ncols(), v.ncols());
    if u.ncols() <= FUSE_MAX_COLUMNS {
        let rows = w.nrows();
        for (j, column) in w.as_mut_slice().chunks_exact_mut(rows).enumerate() {
            add_outer_column(column, j, scale, u, v);
        }
    } else {
        w.gemm(scale, u, &v.transpose(), T::one());
    }
}

#[inline]
fn add_outer_column<T: Real>(column: &mut [T], j: usize, scale: T, u: &DMatrix<T>, v: &DMatrix<T>) {
    for b in 0..u.ncols() {
        let a = scale * v[(j, b)];
        if a != T::zero() {
            for (w, &ui) in column.iter_mut().zip(u.column(b).iter()) {
                *w += a * ui;
            }
        }
    }
}

/// `out += w x`, first applying `pending` to `w` if given (the fused pass when shapes allow).
///
/// `partials` is scratch space kept by the caller between calls.
pub fn update_then_multiply<T: Real>(
    w: &mut DMatrix<T>,
    pending: Option<PendingUpdate<T>>,
    x: &DMatrix<T>,
    out: &mut DMatrix<T>,
    partials: &mut Vec<Vec<T>>,
) {
    let (rows, cols) = w.shape();
    let fusable = x.ncols() <= FUSE_MAX_COLUMNS
        && pending
            .as_ref()
            .is_none_or(|p| p.post_factors.ncols() <= FUSE_MAX_COLUMNS);
    if !fusable {
        if let Some(p) = pending {
            apply_outer(w, p.scale, &p.post_factors, &p.pre_factors);
        }
        out.gemm(T::one(), w, x, T::one());
        return;
    }
    let n = x.ncols();
    let chunks = if rows * cols >= SPLIT_MIN_ENTRIES {
        CHUNKS.min(cols)
    } else {
        1
    };
    partials.resize_with(chunks, Vec::new);
    let per_chunk = cols.div_ceil(chunks);
    let pending = pending.as_ref();
    let blocks: Vec<(usize, &mut [T])> = w
        .as_mut_slice()
        .chunks_mut(per_chunk * rows)
        .enumerate()
        .map(|(c, s)| (c * per_chunk, s))
        .collect();
    let work = |(first_col, block): (usize, &mut [T]), partial: &mut Vec<T>| {
        partial.clear();
        partial.resize(rows * n, T::zero());
        for (offset, column) in block.chunks_exact_mut(rows).enumerate() {
            let j = first_col + offset;
            if let Some(p) = pending {
                add_outer_column(column, j, p.scale, &p.post_factors, &p.pre_factors);
            }
            for s in 0..n {
                let xv = x[(j, s)];
                if xv != T::zero() {
                    let acc = &mut partial[s * rows..(s + 1) * rows];
                    for (a, &wv) in acc.iter_mut().zip(column.iter()) {
                        *a += wv * xv;
                    }
                }
            }
        }
    };
    if chunks == 1 {
        for (block, partial) in blocks.into_iter().zip(partials.iter_mut()) {
            work(block, partial);
        }
    } else {
        blocks
            .into_par_iter()
            .zip(partials.par_iter_mut())
            .for_each(|(block, partial)| work(block, partial));
    }
    let out_slice = out.as_mut_slice();
    for partial in partials.iter() {
        for (o, &p) in out_slice.iter_mut().zip(partial.iter()) {
            *o += p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matrix(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
        let mut state = seed;
        DMatrix::from_fn(rows, cols, |_, _| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
    }

    fn reference(
        w: &DMatrix<f64>,
        scale: f64,
        u: &DMatrix<f64>,
        v: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let updated = w + u * v.transpose() * scale;
        let product = &updated * x;
        (updated, product)
    }

    proptest! {
        // The fused kernel must equal "update, then multiply" computed independently by
        // nalgebra, to 1e-12 (f64) and 1e-4 (f32) relative to the size of the entries.
        #[test]
        fn fused_equals_two_step(rows in 1usize..300, cols in 1usize..300, b in 1usize..7, n in 1usize..7, seed in 0u64..1000) {
            let w = matrix(rows, cols, seed);
            let u = matrix(rows, b, seed + 1);
            let v = matrix(cols, b, seed + 2);
            let x = matrix(cols, n, seed + 3);
            let (w_ref, y_ref) = reference(&w, -0.7, &u, &v, &x);

            let mut w64 = w.clone();
            let mut y64 = DMatrix::zeros(rows, n);
            let pending = PendingUpdate { scale: -0.7, post_factors: u.clone(), pre_factors: v.clone() };
            update_then_multiply(&mut w64, Some(pending), &x, &mut y64, &mut Vec::new());
            prop_assert!((&w64 - &w_ref).amax() < 1e-12);
            prop_assert!((&y64 - &y_ref).amax() < 1e-12 * cols as f64);

            let cast = |m: &DMatrix<f64>| m.map(|v| v as f32);
            let mut w32 = cast(&w);
            let mut y32 = DMatrix::zeros(rows, n);
            let pending = PendingUpdate { scale: -0.7f32, post_factors: cast(&u), pre_factors: cast(&v) };
            update_then_multiply(&mut w32, Some(pending), &cast(&x), &mut y32, &mut Vec::new());
            prop_assert!((w32.map(f64::from) - &w_ref).amax() < 1e-5);
            prop_assert!((y32.map(f64::from) - &y_ref).amax() < 1e-5 * cols as f64);
        }
    }

    #[test]
    fn large_matrices_give_the_same_numbers_on_any_thread_count() {
        let (rows, cols) = (2000, 40);
        let w = matrix(rows, cols, 1);
        let x = matrix(cols, 1, 2);
        let u = matrix(rows, 1, 3);
        let v = matrix(cols, 1, 4);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut w = w.clone();
                let mut y = DMatrix::zeros(rows, 1);
                let pending = PendingUpdate {
                    scale: 0.3,
                    post_factors: u.clone(),
                    pre_factors: v.clone(),
                };
                update_then_multiply(&mut w, Some(pending), &x, &mut y, &mut Vec::new());
                (w, y)
            })
        };
        let (w1, y1) = run(1);
        let (w2, y2) = run(2);
        assert_eq!(w1, w2);
        assert_eq!(y1, y2);
    }
}
