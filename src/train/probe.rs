//! Linear probing on cached backbone features.
//!
//! A linear probe trains the head and the final LayerNorm of a frozen backbone. Every token `x_i`
//! of a clip reaches the head as `γ ⊙ n_i + β` with `n_i = (x_i − mean) / std` fixed, so the
//! pooled head input is `γ ⊙ m + β` where `m` is the mean of the `n_i` (or the CLS token's
//! `n_0`). `m` does not change while training: computed once per clip, it turns every later
//! epoch into a logistic regression on `d` numbers per clip — the same parameters, gradients
//! and AdamW steps as training through the backbone, at the cost of one forward pass over the
//! data. It holds only when the inputs are the same every epoch (no SpecAugment, no time
//! shift).

use burn::module::{Module, Param};
use burn::nn::Linear;

use crate::model::norm::LayerNorm;
use burn::tensor::{Device, Tensor};

use super::trainer::{Evaluation, Example, TrainConfig, Trainable};
use crate::petl::PetlModel;

/// The trainable part of a linear probe over cached features `[batch, 1, d]`.
#[derive(Module, Debug)]
pub struct CachedProbe {
    /// The backbone's final LayerNorm (only its scale and shift are used).
    pub norm: LayerNorm,
    /// The classifier.
    pub head: Linear,
}

impl CachedProbe {
    /// The probe of `model`, when `model` is a linear probe (frozen backbone, nothing added)
    /// trained on inputs that stay the same every epoch; `None` otherwise.
    pub fn of(model: &PetlModel, train: &TrainConfig) -> Option<Self> {
        let c = &model.config;
        let linear = c.is_linear_probe();
        let fixed_inputs = train.spec_augment.is_none() && train.time_shift.is_none();
        (linear && fixed_inputs).then(|| Self {
            norm: model.ast.norm.clone(),
            head: model.head.clone(),
        })
    }

    /// `model` with a unit final LayerNorm (scale 1, shift 0): its pooled output — what
    /// [`super::predict`] returns as embeddings — is the cached feature `m` of each clip.
    pub fn feature_model(model: &PetlModel) -> PetlModel {
        let mut unit = model.clone();
        let gamma = unit.ast.norm.gamma.val();
        unit.ast.norm.gamma = Param::from_tensor(gamma.ones_like()).set_require_grad(false);
        unit.ast.norm.beta = unit
            .ast
            .norm
            .beta
            .take()
            .map(|b| Param::from_tensor(b.val().zeros_like()).set_require_grad(false));
        unit
    }

    /// Cached examples (`[1, d]` features) from an evaluation of [`Self::feature_model`] on
    /// `examples`.
    pub fn cache(eval: &Evaluation, examples: &[Example]) -> Vec<Example> {
        let d = eval.embedding_dim.max(1);
        eval.embeddings
            .chunks_exact(d)
            .zip(examples)
            .map(|(m, e)| Example {
                features: m.to_vec(),
                label: e.label,
            })
            .collect()
    }

    /// The input shape of the cached examples.
    pub fn shape(&self) -> [usize; 2] {
        [1, self.norm.gamma.dims()[0]]
    }

    /// `model` with the trained LayerNorm and head put back.
    pub fn into_model(self, mut model: PetlModel) -> PetlModel {
        model.ast.norm = self.norm;
        model.head = self.head;
        model
    }

    fn pooled(&self, input: Tensor<3>) -> Tensor<2> {
        let [batch, _, d] = input.dims();
        let m = input.reshape([batch, d]);
        let scaled = m * self.norm.gamma.val().unsqueeze::<2>();
        match &self.norm.beta {
            Some(beta) => scaled + beta.val().unsqueeze::<2>(),
            None => scaled,
        }
    }
}

impl Trainable for CachedProbe {
    fn logits(&self, input: Tensor<3>) -> Tensor<2> {
        crate::kernels::linear(&self.head, self.pooled(input))
    }
    fn logits_and_embedding(&self, input: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
        let pooled = self.pooled(input);
        (crate::kernels::linear(&self.head, pooled.clone()), pooled)
    }
    fn device(&self) -> Device {
        self.head.weight.device()
    }
}
