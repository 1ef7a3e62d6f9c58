//! Matrix products through faer's GEMM, on views of nalgebra storage (both are column-major,
//! so no copies), with the thread count chosen per call.
//!
//! faer's product reaches about 1.8× the throughput of nalgebra's own (matrixmultiply) on
//! the shapes of an MLP step on this project's machines (docs/benchmarks.md). Thin products,
//! such as those through a 10-unit output layer, run faster on one thread than on several,
//! so parallelism is only asked for when every dimension is large enough to share.
//!
//! Results do not depend on the number of threads: faer splits the output into blocks and
//! never splits the inner (summed) dimension, so every entry is summed in the same order.

use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::DMatrix;

use crate::Real;

/// An operand of a product: a column-major matrix, or its transpose (a view; nothing is
/// copied).
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a, T: Real> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, T: Real> Operand<'a, T> {
    /// The matrix as stored.
    pub fn plain(m: &'a DMatrix<T>) -> Self {
        Self::slice(m.as_slice(), m.nrows(), m.ncols())
    }
    /// The matrix transposed.
    pub fn transposed(m: &'a DMatrix<T>) -> Self {
        Self::plain(m).t()
    }
    /// A column-major `rows × cols` matrix stored in `data`.
    ///
    /// # Panics
    /// If `data` does not have `rows · cols` entries.
    pub fn slice(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "operand storage does not match its shape"
        );
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }
    /// This operand transposed.
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }
    fn view(self) -> MatRef<'a, T> {
        let m = MatRef::from_column_major_slice(self.data, self.rows, self.cols);
        if self.transposed { m.transpose() } else { m }
    }
}

/// Products with fewer multiply–adds than this run on one thread.
const PARALLEL_MIN_WORK: usize = 1 << 20;
/// Products with an output dimension below this run on one thread.
const PARALLEL_MIN_SIDE: usize = 32;

fn parallelism(m: usize, n: usize, k: usize) -> Par {
    let threads = rayon::current_num_threads();
    if threads > 1 && m.min(n) >= PARALLEL_MIN_SIDE && m * n * k >= PARALLEL_MIN_WORK {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// `dst = alpha · lhs · rhs + beta · dst` with `beta` either 0 (`accumulate = false`) or 1,
/// threaded when the shape is worth it.
///
/// # Panics
/// If the shapes do not agree.
pub fn gemm<T: Real>(
    dst: &mut DMatrix<T>,
    accumulate: bool,
    alpha: T,
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
) {
    let (m, n) = dst.shape();
    gemm_slices(dst.as_mut_slice(), m, n, accumulate, alpha, lhs, rhs, true);
}

/// [`gemm`] into column-major storage `dst` of shape `m × n`; on one thread unless
/// `allow_threads` (callers that are already parallel pass `false`).
///
/// # Panics
/// If the shapes do not agree.
#[allow(clippy::too_many_arguments)]
pub fn gemm_slices<T: Real>(
    dst: &mut [T],
    m: usize,
    n: usize,
    accumulate: bool,
    alpha: T,
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    allow_threads: bool,
) {
    let (lhs, rhs) = (lhs.view(), rhs.view());
    assert!(
        dst.len() == m * n && lhs.nrows() == m && rhs.ncols() == n && lhs.ncols() == rhs.nrows(),
        "gemm shapes: dst {m}×{n}, lhs {}×{}, rhs {}×{}",
        lhs.nrows(),
        lhs.ncols(),
        rhs.nrows(),
        rhs.ncols()
    );
    let k = lhs.ncols();
    if k == 0 {
        if !accumulate {
            dst.fill(T::zero());
        }
        return;
    }
    let par = if allow_threads {
        parallelism(m, n, k)
    } else {
        Par::Seq
    };
    let dst = MatMut::from_column_major_slice_mut(dst, m, n);
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    faer::linalg::matmul::matmul(dst, beta, lhs, rhs, alpha, par);
}

/// Weights per row block of [`update_then_multiply_by_row_blocks`]: most of a core's L2
/// cache, so that a block updated by one product is still there for the next.
const ROW_BLOCK_BYTES: usize = 1 << 19;
/// The number of row blocks is a multiple of this, so that 1, 2, 3, 4 or 6 threads share
/// them evenly.
const ROW_BLOCK_COUNT_STEP: usize = 12;

/// Row blocks are a multiple of the height of the GEMM's register tiles, so that no block
/// but the last ends in a partial (masked) tile: three vectors, 96 bytes of rows with AVX2
/// (24 `f32`, 12 `f64`), two, 128 bytes, with AVX-512 (32 `f32`, 16 `f64`). Blocks of 24
/// rows ran in masked 32-row tiles on AVX-512 and cost a 784-100-10 MLP's NP step about a
/// sixth of its speed.
fn row_block_align<T>() -> usize {
    #[cfg(target_arch = "x86_64")]
    let tile_bytes = if std::is_x86_feature_detected!("avx512f") {
        128
    } else {
        96
    };
    #[cfg(not(target_arch = "x86_64"))]
    let tile_bytes = 96;
    (tile_bytes / std::mem::size_of::<T>()).max(1)
}

/// Rows per block for a `rows × cols` matrix of `T`. Depends on the shape and the machine's
/// vector width only, never on the thread count. Each entry of a product is summed in the
/// same order whatever block holds its row (changing the blocks from 24 to 32 rows left
/// every bit-identity digest unchanged).
fn row_block_len<T>(rows: usize, cols: usize) -> usize {
    let bytes = rows * cols * std::mem::size_of::<T>();
    let blocks = bytes.div_ceil(ROW_BLOCK_COUNT_STEP * ROW_BLOCK_BYTES) * ROW_BLOCK_COUNT_STEP;
    rows.div_ceil(blocks.clamp(1, rows.max(1)))
        .next_multiple_of(row_block_align::<T>())
}

/// For each block of rows of `w` (`rows × cols`), on one thread per block:
/// `w_b += alpha · u_b vᵀ` when `update = Some((alpha, u, v))` (`u`: `rows × r`, `v`:
/// `cols × r`), then `out_b += w_b x` when `product = Some((x, out))` (`x`: `cols × n`, `out`:
/// `rows × n`).
///
/// One pass over the weights serves both products while each block is in cache, and the
/// blocks are shared among threads without synchronising inside a product. The blocks are a
/// fixed partition of the rows, so the numbers are the same on any number of threads, and the
/// same whether the update is applied alone or together with the next product.
///
/// # Panics
/// If the shapes do not agree.
pub fn update_then_multiply_by_row_blocks<T: Real>(
    w: &mut DMatrix<T>,
    update: Option<(T, &DMatrix<T>, &DMatrix<T>)>,
    product: Option<(&DMatrix<T>, &mut DMatrix<T>)>,
) {
    update_then_product_by_row_blocks(w, update, product, Accum::Add, RowSharing::Balanced);
}

/// [`update_then_multiply_by_row_blocks`] with `out_b = w_b x` in place of `out_b += w_b x`
/// (`out` need not be zeroed first: each block is written while in cache), for a per-sample
/// lookahead: each thread keeps its run of row blocks from call to call (see [`RowSharing`]).
pub fn update_then_assign_product_by_row_blocks<T: Real>(
    w: &mut DMatrix<T>,
    update: Option<(T, &DMatrix<T>, &DMatrix<T>)>,
    product: (&DMatrix<T>, &mut DMatrix<T>),
) {
    update_then_product_by_row_blocks(w, update, Some(product), Accum::Replace, RowSharing::Kept);
}

fn update_then_product_by_row_blocks<T: Real>(
    w: &mut DMatrix<T>,
    update: Option<(T, &DMatrix<T>, &DMatrix<T>)>,
    product: Option<(&DMatrix<T>, &mut DMatrix<T>)>,
    accumulate: Accum,
    sharing: RowSharing,
) {
    let (rows, cols) = w.shape();
    if let Some((_, u, v)) = update {
        assert!(
            u.nrows() == rows && v.nrows() == cols && u.ncols() == v.ncols(),
            "update shapes: w {rows}×{cols}, u {}×{}, v {}×{}",
            u.nrows(),
            u.ncols(),
            v.nrows(),
            v.ncols()
        );
    }
    if let Some((x, out)) = &product {
        assert_product_shapes(rows, cols, x, out);
    }
    if rows == 0 {
        return;
    }
    let block = row_block_len::<T>(rows, cols);
    let update = update.map(|(alpha, u, v)| {
        let u = MatRef::from_column_major_slice(u.as_slice(), rows, u.ncols());
        let v = MatRef::from_column_major_slice(v.as_slice(), cols, v.ncols());
        (alpha, u, v.transpose())
    });
    let (x, out) = match product {
        Some((x, out)) => {
            let n = x.ncols();
            (
                Some(MatRef::from_column_major_slice(x.as_slice(), cols, n)),
                Some(MatMut::from_column_major_slice_mut(out.as_mut_slice(), rows, n)),
            )
        }
        None => (None, None),
    };
    let work_size = rows * cols * (x.map_or(0, |x| x.ncols()) + update.map_or(0, |(_, u, _)| u.ncols()));
    // The partition depends on the shape only; whether the blocks then run in parallel does
    // not change the numbers.
    let large = work_size >= PARALLEL_MIN_WORK;
    let mut w = MatMut::from_column_major_slice_mut(w.as_mut_slice(), rows, cols);
    if block >= rows && large {
        // Too few rows to share (an output layer): the update is shared by blocks of columns
        // of `w`, then the product by blocks of columns of `out`.
        use rayon::prelude::*;
        if let Some((alpha, u, v_t)) = update {
            column_blocks(w.rb_mut())
                .into_par_iter()
                .zip(column_blocks_ref(v_t))
                .for_each(|(w_block, v_t_block)| {
                    faer::linalg::matmul::matmul(w_block, Accum::Add, u, v_t_block, alpha, Par::Seq);
                });
        }
        if let (Some(x), Some(mut out)) = (x, out) {
            if accumulate == Accum::Replace {
                out.fill(T::zero());
            }
            multiply_by_column_blocks(w.rb(), x, out);
        }
        return;
    }
    let w_blocks = split_blocks(w, rows, block, |m, len| m.split_at_row_mut(len));
    let count = w_blocks.len();
    let out_blocks = optional_blocks(
        out.map(|o| split_blocks(o, rows, block, |m, len| m.split_at_row_mut(len))),
        count,
    );
    let u_blocks = optional_blocks(
        update.map(|(_, u, _)| split_blocks(u, rows, block, |m, len| m.split_at_row(len))),
        count,
    );
    let blocks: Vec<_> = w_blocks
        .into_iter()
        .zip(out_blocks)
        .zip(u_blocks)
        .map(|((w, out), u)| (w, out, u))
        .collect();
    let work =
        |(mut w_block, out_block, u_block): (MatMut<'_, T>, Option<MatMut<'_, T>>, Option<MatRef<'_, T>>)| {
            if let (Some((alpha, _, v_t)), Some(u_block)) = (update, u_block) {
                faer::linalg::matmul::matmul(w_block.rb_mut(), Accum::Add, u_block, v_t, alpha, Par::Seq);
            }
            if let (Some(x), Some(out_block)) = (x, out_block) {
                faer::linalg::matmul::matmul(out_block, accumulate, w_block.rb(), x, T::one(), Par::Seq);
            }
        };
    for_each_block(blocks, large, sharing, work);
}

/// `out += w x` on all threads, by the same blocks as the product of
/// [`update_then_multiply_by_row_blocks`] (so with the same numbers on any number of threads).
///
/// # Panics
/// If the shapes do not agree.
pub fn multiply_by_blocks<T: Real>(w: &DMatrix<T>, x: &DMatrix<T>, out: &mut DMatrix<T>) {
    let (rows, cols) = w.shape();
    let n = x.ncols();
    assert_product_shapes(rows, cols, x, out);
    if rows == 0 {
        return;
    }
    let w = MatRef::from_column_major_slice(w.as_slice(), rows, cols);
    let x = MatRef::from_column_major_slice(x.as_slice(), cols, n);
    let out = MatMut::from_column_major_slice_mut(out.as_mut_slice(), rows, n);
    let block = row_block_len::<T>(rows, cols);
    let large = rows * cols * n >= PARALLEL_MIN_WORK;
    if block >= rows && large {
        multiply_by_column_blocks(w, x, out);
        return;
    }
    let blocks: Vec<_> = split_blocks(w, rows, block, |m, len| m.split_at_row(len))
        .into_iter()
        .zip(split_blocks(out, rows, block, |m, len| m.split_at_row_mut(len)))
        .collect();
    let work = |(w_block, out_block): (MatRef<'_, T>, MatMut<'_, T>)| {
        faer::linalg::matmul::matmul(out_block, Accum::Add, w_block, x, T::one(), Par::Seq);
    };
    for_each_block(blocks, large, RowSharing::Balanced, work);
}

fn assert_product_shapes<T: Real>(rows: usize, cols: usize, x: &DMatrix<T>, out: &DMatrix<T>) {
    assert!(
        x.nrows() == cols && out.nrows() == rows && out.ncols() == x.ncols(),
        "product shapes: w {rows}×{cols}, x {}×{}, out {}×{}",
        x.nrows(),
        x.ncols(),
        out.nrows(),
        out.ncols()
    );
}

/// `out += w x` by blocks of columns of `out`, in parallel (for `w` with few rows).
fn multiply_by_column_blocks<T: Real>(w: MatRef<'_, T>, x: MatRef<'_, T>, out: MatMut<'_, T>) {
    use rayon::prelude::*;
    column_blocks(out)
        .into_par_iter()
        .zip(column_blocks_ref(x))
        .for_each(|(out_block, x_block)| {
            faer::linalg::matmul::matmul(out_block, Accum::Add, w, x_block, T::one(), Par::Seq);
        });
}

/// Column blocks of short matrices in [`update_then_multiply_by_row_blocks`]: a fixed count,
/// so that the partition does not depend on the number of threads.
const COLUMN_BLOCKS: usize = 4;

fn column_blocks<T: Real>(m: MatMut<'_, T>) -> Vec<MatMut<'_, T>> {
    let (total, width) = (m.ncols(), m.ncols().div_ceil(COLUMN_BLOCKS));
    split_blocks(m, total, width, |m, len| m.split_at_col_mut(len))
}

fn column_blocks_ref<T: Real>(m: MatRef<'_, T>) -> Vec<MatRef<'_, T>> {
    let (total, width) = (m.ncols(), m.ncols().div_ceil(COLUMN_BLOCKS));
    split_blocks(m, total, width, |m, len| m.split_at_col(len))
}

/// `m` cut by `split` into consecutive blocks of `width` (the last shorter) along a side of
/// length `total`.
fn split_blocks<M>(mut m: M, total: usize, width: usize, split: impl Fn(M, usize) -> (M, M)) -> Vec<M> {
    let width = width.max(1);
    let mut blocks = Vec::with_capacity(total.div_ceil(width));
    let mut left = total;
    while left > 0 {
        let len = width.min(left);
        let (head, rest) = split(m, len);
        blocks.push(head);
        m = rest;
        left -= len;
    }
    blocks
}

/// One `Some` block per block, or `count` times `None`.
fn optional_blocks<M>(blocks: Option<Vec<M>>, count: usize) -> Vec<Option<M>> {
    match blocks {
        Some(blocks) => blocks.into_iter().map(Some).collect(),
        None => (0..count).map(|_| None).collect(),
    }
}

/// How the row blocks of a product are shared among threads.
#[derive(Debug, Clone, Copy)]
enum RowSharing {
    /// Each thread keeps its run of blocks from call to call while it keeps pace
    /// ([`for_each_fixed_block`](crate::kernels::for_each_fixed_block)): for the products a
    /// per-sample lookahead announces, whose rows the chained passes then read in one part
    /// per thread (rayon's splitting cost that step 7–9 % on two cores, 2026-12-01).
    Kept,
    /// Rayon's splitting, which balances best: for batched products, read next by columns
    /// (an MLP's or a convnet's; keeping rows cost the convnet's SGD step 8–14 %, 3 pairs).
    Balanced,
}

/// Runs `work` on every block: in parallel when `large` and there are threads to share,
/// otherwise in order (the same numbers either way: each block is computed alone).
fn for_each_block<B: Send>(blocks: Vec<B>, large: bool, sharing: RowSharing, work: impl Fn(B) + Send + Sync) {
    if blocks.len() > 1 && large && rayon::current_num_threads() > 1 {
        match sharing {
            RowSharing::Kept => crate::kernels::for_each_fixed_block(blocks, work),
            RowSharing::Balanced => {
                use rayon::prelude::*;
                blocks.into_par_iter().for_each(work);
            }
        }
    } else {
        blocks.into_iter().for_each(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{on_threads, uniform_matrix as matrix};
    use proptest::prelude::*;

    fn operand<'a>(m: &'a DMatrix<f64>, transposed: bool) -> Operand<'a, f64> {
        if transposed {
            Operand::transposed(m)
        } else {
            Operand::plain(m)
        }
    }

    proptest! {
        // Against nalgebra's independent product: 1e-13 (f64) and 2e-6 (f32) per unit of the
        // inner dimension, entries being in [-0.5, 0.5].
        #[test]
        fn matches_nalgebra(m in 1usize..90, n in 1usize..90, k in 0usize..90, lt: bool, rt: bool, accumulate: bool, seed in 0u64..1000) {
            let a = if lt { matrix(k, m, seed) } else { matrix(m, k, seed) };
            let b = if rt { matrix(n, k, seed + 1) } else { matrix(k, n, seed + 1) };
            let c0 = matrix(m, n, seed + 2);
            let a_plain = if lt { a.transpose() } else { a.clone() };
            let b_plain = if rt { b.transpose() } else { b.clone() };
            let expected = &a_plain * &b_plain * 0.75 + if accumulate { c0.clone() } else { DMatrix::zeros(m, n) };
            let mut c = c0.clone();
            gemm(&mut c, accumulate, 0.75, operand(&a, lt), operand(&b, rt));
            prop_assert!((&c - &expected).amax() <= 1e-13 * (k as f64 + 1.0));

            let cast = |x: &DMatrix<f64>| x.map(|v| v as f32);
            let (a32, b32) = (cast(&a), cast(&b));
            let mut c32 = cast(&c0);
            let op32 = |x, t| if t { Operand::transposed(x) } else { Operand::plain(x) };
            gemm(&mut c32, accumulate, 0.75f32, op32(&a32, lt), op32(&b32, rt));
            prop_assert!((c32.map(f64::from) - &expected).amax() <= 2e-6 * (k as f64 + 1.0));
        }
    }

    #[test]
    fn same_numbers_on_any_thread_count() {
        let (a, b) = (matrix(700, 300, 1), matrix(300, 200, 2));
        let a_transposed = a.transpose();
        let run = |threads: usize| {
            on_threads(threads, || {
                let mut c = matrix(700, 200, 3);
                gemm(&mut c, true, -1.5, Operand::plain(&a), Operand::plain(&b));
                gemm(
                    &mut c,
                    true,
                    0.5,
                    Operand::transposed(&a_transposed),
                    Operand::plain(&b),
                );
                c
            })
        };
        assert_eq!(run(1), run(2));
    }

    proptest! {
        // Update then product by row blocks against nalgebra: the updated weights to 1e-13
        // per unit of the update's rank and the product to 1e-13 per unit of the inner
        // dimension (f64), entries in [-0.5, 0.5].
        #[test]
        fn row_blocks_match_nalgebra(rows in 1usize..200, cols in 1usize..120, r in 0usize..30, n in 0usize..30, seed in 0u64..1000) {
            let w0 = matrix(rows, cols, seed);
            let (u, v) = (matrix(rows, r, seed + 1), matrix(cols, r, seed + 2));
            let (x, out0) = (matrix(cols, n, seed + 3), matrix(rows, n, seed + 4));
            let updated = &w0 + &u * v.transpose() * -0.25;
            let product = &out0 + &updated * &x;
            let mut w = w0.clone();
            let mut out = out0.clone();
            update_then_multiply_by_row_blocks(&mut w, Some((-0.25, &u, &v)), Some((&x, &mut out)));
            prop_assert!((&w - &updated).amax() <= 1e-13 * (r as f64 + 1.0));
            prop_assert!((&out - &product).amax() <= 1e-13 * (cols as f64 + 1.0));
        }
    }

    #[test]
    fn row_blocks_give_the_same_numbers_alone_or_fused_and_on_any_thread_count() {
        // 3000 × 400 f64 weights: 9.6 MB, so 24 blocks of 125 rows, rounded up to whole
        // register tiles (128 rows with AVX-512, 132 with AVX2).
        let (rows, cols) = (3000, 400);
        let align = row_block_align::<f64>();
        assert!(
            align == 16 || align == 12 || !cfg!(target_arch = "x86_64"),
            "{align}"
        );
        assert_eq!(row_block_len::<f64>(rows, cols), 125usize.next_multiple_of(align));
        let (w0, u, v, x) = (
            matrix(rows, cols, 1),
            matrix(rows, 20, 2),
            matrix(cols, 20, 3),
            matrix(cols, 30, 4),
        );
        let fused = |threads: usize| {
            on_threads(threads, || {
                let mut w = w0.clone();
                let mut out = DMatrix::zeros(rows, 30);
                update_then_multiply_by_row_blocks(&mut w, Some((0.5, &u, &v)), Some((&x, &mut out)));
                (w, out)
            })
        };
        let one = fused(1);
        assert_eq!(fused(2), one);
        assert_eq!(fused(3), one);
        // The update applied alone (a flush), then the product alone.
        let separate = on_threads(2, || {
            let mut w = w0.clone();
            let mut out = DMatrix::zeros(rows, 30);
            update_then_multiply_by_row_blocks(&mut w, Some((0.5, &u, &v)), None);
            update_then_multiply_by_row_blocks(&mut w, None, Some((&x, &mut out)));
            (w, out)
        });
        assert_eq!(separate, one);
    }

    #[test]
    fn short_weights_are_shared_by_columns_with_the_same_numbers_on_any_thread_count() {
        // An output layer: 10 × 3000 weights, rank-100 update, 100 samples (above the size
        // for sharing, with fewer rows than one row block).
        let (rows, cols) = (10, 3000);
        let (w0, u, v, x) = (
            matrix(rows, cols, 5),
            matrix(rows, 100, 6),
            matrix(cols, 100, 7),
            matrix(cols, 100, 8),
        );
        let expected_w = &w0 + &u * v.transpose() * 0.5;
        let expected_out = &expected_w * &x;
        let run = |threads: usize| {
            on_threads(threads, || {
                let mut w = w0.clone();
                let mut out = DMatrix::zeros(rows, 100);
                update_then_multiply_by_row_blocks(&mut w, Some((0.5, &u, &v)), Some((&x, &mut out)));
                let mut product = DMatrix::zeros(rows, 100);
                multiply_by_blocks(&w, &x, &mut product);
                (w, out, product)
            })
        };
        let one = run(1);
        assert!((&one.0 - &expected_w).amax() < 1e-12);
        assert!((&one.1 - &expected_out).amax() < 1e-11);
        assert_eq!(one.1, one.2, "the product alone has the fused product's numbers");
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
    }

    proptest! {
        // The product alone against nalgebra (1e-13 per unit of the inner dimension, f64) and
        // against the product of the fused kernel, bit for bit.
        #[test]
        fn blocked_product_matches_nalgebra_and_the_fused_product(rows in 1usize..400, cols in 1usize..300, n in 1usize..60, seed in 0u64..1000) {
            let (w, x) = (matrix(rows, cols, seed), matrix(cols, n, seed + 1));
            let mut out = DMatrix::zeros(rows, n);
            multiply_by_blocks(&w, &x, &mut out);
            prop_assert!((&out - &w * &x).amax() <= 1e-13 * (cols as f64 + 1.0));
            let mut fused = DMatrix::zeros(rows, n);
            update_then_multiply_by_row_blocks(&mut w.clone(), None, Some((&x, &mut fused)));
            prop_assert_eq!(out, fused);
        }
    }
}
