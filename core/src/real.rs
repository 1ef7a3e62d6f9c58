//! The floating-point types a circuit can be simulated in.

use std::fmt::{Debug, Display};

use serde::{Deserialize, Serialize};

/// Numeric precision of a run: which [`Real`] it is simulated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename = "precision")]
pub enum Precision {
    /// Single precision (`f32`).
    F32,
    /// Double precision (`f64`, default).
    #[default]
    F64,
}

impl Precision {
    /// `"f32"` or `"f64"`, as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar the engine can run in: `f32` or `f64`, and nothing else.
///
/// The trait is sealed: values cross the plugin boundary and are written to recordings tagged
/// by [`Real::PRECISION`], so a third type would be misread. Scenarios pick one with
/// `precision: F32` or `precision: F64`. Random numbers are always drawn in `f64` and then
/// rounded, so the two precisions see the same noise and the same initial weights up to
/// rounding, which is what makes them comparable.
pub trait Real:
    sealed::Sealed
    + nalgebra::RealField
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
    /// Which precision this is.
    const PRECISION: Precision;
    /// Name used in recordings and messages (`"f32"` or `"f64"`).
    const NAME: &'static str;
    /// Rounds an `f64` to this type.
    fn of(x: f64) -> Self;
    /// Widens this value to `f64`.
    fn f64(self) -> f64;
}

impl Real for f32 {
    const PRECISION: Precision = Precision::F32;
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
    const PRECISION: Precision = Precision::F64;
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
