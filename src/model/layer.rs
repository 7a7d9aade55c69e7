//! One pre-LayerNorm encoder layer of the AST (`ASTLayer`).

use std::ops::Range;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::attention::SelfAttention;
use super::config::{Activation, AstConfig};
use super::init;
use super::norm::LayerNorm;
use super::weights::WeightPath;

/// `x + MHSA(LN(x))`, then `h + MLP(LN(h))` with a GELU MLP of width `intermediate_size`.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// LayerNorm before attention (`layernorm_before`).
    pub norm_attention: LayerNorm,
    /// Multi-head self-attention.
    pub attention: SelfAttention,
    /// LayerNorm before the MLP (`layernorm_after`).
    pub norm_mlp: LayerNorm,
    /// MLP expansion `d → intermediate` (`intermediate.dense`).
    pub mlp_in: Linear,
    /// MLP projection `intermediate → d` (`output.dense`).
    pub mlp_out: Linear,
    /// MLP activation.
    #[module(skip)]
    pub activation: Activation,
    /// Training: recompute the MLP's expansion in the backward instead of keeping its GELU
    /// input ([`crate::kernels::linear_gelu`]); set by [`EncoderLayer::recompute_mlp_in_backward`].
    #[module(skip)]
    pub recompute_mlp: bool,
}

impl EncoderLayer {
    /// Random initialisation.
    pub fn new(config: &AstConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        let i = config.intermediate_size;
        Self {
            norm_attention: init::layer_norm(config, d, device),
            attention: SelfAttention::new(config, device),
            norm_mlp: init::layer_norm(config, d, device),
            mlp_in: init::linear(config, d, i, true, device),
            mlp_out: init::linear(config, i, d, true, device),
            activation: config.activation().expect("validated config"),
            recompute_mlp: false,
        }
    }

    /// Loads an `ASTLayer` stored under `path` (e.g. `encoder.layer.3`).
    pub fn load(config: &AstConfig, path: &WeightPath) -> Self {
        let d = config.hidden_size;
        let i = config.intermediate_size;
        let eps = config.layer_norm_eps;
        Self {
            norm_attention: path.pp("layernorm_before").layer_norm(d, eps),
            attention: SelfAttention::load(config, &path.pp("attention")),
            norm_mlp: path.pp("layernorm_after").layer_norm(d, eps),
            mlp_in: path.pp("intermediate.dense").linear(d, i, true),
            mlp_out: path.pp("output.dense").linear(i, d, true),
            activation: config.activation().expect("validated config"),
            recompute_mlp: false,
        }
    }

    /// The MLP without its residual: `W2 act(W1 x)`.
    pub fn mlp(&self, x: Tensor<3>) -> Tensor<3> {
        self.mlp_contract(self.mlp_hidden(x))
    }

    /// The MLP's hidden activation `act(W1 x)`, `[batch, tokens, intermediate]`.
    pub fn mlp_hidden(&self, x: Tensor<3>) -> Tensor<3> {
        match self.activation {
            Activation::Gelu => crate::kernels::linear_gelu(&self.mlp_in, x, self.recompute_mlp),
            activation => activation.forward(crate::kernels::linear(&self.mlp_in, x)),
        }
    }

    /// The MLP's contraction `W2 hidden`, `[batch, tokens, d]`.
    pub fn mlp_contract(&self, hidden: Tensor<3>) -> Tensor<3> {
        crate::kernels::linear(&self.mlp_out, hidden)
    }

    /// Trades memory for compute in training: with `on`, the MLP's `4·d`-wide GELU input is
    /// recomputed in the backward instead of kept (on burn-flex; a no-op elsewhere).
    pub fn recompute_mlp_in_backward(mut self, on: bool) -> Self {
        self.recompute_mlp = on;
        self
    }

    /// `layernorm_before`.
    pub fn norm_before_attention(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm_attention.forward(x)
    }

    /// `layernorm_after`.
    pub fn norm_before_mlp(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm_mlp.forward(x)
    }

    /// # Shapes
    /// - x: `[batch, tokens, d]`
    /// - output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let tokens = x.dims()[1];
        self.forward_rows(x, 0..tokens)
    }

    /// [`Self::forward`]'s output rows `rows` only: every row is still a key and value of the
    /// attention, but only `rows` get queries, the output projection and the MLP (for a caller
    /// that reads no other row, e.g. a pooler of the CLS token).
    ///
    /// # Shapes
    /// - x: `[batch, tokens, d]`
    /// - output: `[batch, rows.len(), d]`
    pub fn forward_rows(&self, x: Tensor<3>, rows: Range<usize>) -> Tensor<3> {
        let z = self.norm_before_attention(x.clone());
        let kept = |t: Tensor<3>| t.narrow(1, rows.start, rows.len());
        let h = kept(x) + self.attention.forward_rows(kept(z.clone()), z);
        h.clone() + self.mlp(self.norm_before_mlp(h))
    }
}
