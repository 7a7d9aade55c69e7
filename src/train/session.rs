//! Training one step at a time, for callers that read values back asynchronously (the browser,
//! where WebGPU has no blocking readback) or that interleave training with other work (a stop
//! button, progress messages).
//!
//! A step has two halves: [`TrainSession::forward`] builds the next batch, runs the model and
//! returns the loss and predictions as tensors without reading them; the caller reads the loss
//! (blocking natively, `into_data_async().await` in the browser) and hands it to
//! [`TrainSession::finish`], which skips the update when the loss is not finite and otherwise
//! back-propagates and applies AdamW at the schedule's learning rate.

use burn::optim::ModuleOptimizer;
use burn::tensor::{Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::data_parallel::{self, StepForward};
use super::schedule::CosineSchedule;
use super::trainer::{augment, Classifier, Example, TrainConfig};
use super::TrainError;

/// The tensors of a step whose update has not been applied yet.
pub struct PendingStep<M: Classifier> {
    /// Mean cross-entropy of the batch (`[1]`).
    pub loss: Tensor<1>,
    /// Predicted class per clip (`[batch]`).
    pub predicted: Tensor<1, Int>,
    labels: Vec<usize>,
    forward: StepForward<M>,
}

/// What a finished step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// 1-based epoch of the step.
    pub epoch: usize,
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps done so far over all epochs.
    pub global_step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Loss of the batch.
    pub loss: f64,
    /// Correct predictions in the batch (before the update).
    pub correct: usize,
    /// Clips in the batch.
    pub batch_len: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Whether the update was skipped because the loss was not finite.
    pub skipped: bool,
}

/// A training run advanced one step at a time.
pub struct TrainSession<M: Classifier> {
    model: Option<M>,
    optimizer: ModuleOptimizer,
    schedule: CosineSchedule,
    train_set: Vec<Example>,
    shape: [usize; 2],
    config: TrainConfig,
    rng: rand::rngs::StdRng,
    order: Vec<usize>,
    steps_per_epoch: usize,
    global_step: usize,
    bad_steps: usize,
}

impl<M: Classifier> TrainSession<M> {
    /// Starts training `model` (on an autodiff device) on `train_set`; `shape` is
    /// `[max_length, mel]`.
    pub fn new(
        model: M,
        train_set: Vec<Example>,
        shape: [usize; 2],
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        check_examples(&train_set, shape)?;
        let o = &config.optimizer;
        let optimizer = super::adamw(o);
        let batch_size = config.batch_size.max(1);
        let steps_per_epoch = train_set.len().div_ceil(batch_size);
        let schedule = CosineSchedule {
            peak: o.lr,
            total_steps: steps_per_epoch * config.epochs,
            warmup_steps: config.warmup_steps,
        };
        let rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        Ok(Self {
            model: Some(model),
            optimizer,
            schedule,
            train_set,
            shape,
            config,
            rng,
            order: Vec::new(),
            steps_per_epoch,
            global_step: 0,
            bad_steps: 0,
        })
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch * self.config.epochs
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.global_step >= self.total_steps()
    }

    /// The model as trained so far.
    pub fn model(&self) -> &M {
        self.model
            .as_ref()
            .expect("the model is only taken by into_model")
    }

    /// Ends training and returns the model.
    pub fn into_model(mut self) -> M {
        self.model.take().expect("the model is only taken here")
    }

    /// Runs the model on the next batch; `None` when training is over.
    pub fn forward(&mut self) -> Option<PendingStep<M>> {
        if self.is_done() {
            return None;
        }
        let batch_size = self.config.batch_size.max(1);
        let step_in_epoch = self.global_step % self.steps_per_epoch;
        if step_in_epoch == 0 {
            self.order = (0..self.train_set.len()).collect();
            self.order.shuffle(&mut self.rng);
        }
        let start = step_in_epoch * batch_size;
        let end = (start + batch_size).min(self.order.len());
        let mut chunk: Vec<Example> = self.order[start..end]
            .iter()
            .map(|&i| self.train_set[i].clone())
            .collect();
        augment(&self.config, &mut chunk, self.shape, &mut self.rng);
        let forward =
            data_parallel::forward(self.model(), &chunk, self.shape, &self.config.devices);
        Some(PendingStep {
            loss: forward.loss.clone(),
            predicted: forward.predicted.clone(),
            labels: chunk.iter().map(|e| e.label).collect(),
            forward,
        })
    }

    /// Applies the update of `pending` given its loss value and the predictions read back
    /// (`predicted`, one class per clip; may be empty when not read).
    pub fn finish(
        &mut self,
        pending: PendingStep<M>,
        loss: f64,
        predicted: &[i64],
    ) -> Result<StepReport, TrainError> {
        let lr = self.schedule.lr(self.global_step);
        let step_in_epoch = self.global_step % self.steps_per_epoch;
        let epoch = self.global_step / self.steps_per_epoch + 1;
        self.global_step += 1;
        let correct = predicted
            .iter()
            .zip(&pending.labels)
            .filter(|(p, l)| **p as usize == **l)
            .count();
        let skipped = !loss.is_finite();
        if skipped {
            self.bad_steps += 1;
            if self.bad_steps > self.config.max_bad_steps {
                return Err(TrainError::Diverged(self.bad_steps));
            }
        } else {
            let model = self
                .model
                .take()
                .expect("the model is present between steps");
            let grads = pending.forward.gradients(&model);
            self.model = Some(self.optimizer.step(lr, model, grads));
        }
        Ok(StepReport {
            epoch,
            step: step_in_epoch + 1,
            steps_per_epoch: self.steps_per_epoch,
            global_step: self.global_step,
            total_steps: self.total_steps(),
            loss,
            correct,
            batch_len: pending.labels.len(),
            lr,
            skipped,
        })
    }

    /// One whole step with blocking readback (native backends).
    #[cfg(not(target_family = "wasm"))]
    pub fn step(&mut self) -> Option<Result<StepReport, TrainError>> {
        let pending = self.forward()?;
        let loss = pending.loss.clone().into_scalar::<f32>() as f64;
        let predicted = pending
            .predicted
            .clone()
            .into_data()
            .try_into_vec_as::<i64>()
            .unwrap_or_default();
        Some(self.finish(pending, loss, &predicted))
    }
}

/// Checks that every example has `max_length × mel` values.
pub fn check_examples(examples: &[Example], shape: [usize; 2]) -> Result<(), TrainError> {
    if examples.is_empty() {
        return Err(TrainError::Empty);
    }
    let expected = shape[0] * shape[1];
    match examples.iter().position(|e| e.features.len() != expected) {
        Some(index) => Err(TrainError::BadExample {
            index,
            found: examples[index].features.len(),
            expected,
        }),
        None => Ok(()),
    }
}
