//! The instantiated circuit: weights and biases drawn from named streams, and the weight
//! updates a step leaves pending to apply them fused with the next product.

use nalgebra::{DMatrix, DVector};

use super::CircuitBlueprint;
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

/// A projection's state during a run.
#[derive(Debug, Clone)]
pub struct Projection<T: Real> {
    pub(crate) weights: DMatrix<T>,
    pub(crate) bias: Option<DVector<T>>,
    /// Buffers of the pending update, kept between steps to avoid reallocating.
    pub(crate) pending: PendingUpdate<T>,
    pub(crate) pending_active: bool,
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
        }
    }

    /// Applies any pending update now.
    pub(crate) fn flush(&mut self) {
        if self.pending_active {
            let p = &self.pending;
            crate::kernels::apply_outer(&mut self.weights, p.scale, &p.post_factors, &p.pre_factors);
            self.pending_active = false;
        }
    }

    /// `W += scale · (U diag(c)) Vᵀ`, where `c` repeats each of `sample_scales` (all ones if
    /// `None`) over `columns_per_sample` consecutive columns. Changes to dense weights are
    /// deferred, to be applied together with the next product through `W` (or by
    /// [`Projection::flush`]); a convolution's are applied at once.
    pub(crate) fn schedule(
        &mut self,
        scale: T,
        post: &DMatrix<T>,
        sample_scales: Option<&[T]>,
        columns_per_sample: usize,
        pre: &DMatrix<T>,
    ) {
        self.flush();
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
            // patches): applied now, in one product over all of them, rather than copied.
            use crate::gemm::{Operand, gemm};
            let (u, v) = (Operand::plain(post_factors), Operand::transposed(pre_factors));
            gemm(&mut self.weights, true, scale, u, v);
            return;
        }
        if !scaled_post {
            crate::kernels::copy_into(&mut p.post_factors, post);
        }
        if !scaled_pre {
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
    /// `init/<p>/bias`.
    pub fn instantiate(blueprint: &CircuitBlueprint, streams: &SeedStreams) -> Self {
        let projections = blueprint
            .projections
            .iter()
            .map(|spec| {
                let (rows, cols) = spec.weight_shape(&blueprint.populations);
                let (fan_in, fan_out) = spec.fans(&blueprint.populations);
                let mut rng = streams.stream(&format!("init/{}", spec.name));
                let weights = spec.init.draw_with_fans(rows, cols, fan_in, fan_out, &mut rng);
                let bias = spec.bias.map(|init| {
                    let mut rng = streams.stream(&format!("init/{}/bias", spec.name));
                    // A bias of length L has fan_in = fan_out = L (TensorFlow's convention).
                    let drawn: DMatrix<T> = init.draw_bias(rows, &mut rng);
                    DVector::from_column_slice(drawn.as_slice())
                });
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
    pub fn weights(&mut self, index: usize) -> &DMatrix<T> {
        self.projections[index].flush();
        &self.projections[index].weights
    }

    /// Mutable weights of projection `index` (pending updates applied first).
    pub fn weights_mut(&mut self, index: usize) -> &mut DMatrix<T> {
        self.projections[index].flush();
        &mut self.projections[index].weights
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
            .map(|(spec, state)| {
                state.flush();
                crate::PlasticWeights {
                    name: &spec.name,
                    weights: &mut state.weights,
                }
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
        self.flush();
        self.projections.iter().any(|p| {
            p.weights.iter().any(|w| !w.is_finite())
                || p.bias.as_ref().is_some_and(|b| b.iter().any(|w| !w.is_finite()))
        })
    }
}
