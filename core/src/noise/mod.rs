//! Intrinsic noise of populations: the perturbation source of node perturbation.

mod gaussian;

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::{Real, seed::StreamRng};

/// Intrinsic noise added to a population's pre-activation on the perturbed pass.
///
/// | variant | added to each unit's pre-activation, per sample |
/// |---------|----------------------------|
/// | `None` | nothing: the population is not perturbed |
/// | `Gaussian(std: σ)` | `σ ξ`, `ξ ~ N(0, 1)` independent across units, samples and steps (in the trial engine: and time steps) |
/// | `OrnsteinUhlenbeck(std: σ, tau: τ)` | trial engine only: a stationary Ornstein–Uhlenbeck process of std σ and correlation time τ (ms), `n(t + dt) = ρ n(t) + σ √(1 − ρ²) ξ`, `ρ = e^{−dt/τ}` (exact), `n(0) ~ N(0, σ²)` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "noise", deny_unknown_fields)]
pub enum Noise {
    /// No intrinsic noise.
    #[default]
    None,
    /// Gaussian white noise of standard deviation `std` (units of the pre-activation).
    Gaussian {
        /// Standard deviation σ.
        std: f64,
    },
    /// Temporally correlated Gaussian noise (trial engine only).
    OrnsteinUhlenbeck {
        /// Stationary standard deviation σ.
        std: f64,
        /// Correlation time τ, in ms.
        tau: f64,
    },
}

impl Noise {
    /// The standard deviation (0 for `None`).
    pub fn std(&self) -> f64 {
        match *self {
            Noise::None => 0.0,
            Noise::Gaussian { std } | Noise::OrnsteinUhlenbeck { std, .. } => std,
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Noise::Gaussian { std } | Noise::OrnsteinUhlenbeck { std, .. }
                if !(std > 0.0 && std.is_finite()) =>
            {
                Err(format!(
                    "std must be a finite number > 0, got {std} (use `None` for a noiseless population)"
                ))
            }
            Noise::OrnsteinUhlenbeck { tau, .. } if !(tau > 0.0 && tau.is_finite()) => {
                Err(format!("tau must be a finite number of ms > 0, got {tau}"))
            }
            _ => Ok(()),
        }
    }
}

/// Entries per independently seeded block of noise: small enough that a per-sample step's
/// 10,000 hidden units are shared evenly by two threads (they were 8,192 until 2026-11-30,
/// which left one block of 1,808 for the second thread; the change changed every noise
/// draw beyond the first 1,024 entries of a matrix).
const BLOCK_ENTRIES: usize = gaussian::BLOCK;

/// Fills `out` with `std · ξ`.
///
/// The matrix is cut into fixed blocks of [`BLOCK_ENTRIES`] entries (the last one shorter);
/// each block draws from its own generators, seeded by one draw of `rng` (see
/// [`gaussian`](self::gaussian) for how a block is drawn: since 2026-12-01 a vectorised
/// ziggurat on 16 interleaved xoshiro256++ generators, before it rand_distr's ziggurat on one;
/// the change changed every noise draw). Blocks are filled in parallel, and since neither the
/// cut nor the seeds depend on the thread count, the numbers are the same on any number of
/// threads.
pub fn fill_gaussian<T: Real>(out: &mut DMatrix<T>, std: f64, rng: &mut StreamRng) {
    fill_blocks(out.as_mut_slice(), None, std, rng);
}

/// [`fill_gaussian`], also adding each draw to the same entry of `sum` (a perturbed pass's
/// input, as long as `out`) while it is at hand.
pub fn fill_gaussian_adding<T: Real>(out: &mut DMatrix<T>, sum: &mut [T], std: f64, rng: &mut StreamRng) {
    assert_eq!(sum.len(), out.len(), "noise is added to a matrix of its own size");
    fill_blocks(out.as_mut_slice(), Some(sum), std, rng);
}

/// A block's seed, its entries, and the entries of the sum it is added to, if any.
type NoiseBlock<'a, T> = (u64, &'a mut [T], Option<&'a mut [T]>);

fn fill_blocks<T: Real>(out: &mut [T], sum: Option<&mut [T]>, std: f64, rng: &mut StreamRng) {
    let mut seeds = Vec::new();
    block_seeds(out.len(), rng, &mut seeds);
    let mut sums = sum.map(|sum| sum.chunks_mut(BLOCK_ENTRIES));
    let blocks: Vec<NoiseBlock<'_, T>> = seeds
        .into_iter()
        .zip(out.chunks_mut(BLOCK_ENTRIES))
        .map(|(seed, block)| (seed, block, sums.as_mut().and_then(Iterator::next)))
        .collect();
    let fill = |(seed, block, sum): NoiseBlock<'_, T>| {
        gaussian::fill_block(block, std, seed);
        if let Some(sum) = sum {
            sum.iter_mut().zip(block.iter()).for_each(|(s, &v)| *s += v);
        }
    };
    crate::kernels::for_each_fixed_block(blocks, fill);
}

/// The seeds of the blocks of `len` entries of noise, one draw of `rng` each, in order (into
/// `seeds`, cleared first): [`fill_gaussian`]'s, and those of [`fill_gaussian_part`].
pub(crate) fn block_seeds(len: usize, rng: &mut StreamRng, seeds: &mut Vec<u64>) {
    use rand::Rng;
    seeds.clear();
    seeds.extend((0..len.div_ceil(BLOCK_ENTRIES)).map(|_| rng.next_u64()));
}

/// Entries `offset..offset + out.len()` of the `len` entries [`fill_gaussian`] draws with
/// the blocks' `seeds` ([`block_seeds`]), on this thread: a part of the noise drawn where
/// its thread needs it. A block that reaches past either end of the part is drawn whole and
/// cut, so that the parts put together are the whole draw, wherever they are cut.
pub(crate) fn fill_gaussian_part<T: Real>(out: &mut [T], offset: usize, len: usize, std: f64, seeds: &[u64]) {
    let end = offset + out.len();
    assert!(end <= len, "a part of the noise lies inside it");
    assert_eq!(seeds.len(), len.div_ceil(BLOCK_ENTRIES), "one seed a block");
    if out.is_empty() {
        return;
    }
    let first = offset / BLOCK_ENTRIES;
    for (block, &seed) in seeds
        .iter()
        .enumerate()
        .take(end.div_ceil(BLOCK_ENTRIES))
        .skip(first)
    {
        let (start, stop) = (block * BLOCK_ENTRIES, ((block + 1) * BLOCK_ENTRIES).min(len));
        let (from, to) = (start.max(offset), stop.min(end));
        if (from, to) == (start, stop) {
            gaussian::fill_block(&mut out[from - offset..to - offset], std, seed);
        } else {
            let mut whole = [T::zero(); BLOCK_ENTRIES];
            let whole = &mut whole[..stop - start];
            gaussian::fill_block(whole, std, seed);
            out[from - offset..to - offset].copy_from_slice(&whole[from - start..to - start]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeedStreams;
    use crate::test_support::on_threads;

    #[test]
    fn parts_drawn_apart_are_the_whole_draw_wherever_cut() {
        let len = 10_000;
        let mut whole = DMatrix::<f64>::zeros(len, 1);
        fill_gaussian(&mut whole, 0.5, &mut SeedStreams::new(9).stream("noise/h"));
        let mut seeds = Vec::new();
        block_seeds(len, &mut SeedStreams::new(9).stream("noise/h"), &mut seeds);
        // Cuts inside a block, at a block's edge, at either end, and three parts.
        for cuts in [
            vec![5_000],
            vec![4_096],
            vec![0],
            vec![len],
            vec![1, 3_000, 9_999],
        ] {
            let mut parts = vec![0.0f64; len];
            let mut offset = 0;
            for end in cuts.into_iter().chain([len]) {
                fill_gaussian_part(&mut parts[offset..end], offset, len, 0.5, &seeds);
                offset = end;
            }
            assert!(
                parts
                    .iter()
                    .zip(whole.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn same_numbers_on_any_thread_count_with_unit_variance() {
        let run = |threads: usize| {
            on_threads(threads, || {
                let mut rng = SeedStreams::new(4).stream("noise/h");
                let mut out = DMatrix::<f64>::zeros(1000, 100);
                fill_gaussian(&mut out, 2.0, &mut rng);
                out
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        // 100,000 draws of N(0, 4): the sample variance is within 2 % (≈ 4.5 standard errors)
        // and the mean within 0.03 (≈ 4.7 standard errors).
        let mean = one.mean();
        let variance = one.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / one.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((variance / 4.0 - 1.0).abs() < 0.02, "variance {variance}");
        // Blocks are not copies of each other.
        assert_ne!(
            one.as_slice()[..100],
            one.as_slice()[BLOCK_ENTRIES..BLOCK_ENTRIES + 100]
        );
    }

    #[test]
    fn drawing_while_adding_draws_the_same_noise_and_adds_it() {
        // A per-sample column (few blocks, one run per thread) and a batch (many blocks).
        for (rows, cols) in [(10_000, 1), (1000, 100)] {
            let base = DMatrix::<f64>::from_fn(rows, cols, |i, j| (i as f64).sin() + j as f64);
            let run = |threads: usize| {
                on_threads(threads, || {
                    let mut rng = SeedStreams::new(9).stream("noise/h");
                    let (mut noise, mut sum) = (DMatrix::<f64>::zeros(rows, cols), base.clone());
                    fill_gaussian_adding(&mut noise, sum.as_mut_slice(), 0.5, &mut rng);
                    (noise, sum)
                })
            };
            let (noise, sum) = run(1);
            assert_eq!((noise.clone(), sum.clone()), run(2));
            let mut rng = SeedStreams::new(9).stream("noise/h");
            let mut alone = DMatrix::<f64>::zeros(rows, cols);
            fill_gaussian(&mut alone, 0.5, &mut rng);
            assert_eq!(noise, alone);
            assert_eq!(sum, &base + &alone);
        }
    }
}
