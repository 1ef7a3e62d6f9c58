//! Golden tests for error messages: each `tests/golden/<case>.ron` must be rejected by
//! `npsim validate` with exit status 2 and exactly the message in `<case>.stderr`.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`.

use std::path::Path;
use std::process::Command;

#[test]
fn malformed_scenarios_give_their_golden_messages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden cases are missing");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let relative = case.strip_prefix(root).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_npsim"))
            .current_dir(root)
            .arg("validate")
            .arg(relative)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected_path = case.with_extension("stderr");
        if update {
            std::fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if output.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}, expected 2",
                relative.display(),
                output.status.code()
            ));
        }
        if stderr != expected {
            failures.push(format!(
                "{}:\n  got:      {stderr}  expected: {expected}",
                relative.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
