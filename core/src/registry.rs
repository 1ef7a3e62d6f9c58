//! What every registered extension says about itself.
//!
//! npsim keeps one registry per kind of extension: learning rules and post-update steps
//! (`npsim_rules::RULES`, `npsim_rules::POST_UPDATES`), tasks (`npsim_models::TASKS`) and
//! population models ([`ACTIVATIONS`], the static rate neurons of the batch engine). Each
//! entry is an [`Entry`]: the name a scenario writes, a one-line summary, its parameters with
//! units and defaults, and an example. `npsim rules`, `docs/scenarios.md` (checked by a test)
//! and validation messages all read these entries, so a name or a default is written once.

/// One parameter of a registered extension, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// The field name in a scenario.
    pub name: &'static str,
    /// Its unit (`1` for dimensionless, `ms`, `neurons`, …).
    pub unit: &'static str,
    /// Its default as a scenario would write it, or `required`.
    pub default: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

/// A registered extension: how a scenario names it and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The name a scenario writes (`NodePerturbation`, `Mnist`, `Relu`).
    pub name: &'static str,
    /// One line: what it does, with its equation where it has one.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// A complete example as a scenario writes it.
    pub example: &'static str,
}

/// A parameter out of range, found when a config validates itself.
///
/// `field` is the dotted path below the config (`baseline`, `post_update[0].rate` once the
/// caller has prefixed it); the message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The offending field.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Invalid {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, with its field placed below `parent` (`rule` + `baseline` →
    /// `rule.baseline`).
    pub fn under(self, parent: &str) -> Self {
        let field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Checks that `value` is finite and `> 0`.
pub fn positive(field: &str, value: f64) -> Result<(), Invalid> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

/// The population models of the batch engine: static rate neurons `a = f(u + σξ)`, one per
/// transfer function `f` (`activation:` of a population). Time-stepped models (leaky rate,
/// integrate-and-fire) will register beside them.
pub const ACTIVATIONS: &[Entry] = &[
    Entry {
        name: "Linear",
        summary: "f(u) = u, f'(u) = 1",
        params: &[],
        example: "activation: Linear",
    },
    Entry {
        name: "Relu",
        summary: "f(u) = max(u, 0), f'(u) = 1 if u > 0 else 0",
        params: &[],
        example: "activation: Relu",
    },
    Entry {
        name: "Tanh",
        summary: "f(u) = tanh(u), f'(u) = 1 − tanh²(u); perturbed difference sinh(d)/(cosh(u+d) cosh(u))",
        params: &[],
        example: "activation: Tanh",
    },
    Entry {
        name: "Sigmoid",
        summary: "f(u) = 1/(1 + e^−u), f'(u) = f(u)(1 − f(u)); perturbed difference −σ(u+d)(1 − σ(u)) expm1(−d)",
        params: &[],
        example: "activation: Sigmoid",
    },
    Entry {
        name: "Softmax",
        summary: "f_i(u) = e^{u_i}/Σ_j e^{u_j} over the population (output populations), ∂f_i/∂u_j = f_i(δ_ij − f_j)",
        params: &[],
        example: "activation: Softmax",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    #[test]
    fn every_activation_is_registered_under_its_scenario_name() {
        for entry in ACTIVATIONS {
            let parsed: Activation =
                ron::from_str(entry.name).unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            assert_eq!(ron::to_string(&parsed).unwrap(), entry.name);
        }
        // And no variant is missing: each one serialises to a registered name (the match makes
        // a new variant a compile error here until it is listed).
        let _exhaustive = |a: Activation| match a {
            Activation::Linear
            | Activation::Relu
            | Activation::Tanh
            | Activation::Sigmoid
            | Activation::Softmax => {}
        };
        for variant in [
            Activation::Linear,
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softmax,
        ] {
            let name = ron::to_string(&variant).unwrap();
            assert!(
                ACTIVATIONS.iter().any(|e| e.name == name),
                "{name} is not registered"
            );
        }
    }
}
