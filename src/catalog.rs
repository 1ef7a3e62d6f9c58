//! The names under which rules and post-update steps are chosen in scenarios, with their
//! documented parameters (`npsim rules`).

/// One entry of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// `rule` or `post-update`.
    pub kind: &'static str,
    /// How a scenario writes it.
    pub name: String,
    /// What it does.
    pub doc: String,
    /// Its parameters, with units and defaults.
    pub params: String,
}

/// The built-in rules and post-update steps.
pub fn builtin() -> Vec<Listing> {
    let entry = |kind, name: &str, doc: &str, params: &str| Listing {
        kind,
        name: name.into(),
        doc: doc.into(),
        params: params.into(),
    };
    vec![
        entry(
            "rule",
            "NodePerturbation",
            "node perturbation (paper Eq. 3): ΔW = −(η/σ²) Σ_b δℓ_b (σξ_b) x_bᵀ; local, needs noisy targets",
            "learning_rate: Absolute(η) | RelativeToCritical(k) | RelativeToSgdOptimal(k) (required)",
        ),
        entry(
            "rule",
            "Sgd",
            "SGD by back-propagation: ΔW = −η Σ_b e_b x_bᵀ; the non-local baseline",
            "learning_rate: Absolute(η) | RelativeToCritical(k) | RelativeToSgdOptimal(k) (required)",
        ),
        entry(
            "rule",
            "WeightPerturbation",
            "weight perturbation: every plastic weight perturbed at once, ΔW = −(η/σ_w²) δℓ Ψ; local but far noisier than NP",
            "learning_rate (required); perturbation_std: σ_w (required)",
        ),
        entry(
            "rule",
            "Reinforce",
            "REINFORCE (paper Eq. 15): output perturbation estimates the output gradient, which is back-propagated; non-local",
            "learning_rate (required); hidden_noise: also perturb hidden units (default false)",
        ),
        entry(
            "rule",
            "Plugin",
            "a rule from a shared library (docs/plugins.md); list a library's rules with --plugin PATH",
            "path: library file (required); name: rule name (required); params: text for the rule (default \"\")",
        ),
        entry(
            "post-update",
            "WeightNormalisation",
            "after each update, each neuron's incoming-weight RMS is rescaled to a target (synaptic scaling, Fig. 3D)",
            "target: Initial (default) | Value(x); projections: None (all plastic, default) | Some([\"W1\", ...])",
        ),
        entry(
            "post-update",
            "WeightDecay",
            "after each update, W ← (1 − rate) W (passive decay; L2 regularisation)",
            "rate: fraction per step in [0, 1) (required); projections: None (all plastic, default) | Some([\"W1\", ...])",
        ),
    ]
}
