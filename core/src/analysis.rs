//! Measurements of circuits: alignment of updates and dimensionality of activity.

use nalgebra::DMatrix;

/// Cosine of the angle between two matrices seen as vectors (Frobenius inner product);
/// `NaN` if either is zero.
pub fn cosine(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let denominator = (a.norm_squared() * b.norm_squared()).sqrt();
    if denominator == 0.0 {
        f64::NAN
    } else {
        a.dot(b) / denominator
    }
}

/// Participation ratio `(Σλ)² / Σλ²` of the eigenvalues `λ` of the covariance of `activity`
/// (`units × samples`): the number of dimensions the activity effectively occupies (Figs. S3D,
/// S4E of the paper). Computed as `(tr C)² / |C|²_F`, with the smaller of the unit and sample
/// Gram matrices, so no eigendecomposition is needed. `NaN` for constant activity.
pub fn participation_ratio(activity: &DMatrix<f64>) -> f64 {
    let (units, samples) = activity.shape();
    if samples < 2 {
        return f64::NAN;
    }
    let mut centred = activity.clone();
    for mut row in centred.row_iter_mut() {
        let mean = row.sum() / samples as f64;
        row.add_scalar_mut(-mean);
    }
    // C = X Xᵀ / n and Xᵀ X / n share their non-zero eigenvalues.
    let gram = if units <= samples {
        &centred * centred.transpose()
    } else {
        centred.transpose() * &centred
    };
    let trace = gram.trace();
    let frobenius = gram.norm_squared();
    if frobenius == 0.0 {
        f64::NAN
    } else {
        trace * trace / frobenius
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::uniform_matrix as noise;

    #[test]
    fn participation_ratio_matches_the_eigenvalues() {
        for (units, samples) in [(5, 40), (30, 12)] {
            let x = noise(units, samples, 3);
            let mut centred = x.clone();
            for mut row in centred.row_iter_mut() {
                let mean = row.sum() / samples as f64;
                row.add_scalar_mut(-mean);
            }
            let covariance = &centred * centred.transpose() / samples as f64;
            let eig = covariance.symmetric_eigen().eigenvalues;
            let expected = eig.sum().powi(2) / eig.iter().map(|l| l * l).sum::<f64>();
            assert!((participation_ratio(&x) / expected - 1.0).abs() < 1e-10);
        }
    }

    #[test]
    fn participation_ratio_counts_dimensions() {
        // Activity confined to 3 orthogonal directions of equal variance has PR = 3.
        let mut x = DMatrix::zeros(10, 300);
        for s in 0..300 {
            x[(s % 3, s)] = if s % 2 == 0 { 1.0 } else { -1.0 };
        }
        assert!((participation_ratio(&x) - 3.0).abs() < 0.05);
        let a = noise(4, 4, 1);
        assert!((cosine(&a, &(&a * 2.0)) - 1.0).abs() < 1e-12);
        assert!((cosine(&a, &(-&a)) + 1.0).abs() < 1e-12);
    }
}
