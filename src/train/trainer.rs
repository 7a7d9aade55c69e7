//! The training loop: mini-batches of precomputed features, cross-entropy, AdamW with the
//! paper's cosine schedule, evaluation after every epoch, best-on-validation selection.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::hyper::OptimizerConfig;
use super::schedule::CosineSchedule;
use super::specaug::SpecAugment;
use burn::module::Module;

use crate::model::AstForAudioClassification;
use crate::petl::PetlModel;

/// A module that maps `[batch, max_length, mel]` inputs to `[batch, classes]` logits; what the
/// loop trains.
pub trait Classifier: Module + Clone {
    /// Logits.
    fn logits(&self, input: Tensor<3>) -> Tensor<2>;
    /// The device of the parameters.
    fn device(&self) -> Device;
}

impl Classifier for PetlModel {
    fn logits(&self, input: Tensor<3>) -> Tensor<2> {
        self.forward(input)
    }
    fn device(&self) -> Device {
        self.head.weight.device()
    }
}

impl Classifier for AstForAudioClassification {
    fn logits(&self, input: Tensor<3>) -> Tensor<2> {
        self.forward(input)
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
    /// Stop after this many non-finite losses (each such step is skipped).
    pub max_bad_steps: usize,
    /// Linear learning-rate warm-up steps before the cosine (0, as in the paper).
    #[serde(default)]
    pub warmup_steps: usize,
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
}

/// Loss, accuracy and predicted classes of `model` on `data` (no gradients).
pub fn evaluate<M: Classifier>(
    model: &M,
    data: &[Example],
    batch_size: usize,
    shape: [usize; 2],
) -> (f64, f64, Vec<usize>) {
    let model = model.valid();
    let device = model.device();
    let (mut loss_sum, mut correct, mut predictions) =
        (0.0, 0usize, Vec::with_capacity(data.len()));
    for chunk in data.chunks(batch_size.max(1)) {
        let (input, labels) = batch(chunk, shape, &device);
        let logits = model.logits(input);
        let loss = cross_entropy(logits.clone(), labels.clone());
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
    }
    let n = data.len().max(1) as f64;
    (loss_sum / n, correct as f64 / n, predictions)
}

/// Mean cross-entropy of `logits` `[batch, classes]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    let one_hot = labels.one_hot::<2>(classes).float();
    (log_softmax(logits, 1) * one_hot).sum().neg() / batch as f64
}

pub(crate) fn batch(
    chunk: &[Example],
    [frames, mel]: [usize; 2],
    device: &Device,
) -> (Tensor<3>, Tensor<1, Int>) {
    let data: Vec<f32> = chunk
        .iter()
        .flat_map(|e| e.features.iter().copied())
        .collect();
    let input = Tensor::from_data(TensorData::new(data, [chunk.len(), frames, mel]), device);
    let labels: Vec<i64> = chunk.iter().map(|e| e.label as i64).collect();
    let labels = Tensor::from_data(TensorData::new(labels, [chunk.len()]), device);
    (input, labels)
}

/// Trains `model` (on an autodiff device) and returns the weights of the best epoch on
/// `valid` (the last epoch without a validation set) with every epoch's metrics.
///
/// `shape` is `[max_length, mel]`. `progress` sees every step and epoch.
pub fn train<M: Classifier>(
    mut model: M,
    train_set: &[Example],
    valid: Option<&[Example]>,
    shape: [usize; 2],
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<(M, Vec<EpochMetrics>), TrainError> {
    if train_set.is_empty() {
        return Err(TrainError::Empty);
    }
    let expected = shape[0] * shape[1];
    for (index, e) in train_set.iter().chain(valid.unwrap_or(&[])).enumerate() {
        if e.features.len() != expected {
            return Err(TrainError::BadExample {
                index,
                found: e.features.len(),
                expected,
            });
        }
    }
    let device = model.device();
    let o = &config.optimizer;
    let mut optimizer = AdamWConfig::new()
        .with_beta_1(o.beta1)
        .with_beta_2(o.beta2)
        .with_epsilon(o.epsilon)
        .with_weight_decay(o.weight_decay)
        .init();
    let batch_size = config.batch_size.max(1);
    let steps = train_set.len().div_ceil(batch_size);
    let schedule = CosineSchedule {
        peak: o.lr,
        total_steps: steps * config.epochs,
        warmup_steps: config.warmup_steps,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, M)> = None;
    let mut global_step = 0;
    let mut bad_steps = 0;
    for epoch in 1..=config.epochs {
        let start = Instant::now();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut seen, mut skipped) = (0.0, 0usize, 0usize, 0usize);
        for (step, indices) in order.chunks(batch_size).enumerate() {
            let mut chunk: Vec<Example> = indices.iter().map(|&i| train_set[i].clone()).collect();
            if let Some(aug) = &config.spec_augment {
                for e in &mut chunk {
                    aug.apply(&mut e.features, shape, &mut rng);
                }
            }
            let (input, labels) = batch(&chunk, shape, &device);
            let logits = model.logits(input);
            let predicted = logits
                .clone()
                .argmax(1)
                .into_data()
                .try_into_vec_as::<i64>()
                .unwrap_or_default();
            correct += predicted
                .iter()
                .zip(&chunk)
                .filter(|(p, e)| **p as usize == e.label)
                .count();
            let loss = cross_entropy(logits, labels);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            let lr = schedule.lr(global_step);
            global_step += 1;
            if !loss_value.is_finite() {
                skipped += 1;
                bad_steps += 1;
                if bad_steps > config.max_bad_steps {
                    return Err(TrainError::Diverged(bad_steps));
                }
                continue;
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            loss_sum += loss_value * chunk.len() as f64;
            seen += chunk.len();
            progress(Progress::Step {
                epoch,
                step: step + 1,
                steps,
                loss: loss_value,
            });
        }
        let (valid_loss, valid_accuracy) = match valid {
            Some(v) if !v.is_empty() => {
                let (loss, acc, _) = evaluate(&model, v, batch_size, shape);
                (Some(loss), Some(acc))
            }
            _ => (None, None),
        };
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / train_set.len() as f64,
            valid_loss,
            valid_accuracy,
            lr: schedule.lr(global_step),
            seconds: start.elapsed().as_secs_f64(),
            skipped_steps: skipped,
        };
        progress(Progress::Epoch(&metrics));
        if let Some(acc) = valid_accuracy {
            if best.as_ref().is_none_or(|(b, _)| acc > *b) {
                best = Some((acc, model.clone()));
            }
        }
        history.push(metrics);
    }
    let model = best.map(|(_, m)| m).unwrap_or(model);
    Ok((model, history))
}
