//! [`PetlModel`]: the AST backbone, the PETL additions of every layer, prompts and the head.

use burn::module::Module;
use burn::nn::Linear;

use crate::model::norm::LayerNorm;
use burn::tensor::{Device, Tensor};

use crate::model::{AstConfig, AstModel};

use super::adapter::Adapter;
use super::config::{
    Backbone, ConfigError, HeadInput, Insertion, Location, LoraTarget, PetlConfig,
};
use super::init;
use super::layer::{self, LayerHooks, SublayerHooks};
use super::lora::LoraDelta;
use super::moa::Moa;
use super::prefix::Prefix;
use super::prompt::Prompts;

/// An AST with PETL methods applied and a new classification head.
#[derive(Module, Debug)]
pub struct PetlModel {
    /// The backbone; frozen except what the config trains.
    pub ast: AstModel,
    /// What each encoder layer gains.
    pub hooks: Vec<LayerHooks>,
    /// Prompt tokens.
    pub prompts: Option<Prompts>,
    /// Linear classifier on the pooled output.
    pub head: Linear,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: PetlConfig,
}

impl PetlModel {
    /// Applies `petl` to `ast` (a checkpoint's backbone) with a fresh head of `num_classes`.
    pub fn new(
        ast: AstModel,
        model_config: &AstConfig,
        petl: &PetlConfig,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let d = model_config.hidden_size;
        let layers = ast.layers.len();
        petl.validate(d, layers)?;
        let max_classes = crate::model::checkpoint::MAX_CLASSES;
        if !(1..=max_classes).contains(&num_classes) {
            return Err(ConfigError(format!(
                "the head needs 1..={max_classes} classes, got {num_classes}"
            )));
        }
        let intermediate = model_config.intermediate_size;
        let hooks = (0..layers)
            .map(|_| Self::layer_hooks(petl, d, intermediate, device))
            .collect();
        let bound = init::prompt_bound(model_config.patch_size, d);
        let prompts = petl
            .prompt
            .as_ref()
            .map(|p| Prompts::new(p.length, d, layers, p.deep, bound, device));
        let head = init::linear(d, num_classes, true, init::kaiming(d), device);
        let head = Linear {
            bias: Some(burn::module::Param::from_tensor(Tensor::random(
                [num_classes],
                init::kaiming(d),
                device,
            ))),
            ..head
        };
        let ast = Self::select_trainable(ast, petl);
        Ok(Self {
            ast,
            hooks,
            prompts,
            head,
            config: petl.clone(),
        })
    }

    fn layer_hooks(
        petl: &PetlConfig,
        d: usize,
        intermediate: usize,
        device: &Device,
    ) -> LayerHooks {
        let init_mode = petl.init_mode();
        let mut hooks = LayerHooks {
            added: petl
                .methods
                .iter()
                .map(|m| m.layer(d, intermediate, init_mode, device))
                .collect(),
            ..LayerHooks::default()
        };
        for a in &petl.adapters {
            let sub = Self::sublayer_mut(&mut hooks, a.location);
            let adapter = Some(Adapter::new(a, d, init_mode, device));
            match a.insertion {
                Insertion::Parallel => sub.parallel = adapter,
                Insertion::Sequential => sub.sequential = adapter,
            }
        }
        if let Some(moa) = &petl.moa {
            Self::sublayer_mut(&mut hooks, moa.location).moa =
                Some(Moa::new(moa, d, init_mode, device));
        }
        if let Some(lora) = &petl.lora {
            let rank = d / lora.reduction_rate;
            let scale = lora.alpha / lora.reduction_rate as f64;
            for target in &lora.targets {
                let delta = Some(LoraDelta::new(d, rank, scale, init_mode, device));
                match target {
                    LoraTarget::Q => hooks.lora.q = delta,
                    LoraTarget::K => hooks.lora.k = delta,
                    LoraTarget::V => hooks.lora.v = delta,
                    LoraTarget::O => hooks.lora.o = delta,
                }
            }
        }
        if let Some(prefix) = &petl.prefix {
            let bound = init::prompt_bound(16, d);
            hooks.prefix = Some(Prefix::new(prefix.length, d, bound, device));
        }
        hooks
    }

    fn sublayer_mut(hooks: &mut LayerHooks, location: Location) -> &mut SublayerHooks {
        match location {
            Location::Mhsa => &mut hooks.mhsa,
            Location::Ffn => &mut hooks.ffn,
        }
    }

    /// Freezes the backbone, then unfreezes what the method trains besides its own modules:
    /// everything (full FT), the biases (BitFit), the LayerNorm in front of every sub-layer that
    /// carries an adapter or a mixture, and the final LayerNorm (always, like the reference).
    fn select_trainable(ast: AstModel, petl: &PetlConfig) -> AstModel {
        let mut ast = ast.no_grad();
        match petl.backbone {
            Backbone::Full => return ast.set_require_grad(true),
            Backbone::Bitfit => {
                for layer in &mut ast.layers {
                    let attention = &mut layer.attention;
                    for linear in [
                        &mut attention.query,
                        &mut attention.key,
                        &mut attention.value,
                        &mut attention.output,
                        &mut layer.mlp_in,
                        &mut layer.mlp_out,
                    ] {
                        linear.bias = linear.bias.take().map(|b| b.set_require_grad(true));
                    }
                    for norm in [&mut layer.norm_attention, &mut layer.norm_mlp] {
                        norm.beta = norm.beta.take().map(|b| b.set_require_grad(true));
                    }
                }
                // BitFit unfreezes only the final LayerNorm's bias.
                ast.norm.beta = ast.norm.beta.take().map(|b| b.set_require_grad(true));
                return ast;
            }
            Backbone::Frozen => {}
        }
        let (mhsa, ffn) = (
            petl.trains_norm_at(Location::Mhsa),
            petl.trains_norm_at(Location::Ffn),
        );
        for layer in &mut ast.layers {
            if mhsa {
                layer.norm_attention = unfreeze(layer.norm_attention.clone());
            }
            if ffn {
                layer.norm_mlp = unfreeze(layer.norm_mlp.clone());
            }
        }
        ast.norm = unfreeze(ast.norm.clone());
        ast
    }

    /// Encoder output after the final LayerNorm, prompts included.
    ///
    /// # Shapes
    /// - input: `[batch, max_length, mel]`
    /// - output: `[batch, tokens, d]` (`tokens` = 1 + p + patches with prompts)
    pub fn encode(&self, input: Tensor<3>) -> Tensor<3> {
        self.encode_pooled_rows(input, false)
    }

    /// [`Self::encode`]; with `cls_only`, the last layer computes the CLS row only (where its
    /// hooks allow, [`LayerHooks::can_drop_rows`]; the other rows stay keys and values).
    fn encode_pooled_rows(&self, input: Tensor<3>, cls_only: bool) -> Tensor<3> {
        let mut x = self.ast.embeddings.forward(input);
        if let Some(prompts) = &self.prompts {
            x = prompts.insert(x);
        }
        let double_add = self.config.paper_compat
            && self
                .config
                .moa
                .as_ref()
                .is_some_and(|m| m.location == Location::Mhsa);
        let layers = self.ast.layers.len();
        // Whether the previous layer dropped the prompt rows (deep prompts overwrite them).
        let mut dropped = false;
        for (i, (base, hooks)) in self.ast.layers.iter().zip(&self.hooks).enumerate() {
            if let Some(prompts) = &self.prompts {
                x = if dropped {
                    prompts.refill(i, x)
                } else {
                    prompts.before_layer(i, x)
                };
            }
            // Rows whose outputs nothing reads: after the last layer every row but CLS when the
            // head reads CLS only, before it the prompt rows the next layer overwrites.
            let unread = if cls_only && i + 1 == layers {
                Some(1..x.dims()[1])
            } else {
                self.prompts
                    .as_ref()
                    .and_then(|p| p.overwritten_after(i, layers))
            };
            match unread {
                Some(rows) if hooks.can_drop_rows() => {
                    x = layer::forward_without_rows(base, hooks, x, rows);
                    dropped = true;
                }
                _ => {
                    x = layer::forward(base, hooks, x, double_add);
                    dropped = false;
                }
            }
        }
        self.ast.final_norm(x)
    }

    /// The head input: mean of all tokens, or the CLS token.
    ///
    /// # Shapes
    /// - encoded: `[batch, tokens, d]`; output `[batch, d]`
    pub fn pool(&self, encoded: Tensor<3>) -> Tensor<2> {
        let [batch, _, d] = encoded.dims();
        match self.config.head {
            HeadInput::All => encoded.mean_dim(1).reshape([batch, d]),
            HeadInput::Cls => encoded.narrow(1, 0, 1).reshape([batch, d]),
        }
    }

    /// [`Self::pool`] of [`Self::encode`]; with the CLS head, the last layer computes the CLS
    /// row only (the same values for ≈ 1/L less work).
    ///
    /// # Shapes
    /// - input: `[batch, max_length, mel]`; output `[batch, d]`
    pub fn pooled(&self, input: Tensor<3>) -> Tensor<2> {
        let cls_only = self.config.head == HeadInput::Cls;
        self.pool(self.encode_pooled_rows(input, cls_only))
    }

    /// Logits.
    ///
    /// # Shapes
    /// - input: `[batch, max_length, mel]`; output `[batch, num_classes]`
    pub fn forward(&self, input: Tensor<3>) -> Tensor<2> {
        crate::kernels::linear(&self.head, self.pooled(input))
    }

    /// Folds every LoRA update into its base projection (`W + α/RR · B A`) and drops the LoRA
    /// modules: the same outputs at no extra inference cost. The merged weights are frozen
    /// copies; train the unmerged model.
    pub fn merge_lora(mut self) -> Self {
        for (layer, hooks) in self.ast.layers.iter_mut().zip(&mut self.hooks) {
            let attention = &mut layer.attention;
            let lora = std::mem::take(&mut hooks.lora);
            for (delta, base) in [
                (lora.q, &mut attention.query),
                (lora.k, &mut attention.key),
                (lora.v, &mut attention.value),
                (lora.o, &mut attention.output),
            ] {
                if let Some(delta) = delta {
                    *base = delta.merge_into(base).no_grad();
                }
            }
        }
        self.config.lora = None;
        self
    }

    /// Recompute every layer's MLP expansion in the backward instead of keeping its GELU input
    /// (see [`crate::kernels::linear_gelu`]): less memory per training step, one more matmul per
    /// layer in the backward.
    pub fn recompute_mlp_in_backward(mut self, on: bool) -> Self {
        self.ast.layers = std::mem::take(&mut self.ast.layers)
            .into_iter()
            .map(|layer| layer.recompute_mlp_in_backward(on))
            .collect();
        self
    }

    /// Number of classes of the head.
    pub fn num_classes(&self) -> usize {
        self.head.weight.dims()[1]
    }
}

fn unfreeze(norm: LayerNorm) -> LayerNorm {
    norm.set_require_grad(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::petl::config::{AdapterBlock, AdapterConfig, LoraConfig, MoaConfig, MoaKind};

    fn adapter(location: Location, block: AdapterBlock) -> AdapterConfig {
        AdapterConfig {
            location,
            block,
            insertion: Insertion::Parallel,
            position: crate::petl::config::Position::Before,
            residual: false,
            reduction_rate: 8,
            kernel_size: 3,
        }
    }

    fn moa(kind: MoaKind) -> MoaConfig {
        MoaConfig {
            kind,
            location: Location::Ffn,
            experts: 2,
            reduction_rate: 8,
            slots: 2,
        }
    }

    /// Layers drop the rows deep prompts overwrite only where every hook is token-wise and the
    /// attention sub-layer has none (otherwise the kept rows would change).
    #[test]
    fn only_token_wise_hooks_outside_the_attention_sublayer_drop_rows() {
        let device = Device::flex();
        let d = 16;
        let hooks = |petl: PetlConfig| PetlModel::layer_hooks(&petl, d, 4 * d, &device);
        let lora = Some(LoraConfig {
            reduction_rate: 4,
            alpha: 8.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
        });
        let with_adapter = |location, block| PetlConfig {
            adapters: vec![adapter(location, block)],
            ..PetlConfig::default()
        };
        let cases = [
            (PetlConfig::default(), true),
            (
                PetlConfig {
                    lora,
                    moa: Some(moa(MoaKind::Dense)),
                    ..with_adapter(Location::Ffn, AdapterBlock::Bottleneck)
                },
                true,
            ),
            (
                with_adapter(Location::Mhsa, AdapterBlock::Bottleneck),
                false,
            ),
            (with_adapter(Location::Ffn, AdapterBlock::Convpass), false),
            (with_adapter(Location::Ffn, AdapterBlock::Conformer), false),
            (
                PetlConfig {
                    moa: Some(moa(MoaKind::Soft)),
                    ..PetlConfig::default()
                },
                false,
            ),
        ];
        for (i, (petl, expected)) in cases.into_iter().enumerate() {
            assert_eq!(hooks(petl).can_drop_rows(), expected, "case {i}");
        }
    }
}
