//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use npsim::recorder::{self, FileSummary, RunSummary};
use npsim::runner;
use npsim::scenario::Scenario;

/// Runs scenario text to a file in `dir`, returning the file and its summary.
pub fn run_text(dir: &Path, text: &str) -> (PathBuf, FileSummary) {
    let scenario = Scenario::parse(Path::new("test.ron"), text.to_string()).expect("valid scenario");
    let out = dir.join("out.h5");
    let report = runner::run(&scenario, &out, true, false, &AtomicBool::new(false)).expect("run");
    assert!(!report.interrupted);
    let summary = recorder::read(&report.path).expect("readable");
    (report.path, summary)
}

/// The values of metric `name` of a run.
pub fn metric<'a>(run: &'a RunSummary, name: &str) -> &'a [f64] {
    &run.metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .1
}

/// The values of theory curve `name` of a run.
pub fn theory<'a>(run: &'a RunSummary, name: &str) -> &'a [f64] {
    &run.theory
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no theory {name}"))
        .1
}

/// A text attribute of a run.
pub fn text(run: &RunSummary, name: &str) -> String {
    run.attributes
        .get(name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
        .to_string()
}
