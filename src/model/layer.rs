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

/// The hub's names of a layer's parts, relative to the layer (`encoder.layer.{i}`): the one place
/// they are spelt, for loading ([`EncoderLayer::load`]), saving ([`super::save`]) and importing
/// (`petl::import`, `petl::peft`).
pub mod hub_names {
    /// `ASTSelfAttention`'s query, key and value and the prefix of its extra tensors.
    pub const SELF_ATTENTION: &str = "attention.attention";
    /// Query projection.
    pub const QUERY: &str = "attention.attention.query";
    /// Key projection.
    pub const KEY: &str = "attention.attention.key";
    /// Value projection.
    pub const VALUE: &str = "attention.attention.value";
    /// `ASTSelfOutput`, holding the output projection `dense`.
    pub const ATTENTION_OUTPUT: &str = "attention.output";
    /// Output projection.
    pub const OUTPUT: &str = "attention.output.dense";
    /// MLP expansion.
    pub const MLP_IN: &str = "intermediate.dense";
    /// MLP projection.
    pub const MLP_OUT: &str = "output.dense";
    /// LayerNorm before attention.
    pub const NORM_BEFORE: &str = "layernorm_before";
    /// LayerNorm before the MLP.
    pub const NORM_AFTER: &str = "layernorm_after";
}

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
        let qkv_bias = config.qkv_bias;
        Self {
            norm_attention: path.pp(hub_names::NORM_BEFORE).layer_norm(d, eps),
            attention: SelfAttention {
                query: path.pp(hub_names::QUERY).linear(d, d, qkv_bias),
                key: path.pp(hub_names::KEY).linear(d, d, qkv_bias),
                value: path.pp(hub_names::VALUE).linear(d, d, qkv_bias),
                output: path.pp(hub_names::OUTPUT).linear(d, d, true),
                num_heads: config.num_attention_heads,
            },
            norm_mlp: path.pp(hub_names::NORM_AFTER).layer_norm(d, eps),
            mlp_in: path.pp(hub_names::MLP_IN).linear(d, i, true),
            mlp_out: path.pp(hub_names::MLP_OUT).linear(i, d, true),
            activation: config.activation().expect("validated config"),
            recompute_mlp: false,
        }
    }

    /// Every Linear with its hub name ([`hub_names`]).
    pub fn linears(&self) -> [(&'static str, &Linear); 6] {
        let a = &self.attention;
        [
            (hub_names::QUERY, &a.query),
            (hub_names::KEY, &a.key),
            (hub_names::VALUE, &a.value),
            (hub_names::OUTPUT, &a.output),
            (hub_names::MLP_IN, &self.mlp_in),
            (hub_names::MLP_OUT, &self.mlp_out),
        ]
    }

    /// [`Self::linears`], mutable.
    pub fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 6] {
        let a = &mut self.attention;
        [
            (hub_names::QUERY, &mut a.query),
            (hub_names::KEY, &mut a.key),
            (hub_names::VALUE, &mut a.value),
            (hub_names::OUTPUT, &mut a.output),
            (hub_names::MLP_IN, &mut self.mlp_in),
            (hub_names::MLP_OUT, &mut self.mlp_out),
        ]
    }

    /// Both LayerNorms with their hub names.
    pub fn norms_mut(&mut self) -> [(&'static str, &mut LayerNorm); 2] {
        [
            (hub_names::NORM_BEFORE, &mut self.norm_attention),
            (hub_names::NORM_AFTER, &mut self.norm_mlp),
        ]
    }

    /// Both LayerNorms with their hub names.
    pub fn norms(&self) -> [(&'static str, &LayerNorm); 2] {
        [
            (hub_names::NORM_BEFORE, &self.norm_attention),
            (hub_names::NORM_AFTER, &self.norm_mlp),
        ]
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
