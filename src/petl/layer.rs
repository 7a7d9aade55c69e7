//! What PETL adds to one encoder layer, and the layer's forward pass with those additions.
//!
//! One forward serves every method: the base [`EncoderLayer`] is not copied, its parts are called
//! with the hooks in between.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::model::attention::{attend, SelfAttention};
use crate::model::layer::EncoderLayer;

use super::adapter::{Adapter, Block};
use super::config::{Insertion, Location, Position};
use super::lora::{project, AttentionLora};
use super::moa::Moa;
use super::prefix::Prefix;
use super::registry::{LayerAddition, LayerHook, Projection};

/// Adapters and mixtures beside one sub-layer (MHSA or FFN).
#[derive(Module, Debug, Default)]
pub struct SublayerHooks {
    /// The parallel adapter, if any.
    pub parallel: Option<Adapter>,
    /// The sequential adapter, if any.
    pub sequential: Option<Adapter>,
    /// A mixture of adapters (parallel, reading the layer-normed input).
    pub moa: Option<Moa>,
}

/// Everything PETL adds to one encoder layer.
#[derive(Module, Debug, Default)]
pub struct LayerHooks {
    /// At the attention sub-layer.
    pub mhsa: SublayerHooks,
    /// At the MLP sub-layer.
    pub ffn: SublayerHooks,
    /// LoRA on the attention projections.
    pub lora: AttentionLora,
    /// Prefix keys/values.
    pub prefix: Option<Prefix>,
    /// The modules of registered methods ([`super::registry`]), called at the hook points.
    pub added: Vec<LayerAddition>,
}

impl SublayerHooks {
    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.parallel.is_none() && self.sequential.is_none() && self.moa.is_none()
    }

    /// Whether each token's output depends on that token's input alone: no adapter convolves
    /// over the token axis (Convpass, Conformer) and no mixture dispatches tokens softly.
    pub fn is_token_wise(&self) -> bool {
        let adapter = |a: &Option<Adapter>| {
            a.as_ref()
                .is_none_or(|a| matches!(a.block, Block::Bottleneck(_)))
        };
        adapter(&self.parallel)
            && adapter(&self.sequential)
            && self.moa.as_ref().is_none_or(|m| matches!(m, Moa::Dense(_)))
    }

    /// The sub-layer output with the adapters wired in (formulas in
    /// [`AdapterConfig`](super::config::AdapterConfig)); `z` is the layer-normed input. The
    /// layer's own residual is added by the caller.
    // PETL_AST: https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_adapters.py#L228-L265
    pub fn apply(&self, z: Tensor<3>, sublayer: impl Fn(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        // `F(z)` is needed by every wiring except a lone sequential-before adapter.
        let mut fz: Option<Tensor<3>> = None;
        let mut f = |z: &Tensor<3>| fz.get_or_insert_with(|| sublayer(z.clone())).clone();
        let mut out = match &self.sequential {
            None => f(&z),
            Some(a) if a.position == Position::After => a.forward(f(&z)),
            Some(a) => {
                let u = a.block.forward(z.clone());
                if a.residual {
                    sublayer(u.clone()) + u
                } else {
                    sublayer(u)
                }
            }
        };
        if let Some(a) = &self.parallel {
            debug_assert_eq!(a.insertion, Insertion::Parallel);
            out = out
                + match a.position {
                    Position::Before => a.forward(z.clone()),
                    Position::After => a.block.forward(f(&z)),
                };
        }
        if let Some(moa) = &self.moa {
            out = out + moa.forward(z);
        }
        out
    }
}

impl LayerHooks {
    /// Whether [`forward_without_rows`] gives exactly the kept rows of [`forward`]: nothing at the
    /// attention sub-layer (its adapters would read the dropped rows' outputs), token-wise hooks
    /// at the MLP.
    pub fn can_drop_rows(&self) -> bool {
        self.mhsa.is_empty()
            && self.ffn.is_token_wise()
            && self.added.iter().all(|a| a.hook().is_token_wise())
    }

    fn hooks(&self) -> impl Iterator<Item = &dyn LayerHook> {
        self.added.iter().map(LayerAddition::hook)
    }

    /// An attention projection: the base Linear, its LoRA update, then the registered hooks.
    fn project(&self, base: &burn::nn::Linear, which: Projection, x: Tensor<3>) -> Tensor<3> {
        let lora = match which {
            Projection::Query => self.lora.q.as_ref(),
            Projection::Key => self.lora.k.as_ref(),
            Projection::Value => self.lora.v.as_ref(),
            Projection::Output => self.lora.o.as_ref(),
        };
        self.hooks()
            .fold(project(base, lora, x), |y, hook| hook.projection(which, y))
    }

    /// The MLP sub-layer `W2 act(W1 z)` with the registered hidden-activation hooks (fused
    /// when there are none).
    fn mlp(&self, base: &EncoderLayer, z: Tensor<3>) -> Tensor<3> {
        if !self.hooks().any(|hook| hook.changes_mlp_hidden()) {
            return base.mlp(z);
        }
        let hidden = self
            .hooks()
            .fold(base.mlp_hidden(z), |h, hook| hook.mlp_hidden(h));
        base.mlp_contract(hidden)
    }

    /// A sub-layer's output through the registered hooks.
    fn sublayer_output(&self, at: Location, z: &Tensor<3>, out: Tensor<3>) -> Tensor<3> {
        self.hooks()
            .fold(out, |out, hook| hook.sublayer_output(at, z, out))
    }
}

/// Multi-head attention with LoRA and prefix hooks.
pub fn attention(base: &SelfAttention, hooks: &LayerHooks, x: Tensor<3>) -> Tensor<3> {
    attention_rows(base, hooks, x.clone(), x)
}

/// [`attention`] for the rows of `queries` only, over the keys and values of all rows of `x`
/// (`queries` are rows of `x`, both layer-normed).
// PETL_AST LoRA: https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_LoRA.py#L82-L121
// PETL_AST prefix: https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_prompt_tuning.py#L276-L285
fn attention_rows(
    base: &SelfAttention,
    hooks: &LayerHooks,
    queries: Tensor<3>,
    x: Tensor<3>,
) -> Tensor<3> {
    let q = hooks.project(&base.query, Projection::Query, queries);
    let mut k = hooks.project(&base.key, Projection::Key, x.clone());
    let mut v = hooks.project(&base.value, Projection::Value, x);
    if let Some(prefix) = &hooks.prefix {
        k = Prefix::insert(&prefix.key, k);
        v = Prefix::insert(&prefix.value, v);
    }
    for hook in hooks.hooks() {
        (k, v) = hook.keys_values(k, v);
    }
    let context = SelfAttention::merge_heads(attend(
        base.split_heads(q),
        base.split_heads(k),
        base.split_heads(v),
    ));
    hooks.project(&base.output, Projection::Output, context)
}

/// One encoder layer with hooks: `h₁ = h + MHSA'(LN_b(h))`, `out = h₁ + FFN'(LN_a(h₁))`.
///
/// `double_add_mhsa_moa` reproduces the reference's Pfeiffer-MHSA MoA bug (its mixture output is
/// added to the layer output a second time).
pub fn forward(
    base: &EncoderLayer,
    hooks: &LayerHooks,
    h: Tensor<3>,
    double_add_mhsa_moa: bool,
) -> Tensor<3> {
    let z1 = base.norm_before_attention(h.clone());
    let mhsa = hooks
        .mhsa
        .apply(z1.clone(), |z| attention(&base.attention, hooks, z));
    let h1 = h + hooks.sublayer_output(Location::Mhsa, &z1, mhsa);
    let z2 = base.norm_before_mlp(h1.clone());
    let ffn = hooks.ffn.apply(z2.clone(), |z| hooks.mlp(base, z));
    let mut out = h1 + hooks.sublayer_output(Location::Ffn, &z2, ffn);
    if double_add_mhsa_moa {
        if let Some(moa) = &hooks.mhsa.moa {
            // PETL_AST: https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/MoA.py#L381
            out = out + moa.forward(z1);
        }
    }
    out
}

/// [`forward`] for the rows outside `dropped` only, for a caller that discards the outputs of
/// those rows (deep prompt tuning overwrites its prompt rows before the next layer). The dropped
/// rows still serve as keys and values of the attention; their query projection, attention rows,
/// output projection and MLP are not computed. Exact when [`LayerHooks::can_drop_rows`].
///
/// # Shapes
/// - h: `[batch, tokens, d]`; output `[batch, tokens − dropped.len(), d]`
pub fn forward_without_rows(
    base: &EncoderLayer,
    hooks: &LayerHooks,
    h: Tensor<3>,
    dropped: Range<usize>,
) -> Tensor<3> {
    debug_assert!(hooks.can_drop_rows());
    let z1 = base.norm_before_attention(h.clone());
    let kept = |x: Tensor<3>| without_rows(x, dropped.clone());
    let z1_kept = kept(z1.clone());
    let mhsa = attention_rows(&base.attention, hooks, z1_kept.clone(), z1);
    let h1 = kept(h) + hooks.sublayer_output(Location::Mhsa, &z1_kept, mhsa);
    let z2 = base.norm_before_mlp(h1.clone());
    let ffn = hooks.ffn.apply(z2.clone(), |z| hooks.mlp(base, z));
    h1 + hooks.sublayer_output(Location::Ffn, &z2, ffn)
}

/// `x` `[batch, tokens, d]` without the tokens in `rows`.
pub fn without_rows(x: Tensor<3>, rows: Range<usize>) -> Tensor<3> {
    let n = x.dims()[1];
    let parts: Vec<_> = [(0, rows.start), (rows.end, n - rows.end)]
        .into_iter()
        .filter(|&(_, len)| len > 0)
        .map(|(start, len)| x.clone().narrow(1, start, len))
        .collect();
    Tensor::cat(parts, 1)
}
