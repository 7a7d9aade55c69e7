//! Training one step at a time: the one training loop of the crate. The page drives it step by
//! step (it reads values back asynchronously: WebGPU has no blocking readback, and a stop button
//! runs between steps); [`super::train_from`] runs epochs of it with validation, best-model
//! selection and an end-of-epoch hook for resuming. The same seed gives the same run either way.
//!
//! A step has two halves: [`TrainSession::forward`] builds the next batch, runs the model and
//! returns the loss and predictions as tensors without reading them; the caller reads the loss
//! (blocking natively, `into_data_async().await` in the browser) and hands it to
//! [`TrainSession::finish`], which skips the update when the loss is not finite and otherwise
//! back-propagates and applies AdamW at the schedule's learning rate.
//!
//! Each epoch shuffles the previous epoch's order (the order is part of the [`TrainState`], so
//! a run resumed from a saved state continues exactly).

use std::borrow::Cow;

use burn::tensor::{Int, Tensor};
use rand::seq::SliceRandom;

use super::data_parallel::{self, StepForward};
use super::schedule::CosineSchedule;
use super::trainer::{augment, Example, TrainConfig, TrainState, Trainable};
use super::TrainError;

/// The tensors of a step whose update has not been applied yet.
pub struct PendingStep<M: Trainable> {
    /// Mean cross-entropy of the batch (`[1]`).
    pub loss: Tensor<1>,
    /// Predicted class per clip (`[batch]`).
    pub predicted: Tensor<1, Int>,
    labels: Vec<usize>,
    forward: StepForward<M>,
}

/// What a finished step measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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
pub struct TrainSession<'a, M: Trainable> {
    /// Always present between calls; taken while AdamW consumes the model.
    state: Option<TrainState<M>>,
    schedule: CosineSchedule,
    train_set: Cow<'a, [Example]>,
    shape: [usize; 2],
    config: TrainConfig,
    steps_per_epoch: usize,
}

impl<'a, M: Trainable> TrainSession<'a, M> {
    /// Starts training `model` (on an autodiff device) on `train_set`; `shape` is
    /// `[max_length, mel]`.
    pub fn new(
        model: M,
        train_set: impl Into<Cow<'a, [Example]>>,
        shape: [usize; 2],
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        let state = TrainState::new(model, &config);
        Self::resume(state, train_set, shape, config)
    }

    /// Continues the run saved in `state` (after its last finished epoch).
    pub fn resume(
        mut state: TrainState<M>,
        train_set: impl Into<Cow<'a, [Example]>>,
        shape: [usize; 2],
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        let train_set = train_set.into();
        check_examples(&train_set, shape)?;
        if state.epoch > config.epochs {
            return Err(TrainError::PastTheEnd {
                done: state.epoch,
                epochs: config.epochs,
            });
        }
        if state.order.is_empty() {
            state.order = (0..train_set.len()).collect();
        }
        if state.order.len() != train_set.len() {
            return Err(TrainError::SetChanged {
                saved: state.order.len(),
                found: train_set.len(),
            });
        }
        let steps_per_epoch = train_set.len().div_ceil(config.batch_size.max(1));
        let schedule = CosineSchedule {
            peak: config.optimizer.lr,
            total_steps: steps_per_epoch * config.epochs,
            warmup_steps: config.warmup_steps,
        };
        Ok(Self {
            state: Some(state),
            schedule,
            train_set,
            shape,
            config,
            steps_per_epoch,
        })
    }

    /// Everything the run carries between steps.
    pub fn state(&self) -> &TrainState<M> {
        self.state
            .as_ref()
            .expect("the state is only taken inside finish")
    }

    /// The state, for the epoch loop's metrics and best weights.
    pub(crate) fn state_mut(&mut self) -> &mut TrainState<M> {
        self.state
            .as_mut()
            .expect("the state is only taken inside finish")
    }

    /// Ends training and returns its state.
    pub fn into_state(mut self) -> TrainState<M> {
        self.state.take().expect("the state is only taken here")
    }

    /// Steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch * self.config.epochs
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.state().global_step >= self.total_steps()
    }

    /// The learning rate of the next step.
    pub fn learning_rate(&self) -> f64 {
        self.schedule.lr(self.state().global_step)
    }

    /// The model as trained so far.
    pub fn model(&self) -> &M {
        &self.state().model
    }

    /// Ends training and returns the model.
    pub fn into_model(self) -> M {
        self.into_state().model
    }

    /// Runs the model on the next batch; `None` when training is over.
    pub fn forward(&mut self) -> Option<PendingStep<M>> {
        if self.is_done() {
            return None;
        }
        let batch_size = self.config.batch_size.max(1);
        let step_in_epoch = self.state().global_step % self.steps_per_epoch;
        let (config, shape, train_set) = (&self.config, self.shape, &self.train_set);
        let state = self
            .state
            .as_mut()
            .expect("the state is only taken inside finish");
        if step_in_epoch == 0 {
            state.order.shuffle(&mut state.rng);
        }
        let start = step_in_epoch * batch_size;
        let end = (start + batch_size).min(state.order.len());
        let mut chunk: Vec<Example> = state.order[start..end]
            .iter()
            .map(|&i| train_set[i].clone())
            .collect();
        augment(config, &mut chunk, shape, &mut state.rng);
        let forward = data_parallel::forward(&state.model, &chunk, shape, &config.devices);
        Some(PendingStep {
            loss: forward.loss.clone(),
            predicted: forward.predicted.clone(),
            labels: chunk.iter().map(|e| e.label).collect(),
            forward,
        })
    }

    /// Applies the update of `pending` given its loss value and the predictions read back
    /// (`predicted`, one class per clip; may be empty when not read). The last step of an epoch
    /// counts the epoch as done.
    pub fn finish(
        &mut self,
        pending: PendingStep<M>,
        loss: f64,
        predicted: &[i64],
    ) -> Result<StepReport, TrainError> {
        let mut state = self
            .state
            .take()
            .expect("the state is present between steps");
        let lr = self.schedule.lr(state.global_step);
        let step_in_epoch = state.global_step % self.steps_per_epoch;
        let epoch = state.global_step / self.steps_per_epoch + 1;
        state.global_step += 1;
        let correct = predicted
            .iter()
            .zip(&pending.labels)
            .filter(|(p, l)| **p as usize == **l)
            .count();
        let skipped = !loss.is_finite();
        if skipped {
            state.bad_steps += 1;
        } else {
            let grads = pending.forward.gradients(&state.model);
            state.model = state.optimizer.step(lr, state.model, grads);
        }
        if step_in_epoch + 1 == self.steps_per_epoch {
            state.epoch = epoch;
        }
        let (bad_steps, global_step) = (state.bad_steps, state.global_step);
        self.state = Some(state);
        if bad_steps > self.config.max_bad_steps {
            return Err(TrainError::Diverged(bad_steps));
        }
        Ok(StepReport {
            epoch,
            step: step_in_epoch + 1,
            steps_per_epoch: self.steps_per_epoch,
            global_step,
            total_steps: self.total_steps(),
            loss,
            correct,
            batch_len: pending.labels.len(),
            lr,
            skipped,
        })
    }

    /// One whole step with blocking readback (native backends, and CPU backends in wasm; the
    /// page's WebGPU path calls [`Self::forward`] and [`Self::finish`]).
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
