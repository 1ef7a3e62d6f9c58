//! Circuit templates: the paper's networks by their sizes, expanded into explicit circuits.
//!
//! | template | expands to |
//! |---|---|
//! | `DeepLinear(lx:, lh:, ly:, init_scale:, perturbation_std:)` | linear `x → h → y`, projections `W1`, `W2` without biases (Section 4) |
//! | `Mlp(input:, hidden: [..], output:, ..)` | `x → h1 → … → y`, projections `W1`, `W2`, … with biases (Figs. 4–5) |
//! | `ConvNet(input:, conv: [..], hidden: [..], output:, ..)` | convolution (and pooling) stages, then dense layers (Fig. S5) |
//!
//! `DeepLinear`'s parameters: `lx`, `lh`, `ly` (neurons, required); `init_scale` `r` (1, default
//! 1.0): `W1 ~ N(0, 2r/(Lx + Lh))`, `W2 ~ N(0, 2/(Lh + Ly))`; `perturbation_std` σ
//! (pre-activation units, default 1e-6) of the hidden and output populations' noise. The
//! others are documented on their types and in `docs/scenarios.md`.

use npsim_core::registry::positive;
use npsim_core::{
    Activation, CircuitConfig, Initializer, Invalid, Noise, PopulationConfig, ProjectionConfig, Shape,
};
use npsim_models::LinearDims;
use serde::{Deserialize, Serialize};

/// The circuit: written out, or from a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "circuit")]
pub enum CircuitSpec {
    /// The paper's one-hidden-layer linear network (`x → h → y`, projections `W1`, `W2`).
    DeepLinear(DeepLinearConfig),
    /// A fully connected network `x → h1 → … → y` (projections `W1`, `W2`, …, with biases).
    Mlp(MlpConfig),
    /// A convolutional network: convolution (and pooling) stages, then a dense readout.
    ConvNet(ConvNetConfig),
    /// Populations and projections written out.
    Explicit(CircuitConfig),
}

impl CircuitSpec {
    /// The explicit circuit.
    pub fn expand(&self) -> CircuitConfig {
        match self {
            CircuitSpec::DeepLinear(t) => t.expand(),
            CircuitSpec::Mlp(t) => t.expand(),
            CircuitSpec::ConvNet(t) => t.expand(),
            CircuitSpec::Explicit(c) => c.clone(),
        }
    }

    /// Checks a template's own values (the expanded circuit is checked when built); fields
    /// are relative to `circuit`.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            CircuitSpec::DeepLinear(t) => t.validate(),
            _ => Ok(()),
        }
    }
}

fn default_init_scale() -> f64 {
    1.0
}
fn default_perturbation_std() -> f64 {
    1e-6
}

/// Template for the paper's one-hidden-layer linear network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "DeepLinear")]
pub struct DeepLinearConfig {
    /// Input size `Lx`.
    pub lx: usize,
    /// Hidden size `Lh`.
    pub lh: usize,
    /// Output size `Ly`.
    pub ly: usize,
    /// Scale `r` of `W1`'s initial variance (default 1).
    #[serde(default = "default_init_scale")]
    pub init_scale: f64,
    /// Intrinsic noise std σ of hidden and output units (default 1e-6).
    #[serde(default = "default_perturbation_std")]
    pub perturbation_std: f64,
}

impl DeepLinearConfig {
    /// The explicit circuit: populations `x`, `h`, `y`; projections `W1: x→h`, `W2: h→y`.
    pub fn expand(&self) -> CircuitConfig {
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let pop = |name: &str, size, noise| PopulationConfig {
            name: name.into(),
            size,
            shape: None,
            activation: Activation::Linear,
            noise,
            model: Default::default(),
        };
        let proj = |name: &str, from: &str, to: &str, variance_scale| ProjectionConfig {
            name: Some(name.into()),
            from: from.into(),
            to: to.into(),
            init: Initializer::XavierNormal { variance_scale },
            bias: None,
            plastic: true,
            connectivity: Default::default(),
            synapse: Default::default(),
            delay: 0.0,
        };
        CircuitConfig {
            populations: vec![
                pop("x", self.lx, Noise::None),
                pop("h", self.lh, noise),
                pop("y", self.ly, noise),
            ],
            projections: vec![proj("W1", "x", "h", self.init_scale), proj("W2", "h", "y", 1.0)],
        }
    }

    /// Checks the sizes and scales.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, v) in [("lx", self.lx), ("lh", self.lh), ("ly", self.ly)] {
            if v == 0 {
                return Err(Invalid::new(name, "must be at least 1"));
            }
        }
        positive("init_scale", self.init_scale)?;
        positive("perturbation_std", self.perturbation_std)
    }

    /// The sizes, for the theory.
    pub fn dims(&self) -> LinearDims {
        LinearDims {
            lx: self.lx,
            lh: self.lh,
            ly: self.ly,
        }
    }
}

fn default_relu() -> Activation {
    Activation::Relu
}
fn default_softmax() -> Activation {
    Activation::Softmax
}
fn default_mlp_noise() -> f64 {
    1e-4
}
fn default_glorot_truncated() -> Initializer {
    Initializer::GlorotTruncated
}

/// Template for a multilayer perceptron (the paper's nonlinear networks, Figs. 4–5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Mlp")]
pub struct MlpConfig {
    /// Input size.
    pub input: usize,
    /// Hidden layer sizes, input side first.
    pub hidden: Vec<usize>,
    /// Output size.
    pub output: usize,
    /// Hidden activation (default `Relu`).
    #[serde(default = "default_relu")]
    pub activation: Activation,
    /// Output activation (default `Softmax`).
    #[serde(default = "default_softmax")]
    pub output_activation: Activation,
    /// Intrinsic noise std σ of every hidden and output unit (default 1e-4, the paper's).
    #[serde(default = "default_mlp_noise")]
    pub perturbation_std: f64,
    /// Initialiser of weights and biases (default `GlorotTruncated`, TensorFlow's
    /// `glorot_normal` as in the paper).
    #[serde(default = "default_glorot_truncated")]
    pub init: Initializer,
}

impl MlpConfig {
    /// The explicit circuit: populations `x`, `h1`, …, `y`; projections `W1`, … with biases.
    pub fn expand(&self) -> CircuitConfig {
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let mut populations = vec![PopulationConfig {
            name: "x".into(),
            size: self.input,
            shape: None,
            activation: Activation::Linear,
            noise: Noise::None,
            model: Default::default(),
        }];
        for (k, &size) in self.hidden.iter().enumerate() {
            populations.push(PopulationConfig {
                name: format!("h{}", k + 1),
                size,
                shape: None,
                activation: self.activation,
                noise,
                model: Default::default(),
            });
        }
        populations.push(PopulationConfig {
            name: "y".into(),
            size: self.output,
            shape: None,
            activation: self.output_activation,
            noise,
            model: Default::default(),
        });
        let projections = populations
            .windows(2)
            .enumerate()
            .map(|(k, pair)| ProjectionConfig {
                name: Some(format!("W{}", k + 1)),
                from: pair[0].name.clone(),
                to: pair[1].name.clone(),
                init: self.init,
                bias: Some(self.init),
                plastic: true,
                connectivity: Default::default(),
                synapse: Default::default(),
                delay: 0.0,
            })
            .collect();
        CircuitConfig {
            populations,
            projections,
        }
    }
}

/// Pooling after a convolution stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename = "pool")]
pub enum Pooling {
    /// No pooling (default).
    #[default]
    None,
    /// Max pooling over non-overlapping windows of this side.
    Max(usize),
    /// Average pooling over non-overlapping windows of this side.
    Avg(usize),
}

/// One convolution stage of a [`ConvNetConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "conv stage")]
pub struct ConvStageConfig {
    /// Output channels (feature maps).
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride (default 1).
    #[serde(default)]
    pub stride: Option<usize>,
    /// Zero padding on each side (default 0; `kernel / 2` keeps the size at stride 1).
    #[serde(default)]
    pub padding: usize,
    /// Pooling after the stage's activation (default `None`).
    #[serde(default)]
    pub pool: Pooling,
}

/// Template for a convolutional network (Fig. S5): `x → c1 (→ p1) → c2 (→ p2) … → h1 → … → y`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "ConvNet")]
pub struct ConvNetConfig {
    /// Input shape `(channels, height, width)`; CIFAR-10 is `(3, 32, 32)`.
    pub input: (usize, usize, usize),
    /// Convolution stages, input side first.
    pub conv: Vec<ConvStageConfig>,
    /// Dense hidden layer sizes after the last stage (default none).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Output size.
    pub output: usize,
    /// Activation of convolution and dense hidden units (default `Relu`).
    #[serde(default = "default_relu")]
    pub activation: Activation,
    /// Output activation (default `Softmax`).
    #[serde(default = "default_softmax")]
    pub output_activation: Activation,
    /// Intrinsic noise std σ of every convolution, hidden and output unit (default 1e-4);
    /// pooling units are noiseless (they have no weights of their own to learn).
    #[serde(default = "default_mlp_noise")]
    pub perturbation_std: f64,
    /// Initialiser of weights and biases (default `GlorotTruncated`).
    #[serde(default = "default_glorot_truncated")]
    pub init: Initializer,
}

impl ConvNetConfig {
    /// The explicit circuit: populations `x`, `c1`, `p1`, …, `h1`, …, `y`; convolutions `K1`,
    /// …, pooling `P1`, …, dense projections `W1`, …; every convolution and dense projection
    /// with a bias.
    pub fn expand(&self) -> CircuitConfig {
        use npsim_core::Connectivity;
        use npsim_core::conv::output_side;
        let noise = Noise::Gaussian {
            std: self.perturbation_std,
        };
        let population =
            |name: String, shape: Option<Shape>, size: usize, activation, noise| PopulationConfig {
                name,
                size,
                shape,
                activation,
                noise,
                model: Default::default(),
            };
        let projection = |name: String, from: &str, to: &str, connectivity, bias| ProjectionConfig {
            name: Some(name),
            from: from.into(),
            to: to.into(),
            init: self.init,
            bias,
            plastic: true,
            connectivity,
            synapse: Default::default(),
            delay: 0.0,
        };
        let mut populations = vec![population(
            "x".into(),
            Some(self.input),
            0,
            Activation::Linear,
            Noise::None,
        )];
        let mut projections = Vec::new();
        let (mut shape, mut last) = (self.input, "x".to_string());
        // A window that does not fit leaves a 1 × 1 map, so that validation names the stage.
        let side = |input, kernel, stride, padding| output_side(input, kernel, stride, padding).unwrap_or(1);
        for (k, stage) in self.conv.iter().enumerate() {
            let stride = stage.stride.unwrap_or(1);
            let conv_shape = (
                stage.channels,
                side(shape.1, stage.kernel, stride, stage.padding),
                side(shape.2, stage.kernel, stride, stage.padding),
            );
            let name = format!("c{}", k + 1);
            populations.push(population(
                name.clone(),
                Some(conv_shape),
                0,
                self.activation,
                noise,
            ));
            projections.push(projection(
                format!("K{}", k + 1),
                &last,
                &name,
                Connectivity::Conv2d {
                    kernel: stage.kernel,
                    stride: stage.stride,
                    padding: stage.padding,
                },
                Some(self.init),
            ));
            (shape, last) = (conv_shape, name);
            let (window, connectivity) = match stage.pool {
                Pooling::None => continue,
                Pooling::Max(window) => (window, Connectivity::MaxPool { window, stride: None }),
                Pooling::Avg(window) => (window, Connectivity::AvgPool { window, stride: None }),
            };
            let pooled = (
                shape.0,
                side(shape.1, window, window, 0),
                side(shape.2, window, window, 0),
            );
            let name = format!("p{}", k + 1);
            populations.push(population(
                name.clone(),
                Some(pooled),
                0,
                Activation::Linear,
                Noise::None,
            ));
            projections.push(projection(
                format!("P{}", k + 1),
                &last,
                &name,
                connectivity,
                None,
            ));
            (shape, last) = (pooled, name);
        }
        let dense_sizes = self
            .hidden
            .iter()
            .map(|&h| (h, self.activation))
            .chain([(self.output, self.output_activation)]);
        for (k, (size, activation)) in dense_sizes.enumerate() {
            let name = if k == self.hidden.len() {
                "y".to_string()
            } else {
                format!("h{}", k + 1)
            };
            populations.push(population(name.clone(), None, size, activation, noise));
            projections.push(projection(
                format!("W{}", k + 1),
                &last,
                &name,
                Connectivity::Dense,
                Some(self.init),
            ));
            last = name;
        }
        CircuitConfig {
            populations,
            projections,
        }
    }
}
