//! `npsim inspect` and `npsim export`: looking into a recording and converting it, and the run
//! table `run` prints too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use npsim::recorder::{self, Attr};
use npsim::runner;
use npsim::simulate::RunStatus;

use super::{BadInput, network_cli};

/// `npsim export nwb FILE [--out OUT] [--force]`.
pub(super) fn export_nwb(file: &Path, out: Option<PathBuf>, force: bool) -> Result<ExitCode> {
    if !file.exists() {
        return Err(BadInput(format!("no recording at `{}`", file.display())).into());
    }
    let out = out.unwrap_or_else(|| {
        let stem = file.to_string_lossy();
        PathBuf::from(format!(
            "{}.nwb",
            stem.trim_end_matches(".partial").trim_end_matches(".h5")
        ))
    });
    let report = npsim::export::export_nwb(file, &out, force).map_err(|e| match e {
        npsim::export::ExportError::Exists(_) => anyhow::Error::new(BadInput(e.to_string())),
        other => anyhow::Error::new(other),
    })?;
    println!(
        "wrote {}: {} time series, {} units, {} weight matrices",
        report.path.display(),
        report.series,
        report.units,
        report.matrices
    );
    Ok(ExitCode::SUCCESS)
}

/// `npsim inspect FILE`.
pub(super) fn inspect(file: &Path) -> Result<ExitCode> {
    if !file.exists() {
        return Err(BadInput(format!("no recording at `{}`", file.display())).into());
    }
    let summary = recorder::read(file)?;
    let get = |k: &str| {
        summary
            .attributes
            .get(k)
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    println!(
        "{}: scenario `{}`, npsim {}, created {}",
        file.display(),
        get("scenario_name"),
        get("npsim_version"),
        get("created")
    );
    if summary.being_written {
        println!("being written by a running npsim: rows up to its last flush (every `train.sync_seconds`)");
    }
    // In a file still being written, `interrupted` (what a run says until it ends)
    // means "not finished yet".
    let shown_status = |run: &recorder::RunSummary, status: String| {
        let started = run
            .attributes
            .get("steps_done")
            .is_some_and(|s| s.to_string() != "0");
        match (summary.being_written && status == "interrupted", started) {
            (false, _) => status,
            (true, true) => "running".into(),
            (true, false) => "waiting".into(),
        }
    };
    let error_metric = npsim::analysis::error_metric;
    let rows: Vec<TableRow> = summary
        .runs
        .iter()
        .map(|run| {
            let a = |k: &str| run.attributes.get(k).map(|a| a.to_string()).unwrap_or_default();
            let last = |name: &str| {
                run.metrics
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, v)| v.last().copied())
            };
            let error_metric = error_metric(run);
            TableRow {
                group: run.group.clone(),
                rule: a("rule"),
                rate: match run.attributes.get("learning_rate") {
                    Some(Attr::Float(v)) => format!("{v:.4e}"),
                    Some(other) => other.to_string(),
                    None => "-".into(),
                },
                status: shown_status(run, a("status")),
                steps: a("steps_done"),
                final_error: last(&error_metric).unwrap_or(f64::NAN),
                error_metric,
                accuracy: last("test_accuracy"),
                label: a("label"),
            }
        })
        .collect();
    print_table(&rows);
    network_cli::print_firing(&summary);
    Ok(ExitCode::SUCCESS)
}

/// One line of the run table that `run` and `inspect` print.
pub(super) struct TableRow {
    group: String,
    rule: String,
    rate: String,
    status: String,
    steps: String,
    error_metric: String,
    final_error: f64,
    accuracy: Option<f64>,
    label: String,
}

/// The run table: its error column is named after the runs' error metric, and classification
/// runs get a test-accuracy column.
pub(super) fn print_table(rows: &[TableRow]) {
    let error_metric = rows.first().map_or("error", |r| r.error_metric.as_str());
    let accuracy = rows.iter().any(|r| r.accuracy.is_some());
    println!(
        "{:<8} {:<18} {:>11} {:<11} {:>9} {:>14}{}  label",
        "run",
        "rule",
        "lr",
        "status",
        "steps",
        format!("final {error_metric}"),
        if accuracy { "  test_accuracy" } else { "" }
    );
    for row in rows {
        let accuracy = match (accuracy, row.accuracy) {
            (false, _) => String::new(),
            (true, value) => format!("  {:>13.4}", value.unwrap_or(f64::NAN)),
        };
        println!(
            "{:<8} {:<18} {:>11} {:<11} {:>9} {:>14.4e}{accuracy}  {}",
            row.group, row.rule, row.rate, row.status, row.steps, row.final_error, row.label
        );
    }
}

pub(super) fn print_report(report: &runner::Report) {
    let rows: Vec<TableRow> = report
        .rows
        .iter()
        .map(|row| TableRow {
            group: row.group.clone(),
            rule: row.rule.clone(),
            rate: if row.learning_rate.is_nan() {
                "-".to_string()
            } else {
                format!("{:.4e}", row.learning_rate)
            },
            status: match &row.status {
                RunStatus::Diverged { step, .. } => format!("diverged@{step}"),
                other => other.label().to_string(),
            },
            steps: row.steps_done.to_string(),
            error_metric: row.error_metric.clone(),
            final_error: row.final_error,
            accuracy: row.final_accuracy,
            label: row.label.clone(),
        })
        .collect();
    print_table(&rows);
    println!("recording: {}", report.path.display());
}
