//! The floating-point types a circuit can be simulated in.

use std::fmt::{Debug, Display};

/// A floating-point scalar the engine can run in: `f32` or `f64`.
///
/// Scenarios pick one with `precision: F32` or `precision: F64`. Random numbers are always
/// drawn in `f64` and then rounded, so the two precisions see the same noise and the same
/// initial weights up to rounding, which is what makes them comparable.
pub trait Real:
    nalgebra::RealField
    + faer::traits::RealField
    + Copy
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + std::iter::Sum
    + 'static
{
    /// Name used in recordings and messages (`"f32"` or `"f64"`).
    const NAME: &'static str;
    /// Rounds an `f64` to this type.
    fn of(x: f64) -> Self;
    /// Widens this value to `f64`.
    fn f64(self) -> f64;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}
