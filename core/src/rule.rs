//! The extension point for plasticity: [`LearningRule`] and [`PostUpdate`].
//!
//! A rule never sees the simulator. Once per step the engine hands it a [`RuleContext`]: the
//! scalar neuromodulatory signal, and for every plastic projection a [`ProjectionContext`] of
//! borrowed views — presynaptic and postsynaptic activity, the noise each postsynaptic unit
//! received, the back-propagated error where the rule asked for it — and the one thing it may
//! change, that projection's weights and bias.

use nalgebra::{DMatrix, DVector};
use thiserror::Error;

use crate::Real;
use crate::circuit::{FactorSources, Projection};
use crate::conv::ConvGeometry;
use crate::on_demand::OnDemand;

/// What a rule needs the engine to compute each step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Requirements {
    /// Run the perturbed pass with each population's intrinsic noise and provide the noise
    /// and the scalar signal.
    pub perturbation: bool,
    /// With `perturbation`: perturb only the output population (REINFORCE's output noise).
    pub output_noise_only: bool,
    /// Back-propagate an output error and provide each population's error (non-local).
    pub backprop: bool,
    /// With `backprop`: back-propagate the perturbation estimate of the output gradient,
    /// `(δℓ_b/σ²) σξ_b`, instead of the true error `a − t` (REINFORCE, paper Eq. 15).
    pub backprop_estimate: bool,
    /// If positive, run the perturbed pass with Gaussian noise of this std on every plastic
    /// weight instead of on the nodes (weight perturbation), one draw per step.
    pub weight_noise_std: f64,
}

/// A failure inside a rule; the run is stopped and recorded as failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleError {
    /// The rule needs something the circuit does not have.
    #[error("rule `{rule}` cannot update projection `{projection}`: {problem}")]
    Unsupported {
        /// The rule.
        rule: String,
        /// The projection.
        projection: String,
        /// What is missing and how to provide it.
        problem: String,
    },
    /// Any other failure, described.
    #[error("rule `{rule}` failed: {message}")]
    Failed {
        /// The rule.
        rule: String,
        /// What happened.
        message: String,
    },
}

/// What a rule may read and change about one plastic projection, for one step.
///
/// Matrices have [`ProjectionContext::columns_per_sample`] consecutive columns per sample of
/// the batch: one for a dense projection; one per output position for a convolution, whose
/// "presynaptic activity" is then the input patch each kernel application sees and whose
/// weights are the kernel (`c_out × c_in·k·k`). Either way `ΔW = U Vᵀ` over these columns is
/// the update a rule means, so rules need not know which kind they update.
///
/// A rule whose presynaptic factor is the presynaptic activity itself (Hebbian, three-factor
/// and gradient rules) should say so with [`ProjectionContext::add_outer_with_pre`] or
/// [`ProjectionContext::add_weighted_outer_with_pre`] rather than pass
/// [`ProjectionContext::pre`]: a convolution then never forms the patches of the whole batch
/// (tens of MB), which [`ProjectionContext::pre`] has to. Likewise a rule whose postsynaptic
/// factor is the noise should pass [`ProjectionContext::post_noise`] itself, not a copy: in a
/// per-sample step the engine has already put the noise and the activity where the update
/// keeps its factors, and skips copying what it recognises as them.
pub struct ProjectionContext<'a, T: Real> {
    /// The projection's name.
    pub name: &'a str,
    pub(crate) pre: Presynaptic<'a, T>,
    pub(crate) post: Postsynaptic<'a, T>,
    /// Columns per sample in `pre`, `post`, `post_noise` and `post_error`.
    pub columns_per_sample: usize,
    /// Noise added to each postsynaptic unit's pre-activation on the perturbed pass
    /// (`σ ξ`, `post_size × batch`); `None` if the population is noiseless or the rule did not
    /// ask for perturbation.
    pub post_noise: Option<&'a DMatrix<T>>,
    /// Standard deviation σ of the postsynaptic population's noise (0 if noiseless).
    pub noise_std: T,
    /// `∂ℓ/∂u` of each postsynaptic unit, `post_size × batch`; only when the rule asked for
    /// back-propagation.
    pub post_error: Option<&'a DMatrix<T>>,
    /// The noise added to each weight on the perturbed pass (`post_size × pre_size`), for
    /// weight perturbation.
    pub weight_noise: Option<&'a DMatrix<T>>,
    pub(crate) state: &'a mut Projection<T>,
}

/// Where a projection's presynaptic factor comes from.
pub(crate) enum Presynaptic<'a, T: Real> {
    /// The activity itself (dense projections; a rendition's steps in the trial engine).
    Activity(&'a DMatrix<T>),
    /// A convolution's patches, formed from the presynaptic maps on first use.
    Patches {
        geometry: ConvGeometry,
        maps: &'a DMatrix<T>,
        patches: &'a OnDemand<T>,
    },
}

/// Where a projection's postsynaptic activity comes from.
pub(crate) enum Postsynaptic<'a, T: Real> {
    /// The activity itself.
    Activity(&'a DMatrix<T>),
    /// A convolution's maps, unfolded to one column per position on first use.
    Unfolded {
        maps: &'a DMatrix<T>,
        channels: usize,
        unfolded: &'a OnDemand<T>,
    },
}

impl<'a, T: Real> ProjectionContext<'a, T> {
    /// Clean presynaptic activity, `pre_size × batch` (for a convolution its patches,
    /// `c_in·k·k × batch·positions`, formed on the first call of the step).
    pub fn pre(&self) -> &'a DMatrix<T> {
        match self.pre {
            Presynaptic::Activity(m) => m,
            Presynaptic::Patches {
                geometry,
                maps,
                patches,
            } => crate::engine::formed_patches(patches, &geometry, maps),
        }
    }

    /// Clean postsynaptic activity, `post_size × batch` (for a convolution unfolded to
    /// `c_out × batch·positions`, on the first call of the step).
    pub fn post(&self) -> &'a DMatrix<T> {
        match self.post {
            Postsynaptic::Activity(m) => m,
            Postsynaptic::Unfolded {
                maps,
                channels,
                unfolded,
            } => unfolded.get_or_form(|formed| crate::conv::unfold_channels(maps, channels, formed)),
        }
    }

    /// Schedules `W += scale · U Xᵀ` with `X` this projection's clean presynaptic activity:
    /// [`ProjectionContext::add_outer`] with [`ProjectionContext::pre`], up to rounding, but
    /// without forming a convolution's patches (each sample's are unfolded in cache and
    /// multiplied at once).
    pub fn add_outer_with_pre(&mut self, scale: T, post_factors: &DMatrix<T>) {
        self.add_outer_with_pre_by(scale, post_factors, None);
    }

    /// [`ProjectionContext::add_weighted_outer`] with [`ProjectionContext::pre`] as the
    /// presynaptic factor, without forming a convolution's patches (as
    /// [`ProjectionContext::add_outer_with_pre`]).
    ///
    /// # Panics
    /// If `sample_weights` does not have one entry per sample.
    pub fn add_weighted_outer_with_pre(&mut self, scale: T, post_factors: &DMatrix<T>, sample_weights: &[T]) {
        self.check_samples(post_factors, sample_weights);
        self.add_outer_with_pre_by(scale, post_factors, Some(sample_weights));
    }

    fn add_outer_with_pre_by(&mut self, scale: T, post_factors: &DMatrix<T>, sample_weights: Option<&[T]>) {
        match self.pre {
            Presynaptic::Activity(pre) => {
                self.check_factors(post_factors, pre);
                let sources = self.sources(post_factors, pre);
                self.state.schedule(
                    scale,
                    post_factors,
                    sample_weights,
                    self.columns_per_sample,
                    pre,
                    sources,
                );
            }
            Presynaptic::Patches { geometry, maps, .. } => {
                let (rows, _) = self.state.shape();
                assert_eq!(
                    post_factors.nrows(),
                    rows,
                    "post factors must have one row per postsynaptic unit"
                );
                self.state
                    .add_convolution_outer(&geometry, scale, post_factors, sample_weights, maps);
            }
        }
    }

    fn check_factors(&self, post_factors: &DMatrix<T>, pre_factors: &DMatrix<T>) {
        let (rows, cols) = self.state.shape();
        assert_eq!(
            post_factors.nrows(),
            rows,
            "post factors must have one row per postsynaptic unit"
        );
        assert_eq!(
            pre_factors.nrows(),
            cols,
            "pre factors must have one row per presynaptic unit"
        );
        assert_eq!(
            post_factors.ncols(),
            pre_factors.ncols(),
            "post and pre factors must have as many columns"
        );
    }

    /// Schedules `W += scale · U Vᵀ` with `U` (`post_size × k`) and `V` (`pre_size × k`).
    ///
    /// This is the fast way to change weights: the engine may apply it fused with the next
    /// product through these weights. Reading the weights afterwards sees the change.
    pub fn add_outer(&mut self, scale: T, post_factors: &DMatrix<T>, pre_factors: &DMatrix<T>) {
        self.check_factors(post_factors, pre_factors);
        let sources = self.sources(post_factors, pre_factors);
        self.state.schedule(
            scale,
            post_factors,
            None,
            self.columns_per_sample,
            pre_factors,
            sources,
        );
    }

    /// Schedules `W += scale · Σ_j c_s(j) U[:, j] V[:, j]ᵀ`: [`ProjectionContext::add_outer`]
    /// with a weight `c_s` per sample `s(j)` of column `j` (for example the per-sample signal
    /// of NP).
    ///
    /// # Panics
    /// If `sample_weights` does not have one entry per sample.
    pub fn add_weighted_outer(
        &mut self,
        scale: T,
        post_factors: &DMatrix<T>,
        sample_weights: &[T],
        pre_factors: &DMatrix<T>,
    ) {
        self.check_factors(post_factors, pre_factors);
        self.check_samples(post_factors, sample_weights);
        let sources = self.sources(post_factors, pre_factors);
        self.state.schedule(
            scale,
            post_factors,
            Some(sample_weights),
            self.columns_per_sample,
            pre_factors,
            sources,
        );
    }

    /// Whether the factors are the step's own postsynaptic noise and presynaptic activity (the
    /// very matrices this context hands out), which the engine may have copied into place.
    fn sources(&self, post_factors: &DMatrix<T>, pre_factors: &DMatrix<T>) -> FactorSources {
        FactorSources {
            post_is_noise: self
                .post_noise
                .is_some_and(|noise| std::ptr::eq(noise, post_factors)),
            pre_is_activity: matches!(self.pre, Presynaptic::Activity(a) if std::ptr::eq(a, pre_factors)),
        }
    }

    fn check_samples(&self, post_factors: &DMatrix<T>, sample_weights: &[T]) {
        assert_eq!(
            sample_weights.len() * self.columns_per_sample,
            post_factors.ncols(),
            "one weight per sample ({} columns each)",
            self.columns_per_sample
        );
    }

    /// `b += scale · Σ_j c_s(j) U[:, j]`, weights per sample as in
    /// [`ProjectionContext::add_weighted_outer`]; does nothing if the projection has no bias.
    pub fn add_weighted_to_bias(&mut self, scale: T, post_factors: &DMatrix<T>, sample_weights: &[T]) {
        self.check_samples(post_factors, sample_weights);
        let per_sample = self.columns_per_sample;
        if let Some(bias) = self.state.bias.as_mut() {
            for (j, column) in post_factors.column_iter().enumerate() {
                bias.axpy(scale * sample_weights[j / per_sample], &column, T::one());
            }
        }
    }

    /// `b += scale · Σ_columns U`; does nothing if the projection has no bias.
    pub fn add_to_bias(&mut self, scale: T, post_factors: &DMatrix<T>) {
        if let Some(bias) = self.state.bias.as_mut() {
            for column in post_factors.column_iter() {
                bias.axpy(scale, &column, T::one());
            }
        }
    }

    /// The current weights, `post_size × pre_size`.
    pub fn weights(&mut self) -> &DMatrix<T> {
        self.state.dense()
    }

    /// The weights, to change in place (for a sparse projection only the entries at its
    /// synapses are kept).
    pub fn weights_mut(&mut self) -> &mut DMatrix<T> {
        self.state.dense_mut()
    }

    /// The bias, to change in place, if the projection has one.
    pub fn bias_mut(&mut self) -> Option<&mut DVector<T>> {
        self.state.bias.as_mut()
    }
}

/// Everything a rule receives for one step.
pub struct RuleContext<'a, T: Real> {
    /// The neuromodulatory signal per sample: `ℓ(noisy) − ℓ(clean)` (paper Eq. 3), computed
    /// without cancellation. Empty if the rule did not ask for perturbation.
    pub signal: &'a [T],
    /// The clean loss per sample.
    pub loss: &'a [T],
    /// The plastic projections, in definition order. Frozen ones are not shown.
    pub projections: Vec<ProjectionContext<'a, T>>,
}

/// A learning rule: turns a step's activity, noise and signal into weight changes.
///
/// # Implementing
/// An implementor **must**
/// - say in [`LearningRule::requirements`] what it reads: the engine only computes the
///   perturbed pass and back-propagated errors when asked;
/// - change weights only through the [`ProjectionContext`]s it is given, preferably with
///   [`ProjectionContext::add_outer`];
/// - treat the batch as a sum: the update for a batch is the sum of the per-sample updates
///   (scenarios scale the learning rate if they want a mean).
///
/// It **need not** check shapes (the engine guarantees them), handle NaN (the simulation
/// detects divergence and stops the run), or be deterministic beyond its inputs (all noise
/// comes from the engine's seeded streams).
pub trait LearningRule<T: Real>: Send {
    /// Short name, recorded with every run.
    fn name(&self) -> &str;
    /// What the engine must compute before calling [`LearningRule::update`].
    fn requirements(&self) -> Requirements;
    /// Changes the weights for one step.
    fn update(&mut self, context: &mut RuleContext<'_, T>) -> Result<(), RuleError>;
    /// The loss the last update compared its noisy losses with (the reward baseline, as a
    /// loss, averaged over the update's samples), recorded as `baseline` in tasks in time.
    /// Rules without a baseline need not implement it (`None`).
    fn last_baseline(&self) -> Option<f64> {
        None
    }
}

/// The weights of one plastic projection, for a [`PostUpdate`] step.
pub struct PlasticWeights<'a, T: Real> {
    /// The projection's name.
    pub name: &'a str,
    /// Its weights, `post_size × pre_size`, current (all updates applied).
    pub weights: &'a mut DMatrix<T>,
}

/// A step applied after every rule update, such as weight normalisation (synaptic scaling)
/// or weight decay. Steps compose: a scenario lists any number, applied in order.
///
/// # Implementing
/// An implementor **must** change only the weights it is given; it **need not** apply
/// itself to every projection (it may select some by name). [`PostUpdate::initialise`] sees
/// the initial weights once before the first step, for steps whose target is the initial
/// state.
pub trait PostUpdate<T: Real>: Send {
    /// Short name, recorded with every run.
    fn name(&self) -> &str;
    /// Called once with the initial weights.
    fn initialise(&mut self, _projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError> {
        Ok(())
    }
    /// Called after every update.
    fn apply(&mut self, projections: &mut [PlasticWeights<'_, T>]) -> Result<(), RuleError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform_matrix;

    #[test]
    fn dense_updates_are_deferred_and_convolution_updates_applied_at_once() {
        // A convolution's factors (a column per position and sample) are too large to copy
        // for later; a dense projection's are deferred to the next product. Either way the
        // weights read afterwards include the change.
        let (post, pre) = (uniform_matrix(3, 8, 2), uniform_matrix(5, 8, 3));
        let expected = uniform_matrix(3, 5, 1) + &post * pre.transpose() * 0.5;
        for columns_per_sample in [1, 4] {
            let mut state = Projection::new(uniform_matrix(3, 5, 1), None);
            let mut context = ProjectionContext {
                name: "p",
                pre: Presynaptic::Activity(&pre),
                post: Postsynaptic::Activity(&post),
                columns_per_sample,
                post_noise: None,
                noise_std: 0.0,
                post_error: None,
                weight_noise: None,
                state: &mut state,
            };
            context.add_outer(0.5, &post, &pre);
            assert_eq!(context.state.pending_active, columns_per_sample == 1);
            assert!((context.weights() - &expected).amax() < 1e-14);
        }
    }
}
