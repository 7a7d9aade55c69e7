//! Class prototypes of a model's pooled embeddings: the mean embedding of each class's clips.
//!
//! Two uses in few-shot personalisation:
//! - [`ClassMeans::into_head`]: the head starts as the nearest-class-mean classifier ("weight
//!   imprinting", Qi et al., *Low-Shot Learning with Imprinted Weights*, CVPR 2018), so that one
//!   clip per class already gives a working classifier before any training step.
//! - [`ClassMeans::leave_one_out`]: each clip classified by the class means of the *other* clips,
//!   an estimate of how well the classes separate that needs no clip set aside
//!   ([`HeldOutEstimate`]).
//!
//! Everything is tensor operations on the model's device (no read-back), so it runs the same on
//! WebGPU, where reading back is asynchronous.

use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::petl::PetlModel;
use crate::train::Example;

/// How sure the prototype head is at the start: a clip at its class mean scores about this many
/// logits above a class mean as far away as the average clip is from the centre.
const SHARPNESS: f32 = 4.0;

/// The centred embeddings of some clips and their class means.
pub struct ClassMeans {
    /// Embeddings minus their mean (`[clips, d]`).
    centred: Tensor<2>,
    /// The mean embedding (`[1, d]`).
    centre: Tensor<2>,
    /// Mean of the centred embeddings per class (`[classes, d]`).
    means: Tensor<2>,
    /// Clips per class.
    counts: Vec<usize>,
    /// Class of each clip.
    labels: Vec<usize>,
}

impl ClassMeans {
    /// The pooled embeddings (the head's input) of `examples` under `model`, in batches of
    /// `batch_size`, and their means for `classes` classes.
    pub fn of(
        model: &PetlModel,
        examples: &[Example],
        shape: [usize; 2],
        classes: usize,
        batch_size: usize,
    ) -> Self {
        let device = model.head.weight.device();
        let pooled: Vec<Tensor<2>> = examples
            .chunks(batch_size.max(1))
            .map(|chunk| {
                let (input, _) = crate::train::trainer::batch(chunk, shape, &device);
                model.pooled(input).detach()
            })
            .collect();
        let pooled = Tensor::cat(pooled, 0);
        let n = examples.len();
        let centre = pooled.clone().mean_dim(0);
        let centred = pooled - centre.clone();
        let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
        let mut counts = vec![0usize; classes];
        for &l in &labels {
            counts[l] += 1;
        }
        let mut averaging = vec![0f32; classes * n];
        for (i, &l) in labels.iter().enumerate() {
            averaging[l * n + i] = 1.0 / counts[l] as f32;
        }
        let averaging = Tensor::<2>::from_data(TensorData::new(averaging, [classes, n]), &device);
        let means = averaging.matmul(centred.clone());
        Self {
            centred,
            centre,
            means,
            counts,
            labels,
        }
    }

    /// Squared distance of every clip to every class mean (`[clips, classes]`).
    fn distances(&self) -> Tensor<2> {
        let classes = self.counts.len();
        let n = self.labels.len();
        let clip_norms = self.centred.clone().powf_scalar(2.0).sum_dim(1); // [n, 1]
        let mean_norms = self
            .means
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .reshape([1, classes]);
        let cross = self.centred.clone().matmul(self.means.clone().transpose()); // [n, classes]
        (clip_norms.expand([n, classes]) - cross * 2.0 + mean_norms.expand([n, classes]))
            .clamp_min(0.0)
    }

    /// The class each clip's nearest class mean picks when the clip itself is left out of its
    /// own class's mean (`[clips]`). Leaving clip `x` out of its class `y` moves that mean to
    /// `(n_y μ_y − x) / (n_y − 1)`, so its distance to `x` grows by `(n_y / (n_y − 1))²`; a class
    /// with one clip then has no mean left, and its clip is counted wrong.
    pub fn leave_one_out(&self) -> Tensor<1, Int> {
        let classes = self.counts.len();
        let n = self.labels.len();
        // Own class: distance × (n/(n−1))², or out of reach for a class of one clip (added, not
        // multiplied: that clip sits at distance 0 from its own mean).
        let mut scale = vec![1f32; n * classes];
        let mut out_of_reach = vec![0f32; n * classes];
        for (i, &l) in self.labels.iter().enumerate() {
            let c = self.counts[l] as f32;
            if self.counts[l] > 1 {
                scale[i * classes + l] = (c / (c - 1.0)).powi(2);
            } else {
                out_of_reach[i * classes + l] = 1e30;
            }
        }
        let device = self.centred.device();
        let scale = Tensor::<2>::from_data(TensorData::new(scale, [n, classes]), &device);
        let out_of_reach =
            Tensor::<2>::from_data(TensorData::new(out_of_reach, [n, classes]), &device);
        (self.distances() * scale + out_of_reach)
            .argmin(1)
            .reshape([n])
    }

    /// `model` with its head set to the nearest-class-mean classifier:
    /// `logit_c(x) = −‖x − centre − μ_c‖² / 2τ` up to a constant, `τ` the mean squared distance
    /// of a clip from the centre over [`SHARPNESS`].
    pub fn into_head(self, mut model: PetlModel) -> PetlModel {
        let classes = self.counts.len();
        let tau = (self.centred.powf_scalar(2.0).sum_dim(1).mean() / SHARPNESS).clamp_min(1e-6);
        // logit_c(x) = (x·μ_c − centre·μ_c − ‖μ_c‖²/2) / τ
        let weight = self.means.clone().transpose() / tau.clone().reshape([1, 1]);
        let offset = self
            .means
            .clone()
            .matmul(self.centre.transpose())
            .reshape([classes])
            + self.means.powf_scalar(2.0).sum_dim(1).reshape([classes]) / 2.0;
        let bias = -offset / tau;
        model.head.weight = Param::from_tensor(weight.detach());
        model.head.bias = Some(Param::from_tensor(bias.detach()));
        model
    }
}

/// `model` with the nearest-class-mean head of `examples` (see [`ClassMeans::into_head`]).
pub fn prototype_head(
    model: PetlModel,
    examples: &[Example],
    shape: [usize; 2],
    classes: usize,
    batch_size: usize,
) -> PetlModel {
    ClassMeans::of(&model, examples, shape, classes, batch_size).into_head(model)
}

/// How often one class was taken for another in the leave-one-out estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    /// The clips' class.
    pub label: String,
    /// What they were taken for.
    pub predicted: String,
    /// How many clips.
    pub count: usize,
}

/// The leave-one-out estimate over the user's clips.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOutEstimate {
    /// Share of the evaluated clips whose class was right; `None` when no class has two clips.
    pub accuracy: Option<f64>,
    /// Clips of classes with at least two clips (a class's only clip cannot be left out).
    pub evaluated: usize,
    /// Of those, classified right.
    pub correct: usize,
    /// Wrong answers by (class, taken for), most frequent first.
    pub confusions: Vec<Confusion>,
}

impl HeldOutEstimate {
    /// Sums up leave-one-out `predicted` classes against `truth`, with class `labels`.
    pub fn new(predicted: &[i64], truth: &[usize], labels: &[String]) -> Self {
        let mut counts = vec![0usize; labels.len()];
        for &t in truth {
            if t < counts.len() {
                counts[t] += 1;
            }
        }
        let name = |i: usize| {
            labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class {i}"))
        };
        let (mut evaluated, mut correct) = (0, 0);
        let mut confusions: Vec<Confusion> = Vec::new();
        for (&p, &t) in predicted.iter().zip(truth) {
            if counts.get(t).copied().unwrap_or(0) < 2 {
                continue;
            }
            evaluated += 1;
            if p == t as i64 {
                correct += 1;
                continue;
            }
            let (label, predicted) = (name(t), name(p.max(0) as usize));
            match confusions
                .iter_mut()
                .find(|c| c.label == label && c.predicted == predicted)
            {
                Some(c) => c.count += 1,
                None => confusions.push(Confusion {
                    label,
                    predicted,
                    count: 1,
                }),
            }
        }
        confusions.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
        Self {
            accuracy: (evaluated > 0).then(|| correct as f64 / evaluated as f64),
            evaluated,
            correct,
            confusions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn estimate_counts_only_classes_with_two_clips_and_ranks_confusions() {
        // Class 2 has a single clip: it is not evaluated (it cannot be left out).
        let truth = [0, 0, 0, 1, 1, 2];
        let predicted = [0, 1, 1, 1, 0, 0];
        let e = HeldOutEstimate::new(&predicted, &truth, &names(3));
        assert_eq!((e.evaluated, e.correct), (5, 2));
        assert_eq!(e.accuracy, Some(0.4));
        assert_eq!(
            e.confusions,
            vec![
                Confusion {
                    label: "c0".into(),
                    predicted: "c1".into(),
                    count: 2
                },
                Confusion {
                    label: "c1".into(),
                    predicted: "c0".into(),
                    count: 1
                },
            ]
        );
        let none = HeldOutEstimate::new(&[0, 1], &[0, 1], &names(2));
        assert_eq!((none.accuracy, none.evaluated), (None, 0));
    }
}
