//! One training step's forward and backward, on one device or split over several (data
//! parallelism).
//!
//! Several devices use burn's own multi-device pieces, as burn-train's `Learner` does with its
//! main-device strategy: the batch is cut into one shard per device, a replica of the model
//! ([`Module::fork`], same parameter ids) runs each shard's forward and backward on its device,
//! the gradients move to the model's device ([`GradientsParams::to_device`]) and are summed
//! ([`GradientsAccumulator`]); the optimizer then steps once on the model's device. Each shard's
//! loss is its mean cross-entropy weighted by its share of the batch, so the summed gradient is
//! the whole batch's mean-loss gradient, as on one device.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor};

use super::trainer::{batch, cross_entropy, Example, Trainable};

/// A step's forward pass whose backward has not run yet.
pub struct StepForward<M: Trainable> {
    /// Mean cross-entropy of the batch (`[1]`, on the model's device).
    pub loss: Tensor<1>,
    /// Predicted class per clip (`[batch]`, on the model's device, in batch order).
    pub predicted: Tensor<1, Int>,
    shards: Vec<Shard<M>>,
}

struct Shard<M> {
    /// The shard's weighted loss, on its device.
    loss: Tensor<1>,
    /// The replica that computed it; `None`: the model itself (one device).
    replica: Option<M>,
}

/// Runs `model` on `chunk`: on the model's device when `devices` has fewer than two entries,
/// else split over `devices` (autodiff devices; the model's device may be among them).
pub fn forward<M: Trainable>(
    model: &M,
    chunk: &[Example],
    shape: [usize; 2],
    devices: &[Device],
) -> StepForward<M> {
    let main = model.device();
    if devices.len() < 2 || chunk.len() < 2 {
        let (input, labels) = batch(chunk, shape, &main);
        let logits = model.logits(input);
        let predicted = logits.clone().argmax(1).flatten::<1>(0, 1);
        let loss = cross_entropy(logits, &labels);
        return StepForward {
            shards: vec![Shard {
                loss: loss.clone(),
                replica: None,
            }],
            loss,
            predicted,
        };
    }
    let total = chunk.len();
    let parts = devices.len().min(total);
    let mut shards = Vec::with_capacity(parts);
    let mut losses = Vec::with_capacity(parts);
    let mut predicted = Vec::with_capacity(parts);
    let mut start = 0;
    for (i, device) in devices.iter().take(parts).enumerate() {
        // Shard sizes differ by at most one clip.
        let len = total / parts + usize::from(i < total % parts);
        let part = &chunk[start..start + len];
        start += len;
        let replica = model.clone().fork(device);
        let (input, labels) = batch(part, shape, device);
        let logits = replica.logits(input);
        predicted.push(logits.clone().argmax(1).flatten::<1>(0, 1).to_device(&main));
        let loss = cross_entropy(logits, &labels) * (len as f64 / total as f64);
        losses.push(loss.clone().detach().to_device(&main));
        shards.push(Shard {
            loss,
            replica: Some(replica),
        });
    }
    StepForward {
        loss: Tensor::cat(losses, 0).sum(),
        predicted: Tensor::cat(predicted, 0),
        shards,
    }
}

impl<M: Trainable> StepForward<M> {
    /// Back-propagates every shard and returns the batch's gradients of `model`'s parameters,
    /// on the model's device.
    pub fn gradients(self, model: &M) -> GradientsParams {
        let mut shards = self.shards;
        if let [Shard {
            replica: None,
            loss,
        }] = shards.as_mut_slice()
        {
            return GradientsParams::from_grads(loss.backward(), model);
        }
        let main = model.device();
        let mut sum = GradientsAccumulator::<M>::new();
        for shard in shards {
            let replica = shard.replica.as_ref().unwrap_or(model);
            let grads = GradientsParams::from_grads(shard.loss.backward(), replica);
            sum.accumulate(model, grads.to_device(&main, model));
        }
        sum.grads()
    }
}
