//! A birdsong-like motor task: a timing population drives a motor population, which must
//! learn to reproduce a tutor song from its own noise and a scalar reward.
//!
//! # What it models
//! In the songbird, the premotor nucleus HVC fires sparse bursts, each neuron once per song at
//! its own time, so that together they tile the song; HVC drives the motor nucleus RA through
//! plastic synapses; the forebrain nucleus LMAN injects variability into RA; a reward that
//! says how close each rendition came to the memorised tutor song consolidates the
//! perturbations that helped (Fiete & Seung 2006; Fiete, Fee & Seung 2007). Here the circuit's
//! input population plays HVC, its noisy hidden population RA (noise playing LMAN), and its
//! output the motor/acoustic channels, each typically a fixed pooled readout of RA
//! (`init: Pools(..)`, `plastic: false`).
//!
//! # Inputs and targets
//! Input neuron `k` of `N` bursts once, at rate 1 from step `⌊k·T/N⌋` of the song's `T` steps
//! for `burst` ms (0 otherwise); with more neurons than steps, several start at each step, as
//! many HVC neurons burst together in the bird. A circuit may have several input populations
//! (e.g. two HVC subpopulations, or a tonic drive): each bursting one tiles the song on its
//! own, and those named in `tonic` fire at a constant rate throughout. The tutor song has one smooth trace per output channel: generated from the run
//! seed (stream `task/tutor`) as `0.5 + 0.25 s(t)/max|s|` with `s(t) = Σ_{k=1}^{K} (a_k sin +
//! b_k cos)(2π k t/duration)`, `a_k, b_k ~ N(0, 1/k²)`, or read from a CSV file (one row per
//! time step, one column per channel, an optional header line). Every rendition has the same
//! input and tutor; renditions differ only in their noise.
//!
//! # Reward and metrics
//! A rendition's loss is `ℓ = (1/T) Σ_t ½|y(t) − y*(t)|²` (its reward is `−ℓ`). Recorded:
//! `song_error` (ℓ of a noise-free rendition with the current weights) and `norm_<projection>`;
//! runs in time also record `reward`, the mean reward of the noisy renditions of each record
//! interval, and `baseline`, the reward the rule compared them with (NP: the noise-free
//! rendition's, a running average, or the other renditions' mean), averaged likewise.
//!
//! # Parameters
//! | name | unit | default | meaning |
//! |---|---|---|---|
//! | `duration` | ms | `600.0` | length of the song |
//! | `dt` | ms | `1.0` | time step |
//! | `burst` | ms | `6.0` | length of each input neuron's burst |
//! | `tutor` | | `Generated(components: 6)` | `Generated(components: K)` or `File("tutor.csv")` (relative to the data directory) |
//! | `trace_gate` | | `None` | which activity gates the noise in a synapse's trace: `None`, `Clean`, `Noisy` (see the trial engine) |
//! | `tonic` | | `{}` | input populations held at a constant rate (name → rate) instead of bursting |
//!
//! # References
//! - I. R. Fiete, H. S. Seung (2006). Gradient learning in spiking neural networks by dynamic
//!   perturbation of conductances. PRL 97, 048104.
//! - I. R. Fiete, M. S. Fee, H. S. Seung (2007). Model of birdsong learning based on gradient
//!   estimation by dynamic perturbation of neural conductances. J. Neurophysiol. 98, 2038.
//! - T. Teşileanu, B. Ölveczky, V. Balasubramanian (2017). Rules and mechanisms for efficient
//!   two-stage learning in neural circuits. eLife 6, e20944.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nalgebra::DMatrix;
use npsim_core::{Attr, Entry, Invalid, Measure, Param, PopulationModel, Real, SeedStreams, TraceGate, TrialTiming};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::data::{DataError, read_data_file};
use crate::registry::{MetricSpec, Prepared, TaskContext, TaskError, TaskSpec, TrialSetup};
use crate::task::{Task, structure_metric_names, weight_norms};

fn default_duration() -> f64 {
    600.0
}
fn default_dt() -> f64 {
    1.0
}
fn default_burst() -> f64 {
    6.0
}

/// Where the tutor song comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "tutor")]
pub enum Tutor {
    /// A smooth song of `components` harmonics per channel, drawn from the run seed.
    Generated {
        /// Harmonics of the song's length per channel.
        components: usize,
    },
    /// A CSV file: one row per time step, one column per output channel.
    File(String),
}

impl Default for Tutor {
    fn default() -> Self {
        Tutor::Generated { components: 6 }
    }
}

/// `Birdsong(duration:, dt:, burst:, tutor:, trace_gate:)` in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Birdsong")]
pub struct BirdsongConfig {
    /// Song length, ms (default 600).
    #[serde(default = "default_duration")]
    pub duration: f64,
    /// Time step, ms (default 1).
    #[serde(default = "default_dt")]
    pub dt: f64,
    /// Burst length of each input neuron, ms (default 6).
    #[serde(default = "default_burst")]
    pub burst: f64,
    /// The tutor song (default generated, 6 harmonics).
    #[serde(default)]
    pub tutor: Tutor,
    /// Which activity gates the noise in a synapse's trace (default `None`).
    #[serde(default)]
    pub trace_gate: TraceGate,
    /// Input populations held at a constant rate instead of bursting (name → rate).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tonic: BTreeMap<String, f64>,
}

/// The birdsong task checked against its circuit.
#[derive(Debug)]
pub struct BirdsongPrepared {
    timing: TrialTiming,
    gate: TraceGate,
    /// Each input population's size and, for a tonic one, its rate.
    inputs: Vec<(usize, Option<f64>)>,
    outputs: usize,
    burst_steps: usize,
    tutor: Tutor,
    file_song: Option<DMatrix<f64>>,
    projections: Vec<(usize, String)>,
    metrics: MetricSpec,
}

impl TaskSpec for BirdsongConfig {
    const ENTRY: Entry = Entry {
        name: "Birdsong",
        summary: "birdsong-like motor learning in time: each input (HVC) neuron bursts once, tiling the song; the output channels must follow a tutor song; reward −(1/T) Σ_t ½|y − y*|² per rendition; runs on the trial engine",
        params: &[
            Param {
                name: "duration",
                unit: "ms",
                default: "600.0",
                meaning: "length of the song",
            },
            Param {
                name: "dt",
                unit: "ms",
                default: "1.0",
                meaning: "time step",
            },
            Param {
                name: "burst",
                unit: "ms",
                default: "6.0",
                meaning: "length of each input neuron's burst (rate 1)",
            },
            Param {
                name: "tutor",
                unit: "",
                default: "Generated(components: 6)",
                meaning: "`Generated(components: K)` (K harmonics per channel, from the seed) or `File(\"tutor.csv\")` (one row per step, one column per channel; relative to the data directory)",
            },
            Param {
                name: "trace_gate",
                unit: "",
                default: "None",
                meaning: "what gates the noise in a synapse's eligibility trace: `None` (exact NP), `Clean` (f'(u) of the noise-free rendition), `Noisy` (f'(ũ) of the noisy one)",
            },
            Param {
                name: "tonic",
                unit: "",
                default: "{}",
                meaning: "input populations held at a constant rate through the song instead of bursting, e.g. `{\"drive\": 1.0}`",
            },
        ],
        example: "Birdsong(duration: 600.0, dt: 1.0)",
    };
    type Prepared = BirdsongPrepared;

    fn prepare(&self, context: &TaskContext<'_>) -> Result<BirdsongPrepared, TaskError> {
        let invalid = |field: &str, message: String| TaskError::Invalid(Invalid::new(field, message));
        for (field, value) in [("duration", self.duration), ("dt", self.dt), ("burst", self.burst)] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(invalid(field, format!("must be a finite number of ms > 0, got {value}")));
            }
        }
        if self.dt > self.duration {
            return Err(invalid("dt", format!("{} ms is longer than the song ({} ms)", self.dt, self.duration)));
        }
        let steps = (self.duration / self.dt).round() as usize;
        let blueprint = context.blueprint;
        let input_names: Vec<&str> = blueprint.inputs().iter().map(|&i| blueprint.populations()[i].name.as_str()).collect();
        for (name, &rate) in &self.tonic {
            let field = format!("tonic.{name}");
            if !input_names.contains(&name.as_str()) {
                return Err(invalid(
                    &field,
                    format!("`{name}` is not an input population of the circuit (its inputs: `{}`)", input_names.join("`, `")),
                ));
            }
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(invalid(&field, format!("a rate must be a finite number ≥ 0, got {rate}")));
            }
        }
        let inputs = blueprint
            .inputs()
            .iter()
            .map(|&i| {
                let pop = &blueprint.populations()[i];
                (pop.size, self.tonic.get(&pop.name).copied())
            })
            .collect();
        let outputs = blueprint.populations()[blueprint.output()].size;
        for pop in blueprint.populations() {
            if matches!(pop.model, PopulationModel::LeakyRate { .. }) && pop.model.retention(self.dt) == 0.0 {
                return Err(invalid(
                    "dt",
                    format!("{} ms is too long for population `{}`: its activity would not carry over a step", self.dt, pop.name),
                ));
            }
        }
        let file_song = match &self.tutor {
            Tutor::Generated { components: 0 } => {
                return Err(invalid("tutor", "a generated song needs at least one component".into()));
            }
            Tutor::Generated { .. } => None,
            Tutor::File(name) => Some(read_tutor(&context.data_dir_or(&Some(name.clone())), steps, outputs).map_err(TaskError::Data)?),
        };
        let projections = context.weighted_projections();
        let mut names = vec!["song_error".to_string()];
        names.extend(structure_metric_names(&projections, &[]));
        Ok(BirdsongPrepared {
            timing: TrialTiming { steps, dt: self.dt },
            gate: self.trace_gate,
            inputs,
            outputs,
            burst_steps: ((self.burst / self.dt).round() as usize).max(1),
            tutor: self.tutor.clone(),
            file_song,
            projections,
            metrics: MetricSpec {
                names,
                error: 0,
                classification: false,
            },
        })
    }
}

/// A tutor song from a CSV file: `steps` rows of `channels` numbers (a header line that does
/// not parse as numbers is skipped).
fn read_tutor(path: &std::path::Path, steps: usize, channels: usize) -> Result<DMatrix<f64>, DataError> {
    let bytes = read_data_file(path, "give the tutor song as a CSV file in the data directory, one row per time step")?;
    let corrupt = |problem: String| DataError::Corrupt {
        path: PathBuf::from(path),
        problem,
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt("it is not UTF-8 text".into()))?;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (k, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let values: Result<Vec<f64>, _> = line.split(',').map(|v| v.trim().parse::<f64>()).collect();
        match values {
            Ok(values) if values.len() == channels && values.iter().all(|v| v.is_finite()) => rows.push(values),
            Ok(values) => {
                return Err(corrupt(format!(
                    "line {} has {} finite values, expected {channels} (one per output channel)",
                    k + 1,
                    values.len()
                )));
            }
            Err(_) if k == 0 => {}
            Err(_) => return Err(corrupt(format!("line {} is not a row of numbers", k + 1))),
        }
    }
    if rows.len() != steps {
        return Err(corrupt(format!("it has {} rows, the song has {steps} steps (duration / dt)", rows.len())));
    }
    Ok(DMatrix::from_fn(channels, steps, |c, t| rows[t][c]))
}

impl BirdsongPrepared {
    /// The tutor song, `channels × steps`.
    fn song(&self, streams: &SeedStreams) -> DMatrix<f64> {
        if let Some(song) = &self.file_song {
            return song.clone();
        }
        let Tutor::Generated { components } = self.tutor else {
            unreachable!("a file song is loaded when prepared")
        };
        let mut rng = streams.stream("task/tutor");
        let steps = self.timing.steps;
        let mut song = DMatrix::zeros(self.outputs, steps);
        for c in 0..self.outputs {
            let coefficients: Vec<(f64, f64)> = (1..=components)
                .map(|k| {
                    let (a, b): (f64, f64) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
                    (a / k as f64, b / k as f64)
                })
                .collect();
            let s: Vec<f64> = (0..steps)
                .map(|t| {
                    let phase = 2.0 * std::f64::consts::PI * t as f64 / steps as f64;
                    coefficients
                        .iter()
                        .enumerate()
                        .map(|(k, (a, b))| {
                            let w = (k + 1) as f64 * phase;
                            a * w.sin() + b * w.cos()
                        })
                        .sum()
                })
                .collect();
            let peak = s.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
            for (t, v) in s.iter().enumerate() {
                song[(c, t)] = 0.5 + 0.25 * v / peak;
            }
        }
        song
    }
}

impl Prepared for BirdsongPrepared {
    fn metrics(&self) -> &MetricSpec {
        &self.metrics
    }

    fn training_samples(&self) -> Option<usize> {
        None
    }

    fn attributes(&self) -> Vec<(String, Attr)> {
        vec![
            ("task".into(), Attr::Text("birdsong".into())),
            ("steps_per_rendition".into(), Attr::Int(self.timing.steps as i64)),
            ("dt_ms".into(), Attr::Float(self.timing.dt)),
        ]
    }

    fn trial(&self) -> Option<TrialSetup> {
        Some(TrialSetup {
            timing: self.timing,
            gate: self.gate,
        })
    }

    fn recording_group(&self) -> Option<&'static str> {
        Some("song")
    }

    fn build<T: Real>(&self, streams: &SeedStreams) -> Box<dyn Task<T>> {
        let steps = self.timing.steps;
        // Each bursting input population tiles the song on its own: its neuron k of N bursts
        // from step ⌊k·steps/N⌋ for `burst_steps` steps. Rows stack the populations in order.
        let rows = self.inputs.iter().map(|(size, _)| size).sum();
        let mut hvc = DMatrix::zeros(rows, steps);
        let mut first = 0;
        for &(size, tonic) in &self.inputs {
            for k in 0..size {
                let start = k * steps / size;
                for t in 0..steps {
                    hvc[(first + k, t)] = match tonic {
                        Some(rate) => T::of(rate),
                        None if t >= start && t < start + self.burst_steps => T::one(),
                        None => T::zero(),
                    };
                }
            }
            first += size;
        }
        Box::new(Birdsong {
            hvc,
            song: self.song(streams).map(T::of),
            projections: self.projections.clone(),
            initial: None,
        })
    }
}

/// The birdsong task of one run.
pub struct Birdsong<T: Real> {
    hvc: DMatrix<T>,
    song: DMatrix<T>,
    projections: Vec<(usize, String)>,
    /// The noise-free song at the first measurement (before learning).
    initial: Option<DMatrix<f64>>,
}

/// `channels × steps` as (name, rows, columns, row-major values).
fn recording(name: &str, m: &DMatrix<f64>) -> (String, usize, usize, Vec<f64>) {
    (name.into(), m.nrows(), m.ncols(), m.transpose().as_slice().to_vec())
}

/// `m` (`rows × steps`) repeated for `batch` renditions, rendition-major (the trial engine's
/// layout: column `b·steps + t`).
fn renditions<T: Real>(m: &DMatrix<T>, batch: usize, out: &mut DMatrix<T>) {
    let steps = m.ncols();
    if out.shape() != (m.nrows(), steps * batch) {
        *out = DMatrix::zeros(m.nrows(), steps * batch);
    }
    for b in 0..batch {
        out.columns_mut(b * steps, steps).copy_from(m);
    }
}

impl<T: Real> Task<T> for Birdsong<T> {
    fn input_size(&self) -> usize {
        self.hvc.nrows()
    }

    fn output_size(&self) -> usize {
        self.song.nrows()
    }

    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>) {
        let batch = inputs.ncols() / self.hvc.ncols();
        renditions(&self.hvc, batch, inputs);
        renditions(&self.song, batch, targets);
    }

    fn metrics(&mut self, engine: &mut dyn Measure<T>) -> Vec<f64> {
        let song = engine.forward(&self.hvc);
        if self.initial.is_none() {
            self.initial = Some(song.map(|v| v.f64()));
        }
        let steps = self.song.ncols() as f64;
        let error = (song - &self.song).iter().map(|d| d.f64() * d.f64()).sum::<f64>() * 0.5 / steps;
        let mut row = vec![error];
        row.extend(weight_norms(engine, &self.projections));
        row
    }

    fn recordings(&mut self, engine: &mut dyn Measure<T>) -> Vec<(String, usize, usize, Vec<f64>)> {
        let last = engine.forward(&self.hvc).map(|v| v.f64());
        let mut out = vec![recording("tutor", &self.song.map(|v| v.f64()))];
        if let Some(initial) = &self.initial {
            out.push(recording("initial", initial));
        }
        out.push(recording("final", &last));
        out
    }
}
