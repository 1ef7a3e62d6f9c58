//! The registries of learning rules and post-update steps.
//!
//! A built-in rule is a config type implementing [`RuleSpec`] (serde fields = the scenario's
//! parameters, an [`Entry`] documenting them, `build` making the rule) listed once in
//! `register_rules!` in `lib.rs`. From that one line follow the scenario syntax (a variant of
//! [`crate::RuleConfig`]), validation, `npsim rules`, the recorded name and the docs check.
//! Post-update steps work the same way through [`PostUpdateSpec`] and `register_post_updates!`.

use npsim_core::{Entry, Invalid, LearningRule, PostUpdate, Real};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::learning_rate::LearningRate;

/// A learning rule's scenario config: what a built-in rule must provide to be registered.
///
/// # Implementing
/// An implementor **must** be a serde struct whose fields are the scenario's parameters (with
/// `#[serde(deny_unknown_fields, rename = "<Entry name>")]` so that messages use the scenario's
/// name), document them in [`RuleSpec::ENTRY`], and check in [`RuleSpec::validate`] every value
/// a user can get wrong. It **need not** resolve relative learning rates (the caller does,
/// from [`RuleSpec::learning_rate`]) or check the circuit: the rule's
/// [`LearningRule::requirements`], asked of the built rule, say what the circuit must provide.
pub trait RuleSpec: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// Name (as a scenario writes it), summary, parameters, example.
    const ENTRY: Entry;
    /// A short name for `npsim bench --rule` (`np`, `sgd`).
    const SHORT: &'static str;
    /// The learning rate as written.
    fn learning_rate(&self) -> LearningRate;
    /// Checks the parameters other than the learning rate; fields are relative to the rule.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
    /// The fewest samples per update the rule works with (default 1).
    fn min_batch_size(&self) -> usize {
        1
    }
    /// The rule, with the learning rate resolved to an absolute η.
    fn build<T: Real>(&self, learning_rate: f64) -> Box<dyn LearningRule<T>>;
}

/// A post-update step's scenario config; see [`RuleSpec`].
///
/// # Implementing
/// As for [`RuleSpec`]; [`PostUpdateSpec::projections`] returns the projections the step is
/// limited to, which the caller checks against the circuit's plastic projections.
pub trait PostUpdateSpec: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// Name, summary, parameters, example.
    const ENTRY: Entry;
    /// Checks the parameters; fields are relative to the step.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
    /// The projections it is limited to (`None`: every plastic one).
    fn projections(&self) -> Option<&[String]>;
    /// The step.
    fn build<T: Real>(&self) -> Box<dyn PostUpdate<T>>;
}

/// A registered rule: its documentation and its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleEntry {
    /// Name, summary, parameters, example.
    pub entry: Entry,
    /// Short name for benchmarks.
    pub short: &'static str,
}

/// Declares the built-in rules: one line `module::Config => Variant` each, where `Variant`
/// is the name scenarios write. Generates the modules, [`crate::RuleConfig`] and
/// [`crate::RULES`].
macro_rules! register_rules {
    ($($module:ident :: $config:ident => $variant:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// A learning rule as a scenario writes it: a registered built-in rule, or
        /// `Plugin(..)`, a rule from a shared library whose config type `P` the caller
        /// provides (the rules crate does not load libraries).
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename = "rule")]
        pub enum RuleConfig<P> {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant($module::$config),
            )+
            /// A rule from a plugin library (docs/plugins.md).
            Plugin(P),
        }

        /// Every registered built-in rule, in the order of `register_rules!`.
        pub const RULES: &[$crate::registry::RuleEntry] = &[$(
            $crate::registry::RuleEntry {
                entry: <$module::$config as $crate::registry::RuleSpec>::ENTRY,
                short: <$module::$config as $crate::registry::RuleSpec>::SHORT,
            },
        )+];

        impl<P> RuleConfig<P> {
            /// The registered name of a built-in rule (`None` for a plugin rule).
            pub fn builtin_name(&self) -> Option<&'static str> {
                match self {
                    $(RuleConfig::$variant(_) => Some(<$module::$config as $crate::registry::RuleSpec>::ENTRY.name),)+
                    RuleConfig::Plugin(_) => None,
                }
            }

            /// The learning rate as written (`None` for a plugin rule: it takes its own).
            pub fn learning_rate(&self) -> Option<$crate::LearningRate> {
                match self {
                    $(RuleConfig::$variant(c) => Some($crate::registry::RuleSpec::learning_rate(c)),)+
                    RuleConfig::Plugin(_) => None,
                }
            }

            /// The fewest samples per update the rule works with (1 for a plugin rule).
            pub fn min_batch_size(&self) -> usize {
                match self {
                    $(RuleConfig::$variant(c) => $crate::registry::RuleSpec::min_batch_size(c),)+
                    RuleConfig::Plugin(_) => 1,
                }
            }

            /// Checks a built-in rule's parameters (a plugin rule checks its own when created).
            pub fn validate(&self) -> Result<(), npsim_core::Invalid> {
                match self {
                    $(RuleConfig::$variant(c) => $crate::registry::RuleSpec::validate(c),)+
                    RuleConfig::Plugin(_) => Ok(()),
                }
            }

            /// A built-in rule with the resolved absolute learning rate (`None` for a plugin
            /// rule).
            pub fn build_builtin<T: npsim_core::Real>(
                &self,
                learning_rate: f64,
            ) -> Option<Box<dyn npsim_core::LearningRule<T>>> {
                match self {
                    $(RuleConfig::$variant(c) => Some($crate::registry::RuleSpec::build::<T>(c, learning_rate)),)+
                    RuleConfig::Plugin(_) => None,
                }
            }

            /// The plugin rule's config, if this is one.
            pub fn plugin(&self) -> Option<&P> {
                match self {
                    RuleConfig::Plugin(p) => Some(p),
                    _ => None,
                }
            }
        }
    };
}

/// Declares the built-in post-update steps, like [`register_rules!`]: generates the modules,
/// [`crate::PostUpdateConfig`] and [`crate::POST_UPDATES`].
macro_rules! register_post_updates {
    ($($module:ident :: $config:ident => $variant:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// A step applied after every update, as a scenario writes it.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename = "post_update")]
        pub enum PostUpdateConfig {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant($module::$config),
            )+
        }

        /// Every registered post-update step.
        pub const POST_UPDATES: &[npsim_core::Entry] =
            &[$(<$module::$config as $crate::registry::PostUpdateSpec>::ENTRY,)+];

        impl PostUpdateConfig {
            /// Its registered name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(PostUpdateConfig::$variant(_) => <$module::$config as $crate::registry::PostUpdateSpec>::ENTRY.name,)+
                }
            }

            /// Checks its parameters.
            pub fn validate(&self) -> Result<(), npsim_core::Invalid> {
                match self {
                    $(PostUpdateConfig::$variant(c) => $crate::registry::PostUpdateSpec::validate(c),)+
                }
            }

            /// The projections it is limited to (`None`: every plastic one).
            pub fn projections(&self) -> Option<&[String]> {
                match self {
                    $(PostUpdateConfig::$variant(c) => $crate::registry::PostUpdateSpec::projections(c),)+
                }
            }

            /// The step.
            pub fn build<T: npsim_core::Real>(&self) -> Box<dyn npsim_core::PostUpdate<T>> {
                match self {
                    $(PostUpdateConfig::$variant(c) => $crate::registry::PostUpdateSpec::build::<T>(c),)+
                }
            }
        }
    };
}

pub(crate) use {register_post_updates, register_rules};

#[cfg(test)]
mod tests {
    use crate::{POST_UPDATES, PostUpdateConfig, RULES, RuleConfig};

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .from_str(text)
            .unwrap_or_else(|e| panic!("`{text}`: {e}"))
    }

    #[test]
    fn every_registered_example_parses_as_its_own_entry_and_builds() {
        for rule in RULES {
            let config: RuleConfig<()> = parse(rule.entry.example);
            assert_eq!(config.builtin_name(), Some(rule.entry.name));
            config.validate().unwrap();
            assert!(config.build_builtin::<f32>(1e-3).is_some());
            assert!(!rule.short.is_empty());
        }
        for step in POST_UPDATES {
            let config: PostUpdateConfig = parse(step.example);
            assert_eq!(config.name(), step.name);
            config.validate().unwrap();
        }
    }

    #[test]
    fn validation_names_the_field() {
        let config: RuleConfig<()> =
            parse("NodePerturbation(learning_rate: Absolute(1e-3), baseline: RunningAverage(2.0))");
        assert_eq!(
            config.validate().unwrap_err().under("rule").to_string(),
            "rule.baseline: the running-average rate must be in (0, 1], got 2"
        );
        let config: PostUpdateConfig = parse("WeightDecay(rate: 1.5)");
        assert_eq!(
            config.validate().unwrap_err().under("post_update[0]").to_string(),
            "post_update[0].rate: must be in [0, 1), got 1.5"
        );
    }
}
