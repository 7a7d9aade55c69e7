//! Prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022) as PETL_AST applies it to the AST:
//! `p` learned tokens replace the distillation token after the embeddings (shallow, SPT); the deep
//! variant (DPT) overwrites them with fresh learned tokens before every later layer.
//!
//! Reference: <https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_prompt_tuning.py#L110-L150>.

use std::ops::Range;

use super::config::{ConfigError, PromptConfig, MAX_TOKENS};
use super::registry::{PetlMethod, PROMPT_LR};
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

/// Prompt tokens: `[1, p, d]` for the input, and `[L − 1, p, d]` for layers `1…L−1` when deep.
#[derive(Module, Debug)]
pub struct Prompts {
    /// Prompts inserted after the embeddings.
    pub shallow: Param<Tensor<3>>,
    /// Prompts that overwrite positions `1…p` before layers `1…L−1`.
    pub deep: Option<Param<Tensor<3>>>,
}

impl Prompts {
    /// Uniform `U(±bound)` tokens (VPT's init, used in both modes).
    pub fn new(p: usize, d: usize, layers: usize, deep: bool, bound: f64, device: &Device) -> Self {
        let uniform = Distribution::Uniform(-bound, bound);
        Self {
            shallow: Param::from_tensor(Tensor::random([1, p, d], uniform, device)),
            deep: (deep && layers > 1)
                .then(|| Param::from_tensor(Tensor::random([layers - 1, p, d], uniform, device))),
        }
    }

    /// Number of prompt tokens.
    pub fn len(&self) -> usize {
        self.shallow.dims()[1]
    }

    /// Always false: a prompt set has at least one token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[CLS, DIST, patches…]` → `[CLS, P₁…P_p, patches…]`.
    pub fn insert(&self, tokens: Tensor<3>) -> Tensor<3> {
        splice(self.shallow.val(), tokens, 2)
    }

    /// Before layer `layer ≥ 1` of a deep prompt set: replaces positions `1…p` by that layer's
    /// prompts. Identity for shallow prompts and layer 0.
    pub fn before_layer(&self, layer: usize, tokens: Tensor<3>) -> Tensor<3> {
        match &self.deep {
            Some(deep) if layer > 0 => splice(layer_prompts(deep, layer), tokens, 1 + self.len()),
            _ => tokens,
        }
    }

    /// The token rows that the prompts of the layer after `layer` overwrite (`1…p`), when deep
    /// and `layer` is not the last of the `layers`: that layer need not compute their outputs
    /// (see [`super::layer::forward_without_rows`]).
    pub fn overwritten_after(&self, layer: usize, layers: usize) -> Option<Range<usize>> {
        (self.deep.is_some() && layer + 1 < layers).then(|| 1..1 + self.len())
    }

    /// Before layer `layer ≥ 1` of a deep prompt set, on the tokens without prompt rows
    /// (`[CLS, patches…]`, the output of a layer that dropped them): inserts that layer's prompts
    /// at positions `1…p`.
    pub fn refill(&self, layer: usize, tokens: Tensor<3>) -> Tensor<3> {
        let deep = self
            .deep
            .as_ref()
            .expect("refill needs deep prompts and a layer ≥ 1");
        splice(layer_prompts(deep, layer), tokens, 1)
    }
}

/// The deep prompts of layer `layer ≥ 1`, `[1, p, d]`.
fn layer_prompts(deep: &Param<Tensor<3>>, layer: usize) -> Tensor<3> {
    deep.val().narrow(0, layer - 1, 1)
}

/// `[CLS, prompts…, tokens[rest..]…]`: the CLS row of `tokens`, the `[1, p, d]` prompts for every
/// clip, then the rows of `tokens` from `rest` on.
fn splice(prompts: Tensor<3>, tokens: Tensor<3>, rest: usize) -> Tensor<3> {
    let [batch, n, d] = tokens.dims();
    let p = prompts.dims()[1];
    Tensor::cat(
        vec![
            tokens.clone().narrow(1, 0, 1),
            prompts.expand([batch, p, d]),
            tokens.narrow(1, rest, n - rest),
        ],
        1,
    )
}

impl PetlMethod for PromptConfig {
    fn validate(&self, _d: usize, layers: usize) -> Result<(), ConfigError> {
        if !(1..=MAX_TOKENS).contains(&self.length) {
            return Err(ConfigError(format!(
                "prompt length must be 1..={MAX_TOKENS}, got {}",
                self.length
            )));
        }
        if self.deep && layers == 0 {
            return Err(ConfigError("deep prompts need at least one layer".into()));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        PROMPT_LR
    }
}
