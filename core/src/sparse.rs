//! Sparse projections: which synapses exist, stored compressed, and the products through
//! them.
//!
//! A sparse projection's synapses are drawn once, when the circuit is instantiated, from the
//! named stream `connect/<projection>`; their weights from `init/<projection>`, one value per
//! existing synapse. They are stored by presynaptic unit (compressed sparse columns of the
//! `post × pre` weight matrix): the synapses of presynaptic unit `j` are a contiguous run,
//! sorted by postsynaptic unit. A spike — or any nonzero activity — of `j` then costs exactly
//! its outgoing synapses, which is what makes propagation event-driven.
//!
//! | connectivity | synapses | drawn how |
//! |---|---|---|
//! | `OneToOne` | `i ← i` (same size on both sides) | nothing drawn |
//! | `Random(p:)` | each pair `(i, j)` independently with probability `p` | per presynaptic unit, gaps between successive postsynaptic targets are geometric (`O(synapses)` draws) |
//! | `FixedInDegree(k:)` | each postsynaptic unit receives exactly `k` distinct presynaptic units | per postsynaptic unit, `k` distinct units by Floyd's algorithm |
//!
//! A projection from a population onto itself may connect a unit to itself (an autapse), as
//! Brian2's `connect(p=…)` and NEST's `pairwise_bernoulli` do by default.
//!
//! Learning on a sparse projection changes only the synapses that exist: a rule's update
//! `scale · Σ_c U[:, c] V[:, c]ᵀ` is evaluated at the stored entries only (a sampled product),
//! and entries written outside the structure through a dense view are dropped.

use nalgebra::DMatrix;
use rand::Rng;

use crate::{Real, StreamRng};

/// Which synapses a sparse projection has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SparseKind {
    /// Unit `i` to unit `i`.
    OneToOne,
    /// Each pair independently with probability `p`.
    Random {
        /// Connection probability, `0 < p ≤ 1`.
        p: f64,
    },
    /// Each postsynaptic unit from exactly `k` distinct presynaptic units.
    FixedInDegree {
        /// In-degree, `1 ≤ k ≤ pre_size`.
        k: usize,
    },
}

impl SparseKind {
    /// Expected synapses per postsynaptic unit (fan-in) for `pre` presynaptic units.
    pub fn fan_in(&self, pre: usize) -> f64 {
        match *self {
            SparseKind::OneToOne => 1.0,
            SparseKind::Random { p } => p * pre as f64,
            SparseKind::FixedInDegree { k } => k as f64,
        }
    }

    /// Expected synapses per presynaptic unit (fan-out) for `pre` and `post` units.
    pub fn fan_out(&self, pre: usize, post: usize) -> f64 {
        self.fan_in(pre) * post as f64 / pre as f64
    }
}

/// The synapses of a sparse projection, by presynaptic unit.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseStructure {
    rows: usize,
    cols: usize,
    /// Synapses of presynaptic unit `j`: `pre_start[j]..pre_start[j + 1]`.
    pre_start: Vec<usize>,
    /// The postsynaptic unit of each synapse.
    post: Vec<u32>,
}

/// A uniform number in `[0, 1)` with 53 random bits.
fn uniform(rng: &mut StreamRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `0..n` (multiply-shift; bias below `n / 2⁶⁴`).
fn below(rng: &mut StreamRng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

impl SparseStructure {
    /// Draws the synapses of a `rows × cols` (post × pre) projection.
    ///
    /// # Panics
    /// If the sizes do not suit `kind` (checked when the circuit is built).
    pub fn draw(kind: SparseKind, rows: usize, cols: usize, rng: &mut StreamRng) -> Self {
        assert!(
            rows <= u32::MAX as usize,
            "a sparse projection has at most 2^32 postsynaptic units"
        );
        let mut pre_start = Vec::with_capacity(cols + 1);
        pre_start.push(0);
        let mut post = Vec::new();
        match kind {
            SparseKind::OneToOne => {
                assert_eq!(rows, cols, "one-to-one needs equal sizes");
                for j in 0..cols {
                    post.push(j as u32);
                    pre_start.push(j + 1);
                }
            }
            SparseKind::Random { p } => {
                assert!(p > 0.0 && p <= 1.0, "p must lie in (0, 1]");
                let log_miss = (1.0 - p).ln();
                for _ in 0..cols {
                    if p >= 1.0 {
                        post.extend(0..rows as u32);
                    } else {
                        // The gap before the next synapse is geometric: P(gap = g) = (1−p)^g p.
                        let mut i = 0usize;
                        loop {
                            let gap = ((1.0 - uniform(rng)).ln() / log_miss).floor();
                            if gap >= (rows - i) as f64 {
                                break;
                            }
                            i += gap as usize;
                            post.push(i as u32);
                            i += 1;
                        }
                    }
                    pre_start.push(post.len());
                }
            }
            SparseKind::FixedInDegree { k } => {
                assert!(k >= 1 && k <= cols, "k must lie in 1..=pre");
                // Draw each postsynaptic unit's sources, then sort the synapses by source.
                let mut chosen = vec![false; cols];
                let mut sources: Vec<(u32, u32)> = Vec::with_capacity(rows * k);
                let mut picked = Vec::with_capacity(k);
                for i in 0..rows {
                    picked.clear();
                    // Floyd's algorithm: k distinct values of 0..cols with k draws.
                    for top in cols - k..cols {
                        let t = below(rng, top + 1);
                        let value = if chosen[t] { top } else { t };
                        chosen[value] = true;
                        picked.push(value);
                    }
                    for &j in &picked {
                        chosen[j] = false;
                        sources.push((j as u32, i as u32));
                    }
                }
                sources.sort_unstable();
                let mut next = 0;
                for j in 0..cols {
                    while next < sources.len() && sources[next].0 as usize == j {
                        post.push(sources[next].1);
                        next += 1;
                    }
                    pre_start.push(post.len());
                }
            }
        }
        Self {
            rows,
            cols,
            pre_start,
            post,
        }
    }

    /// Builds a structure from `(post, pre)` pairs (for tests and hand-made circuits).
    pub fn from_pairs(rows: usize, cols: usize, pairs: &[(usize, usize)]) -> Self {
        let mut sorted: Vec<(usize, usize)> = pairs.iter().map(|&(i, j)| (j, i)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut pre_start = vec![0];
        let mut post = Vec::with_capacity(sorted.len());
        let mut next = 0;
        for j in 0..cols {
            while next < sorted.len() && sorted[next].0 == j {
                assert!(sorted[next].1 < rows, "postsynaptic unit out of range");
                post.push(sorted[next].1 as u32);
                next += 1;
            }
            pre_start.push(post.len());
        }
        assert_eq!(next, sorted.len(), "presynaptic unit out of range");
        Self {
            rows,
            cols,
            pre_start,
            post,
        }
    }

    /// The synapses as `(post, pre)` pairs with both indices multiplied by `factor` (tests).
    #[cfg(test)]
    fn pairs_scaled(&self, factor: usize) -> Vec<(usize, usize)> {
        (0..self.cols)
            .flat_map(|j| {
                let (targets, _) = self.targets(j);
                targets.iter().map(move |&i| (i as usize * factor, j * factor))
            })
            .collect()
    }

    /// `(post_size, pre_size)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Number of synapses.
    pub fn len(&self) -> usize {
        self.post.len()
    }

    /// Whether there are no synapses.
    pub fn is_empty(&self) -> bool {
        self.post.is_empty()
    }

    /// Synapses per postsynaptic unit.
    pub fn in_degrees(&self) -> Vec<usize> {
        let mut degrees = vec![0; self.rows];
        self.post.iter().for_each(|&i| degrees[i as usize] += 1);
        degrees
    }

    /// The postsynaptic units of presynaptic unit `j`'s synapses, and where its weights
    /// start in the value array.
    pub fn targets(&self, j: usize) -> (&[u32], usize) {
        let range = self.pre_start[j]..self.pre_start[j + 1];
        (&self.post[range.clone()], range.start)
    }

    /// Writes `values` into a dense `post × pre` matrix, zero elsewhere.
    pub fn scatter<T: Real>(&self, values: &[T], dense: &mut DMatrix<T>) {
        if dense.shape() != (self.rows, self.cols) {
            *dense = DMatrix::zeros(self.rows, self.cols);
        } else {
            dense.fill(T::zero());
        }
        for j in 0..self.cols {
            let (targets, start) = self.targets(j);
            for (k, &i) in targets.iter().enumerate() {
                dense[(i as usize, j)] = values[start + k];
            }
        }
    }

    /// Reads the stored entries of a dense `post × pre` matrix into `values`.
    pub fn gather<T: Real>(&self, dense: &DMatrix<T>, values: &mut [T]) {
        for j in 0..self.cols {
            let (targets, start) = self.targets(j);
            for (k, &i) in targets.iter().enumerate() {
                values[start + k] = dense[(i as usize, j)];
            }
        }
    }

    /// `u += W x` for each column of `u` (`rows` each) and `x` (`cols` each), visiting only
    /// the synapses of presynaptic units whose activity is nonzero.
    pub fn accumulate<T: Real>(&self, values: &[T], x: &[T], u: &mut [T]) {
        for (u, x) in u.chunks_exact_mut(self.rows).zip(x.chunks_exact(self.cols)) {
            for (j, &xj) in x.iter().enumerate() {
                if xj != T::zero() {
                    let (targets, start) = self.targets(j);
                    for (&i, &w) in targets.iter().zip(&values[start..start + targets.len()]) {
                        u[i as usize] += xj * w;
                    }
                }
            }
        }
    }

    /// `λ += Wᵀ δ` for each column of `lambda` (`cols` each) and `delta` (`rows` each):
    /// back-propagation through the synapses.
    pub fn accumulate_transposed<T: Real>(&self, values: &[T], delta: &[T], lambda: &mut [T]) {
        for (lambda, delta) in lambda
            .chunks_exact_mut(self.cols)
            .zip(delta.chunks_exact(self.rows))
        {
            for (j, l) in lambda.iter_mut().enumerate() {
                let (targets, start) = self.targets(j);
                let mut sum = T::zero();
                for (&i, &w) in targets.iter().zip(&values[start..start + targets.len()]) {
                    sum += w * delta[i as usize];
                }
                *l += sum;
            }
        }
    }

    /// `W += scale · Σ_c s(c) U[:, c] V[:, c]ᵀ` at the stored synapses only, where `s(c)` is
    /// `sample_scales[c / columns_per_sample]` (1 without them).
    ///
    /// Above [`DENSE_PRODUCT_ABOVE`] of the entries present, the whole product is formed by a
    /// matrix multiplication and read at the synapses (faster for dense-ish projections such
    /// as HVC→RA); below, each synapse's dot product is formed alone, presynaptic units split
    /// over threads.
    pub fn add_sampled_outer<T: Real>(
        &self,
        values: &mut [T],
        scale: T,
        post_factors: &DMatrix<T>,
        sample_scales: Option<&[T]>,
        columns_per_sample: usize,
        pre_factors: &DMatrix<T>,
    ) {
        use rayon::prelude::*;
        let mut scaled = DMatrix::zeros(0, 0);
        let post = match sample_scales {
            Some(c) => {
                crate::kernels::scale_columns(post_factors, c, columns_per_sample, &mut scaled);
                &scaled
            }
            None => post_factors,
        };
        if crate::kernels::nonzero_fraction(pre_factors) < crate::kernels::SPARSE_FACTOR_BELOW {
            // A mostly silent presynaptic side: only the synapses of its active units.
            for (u, v) in post
                .as_slice()
                .chunks_exact(self.rows)
                .zip(pre_factors.as_slice().chunks_exact(self.cols))
            {
                for (j, &x) in v.iter().enumerate() {
                    if x != T::zero() {
                        let a = scale * x;
                        let (targets, start) = self.targets(j);
                        for (w, &i) in values[start..start + targets.len()].iter_mut().zip(targets) {
                            *w += a * u[i as usize];
                        }
                    }
                }
            }
            return;
        }
        let density = self.len() as f64 / (self.rows * self.cols).max(1) as f64;
        if density > DENSE_PRODUCT_ABOVE {
            use crate::gemm::{Operand, gemm};
            let mut product = DMatrix::zeros(self.rows, self.cols);
            gemm(
                &mut product,
                false,
                scale,
                Operand::plain(post),
                Operand::transposed(pre_factors),
            );
            for j in 0..self.cols {
                let (targets, start) = self.targets(j);
                let column = product.column(j);
                for (k, &i) in targets.iter().enumerate() {
                    values[start + k] += column[i as usize];
                }
            }
            return;
        }
        // Rows of U and V as contiguous vectors.
        let (u, v) = (post.transpose(), pre_factors.transpose());
        let mut per_unit = Vec::with_capacity(self.cols);
        let mut rest = values;
        for j in 0..self.cols {
            let (mine, others) = rest.split_at_mut(self.pre_start[j + 1] - self.pre_start[j]);
            per_unit.push((j, mine));
            rest = others;
        }
        per_unit.into_par_iter().for_each(|(j, values)| {
            let vj = v.column(j);
            let (targets, _) = self.targets(j);
            for (w, &i) in values.iter_mut().zip(targets) {
                *w += scale * u.column(i as usize).dot(&vj);
            }
        });
    }
}

/// The fraction of a sparse projection's entries present above which its updates are formed
/// as a dense product (see [`SparseStructure::add_sampled_outer`]).
pub const DENSE_PRODUCT_ABOVE: f64 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform_matrix;
    use rand::SeedableRng;

    #[test]
    fn random_connectivity_has_the_binomial_count_and_no_duplicates() {
        let (rows, cols, p) = (400, 500, 0.02);
        let mut rng = StreamRng::seed_from_u64(3);
        let s = SparseStructure::draw(SparseKind::Random { p }, rows, cols, &mut rng);
        let n = (rows * cols) as f64;
        let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
        // 4 standard deviations of the binomial count: fails by chance with probability 6e-5.
        assert!(
            (s.len() as f64 - mean).abs() < 4.0 * sd,
            "{} synapses, expected {mean} ± {sd}",
            s.len()
        );
        for j in 0..cols {
            let (targets, _) = s.targets(j);
            assert!(targets.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        }
        // Every postsynaptic row is reached at the same rate: the first and second halves
        // of the rows hold as many synapses within 4 sd.
        let first = s.post.iter().filter(|&&i| (i as usize) < rows / 2).count() as f64;
        let half = s.len() as f64 / 2.0;
        assert!(
            (first - half).abs() < 4.0 * (half / 2.0).sqrt(),
            "{first} of {}",
            s.len()
        );
    }

    #[test]
    fn fixed_in_degree_gives_each_unit_k_distinct_sources() {
        let mut rng = StreamRng::seed_from_u64(5);
        let s = SparseStructure::draw(SparseKind::FixedInDegree { k: 7 }, 50, 30, &mut rng);
        assert!(s.in_degrees().iter().all(|&d| d == 7));
        let dense = {
            let mut d = DMatrix::<f64>::zeros(0, 0);
            s.scatter(&vec![1.0; s.len()], &mut d);
            d
        };
        assert_eq!(dense.sum(), 350.0, "no synapse counted twice");
        // Sources are uniform: each presynaptic unit's out-degree averages 50·7/30.
        let full = SparseStructure::draw(SparseKind::FixedInDegree { k: 30 }, 4, 30, &mut rng);
        assert_eq!(full.len(), 120);
    }

    #[test]
    fn products_match_the_dense_matrix_with_zeros() {
        let mut rng = StreamRng::seed_from_u64(11);
        let s = SparseStructure::draw(SparseKind::Random { p: 0.3 }, 6, 9, &mut rng);
        let values: Vec<f64> = (0..s.len()).map(|k| 0.1 * k as f64 - 0.7).collect();
        let mut w = DMatrix::zeros(0, 0);
        s.scatter(&values, &mut w);
        let mut x = uniform_matrix(9, 4, 2);
        x[(3, 1)] = 0.0;
        let mut u = DMatrix::zeros(6, 4);
        s.accumulate(&values, x.as_slice(), u.as_mut_slice());
        assert!((&u - &w * &x).amax() < 1e-14);
        let delta = uniform_matrix(6, 4, 3);
        let mut lambda = DMatrix::zeros(9, 4);
        s.accumulate_transposed(&values, delta.as_slice(), lambda.as_mut_slice());
        assert!((&lambda - w.transpose() * &delta).amax() < 1e-14);
        // The sampled product is the dense update masked by the structure.
        let (post, pre) = (uniform_matrix(6, 4, 4), uniform_matrix(9, 4, 5));
        let scales = [0.5, -2.0];
        let mut updated = values.clone();
        s.add_sampled_outer(&mut updated, 0.3, &post, Some(&scales), 2, &pre);
        // The same through the synapse-by-synapse path (a structure below the density at
        // which the dense product takes over).
        let sparser = SparseStructure::from_pairs(60, 90, &s.pairs_scaled(10));
        assert!((sparser.len() as f64) < DENSE_PRODUCT_ABOVE * 5400.0);
        let big_post = DMatrix::from_fn(60, 4, |i, c| if i % 10 == 0 { post[(i / 10, c)] } else { 0.7 });
        let big_pre = DMatrix::from_fn(90, 4, |j, c| if j % 10 == 0 { pre[(j / 10, c)] } else { -0.3 });
        let mut sparse_path = values.clone();
        sparser.add_sampled_outer(&mut sparse_path, 0.3, &big_post, Some(&scales), 2, &big_pre);
        assert!(
            sparse_path
                .iter()
                .zip(&updated)
                .all(|(a, b)| (a - b).abs() < 1e-14)
        );
        let mut scaled = post.clone();
        for c in 0..4 {
            scaled.column_mut(c).scale_mut(scales[c / 2]);
        }
        let dense_update = &w + &scaled * pre.transpose() * 0.3;
        let mut expected = values.clone();
        s.gather(&dense_update, &mut expected);
        let worst = updated
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-14, "{worst}");
    }

    #[test]
    fn one_to_one_is_the_identity_pattern() {
        let mut rng = StreamRng::seed_from_u64(1);
        let s = SparseStructure::draw(SparseKind::OneToOne, 5, 5, &mut rng);
        let mut d = DMatrix::zeros(0, 0);
        s.scatter(&[1.0f64; 5], &mut d);
        assert_eq!(d, DMatrix::identity(5, 5));
    }
}
