//! LoRA on the attention projections (Hu et al., "LoRA: Low-Rank Adaptation of Large Language
//! Models", ICLR 2022) with PETL_AST's parameterisation: rank `r = d / RR`, scale `alpha / RR`.
//!
//! Reference: <https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_LoRA.py#L57-L121>.
//! burn's built-in `apply_lora` scales by `alpha / r` and names its factors after the base
//! parameter; this module keeps the reference's scale and per-projection names so PETL_AST and
//! PEFT checkpoints map onto it one to one.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use crate::kernels::linear;

use super::config::{ConfigError, LoraConfig};
use super::init::{self, Init};
use super::registry::{PetlMethod, MODULE_LR};

/// A low-rank update `scale · up(down(x))` added to one projection's output.
#[derive(Module, Debug)]
pub struct LoraDelta {
    /// `d_in → r`, no bias.
    pub down: Linear,
    /// `r → d_out`, no bias.
    pub up: Linear,
    /// `alpha / RR`.
    #[module(skip)]
    pub scale: f64,
}

impl LoraDelta {
    /// Sound mode: `down` Kaiming, `up` zero (starts at ΔW = 0). Paper mode: both
    /// `N(0, 0.02²)`, as `from_pretrained` re-initialises them.
    pub fn new(d: usize, rank: usize, scale: f64, init_mode: Init, device: &Device) -> Self {
        let (down, up) = if init_mode == Init::Paper {
            (
                init::linear(d, rank, false, init::hf_normal(), device),
                init::linear(rank, d, false, init::hf_normal(), device),
            )
        } else {
            (
                init::linear(d, rank, false, init::kaiming(d), device),
                init::zero_linear(rank, d, false, device),
            )
        };
        Self { down, up, scale }
    }

    /// # Shapes
    /// - x: `[batch, tokens, d]`; output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.up, linear(&self.down, x)) * self.scale
    }

    /// `scale · down · up` in burn's `[d_in, d_out]` layout, the term [`LoraDelta::merge_into`]
    /// adds to the base weight.
    pub fn delta_weight(&self) -> Tensor<2> {
        self.down.weight.val().matmul(self.up.weight.val()) * self.scale
    }

    /// Folds the update into `base` so that inference costs nothing extra.
    pub fn merge_into(&self, base: &Linear) -> Linear {
        Linear {
            weight: Param::from_tensor(base.weight.val() + self.delta_weight()),
            bias: base.bias.clone(),
        }
    }
}

/// LoRA updates of one attention block.
#[derive(Module, Debug, Default)]
pub struct AttentionLora {
    /// On `Wq`.
    pub q: Option<LoraDelta>,
    /// On `Wk`.
    pub k: Option<LoraDelta>,
    /// On `Wv`.
    pub v: Option<LoraDelta>,
    /// On `Wo` (its input is the attention context).
    pub o: Option<LoraDelta>,
}

/// `base(x)` plus the optional update.
pub fn project(base: &Linear, lora: Option<&LoraDelta>, x: Tensor<3>) -> Tensor<3> {
    match lora {
        Some(delta) => linear(base, x.clone()) + delta.forward(x),
        None => linear(base, x),
    }
}

impl PetlMethod for LoraConfig {
    fn validate(&self, d: usize, _layers: usize) -> Result<(), ConfigError> {
        super::config::reduced_width(d, self.reduction_rate, "LoRA")?;
        if !self.alpha.is_finite() {
            return Err(ConfigError(format!(
                "LoRA alpha must be a finite number, got {}",
                self.alpha
            )));
        }
        if self.targets.is_empty() {
            return Err(ConfigError(
                "LoRA needs at least one target projection".into(),
            ));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        MODULE_LR
    }
}
