//! One sample through a wide hidden population and a short output layer, in one parallel
//! region per step.
//!
//! The paper's per-sample step (100-10000-10) spends most of what is not its lookahead GEMM
//! on vectors of the 10,000 hidden units: the hidden input formed from the announced product,
//! the activation, the sweep through the 10 × 10,000 output weights, the noise, and on the
//! perturbed pass the difference and the same sweep again; then the rule's update copies the
//! noise and the activity where the updates keep their factors. Each was a parallel region of
//! its own, a few µs of work each, and on two cores every region costs about 2 µs to hand over
//! and join (measured on an AMD EPYC: a parallel add of 10,000 `f64` took 3.5–4.2 µs against
//! 3.6 µs on one thread). Here the hidden units are cut where the output sweep cuts its columns
//! ([`short_cut`]), and each part's thread carries its units from the hidden input through the
//! output sweep's partial sums, and in a training step ([`super::Engine::forward_before`])
//! on through the noise, the perturbed pass's sweep, and the copies of activity and noise
//! for the rule; the parts' sums are added to the output in the order of the parts at the
//! output population, as the sweep adds them. Every number is the one the
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
/// product of its input, its bias, its activation, and the output sweep's pending update
/// (its scale and postsynaptic factors; each part has its own presynaptic ones).
struct CleanShared<'a, T: Real> {
    product: ProductAhead<'a, T>,
    bias: Option<&'a [T]>,
    activation: Activation,
    rows: usize,
    update: Option<(T, &'a [T])>,
}

/// A part of the units of a chained population, and of whatever is kept per unit.
struct Part<'a, T> {
    /// The first unit.
    r0: usize,
    pre: &'a mut [T],
    act: &'a mut [T],
    /// The part's columns of the output weights.
    w: &'a mut [T],
    /// The part's entries of the output projection's pending presynaptic factors (`None`
    /// when they are not one column of the population's size).
    pre_factors: Option<&'a mut [T]>,
    /// For the perturbed pass in the same region: noise, differences, and the input
    /// projection's next queue column (`None` when the queue is full).
    perturbed: Option<PerturbedBuffers<'a, T>>,
}

struct PerturbedBuffers<'a, T> {
    noise: &'a mut [T],
    d_pre: &'a mut [T],
    d_act: &'a mut [T],
    queue_slot: Option<&'a mut [T]>,
}

/// `(s[..at], s[at..])` of an optional slice.
fn split_option<T>(s: Option<&mut [T]>, at: usize) -> (Option<&mut [T]>, Option<&mut [T]>) {
    match s {
        Some(s) => {
            let (a, b) = s.split_at_mut(at);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

impl<T: Real> CleanShared<'_, T> {
    /// The clean pass of a part: the units' input, their activity, and their columns of the
    /// output sweep (the pending update applied on the way). The activity is then copied into
    /// the part's pending presynaptic factors, while in cache: where a rule updating the
    /// output projection with that activity keeps it ([`crate::circuit::FactorSources`]).
    fn part(&self, part: &mut Part<'_, T>) -> [T; SHORT_MAX_ROWS] {
        let (r0, pre, act) = (part.r0, &mut *part.pre, &mut *part.act);
        // As the population-by-population pass: zeroed, the product added, then the bias.
        pre.fill(T::zero());
        self.product.add_rows(r0, pre);
        if let Some(bias) = self.bias {
            pre.iter_mut().zip(&bias[r0..]).for_each(|(u, &b)| *u += b);
        }
        self.activation.apply_part(pre, act);
        let update = self.update.map(|(scale, u)| {
            let v = part
                .pre_factors
                .as_deref()
                .expect("a pending update has its factors");
            (scale, u, v)
        });
        let mut sums = [T::zero(); SHORT_MAX_ROWS];
        short_part_sums(part.w, self.rows, update, act, &mut sums);
        if let Some(v) = part.pre_factors.as_deref_mut() {
            v.copy_from_slice(act);
        }
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
/// its clean pass: its standard deviation and the seeds of its blocks
/// ([`crate::noise::block_seeds`]).
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
/// into `p`), whose sums are left in `ws.early_perturbed` for [`super::Engine::perturb`];
/// the noise is also copied into the next column of `into`'s queue. Every number is the one
/// the two passes compute apart.
pub(super) fn clean_chain<T: Real>(
    bp: &CircuitBlueprint,
    projections: &mut [Projection<T>],
    ws: &mut Workspace<T>,
    p: usize,
    (into, out_of): (usize, usize),
    noise: Option<NoiseAhead<'_>>,
) {
    let size = bp.populations()[p].size;
    let perturbed = noise.is_some();
    for m in [&mut ws.pre[p], &mut ws.act[p]] {
        column(m, size);
    }
    if perturbed {
        for m in [&mut ws.noise[p], &mut ws.diff_pre[p], &mut ws.diff_act[p]] {
            column(m, size);
        }
    }
    let [into, out] = projections
        .get_disjoint_mut([into, out_of])
        .expect("a chain's projections are two");
    into.begin_product_ahead();
    let (product, queue_slot) = into.lookahead.product_with_slot();
    let queue_slot = queue_slot.filter(|_| perturbed);
    let slot_filled = queue_slot.is_some();
    let Projection {
        weights,
        pending,
        pending_active,
        pre_mirrored,
        ..
    } = out;
    let rows = weights.nrows();
    let cut = short_cut::<T>(rows, size).expect("checked by chain_through");
    let shared = CleanShared {
        product,
        bias: into.bias.as_ref().map(|b| b.as_slice()),
        activation: bp.populations()[p].activation,
        rows,
        update: pending_active.then_some((pending.scale, pending.post_factors.as_slice())),
    };
    let mirror_pre = pending.pre_factors.shape() == (size, 1);
    let pre_factors = mirror_pre.then_some(pending.pre_factors.as_mut_slice());
    let (pre_a, pre_b) = ws.pre[p].as_mut_slice().split_at_mut(cut);
    let (act_a, act_b) = ws.act[p].as_mut_slice().split_at_mut(cut);
    let (w_a, w_b) = weights.as_mut_slice().split_at_mut(cut * rows);
    let (v_a, v_b) = split_option(pre_factors, cut);
    let (perturbed_a, perturbed_b) = if perturbed {
        let (noise_a, noise_b) = ws.noise[p].as_mut_slice().split_at_mut(cut);
        let (d_pre_a, d_pre_b) = ws.diff_pre[p].as_mut_slice().split_at_mut(cut);
        let (d_act_a, d_act_b) = ws.diff_act[p].as_mut_slice().split_at_mut(cut);
        let (slot_a, slot_b) = split_option(queue_slot, cut);
        let buffers = |noise, d_pre, d_act, queue_slot| PerturbedBuffers {
            noise,
            d_pre,
            d_act,
            queue_slot,
        };
        (
            Some(buffers(noise_a, d_pre_a, d_act_a, slot_a)),
            Some(buffers(noise_b, d_pre_b, d_act_b, slot_b)),
        )
    } else {
        (None, None)
    };
    let part_a = Part {
        r0: 0,
        pre: pre_a,
        act: act_a,
        w: w_a,
        pre_factors: v_a,
        perturbed: perturbed_a,
    };
    let part_b = Part {
        r0: cut,
        pre: pre_b,
        act: act_b,
        w: w_b,
        pre_factors: v_b,
        perturbed: perturbed_b,
    };
    let [(clean_a, perturbed_a), (clean_b, perturbed_b)] =
        on_parts(part_a, part_b, |mut part: Part<'_, T>| {
            let clean = shared.part(&mut part);
            let perturbed = part.perturbed.map(|b| {
                let NoiseAhead { std, seeds } = noise.as_ref().expect("perturbed parts come with noise");
                fill_gaussian_part(b.noise, part.r0, size, *std, seeds);
                if let Some(slot) = b.queue_slot {
                    slot.copy_from_slice(b.noise);
                }
                let buffers = (&*part.pre, &*part.act, &*b.noise, b.d_pre, b.d_act, part.w);
                perturbed_part(shared.activation, rows, buffers)
            });
            (clean, perturbed)
        });
    ws.early[out_of] = Some([clean_a, clean_b]);
    ws.early_perturbed[out_of] = perturbed_a.zip(perturbed_b).map(|(a, b)| [a, b]);
    *pending_active = false;
    *pre_mirrored = mirror_pre;
    if slot_filled {
        into.mark_noise_queued_ahead();
    }
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
