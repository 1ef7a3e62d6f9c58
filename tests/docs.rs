//! The documentation follows the registries: every registered rule, post-update step, task
//! and activation appears in `docs/scenarios.md` exactly as its registry entry describes it.
//! After an intended change to an entry, regenerate with `UPDATE_DOCS=1 cargo test --test docs`.

use std::path::Path;

#[test]
fn scenarios_md_lists_every_registered_entry_as_registered() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios.md");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut problems = Vec::new();
    for section in npsim::catalog::sections() {
        let open = format!("<!-- registry: {} -->\n", section.kind);
        let close = format!("<!-- end registry: {} -->", section.kind);
        let (Some(start), Some(end)) = (text.find(&open), text.find(&close)) else {
            problems.push(format!(
                "docs/scenarios.md has no `{}` block for the {}s",
                open.trim(),
                section.kind
            ));
            continue;
        };
        let start = start + open.len();
        let expected = npsim::catalog::markdown(&section);
        if update {
            text.replace_range(start..end, &expected);
        } else if text[start..end] != expected {
            problems.push(format!(
                "the {} table in docs/scenarios.md differs from the registry; expected:\n{expected}",
                section.kind
            ));
        }
    }
    if update {
        std::fs::write(&path, text).unwrap();
    }
    assert!(
        problems.is_empty(),
        "{}\n(regenerate with UPDATE_DOCS=1 cargo test --test docs)",
        problems.join("\n")
    );
}
