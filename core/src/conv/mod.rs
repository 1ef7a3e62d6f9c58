//! Convolution and pooling between populations laid out as feature maps.
//!
//! A population with a `shape: (c, h, w)` holds, for each sample, `c` maps of `h × w` units,
//! flattened channel first (`index = (channel · h + y) · w + x`, PyTorch's and CIFAR-10's
//! order), so a dense projection from it is a "flatten".
//!
//! # Convolution as GEMM
//! A kernel `K` is stored as a `c_out × (c_in · k · k)` matrix. The presynaptic maps of a
//! sample unfold into *patches* `P_b` (`c_in·k·k × h_out·w_out`, one column per output
//! position; im2col). Passes work per sample, samples in parallel, on the sample's *position
//! rows* `Q_b = P_bᵀ` unfolded into a buffer of the thread that stays in cache: the
//! pre-activation block of the sample, viewed as the `h_out·w_out × c_out` column-major matrix
//! it is in memory, is `Q_b Kᵀ`; the error of the input maps folds back from `E_b K`.
//!
//! Rules see the postsynaptic quantities unfolded to `c_out × batch·h_out·w_out` and, as
//! presynaptic activity, the patches of the whole batch side by side (`c_in·k·k ×
//! batch·h_out·w_out`), so that `ΔK = U Vᵀ` has the same form as for a dense projection, with
//! `h_out·w_out` columns per sample. Those patches (tens of MB) are formed only if a rule reads
//! them; a rule that multiplies by the presynaptic activity says so
//! (`ProjectionContext::add_outer_with_pre`) and the update is summed per sample from position
//! rows in cache ([`ConvGeometry::add_outer_per_sample`]).
//!
//! # Pooling
//! Max and average pooling over `window × window` blocks (no padding) have no weights.
//! The perturbed pass propagates differences without cancellation as everywhere else: for
//! average pooling the difference is the average of the differences; for max pooling it is
//! `d[j*]` if the winning unit `j*` of the perturbed window is the clean winner `i*`, and
//! `(a[j*] − a[i*]) + d[j*]` otherwise.

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Real;
use crate::gemm::{Operand, gemm_slices};

mod pool;
pub use pool::PoolGeometry;

/// Channels, height and width of a population laid out as feature maps.
pub type Shape = (usize, usize, usize);

/// How a projection connects its populations.
///
/// | variant | weights | output shape from input `(c, h, w)` |
/// |---------|---------|-------------------------------------|
/// | `Dense` (default) | `post_size × pre_size` | any |
/// | `Conv2d(kernel: k, stride: s, padding: p)` | `c_out × c·k·k` (+ bias per output channel) | `(c_out, (h + 2p − k)/s + 1, (w + 2p − k)/s + 1)` |
/// | `MaxPool(window: k, stride: s)`, `AvgPool(..)` | none | `(c, (h − k)/s + 1, (w − k)/s + 1)` |
/// | `OneToOne` | one per unit, stored compressed | equal sizes |
/// | `Random(p: p)` | each pair with probability `p`, compressed | any |
/// | `FixedInDegree(k: k)` | `k` distinct sources per unit, compressed | any (`k ≤ pre_size`) |
///
/// Both populations of a convolution or pooling projection need a `shape`; `stride`
/// defaults to 1 for convolutions and to the window for pooling, `padding` (zeros) to 0.
/// The sparse kinds run in time only; see [`crate::sparse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "connectivity", deny_unknown_fields)]
pub enum Connectivity {
    /// Every presynaptic unit to every postsynaptic unit.
    #[default]
    Dense,
    /// A 2-D convolution shared across positions.
    Conv2d {
        /// Kernel side `k` (units).
        kernel: usize,
        /// Step between positions (default 1).
        #[serde(default)]
        stride: Option<usize>,
        /// Zeros added on each side (default 0).
        #[serde(default)]
        padding: usize,
    },
    /// The maximum of each window, per channel.
    MaxPool {
        /// Window side.
        window: usize,
        /// Step between windows (default: the window, non-overlapping).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// The mean of each window, per channel.
    AvgPool {
        /// Window side.
        window: usize,
        /// Step between windows (default: the window).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Unit `i` to unit `i` (both populations of one size), e.g. LMAN onto RA.
    OneToOne,
    /// Each (post, pre) pair connected independently with probability `p`.
    Random {
        /// Connection probability, `0 < p ≤ 1`.
        p: f64,
    },
    /// Each postsynaptic unit receives exactly `k` distinct presynaptic units.
    FixedInDegree {
        /// In-degree, `1 ≤ k ≤ pre_size`.
        k: usize,
    },
}

/// Geometry of a validated convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Presynaptic shape.
    pub input: Shape,
    /// Postsynaptic shape.
    pub output: Shape,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub padding: usize,
}

/// Output side of a sliding window, if the window fits.
pub fn output_side(input: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = input + 2 * padding;
    (kernel >= 1 && stride >= 1 && kernel <= padded).then(|| (padded - kernel) / stride + 1)
}

impl ConvGeometry {
    /// Rows of a patch: `c_in · k · k`.
    pub fn patch_len(&self) -> usize {
        self.input.0 * self.kernel * self.kernel
    }
    /// Output positions per channel: `h_out · w_out`.
    pub fn positions(&self) -> usize {
        self.output.1 * self.output.2
    }
    fn input_len(&self) -> usize {
        self.input.0 * self.input.1 * self.input.2
    }
    fn output_len(&self) -> usize {
        self.output.0 * self.positions()
    }

    /// Side lengths of the zero-padded input maps.
    fn padded_sides(&self) -> (usize, usize) {
        (self.input.1 + 2 * self.padding, self.input.2 + 2 * self.padding)
    }

    /// One sample's input maps with `padding` zeros around each (into `padded`), or the
    /// maps themselves when there is no padding: every window then lies inside.
    fn padded_maps<'a, T: Real>(&self, input: &'a [T], padded: &'a mut Vec<T>) -> &'a [T] {
        if self.padding == 0 {
            return input;
        }
        self.zeroed_padded_maps(padded);
        let width = self.input.2;
        for (inside, start) in self.padded_map_rows() {
            copy_short(&mut padded[inside..inside + width], &input[start..start + width]);
        }
        padded
    }

    /// `padded` resized to the padded maps of one sample and zeroed.
    fn zeroed_padded_maps<T: Real>(&self, padded: &mut Vec<T>) {
        let (hp, wp) = self.padded_sides();
        padded.clear();
        padded.resize(self.input.0 * hp * wp, T::zero());
    }

    /// For each row of each input map: where it starts inside the padded maps, and in the
    /// unpadded ones.
    fn padded_map_rows(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let (channels, height, width) = self.input;
        let (hp, wp) = self.padded_sides();
        let p = self.padding;
        (0..channels * height).map(move |row| {
            let (c, y) = (row / height, row % height);
            ((c * hp + y + p) * wp + p, row * width)
        })
    }

    /// Start, in the padded maps, of each kernel row (`c`, `ky`) of the window at (`oy`, `ox`).
    fn window_rows(&self, oy: usize, ox: usize) -> impl Iterator<Item = usize> + use<> {
        let (hp, wp) = self.padded_sides();
        let (k, s) = (self.kernel, self.stride);
        (0..self.input.0).flat_map(move |c| (0..k).map(move |ky| (c * hp + oy * s + ky) * wp + ox * s))
    }

    /// Unfolds one sample's input maps into its patches (`patch_len × positions`, column-major).
    /// Kernel rows are copied as fixed-size arrays for the common sides (a call to `memcpy`
    /// per 5-value row took a third of a convnet step).
    fn im2col<T: Real>(&self, input: &[T], padded: &mut Vec<T>, patches: &mut [T]) {
        let source = self.padded_maps(input, padded);
        match self.kernel {
            3 => self.unfold_rows::<T, 3>(source, patches),
            5 => self.unfold_rows::<T, 5>(source, patches),
            7 => self.unfold_rows::<T, 7>(source, patches),
            k => {
                let positions = patches.chunks_exact_mut(self.patch_len());
                for (pos, column) in positions.enumerate() {
                    let rows = self.window_rows(pos / self.output.2, pos % self.output.2);
                    for (out, start) in column.chunks_exact_mut(k).zip(rows) {
                        out.copy_from_slice(&source[start..start + k]);
                    }
                }
            }
        }
    }

    fn unfold_rows<T: Real, const K: usize>(&self, source: &[T], patches: &mut [T]) {
        let (hp, wp) = self.padded_sides();
        let s = self.stride;
        let mut columns = patches.chunks_exact_mut(self.patch_len());
        for oy in 0..self.output.1 {
            for ox in 0..self.output.2 {
                let column = columns.next().expect("one column per position");
                let mut out_rows = column.as_chunks_mut::<K>().0.iter_mut();
                for c in 0..self.input.0 {
                    let mut start = (c * hp + oy * s) * wp + ox * s;
                    for _ in 0..K {
                        let out = out_rows.next().expect("K rows per channel");
                        *out = *source[start..]
                            .first_chunk::<K>()
                            .expect("window inside the padded maps");
                        start += wp;
                    }
                }
            }
        }
    }

    /// The patches of a batch (`input_len × batch`) side by side: `patch_len × batch·positions`.
    pub fn patches<T: Real>(&self, input: &DMatrix<T>, patches: &mut DMatrix<T>) {
        let (rows, cols) = (self.patch_len(), input.ncols() * self.positions());
        if patches.shape() != (rows, cols) {
            *patches = DMatrix::zeros(rows, cols);
        }
        let block = rows * self.positions();
        patches
            .as_mut_slice()
            .par_chunks_mut(block)
            .zip(input.as_slice().par_chunks(self.input_len()))
            .for_each_init(Vec::new, |padded, (out, sample)| self.im2col(sample, padded, out));
    }

    /// `out += K ⋆ input` per sample, from the input's patches (see [`ConvGeometry::patches`]).
    pub fn forward_from_patches<T: Real>(
        &self,
        kernel: &DMatrix<T>,
        patches: &DMatrix<T>,
        out: &mut DMatrix<T>,
    ) {
        let (positions, rows) = (self.positions(), self.patch_len());
        out.as_mut_slice()
            .par_chunks_mut(self.output_len())
            .zip(patches.as_slice().par_chunks(rows * positions))
            .for_each(|(out, patches)| self.add_sample_product(kernel, patches, out));
    }

    /// `out += Pᵀ Kᵀ` for one sample: its block of `out`, column-major `positions × c_out`,
    /// from its patches `P` (`patch_len × positions`).
    fn add_sample_product<T: Real>(&self, kernel: &DMatrix<T>, patches: &[T], out: &mut [T]) {
        let (positions, rows) = (self.positions(), self.patch_len());
        gemm_slices(
            out,
            positions,
            self.output.0,
            true,
            T::one(),
            Operand::slice(patches, rows, positions).t(),
            Operand::transposed(kernel),
            false,
        );
    }

    /// Unfolds one sample's input maps into its *position rows* `Q = Pᵀ` (`positions ×
    /// patch_len`, column-major): for each kernel entry (`c`, `ky`, `kx`) the values it meets
    /// at every output position, so that a row of output positions is one contiguous copy
    /// from a row of the padded maps (the layout of the per-sample products below).
    fn unfold_positions<T: Real>(&self, input: &[T], padded: &mut Vec<T>, rows: &mut Vec<T>) {
        let (positions, patch_len) = (self.positions(), self.patch_len());
        rows.resize(positions * patch_len, T::zero());
        let source = self.padded_maps(input, padded);
        let (_, width) = (self.output.1, self.output.2);
        for (entry, column) in rows.chunks_exact_mut(positions).enumerate() {
            for (oy, out) in column.chunks_exact_mut(width).enumerate() {
                let start = self.entry_start(entry, oy);
                if self.stride == 1 {
                    copy_short(out, &source[start..start + width]);
                } else {
                    let row = source[start..].iter().step_by(self.stride);
                    out.iter_mut().zip(row).for_each(|(o, &v)| *o = v);
                }
            }
        }
    }

    /// Start, in the padded maps, of what kernel entry `entry` (`(c·k + ky)·k + kx`) meets
    /// along output row `oy`.
    fn entry_start(&self, entry: usize, oy: usize) -> usize {
        let (hp, wp) = self.padded_sides();
        let k = self.kernel;
        let (c, ky, kx) = (entry / (k * k), (entry / k) % k, entry % k);
        (c * hp + oy * self.stride + ky) * wp + kx
    }

    /// Adds one sample's position-row gradients (`positions × patch_len`) back onto its input
    /// maps: the adjoint of [`ConvGeometry::unfold_positions`].
    fn fold_positions<T: Real>(&self, rows: &[T], padded: &mut Vec<T>, input: &mut [T]) {
        self.zeroed_padded_maps(padded);
        let width = self.output.2;
        for (entry, column) in rows.chunks_exact(self.positions()).enumerate() {
            for (oy, gradients) in column.chunks_exact(width).enumerate() {
                let start = self.entry_start(entry, oy);
                if self.stride == 1 {
                    let row = &mut padded[start..start + width];
                    row.iter_mut().zip(gradients).for_each(|(r, &g)| *r += g);
                } else {
                    let row = padded[start..].iter_mut().step_by(self.stride);
                    row.zip(gradients).for_each(|(r, &g)| *r += g);
                }
            }
        }
        let width = self.input.2;
        for (inside, start) in self.padded_map_rows() {
            let row = &mut input[start..start + width];
            row.iter_mut()
                .zip(&padded[inside..inside + width])
                .for_each(|(r, &g)| *r += g);
        }
    }

    /// `out += K ⋆ input (+ bias per output channel)` per sample (`input_len × batch` to
    /// `output_len × batch`), each sample's position rows unfolded into a buffer of its thread
    /// that stays in cache: `out_b += Q_b Kᵀ`, one GEMM per sample on plain operands.
    pub fn forward<T: Real>(
        &self,
        kernel: &DMatrix<T>,
        bias: Option<&[T]>,
        input: &DMatrix<T>,
        out: &mut DMatrix<T>,
    ) {
        let (positions, out_channels, rows) = (self.positions(), self.output.0, self.patch_len());
        out.as_mut_slice()
            .par_chunks_mut(self.output_len())
            .zip(input.as_slice().par_chunks(self.input_len()))
            .for_each(|(out, sample)| {
                with_scratch(|s: &mut Scratch<T>| {
                    self.unfold_positions(sample, &mut s.padded, &mut s.rows);
                    gemm_slices(
                        out,
                        positions,
                        out_channels,
                        true,
                        T::one(),
                        Operand::slice(&s.rows, positions, rows),
                        Operand::transposed(kernel),
                        false,
                    );
                });
                for (channel, &b) in out.chunks_exact_mut(positions).zip(bias.unwrap_or_default()) {
                    channel.iter_mut().for_each(|u| *u += b);
                }
            });
    }

    /// `grad_input += Kᵀ ⋆ error` per sample: the error of the presynaptic maps from that of
    /// the postsynaptic pre-activations (`output_len × batch`), through each sample's
    /// position-row gradients `E_b K` (`E_b` the sample's `positions × c_out` block).
    pub fn backward_input<T: Real>(
        &self,
        kernel: &DMatrix<T>,
        error: &DMatrix<T>,
        grad_input: &mut DMatrix<T>,
    ) {
        let (positions, out_channels, rows) = (self.positions(), self.output.0, self.patch_len());
        grad_input
            .as_mut_slice()
            .par_chunks_mut(self.input_len())
            .zip(error.as_slice().par_chunks(self.output_len()))
            .for_each(|(grad, error)| {
                with_scratch(|s: &mut Scratch<T>| {
                    s.rows.resize(positions * rows, T::zero());
                    gemm_slices(
                        &mut s.rows,
                        positions,
                        rows,
                        false,
                        T::one(),
                        Operand::slice(error, positions, out_channels),
                        Operand::plain(kernel),
                        false,
                    );
                    self.fold_positions(&s.rows, &mut s.padded, grad);
                })
            });
    }

    /// `K += scale · Σ_b c_b U_b P_bᵀ`: a rule's update with the clean input's patches as the
    /// presynaptic factor, without forming the patches of the whole batch. `post` is
    /// `c_out × batch·positions` (`U_b` its block of sample `b`), `input` the presynaptic maps
    /// (`input_len × batch`), `c_b` the sample weights (all ones if `None`).
    ///
    /// The batch is cut into at most [`UPDATE_GROUPS`] groups of consecutive samples, fixed
    /// by the batch size alone; each group sums its samples' products (position rows unfolded
    /// in cache) into its own partial sum in `partials`, and the partials are added to `K` in
    /// order: the same numbers on any number of threads.
    pub fn add_outer_per_sample<T: Real>(
        &self,
        kernel: &mut DMatrix<T>,
        scale: T,
        post: &DMatrix<T>,
        sample_weights: Option<&[T]>,
        input: &DMatrix<T>,
        partials: &mut Vec<T>,
    ) {
        let (positions, out_channels, rows) = (self.positions(), self.output.0, self.patch_len());
        let batch = input.ncols();
        assert_eq!(
            post.shape(),
            (out_channels, batch * positions),
            "post factors: c_out × batch·positions"
        );
        let per_group = batch.div_ceil(UPDATE_GROUPS).max(1);
        let kernel_len = out_channels * rows;
        partials.resize(batch.div_ceil(per_group) * kernel_len, T::zero());
        let inputs = input.as_slice().chunks(self.input_len());
        let posts = post.as_slice().chunks(out_channels * positions);
        let samples: Vec<(usize, &[T], &[T])> = inputs
            .zip(posts)
            .enumerate()
            .map(|(b, (x, u))| (b, x, u))
            .collect();
        partials
            .par_chunks_mut(kernel_len)
            .zip(samples.par_chunks(per_group))
            .for_each(|(partial, group)| {
                with_scratch(|s: &mut Scratch<T>| {
                    for (i, &(b, x, u)) in group.iter().enumerate() {
                        self.unfold_positions(x, &mut s.padded, &mut s.rows);
                        gemm_slices(
                            partial,
                            out_channels,
                            rows,
                            i > 0,
                            sample_weights.map_or(T::one(), |c| c[b]),
                            Operand::slice(u, out_channels, positions),
                            Operand::slice(&s.rows, positions, rows),
                            false,
                        );
                    }
                })
            });
        let kernel = kernel.as_mut_slice();
        for partial in partials.chunks_exact(kernel_len) {
            kernel.iter_mut().zip(partial).for_each(|(k, &p)| *k += scale * p);
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of feature maps (tens of values), in
/// fixed-size blocks the compiler turns into vector moves: a call to `memmove` per row took
/// a tenth of a convnet step.
fn copy_short<T: Real>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "rows of one length");
    let (blocks, rest) = dst.as_chunks_mut::<8>();
    let (source_blocks, source_rest) = src.as_chunks::<8>();
    blocks.iter_mut().zip(source_blocks).for_each(|(d, s)| *d = *s);
    rest.iter_mut().zip(source_rest).for_each(|(d, &s)| *d = s);
}

/// Groups of samples whose parts of a convolution's update are summed separately (in
/// parallel) before they are added up in order: enough to keep two to eight threads busy.
pub const UPDATE_GROUPS: usize = 8;

/// A thread's buffers for per-sample products: position rows and padded maps.
struct Scratch<T> {
    rows: Vec<T>,
    padded: Vec<T>,
}

std::thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's [`Scratch`] buffers, kept from call to call (allocating
/// hundreds of kB per call cost page faults on every step).
fn with_scratch<T: Real, R>(f: impl FnOnce(&mut Scratch<T>) -> R) -> R {
    let kept = SCRATCH.with(|s| s.borrow_mut().take());
    let mut scratch = kept
        .and_then(|b| b.downcast::<Scratch<T>>().ok())
        .unwrap_or_else(|| {
            Box::new(Scratch {
                rows: Vec::new(),
                padded: Vec::new(),
            })
        });
    let result = f(&mut scratch);
    SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
    result
}

/// `channels × batch·positions` from population layout (`channels·positions × batch`): each
/// sample's block transposed, so that each column is one position of one sample.
pub fn unfold_channels<T: Real>(maps: &DMatrix<T>, channels: usize, out: &mut DMatrix<T>) {
    let positions = maps.nrows() / channels;
    let cols = maps.ncols() * positions;
    if out.shape() != (channels, cols) {
        *out = DMatrix::zeros(channels, cols);
    }
    out.as_mut_slice()
        .par_chunks_mut(channels * positions)
        .zip(maps.as_slice().par_chunks(channels * positions))
        .for_each(|(out, sample)| {
            // Blocks of positions, so that the rows being written stay in the L1 cache.
            const BLOCK: usize = 16;
            for first in (0..positions).step_by(BLOCK) {
                let block = BLOCK.min(positions - first);
                let rows = &mut out[first * channels..][..block * channels];
                for c in 0..channels {
                    let values = &sample[c * positions + first..][..block];
                    for (row, &v) in rows.chunks_exact_mut(channels).zip(values) {
                        row[c] = v;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform_values as values;

    /// Convolution by its definition, loop by loop.
    fn direct_conv(g: &ConvGeometry, kernel: &DMatrix<f64>, input: &[f64]) -> Vec<f64> {
        let (ci, h, w) = g.input;
        let (co, ho, wo) = g.output;
        let k = g.kernel;
        let mut out = vec![0.0; co * ho * wo];
        for o in 0..co {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = 0.0;
                    for c in 0..ci {
                        for ky in 0..k {
                            for kx in 0..k {
                                let y = (oy * g.stride + ky) as isize - g.padding as isize;
                                let x = (ox * g.stride + kx) as isize - g.padding as isize;
                                if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                                    sum += kernel[(o, (c * k + ky) * k + kx)]
                                        * input[(c * h + y as usize) * w + x as usize];
                                }
                            }
                        }
                    }
                    out[(o * ho + oy) * wo + ox] = sum;
                }
            }
        }
        out
    }

    fn geometry(ci: usize, h: usize, w: usize, co: usize, k: usize, s: usize, p: usize) -> ConvGeometry {
        ConvGeometry {
            input: (ci, h, w),
            output: (
                co,
                output_side(h, k, s, p).unwrap(),
                output_side(w, k, s, p).unwrap(),
            ),
            kernel: k,
            stride: s,
            padding: p,
        }
    }

    #[test]
    fn gemm_convolution_matches_the_definition() {
        for (case, g) in [
            geometry(3, 7, 6, 4, 3, 1, 1),
            geometry(2, 8, 8, 5, 5, 2, 2),
            geometry(1, 5, 9, 3, 2, 3, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let batch = 3;
            let kernel = DMatrix::from_vec(g.output.0, g.patch_len(), values(g.output.0 * g.patch_len(), 1));
            let input = DMatrix::from_vec(g.input_len(), batch, values(g.input_len() * batch, 2));
            let mut patches = DMatrix::zeros(0, 0);
            g.patches(&input, &mut patches);
            let mut out = DMatrix::from_element(g.output_len(), batch, 1.0);
            g.forward_from_patches(&kernel, &patches, &mut out);
            let mut fused = DMatrix::from_element(g.output_len(), batch, 1.0);
            g.forward(&kernel, None, &input, &mut fused);
            for b in 0..batch {
                let expected = direct_conv(&g, &kernel, input.column(b).as_slice());
                for (i, e) in expected.iter().enumerate() {
                    for (path, out) in [("patches", &out), ("per sample", &fused)] {
                        assert!(
                            (out[(i, b)] - 1.0 - e).abs() < 1e-12,
                            "case {case} ({path}) sample {b} unit {i}"
                        );
                    }
                }
            }
        }
    }

    proptest::proptest! {
        // Random geometries (kernel sides 1–7: the fixed-size copies of 3, 5 and 7 and the
        // generic path): the GEMM path equals the definition to 1e-12 in f64 and to
        // 2e-6 per tap in f32 (inputs and weights in [-0.5, 0.5]).
        #[test]
        fn gemm_convolution_matches_the_definition_for_any_geometry(
            ci in 1usize..4, co in 1usize..5, h in 1usize..9, w in 1usize..9,
            k in 1usize..8, s in 1usize..4, p in 0usize..4, batch in 1usize..3, seed in 0u64..1000,
        ) {
            let (Some(ho), Some(wo)) = (output_side(h, k, s, p), output_side(w, k, s, p)) else {
                return Ok(());
            };
            let g = ConvGeometry { input: (ci, h, w), output: (co, ho, wo), kernel: k, stride: s, padding: p };
            let kernel = DMatrix::from_vec(co, g.patch_len(), values(co * g.patch_len(), seed));
            let input = DMatrix::from_vec(g.input_len(), batch, values(g.input_len() * batch, seed + 1));
            let (mut patches, mut out) = (DMatrix::zeros(0, 0), DMatrix::zeros(g.output_len(), batch));
            g.patches(&input, &mut patches);
            g.forward_from_patches(&kernel, &patches, &mut out);
            // Unfolding position rows per sample in cache: the same up to rounding.
            let mut fused = DMatrix::zeros(g.output_len(), batch);
            g.forward(&kernel, None, &input, &mut fused);
            let (kernel32, input32) = (kernel.map(|v| v as f32), input.map(|v| v as f32));
            let (mut patches32, mut out32) = (DMatrix::zeros(0, 0), DMatrix::zeros(g.output_len(), batch));
            g.patches(&input32, &mut patches32);
            g.forward_from_patches(&kernel32, &patches32, &mut out32);
            let mut fused32 = DMatrix::zeros(g.output_len(), batch);
            g.forward(&kernel32, None, &input32, &mut fused32);
            for b in 0..batch {
                let expected = direct_conv(&g, &kernel, input.column(b).as_slice());
                for (i, e) in expected.iter().enumerate() {
                    proptest::prop_assert!((out[(i, b)] - e).abs() < 1e-12);
                    proptest::prop_assert!((fused[(i, b)] - e).abs() < 1e-12);
                    for out32 in [&out32, &fused32] {
                        proptest::prop_assert!((f64::from(out32[(i, b)]) - e).abs() < 2e-6 * g.patch_len() as f64);
                    }
                }
            }
            // The backward pass is the adjoint: ⟨E, conv(x)⟩ = ⟨convᵀ(E), x⟩ to 1e-12.
            let error = DMatrix::from_vec(g.output_len(), batch, values(g.output_len() * batch, seed + 2));
            let mut back = DMatrix::zeros(g.input_len(), batch);
            g.backward_input(&kernel, &error, &mut back);
            proptest::prop_assert!((error.dot(&out) - back.dot(&input)).abs() < 1e-12 * (1.0 + error.dot(&out).abs()));
        }
    }

    #[test]
    fn backward_input_is_the_adjoint_of_the_convolution() {
        // ⟨E, conv(x)⟩ = ⟨convᵀ(E), x⟩ for random x and E, to 1e-12.
        let g = geometry(3, 6, 7, 2, 3, 2, 1);
        let batch = 2;
        let kernel = DMatrix::from_vec(g.output.0, g.patch_len(), values(g.output.0 * g.patch_len(), 3));
        let x = DMatrix::from_vec(g.input_len(), batch, values(g.input_len() * batch, 4));
        let e = DMatrix::from_vec(g.output_len(), batch, values(g.output_len() * batch, 5));
        let mut patches = DMatrix::zeros(0, 0);
        g.patches(&x, &mut patches);
        let mut y = DMatrix::zeros(g.output_len(), batch);
        g.forward_from_patches(&kernel, &patches, &mut y);
        let mut back = DMatrix::zeros(g.input_len(), batch);
        g.backward_input(&kernel, &e, &mut back);
        assert!((e.dot(&y) - back.dot(&x)).abs() < 1e-12);
    }

    #[test]
    fn update_per_sample_matches_the_product_with_the_batch_patches() {
        // K += s Σ_b c_b U_b P_bᵀ per sample (groups of samples summed apart, position rows in
        // cache) against one product with the materialised patches, to 1e-12 in f64; the
        // same bits on 1 and 2 threads.
        use crate::test_support::on_threads;
        for g in [geometry(3, 7, 6, 4, 3, 1, 1), geometry(2, 8, 8, 5, 5, 2, 2)] {
            let batch = 11;
            let kernel = DMatrix::from_vec(g.output.0, g.patch_len(), values(g.output.0 * g.patch_len(), 1));
            let input = DMatrix::from_vec(g.input_len(), batch, values(g.input_len() * batch, 2));
            let cols = batch * g.positions();
            let post = DMatrix::from_vec(g.output.0, cols, values(g.output.0 * cols, 3));
            let weights: Vec<f64> = values(batch, 4);
            let mut patches = DMatrix::zeros(0, 0);
            g.patches(&input, &mut patches);
            let mut scaled = post.clone();
            for (j, mut column) in scaled.column_iter_mut().enumerate() {
                column *= weights[j / g.positions()];
            }
            let expected = &kernel + (&scaled * patches.transpose()) * 0.3;
            let run = |threads| {
                on_threads(threads, || {
                    let mut k = kernel.clone();
                    g.add_outer_per_sample(&mut k, 0.3, &post, Some(&weights), &input, &mut Vec::new());
                    k
                })
            };
            let one = run(1);
            assert!((&one - &expected).amax() < 1e-12);
            assert_eq!(one, run(2));
        }
    }

    #[test]
    fn unfolding_in_blocks_matches_the_definition() {
        // 37 positions: two full blocks of 16 and a remainder of 5, for 3 channels, 2 samples.
        let (channels, positions, batch) = (3, 37, 2);
        let maps = DMatrix::from_vec(
            channels * positions,
            batch,
            values(channels * positions * batch, 9),
        );
        let mut out = DMatrix::zeros(0, 0);
        unfold_channels(&maps, channels, &mut out);
        assert_eq!(out.shape(), (channels, positions * batch));
        for b in 0..batch {
            for c in 0..channels {
                for p in 0..positions {
                    assert_eq!(out[(c, b * positions + p)], maps[(c * positions + p, b)]);
                }
            }
        }
    }

    #[test]
    fn unfolding_puts_one_position_of_one_sample_per_column() {
        let maps = DMatrix::from_vec(6, 2, (0..12).map(f64::from).collect());
        let mut out = DMatrix::zeros(0, 0);
        unfold_channels(&maps, 2, &mut out);
        // Sample 0: channel 0 = [0, 1, 2], channel 1 = [3, 4, 5].
        assert_eq!(out.column(0).as_slice(), [0.0, 3.0]);
        assert_eq!(out.column(2).as_slice(), [2.0, 5.0]);
        assert_eq!(out.column(3).as_slice(), [6.0, 9.0]);
    }
}
