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
}
