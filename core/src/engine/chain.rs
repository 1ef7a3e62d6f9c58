//! One sample through a wide hidden population and a short output layer, in one parallel
//! region per pass.
//!
//! The paper's per-sample step (100-10000-10) spends most of what is not its lookahead GEMM
//! on vectors of the 10,000 hidden units: the hidden input formed from the announced product,
//! the activation, the sweep through the 10 × 10,000 output weights, and on the perturbed pass
//! the difference and the same sweep again. Each was a parallel region of its own, a few µs of
//! work each, and on two cores every region costs about 2 µs to hand over and join (measured
//! on an AMD EPYC: a parallel add of 10,000 `f64` took 3.5–4.2 µs against 3.6 µs on one
//! thread). Here the hidden units are cut where the output sweep cuts its columns
//! ([`short_cut`]), and each part's thread carries its units from the hidden input through
//! the output sweep's partial sums; the parts' sums are added to the output in the order of
//! the parts at the output population, as the sweep adds them. Every number is the one the
//! population-by-population passes compute, on any number of threads.

use nalgebra::DMatrix;

use super::Workspace;
use crate::circuit::lookahead::ProductAhead;
use crate::circuit::{CircuitBlueprint, Geometry, Projection};
use crate::kernels::{SHORT_MAX_ROWS, short_cut, short_part_sums};
use crate::noise::fill_gaussian_part;
use crate::{Activation, Real};

/// An output sweep's partial sums, per part of the hidden units, for a projection whose
/// product was formed early (see the module documentation).
pub(super) type PartSums<T> = [[T; SHORT_MAX_ROWS]; 2];

/// Adds a projection's early partial sums to `out`, part by part (the sweep's order).
pub(super) fn add_part_sums<T: Real>(sums: &PartSums<T>, out: &mut [T]) {
    for part in sums {
        out.iter_mut().zip(part).for_each(|(o, &s)| *o += s);
    }
}

/// Runs `work` on the two parts, on two threads when the pool has them; the same numbers
/// either way (each part is computed alone).
fn on_parts<P: Send, R: Send>(first: P, second: P, work: impl Fn(P) -> R + Sync) -> [R; 2] {
    if rayon::current_num_threads() > 1 {
        let (a, b) = rayon::join(|| work(first), || work(second));
        [a, b]
    } else {
        [work(first), work(second)]
    }
}

/// The projections into and out of population `p` (`(into, out_of)`) when a batch of one
/// can be carried through `p` and the next layer in one region: `p` has one dense projection
/// in and one out, acts entry by entry, and the projection out is a short matrix whose sweep
/// is cut in two.
pub(super) fn chain_through<T: Real>(
    bp: &CircuitBlueprint,
    projections: &[Projection<T>],
    p: usize,
    batch: usize,
) -> Option<(usize, usize)> {
    let (&[into], &[out_of]) = (bp.incoming(p), bp.outgoing(p)) else {
        return None;
    };
    let dense = |q: usize| matches!(bp.projections()[q].geometry, Geometry::Dense);
    let out = &projections[out_of];
    let (rows, cols) = out.weights.shape();
    let chained = batch == 1
        && bp.populations()[p].activation.is_elementwise()
        && dense(into)
        && dense(out_of)
        && (1..=SHORT_MAX_ROWS).contains(&rows)
        && short_cut::<T>(rows, cols).is_some()
        && !out.lookahead.is_active()
        && (!out.pending_active || out.pending.post_factors.ncols() == 1);
    chained.then_some((into, out_of))
}

/// Makes `m` a column of `size` entries, keeping its storage (and contents) when it is one.
fn column<T: Real>(m: &mut DMatrix<T>, size: usize) {
    if m.shape() != (size, 1) {
        *m = DMatrix::zeros(size, 1);
    }
}

/// What every part of a clean pass through a chained population shares: the announced
/// product of its input, its bias, its activation, and the output sweep's pending update.
struct CleanShared<'a, T: Real> {
    product: ProductAhead<'a, T>,
    bias: Option<&'a [T]>,
    activation: Activation,
    rows: usize,
    update: Option<(T, &'a [T], &'a [T])>,
}

impl<T: Real> CleanShared<'_, T> {
    /// The clean pass of units `r0..r0 + pre.len()`: their input, their activity, and their
    /// columns `w` of the output sweep (the pending update applied on the way).
    fn part(&self, r0: usize, pre: &mut [T], act: &mut [T], w: &mut [T]) -> [T; SHORT_MAX_ROWS] {
        // As the population-by-population pass: zeroed, the product added, then the bias.
        pre.fill(T::zero());
        self.product.add_rows(r0, pre);
        if let Some(bias) = self.bias {
            pre.iter_mut().zip(&bias[r0..]).for_each(|(u, &b)| *u += b);
        }
        self.activation.apply_part(pre, act);
        let update = self
            .update
            .map(|(scale, u, v)| (scale, u, &v[r0..r0 + act.len()]));
        let mut sums = [T::zero(); SHORT_MAX_ROWS];
        short_part_sums(w, self.rows, update, act, &mut sums);
        sums
    }
}

/// A part's clean input and activity, noise, difference of input and of activity, and
/// columns of the output weights, for [`perturbed_part`].
type PerturbedPart<'a, T> = (&'a [T], &'a [T], &'a [T], &'a mut [T], &'a mut [T], &'a mut [T]);

/// The perturbed pass of a part of the units (their noise drawn, no difference arriving):
/// their difference, and their columns of the output sweep of the difference.
fn perturbed_part<T: Real>(
    activation: Activation,
    rows: usize,
    part: PerturbedPart<'_, T>,
) -> [T; SHORT_MAX_ROWS] {
    let (pre, act, noise, d_pre, d_act, w) = part;
    // As the population-by-population pass: zeroed, then the noise added.
    d_pre.fill(T::zero());
    d_pre.iter_mut().zip(noise).for_each(|(d, &v)| *d += v);
    activation.difference_part(pre, act, d_pre, d_act);
    let mut sums = [T::zero(); SHORT_MAX_ROWS];
    short_part_sums(w, rows, None, d_act, &mut sums);
    sums
}

/// The noise of a chained population's perturbed pass, drawn part by part in the region of
/// its clean pass: its standard deviation and the seeds of its blocks ([`crate::noise::block_seeds`]).
pub(super) struct NoiseAhead<'a> {
    pub(super) std: f64,
    pub(super) seeds: &'a [u64],
}

/// The clean pass of one sample through population `p` (see [`chain_through`]), with the
/// product of `into` taken ahead (the caller checked [`Projection::takes_ahead`]): the
/// hidden input, the activity, and the output sweep through `out_of` with its pending update
/// applied on the way. Leaves the sweep's sums for the output population.
///
/// With `noise`, also the perturbed pass of `p` in the same region (each part's noise drawn,
/// its difference and its columns of the sweep of the difference; no difference may arrive
/// into `p`), whose sums are left in `ws.early_perturbed` for [`super::Engine::perturb`]:
/// every number is the one the two passes compute apart.
pub(super) fn clean_chain<T: Real>(
    bp: &CircuitBlueprint,
    projections: &mut [Projection<T>],
    ws: &mut Workspace<T>,
    p: usize,
    (into, out_of): (usize, usize),
    noise: Option<NoiseAhead<'_>>,
) {
    let size = bp.populations()[p].size;
    column(&mut ws.pre[p], size);
    column(&mut ws.act[p], size);
    let [into, out] = projections
        .get_disjoint_mut([into, out_of])
        .expect("a chain's projections are two");
    into.begin_product_ahead();
    let Projection {
        weights,
        pending,
        pending_active,
        ..
    } = out;
    let rows = weights.nrows();
    let cut = short_cut::<T>(rows, size).expect("checked by chain_through");
    let shared = CleanShared {
        product: into.next_product_ahead(),
        bias: into.bias.as_ref().map(|b| b.as_slice()),
        activation: bp.populations()[p].activation,
        rows,
        update: pending_active.then_some((
            pending.scale,
            pending.post_factors.as_slice(),
            pending.pre_factors.as_slice(),
        )),
    };
    let (pre_a, pre_b) = ws.pre[p].as_mut_slice().split_at_mut(cut);
    let (act_a, act_b) = ws.act[p].as_mut_slice().split_at_mut(cut);
    let (w_a, w_b) = weights.as_mut_slice().split_at_mut(cut * rows);
    match noise {
        None => {
            let part =
                |(r0, pre, act, w): (usize, &mut [T], &mut [T], &mut [T])| shared.part(r0, pre, act, w);
            ws.early[out_of] = Some(on_parts((0, pre_a, act_a, w_a), (cut, pre_b, act_b, w_b), part));
        }
        Some(NoiseAhead { std, seeds }) => {
            for m in [&mut ws.noise[p], &mut ws.diff_pre[p], &mut ws.diff_act[p]] {
                column(m, size);
            }
            let (noise_a, noise_b) = ws.noise[p].as_mut_slice().split_at_mut(cut);
            let (d_pre_a, d_pre_b) = ws.diff_pre[p].as_mut_slice().split_at_mut(cut);
            let (d_act_a, d_act_b) = ws.diff_act[p].as_mut_slice().split_at_mut(cut);
            type Part<'a, T> = (usize, [&'a mut [T]; 6]);
            let part = |(r0, [pre, act, noise, d_pre, d_act, w]): Part<'_, T>| {
                let clean = shared.part(r0, pre, act, w);
                fill_gaussian_part(noise, r0, size, std, seeds);
                let perturbed =
                    perturbed_part(shared.activation, rows, (&*pre, &*act, &*noise, d_pre, d_act, w));
                (clean, perturbed)
            };
            let [(clean_a, perturbed_a), (clean_b, perturbed_b)] = on_parts(
                (0, [pre_a, act_a, noise_a, d_pre_a, d_act_a, w_a]),
                (cut, [pre_b, act_b, noise_b, d_pre_b, d_act_b, w_b]),
                part,
            );
            ws.early[out_of] = Some([clean_a, clean_b]);
            ws.early_perturbed[out_of] = Some([perturbed_a, perturbed_b]);
        }
    }
    *pending_active = false;
    into.end_product_ahead();
}

/// The perturbed pass of one sample through population `p` (see [`chain_through`]), whose
/// noise is in `ws.noise[p]` and into which no difference arrives: its difference, and the
/// output sweep of the difference through `out_of`. Leaves the sweep's sums for the output
/// population.
pub(super) fn perturbed_chain<T: Real>(
    bp: &CircuitBlueprint,
    projections: &mut [Projection<T>],
    ws: &mut Workspace<T>,
    p: usize,
    out_of: usize,
) {
    let (size, activation) = (bp.populations()[p].size, bp.populations()[p].activation);
    column(&mut ws.diff_pre[p], size);
    column(&mut ws.diff_act[p], size);
    let weights = &mut projections[out_of].weights;
    let rows = weights.nrows();
    let cut = short_cut::<T>(rows, size).expect("checked by chain_through");
    let (pre_a, pre_b) = ws.pre[p].as_slice().split_at(cut);
    let (act_a, act_b) = ws.act[p].as_slice().split_at(cut);
    let (noise_a, noise_b) = ws.noise[p].as_slice().split_at(cut);
    let (d_pre_a, d_pre_b) = ws.diff_pre[p].as_mut_slice().split_at_mut(cut);
    let (d_act_a, d_act_b) = ws.diff_act[p].as_mut_slice().split_at_mut(cut);
    let (w_a, w_b) = weights.as_mut_slice().split_at_mut(cut * rows);
    let sums = on_parts(
        (pre_a, act_a, noise_a, d_pre_a, d_act_a, w_a),
        (pre_b, act_b, noise_b, d_pre_b, d_act_b, w_b),
        |part| perturbed_part(activation, rows, part),
    );
    ws.early[out_of] = Some(sums);
}
