//! Image classification (MNIST digits, CIFAR-10 pictures): labelled images, train/test
//! splits, and the task that trains on them.
//!
//! # The task
//! Inputs are pixels / 255 (in the file's order), targets one-hot (10 values); the output
//! population should be a 10-unit softmax (the paper's Fig. 5: squared error on the softmax
//! output). Training draws mini-batches without replacement from a seeded permutation per
//! epoch (stream `task/shuffle`).
//!
//! # Metrics
//! | name | definition |
//! |------|------------|
//! | `test_accuracy` | fraction of test images whose largest output is the label |
//! | `test_loss` | mean over test images of the run's loss (`½|y − onehot|²` by default) |
//! | `norm_<projection>` | squared Frobenius norm of each projection's weights |
//! | `participation_<population>` | participation ratio of each hidden population's activity on the first 1,000 test images |
//!
//! Runs also record `train_loss` and `train_accuracy` (the training images of each record
//! interval, classified by their own step's clean pass).

use std::path::Path;
use std::sync::Arc;

use nalgebra::DMatrix;
use npsim_core::{Attr, Loss, Measure, Real, SeedStreams, StreamRng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::DataError;
use crate::registry::{MetricSpec, Prepared, TaskContext, TaskError};
use crate::task::{Task, participation_ratios, structure_metric_names, weight_norms};

/// A set of labelled images (MNIST digits, CIFAR-10 pictures), classes 0–9.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledImages {
    /// Values per image (784 for MNIST, 3072 for CIFAR-10).
    pub size: usize,
    /// Pixels, `size` per image, in the file's order, 0–255.
    pub images: Vec<u8>,
    /// Labels 0–9.
    pub labels: Vec<u8>,
}

impl LabelledImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Which images train and which test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename = "split")]
pub enum ImageSplit {
    /// Train on the training files, test on the test file (MNIST: 60,000 and 10,000 digits).
    #[default]
    Standard,
    /// Only the test file: its first `train` images train, the rest test (for machines
    /// with only the test set, and for quick checks).
    TestSetSplit {
        /// Number of training images.
        train: usize,
    },
}

/// The training and test images of a run.
#[derive(Debug, Clone)]
pub struct ImageSets {
    /// Training images.
    pub train: Arc<LabelledImages>,
    /// Test images (for `TestSetSplit`, the same file with an offset).
    pub test: Arc<LabelledImages>,
    /// First training and test index in their files.
    pub train_range: (usize, usize),
    /// Test index range.
    pub test_range: (usize, usize),
}

/// Training and test sets for a split, from loaders of the standard training and test files.
pub fn split_sets(
    split: ImageSplit,
    dir: &Path,
    train_set: impl FnOnce() -> Result<Arc<LabelledImages>, DataError>,
    test_set: impl FnOnce() -> Result<Arc<LabelledImages>, DataError>,
    test_file: &str,
) -> Result<ImageSets, DataError> {
    {
        match split {
            ImageSplit::Standard => {
                let train = train_set()?;
                let test = test_set()?;
                let (n_train, n_test) = (train.len(), test.len());
                Ok(ImageSets {
                    train,
                    test,
                    train_range: (0, n_train),
                    test_range: (0, n_test),
                })
            }
            ImageSplit::TestSetSplit { train } => {
                let all = test_set()?;
                if train == 0 || train >= all.len() {
                    return Err(DataError::Corrupt {
                        path: dir.join(test_file),
                        problem: format!(
                            "cannot split {} images into {train} for training and the rest for testing",
                            all.len()
                        ),
                    });
                }
                Ok(ImageSets {
                    train: Arc::clone(&all),
                    test: Arc::clone(&all),
                    train_range: (0, train),
                    test_range: (train, all.len()),
                })
            }
        }
    }
}

/// The image classification task.
pub struct ImageClassification<T: Real> {
    sets: ImageSets,
    order: Vec<usize>,
    next: usize,
    shuffle: StreamRng,
    test_inputs: DMatrix<T>,
    test_targets: DMatrix<T>,
    projections: Vec<(usize, String)>,
    hidden: Vec<(usize, String)>,
    loss: Loss,
}

fn pixels<T: Real>(images: &LabelledImages, index: usize, out: &mut [T]) {
    let scale = T::of(1.0 / 255.0);
    for (o, &p) in out
        .iter_mut()
        .zip(&images.images[index * images.size..(index + 1) * images.size])
    {
        *o = T::of(f64::from(p)) * scale;
    }
}

fn one_hot<T: Real>(label: u8, out: &mut [T]) {
    out.iter_mut().enumerate().for_each(|(k, o)| {
        *o = if k == usize::from(label) {
            T::one()
        } else {
            T::zero()
        }
    });
}

impl<T: Real> ImageClassification<T> {
    /// The task over `sets`, shuffling with stream `task/shuffle`; `projections` are the
    /// circuit's projections with weights (index, name), for the norm metrics.
    /// `hidden` are the hidden populations (index, name), for the participation ratios.
    pub fn new(
        sets: ImageSets,
        streams: &SeedStreams,
        projections: Vec<(usize, String)>,
        hidden: Vec<(usize, String)>,
        loss: Loss,
    ) -> Self {
        let (t0, t1) = sets.test_range;
        let mut test_inputs = DMatrix::zeros(sets.test.size, t1 - t0);
        let mut test_targets = DMatrix::zeros(10, t1 - t0);
        for (c, i) in (t0..t1).enumerate() {
            pixels(&sets.test, i, test_inputs.column_mut(c).as_mut_slice());
            one_hot(sets.test.labels[i], test_targets.column_mut(c).as_mut_slice());
        }
        Self {
            order: Vec::new(),
            next: 0,
            shuffle: streams.stream("task/shuffle"),
            sets,
            test_inputs,
            test_targets,
            projections,
            hidden,
            loss,
        }
    }

    /// Training images per epoch.
    pub fn train_len(&self) -> usize {
        self.sets.train_range.1 - self.sets.train_range.0
    }

    fn reshuffle(&mut self) {
        let (a, b) = self.sets.train_range;
        self.order = (a..b).collect();
        // Fisher–Yates with the seeded stream (portable, unlike `SliceRandom` across versions).
        for i in (1..self.order.len()).rev() {
            let j = (self.shuffle.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        self.next = 0;
    }
}

/// An image classification task checked against its circuit, with its images loaded
/// (MNIST and CIFAR-10 prepare into this).
#[derive(Debug)]
pub struct ImageTask {
    name: &'static str,
    sets: ImageSets,
    projections: Vec<(usize, String)>,
    hidden: Vec<(usize, String)>,
    loss: Loss,
    metrics: MetricSpec,
}

impl ImageTask {
    /// The task recorded as `name` on `sets`, for the circuit of `context` (whose input and
    /// output sizes the caller has checked).
    pub fn new(name: &'static str, sets: ImageSets, context: &TaskContext<'_>) -> Result<Self, TaskError> {
        let projections = context.weighted_projections();
        let hidden = context.hidden_populations();
        let mut names = vec!["test_accuracy".to_string(), "test_loss".to_string()];
        names.extend(structure_metric_names(&projections, &hidden));
        Ok(Self {
            name,
            sets,
            projections,
            hidden,
            loss: context.loss,
            metrics: MetricSpec {
                names,
                error: 1,
                classification: true,
            },
        })
    }
}

impl Prepared for ImageTask {
    fn metrics(&self) -> &MetricSpec {
        &self.metrics
    }

    fn training_samples(&self) -> Option<usize> {
        Some(self.sets.train_range.1 - self.sets.train_range.0)
    }

    fn attributes(&self) -> Vec<(String, Attr)> {
        vec![
            ("task".into(), Attr::Text(self.name.into())),
            (
                "train_samples".into(),
                Attr::Int((self.sets.train_range.1 - self.sets.train_range.0) as i64),
            ),
            (
                "test_samples".into(),
                Attr::Int((self.sets.test_range.1 - self.sets.test_range.0) as i64),
            ),
        ]
    }

    fn build<T: Real>(&self, streams: &SeedStreams) -> Box<dyn Task<T>> {
        Box::new(ImageClassification::<T>::new(
            self.sets.clone(),
            streams,
            self.projections.clone(),
            self.hidden.clone(),
            self.loss,
        ))
    }
}

impl<T: Real> Task<T> for ImageClassification<T> {
    fn input_size(&self) -> usize {
        self.sets.train.size
    }

    fn output_size(&self) -> usize {
        10
    }

    fn next_batch(&mut self, inputs: &mut DMatrix<T>, targets: &mut DMatrix<T>) {
        for c in 0..inputs.ncols() {
            if self.next >= self.order.len() {
                self.reshuffle();
            }
            let i = self.order[self.next];
            self.next += 1;
            pixels(&self.sets.train, i, inputs.column_mut(c).as_mut_slice());
            one_hot(self.sets.train.labels[i], targets.column_mut(c).as_mut_slice());
        }
    }

    fn metrics(&mut self, engine: &mut dyn Measure<T>) -> Vec<f64> {
        let n = self.test_inputs.ncols();
        let (mut correct, mut loss) = (0usize, 0.0);
        const CHUNK: usize = 1000;
        let mut participation = vec![f64::NAN; self.hidden.len()];
        for start in (0..n).step_by(CHUNK) {
            let width = CHUNK.min(n - start);
            let x = self.test_inputs.columns(start, width).into_owned();
            let t = self.test_targets.columns(start, width);
            let y = engine.forward(&x);
            for c in 0..width {
                let predicted = y
                    .column(c)
                    .iter()
                    .enumerate()
                    .fold((0, T::zero() - T::one() / T::zero()), |best, (k, &v)| {
                        if v > best.1 { (k, v) } else { best }
                    })
                    .0;
                if t[(predicted, c)] == T::one() {
                    correct += 1;
                }
                loss += self
                    .loss
                    .value(y.column(c).as_slice(), t.column(c).as_slice())
                    .f64();
            }
            if start == 0 {
                // Dimensionality of hidden activity on the first (up to) 1,000 test digits.
                participation = participation_ratios(engine, &self.hidden);
            }
        }
        let mut row = vec![correct as f64 / n as f64, loss / n as f64];
        row.extend(weight_norms(engine, &self.projections));
        row.extend(participation);
        row
    }
}
