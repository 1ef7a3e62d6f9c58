//! Each projection's connectivity checked against its populations' sizes and shapes.

use super::{CircuitError, Geometry, Population, ProjectionConfig};
use crate::conv::{Connectivity, ConvGeometry, PoolGeometry, Shape, output_side};
use crate::sparse::SparseKind;

/// Checks a projection's connectivity against its populations' shapes.
pub(super) fn geometry(
    name: &str,
    q: &ProjectionConfig,
    pre: &Population,
    post: &Population,
) -> Result<Geometry, CircuitError> {
    let problem = |problem: String| CircuitError::Parameter {
        what: format!("projection `{name}` connectivity"),
        problem,
    };
    let shapes = || match (pre.shape, post.shape) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(problem(format!(
            "convolution and pooling need feature maps: give populations `{}` and `{}` a `shape: (channels, height, width)`",
            pre.name, post.name
        ))),
    };
    let side = |input: usize, kernel: usize, stride: usize, padding: usize, axis: &str| {
        output_side(input, kernel, stride, padding).ok_or_else(|| {
            problem(format!(
                "a window of {kernel} with stride {stride} and padding {padding} does not fit the {axis} {input} of `{}`: window and stride must be at least 1 and the window at most the padded {axis}",
                pre.name
            ))
        })
    };
    let expect = |found: Shape, expected: Shape| {
        if found == expected {
            Ok(())
        } else {
            Err(problem(format!(
                "population `{}` must have shape {expected:?} to receive it, but has {found:?}",
                post.name
            )))
        }
    };
    match q.connectivity {
        Connectivity::Dense => Ok(Geometry::Dense),
        Connectivity::OneToOne => {
            if pre.size != post.size {
                return Err(problem(format!(
                    "one-to-one needs populations of one size, but `{}` has {} units and `{}` has {}: make them equal or use `Random(p:)`",
                    pre.name, pre.size, post.name, post.size
                )));
            }
            Ok(Geometry::Sparse(SparseKind::OneToOne))
        }
        Connectivity::Random { p } => {
            if !(p > 0.0 && p <= 1.0) {
                return Err(problem(format!(
                    "the connection probability p must lie in (0, 1], got {p}"
                )));
            }
            Ok(Geometry::Sparse(SparseKind::Random { p }))
        }
        Connectivity::FixedInDegree { k } => {
            if k == 0 || k > pre.size {
                return Err(problem(format!(
                    "the in-degree k must lie between 1 and the {} units of `{}`, got {k}",
                    pre.size, pre.name
                )));
            }
            Ok(Geometry::Sparse(SparseKind::FixedInDegree { k }))
        }
        Connectivity::Conv2d {
            kernel,
            stride,
            padding,
        } => {
            let ((c, h, w), out) = shapes()?;
            let stride = stride.unwrap_or(1);
            let expected = (
                out.0,
                side(h, kernel, stride, padding, "height")?,
                side(w, kernel, stride, padding, "width")?,
            );
            expect(out, expected)?;
            Ok(Geometry::Conv(ConvGeometry {
                input: (c, h, w),
                output: out,
                kernel,
                stride,
                padding,
            }))
        }
        Connectivity::MaxPool { window, stride } | Connectivity::AvgPool { window, stride } => {
            let ((c, h, w), out) = shapes()?;
            if q.bias.is_some() {
                return Err(problem("pooling has no bias: remove `bias`".into()));
            }
            let stride = stride.unwrap_or(window);
            let expected = (
                c,
                side(h, window, stride, 0, "height")?,
                side(w, window, stride, 0, "width")?,
            );
            expect(out, expected)?;
            Ok(Geometry::Pool(PoolGeometry {
                input: (c, h, w),
                output: out,
                window,
                stride,
                max: matches!(q.connectivity, Connectivity::MaxPool { .. }),
            }))
        }
    }
}
