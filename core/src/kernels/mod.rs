//! Dense kernels, including the fused "apply pending update, then multiply" pass.
//!
//! Per-sample node perturbation on a wide layer is bound by memory traffic: each step reads
//! the weights for the forward product and reads and writes them again for the rank-one
//! update. The fused kernel applies the update of step `t` while computing the product of step
//! `t + 1`, streaming the weights once per step. Mini-batch updates are deferred the same way
//! and applied block of rows by block of rows together with the next product
//! ([`update_then_multiply_by_row_blocks`]), each block while it is in cache.
//!
//! Results do not depend on the number of threads: large matrices are split into blocks of
//! rows, and every output row is summed over columns in the same order in any block.

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::Real;
use crate::circuit::PendingUpdate;
use crate::gemm::update_then_multiply_by_row_blocks;

mod short;
pub use short::{SHORT_MAX_ROWS, short_cut, short_multiply, short_part_sums, short_update_then_multiply};

/// Fused path is taken when both the pending update and the product have at most this many
/// columns; beyond it a GEMM is cheaper than repeated column sweeps.
pub const FUSE_MAX_COLUMNS: usize = 4;
/// Row blocks are at least this long, so that each sweep stays vectorised.
pub const MIN_BLOCK_ROWS: usize = 512;
/// Matrices with at least this many entries are split into row blocks, one per thread.
pub const SPLIT_MIN_ENTRIES: usize = 1 << 15;

/// Elementwise and per-column passes with at least this many entries are shared among threads.
const PARALLEL_MIN_ENTRIES: usize = 1 << 15;

/// Runs `pass(out, inputs)` over blocks of whole columns (`rows` entries each) of `out` and
/// the equally long `inputs`, in parallel when the data is large enough to be worth it.
///
/// Each column is processed by exactly one call, so a pass that is elementwise or acts on
/// whole columns gives the same numbers on any number of threads.
pub fn by_column_blocks<T: Real, const N: usize>(
    rows: usize,
    out: &mut [T],
    inputs: [&[T]; N],
    pass: impl Fn(&mut [T], [&[T]; N]) + Sync,
) {
    by_indexed_column_blocks(rows, out, inputs, |_, out, inputs| pass(out, inputs));
}

/// [`by_column_blocks`], also telling `pass` the index of its block's first column.
pub fn by_indexed_column_blocks<T: Real, const N: usize>(
    rows: usize,
    out: &mut [T],
    inputs: [&[T]; N],
    pass: impl Fn(usize, &mut [T], [&[T]; N]) + Sync,
) {
    debug_assert!(inputs.iter().all(|input| input.len() == out.len()));
    let threads = rayon::current_num_threads();
    if threads == 1 || out.len() < PARALLEL_MIN_ENTRIES || rows == 0 {
        pass(0, out, inputs);
        return;
    }
    let columns = out.len() / rows;
    // A few blocks per thread, so that a thread slowed by the rest of the machine does not
    // hold the others back.
    let block_columns = columns.div_ceil(4 * threads).max(1);
    let block = rows * block_columns;
    out.par_chunks_mut(block).enumerate().for_each(|(i, part)| {
        let start = i * block;
        pass(
            i * block_columns,
            part,
            inputs.map(|input| &input[start..start + part.len()]),
        );
    });
}

/// Elementwise passes over at least this many entries are shared among threads. Lower than
/// [`PARALLEL_MIN_ENTRIES`]: a per-sample step's vectors over a wide population (10,000 hidden
/// units) were written in halves by the threads of the product before, and a pass by one
/// thread would first pull the other half across from the other core.
const ENTRY_PARALLEL_MIN: usize = 1 << 13;

/// Runs an elementwise `pass(out, inputs)` over `out` and the equally long `inputs`, cut into
/// one contiguous part per thread (cuts at multiples of 8 entries), in parallel when large
/// enough. Each entry is computed alone, so any partition gives the same numbers; one part
/// per thread, in order, puts each thread on the same entries as the row halves of the dense
/// products before and after.
pub fn by_entry_parts<T: Real, const N: usize>(
    out: &mut [T],
    inputs: [&[T]; N],
    pass: impl Fn(&mut [T], [&[T]; N]) + Sync,
) {
    debug_assert!(inputs.iter().all(|input| input.len() == out.len()));
    let threads = rayon::current_num_threads();
    if threads == 1 || out.len() < ENTRY_PARALLEL_MIN {
        pass(out, inputs);
        return;
    }
    let part = out.len().div_ceil(threads).next_multiple_of(8);
    out.par_chunks_mut(part).enumerate().for_each(|(i, out)| {
        let start = i * part;
        pass(out, inputs.map(|input| &input[start..start + out.len()]));
    });
}

/// More blocks than this a thread are shared by rayon's splitting in [`for_each_fixed_block`]
/// (kept from the fixed split it replaced, which went one run per thread below it).
const MANY_BLOCKS_PER_THREAD: usize = 16;

/// Runs `work` on each of a fixed partition's `blocks`, shared among threads. A few blocks
/// (at most [`MANY_BLOCKS_PER_THREAD`] a thread: a per-sample step's 10,000 hidden units):
/// one task per thread, task `t` of `T` starting at its home block `t·n/T` and walking on
/// (wrapping round), taking every block no task has taken yet. Many: rayon's splitting.
///
/// While the threads keep pace, each takes the same run of blocks call after call, so that a
/// block's data (a per-sample step's rows of the weights, of the announced products, of the
/// noise) stays in the cache of the core that handled it last; rayon's own splitting hands
/// the halves of the halves to whichever thread is free, which on two cores cost the
/// per-sample step 7–9 % (measured 2026-12-01). A thread that falls behind loses the end of
/// its run to the others, and a thread that is late to start (asleep when the work was
/// handed out) loses all of it, with no waiting for it: a fixed split into one run per
/// thread would either wait or leave the caller to do the late thread's whole run. Which
/// thread runs a block never changes the numbers.
pub fn for_each_fixed_block<B: Send>(blocks: Vec<B>, work: impl Fn(B) + Send + Sync) {
    let threads = rayon::current_num_threads();
    let tasks = threads.min(blocks.len());
    if tasks <= 1 {
        blocks.into_iter().for_each(work);
        return;
    }
    if blocks.len() > MANY_BLOCKS_PER_THREAD * threads {
        // Too many to walk one by one (a batch's noise, thousands of blocks): rayon's
        // splitting, whose balance then matters more than where each block ran last.
        blocks.into_par_iter().for_each(work);
        return;
    }
    let count = blocks.len();
    // Taken once each, by whichever task reaches it first; never contended for longer than
    // the `take`.
    let slots: Vec<std::sync::Mutex<Option<B>>> = blocks
        .into_iter()
        .map(|b| std::sync::Mutex::new(Some(b)))
        .collect();
    (0..tasks).into_par_iter().for_each(|task| {
        let home = task * count / tasks;
        for slot in slots[home..].iter().chain(&slots[..home]) {
            let block = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(block) = block {
                work(block);
            }
        }
    });
}

/// `dst = src` for equally long slices, in parallel parts as [`by_entry_parts`].
pub fn copy_entries<T: Real>(dst: &mut [T], src: &[T]) {
    by_entry_parts(dst, [src], |dst, [src]| dst.copy_from_slice(src));
}

/// `dst = src`, reusing `dst`'s storage when the shapes agree (nalgebra's `clone_from`
/// allocates anew every time).
pub fn copy_into<T: Real>(dst: &mut DMatrix<T>, src: &DMatrix<T>) {
    if dst.shape() == src.shape() {
        copy_entries(dst.as_mut_slice(), src.as_slice());
    } else {
        *dst = src.clone();
    }
}

/// Below this fraction of nonzero presynaptic factors, an outer-product update visits the
/// nonzero entries instead of running a matrix product.
pub const SPARSE_FACTOR_BELOW: f64 = 0.1;

/// The fraction of entries of `m` that are not zero, estimated from at most 4,096 entries
/// spread evenly over it (exact for smaller matrices): cheap beside any product with `m`.
pub fn nonzero_fraction<T: Real>(m: &DMatrix<T>) -> f64 {
    let values = m.as_slice();
    let stride = values.len().div_ceil(4096).max(1);
    let (mut seen, mut nonzero) = (0usize, 0usize);
    for &v in values.iter().step_by(stride) {
        seen += 1;
        nonzero += usize::from(v != T::zero());
    }
    nonzero as f64 / seen.max(1) as f64
}

/// `W += scale · U Vᵀ`, column by column of `U` and `V`, skipping the zero entries of `V`:
/// the update of weights from a mostly silent presynaptic population in
/// `O(nonzeros(V) · rows(W))` rather than a full product.
pub fn add_outer_sparse_pre<T: Real>(w: &mut DMatrix<T>, scale: T, u: &DMatrix<T>, v: &DMatrix<T>) {
    let rows = w.nrows();
    let weights = w.as_mut_slice();
    for (u, v) in u
        .as_slice()
        .chunks_exact(rows)
        .zip(v.as_slice().chunks_exact(v.nrows()))
    {
        for (j, &x) in v.iter().enumerate() {
            if x != T::zero() {
                let a = scale * x;
                weights[j * rows..(j + 1) * rows]
                    .iter_mut()
                    .zip(u)
                    .for_each(|(w, &u)| *w += a * u);
            }
        }
    }
}

/// `out = m diag(c)`, where `c` repeats each of `sample_scales` over `columns_per_sample`
/// consecutive columns.
pub fn scale_columns<T: Real>(
    m: &DMatrix<T>,
    sample_scales: &[T],
    columns_per_sample: usize,
    out: &mut DMatrix<T>,
) {
    if out.shape() != m.shape() {
        *out = DMatrix::zeros(m.nrows(), m.ncols());
    }
    let rows = m.nrows();
    by_indexed_column_blocks(rows, out.as_mut_slice(), [m.as_slice()], |first, out, [m]| {
        for (j, (o, v)) in out.chunks_exact_mut(rows).zip(m.chunks_exact(rows)).enumerate() {
            let c = sample_scales[(first + j) / columns_per_sample];
            o.iter_mut().zip(v).for_each(|(o, &v)| *o = v * c);
        }
    });
}

/// `w += scale · u vᵀ`, where `u` is `rows × b` and `v` is `cols × b`.
pub fn apply_outer<T: Real>(w: &mut DMatrix<T>, scale: T, u: &DMatrix<T>, v: &DMatrix<T>) {
    debug_assert_eq!(u.ncols(), v.ncols());
    if u.ncols() <= FUSE_MAX_COLUMNS {
        let rows = w.nrows();
        for (j, column) in w.as_mut_slice().chunks_exact_mut(rows).enumerate() {
            add_outer_column(column, j, scale, u, v);
        }
    } else {
        update_then_multiply_by_row_blocks(w, Some((scale, u, v)), None);
    }
}

/// `acc += a · x` over equal-length slices (written with indices so that it vectorises).
#[inline]
fn axpy<T: Real>(a: T, x: &[T], acc: &mut [T]) {
    let len = acc.len().min(x.len());
    let (x, acc) = (&x[..len], &mut acc[..len]);
    for i in 0..len {
        acc[i] += a * x[i];
    }
}

/// `w += a · u`, then `acc += xv · w`, in one sweep over `w`.
#[inline]
fn fused_axpy_dot<T: Real>(w: &mut [T], a: T, u: &[T], xv: T, acc: &mut [T]) {
    let len = w.len();
    let (u, acc) = (&u[..len], &mut acc[..len]);
    for i in 0..len {
        let updated = w[i] + a * u[i];
        w[i] = updated;
        acc[i] += xv * updated;
    }
}

/// [`fused_axpy_dot`] on four columns at once: `c_k += a_k u`, `acc += Σ_k x_k c_k`.
#[inline]
fn fused_four<T: Real>(
    c0: &mut [T],
    c1: &mut [T],
    c2: &mut [T],
    c3: &mut [T],
    k: [(T, T); 4],
    u: &[T],
    acc: &mut [T],
) {
    let len = acc.len();
    let (c0, c1, c2, c3, u) = (
        &mut c0[..len],
        &mut c1[..len],
        &mut c2[..len],
        &mut c3[..len],
        &u[..len],
    );
    let [(a0, x0), (a1, x1), (a2, x2), (a3, x3)] = k;
    for i in 0..len {
        let ui = u[i];
        let w0 = c0[i] + a0 * ui;
        let w1 = c1[i] + a1 * ui;
        let w2 = c2[i] + a2 * ui;
        let w3 = c3[i] + a3 * ui;
        c0[i] = w0;
        c1[i] = w1;
        c2[i] = w2;
        c3[i] = w3;
        acc[i] += (x0 * w0 + x1 * w1) + (x2 * w2 + x3 * w3);
    }
}

/// `acc += Σ_k x_k c_k` over four columns, summed as in [`fused_four`].
#[inline]
fn multiply_four<T: Real>(c0: &[T], c1: &[T], c2: &[T], c3: &[T], x: [T; 4], acc: &mut [T]) {
    let len = acc.len();
    let (c0, c1, c2, c3) = (&c0[..len], &c1[..len], &c2[..len], &c3[..len]);
    let [x0, x1, x2, x3] = x;
    for i in 0..len {
        acc[i] += (x0 * c0[i] + x1 * c1[i]) + (x2 * c2[i] + x3 * c3[i]);
    }
}

#[inline]
fn add_outer_column<T: Real>(column: &mut [T], j: usize, scale: T, u: &DMatrix<T>, v: &DMatrix<T>) {
    let rows = u.nrows();
    let u = u.as_slice();
    for b in 0..v.ncols() {
        let a = scale * v[(j, b)];
        if a != T::zero() {
            axpy(a, &u[b * rows..(b + 1) * rows], column);
        }
    }
}

/// One block's segments of several columns.
type Segments<'a, T> = Vec<&'a mut [T]>;

/// `out += w x`, first applying `pending` to `w` if given (the fused pass when shapes allow).
///
/// Large matrices are split into blocks of rows, one per thread. Each output row is then
/// computed by one thread, summing over columns in the same order whatever the number of
/// blocks, so the results are bit-for-bit independent of the thread count.
pub fn update_then_multiply<T: Real>(
    w: &mut DMatrix<T>,
    pending: Option<&PendingUpdate<T>>,
    x: &DMatrix<T>,
    out: &mut DMatrix<T>,
) {
    let (rows, cols) = w.shape();
    let n = x.ncols();
    let fusable = n <= FUSE_MAX_COLUMNS && pending.is_none_or(|p| p.post_factors.ncols() <= FUSE_MAX_COLUMNS);
    if !fusable || rows == 0 {
        let update = pending.map(|p| (p.scale, &p.post_factors, &p.pre_factors));
        update_then_multiply_by_row_blocks(w, update, Some((x, out)));
        return;
    }
    if n == 1 && (1..=SHORT_MAX_ROWS).contains(&rows) && pending.is_none_or(|p| p.post_factors.ncols() == 1) {
        short_update_then_multiply(w, pending, x.as_slice(), out.as_mut_slice());
        return;
    }
    let blocks = if rows * cols >= SPLIT_MIN_ENTRIES {
        rayon::current_num_threads().min(rows / MIN_BLOCK_ROWS).max(1)
    } else {
        1
    };
    let per_block = rows.div_ceil(blocks);
    // For each block of rows, its segment of every weight column and of every output column.
    let mut weight_parts: Vec<Vec<&mut [T]>> = (0..blocks).map(|_| Vec::with_capacity(cols)).collect();
    for column in w.as_mut_slice().chunks_exact_mut(rows) {
        for (part, segment) in weight_parts.iter_mut().zip(column.chunks_mut(per_block)) {
            part.push(segment);
        }
    }
    let mut out_parts: Vec<Vec<&mut [T]>> = (0..blocks).map(|_| Vec::with_capacity(n)).collect();
    for column in out.as_mut_slice().chunks_exact_mut(rows) {
        for (part, segment) in out_parts.iter_mut().zip(column.chunks_mut(per_block)) {
            part.push(segment);
        }
    }
    let work = |(block, (mut weights, mut outs)): (usize, (Segments<'_, T>, Segments<'_, T>))| {
        let r0 = block * per_block;
        let len = weights.first().map_or(0, |s| s.len());
        let r1 = r0 + len;
        match pending {
            // The per-sample case: at most one rank-one term and one input column. Four
            // columns per sweep, so that `u` and the output are loaded once for four columns of
            // weights and the weights are the only large stream, read and written once. The
            // product is summed in the same order with or without a pending update, so a rule
            // that writes weights directly gets the same numbers as one that defers.
            pending if n == 1 && pending.is_none_or(|p| p.post_factors.ncols() == 1) => {
                let acc = &mut *outs[0];
                let coefficient = |j: usize| {
                    (
                        pending.map_or(T::zero(), |p| p.scale * p.pre_factors[(j, 0)]),
                        x[(j, 0)],
                    )
                };
                let u = pending.map(|p| &p.post_factors.as_slice()[r0..r1]);
                let mut groups = weights.chunks_exact_mut(4);
                let mut j = 0;
                for group in groups.by_ref() {
                    let [c0, c1, c2, c3] = group else {
                        unreachable!("chunks of four")
                    };
                    let k = [
                        coefficient(j),
                        coefficient(j + 1),
                        coefficient(j + 2),
                        coefficient(j + 3),
                    ];
                    match u {
                        Some(u) => fused_four(c0, c1, c2, c3, k, u, acc),
                        None => multiply_four(c0, c1, c2, c3, k.map(|(_, xv)| xv), acc),
                    }
                    j += 4;
                }
                for c in groups.into_remainder() {
                    let (a, xv) = coefficient(j);
                    match u {
                        Some(u) => fused_axpy_dot(c, a, u, xv, acc),
                        None => axpy(xv, c, acc),
                    }
                    j += 1;
                }
            }
            _ => {
                for (j, column) in weights.iter_mut().enumerate() {
                    if let Some(p) = pending {
                        let u = p.post_factors.as_slice();
                        let urows = p.post_factors.nrows();
                        for b in 0..p.post_factors.ncols() {
                            let a = p.scale * p.pre_factors[(j, b)];
                            if a != T::zero() {
                                axpy(a, &u[b * urows + r0..b * urows + r1], column);
                            }
                        }
                    }
                    for (s, acc) in outs.iter_mut().enumerate() {
                        let xv = x[(j, s)];
                        if xv != T::zero() {
                            axpy(xv, column, acc);
                        }
                    }
                }
            }
        }
    };
    let parts: Vec<_> = weight_parts.into_iter().zip(out_parts).enumerate().collect();
    if blocks == 1 {
        parts.into_iter().for_each(work);
    } else {
        parts.into_par_iter().for_each(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{on_threads, uniform_matrix as matrix};
    use proptest::prelude::*;

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
            update_then_multiply(&mut w64, Some(&pending), &x, &mut y64);
            prop_assert!((&w64 - &w_ref).amax() < 1e-12);
            prop_assert!((&y64 - &y_ref).amax() < 1e-12 * cols as f64);

            let cast = |m: &DMatrix<f64>| m.map(|v| v as f32);
            let mut w32 = cast(&w);
            let mut y32 = DMatrix::zeros(rows, n);
            let pending = PendingUpdate { scale: -0.7f32, post_factors: cast(&u), pre_factors: cast(&v) };
            update_then_multiply(&mut w32, Some(&pending), &cast(&x), &mut y32);
            prop_assert!((w32.map(f64::from) - &w_ref).amax() < 1e-5);
            prop_assert!((y32.map(f64::from) - &y_ref).amax() < 1e-5 * cols as f64);
        }
    }

    proptest! {
        // Short matrices (an output layer) take their own sweep: with and without an update,
        // and the plain product of the perturbed pass, against nalgebra to 1e-12.
        #[test]
        fn short_sweeps_equal_two_step(rows in 1usize..=SHORT_MAX_ROWS, cols in 1usize..200, seed in 0u64..1000) {
            let w = matrix(rows, cols, seed);
            let u = matrix(rows, 1, seed + 1);
            let v = matrix(cols, 1, seed + 2);
            let x = matrix(cols, 1, seed + 3);
            let start = matrix(rows, 1, seed + 4);
            let (w_ref, y_ref) = reference(&w, 0.4, &u, &v, &x);
            let pending = PendingUpdate { scale: 0.4, post_factors: u, pre_factors: v };
            let mut updated = w.clone();
            let mut y = start.clone();
            update_then_multiply(&mut updated, Some(&pending), &x, &mut y);
            prop_assert!((&updated - &w_ref).amax() < 1e-12);
            prop_assert!((&y - &start - &y_ref).amax() < 1e-12 * cols as f64);
            let mut unchanged = w.clone();
            let mut y = start.clone();
            update_then_multiply(&mut unchanged, None, &x, &mut y);
            prop_assert_eq!(&unchanged, &w);
            prop_assert!((&y - &start - &w * &x).amax() < 1e-12 * cols as f64);
            let mut y = start.clone();
            short_multiply(&w, x.as_slice(), y.as_mut_slice());
            prop_assert!((&y - &start - &w * &x).amax() < 1e-12 * cols as f64);
        }
    }

    #[test]
    fn entry_parts_cover_every_entry_once_on_any_thread_count() {
        for len in [0, 5, 8191, 8192, 10_000, 100_003] {
            let input: Vec<f64> = (0..len).map(|i| i as f64).collect();
            for threads in [1, 2, 3] {
                let out = on_threads(threads, || {
                    let mut out = vec![-1.0; len];
                    by_entry_parts(&mut out, [&input], |out, [input]| {
                        out.iter_mut().zip(input).for_each(|(o, &x)| *o += 1.0 + 2.0 * x)
                    });
                    out
                });
                let expected: Vec<f64> = (0..len).map(|i| 2.0 * i as f64).collect();
                assert_eq!(out, expected, "{len} entries on {threads} threads");
            }
        }
    }

    #[test]
    fn every_block_runs_once_on_any_thread_count() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for count in [0, 1, 2, 10, 25, 100] {
            for threads in [1, 2, 3] {
                let runs: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
                on_threads(threads, || {
                    for_each_fixed_block((0..count).collect(), |b: usize| {
                        runs[b].fetch_add(1, Ordering::Relaxed);
                    })
                });
                let runs: Vec<usize> = runs.into_iter().map(AtomicUsize::into_inner).collect();
                assert_eq!(runs, vec![1; count], "{count} blocks on {threads} threads");
            }
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
            on_threads(threads, || {
                let mut w = w.clone();
                let mut y = DMatrix::zeros(rows, 1);
                let pending = PendingUpdate {
                    scale: 0.3,
                    post_factors: u.clone(),
                    pre_factors: v.clone(),
                };
                update_then_multiply(&mut w, Some(&pending), &x, &mut y);
                (w, y)
            })
        };
        let (w1, y1) = run(1);
        let (w2, y2) = run(2);
        assert_eq!(w1, w2);
        assert_eq!(y1, y2);
    }

    #[test]
    fn column_scaling_matches_its_definition_on_any_thread_count() {
        // 300 × 400 entries: above the parallel threshold; 3 columns per sample.
        let m = matrix(300, 400, 7);
        let scales: Vec<f64> = (0..400 / 3 + 1).map(|s| 0.5 - s as f64 * 0.01).collect();
        let naive = DMatrix::from_fn(300, 400, |i, j| m[(i, j)] * scales[j / 3]);
        let run = |threads| {
            on_threads(threads, || {
                let mut out = DMatrix::zeros(0, 0);
                scale_columns(&m, &scales, 3, &mut out);
                out
            })
        };
        let one = run(1);
        assert_eq!(one, naive);
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
    }
}
