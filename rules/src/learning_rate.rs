//! Learning rates as scenarios write them: absolute, or relative to a rate the theory knows.

use npsim_core::Invalid;
use serde::{Deserialize, Serialize};

/// A learning rate, absolute or relative to a theoretical rate of the linear network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename = "learning_rate")]
pub enum LearningRate {
    /// η itself.
    Absolute(f64),
    /// A multiple of NP's critical rate η* (paper Eq. 83) for the circuit's sizes.
    RelativeToCritical(f64),
    /// A multiple of SGD's optimal rate `1/(Lx(α0 + β0))`.
    RelativeToSgdOptimal(f64),
}

/// The theory's reference rates for a circuit, where the theory applies (a one-hidden-layer
/// linear network with Glorot initialisation learning a linear teacher).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceRates {
    /// NP's critical rate η*.
    pub critical: f64,
    /// SGD's optimal rate.
    pub sgd_optimal: f64,
}

impl LearningRate {
    /// The absolute rate; relative rates need `reference`. The error's field is
    /// `learning_rate`.
    pub fn resolve(self, reference: Option<ReferenceRates>) -> Result<f64, Invalid> {
        let fail = |message: String| Invalid::new("learning_rate", message);
        let rate = match self {
            LearningRate::Absolute(eta) => eta,
            LearningRate::RelativeToCritical(k) | LearningRate::RelativeToSgdOptimal(k) => {
                let reference = reference.ok_or_else(|| {
                    fail("relative learning rates need a one-hidden-layer linear circuit with Xavier initialisation learning a linear teacher; give `Absolute(..)`".into())
                })?;
                k * match self {
                    LearningRate::RelativeToCritical(_) => reference.critical,
                    _ => reference.sgd_optimal,
                }
            }
        };
        if rate > 0.0 && rate.is_finite() {
            Ok(rate)
        } else {
            Err(fail(format!("must resolve to a finite number > 0, got {rate}")))
        }
    }

    /// The multiple, for relative rates: (`critical` or `sgd_optimal`, k).
    pub fn relative(self) -> Option<(&'static str, f64)> {
        match self {
            LearningRate::Absolute(_) => None,
            LearningRate::RelativeToCritical(k) => Some(("critical", k)),
            LearningRate::RelativeToSgdOptimal(k) => Some(("sgd_optimal", k)),
        }
    }
}

/// The documented form of every rule's `learning_rate` parameter.
pub const LEARNING_RATE_PARAM: npsim_core::Param = npsim_core::Param {
    name: "learning_rate",
    unit: "1",
    default: "required",
    meaning: "η: `Absolute(η)`, `RelativeToCritical(k)` (k η*, linear networks) or `RelativeToSgdOptimal(k)`",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_rates_need_the_theory_and_must_be_positive() {
        let reference = Some(ReferenceRates {
            critical: 2e-3,
            sgd_optimal: 5e-2,
        });
        assert_eq!(LearningRate::RelativeToCritical(0.5).resolve(reference), Ok(1e-3));
        assert_eq!(
            LearningRate::RelativeToSgdOptimal(2.0).resolve(reference),
            Ok(0.1)
        );
        assert_eq!(LearningRate::Absolute(0.3).resolve(None), Ok(0.3));
        let err = LearningRate::RelativeToCritical(1.0).resolve(None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("learning_rate: relative learning rates need"),
            "{err}"
        );
        let err = LearningRate::Absolute(-1.0).resolve(None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "learning_rate: must resolve to a finite number > 0, got -1"
        );
    }
}
