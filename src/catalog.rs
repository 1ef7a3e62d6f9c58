//! What `npsim rules` lists: every registry's entries, read from the registries themselves.

use npsim_core::Entry;

/// One registry: its kind and its entries.
#[derive(Debug, Clone)]
pub struct Section {
    /// `rule`, `post-update`, `task`, `activation`.
    pub kind: &'static str,
    /// Where in a scenario its names go.
    pub field: &'static str,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// Every registry of this build.
pub fn sections() -> Vec<Section> {
    let mut rules: Vec<Entry> = npsim_rules::RULES.iter().map(|r| r.entry).collect();
    rules.push(crate::scenario::PLUGIN_ENTRY);
    vec![
        Section {
            kind: "rule",
            field: "rule",
            entries: rules,
        },
        Section {
            kind: "post-update",
            field: "post_update",
            entries: npsim_rules::POST_UPDATES.to_vec(),
        },
        Section {
            kind: "task",
            field: "task",
            entries: npsim_models::TASKS.to_vec(),
        },
        Section {
            kind: "population model",
            field: "model of a population",
            entries: npsim_core::population::POPULATION_MODELS.to_vec(),
        },
        Section {
            kind: "synapse",
            field: "synapse of a projection",
            entries: npsim_core::synapse::SYNAPSES.to_vec(),
        },
        Section {
            kind: "activation",
            field: "activation of a population",
            entries: npsim_core::registry::ACTIVATIONS.to_vec(),
        },
    ]
}

/// The listing `npsim rules` prints for one entry.
pub fn describe(kind: &str, entry: &Entry) -> String {
    let mut text = format!("{} ({kind})\n    {}\n", entry.name, entry.summary);
    if !entry.params.is_empty() {
        text += "    parameters:\n";
        for p in entry.params {
            let unit = if p.unit.is_empty() || p.unit == "1" {
                String::new()
            } else {
                format!(", {}", p.unit)
            };
            text += &format!("      {} ({}{unit}): {}\n", p.name, p.default, p.meaning);
        }
    }
    text += &format!("    example: {}\n", entry.example);
    text
}

/// A section as a Markdown table, as `docs/scenarios.md` shows it between the markers
/// `<!-- registry: KIND -->` and `<!-- end registry: KIND -->` (checked by `tests/docs.rs`).
pub fn markdown(section: &Section) -> String {
    let mut text = format!(
        "| `{}` | what it does | parameters (default; unit) | example |\n|---|---|---|---|\n",
        section.field.split_whitespace().next().unwrap_or(section.field)
    );
    for entry in &section.entries {
        let params = if entry.params.is_empty() {
            "none".to_string()
        } else {
            entry
                .params
                .iter()
                .map(|p| {
                    let unit = if p.unit.is_empty() || p.unit == "1" {
                        String::new()
                    } else {
                        format!("; {}", p.unit)
                    };
                    format!("`{}` ({}{unit}): {}", p.name, p.default, p.meaning)
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        text += &format!(
            "| `{}` | {} | {} | `{}` |\n",
            entry.name,
            entry.summary.replace('|', "\\|"),
            params.replace('|', "\\|"),
            entry.example
        );
    }
    text
}
