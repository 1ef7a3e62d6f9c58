//! The engine: batched clean and perturbed passes, the scalar signal, back-propagation, and
//! the hand-off to rules.
//!
//! Why one long file: the clean pass, the perturbed pass, back-propagation and the rule
//! hand-off share the engine's private work buffers, which are its speed.
//!
//! # The signal without cancellation
//! The neuromodulatory signal is `δℓ = ℓ(noisy) − ℓ(clean)`. With perturbations of `1e-6` the
//! two losses agree to twelve digits, so subtracting them in `f32` leaves nothing. The engine
//! instead propagates the *difference* `d_k = ã_k − a_k` layer by layer
//! (`d_u = Σ W d_pre + σξ`, `d_a = f(u + d_u) − f(u)` by [`Activation::difference`]) and, for
//! the squared error `ℓ = ½|a − t|²`, forms `δℓ = d·(a − t) + ½|d|²` directly.
//!
//! [`Activation::difference`]: crate::Activation::difference

mod chain;
mod loss;

pub use loss::Loss;

use nalgebra::DMatrix;

use crate::Real;
use crate::circuit::{Circuit, Geometry, Projection};
use crate::conv::{ConvGeometry, unfold_channels};
use crate::gemm::{Operand, gemm, multiply_by_blocks};
use crate::kernels::{by_column_blocks, by_entry_parts, update_then_multiply};
use crate::noise::{fill_gaussian, fill_gaussian_adding};
use crate::on_demand::OnDemand;
use crate::rule::{
    LearningRule, PlasticWeights, PostUpdate, Postsynaptic, Presynaptic, ProjectionContext, Requirements,
    RuleContext, RuleError,
};
use crate::seed::{SeedStreams, StreamRng};

/// The clean patches of a convolution, formed from `maps` on first use since the last
/// forward pass.
pub(crate) fn formed_patches<'a, T: Real>(
    patches: &'a OnDemand<T>,
    geometry: &ConvGeometry,
    maps: &DMatrix<T>,
) -> &'a DMatrix<T> {
    patches.get_or_form(|formed| geometry.patches(maps, formed))
}

/// Buffers reused from step to step.
#[derive(Debug, Default)]
struct Workspace<T: Real> {
    pre: Vec<DMatrix<T>>,
    act: Vec<DMatrix<T>>,
    noise: Vec<DMatrix<T>>,
    diff_pre: Vec<DMatrix<T>>,
    diff_act: Vec<DMatrix<T>>,
    has_diff: Vec<bool>,
    error: Vec<DMatrix<T>>,
    weight_noise: Vec<DMatrix<T>>,
    /// Per convolution: the clean presynaptic patches of the last forward pass, formed only
    /// when asked for (weight perturbation, [`Engine::weight_gradient`], a rule reading
    /// them).
    patches: Vec<OnDemand<T>>,
    /// Per convolution: patches of the presynaptic difference on the perturbed pass.
    diff_patches: Vec<DMatrix<T>>,
    /// Per convolution: postsynaptic activity, noise and error unfolded to one column per
    /// position and sample, for rules.
    unfolded_post: Vec<OnDemand<T>>,
    unfolded_noise: Vec<DMatrix<T>>,
    unfolded_error: Vec<DMatrix<T>>,
    signal: Vec<T>,
    loss: Vec<T>,
    /// Per projection: the output sweep's sums formed early by a chained pass through its
    /// presynaptic population (see [`chain`]), to be added by its postsynaptic one.
    early: Vec<Option<chain::PartSums<T>>>,
    /// Per projection: the sums of the perturbed pass's output sweep, formed by a chained
    /// clean pass together with its own ([`Engine::forward_before`]), for the perturbed pass to take.
    early_perturbed: Vec<Option<chain::PartSums<T>>>,
    /// The seeds of a chained population's blocks of noise, drawn before its region.
    noise_seeds: Vec<u64>,
}

/// Zeroes `m` as a `rows × cols` matrix. In parts per thread (as the products that fill it
/// next), so that no thread first pulls another's part of a wide column into its cache.
fn reshape<T: Real>(m: &mut DMatrix<T>, rows: usize, cols: usize) {
    if m.shape() != (rows, cols) {
        *m = DMatrix::zeros(rows, cols);
    } else {
        by_entry_parts(m.as_mut_slice(), [], |part, []| part.fill(T::zero()));
    }
}

/// Runs a [`Circuit`] on batches and hands each step to a learning rule.
#[derive(Debug)]
pub struct Engine<T: Real> {
    circuit: Circuit<T>,
    loss: Loss,
    noise_streams: Vec<Option<StreamRng>>,
    weight_noise_streams: Vec<StreamRng>,
    ws: Workspace<T>,
    /// Whether a batch of one is carried through a wide population and a short output layer
    /// in one region per pass (see [`chain`]).
    chained: bool,
}

impl<T: Real> Engine<T> {
    /// Wraps a circuit; population `p`'s noise comes from stream `noise/<p>`.
    ///
    /// # Panics
    /// If the circuit has a sparse projection (those run in the [`crate::TrialEngine`];
    /// scenarios refuse them on static tasks with a located error).
    pub fn new(circuit: Circuit<T>, streams: &SeedStreams) -> Self {
        assert!(
            !circuit
                .blueprint
                .projections()
                .iter()
                .any(|p| matches!(p.geometry, Geometry::Sparse(_))),
            "sparse projections run in the trial engine"
        );
        let noise_streams = circuit
            .blueprint
            .populations()
            .iter()
            .map(|p| (p.noise.std() > 0.0).then(|| streams.stream(&format!("noise/{}", p.name))))
            .collect();
        let n_pop = circuit.blueprint.populations().len();
        let n_proj = circuit.blueprint.projections().len();
        let empty = || vec![DMatrix::zeros(0, 0); n_proj];
        let ws = Workspace {
            pre: vec![DMatrix::zeros(0, 0); n_pop],
            act: vec![DMatrix::zeros(0, 0); n_pop],
            noise: vec![DMatrix::zeros(0, 0); n_pop],
            diff_pre: vec![DMatrix::zeros(0, 0); n_pop],
            diff_act: vec![DMatrix::zeros(0, 0); n_pop],
            has_diff: vec![false; n_pop],
            error: vec![DMatrix::zeros(0, 0); n_pop],
            weight_noise: empty(),
            patches: (0..n_proj).map(|_| OnDemand::default()).collect(),
            diff_patches: empty(),
            unfolded_post: (0..n_proj).map(|_| OnDemand::default()).collect(),
            unfolded_noise: empty(),
            unfolded_error: empty(),
            signal: Vec::new(),
            loss: Vec::new(),
            early: vec![None; n_proj],
            early_perturbed: vec![None; n_proj],
            noise_seeds: Vec::new(),
        };
        let weight_noise_streams = circuit
            .blueprint
            .projections()
            .iter()
            .map(|q| streams.stream(&format!("weight_noise/{}", q.name)))
            .collect();
        Self {
            circuit,
            loss: Loss::SquaredError,
            noise_streams,
            weight_noise_streams,
            ws,
            chained: true,
        }
    }

    /// Whether a batch of one is carried through a wide hidden population and a short output
    /// layer (such as the paper's 10,000 hidden units and 10 outputs) in one parallel region
    /// per pass (the default) or population by population. The numbers are the same either
    /// way, bit for bit; only the speed on several threads differs. For tests and benchmarks
    /// that compare the two.
    pub fn set_chained_passes(&mut self, chained: bool) {
        self.chained = chained;
    }

    /// The circuit and its weights.
    pub fn circuit(&self) -> &Circuit<T> {
        &self.circuit
    }

    /// The circuit, mutably (for flushing and reading current weights).
    pub fn circuit_mut(&mut self) -> &mut Circuit<T> {
        &mut self.circuit
    }

    /// Clean activity of population `index` after the last [`Engine::forward`].
    pub fn activity(&self, index: usize) -> &DMatrix<T> {
        &self.ws.act[index]
    }

    /// Noise population `index` received on the last perturbed pass (empty if none).
    pub fn noise(&self, index: usize) -> &DMatrix<T> {
        &self.ws.noise[index]
    }

    /// `∂ℓ/∂u` of population `index` after the last [`Engine::backprop`].
    pub fn error(&self, index: usize) -> &DMatrix<T> {
        &self.ws.error[index]
    }

    /// Per-sample signal `ℓ(noisy) − ℓ(clean)` after the last [`Engine::perturb`].
    pub fn signal(&self) -> &[T] {
        &self.ws.signal
    }

    /// Per-sample clean loss `½|a − t|²` after the last [`Engine::loss`].
    pub fn losses(&self) -> &[T] {
        &self.ws.loss
    }

    /// The clean pass on `inputs` (`input_size × batch`); returns the output activity.
    /// Applies any pending weight updates on the way.
    pub fn forward(&mut self, inputs: &DMatrix<T>) -> &DMatrix<T> {
        self.clean_pass(inputs, false)
    }

    /// The clean pass; with `perturbation_follows` (every noisy population's perturbed pass
    /// comes next, [`Engine::forward_before`]) a chained population carries its own in the
    /// same region.
    fn clean_pass(&mut self, inputs: &DMatrix<T>, perturbation_follows: bool) -> &DMatrix<T> {
        let batch = inputs.ncols();
        let bp = &self.circuit.blueprint;
        let input = bp.input();
        crate::kernels::copy_into(&mut self.ws.act[input], inputs);
        self.ws.early_perturbed.iter_mut().for_each(|sums| *sums = None);
        // What the last chained pass copied for its step's rule is stale from here on.
        self.circuit
            .projections
            .iter_mut()
            .for_each(Projection::forget_copies);
        for &p in bp.order() {
            if p == input {
                continue;
            }
            let pop = &bp.populations()[p];
            if self.chained
                && let Some(chain) = chain::chain_through(bp, &self.circuit.projections, p, batch)
                && self.circuit.projections[chain.0].takes_ahead(&self.ws.act[bp.projections()[chain.0].pre])
            {
                // The announced input is the input population's, which is noiseless: no
                // difference arrives into `p`, so its perturbed pass is a chain too.
                let mut seeds = std::mem::take(&mut self.ws.noise_seeds);
                let noise = match self.noise_streams[p].as_mut() {
                    Some(rng) if perturbation_follows => {
                        crate::noise::block_seeds(pop.size, rng, &mut seeds);
                        Some(chain::NoiseAhead {
                            std: pop.noise.std(),
                            seeds: &seeds,
                        })
                    }
                    _ => None,
                };
                chain::clean_chain(bp, &mut self.circuit.projections, &mut self.ws, p, chain, noise);
                self.ws.noise_seeds = seeds;
                continue;
            }
            let mut pre = std::mem::take(&mut self.ws.pre[p]);
            reshape(&mut pre, pop.size, batch);
            for &q in bp.incoming(p) {
                let spec = &bp.projections()[q];
                let proj = &mut self.circuit.projections[q];
                let input = &self.ws.act[spec.pre];
                match spec.geometry {
                    Geometry::Dense => {
                        if let Some(sums) = self.ws.early[q].take() {
                            chain::add_part_sums(&sums, pre.as_mut_slice());
                        } else if proj.takes_ahead(input) {
                            proj.product_ahead(&mut pre);
                        } else {
                            proj.end_lookahead();
                            let pending = proj.pending_active.then_some(&proj.pending);
                            update_then_multiply(&mut proj.weights, pending, input, &mut pre);
                            proj.pending_active = false;
                        }
                        if let Some(bias) = &proj.bias {
                            let bias = bias.as_slice();
                            by_column_blocks(bias.len(), pre.as_mut_slice(), [], |part, []| {
                                for column in part.chunks_exact_mut(bias.len()) {
                                    column.iter_mut().zip(bias).for_each(|(u, &b)| *u += b);
                                }
                            });
                        }
                    }
                    Geometry::Conv(g) => {
                        proj.flush();
                        self.ws.patches[q].reset();
                        self.ws.unfolded_post[q].reset();
                        let bias = proj.bias.as_ref().map(|b| b.as_slice());
                        g.forward(&proj.weights, bias, input, &mut pre);
                    }
                    Geometry::Pool(g) => g.forward(input, &mut pre),
                    Geometry::Sparse(_) => unreachable!("refused by Engine::new"),
                }
            }
            let act = &mut self.ws.act[p];
            if act.shape() != pre.shape() {
                *act = DMatrix::zeros(pop.size, batch);
            }
            pop.activation
                .apply_columns(pop.size, pre.as_slice(), act.as_mut_slice());
            self.ws.pre[p] = pre;
        }
        &self.ws.act[bp.output()]
    }

    /// The clean pass of a training step ([`Engine::forward`]) that [`Engine::loss`] and
    /// [`Engine::prepare`] with the same `requirements` follow at once, as in [`Engine::step`]:
    /// when every noisy population is perturbed, a chained population's perturbed pass is
    /// carried in its clean pass's parallel region (its noise drawn there, from the same
    /// seeds in the same order), and the perturbed pass takes it from there. The numbers are
    /// those of the passes apart; a clean pass not followed by that perturbed pass would
    /// draw noise nobody uses, so use [`Engine::forward`] for it.
    pub fn forward_before(&mut self, inputs: &DMatrix<T>, requirements: Requirements) -> &DMatrix<T> {
        let perturbation_follows = requirements.perturbation
            && requirements.weight_noise_std == 0.0
            && !requirements.output_noise_only;
        self.clean_pass(inputs, perturbation_follows)
    }

    /// Announces the inputs (`input_size × n`) of the next `n` per-sample steps, so that the
    /// dense projections out of the input population compute their products for all of them
    /// in one pass over their weights and queue the rules' updates in between (see
    /// [`crate::circuit::lookahead`]). Reading the weights meanwhile sees every update so far
    /// and changes nothing; a step whose input is not the next announced one, or anyone
    /// writing the weights, ends the lookahead. Results are the same up to rounding either
    /// way. Does nothing for fewer than two inputs or a noisy input population (whose
    /// perturbed pass goes through the weights themselves).
    pub fn look_ahead(&mut self, inputs: &DMatrix<T>) {
        let bp = &self.circuit.blueprint;
        let input = bp.input();
        if inputs.ncols() < 2 || bp.populations()[input].noise.std() > 0.0 {
            return;
        }
        for &q in bp.outgoing(input) {
            let spec = &bp.projections()[q];
            if matches!(spec.geometry, Geometry::Dense) {
                self.circuit.projections[q].look_ahead(inputs);
            }
        }
    }

    /// Per-sample clean loss `½|a − t|²` of the last forward pass.
    pub fn loss(&mut self, targets: &DMatrix<T>) -> &[T] {
        let out = &self.ws.act[self.circuit.blueprint.output()];
        let kind = self.loss;
        self.ws.loss.clear();
        self.ws.loss.extend(
            out.column_iter()
                .zip(targets.column_iter())
                .map(|(a, t)| kind.value(a.as_slice(), t.as_slice())),
        );
        &self.ws.loss
    }

    /// The loss the engine trains on (default [`Loss::SquaredError`]).
    pub fn set_loss(&mut self, loss: Loss) {
        self.loss = loss;
    }

    /// The perturbed pass: draws each noisy population's noise, propagates the difference
    /// from the clean pass, and forms the signal `δℓ = d·(a − t) + ½|d|²` per sample.
    pub fn perturb(&mut self, targets: &DMatrix<T>) -> &[T] {
        self.perturb_with(targets, Perturbation::Nodes { output_only: false })
    }

    /// The perturbed pass of the given kind (see [`Perturbation`]), then the signal.
    pub fn perturb_with(&mut self, targets: &DMatrix<T>, kind: Perturbation) -> &[T] {
        let bp = &self.circuit.blueprint;
        let batch = targets.ncols();
        let input = bp.input();
        self.ws.has_diff.iter_mut().for_each(|h| *h = false);
        if let Perturbation::Weights { std } = kind {
            for (q, spec) in bp.projections().iter().enumerate().filter(|(_, s)| s.plastic) {
                let (rows, cols) = self.circuit.projections[q].weights.shape();
                let noise = &mut self.ws.weight_noise[q];
                if noise.shape() != (rows, cols) {
                    *noise = DMatrix::zeros(rows, cols);
                }
                fill_gaussian(noise, std, &mut self.weight_noise_streams[q]);
                let _ = spec;
            }
        }
        for &p in bp.order() {
            if p == input {
                continue;
            }
            let pop = &bp.populations()[p];
            let sources: Vec<usize> = bp
                .incoming(p)
                .iter()
                .copied()
                .filter(|&q| self.ws.has_diff[bp.projections()[q].pre])
                .collect();
            let (node_noise, weight_noise) = match kind {
                Perturbation::Nodes { output_only } => (
                    self.noise_streams[p].is_some() && (!output_only || p == bp.output()),
                    false,
                ),
                Perturbation::Weights { .. } => {
                    (false, bp.incoming(p).iter().any(|&q| bp.projections()[q].plastic))
                }
            };
            if sources.is_empty() && !node_noise && !weight_noise {
                continue;
            }
            if sources.is_empty()
                && node_noise
                && !weight_noise
                && self.chained
                && let Some((_, out_of)) = chain::chain_through(bp, &self.circuit.projections, p, batch)
            {
                self.ws.has_diff[p] = true;
                if let Some(sums) = self.ws.early_perturbed[out_of].take() {
                    // Carried by the clean pass's region (`Engine::forward_before`).
                    self.ws.early[out_of] = Some(sums);
                    continue;
                }
                let noise = &mut self.ws.noise[p];
                if noise.shape() != (pop.size, batch) {
                    *noise = DMatrix::zeros(pop.size, batch);
                }
                let rng = self.noise_streams[p]
                    .as_mut()
                    .expect("a noisy population has a stream");
                fill_gaussian(noise, pop.noise.std(), rng);
                chain::perturbed_chain(bp, &mut self.circuit.projections, &mut self.ws, p, out_of);
                continue;
            }
            let mut d_pre = std::mem::take(&mut self.ws.diff_pre[p]);
            reshape(&mut d_pre, pop.size, batch);
            for q in sources {
                let spec = &bp.projections()[q];
                let proj = &mut self.circuit.projections[q];
                proj.end_lookahead();
                if let Some(sums) = self.ws.early[q].take() {
                    chain::add_part_sums(&sums, d_pre.as_mut_slice());
                    continue;
                }
                let weights = &proj.weights;
                let diff = &self.ws.diff_act[spec.pre];
                match spec.geometry {
                    // One sample through an output layer: the sweep for short matrices.
                    Geometry::Dense
                        if batch == 1 && (1..=crate::kernels::SHORT_MAX_ROWS).contains(&weights.nrows()) =>
                    {
                        crate::kernels::short_multiply(weights, diff.as_slice(), d_pre.as_mut_slice())
                    }
                    Geometry::Dense => multiply_by_blocks(weights, diff, &mut d_pre),
                    // Weight noise multiplies the difference's patches again below; otherwise
                    // they are unfolded per sample and not kept.
                    Geometry::Conv(g) if weight_noise => {
                        g.patches(diff, &mut self.ws.diff_patches[q]);
                        g.forward_from_patches(weights, &self.ws.diff_patches[q], &mut d_pre);
                    }
                    Geometry::Conv(g) => g.forward(weights, None, diff, &mut d_pre),
                    Geometry::Pool(g) => g.difference(&self.ws.act[spec.pre], diff, &mut d_pre),
                    Geometry::Sparse(_) => unreachable!("refused by Engine::new"),
                }
            }
            if weight_noise {
                // (W + Ψ)(a + d) − W a = W d + Ψ (a + d): the W d part is above.
                for &q in bp.incoming(p).iter().filter(|&&q| bp.projections()[q].plastic) {
                    let spec = &bp.projections()[q];
                    let pre = spec.pre;
                    let psi = &self.ws.weight_noise[q];
                    match spec.geometry {
                        Geometry::Conv(g) => {
                            let patches = formed_patches(&self.ws.patches[q], &g, &self.ws.act[pre]);
                            g.forward_from_patches(psi, patches, &mut d_pre);
                            if self.ws.has_diff[pre] {
                                // The difference's patches were formed just above.
                                g.forward_from_patches(psi, &self.ws.diff_patches[q], &mut d_pre);
                            }
                        }
                        _ => {
                            let noise = Operand::plain(psi);
                            gemm(
                                &mut d_pre,
                                true,
                                T::one(),
                                noise,
                                Operand::plain(&self.ws.act[pre]),
                            );
                            if self.ws.has_diff[pre] {
                                gemm(
                                    &mut d_pre,
                                    true,
                                    T::one(),
                                    noise,
                                    Operand::plain(&self.ws.diff_act[pre]),
                                );
                            }
                        }
                    }
                }
            }
            if let Some(rng) = self.noise_streams[p].as_mut().filter(|_| node_noise) {
                let noise = &mut self.ws.noise[p];
                if noise.shape() != (pop.size, batch) {
                    *noise = DMatrix::zeros(pop.size, batch);
                }
                fill_gaussian_adding(noise, d_pre.as_mut_slice(), pop.noise.std(), rng);
            }
            let d_act = &mut self.ws.diff_act[p];
            if d_act.shape() != d_pre.shape() {
                *d_act = DMatrix::zeros(pop.size, batch);
            }
            pop.activation.difference_columns(
                pop.size,
                self.ws.pre[p].as_slice(),
                self.ws.act[p].as_slice(),
                d_pre.as_slice(),
                d_act.as_mut_slice(),
            );
            self.ws.diff_pre[p] = d_pre;
            self.ws.has_diff[p] = true;
        }
        let out = bp.output();
        self.ws.signal.clear();
        if !self.ws.has_diff[out] {
            self.ws.signal.resize(batch, T::zero());
            return &self.ws.signal;
        }
        let (a, d) = (&self.ws.act[out], &self.ws.diff_act[out]);
        for s in 0..batch {
            let difference = self.loss.difference(
                a.column(s).as_slice(),
                d.column(s).as_slice(),
                targets.column(s).as_slice(),
            );
            self.ws.signal.push(difference);
        }
        &self.ws.signal
    }

    /// Back-propagates `∂ℓ/∂u` from the output (`(a − t) ⊙ f'(u)`) through every population.
    pub fn backprop(&mut self, targets: &DMatrix<T>) {
        self.backprop_with(targets, false);
    }

    /// Back-propagates from the output: the true error (`estimate = false`), or the
    /// perturbation estimate of the output gradient `(δℓ_b / σ²) σξ_b` of the last perturbed
    /// pass (`estimate = true`, REINFORCE).
    pub fn backprop_with(&mut self, targets: &DMatrix<T>, estimate: bool) {
        let bp = &self.circuit.blueprint;
        let out = bp.output();
        for &p in bp.order().iter().rev() {
            if p == bp.input() {
                continue;
            }
            let pop = &bp.populations()[p];
            let mut e = std::mem::take(&mut self.ws.error[p]);
            let batch = targets.ncols();
            reshape(&mut e, pop.size, batch);
            if p == out && estimate {
                let sigma = T::of(pop.noise.std());
                let inverse_variance = if sigma > T::zero() {
                    T::one() / (sigma * sigma)
                } else {
                    T::zero()
                };
                e.copy_from(&self.ws.noise[p]);
                for (mut column, &signal) in e.column_iter_mut().zip(&self.ws.signal) {
                    column *= signal * inverse_variance;
                }
                self.ws.error[p] = e;
                continue;
            } else if p == out {
                self.loss
                    .gradient(self.ws.act[p].as_slice(), targets.as_slice(), e.as_mut_slice());
            } else {
                for &q in bp.outgoing(p) {
                    let spec = &bp.projections()[q];
                    let proj = &mut self.circuit.projections[q];
                    proj.end_lookahead();
                    let weights = &proj.weights;
                    let post_error = &self.ws.error[spec.post];
                    match spec.geometry {
                        Geometry::Dense => gemm(
                            &mut e,
                            true,
                            T::one(),
                            Operand::transposed(weights),
                            Operand::plain(post_error),
                        ),
                        Geometry::Conv(g) => g.backward_input(weights, post_error, &mut e),
                        Geometry::Pool(g) => g.backward(&self.ws.act[p], post_error, &mut e),
                        Geometry::Sparse(_) => unreachable!("refused by Engine::new"),
                    }
                }
            }
            pop.activation.backprop_columns(
                pop.size,
                self.ws.pre[p].as_slice(),
                self.ws.act[p].as_slice(),
                e.as_mut_slice(),
            );
            self.ws.error[p] = e;
        }
    }

    /// `∂ℓ/∂W` of projection `q`, summed over the batch, after [`Engine::backprop`]: the
    /// error times the presynaptic activity (for a convolution, times its input patches,
    /// summed over positions); `0 × 0` for pooling.
    pub fn weight_gradient(&self, q: usize) -> DMatrix<T> {
        let spec = &self.circuit.blueprint.projections()[q];
        let error = &self.ws.error[spec.post];
        let (rows, cols) = self.circuit.projections[q].weights.shape();
        let mut gradient = DMatrix::zeros(rows, cols);
        match spec.geometry {
            Geometry::Dense => gemm(
                &mut gradient,
                false,
                T::one(),
                Operand::plain(error),
                Operand::transposed(&self.ws.act[spec.pre]),
            ),
            Geometry::Conv(g) => {
                let mut unfolded = DMatrix::zeros(0, 0);
                unfold_channels(error, g.output.0, &mut unfolded);
                gemm(
                    &mut gradient,
                    false,
                    T::one(),
                    Operand::plain(&unfolded),
                    Operand::transposed(formed_patches(&self.ws.patches[q], &g, &self.ws.act[spec.pre])),
                );
            }
            Geometry::Pool(_) | Geometry::Sparse(_) => {}
        }
        gradient
    }

    /// Hands the step to `rule`, then runs `post_updates` in order.
    pub fn apply_rule(
        &mut self,
        rule: &mut dyn LearningRule<T>,
        post_updates: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<(), RuleError> {
        let requirements = rule.requirements();
        let bp = &self.circuit.blueprint;
        let noisy = |spec: &crate::ProjectionSpec| {
            let post_pop = &bp.populations()[spec.post];
            requirements.perturbation
                && requirements.weight_noise_std == 0.0
                && post_pop.noise.std() > 0.0
                && (!requirements.output_noise_only || spec.post == bp.output())
        };
        for (q, spec) in bp.projections().iter().enumerate().filter(|(_, s)| s.plastic) {
            if let Geometry::Conv(g) = spec.geometry {
                let channels = g.output.0;
                let ws = &mut self.ws;
                if noisy(spec) {
                    unfold_channels(&ws.noise[spec.post], channels, &mut ws.unfolded_noise[q]);
                }
                if requirements.backprop {
                    unfold_channels(&ws.error[spec.post], channels, &mut ws.unfolded_error[q]);
                }
            }
        }
        let ws = &self.ws;
        let projections = bp
            .projections()
            .iter()
            .enumerate()
            .zip(self.circuit.projections.iter_mut())
            .filter(|((_, spec), _)| spec.plastic)
            .map(|((q, spec), state)| {
                let post_pop = &bp.populations()[spec.post];
                let (pre, post, noise, error) = if let Geometry::Conv(geometry) = spec.geometry {
                    (
                        Presynaptic::Patches {
                            geometry,
                            maps: &ws.act[spec.pre],
                            patches: &ws.patches[q],
                        },
                        Postsynaptic::Unfolded {
                            maps: &ws.act[spec.post],
                            channels: geometry.output.0,
                            unfolded: &ws.unfolded_post[q],
                        },
                        &ws.unfolded_noise[q],
                        &ws.unfolded_error[q],
                    )
                } else {
                    (
                        Presynaptic::Activity(&ws.act[spec.pre]),
                        Postsynaptic::Activity(&ws.act[spec.post]),
                        &ws.noise[spec.post],
                        &ws.error[spec.post],
                    )
                };
                ProjectionContext {
                    name: &spec.name,
                    pre,
                    post,
                    columns_per_sample: spec.geometry.columns_per_sample(),
                    post_noise: noisy(spec).then_some(noise),
                    noise_std: T::of(post_pop.noise.std()),
                    post_error: requirements.backprop.then_some(error),
                    weight_noise: (requirements.weight_noise_std > 0.0).then_some(&ws.weight_noise[q]),
                    state,
                }
            })
            .collect();
        let signal: &[T] = if requirements.perturbation {
            &ws.signal
        } else {
            &[]
        };
        let mut context = RuleContext {
            signal,
            loss: &ws.loss,
            projections,
        };
        rule.update(&mut context)?;
        self.circuit.apply_post_updates(post_updates)
    }

    /// The plastic projections' current weights, for post-update steps.
    pub fn plastic_weights(&mut self) -> Vec<PlasticWeights<'_, T>> {
        self.circuit.plastic_weights()
    }

    /// One training step on a batch: clean pass, loss, what the rule requires, the rule, the
    /// post-update steps. Returns the mean clean loss of the batch.
    pub fn step(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &DMatrix<T>,
        rule: &mut dyn LearningRule<T>,
        post_updates: &mut [Box<dyn PostUpdate<T>>],
    ) -> Result<f64, RuleError> {
        let requirements = rule.requirements();
        self.forward_before(inputs, requirements);
        let mean_loss = self.loss(targets).iter().map(|l| l.f64()).sum::<f64>() / inputs.ncols() as f64;
        self.prepare(targets, requirements, false);
        self.apply_rule(rule, post_updates)?;
        Ok(mean_loss)
    }

    /// After the clean pass: the perturbed pass and back-propagation that `requirements` ask
    /// for (and back-propagation of the true error anyway if `always_backprop`, for measuring).
    pub fn prepare(&mut self, targets: &DMatrix<T>, requirements: Requirements, always_backprop: bool) {
        if requirements.weight_noise_std > 0.0 {
            self.perturb_with(
                targets,
                Perturbation::Weights {
                    std: requirements.weight_noise_std,
                },
            );
        } else if requirements.perturbation {
            self.perturb_with(
                targets,
                Perturbation::Nodes {
                    output_only: requirements.output_noise_only,
                },
            );
        }
        if requirements.backprop && requirements.backprop_estimate {
            self.backprop_with(targets, true);
        } else if requirements.backprop || always_backprop {
            self.backprop(targets);
        }
    }
}

/// The kind of perturbed pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Perturbation {
    /// Intrinsic noise on the nodes (all noisy populations, or only the output).
    Nodes {
        /// Perturb only the output population.
        output_only: bool,
    },
    /// Gaussian noise of this std on every plastic weight, one draw per step.
    Weights {
        /// Standard deviation.
        std: f64,
    },
}
