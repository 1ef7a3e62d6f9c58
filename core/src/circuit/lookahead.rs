//! Per-sample training with the inputs known ahead.
//!
//! A per-sample step through a wide projection out of the input population (the paper's
//! 100-10000-10 linear network: `W₁` is 8 MB of `f64`) is bound by memory: the rule's rank-one
//! update and the next product each stream the whole matrix, one sample at a time. But the
//! inputs do not depend on the weights, so a caller that draws the next `n` samples first can
//! announce them ([`crate::Engine::look_ahead`]). The projection then
//!
//! 1. applies what it has queued and computes `P = W X` for all `n` announced inputs in one
//!    pass over the weights (a GEMM: compute-bound instead of memory-bound);
//! 2. at step `t` forms the product from `P` and the rank-one updates queued since,
//!    `W_t x_t = P[:, t] + Σ_{k<t} u_k (v_kᵀ x_t)`;
//! 3. queues each step's update `u_t v_tᵀ` instead of applying it (the rule's scale and the
//!    sample's weight on `v_t`, so that `u_t` can be the postsynaptic noise as drawn: a chained
//!    pass copies it into the queue while in cache), and every [`FOLD_EVERY`] steps adds the
//!    latest ones to the products still to come in one GEMM (`P[:, t..] += U (Vᵀ X[:, t..])`),
//!    so that a step's own sum has at most that many terms.
//!
//! Anyone who reads or writes the weights (a rule asking for them, a post-update step, a
//! recording) flushes the queue first, which ends the lookahead; the products are then
//! computed the ordinary way. So the numbers never depend on who looks ahead, only the
//! rounding does: `P[:, t] + Σ u_k (v_kᵀ x)` and `(W + Σ u_k v_kᵀ) x` differ in the last bits.
//! The blocks of rows of the GEMMs are a fixed partition and each row's correction is summed
//! in the order of the queue, so the results do not depend on the number of threads.

use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::DMatrix;
use rayon::prelude::*;

use super::Projection;
use crate::Real;
use crate::gemm::{update_then_assign_product_by_row_blocks, update_then_multiply_by_row_blocks};
use crate::kernels::copy_entries;

/// How many steps a scenario's per-sample training takes ahead at most. Each announced step
/// costs `rows × t` reads for its correction, so the benefit of a longer block (the GEMM's
/// efficiency) is traded against the correction's cost; 32 was the fastest of 8–64 for the
/// 100-10000-10 network.
pub const LOOKAHEAD_STEPS: usize = 32;

/// Queued updates are folded into the products of the inputs still to come every this many
/// steps, so that a step's own correction goes through at most this many of them.
const FOLD_EVERY: usize = 8;

/// Rows per block of a fold's GEMM (a fixed partition, shared among threads).
const FOLD_BLOCK_ROWS: usize = 1024;

/// The announced inputs, their products through the weights as they were when announced, and
/// the updates queued since.
#[derive(Debug, Clone)]
pub(crate) struct Lookahead<T: Real> {
    active: bool,
    /// A lookahead was ended before its inputs were used (a rule or a step reading the
    /// weights every step): announcing more would only cost a product each time.
    declined: bool,
    /// `X`, `pre_size × n`.
    inputs: DMatrix<T>,
    /// `W X`, `post_size × n`, with `W` the weights when `X` was announced.
    products: DMatrix<T>,
    /// The next announced input.
    next: usize,
    /// Queued `u_k`, `post_size × n`.
    post: DMatrix<T>,
    /// Queued `v_k` (the rule's scale and the sample's weight included), `pre_size × n`.
    pre: DMatrix<T>,
    queued: usize,
    /// Column `queued` of `post` holds this step's noise of the postsynaptic population,
    /// copied there by a chained pass: queueing that noise as `u` needs no copy.
    mirrored: bool,
    /// Queued updates already added to the products of the inputs still to come.
    folded: usize,
    coefficients: Vec<T>,
    /// The weights with the queued updates added, for readers, and how many updates it has.
    view: DMatrix<T>,
    view_of: Option<usize>,
}

impl<T: Real> Lookahead<T> {
    pub(crate) fn new() -> Self {
        Self {
            active: false,
            declined: false,
            inputs: DMatrix::zeros(0, 0),
            products: DMatrix::zeros(0, 0),
            next: 0,
            post: DMatrix::zeros(0, 0),
            pre: DMatrix::zeros(0, 0),
            queued: 0,
            mirrored: false,
            folded: 0,
            coefficients: Vec::new(),
            view: DMatrix::zeros(0, 0),
            view_of: None,
        }
    }

    /// Adds the updates queued since the last fold to the products of the inputs still to
    /// come, `P[:, next..] += U_f (V_fᵀ X[:, next..])`: one GEMM in place of a correction
    /// through the same `u_k` at every remaining step.
    fn fold(&mut self) {
        let (rows, cols) = (self.post.nrows(), self.pre.nrows());
        let (from, to, next, steps) = (self.folded, self.queued, self.next, self.inputs.ncols());
        let (m, remaining) = (to - from, steps - next);
        // C = V_fᵀ X_r (m × remaining): small.
        let v = &self.pre.as_slice()[from * cols..to * cols];
        let x = &self.inputs.as_slice()[next * cols..];
        let c: Vec<T> = x
            .chunks_exact(cols)
            .flat_map(|x| v.chunks_exact(cols).map(move |v| dot(v, x)))
            .collect();
        let c = MatRef::from_column_major_slice(c.as_slice(), m, remaining);
        let u = MatRef::from_column_major_slice(&self.post.as_slice()[from * rows..to * rows], rows, m);
        let products = MatMut::from_column_major_slice_mut(
            &mut self.products.as_mut_slice()[next * rows..],
            rows,
            remaining,
        );
        add_product_by_row_blocks(products, u, c);
        self.folded = to;
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// The product prepared by [`Projection::begin_product_ahead`], and the column of the
    /// queue the step's update will take if there is room (`None` if not), for a chained pass
    /// to copy the postsynaptic noise into while drawing it; it then calls
    /// [`Projection::mark_noise_queued_ahead`].
    pub(crate) fn product_with_slot(&mut self) -> (ProductAhead<'_, T>, Option<&mut [T]>) {
        let ahead = self;
        let rows = ahead.post.nrows();
        let (t, folded, queued) = (ahead.next, ahead.folded, ahead.queued);
        let (read, rest) = ahead.post.as_mut_slice().split_at_mut(queued * rows);
        let slot = (rest.len() >= rows).then(|| &mut rest[..rows]);
        let product = ProductAhead {
            product: &ahead.products.as_slice()[t * rows..(t + 1) * rows],
            post: &read[folded * rows..],
            coefficients: &ahead.coefficients,
            rows,
        };
        (product, slot)
    }

    /// The weights with the queued updates added, `W + U Vᵀ`, computed into a buffer of its
    /// own (kept until the next update is queued) and leaving the weights as they are.
    pub(crate) fn current_weights(&mut self, weights: &DMatrix<T>) -> &DMatrix<T> {
        if self.view_of != Some(self.queued) {
            crate::kernels::copy_into(&mut self.view, weights);
            let (rows, cols, queued) = (self.post.nrows(), self.pre.nrows(), self.queued);
            if queued > 0 {
                let u = MatRef::from_column_major_slice(&self.post.as_slice()[..queued * rows], rows, queued);
                let v = MatRef::from_column_major_slice(&self.pre.as_slice()[..queued * cols], cols, queued);
                let view = MatMut::from_column_major_slice_mut(self.view.as_mut_slice(), rows, cols);
                add_product_by_row_blocks(view, u, v.transpose());
            }
            self.view_of = Some(queued);
        }
        &self.view
    }

    /// The queued updates as one `1 · U Vᵀ` (`None` if there are none); columns beyond those
    /// queued are zeroed first, so that they add nothing (zero times a stale non-finite entry
    /// would not be zero).
    fn queue(&mut self) -> Option<(T, &DMatrix<T>, &DMatrix<T>)> {
        if !self.active || self.queued == 0 {
            return None;
        }
        let (rows, cols) = (self.post.nrows(), self.pre.nrows());
        self.mirrored = false;
        self.post.as_mut_slice()[self.queued * rows..].fill(T::zero());
        self.pre.as_mut_slice()[self.queued * cols..].fill(T::zero());
        Some((T::one(), &self.post, &self.pre))
    }
}

/// The product of the next announced input through the weights, `P[:, t] + Σ_k c_k u_k`
/// (the announced product and the queued updates' contributions), row by row.
pub(crate) struct ProductAhead<'a, T> {
    product: &'a [T],
    post: &'a [T],
    coefficients: &'a [T],
    rows: usize,
}

impl<T: Real> ProductAhead<'_, T> {
    /// `out += (W x)[r0..r0 + out.len()]`; each row is summed alone, in the queue's order,
    /// so any partition of the rows gives the same numbers.
    pub(crate) fn add_rows(&self, r0: usize, out: &mut [T]) {
        let len = out.len();
        out.iter_mut()
            .zip(&self.product[r0..r0 + len])
            .for_each(|(o, &p)| *o += p);
        for (k, &c) in self.coefficients.iter().enumerate() {
            let u = &self.post[k * self.rows + r0..k * self.rows + r0 + len];
            out.iter_mut().zip(u).for_each(|(o, &u)| *o += c * u);
        }
    }
}

fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).map(|(&a, &b)| a * b).sum()
}

/// `out += u c` on fixed blocks of rows shared among threads, so that the numbers do not
/// depend on the thread count.
fn add_product_by_row_blocks<T: Real>(out: MatMut<'_, T>, u: MatRef<'_, T>, c: MatRef<'_, T>) {
    let mut blocks = Vec::new();
    let (mut u_rest, mut out_rest) = (u, out);
    while u_rest.nrows() > FOLD_BLOCK_ROWS {
        let (u_top, u_bottom) = u_rest.split_at_row(FOLD_BLOCK_ROWS);
        let (out_top, out_bottom) = out_rest.split_at_row_mut(FOLD_BLOCK_ROWS);
        blocks.push((u_top, out_top));
        (u_rest, out_rest) = (u_bottom, out_bottom);
    }
    blocks.push((u_rest, out_rest));
    crate::kernels::for_each_fixed_block(blocks, |(u, out)| {
        faer::linalg::matmul::matmul(out, Accum::Add, u, c, T::one(), Par::Seq);
    });
}

impl<T: Real> Projection<T> {
    /// Announces the inputs of the next `inputs.ncols()` per-sample steps: applies what is
    /// pending or queued and computes their products in one pass over the weights.
    pub(crate) fn look_ahead(&mut self, inputs: &DMatrix<T>) {
        debug_assert!(self.sparse.is_none(), "only dense projections look ahead");
        if self.lookahead.declined {
            return;
        }
        self.flush_pending();
        let (rows, cols) = self.weights.shape();
        assert_eq!(
            inputs.nrows(),
            cols,
            "announced inputs have one row per presynaptic unit"
        );
        let steps = inputs.ncols();
        let ahead = &mut self.lookahead;
        let mut products = std::mem::replace(&mut ahead.products, DMatrix::zeros(0, 0));
        if products.shape() != (rows, steps) {
            products = DMatrix::zeros(rows, steps);
        }
        let update = ahead.queue();
        update_then_assign_product_by_row_blocks(&mut self.weights, update, (inputs, &mut products));
        ahead.products = products;
        crate::kernels::copy_into(&mut ahead.inputs, inputs);
        if ahead.post.shape() != (rows, steps) {
            ahead.post = DMatrix::zeros(rows, steps);
            ahead.pre = DMatrix::zeros(cols, steps);
        }
        ahead.next = 0;
        ahead.queued = 0;
        ahead.mirrored = false;
        ahead.folded = 0;
        ahead.view_of = None;
        ahead.active = true;
    }

    /// Whether the next product through these weights can be formed from the announced
    /// products: a lookahead is running and `input` (one column) is the next announced input.
    pub(crate) fn takes_ahead(&self, input: &DMatrix<T>) -> bool {
        let ahead = &self.lookahead;
        ahead.active
            && !self.pending_active
            && input.ncols() == 1
            && ahead.next < ahead.inputs.ncols()
            && ahead.inputs.column(ahead.next).as_slice() == input.as_slice()
    }

    /// `out += W x` for the next announced input `x` (see [`Projection::takes_ahead`]):
    /// its announced product plus the queued updates' contributions.
    pub(crate) fn product_ahead(&mut self, out: &mut DMatrix<T>) {
        let rows = self.weights.nrows();
        let queued = self.lookahead.queued - self.lookahead.folded;
        self.begin_product_ahead();
        let product = self.next_product_ahead();
        let out = &mut out.as_mut_slice()[..rows];
        // Each row is summed alone, so the partition may follow the thread count.
        let threads = rayon::current_num_threads();
        if threads > 1 && rows * (queued + 1) >= crate::kernels::SPLIT_MIN_ENTRIES {
            let block = rows.div_ceil(threads).next_multiple_of(8);
            out.par_chunks_mut(block)
                .enumerate()
                .for_each(|(b, part)| product.add_rows(b * block, part));
        } else {
            product.add_rows(0, out);
        }
        self.end_product_ahead();
    }

    /// Prepares the next announced input's product (the queued updates' coefficients), to be
    /// formed row by row through [`Projection::next_product_ahead`] on any threads;
    /// [`Projection::end_product_ahead`] then moves on to the next input.
    pub(crate) fn begin_product_ahead(&mut self) {
        let ahead = &mut self.lookahead;
        let cols = ahead.inputs.nrows();
        let t = ahead.next;
        let x = &ahead.inputs.as_slice()[t * cols..(t + 1) * cols];
        let (queued, folded) = (ahead.queued, ahead.folded);
        ahead.coefficients.clear();
        ahead.coefficients.extend(
            ahead.pre.as_slice()[folded * cols..queued * cols]
                .chunks_exact(cols)
                .map(|v| dot(v, x)),
        );
    }

    /// The product prepared by [`Projection::begin_product_ahead`].
    pub(crate) fn next_product_ahead(&mut self) -> ProductAhead<'_, T> {
        self.lookahead.product_with_slot().0
    }

    /// Says that the slot of [`Lookahead::product_with_slot`] now holds the noise of the
    /// postsynaptic population that the step's rule will see.
    pub(crate) fn mark_noise_queued_ahead(&mut self) {
        self.lookahead.mirrored = true;
    }

    /// Forgets what chained passes copied for the rules (the step they copied it for is over).
    pub(crate) fn forget_copies(&mut self) {
        self.lookahead.mirrored = false;
        self.pre_mirrored = false;
    }

    /// Moves on to the next announced input after [`Projection::begin_product_ahead`].
    pub(crate) fn end_product_ahead(&mut self) {
        self.lookahead.next += 1;
    }

    /// Queues `W += u ((scale c) v)ᵀ` (one sample's update, `c` its weight) if a lookahead is
    /// running and has room; returns whether it did. With `post_is_noise` (`post` is the
    /// step's noise of the postsynaptic population) and the noise already in the queue
    /// ([`Projection::mark_noise_queued_ahead`]), `u` is not copied again.
    pub(crate) fn queue_ahead(
        &mut self,
        scale: T,
        post: &DMatrix<T>,
        sample_scale: Option<T>,
        pre: &DMatrix<T>,
        post_is_noise: bool,
    ) -> bool {
        let ahead = &mut self.lookahead;
        let mirrored = std::mem::take(&mut ahead.mirrored);
        if !ahead.active || ahead.queued >= ahead.post.ncols() || post.ncols() != 1 {
            return false;
        }
        let (k, rows, cols) = (ahead.queued, ahead.post.nrows(), ahead.pre.nrows());
        if !(post_is_noise && mirrored) {
            copy_entries(
                &mut ahead.post.as_mut_slice()[k * rows..(k + 1) * rows],
                post.as_slice(),
            );
        }
        let factor = sample_scale.map_or(scale, |c| scale * c);
        let v = &mut ahead.pre.as_mut_slice()[k * cols..(k + 1) * cols];
        v.iter_mut()
            .zip(pre.as_slice())
            .for_each(|(o, &x)| *o = factor * x);
        ahead.queued += 1;
        if ahead.queued - ahead.folded == FOLD_EVERY && ahead.next < ahead.inputs.ncols() {
            ahead.fold();
        }
        true
    }

    /// Applies the queued updates and ends the lookahead.
    pub(crate) fn end_lookahead(&mut self) {
        let ahead = &mut self.lookahead;
        if !ahead.active {
            return;
        }
        if let Some(update) = ahead.queue() {
            update_then_multiply_by_row_blocks(&mut self.weights, Some(update), None);
        }
        ahead.declined |= ahead.next < ahead.inputs.ncols();
        ahead.active = false;
        ahead.queued = 0;
        ahead.mirrored = false;
    }
}

/// Samples drawn ahead of the per-sample steps that train on them, so that their inputs can
/// be announced with [`crate::Engine::look_ahead`]; drawing in advance keeps the task's random
/// streams in the same order, so the samples are the ones the steps would have drawn.
#[derive(Debug)]
pub struct SamplesAhead<T: Real> {
    inputs: DMatrix<T>,
    targets: DMatrix<T>,
    count: usize,
    next: usize,
}

impl<T: Real> SamplesAhead<T> {
    /// Room for [`LOOKAHEAD_STEPS`] samples of these sizes.
    pub fn new(input_size: usize, output_size: usize) -> Self {
        Self {
            inputs: DMatrix::zeros(input_size, LOOKAHEAD_STEPS),
            targets: DMatrix::zeros(output_size, LOOKAHEAD_STEPS),
            count: 0,
            next: 0,
        }
    }

    /// Draws `count` (at most [`LOOKAHEAD_STEPS`]) samples, each with `draw(input, target)`
    /// into single-column buffers, and returns their inputs (`input_size × count`) to announce.
    pub fn draw(
        &mut self,
        count: usize,
        input: &mut DMatrix<T>,
        target: &mut DMatrix<T>,
        mut draw: impl FnMut(&mut DMatrix<T>, &mut DMatrix<T>),
    ) -> DMatrix<T> {
        assert!(
            count <= LOOKAHEAD_STEPS,
            "at most {LOOKAHEAD_STEPS} samples ahead"
        );
        for s in 0..count {
            draw(input, target);
            self.inputs.set_column(s, &input.column(0));
            self.targets.set_column(s, &target.column(0));
        }
        (self.count, self.next) = (count, 0);
        self.inputs.columns(0, count).into_owned()
    }

    /// Copies the next drawn sample into `input` and `target`; `false` when none is left.
    pub fn next_into(&mut self, input: &mut DMatrix<T>, target: &mut DMatrix<T>) -> bool {
        if self.next >= self.count {
            return false;
        }
        input.set_column(0, &self.inputs.column(self.next));
        target.set_column(0, &self.targets.column(self.next));
        self.next += 1;
        true
    }
}
