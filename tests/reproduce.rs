//! `npsim reproduce`: a figure's scenario run, analysed and drawn; a complete recording reused.

mod common;
use common::npsim;

#[test]
fn list_names_every_figure_with_its_finding_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", "--list"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for f in npsim::reproduce::FIGURES {
        assert!(
            text.contains(f.name) && text.contains(f.paper_found),
            "{}",
            f.name
        );
    }
    assert!(text.contains("not yet reproducible"));
    let unknown = npsim(&["reproduce", "fig9z"], dir.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no figure `fig9z`; reproducible: fig1a"));
}

#[test]
fn fig1a_quick_runs_from_any_folder_and_is_reused_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = npsim(&["reproduce", "fig1a", "--quiet"], d);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("minimum training time"), "{text}");
    let folder = d.join("reproduce/fig1a");
    for file in ["fig1a_quick.h5", "learning_curves.svg"] {
        assert!(folder.join(file).exists(), "{file}");
    }
    // The quick scale's overrides and the figure's target are in the recording.
    let recording = npsim::recorder::read(&folder.join("fig1a_quick.h5")).unwrap();
    let overrides = recording.attributes["overrides"].to_string();
    assert!(
        overrides.contains("circuit.lh=200") && overrides.contains("analysis.target"),
        "{overrides}"
    );
    let before = std::fs::metadata(folder.join("fig1a_quick.h5"))
        .unwrap()
        .modified()
        .unwrap();
    let again = npsim(&["reproduce", "fig1a", "--quiet"], d);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("reusing"));
    assert_eq!(
        std::fs::metadata(folder.join("fig1a_quick.h5"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
}

#[test]
fn a_figure_whose_dataset_is_missing_says_how_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = npsim(&["reproduce", "fig4b", "--data-dir", "nowhere"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("sarcos"), "{text}");
    assert!(!dir.path().join("reproduce/fig4b/fig4b_quick.h5").exists());
}
