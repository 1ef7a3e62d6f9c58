//! The instantiated circuit: weights and biases drawn from named streams, and the weight
//! updates a step leaves pending to apply them fused with the next product.

use nalgebra::{DMatrix, DVector};

use super::{CircuitBlueprint, Geometry};
use crate::sparse::SparseStructure;
use crate::{Real, SeedStreams};

/// A low-rank weight change `scale · U Vᵀ` waiting to be applied.
///
/// Rules hand their updates to the engine in this form; the engine applies it fused with the
/// next product through the same weights when that saves a pass over memory.
#[derive(Debug, Clone)]
pub struct PendingUpdate<T: Real> {
    /// The scalar multiplier.
    pub scale: T,
    /// `U`, `post_size × k`.
    pub post_factors: DMatrix<T>,
    /// `V`, `pre_size × k`.
    pub pre_factors: DMatrix<T>,
}

/// How a sparse projection's dense view relates to its stored weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Not built, or out of date: build it before reading.
    Stale,
    /// Equal to the stored weights.
    Fresh,
    /// Handed out for writing: its entries at the synapses are the weights.
    Written,
}

/// A sparse projection's synapses and their weights, one value per synapse.
#[derive(Debug, Clone)]
pub(crate) struct SparseWeights<T: Real> {
    pub(crate) structure: SparseStructure,
    pub(crate) values: Vec<T>,
    view: View,
}

/// A projection's state during a run.
#[derive(Debug, Clone)]
pub struct Projection<T: Real> {
    /// The weights of a dense or convolution projection; for a sparse one, a dense view of
    /// its synapses built only when someone asks for the matrix (rules reading weights,
    /// post-update steps, recordings).
    pub(crate) weights: DMatrix<T>,
    pub(crate) bias: Option<DVector<T>>,
    /// Buffers of the pending update, kept between steps to avoid reallocating.
    pub(crate) pending: PendingUpdate<T>,
    pub(crate) pending_active: bool,
    pub(crate) sparse: Option<SparseWeights<T>>,
    /// Announced inputs and queued per-sample updates (see [`super::lookahead`]).
    pub(crate) lookahead: super::lookahead::Lookahead<T>,
    /// A convolution's partial sums of its update per group of samples.
    pub(crate) update_partials: Vec<T>,
    /// `pending.pre_factors` holds this step's presynaptic activity (one sample), copied there
    /// by a chained pass while in cache: scheduling that activity as `V` needs no copy.
    pub(crate) pre_mirrored: bool,
}

/// What a rule's factors are, as its [`crate::ProjectionContext`] sees them: the step's
/// noise of the postsynaptic population, the step's presynaptic activity. A chained pass may
/// have copied those where the update keeps its factors already.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FactorSources {
    pub(crate) post_is_noise: bool,
    pub(crate) pre_is_activity: bool,
}

impl<T: Real> Projection<T> {
    /// A projection with these weights and bias and no pending update.
    pub(crate) fn new(weights: DMatrix<T>, bias: Option<DVector<T>>) -> Self {
        let pending = PendingUpdate {
            scale: T::zero(),
            post_factors: DMatrix::zeros(0, 0),
            pre_factors: DMatrix::zeros(0, 0),
        };
        Self {
            weights,
            bias,
            pending,
            pending_active: false,
            sparse: None,
            lookahead: super::lookahead::Lookahead::new(),
            update_partials: Vec::new(),
            pre_mirrored: false,
        }
    }

    /// A sparse projection with one weight per synapse of `structure`.
    pub(crate) fn new_sparse(structure: SparseStructure, values: Vec<T>, bias: Option<DVector<T>>) -> Self {
        assert_eq!(values.len(), structure.len(), "one weight per synapse");
        let mut projection = Self::new(DMatrix::zeros(0, 0), bias);
        projection.sparse = Some(SparseWeights {
            structure,
            values,
            view: View::Stale,
        });
        projection
    }

    /// `(post_size, pre_size)` of the weight matrix (for a convolution, of its kernel).
    pub(crate) fn shape(&self) -> (usize, usize) {
        match &self.sparse {
            Some(s) => s.structure.shape(),
            None => self.weights.shape(),
        }
    }

    /// The current weights as a matrix (a sparse projection's built on demand).
    pub(crate) fn dense(&mut self) -> &DMatrix<T> {
        if self.lookahead.is_active() {
            // Reading must not end a lookahead: a run that records often must compute what
            // one that records rarely does, so the reader gets the sum, not a flush.
            return self.lookahead.current_weights(&self.weights);
        }
        self.flush();
        if let Some(s) = &mut self.sparse
            && s.view == View::Stale
        {
            s.structure.scatter(&s.values, &mut self.weights);
            s.view = View::Fresh;
        }
        &self.weights
    }

    /// The weights as a matrix to change in place; for a sparse projection only the entries
    /// at its synapses count, read back at the next [`Projection::flush`].
    pub(crate) fn dense_mut(&mut self) -> &mut DMatrix<T> {
        self.flush();
        self.dense();
        if let Some(s) = &mut self.sparse {
            s.view = View::Written;
        }
        &mut self.weights
    }

    /// A sparse projection's synapses and current weights.
    pub(crate) fn sparse(&mut self) -> Option<(&SparseStructure, &[T])> {
        self.flush();
        self.sparse.as_ref().map(|s| (&s.structure, s.values.as_slice()))
    }

    /// Applies any pending update now (for a sparse projection: reads back a written view).
    pub(crate) fn flush(&mut self) {
        if let Some(s) = &mut self.sparse {
            if s.view == View::Written {
                s.structure.gather(&self.weights, &mut s.values);
                // Entries written off the synapses are dropped when the view is next built.
                s.view = View::Stale;
            }
            return;
        }
        self.end_lookahead();
        self.flush_pending();
    }

    /// Applies the update left pending by the last step, if any (not the lookahead's queue).
    pub(crate) fn flush_pending(&mut self) {
        if self.pending_active {
            let p = &self.pending;
            crate::kernels::apply_outer(&mut self.weights, p.scale, &p.post_factors, &p.pre_factors);
            self.pending_active = false;
        }
    }

    /// `K += scale · Σ_b c_b U_b P_bᵀ` on a convolution's kernel, `P_b` the patches of
    /// sample `b` of `maps`, applied at once (see [`ConvGeometry::add_outer_per_sample`]).
    pub(crate) fn add_convolution_outer(
        &mut self,
        geometry: &crate::conv::ConvGeometry,
        scale: T,
        post: &DMatrix<T>,
        sample_scales: Option<&[T]>,
        maps: &DMatrix<T>,
    ) {
        self.flush();
        geometry.add_outer_per_sample(
            &mut self.weights,
            scale,
            post,
            sample_scales,
            maps,
            &mut self.update_partials,
        );
    }

    /// `W += scale · (U diag(c)) Vᵀ`, where `c` repeats each of `sample_scales` (all ones if
    /// `None`) over `columns_per_sample` consecutive columns. Changes to dense weights are
    /// deferred, to be applied together with the next product through `W` (or by
    /// [`Projection::flush`]); a convolution's are applied at once.
    ///
    /// `sources` says whether the factors are the step's noise and activity, which a chained
    /// pass may have copied into place already.
    pub(crate) fn schedule(
        &mut self,
        scale: T,
        post: &DMatrix<T>,
        sample_scales: Option<&[T]>,
        columns_per_sample: usize,
        pre: &DMatrix<T>,
        sources: FactorSources,
    ) {
        let pre_mirrored = std::mem::take(&mut self.pre_mirrored);
        if self.sparse.is_none()
            && columns_per_sample == 1
            && self.queue_ahead(
                scale,
                post,
                sample_scales.map(|c| c[0]),
                pre,
                sources.post_is_noise,
            )
        {
            return;
        }
        self.flush();
        if let Some(s) = &mut self.sparse {
            s.structure
                .add_sampled_outer(&mut s.values, scale, post, sample_scales, columns_per_sample, pre);
            s.view = View::Stale;
            return;
        }
        let p = &mut self.pending;
        // For a GEMM the per-sample scales go on the smaller factor (`U diag(c) Vᵀ =
        // U (V diag(c))ᵀ`). Fused updates keep them on `U`, so that they round exactly as a
        // rule that adds `c_s u_s` column by column (plugins in the per-sample setting).
        let smaller_pre = post.ncols() > crate::kernels::FUSE_MAX_COLUMNS && pre.nrows() < post.nrows();
        let (scaled_post, scaled_pre) = match sample_scales {
            None => (false, false),
            Some(c) if smaller_pre => {
                crate::kernels::scale_columns(pre, c, columns_per_sample, &mut p.pre_factors);
                (false, true)
            }
            Some(c) => {
                crate::kernels::scale_columns(post, c, columns_per_sample, &mut p.post_factors);
                (true, false)
            }
        };
        let post_factors = if scaled_post { &p.post_factors } else { post };
        let pre_factors = if scaled_pre { &p.pre_factors } else { pre };
        if columns_per_sample > 1 {
            // A convolution's factors have a column per position and sample (tens of MB of
            // patches), a rendition's a column per step: applied now rather than copied. When
            // the presynaptic side is mostly silent (a timing population's bursts), only its
            // active entries are visited; otherwise one product over all columns.
            if crate::kernels::nonzero_fraction(pre_factors) < crate::kernels::SPARSE_FACTOR_BELOW {
                crate::kernels::add_outer_sparse_pre(&mut self.weights, scale, post_factors, pre_factors);
                return;
            }
            use crate::gemm::{Operand, gemm};
            let (u, v) = (Operand::plain(post_factors), Operand::transposed(pre_factors));
            gemm(&mut self.weights, true, scale, u, v);
            return;
        }
        if !scaled_post {
            crate::kernels::copy_into(&mut p.post_factors, post);
        }
        let pre_in_place = sources.pre_is_activity && pre_mirrored;
        if !scaled_pre && !pre_in_place {
            crate::kernels::copy_into(&mut p.pre_factors, pre);
        }
        p.scale = scale;
        self.pending_active = true;
    }
}

/// A circuit with its weights: the state a simulation evolves.
#[derive(Debug, Clone)]
pub struct Circuit<T: Real> {
    pub(crate) blueprint: CircuitBlueprint,
    pub(crate) projections: Vec<Projection<T>>,
}

impl<T: Real> Circuit<T> {
    /// Draws the initial weights: projection `p` from stream `init/<p>`, its bias from
    /// `init/<p>/bias`, and a sparse projection's synapses from `connect/<p>` (then one weight
    /// per synapse, in the order of presynaptic units).
    pub fn instantiate(blueprint: &CircuitBlueprint, streams: &SeedStreams) -> Self {
        let projections = blueprint
            .projections
            .iter()
            .map(|spec| {
                let (rows, cols) = spec.weight_shape(&blueprint.populations);
                let (fan_in, fan_out) = spec.fans(&blueprint.populations);
                let mut rng = streams.stream(&format!("init/{}", spec.name));
                let bias = spec.bias.map(|init| {
                    let mut rng = streams.stream(&format!("init/{}/bias", spec.name));
                    // A bias of length L has fan_in = fan_out = L (TensorFlow's convention).
                    let drawn: DMatrix<T> = init.draw_bias(rows, &mut rng);
                    DVector::from_column_slice(drawn.as_slice())
                });
                if let Geometry::Sparse(kind) = spec.geometry {
                    let mut connect = streams.stream(&format!("connect/{}", spec.name));
                    let structure = SparseStructure::draw(kind, rows, cols, &mut connect);
                    let values: DMatrix<T> =
                        spec.init
                            .draw_with_fans(structure.len(), 1, fan_in, fan_out, &mut rng);
                    return Projection::new_sparse(structure, values.as_slice().to_vec(), bias);
                }
                let weights = spec.init.draw_with_fans(rows, cols, fan_in, fan_out, &mut rng);
                Projection::new(weights, bias)
            })
            .collect();
        Self {
            blueprint: blueprint.clone(),
            projections,
        }
    }

    /// The validated structure.
    pub fn blueprint(&self) -> &CircuitBlueprint {
        &self.blueprint
    }

    /// Applies every pending update, so that weights read afterwards are current.
    pub fn flush(&mut self) {
        for p in &mut self.projections {
            p.flush();
        }
    }

    /// The current weights of projection `index` (`post × pre`), pending updates applied
    /// first. Taking `&mut self` is what makes a stale read impossible: a step may leave an
    /// update pending (to fuse it with the next product), and only a flush makes it visible.
    /// A sparse projection's matrix is built from its synapses (zero elsewhere).
    pub fn weights(&mut self, index: usize) -> &DMatrix<T> {
        self.projections[index].dense()
    }

    /// Mutable weights of projection `index` (pending updates applied first). For a sparse
    /// projection only the entries at its synapses are kept.
    pub fn weights_mut(&mut self, index: usize) -> &mut DMatrix<T> {
        self.projections[index].dense_mut()
    }

    /// The synapses and weights (one per synapse) of sparse projection `index`; `None` for
    /// other projections.
    pub fn sparse_weights(&mut self, index: usize) -> Option<(&SparseStructure, &[T])> {
        self.projections[index].sparse()
    }

    /// The bias of projection `index`, if it has one.
    pub fn bias(&self, index: usize) -> Option<&DVector<T>> {
        self.projections[index].bias.as_ref()
    }

    /// The bias of projection `index`, to change in place, if it has one.
    pub fn bias_mut(&mut self, index: usize) -> Option<&mut DVector<T>> {
        self.projections[index].bias.as_mut()
    }

    /// The plastic projections' current weights (pending updates applied), for post-update
    /// steps.
    pub fn plastic_weights(&mut self) -> Vec<crate::PlasticWeights<'_, T>> {
        let bp = &self.blueprint;
        bp.projections()
            .iter()
            .zip(self.projections.iter_mut())
            .filter(|(spec, _)| spec.plastic)
            .map(|(spec, state)| crate::PlasticWeights {
                name: &spec.name,
                weights: state.dense_mut(),
            })
            .collect()
    }

    /// Runs post-update steps in order on the plastic projections' current weights.
    pub fn apply_post_updates(
        &mut self,
        steps: &mut [Box<dyn crate::PostUpdate<T>>],
    ) -> Result<(), crate::RuleError> {
        if !steps.is_empty() {
            let mut weights = self.plastic_weights();
            for step in steps.iter_mut() {
                step.apply(&mut weights)?;
            }
        }
        Ok(())
    }

    /// Whether any weight or bias is NaN or infinite (pending updates applied first).
    pub fn has_non_finite(&mut self) -> bool {
        self.projections.iter_mut().any(|p| {
            let weights = if p.sparse.is_some() {
                p.flush();
                p.sparse.as_ref().map_or(&[][..], |s| &s.values)
            } else {
                p.dense().as_slice()
            };
            weights.iter().any(|w| !w.is_finite())
                || p.bias.as_ref().is_some_and(|b| b.iter().any(|w| !w.is_finite()))
        })
    }
}
