//! Weight initialisers.

use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Real, seed::StreamRng};

/// How a projection's weights (or biases) are drawn when a run starts.
///
/// | variant | distribution of each entry |
/// |---------|----------------------------|
/// | `XavierNormal(variance_scale: r)` | `N(0, r · 2 / (fan_in + fan_out))` (Glorot & Bengio 2010; the paper's scale `r`) |
/// | `GlorotTruncated` | TensorFlow's `glorot_normal`: a normal truncated at ±2 standard deviations, rescaled to variance `2 / (fan_in + fan_out)` (the paper's nonlinear networks, weights and biases) |
/// | `Normal(std: s)` | `N(0, s²)` |
/// | `Zeros` | `0` |
/// | `Constant(value: c)` | `c` |
/// | `LogNormal(mean: m, std: s)` | lognormal with mean `m > 0` and standard deviation `s` of the weight itself (`ln w ~ N(μ, σ²)`, `σ² = ln(1 + s²/m²)`, `μ = ln m − σ²/2`): positive weights with a heavy tail, as measured for cortical and HVC→RA synapses |
/// | `Pools(weight: w)` | `w` from the pre units of block `i` to post unit `i`, 0 elsewhere: the presynaptic population is cut into as many equal contiguous blocks (pools) as there are postsynaptic units (a readout summing or averaging each pool) |
///
/// For a bias vector of length `L`, `fan_in = fan_out = L` (TensorFlow's convention, which
/// the paper's nonlinear experiments use).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename = "init", deny_unknown_fields)]
pub enum Initializer {
    /// Xavier–Glorot normal with a multiplier `variance_scale` on the variance.
    XavierNormal {
        /// Multiplier on the Glorot variance (the paper's `r`; 1 is standard Glorot).
        variance_scale: f64,
    },
    /// TensorFlow's `glorot_normal`: truncated at ±2σ, variance `2 / (fan_in + fan_out)`.
    GlorotTruncated,
    /// Zero-mean normal with a fixed standard deviation.
    Normal {
        /// Standard deviation of each entry.
        std: f64,
    },
    /// All zeros.
    Zeros,
    /// Lognormal with this mean and standard deviation of the weights (not of their log).
    LogNormal {
        /// Mean weight, > 0.
        mean: f64,
        /// Standard deviation of the weights, >= 0.
        std: f64,
    },
    /// Every entry `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// A pooled readout: post unit `i` receives `weight` from the `i`-th of as many equal
    /// contiguous blocks of pre units as there are post units.
    Pools {
        /// The weight of each connection within a pool.
        weight: f64,
    },
}

impl Default for Initializer {
    fn default() -> Self {
        Initializer::XavierNormal { variance_scale: 1.0 }
    }
}

impl Initializer {
    /// Standard deviation of each entry for a `rows × cols` matrix (`fan_out = rows`,
    /// `fan_in = cols`).
    pub fn std(&self, rows: usize, cols: usize) -> f64 {
        match *self {
            Initializer::XavierNormal { variance_scale } => {
                (variance_scale * 2.0 / (rows + cols) as f64).sqrt()
            }
            Initializer::GlorotTruncated => (2.0 / (rows + cols) as f64).sqrt(),
            Initializer::Normal { std } | Initializer::LogNormal { std, .. } => std,
            Initializer::Zeros | Initializer::Constant { .. } | Initializer::Pools { .. } => 0.0,
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Initializer::XavierNormal { variance_scale }
                if !(variance_scale >= 0.0 && variance_scale.is_finite()) =>
            {
                Err(format!(
                    "variance_scale must be a finite number >= 0, got {variance_scale}"
                ))
            }
            Initializer::Normal { std } if !(std >= 0.0 && std.is_finite()) => {
                Err(format!("std must be a finite number >= 0, got {std}"))
            }
            Initializer::LogNormal { mean, std }
                if !(mean > 0.0 && mean.is_finite() && std >= 0.0 && std.is_finite()) =>
            {
                Err(format!(
                    "a lognormal needs a finite mean > 0 and a finite std >= 0, got mean {mean} and std {std}"
                ))
            }
            Initializer::Constant { value: v } | Initializer::Pools { weight: v } if !v.is_finite() => {
                Err(format!("must be a finite number, got {v}"))
            }
            _ => Ok(()),
        }
    }

    /// Draws a `rows × cols` matrix whose scale is set by the given fans (a convolution
    /// kernel's fans count its taps: `fan_in = c_in·k·k`, `fan_out = c_out·k·k`).
    pub fn draw_with_fans<T: Real>(
        &self,
        rows: usize,
        cols: usize,
        fan_in: usize,
        fan_out: usize,
        rng: &mut StreamRng,
    ) -> DMatrix<T> {
        self.draw_with_std(self.std(fan_out, fan_in), rows, cols, rng)
    }

    /// Draws a `rows × cols` matrix, filling it column by column from `rng`.
    pub fn draw<T: Real>(&self, rows: usize, cols: usize, rng: &mut StreamRng) -> DMatrix<T> {
        self.draw_with_std(self.std(rows, cols), rows, cols, rng)
    }

    /// Draws a bias of length `len` (`fan_in = fan_out = len`).
    pub fn draw_bias<T: Real>(&self, len: usize, rng: &mut StreamRng) -> DMatrix<T> {
        self.draw_with_std(self.std(len, len), len, 1, rng)
    }

    fn draw_with_std<T: Real>(&self, std: f64, rows: usize, cols: usize, rng: &mut StreamRng) -> DMatrix<T> {
        match *self {
            Initializer::Constant { value } => return DMatrix::from_element(rows, cols, T::of(value)),
            Initializer::Pools { weight } => {
                // Pre unit j belongs to pool ⌊j · rows / cols⌋.
                return DMatrix::from_fn(rows, cols, |i, j| {
                    if j * rows / cols == i {
                        T::of(weight)
                    } else {
                        T::zero()
                    }
                });
            }
            Initializer::LogNormal { mean, std } => {
                let sigma2 = (1.0 + (std / mean).powi(2)).ln();
                let (mu, sigma) = (mean.ln() - sigma2 / 2.0, sigma2.sqrt());
                return DMatrix::from_fn(rows, cols, |_, _| {
                    let z: f64 = StandardNormal.sample(rng);
                    T::of((mu + sigma * z).exp())
                });
            }
            _ => {}
        }
        if std == 0.0 {
            return DMatrix::zeros(rows, cols);
        }
        if *self == Initializer::GlorotTruncated {
            // The standard deviation of N(0, 1) truncated to [−2, 2].
            const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;
            return DMatrix::from_fn(rows, cols, |_, _| {
                loop {
                    let z: f64 = StandardNormal.sample(rng);
                    if z.abs() <= 2.0 {
                        break T::of(std * z / TRUNCATED_STD);
                    }
                }
            });
        }
        DMatrix::from_fn(rows, cols, |_, _| {
            let z: f64 = StandardNormal.sample(rng);
            T::of(std * z)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pools_connect_each_post_unit_to_its_block() {
        let mut rng = StreamRng::seed_from_u64(1);
        let w: DMatrix<f64> = Initializer::Pools { weight: 0.25 }.draw(2, 8, &mut rng);
        assert_eq!(
            w.row(0).iter().copied().collect::<Vec<_>>(),
            [0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(w.row(1).sum(), 1.0);
        let c: DMatrix<f64> = Initializer::Constant { value: 0.5 }.draw_bias(3, &mut rng);
        assert_eq!(c.as_slice(), &[0.5, 0.5, 0.5]);
    }

    #[test]
    fn lognormal_weights_have_the_mean_and_std_asked_for() {
        let mut rng = StreamRng::seed_from_u64(4);
        let init = Initializer::LogNormal { mean: 0.5, std: 0.25 };
        let w: DMatrix<f64> = init.draw(400, 500, &mut rng);
        let n = w.len() as f64;
        let mean = w.sum() / n;
        let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // 200,000 draws: the mean within 0.5 % (4.5 standard errors), the std within 1.5 % (5).
        assert!((mean / 0.5 - 1.0).abs() < 5e-3, "mean {mean}");
        assert!((sd / 0.25 - 1.0).abs() < 0.015, "std {sd}");
        assert!(w.iter().all(|&v| v > 0.0));
    }

    #[test]
    fn glorot_truncated_has_the_glorot_variance_and_no_tails() {
        let mut rng = StreamRng::seed_from_u64(9);
        let w: DMatrix<f64> = Initializer::GlorotTruncated.draw(300, 500, &mut rng);
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        // 150,000 draws: within 1.5 % of 2/800.
        assert!((var / (2.0 / 800.0) - 1.0).abs() < 0.015, "variance {var}");
        let bound = 2.0 * (2.0f64 / 800.0).sqrt() / 0.879_625_661_034_239_8;
        assert!(w.iter().all(|v| v.abs() <= bound + 1e-12));
    }
}
