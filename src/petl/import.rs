//! Loading trained PETL tensors saved by the PETL_AST reference code (its `state_dict` saved as
//! safetensors, key names such as
//! `model.encoder.layer.3.adapter_module_FFN.linear_downsample.weight`) onto a [`PetlModel`].
//!
//! The key names alone do not say how an adapter is wired (sequential or parallel), so the model
//! must already be built from the matching [`PetlConfig`](super::PetlConfig); the importer then
//! fills every tensor the configuration trains and reports every missing or misshapen one at once.

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv1d;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use crate::model::error::LoadError;
use crate::model::layer::hub_names;
use crate::model::weights::{WeightPath, Weights};
use crate::model::{AstConfig, AstModel};

use super::adapter::{Adapter, Block, Bottleneck};
use super::config::{Backbone, Insertion, Location};
use super::layer::SublayerHooks;
use super::lora::LoraDelta;
use super::moa::Moa;
use super::model::PetlModel;

/// Names of tensors that belong to a PETL method; such a tensor left unused by the import means
/// the method flags do not match the file.
const METHOD_MARKERS: &[&str] = &[
    "adapter_module",
    "lora_",
    "prompt_embeddings",
    "key_tokens",
    "value_tokens",
    "moa.",
    "router",
    "classification_head",
];

impl PetlModel {
    /// Replaces the trained tensors by those of a PETL_AST `state_dict` in safetensors format.
    pub fn import_petl_ast(
        mut self,
        config: &AstConfig,
        bytes: &[u8],
        source: &str,
    ) -> Result<Self, LoadError> {
        let weights = Weights::from_bytes(bytes, source, &self.head.weight.device())?;
        let root = weights.root();
        let model = root.pp("model");
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;

        if self.config.backbone == Backbone::Full {
            let tokens = self.ast.embeddings.position.dims()[1];
            let position = weights.tensor("model.embeddings.position_embeddings", [1, tokens, d]);
            self.ast = AstModel::load(config, &model, position, self.ast.max_length);
        }
        // The final LayerNorm trains with every method (BitFit: its bias only).
        let norm = model.pp("layernorm");
        if self.config.backbone == Backbone::Bitfit {
            self.ast.norm.beta = Some(norm.tensor("bias", [d]));
        } else {
            self.ast.norm = norm.layer_norm(d, eps);
        }
        let classes = self.num_classes();
        self.head = root.pp("classification_head").linear(d, classes, true);

        let (train_before, train_after) = (
            self.config.trains_norm_at(Location::Mhsa),
            self.config.trains_norm_at(Location::Ffn),
        );
        for (i, (layer, hooks)) in self.ast.layers.iter_mut().zip(&mut self.hooks).enumerate() {
            let path = model.pp("encoder.layer").pp(i);
            if self.config.backbone == Backbone::Bitfit {
                for (name, linear) in layer.linears_mut() {
                    linear.bias = Some(path.pp(name).tensor("bias", [linear.weight.dims()[1]]));
                }
                for (name, norm) in layer.norms_mut() {
                    norm.beta = Some(path.pp(name).tensor("bias", [d]));
                }
            }
            for ((name, norm), trains) in layer
                .norms_mut()
                .into_iter()
                .zip([train_before, train_after])
            {
                if trains {
                    *norm = path.pp(name).layer_norm(d, eps);
                }
            }
            import_sublayer(&mut hooks.mhsa, &path, Location::Mhsa, d);
            import_sublayer(&mut hooks.ffn, &path, Location::Ffn, d);
            let qkv = path.pp(hub_names::SELF_ATTENTION);
            let lora = &mut hooks.lora;
            for (delta, lower, upper) in [
                (&mut lora.q, "q", "Q"),
                (&mut lora.k, "k", "K"),
                (&mut lora.v, "v", "V"),
            ] {
                if let Some(delta) = delta {
                    import_lora(delta, &qkv, lower, upper, d);
                }
            }
            if let Some(delta) = &mut lora.o {
                import_lora(delta, &path.pp(hub_names::ATTENTION_OUTPUT), "o", "O", d);
            }
            if let Some(prefix) = &mut hooks.prefix {
                let half = prefix.key.dims()[0];
                prefix.key = squeeze_first(qkv.tensor("key_tokens", [1, half, d]));
                prefix.value = squeeze_first(qkv.tensor("value_tokens", [1, half, d]));
            }
        }
        if let Some(prompts) = &mut self.prompts {
            let p = prompts.len();
            prompts.shallow = root.tensor("prompt_embeddings", [1, p, d]);
            if let Some(deep) = &mut prompts.deep {
                let layers = deep.dims()[0];
                *deep = root.tensor("deep_prompt_embeddings", [layers, p, d]);
            }
        }

        // Method tensors nobody asked for mean the flags do not match the file; everything else
        // (frozen backbone weights, duplicated aliases of a full state_dict) is ignored.
        for name in weights.names() {
            if METHOD_MARKERS.iter().any(|m| name.contains(m)) {
                continue;
            }
            weights.skip_prefix(&name);
        }
        weights.finish().map_err(|e| match e {
            LoadError::Tensors { file, problems } => LoadError::Tensors {
                file: format!("{file} (PETL_AST state_dict; do the method flags match the file?)"),
                problems,
            },
            other => other,
        })?;
        Ok(self)
    }
}

fn squeeze_first(param: Param<Tensor<3>>) -> Param<Tensor<2>> {
    let t = param.val();
    let [_, n, d] = t.dims();
    Param::from_tensor(t.reshape([n, d]))
}

/// The PETL_AST module name of an adapter: Hydra's `adapter_module_{seq,par}`, the main classes'
/// `adapter_module_{MHSA,FFN}`, or the ablation class's `adapter_module` — whichever the file has.
fn adapter_path<'w, 'a>(
    layer: &WeightPath<'w, 'a>,
    location: Location,
    insertion: Insertion,
) -> WeightPath<'w, 'a> {
    let candidates = [
        match insertion {
            Insertion::Sequential => "adapter_module_seq",
            Insertion::Parallel => "adapter_module_par",
        },
        match location {
            Location::Mhsa => "adapter_module_MHSA",
            Location::Ffn => "adapter_module_FFN",
        },
        "adapter_module",
    ];
    let weights = layer.weights();
    let found = candidates.iter().find(|c| {
        let prefix = layer.name(c);
        weights
            .names()
            .iter()
            .any(|n| n.starts_with(&format!("{prefix}.")))
    });
    layer.pp(found.unwrap_or(&candidates[1]))
}

fn import_sublayer(hooks: &mut SublayerHooks, layer: &WeightPath, location: Location, d: usize) {
    for adapter in [&mut hooks.parallel, &mut hooks.sequential]
        .into_iter()
        .flatten()
    {
        let path = adapter_path(layer, location, adapter.insertion);
        import_adapter(adapter, &path, d);
    }
    if let Some(moa) = &mut hooks.moa {
        // Pfeiffer names: `router.ff`, `moa.moa.{e}`; Houlsby: `router_{mhsa,ffn}`, `moa_{mhsa,ffn}`.
        let suffix = match location {
            Location::Mhsa => "mhsa",
            Location::Ffn => "ffn",
        };
        let weights = layer.weights();
        let houlsby = weights
            .names()
            .iter()
            .any(|n| n.starts_with(&layer.name(&format!("moa_{suffix}."))));
        let (router, experts) = if houlsby {
            (
                layer.pp(format!("router_{suffix}.ff")),
                layer.pp(format!("moa_{suffix}")),
            )
        } else {
            (layer.pp("router.ff"), layer.pp("moa"))
        };
        match moa {
            Moa::Dense(m) => {
                let n = m.experts.len();
                m.router = router.linear(d, n, true);
                for (e, expert) in m.experts.iter_mut().enumerate() {
                    import_bottleneck(expert, &experts.pp("moa").pp(e), d);
                }
            }
            Moa::Soft(m) => {
                let n = m.experts.len();
                let p = m.slots_per_expert;
                let slots = experts.tensor("slot_params", [d, n, p]).val();
                m.slots = Param::from_tensor(slots.reshape([d, n * p]));
                for (e, expert) in m.experts.iter_mut().enumerate() {
                    import_bottleneck(expert, &experts.pp("moa").pp(e), d);
                }
            }
        }
    }
}

fn import_bottleneck(block: &mut Bottleneck, path: &WeightPath, d: usize) {
    let b = block.down.weight.dims()[1];
    block.down = path.pp("linear_downsample").linear(d, b, true);
    block.up = path.pp("linear_upsample").linear(b, d, true);
}

fn import_adapter(adapter: &mut Adapter, path: &WeightPath, d: usize) {
    match &mut adapter.block {
        Block::Bottleneck(m) => import_bottleneck(m, path, d),
        Block::Convpass(m) => {
            let b = m.down.weight.dims()[1];
            m.down = path.pp("adapter_down").linear(d, b, true);
            m.up = path.pp("adapter_up").linear(b, d, true);
            import_conv1d(&mut m.conv, &path.pp("adapter_conv"), [b, b, 3]);
        }
        Block::Conformer(m) => {
            let b = m.pointwise_out.weight.dims()[0];
            let k = m.depthwise.kernel_size;
            m.norm = path.pp("lnorm").layer_norm(d, 1e-5);
            m.pointwise_in = pointwise(&path.pp("pwise_conv1"), d, 2 * b);
            m.pointwise_out = pointwise(&path.pp("pwise_conv2"), b, d);
            import_conv1d(&mut m.depthwise, &path.pp("dwise_conv"), [b, 1, k]);
            let bn = path.pp("bnorm");
            m.batch_norm.gamma = bn.tensor("weight", [b]);
            m.batch_norm.beta = bn.tensor("bias", [b]);
            m.batch_norm.running_mean = RunningState::new(bn.tensor("running_mean", [b]).val());
            m.batch_norm.running_var = RunningState::new(bn.tensor("running_var", [b]).val());
        }
    }
}

/// A kernel-1 `Conv1d` `[out, in, 1]` as a Linear `[in, out]`.
fn pointwise(path: &WeightPath, d_in: usize, d_out: usize) -> Linear {
    let weights = path.weights();
    let name = path.name("weight");
    let weight = match weights.host_with_shape(&name, &[d_out, d_in, 1]) {
        Some(host) => {
            let t = crate::model::weights::transpose(&host.data, d_out, d_in);
            Tensor::from_data(TensorData::new(t, [d_in, d_out]), weights.device())
        }
        None => Tensor::zeros([d_in, d_out], weights.device()),
    };
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(path.tensor("bias", [d_out])),
    }
}

fn import_conv1d(conv: &mut Conv1d, path: &WeightPath, shape: [usize; 3]) {
    conv.weight = path.tensor("weight", shape);
    conv.bias = Some(path.tensor("bias", [shape[0]]));
}

/// PETL_AST names LoRA factors `lora_{down,up}_{q,v}` in `AST_LoRA` and `lora_{down,up}_{Q,K,V,O}`
/// in its ablation class; accept either.
fn import_lora(delta: &mut LoraDelta, path: &WeightPath, lower: &str, upper: &str, d: usize) {
    let r = delta.down.weight.dims()[1];
    let weights = path.weights();
    let suffix = if weights.contains(&path.name(&format!("lora_down_{upper}.weight"))) {
        upper
    } else {
        lower
    };
    delta.down = path.pp(format!("lora_down_{suffix}")).linear(d, r, false);
    delta.up = path.pp(format!("lora_up_{suffix}")).linear(r, d, false);
}
