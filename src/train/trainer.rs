//! The training loop: mini-batches of precomputed features, cross-entropy, AdamW with the
//! paper's cosine schedule, evaluation after every epoch, best-on-validation selection.
//!
//! Everything the loop carries from one epoch to the next lives in a [`TrainState`], which the
//! loop hands to a hook after every epoch and can start from: a run saved after epoch `k`
//! ([`TrainState::to_bytes`]) and continued ([`train_from`]) ends exactly where the uninterrupted
//! run ends.

use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use super::adamw::FusedAdamW;
use super::hyper::OptimizerConfig;
use super::session::{check_examples, TrainSession};
use super::specaug::SpecAugment;
use super::timeshift::TimeShift;
use burn::module::Module;

use crate::model::AstForAudioClassification;
use crate::petl::PetlModel;

/// A module that maps `[batch, max_length, mel]` inputs to `[batch, classes]` logits; what the
/// loop trains.
pub trait Trainable: Module + Clone {
    /// Logits.
    fn logits(&self, input: Tensor<3>) -> Tensor<2>;
    /// Logits and the pooled representation the head reads (`[batch, d]`: the CLS token or the
    /// token mean), e.g. for t-SNE plots of what the model learned.
    fn logits_and_embedding(&self, input: Tensor<3>) -> (Tensor<2>, Tensor<2>);
    /// The device of the parameters.
    fn device(&self) -> Device;
}

impl Trainable for PetlModel {
    fn logits(&self, input: Tensor<3>) -> Tensor<2> {
        self.forward(input)
    }
    fn logits_and_embedding(&self, input: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
        let pooled = self.pooled(input);
        (crate::kernels::linear(&self.head, pooled.clone()), pooled)
    }
    fn device(&self) -> Device {
        self.head.weight.device()
    }
}

impl Trainable for AstForAudioClassification {
    fn logits(&self, input: Tensor<3>) -> Tensor<2> {
        self.forward(input)
    }
    fn logits_and_embedding(&self, input: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
        let pooled = self.ast.pooled(input);
        (self.head.forward(pooled.clone()), pooled)
    }
    fn device(&self) -> Device {
        self.head.dense.weight.device()
    }
}

/// One clip: its normalised `[max_length, mel]` features and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Row-major `max_length × mel` values.
    pub features: Vec<f32>,
    /// Class index.
    pub label: usize,
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Clips per optimizer step.
    pub batch_size: usize,
    /// AdamW and learning rate.
    pub optimizer: OptimizerConfig,
    /// Seed of the shuffling and of SpecAugment.
    pub seed: u64,
    /// Masking of the training inputs.
    pub spec_augment: Option<SpecAugment>,
    /// Random time shift of the training inputs inside their padding (before the masking).
    #[serde(default)]
    pub time_shift: Option<TimeShift>,
    /// Stop after this many non-finite losses (each such step is skipped).
    pub max_bad_steps: usize,
    /// Linear learning-rate warm-up steps before the cosine (0, as in the paper).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Autodiff devices each batch is split over (data parallelism, [`super::data_parallel`]);
    /// fewer than two: the model's device alone. Not part of a run's identity: a run resumes
    /// with any device count.
    #[serde(skip)]
    pub devices: Vec<Device>,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (of the batches as seen, before each step).
    pub train_accuracy: f64,
    /// Validation loss, when a validation set is given.
    pub valid_loss: Option<f64>,
    /// Validation accuracy.
    pub valid_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch.
    pub seconds: f64,
    /// Steps skipped because the loss was NaN or infinite.
    pub skipped_steps: usize,
}

/// Progress of the loop, for progress bars.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A training step finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// Loss of the step.
        loss: f64,
    },
    /// An epoch finished.
    Epoch(&'a EpochMetrics),
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrainError {
    /// Nothing to train on.
    #[error("the training set is empty")]
    Empty,
    /// Too many non-finite losses.
    #[error("{0} training steps had a NaN or infinite loss; stopping (check the inputs and lower the learning rate)")]
    Diverged(usize),
    /// A clip's features have the wrong size.
    #[error("example {index} has {found} feature values, expected {expected}")]
    BadExample {
        /// Position in the set.
        index: usize,
        /// Values present.
        found: usize,
        /// `max_length × mel`.
        expected: usize,
    },
    /// The state to continue from is past the configured number of epochs.
    #[error("the saved state has {done} epochs done but the run has only {epochs}")]
    PastTheEnd {
        /// Epochs the state has done.
        done: usize,
        /// Epochs of the configuration.
        epochs: usize,
    },
    /// The saved state was made on a training set of another size.
    #[error("the saved state was trained on {saved} examples, this training set has {found}")]
    SetChanged {
        /// Examples when the state was saved.
        saved: usize,
        /// Examples now.
        found: usize,
    },
    /// The end-of-epoch hook failed (e.g. writing a checkpoint).
    #[error("after epoch {epoch}: {message}")]
    Hook {
        /// 1-based epoch.
        epoch: usize,
        /// What the hook reported.
        message: String,
    },
}

/// Loss, accuracy, predictions and pooled embeddings of a model on a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Predicted class of each example.
    pub predictions: Vec<usize>,
    /// Row-major `[examples, embedding_dim]` pooled representations.
    pub embeddings: Vec<f32>,
    /// Width of one embedding.
    pub embedding_dim: usize,
}

/// Loss, accuracy and predicted classes of `model` on `data` (no gradients).
pub fn evaluate<M: Trainable>(
    model: &M,
    data: &[Example],
    batch_size: usize,
    shape: [usize; 2],
) -> (f64, f64, Vec<usize>) {
    let e = predict(model, data, batch_size, shape, &mut |_| {});
    (e.loss, e.accuracy, e.predictions)
}

/// [`evaluate`] with the pooled embedding of every example; `progress` sees the number of
/// examples done after each batch.
pub fn predict<M: Trainable>(
    model: &M,
    data: &[Example],
    batch_size: usize,
    shape: [usize; 2],
    progress: &mut dyn FnMut(usize),
) -> Evaluation {
    let model = model.valid();
    let device = model.device();
    let (mut loss_sum, mut correct, mut predictions) =
        (0.0, 0usize, Vec::with_capacity(data.len()));
    let (mut embeddings, mut embedding_dim) = (Vec::new(), 0);
    for chunk in data.chunks(batch_size.max(1)) {
        let (input, labels) = batch(chunk, shape, &device);
        let (logits, pooled) = model.logits_and_embedding(input);
        let loss = cross_entropy(logits.clone(), &labels);
        loss_sum += loss.into_scalar::<f32>() as f64 * chunk.len() as f64;
        let predicted = logits
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .unwrap_or_default();
        for (p, e) in predicted.iter().zip(chunk) {
            correct += usize::from(*p as usize == e.label);
            predictions.push(*p as usize);
        }
        embedding_dim = pooled.dims()[1];
        embeddings.extend(pooled.into_data().try_to_vec::<f32>().unwrap_or_default());
        progress(predictions.len());
    }
    let n = data.len().max(1) as f64;
    Evaluation {
        loss: loss_sum / n,
        accuracy: correct as f64 / n,
        predictions,
        embeddings,
        embedding_dim,
    }
}

/// Mean cross-entropy of `logits` `[batch, classes]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    let one_hot = one_hot(labels, classes, &logits.device());
    (log_softmax(logits, 1) * one_hot).sum().neg() / batch as f64
}

/// The `[batch, classes]` one-hot matrix of `labels`, built on the host: burn's `one_hot` checks
/// its indices with a blocking readback, which WebGPU in the browser cannot do. A label outside
/// `0..classes` gives a zero row.
pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut values = vec![0.0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        if label < classes {
            values[row * classes + label] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(values, [labels.len(), classes]), device)
}

/// Applies the configured augmentations to a training batch in place: the time shift, then
/// SpecAugment, clip by clip (a fixed order, so a seeded run draws the same numbers).
pub(crate) fn augment(
    config: &TrainConfig,
    chunk: &mut [Example],
    shape: [usize; 2],
    rng: &mut impl rand::Rng,
) {
    for e in chunk {
        if let Some(shift) = &config.time_shift {
            shift.apply(&mut e.features, shape, rng);
        }
        if let Some(mask) = &config.spec_augment {
            mask.apply(&mut e.features, shape, rng);
        }
    }
}

/// Stacks the features of `chunk` into a `[clips, frames, mel]` input on `device`, with their
/// labels.
pub fn batch(
    chunk: &[Example],
    [frames, mel]: [usize; 2],
    device: &Device,
) -> (Tensor<3>, Vec<usize>) {
    let data: Vec<f32> = chunk
        .iter()
        .flat_map(|e| e.features.iter().copied())
        .collect();
    let input = Tensor::from_data(TensorData::new(data, [chunk.len(), frames, mel]), device);
    (input, chunk.iter().map(|e| e.label).collect())
}

/// Everything the loop carries from one epoch to the next.
///
/// Saved after epoch `k` ([`TrainState::to_bytes`]) and continued with [`train_from`], a run
/// ends with the same weights and metrics as the uninterrupted one.
#[derive(Clone)]
pub struct TrainState<M> {
    /// The weights being trained.
    pub model: M,
    /// AdamW with its moments.
    pub optimizer: ModuleOptimizer,
    /// Epochs done.
    pub epoch: usize,
    /// Optimizer steps taken (skipped non-finite steps included): the schedule's position.
    pub global_step: usize,
    /// Non-finite losses seen so far.
    pub bad_steps: usize,
    /// Shuffling and SpecAugment randomness (`StdRng` of rand 0.9 is this generator).
    pub rng: ChaCha12Rng,
    /// Order of the training examples in the last epoch (empty before the first).
    pub order: Vec<usize>,
    /// Best validation accuracy so far and the weights that reached it.
    pub best: Option<(f64, M)>,
    /// Metrics of the epochs done.
    pub history: Vec<EpochMetrics>,
}

impl<M: Trainable> TrainState<M> {
    /// The state before the first epoch: `model` as given, a fresh AdamW, the generator seeded
    /// with `config.seed`.
    pub fn new(model: M, config: &TrainConfig) -> Self {
        Self {
            model,
            optimizer: adamw(&config.optimizer),
            epoch: 0,
            global_step: 0,
            bad_steps: 0,
            rng: ChaCha12Rng::seed_from_u64(config.seed),
            order: Vec::new(),
            best: None,
            history: Vec::new(),
        }
    }

    /// The weights of the best epoch on validation (the last weights without a validation set)
    /// and every epoch's metrics.
    pub fn finish(self) -> (M, Vec<EpochMetrics>) {
        let model = self.best.map(|(_, m)| m).unwrap_or(self.model);
        (model, self.history)
    }
}

/// AdamW with the configured moments, decay and ε (the learning rate is given per step),
/// fused into one pass per parameter on burn-flex ([`FusedAdamW`]).
pub fn adamw(o: &OptimizerConfig) -> ModuleOptimizer {
    ModuleOptimizer::from(FusedAdamW::new(o))
}

/// Trains `model` (on an autodiff device) and returns the weights of the best epoch on
/// `valid` (the last epoch without a validation set) with every epoch's metrics.
///
/// `shape` is `[max_length, mel]`. `progress` sees every step and epoch.
pub fn train<M: Trainable>(
    model: M,
    train_set: &[Example],
    valid: Option<&[Example]>,
    shape: [usize; 2],
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<(M, Vec<EpochMetrics>), TrainError> {
    let state = TrainState::new(model, config);
    let state = train_from(
        state,
        train_set,
        valid,
        shape,
        config,
        progress,
        &mut |_| Ok(()),
    )?;
    Ok(state.finish())
}

/// Runs the epochs `state.epoch + 1 ..= config.epochs` from `state` as steps of a
/// [`TrainSession`] and returns the final state ([`TrainState::finish`] gives the best weights).
///
/// `on_epoch_end` sees the state after every epoch (after its metrics reached `progress`), e.g.
/// to save it; an error from it stops training with [`TrainError::Hook`].
pub fn train_from<M: Trainable>(
    state: TrainState<M>,
    train_set: &[Example],
    valid: Option<&[Example]>,
    shape: [usize; 2],
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
    on_epoch_end: &mut dyn FnMut(&TrainState<M>) -> Result<(), String>,
) -> Result<TrainState<M>, TrainError> {
    let valid = valid.filter(|v| !v.is_empty());
    if let Some(valid) = valid {
        check_examples(valid, shape)?;
    }
    let mut session = TrainSession::resume(state, train_set, shape, config.clone())?;
    let steps = session.steps_per_epoch();
    let batch_size = config.batch_size.max(1);
    while !session.is_done() {
        let start = Instant::now();
        let epoch = session.state().epoch + 1;
        let (mut loss_sum, mut correct, mut seen, mut skipped) = (0.0, 0usize, 0usize, 0usize);
        for _ in 0..steps {
            let report = session.step().expect("the epoch has steps left")?;
            correct += report.correct;
            if report.skipped {
                skipped += 1;
                continue;
            }
            loss_sum += report.loss * report.batch_len as f64;
            seen += report.batch_len;
            progress(Progress::Step {
                epoch,
                step: report.step,
                steps,
                loss: report.loss,
            });
        }
        let (valid_loss, valid_accuracy) = match valid {
            Some(v) => {
                let (loss, acc, _) = evaluate(session.model(), v, batch_size, shape);
                (Some(loss), Some(acc))
            }
            None => (None, None),
        };
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / train_set.len() as f64,
            valid_loss,
            valid_accuracy,
            lr: session.learning_rate(),
            seconds: start.elapsed().as_secs_f64(),
            skipped_steps: skipped,
        };
        progress(Progress::Epoch(&metrics));
        let state = session.state_mut();
        if let Some(acc) = valid_accuracy {
            if state.best.as_ref().is_none_or(|(b, _)| acc > *b) {
                state.best = Some((acc, state.model.clone()));
            }
        }
        state.history.push(metrics);
        on_epoch_end(session.state()).map_err(|message| TrainError::Hook { epoch, message })?;
    }
    Ok(session.into_state())
}
