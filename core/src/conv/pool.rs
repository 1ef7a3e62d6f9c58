//! Max and average pooling between populations laid out as feature maps (see [`super`]).

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::Shape;
use crate::Real;

/// Geometry of a validated pooling projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Presynaptic shape.
    pub input: Shape,
    /// Postsynaptic shape (same channels).
    pub output: Shape,
    /// Window side.
    pub window: usize,
    /// Stride.
    pub stride: usize,
    /// Max (`true`) or average pooling.
    pub max: bool,
}

impl PoolGeometry {
    fn input_len(&self) -> usize {
        self.input.0 * self.input.1 * self.input.2
    }
    fn output_len(&self) -> usize {
        self.output.0 * self.output.1 * self.output.2
    }

    /// Calls `visit(output index, window)` for one sample, output units in order.
    fn for_each_window(&self, mut visit: impl FnMut(usize, Window)) {
        let (channels, height, width) = self.input;
        let (side, s) = (self.window, self.stride);
        let mut o = 0;
        for c in 0..channels {
            for oy in 0..self.output.1 {
                for ox in 0..self.output.2 {
                    let start = (c * height + oy * s) * width + ox * s;
                    visit(
                        o,
                        Window {
                            start,
                            side,
                            row_stride: width,
                        },
                    );
                    o += 1;
                }
            }
        }
    }

    /// The first unit of `window` (row by row) with the largest value of `value`.
    fn argmax<T: Real>(window: Window, value: impl Fn(usize) -> T) -> usize {
        if window.side == 2 {
            // The common 2×2 window unrolled (the general loop took 10 ns a window).
            let s = window.start;
            let units = [s + 1, s + window.row_stride, s + window.row_stride + 1];
            let mut best = s;
            let mut best_value = value(s);
            for i in units {
                let v = value(i);
                if v > best_value {
                    (best, best_value) = (i, v);
                }
            }
            return best;
        }
        let mut best = window.start;
        let mut best_value = value(best);
        for ky in 0..window.side {
            let row = window.start + ky * window.row_stride;
            for i in row..row + window.side {
                let v = value(i);
                if v > best_value {
                    (best, best_value) = (i, v);
                }
            }
        }
        best
    }

    /// Runs `per_sample(input sample(s), output sample)` over the batch, samples in parallel.
    fn per_sample<T: Real, const N: usize>(
        &self,
        inputs: [&DMatrix<T>; N],
        out: &mut DMatrix<T>,
        per_sample: impl Fn([&[T]; N], &mut [T]) + Sync,
    ) {
        let (in_len, out_len) = (self.input_len(), self.output_len());
        out.as_mut_slice()
            .par_chunks_mut(out_len)
            .enumerate()
            .for_each(|(b, out)| per_sample(inputs.map(|m| &m.as_slice()[b * in_len..][..in_len]), out));
    }

    /// `out += pool(input)` for a batch.
    pub fn forward<T: Real>(&self, input: &DMatrix<T>, out: &mut DMatrix<T>) {
        let area = T::of((self.window * self.window) as f64);
        self.per_sample([input], out, |[a], out| {
            self.for_each_window(|o, window| {
                out[o] += if self.max {
                    a[Self::argmax(window, |i| a[i])]
                } else {
                    window.units().map(|i| a[i]).sum::<T>() / area
                };
            });
        });
    }

    /// `out += pool(a + d) − pool(a)` for a batch, without cancellation.
    pub fn difference<T: Real>(&self, clean: &DMatrix<T>, diff: &DMatrix<T>, out: &mut DMatrix<T>) {
        let area = T::of((self.window * self.window) as f64);
        self.per_sample([clean, diff], out, |[a, d], out| {
            self.for_each_window(|o, window| {
                out[o] += if self.max {
                    let clean_best = Self::argmax(window, |i| a[i]);
                    let noisy_best = Self::argmax(window, |i| a[i] + d[i]);
                    if noisy_best == clean_best {
                        d[clean_best]
                    } else {
                        (a[noisy_best] - a[clean_best]) + d[noisy_best]
                    }
                } else {
                    window.units().map(|i| d[i]).sum::<T>() / area
                };
            });
        });
    }

    /// `grad_input += poolᵀ(error)`: max pooling routes each error to its window's clean
    /// winner, average pooling spreads it evenly.
    pub fn backward<T: Real>(&self, clean: &DMatrix<T>, error: &DMatrix<T>, grad_input: &mut DMatrix<T>) {
        let area = T::of((self.window * self.window) as f64);
        let (in_len, out_len) = (self.input_len(), self.output_len());
        grad_input
            .as_mut_slice()
            .par_chunks_mut(in_len)
            .zip(clean.as_slice().par_chunks(in_len))
            .zip(error.as_slice().par_chunks(out_len))
            .for_each(|((grad, a), e)| {
                self.for_each_window(|o, window| {
                    if self.max {
                        grad[Self::argmax(window, |i| a[i])] += e[o];
                    } else {
                        window.units().for_each(|i| grad[i] += e[o] / area);
                    }
                });
            });
    }
}

/// A pooling window of one sample: `side` rows of `side` consecutive units, `row_stride` apart.
#[derive(Clone, Copy)]
struct Window {
    start: usize,
    side: usize,
    row_stride: usize,
}

impl Window {
    /// The window's units, row by row.
    fn units(self) -> impl Iterator<Item = usize> {
        (0..self.side).flat_map(move |ky| {
            let row = self.start + ky * self.row_stride;
            row..row + self.side
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::output_side;
    use crate::test_support::uniform_values as values;

    proptest::proptest! {
        // Pooling with any window and stride (overlapping or not) against a naive evaluation:
        // forward exactly, the perturbed difference to 1e-15, the average pool's backward as
        // the exact adjoint.
        #[test]
        fn pooling_matches_a_naive_evaluation(
            c in 1usize..3, h in 1usize..8, w in 1usize..8, k in 1usize..4, s in 1usize..4,
            max: bool, seed in 0u64..1000,
        ) {
            let (Some(ho), Some(wo)) = (output_side(h, k, s, 0), output_side(w, k, s, 0)) else {
                return Ok(());
            };
            let g = PoolGeometry { input: (c, h, w), output: (c, ho, wo), window: k, stride: s, max };
            let a = DMatrix::from_vec(g.input_len(), 2, values(g.input_len() * 2, seed));
            let d = DMatrix::from_vec(g.input_len(), 2, values(g.input_len() * 2, seed + 1)) * 0.1;
            let naive = |x: &DMatrix<f64>| {
                DMatrix::from_fn(g.output_len(), 2, |o, b| {
                    let (ch, oy, ox) = (o / (ho * wo), (o / wo) % ho, o % wo);
                    let window = (0..k).flat_map(|ky| (0..k).map(move |kx| (ky, kx)));
                    let values = window.map(|(ky, kx)| x[((ch * h + oy * s + ky) * w + ox * s + kx, b)]);
                    if max {
                        values.fold(f64::MIN, f64::max)
                    } else {
                        values.sum::<f64>() / (k * k) as f64
                    }
                })
            };
            let mut out = DMatrix::zeros(g.output_len(), 2);
            g.forward(&a, &mut out);
            proptest::prop_assert_eq!(&out, &naive(&a));
            let mut diff = DMatrix::zeros(g.output_len(), 2);
            g.difference(&a, &d, &mut diff);
            proptest::prop_assert!((&diff - (naive(&(&a + &d)) - naive(&a))).amax() < 1e-15);
            if !max {
                let e = DMatrix::from_vec(g.output_len(), 2, values(g.output_len() * 2, seed + 2));
                let mut back = DMatrix::zeros(g.input_len(), 2);
                g.backward(&a, &e, &mut back);
                proptest::prop_assert!((e.dot(&out) - back.dot(&a)).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn pooling_forward_difference_and_backward() {
        let g = PoolGeometry {
            input: (2, 4, 4),
            output: (2, 2, 2),
            window: 2,
            stride: 2,
            max: true,
        };
        let a = DMatrix::from_vec(32, 1, values(32, 6));
        let mut out = DMatrix::zeros(8, 1);
        g.forward(&a, &mut out);
        // Window (c=1, oy=1, ox=0) covers units 16 + {8, 9, 12, 13}.
        let expected = [24, 25, 28, 29]
            .map(|i| a[i])
            .into_iter()
            .fold(f64::MIN, f64::max);
        assert_eq!(out[6], expected);
        // Differences agree with pool(a + d) − pool(a) computed naively in f64.
        for scale in [1e-3, 0.3] {
            let d = DMatrix::from_vec(32, 1, values(32, 7)) * scale;
            for max in [true, false] {
                let g = PoolGeometry { max, ..g };
                let (mut clean, mut noisy, mut diff) =
                    (DMatrix::zeros(8, 1), DMatrix::zeros(8, 1), DMatrix::zeros(8, 1));
                g.forward(&a, &mut clean);
                g.forward(&(&a + &d), &mut noisy);
                g.difference(&a, &d, &mut diff);
                assert!((&noisy - &clean - &diff).amax() < 1e-15);
                // Backward is the adjoint of the (locally linear) forward map.
                let e = DMatrix::from_vec(8, 1, values(8, 8));
                let mut back = DMatrix::zeros(32, 1);
                g.backward(&a, &e, &mut back);
                let mut shifted = DMatrix::zeros(8, 1);
                let tiny = &d * 1e-6;
                g.difference(&a, &tiny, &mut shifted);
                assert!((e.dot(&shifted) - back.dot(&tiny)).abs() < 1e-15);
            }
        }
    }
}
