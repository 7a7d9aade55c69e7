//! Multi-head self-attention of the AST encoder (`ASTAttention`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::config::AstConfig;
use crate::kernels::linear;

/// Multi-head scaled dot-product self-attention with an output projection
/// (Vaswani et al., "Attention Is All You Need", 2017).
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query projection `Wq`.
    pub query: Linear,
    /// Key projection `Wk`.
    pub key: Linear,
    /// Value projection `Wv`.
    pub value: Linear,
    /// Output projection `Wo`.
    pub output: Linear,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

impl SelfAttention {
    /// Random initialisation.
    pub fn new(config: &AstConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        let linear = |bias| super::init::linear(config, d, d, bias, device);
        Self {
            query: linear(config.qkv_bias),
            key: linear(config.qkv_bias),
            value: linear(config.qkv_bias),
            output: linear(true),
            num_heads: config.num_attention_heads,
        }
    }

    /// Splits `[batch, tokens, d]` into heads `[batch, heads, tokens, d / heads]`.
    pub fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, tokens, d] = x.dims();
        x.reshape([batch, tokens, self.num_heads, d / self.num_heads])
            .swap_dims(1, 2)
    }

    /// Merges heads back: `[batch, heads, tokens, dh]` → `[batch, tokens, heads·dh]`.
    pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
        let [batch, heads, tokens, dh] = x.dims();
        x.swap_dims(1, 2).reshape([batch, tokens, heads * dh])
    }

    /// Plain forward pass.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, d]` (already layer-normed)
    /// - output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_rows(x.clone(), x)
    }

    /// [`Self::forward`] for the rows of `queries` only, over the keys and values of every row
    /// of `x` (`queries` are rows of `x`).
    ///
    /// # Shapes
    /// - queries: `[batch, rows, d]`; x: `[batch, tokens, d]` (both layer-normed)
    /// - output: `[batch, rows, d]`
    pub fn forward_rows(&self, queries: Tensor<3>, x: Tensor<3>) -> Tensor<3> {
        let q = self.split_heads(linear(&self.query, queries));
        let k = self.split_heads(linear(&self.key, x.clone()));
        let v = self.split_heads(linear(&self.value, x));
        linear(&self.output, Self::merge_heads(attend(q, k, v)))
    }
}

/// `softmax(q kᵀ / √dh) v` per head ([`crate::kernels::attention`]: this crate's tiled kernel
/// with its own backward on burn-flex, burn's `attention` op elsewhere).
///
/// # Shapes
/// - q: `[batch, heads, queries, dh]`
/// - k, v: `[batch, heads, keys, dh]`
/// - output: `[batch, heads, queries, dh]`
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    crate::kernels::attention(q, k, v)
}
