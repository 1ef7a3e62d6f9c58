//! Per-sample products through short, wide matrices (an output layer of up to
//! [`SHORT_MAX_ROWS`] units, such as the paper's 10 outputs of 10,000 hidden units).
//!
//! Column-major, such a matrix is a run of columns of only `R` entries, too short for vector
//! registers column by column. The sweeps here treat `P` consecutive columns as one row of
//! `L = P·R` lanes, `L` a multiple of 4, with the update's `u` repeated across the lanes and
//! each column's coefficients broadcast over its `R` lanes, so that every operation is on whole
//! vectors; each lane keeps its own partial sum, and the lanes of each row are added at the end.
//! Above [`SPLIT_MIN_ENTRIES`] entries the columns are cut into two fixed halves, one per thread
//! when there are two, whose sums are added in a fixed order: the numbers depend on the shape
//! only, never on the number of threads.

use nalgebra::DMatrix;

use super::SPLIT_MIN_ENTRIES;
use crate::Real;
use crate::circuit::PendingUpdate;

/// Most rows of a weight matrix that [`short_update_then_multiply`] handles.
pub const SHORT_MAX_ROWS: usize = 16;

/// `w += scale · u vᵀ` (a pending rank-one update, if any), then `out += w x`, for a short
/// matrix `w` and one column `x`, in one sweep over `w`.
pub fn short_update_then_multiply<T: Real>(
    w: &mut DMatrix<T>,
    pending: Option<&PendingUpdate<T>>,
    x: &[T],
    out: &mut [T],
) {
    let Some(p) = pending else {
        return short_multiply(w, x, out);
    };
    let update = Update {
        scale: p.scale,
        u: p.post_factors.as_slice(),
        v: p.pre_factors.as_slice(),
    };
    let rows = w.nrows();
    dispatch!(rows, sweep_update, w.as_mut_slice(), update, x, out)
}

/// `out += w x` for a short matrix `w` and one column `x`.
pub fn short_multiply<T: Real>(w: &DMatrix<T>, x: &[T], out: &mut [T]) {
    let rows = w.nrows();
    dispatch!(rows, sweep, w.as_slice(), x, out)
}

/// The rank-one update `scale · u vᵀ` applied on the way.
#[derive(Clone, Copy)]
struct Update<'a, T> {
    scale: T,
    u: &'a [T],
    v: &'a [T],
}

/// Calls `$kernel::<T, R, L, P>` for the number of rows `$rows` (`L = P·R`, a multiple of 4).
macro_rules! dispatch {
    ($rows:expr, $kernel:ident, $($arg:expr),*) => {
        match $rows {
            1 => $kernel::<T, 1, 4, 4>($($arg),*),
            2 => $kernel::<T, 2, 4, 2>($($arg),*),
            3 => $kernel::<T, 3, 12, 4>($($arg),*),
            4 => $kernel::<T, 4, 4, 1>($($arg),*),
            5 => $kernel::<T, 5, 20, 4>($($arg),*),
            6 => $kernel::<T, 6, 12, 2>($($arg),*),
            7 => $kernel::<T, 7, 28, 4>($($arg),*),
            8 => $kernel::<T, 8, 8, 1>($($arg),*),
            9 => $kernel::<T, 9, 36, 4>($($arg),*),
            10 => $kernel::<T, 10, 20, 2>($($arg),*),
            11 => $kernel::<T, 11, 44, 4>($($arg),*),
            12 => $kernel::<T, 12, 12, 1>($($arg),*),
            13 => $kernel::<T, 13, 52, 4>($($arg),*),
            14 => $kernel::<T, 14, 28, 2>($($arg),*),
            15 => $kernel::<T, 15, 60, 4>($($arg),*),
            16 => $kernel::<T, 16, 16, 1>($($arg),*),
            rows => unreachable!("{rows} rows is not a short matrix"),
        }
    };
}
use dispatch;

/// Where the columns are cut in two (a multiple of `P`), or `None` for one part.
fn halves<const R: usize, const P: usize>(cols: usize) -> Option<usize> {
    (R * cols >= SPLIT_MIN_ENTRIES).then(|| (cols / 2).next_multiple_of(P))
}

/// Where the sweeps of a short `rows × cols` matrix cut its columns in two, or `None` when
/// they take them in one part: a fixed cut that depends on the shape only. A caller that
/// computes the columns' inputs part by part ([`short_part_sums`]) uses the same cut, so that
/// its sums are the sweeps' sums bit for bit.
pub fn short_cut<T: Real>(rows: usize, cols: usize) -> Option<usize> {
    dispatch!(rows, cut_of, cols)
}

// `dispatch!` names `T` for every kernel; the cut does not depend on it.
#[allow(clippy::extra_unused_type_parameters)]
fn cut_of<T: Real, const R: usize, const L: usize, const P: usize>(cols: usize) -> Option<usize> {
    halves::<R, P>(cols)
}

/// One part's contribution to a short sweep: `w_part += scale · u v_partᵀ` when `update` is
/// `Some((scale, u, v_part))`, then `sums[i] = Σ_j w_part[i, j] x_part[j]` for each of the
/// `rows` rows, summed as the sweeps sum it. `w_part` holds whole columns of the matrix,
/// starting at `0` or at [`short_cut`]; adding the parts' sums to a product in the order of
/// the parts gives [`short_update_then_multiply`]'s numbers.
pub fn short_part_sums<T: Real>(
    w_part: &mut [T],
    rows: usize,
    update: Option<(T, &[T], &[T])>,
    x_part: &[T],
    sums: &mut [T],
) {
    match update {
        Some((scale, u, v)) => {
            let update = Update { scale, u, v };
            dispatch!(rows, part_update_sums, w_part, update, x_part, sums)
        }
        None => dispatch!(rows, part_sums, w_part, x_part, sums),
    }
}

fn part_update_sums<T: Real, const R: usize, const L: usize, const P: usize>(
    w: &mut [T],
    update: Update<'_, T>,
    x: &[T],
    sums: &mut [T],
) {
    sums[..R].fill(T::zero());
    add_lanes::<T, R, L>(&[lanes_update::<T, R, L, P>(w, update, x, 0)], sums);
}

fn part_sums<T: Real, const R: usize, const L: usize, const P: usize>(w: &[T], x: &[T], sums: &mut [T]) {
    sums[..R].fill(T::zero());
    add_lanes::<T, R, L>(&[lanes_product::<T, R, L, P>(w, x, 0)], sums);
}

/// Adds each row's lanes to `out`: first part's, then the second's.
fn add_lanes<T: Real, const R: usize, const L: usize>(parts: &[[T; L]], out: &mut [T]) {
    for lanes in parts {
        for (i, o) in out[..R].iter_mut().enumerate() {
            *o += lanes.iter().skip(i).step_by(R).copied().sum::<T>();
        }
    }
}

fn sweep_update<T: Real, const R: usize, const L: usize, const P: usize>(
    w: &mut [T],
    update: Update<'_, T>,
    x: &[T],
    out: &mut [T],
) {
    let cols = w.len() / R;
    match halves::<R, P>(cols) {
        Some(cut) => {
            let (first, second) = w.split_at_mut(cut * R);
            let (a, b) = rayon::join(
                || lanes_update::<T, R, L, P>(first, update, x, 0),
                || lanes_update::<T, R, L, P>(second, update, x, cut),
            );
            add_lanes::<T, R, L>(&[a, b], out);
        }
        None => add_lanes::<T, R, L>(&[lanes_update::<T, R, L, P>(w, update, x, 0)], out),
    }
}

fn sweep<T: Real, const R: usize, const L: usize, const P: usize>(w: &[T], x: &[T], out: &mut [T]) {
    let cols = w.len() / R;
    match halves::<R, P>(cols) {
        Some(cut) => {
            let (first, second) = w.split_at(cut * R);
            let (a, b) = rayon::join(
                || lanes_product::<T, R, L, P>(first, x, 0),
                || lanes_product::<T, R, L, P>(second, x, cut),
            );
            add_lanes::<T, R, L>(&[a, b], out);
        }
        None => add_lanes::<T, R, L>(&[lanes_product::<T, R, L, P>(w, x, 0)], out),
    }
}

/// Updates the columns of `w` (the first is column `first` of the matrix) and returns the
/// lanes' partial sums of `w x`.
fn lanes_update<T: Real, const R: usize, const L: usize, const P: usize>(
    w: &mut [T],
    update: Update<'_, T>,
    x: &[T],
    first: usize,
) -> [T; L] {
    let u: [T; L] = std::array::from_fn(|l| update.u[l % R]);
    let coefficient = |j: usize| update.scale * update.v[j];
    let (mut sums, mut a, mut xs) = ([T::zero(); L], [T::zero(); L], [T::zero(); L]);
    let mut j = first;
    let mut groups = w.chunks_exact_mut(L);
    for group in groups.by_ref() {
        for c in 0..P {
            a[c * R..(c + 1) * R].fill(coefficient(j + c));
            xs[c * R..(c + 1) * R].fill(x[j + c]);
        }
        for l in 0..L {
            let updated = group[l] + a[l] * u[l];
            group[l] = updated;
            sums[l] += xs[l] * updated;
        }
        j += P;
    }
    for column in groups.into_remainder().chunks_exact_mut(R) {
        let (a, xv) = (coefficient(j), x[j]);
        for i in 0..R {
            let updated = column[i] + a * u[i];
            column[i] = updated;
            sums[i] += xv * updated;
        }
        j += 1;
    }
    sums
}

/// The lanes' partial sums of `w x` over the columns of `w` (the first is column `first`).
fn lanes_product<T: Real, const R: usize, const L: usize, const P: usize>(
    w: &[T],
    x: &[T],
    first: usize,
) -> [T; L] {
    let (mut sums, mut xs) = ([T::zero(); L], [T::zero(); L]);
    let mut j = first;
    let mut groups = w.chunks_exact(L);
    for group in groups.by_ref() {
        for c in 0..P {
            xs[c * R..(c + 1) * R].fill(x[j + c]);
        }
        for l in 0..L {
            sums[l] += xs[l] * group[l];
        }
        j += P;
    }
    for column in groups.remainder().chunks_exact(R) {
        let xv = x[j];
        for i in 0..R {
            sums[i] += xv * column[i];
        }
        j += 1;
    }
    sums
}
