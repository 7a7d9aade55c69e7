//! IA³ (Liu et al., "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than
//! In-Context Learning", NeurIPS 2022): learned vectors that rescale the attention keys and values
//! and the MLP's hidden activation, `l_k ⊙ Wk x`, `l_v ⊙ Wv x`, `W2 (l_ff ⊙ act(W1 x))`.
//!
//! The semantics of PEFT's `IA3Config`: the vectors start at one (`init_ia3_weights=True`), keys
//! and values are scaled at the projection's output, the feed-forward vector at the input of the
//! MLP's second Linear (PEFT's `feedforward_modules`). Only the vectors (and the head) train.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::ConfigError;
use super::init::Init;
use super::registry::{LayerHook, PetlMethod, Projection, RegisteredMethod, MODULE_LR};

/// What IA³ rescales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ia3Target {
    /// The attention keys `Wk x` (PEFT target `k_proj`).
    Key,
    /// The attention values `Wv x` (PEFT target `v_proj`).
    Value,
    /// The MLP's hidden activation, the input of its second Linear (PEFT feed-forward target).
    MlpHidden,
}

/// IA³ settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ia3Config {
    /// What is rescaled; the paper rescales all three.
    pub targets: Vec<Ia3Target>,
}

impl Default for Ia3Config {
    fn default() -> Self {
        Self {
            targets: vec![Ia3Target::Key, Ia3Target::Value, Ia3Target::MlpHidden],
        }
    }
}

impl PetlMethod for Ia3Config {
    fn validate(&self, _d: usize, _layers: usize) -> Result<(), ConfigError> {
        let mut targets = self.targets.clone();
        targets.sort();
        targets.dedup();
        if targets.is_empty() || targets.len() != self.targets.len() {
            return Err(ConfigError(format!(
                "IA3 needs distinct targets among key, value and mlp_hidden, got {:?}",
                self.targets
            )));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        MODULE_LR
    }
}

impl RegisteredMethod for Ia3Config {
    type Layer = Ia3Layer;

    /// The vectors start at one in either mode (PEFT's `init_ia3_weights=True`; PETL_AST has no
    /// IA³ to be compatible with).
    fn layer(&self, d: usize, intermediate: usize, _init: Init, device: &Device) -> Ia3Layer {
        let ones = |target: Ia3Target, width: usize| {
            self.targets
                .contains(&target)
                .then(|| Param::from_tensor(Tensor::ones([width], device)))
        };
        Ia3Layer {
            key: ones(Ia3Target::Key, d),
            value: ones(Ia3Target::Value, d),
            mlp_hidden: ones(Ia3Target::MlpHidden, intermediate),
        }
    }
}

/// One encoder layer's IA³ vectors.
#[derive(Module, Debug)]
pub struct Ia3Layer {
    /// `l_k` `[d]`.
    pub key: Option<Param<Tensor<1>>>,
    /// `l_v` `[d]`.
    pub value: Option<Param<Tensor<1>>>,
    /// `l_ff` `[intermediate]`.
    pub mlp_hidden: Option<Param<Tensor<1>>>,
}

/// `x ⊙ scale` over the last axis of `x` `[batch, tokens, width]`.
fn rescale(x: Tensor<3>, scale: Option<&Param<Tensor<1>>>) -> Tensor<3> {
    match scale {
        Some(scale) => {
            let width = scale.dims()[0];
            x * scale.val().reshape([1, 1, width])
        }
        None => x,
    }
}

impl LayerHook for Ia3Layer {
    fn projection(&self, which: Projection, y: Tensor<3>) -> Tensor<3> {
        match which {
            Projection::Key => rescale(y, self.key.as_ref()),
            Projection::Value => rescale(y, self.value.as_ref()),
            Projection::Query | Projection::Output => y,
        }
    }

    fn changes_mlp_hidden(&self) -> bool {
        self.mlp_hidden.is_some()
    }

    fn mlp_hidden(&self, hidden: Tensor<3>) -> Tensor<3> {
        rescale(hidden, self.mlp_hidden.as_ref())
    }
}
