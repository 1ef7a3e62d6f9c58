//! `npsim reproduce FIGURE`: run the scenario behind a figure of the paper (reusing a complete
//! recording, resuming an interrupted one), analyse it and draw it.
//!
//! Each figure names a shipped scenario (compiled in, so the command works from any folder)
//! and the overrides of its two scales: `quick` (minutes on 2 cores, reduced sizes or steps)
//! and `paper` (the paper's sizes where the scenario is reduced; hours).

/// One reproducible figure.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// `fig1a`, ...
    pub name: &'static str,
    /// What it shows.
    pub shows: &'static str,
    /// What the paper found.
    pub paper_found: &'static str,
    /// The scenario file under `scenarios/`.
    pub scenario: &'static str,
    /// Its text.
    pub text: &'static str,
    /// `--set` overrides of the quick scale.
    pub quick: &'static [&'static str],
    /// `--set` overrides of the paper scale.
    pub paper: &'static [&'static str],
    /// A scenario of its own for the paper scale (file under `scenarios/`, text), where the
    /// paper's sizes are a different sweep (overrides cannot change a sweep).
    pub paper_scenario: Option<(&'static str, &'static str)>,
    /// Likewise for the quick scale, where it sweeps what the shipped scenario does not
    /// (several seeds).
    pub quick_scenario: Option<(&'static str, &'static str)>,
    /// Wall time on 2 cores, in minutes, at the quick and paper scales (`~`: estimated from a
    /// shorter run, as docs/reproduction.md says; `?`: not measured, its dataset was absent).
    pub minutes: (&'static str, &'static str),
    /// The metric of its learning curves and analysis target.
    pub target: &'static str,
    /// The dataset it needs, if any.
    pub dataset: Option<&'static str>,
}

macro_rules! scenario {
    ($file:literal) => {
        ($file, include_str!(concat!("../scenarios/", $file)))
    };
}

// A table row per figure reads best as one call with its fields in order.
#[allow(clippy::too_many_arguments)]
const fn figure(
    name: &'static str,
    (scenario, text): (&'static str, &'static str),
    shows: &'static str,
    paper_found: &'static str,
    quick: &'static [&'static str],
    paper: &'static [&'static str],
    minutes: (&'static str, &'static str),
    target: &'static str,
    dataset: Option<&'static str>,
) -> Figure {
    Figure {
        name,
        shows,
        paper_found,
        scenario,
        text,
        quick,
        paper,
        paper_scenario: None,
        quick_scenario: None,
        minutes,
        target,
        dataset,
    }
}

impl Figure {
    /// The same figure, with a scenario of its own at the paper scale.
    const fn at_paper_scale(self, scenario: (&'static str, &'static str)) -> Self {
        Self {
            paper_scenario: Some(scenario),
            ..self
        }
    }

    /// The same figure, with a scenario of its own at the quick scale.
    const fn at_quick_scale(self, scenario: (&'static str, &'static str)) -> Self {
        Self {
            quick_scenario: Some(scenario),
            ..self
        }
    }

    /// The scenario file and text at `scale` (`quick` or `paper`), and its overrides.
    pub fn scenario_at(&self, scale: &str) -> (&'static str, &'static str, &'static [&'static str]) {
        let (own, overrides) = match scale {
            "paper" => (self.paper_scenario, self.paper),
            _ => (self.quick_scenario, self.quick),
        };
        let (file, text) = own.unwrap_or((self.scenario, self.text));
        (file, text, overrides)
    }
}

/// The figures `npsim reproduce` knows.
pub const FIGURES: &[Figure] = &[
    figure(
        "fig1a",
        scenario!("linear_fig1a.ron"),
        "NP learning curves of the deep linear network at several rates relative to the critical rate η*, beside the mean-field theory",
        "the mean-field theory (Eq. 12) tracks the simulations; above the critical rate η* the weight norm crosses 2/c0 before the error has converged, and the error rises again",
        &["circuit.lh=200", "train.steps=20000"],
        &["circuit.lh=10000", "train.steps=100000"],
        ("0.1", "~5"),
        "epsilon=1%",
        None,
    ),
    figure(
        "fig1b",
        scenario!("linear_fig1a.ron"),
        "the runs of fig1a in the (input-weight norm α, error ε) plane, beside the four-variable model and the critical norm 2/(η Lx Ly (1 + β0)) past which the error grows (`phase_plane.svg`)",
        "below η* the error converges before the weight norm reaches the critical line; above it the norm crosses the line first and the error grows again",
        &["circuit.lh=200", "train.steps=20000"],
        &["circuit.lh=10000", "train.steps=100000"],
        ("0.1", "~5"),
        "epsilon=1%",
        None,
    ),
    figure(
        "fig1c",
        scenario!("linear_fig1c.ron"),
        "NP from different initial weight norms at one fixed rate",
        "from a large initial weight norm the error rises before it converges to zero",
        &["circuit.lh=200", "train.steps=20000"],
        &["circuit.lh=10000", "train.steps=100000"],
        ("0.1", "~2"),
        "epsilon=1%",
        None,
    ),
    figure(
        "fig2a",
        scenario!("linear_fig2a.ron"),
        "minimum training time of NP and SGD against the hidden width Lh (Lx = 100, Ly = 10), each over its own learning rates, with the theory's minimum (Eq. 13 and the four-variable model)",
        "NP's minimum training time is almost flat in Lh, about a hundred times SGD's; the optimal rate scales as Lh^(-1/3)",
        &[],
        &[],
        ("1.5", "~23"),
        "epsilon=1%",
        None,
    )
    .at_paper_scale(scenario!("linear_fig2a_paper.ron")),
    figure(
        "fig2b",
        scenario!("linear_fig2b.ron"),
        "minimum training time of NP and SGD against the output size Ly (Lx = 100, Lh = 1,000; the paper: 10,000), with the theory's minimum",
        "NP's minimum training time grows linearly with Ly; SGD's does not",
        &[],
        &[],
        ("1", "~310"),
        "epsilon=1%",
        None,
    )
    .at_paper_scale(scenario!("linear_fig2b_paper.ron")),
    figure(
        "fig3a",
        scenario!("linear_fig3a.ron"),
        "NP under a noisy teacher (σt² = 0.1): the error falls, reaches a minimum and rises",
        "the error falls, then rises once the weight norm has grown; the larger the rate, the sooner (Eq. 14 tracks it)",
        &["circuit.lh=200", "train.steps=40000"],
        &[
            "circuit.lh=10000",
            "train.steps=1000000",
            "train.record_every=1000",
        ],
        ("0.1", "~17"),
        "epsilon=10%",
        None,
    ),
    figure(
        "fig3b",
        scenario!("linear_fig3b.ron"),
        "NP under a noisy teacher (σt² = 0.1): the step at which the error is smallest and the step at which it is back at its initial value, against the learning rate, with the theory's onset τc",
        "the time to the minimum falls steeply with the rate (≈ η^-3 above η*, η^-1.5 below); above η* the error is back at its initial level soon after, below it only much later",
        &[],
        &[
            "circuit.lh=10000",
            "train.steps=1000000",
            "train.record_every=100",
        ],
        ("0.5", "~36"),
        "epsilon=10%",
        None,
    ),
    figure(
        "fig3c",
        scenario!("linear_fig3c.ron"),
        "SGD under the same noisy teacher: the step of the error's minimum against the learning rate",
        "SGD has no delayed instability: above a critical rate the error rises from the first updates, below it the error keeps falling (for at least 10^6 iterations)",
        &[],
        &[
            "circuit.lh=10000",
            "train.steps=1000000",
            "train.record_every=100",
        ],
        ("0.3", "~47"),
        "epsilon=10%",
        None,
    ),
    figure(
        "fig3d",
        scenario!("linear_fig3d.ron"),
        "NP under a noisy teacher with and without weight normalisation, at three widths",
        "without normalisation the error rises again at every width; with it, learning stays stable",
        &["train.steps=10000"],
        &["train.steps=1000000", "train.record_every=1000"],
        ("0.7", "~60"),
        "epsilon=10%",
        None,
    ),
    figure(
        "fig4a",
        scenario!("sarcos_np.ron"),
        "the runs of fig4b: the mean cosine between each NP update and the back-propagated gradient on the same batch, against the hidden width (`cosine.svg`)",
        "NP's updates align less with the gradient as the hidden layer widens, yet its training time depends only weakly on the width",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig4b",
        scenario!("sarcos_np.ron"),
        "NP on SARCOS inverse dynamics, one hidden layer, at several rates",
        "stable at small rates; at larger ones the test error reaches a minimum and diverges",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig4c",
        scenario!("sarcos_np.ron"),
        "the runs of fig4b: the epochs until the test error is smallest and until it is back at its initial value, against the learning rate (`instability.svg`)",
        "as in the linear network (fig3b): at high rates the test error is back at its initial level right after its minimum; at lower rates it rises slowly",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig4d",
        scenario!("sarcos_np.ron"),
        "the runs of fig4b in the (squared weight norm, test error) plane (`phase_plane.svg`)",
        "the weight norm grows throughout; the test error turns round once it is large",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig4e",
        scenario!("sarcos_rules.ron"),
        "NP against REINFORCE and SGD on SARCOS",
        "REINFORCE reaches the target far sooner than NP, SGD sooner still",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig4f",
        scenario!("sarcos_norm.ron"),
        "NP on SARCOS with and without weight normalisation",
        "without normalisation the test error reaches a minimum and rises; with it, it stays down",
        &["train.epochs=10"],
        &[],
        ("?", "?"),
        "test_loss=5",
        Some("sarcos"),
    ),
    figure(
        "fig5a",
        scenario!("mnist_np.ron"),
        "NP against SGD on MNIST, one hidden layer",
        "NP learns, one hundred to one thousand times slower than SGD, unstable at large rates",
        &["train.epochs=2"],
        &[],
        ("0.2", "~1"),
        "test_accuracy=0.9",
        Some("mnist"),
    ),
    figure(
        "fig5b",
        scenario!("mnist_rules.ron"),
        "NP against REINFORCE and SGD on MNIST",
        "REINFORCE is closer to SGD than NP; hidden noise slows REINFORCE",
        &["train.epochs=2"],
        &[],
        ("0.3", "~3"),
        "test_accuracy=0.9",
        Some("mnist"),
    ),
    figure(
        "fig5c",
        scenario!("mnist_depth.ron"),
        "NP with 1 to 3 hidden layers, with and without weight normalisation",
        "training time grows with depth; normalisation stabilises the deeper networks",
        &[],
        &[],
        ("0.2", "~1"),
        "test_accuracy=0.9",
        Some("mnist"),
    )
    .at_quick_scale(scenario!("mnist_depth_quick.ron")),
    figure(
        "figS5",
        scenario!("cifar10_conv.ron"),
        "NP on a CIFAR-10 convnet with and without weight decay, beside SGD",
        "weight regularisation stabilises NP, which stays below 50 % accuracy",
        &[],
        &[],
        ("2", "~40"),
        "test_accuracy=0.4",
        Some("cifar10"),
    )
    .at_quick_scale(scenario!("cifar10_conv_quick.ron")),
];

/// The figure called `name`.
pub fn find(name: &str) -> Option<&'static Figure> {
    FIGURES.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The `--list` text.
pub fn list() -> String {
    let mut text =
        String::from("figure  scenario               quick    paper    shows / what the paper found\n");
    for f in FIGURES {
        text += &format!(
            "{:<7} {:<22} {:>4} min {:>5} min  {}\n{:<49}paper: {}{}\n",
            f.name,
            f.scenario,
            f.minutes.0,
            f.minutes.1,
            f.shows,
            "",
            f.paper_found,
            f.dataset
                .map_or(String::new(), |d| format!(" (needs {d}: `npsim data fetch {d}`)"))
        );
    }
    text += "\ntimes: minutes on 2 cores as measured here; `~`: estimated from a shorter run (docs/reproduction.md); `?`: not measured (dataset absent)\n";
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    #[test]
    fn every_figure_names_a_valid_scenario_and_overrides_at_both_scales() {
        for f in FIGURES {
            for scale in ["quick", "paper"] {
                let (file, text, overrides) = f.scenario_at(scale);
                let mut scenario = Scenario::parse(Path::new(file), text.to_string()).unwrap();
                let set: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
                scenario
                    .apply_overrides(&set)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            }
            crate::analysis::Target::parse(f.target).unwrap();
        }
        assert!(find("FIG1A").is_some() && find("fig9").is_none());
    }
}
