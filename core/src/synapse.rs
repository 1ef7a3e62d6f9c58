//! Synapses of a projection: how presynaptic activity becomes postsynaptic input over time.
//!
//! | synapse | postsynaptic input from `x(t) = W a_pre(t)` | engines |
//! |---|---|---|
//! | `Instant` | the current `x(t)` in the same step (the batch engine's only kind) | batch and trial |
//! | `Current(tau: τ_s)` | a current `s` with `s ← e^{−dt/τ_s} s + x(t)`: each presynaptic spike adds its weight, which decays with τ_s (AMPA-like ~2–6 ms, NMDA-like ~80–100 ms) | trial |
//! | `Conductance(tau: τ_s, reversal: E)` | a conductance `g` (µS) with `g ← e^{−dt/τ_s} g + x(t)`, driving a `Lif` population towards `E` mV: current `−g (V − E)` | trial, onto `Lif` |
//!
//! Traces start at 0 in each rendition and are updated before the postsynaptic membrane, so
//! a spike in step `t` acts from step `t` on (with a delay of one step after the exact decay
//! of the trace).

use serde::{Deserialize, Serialize};

use crate::registry::{Entry, Param};

/// How a projection's input reaches its postsynaptic population.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename = "synapse", deny_unknown_fields)]
pub enum Synapse {
    /// Input in the same step, no memory.
    #[default]
    Instant,
    /// A current with an exponential decay.
    Current {
        /// Decay time constant τ_s, ms.
        tau: f64,
    },
    /// A conductance with an exponential decay and a reversal potential (onto `Lif` only).
    Conductance {
        /// Decay time constant τ_s, ms.
        tau: f64,
        /// Reversal potential E, mV.
        reversal: f64,
    },
}

impl Synapse {
    /// `e^{−dt/τ_s}` (0 for `Instant`).
    pub fn retention(&self, dt: f64) -> f64 {
        match *self {
            Synapse::Instant => 0.0,
            Synapse::Current { tau } | Synapse::Conductance { tau, .. } => (-dt / tau).exp(),
        }
    }

    /// Checks the parameters; returns a description of the problem.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Synapse::Current { tau } | Synapse::Conductance { tau, .. }
                if !(tau > 0.0 && tau.is_finite()) =>
            {
                Err(format!("tau must be a finite number of ms > 0, got {tau}"))
            }
            Synapse::Conductance { reversal, .. } if !reversal.is_finite() => {
                Err(format!("reversal must be a finite number of mV, got {reversal}"))
            }
            _ => Ok(()),
        }
    }
}

/// The registered synapse kinds.
pub const SYNAPSES: &[Entry] = &[
    Entry {
        name: "Instant",
        summary: "input W a_pre(t) in the same step, no memory (batch and trial engines)",
        params: &[],
        example: "synapse: Instant",
    },
    Entry {
        name: "Current",
        summary: "exponentially decaying current: s ← e^{−dt/τ_s} s + W a_pre(t) (trial engine)",
        params: &[Param {
            name: "tau",
            unit: "ms",
            default: "required",
            meaning: "decay time τ_s (AMPA-like 2–6, NMDA-like 80–100)",
        }],
        example: "synapse: Current(tau: 5.0)",
    },
    Entry {
        name: "Conductance",
        summary: "exponentially decaying conductance g ← e^{−dt/τ_s} g + W a_pre(t) (µS), current −g (V − E) into a Lif population (trial engine)",
        params: &[
            Param {
                name: "tau",
                unit: "ms",
                default: "required",
                meaning: "decay time τ_s",
            },
            Param {
                name: "reversal",
                unit: "mV",
                default: "required",
                meaning: "reversal potential E (excitatory 0, inhibitory −80)",
            },
        ],
        example: "synapse: Conductance(tau: 5.0, reversal: 0.0)",
    },
];
