//! Writing an [`AstForAudioClassification`] as a Hugging Face checkpoint folder
//! (`config.json` + `model.safetensors` with the hub's tensor names), the inverse of
//! [`Checkpoint::from_dir`](super::Checkpoint::from_dir).

use burn::nn::Linear;
use burn::tensor::Tensor;

use super::ast::AstForAudioClassification;
use super::checkpoint::{BACKBONE_PREFIX, HEAD_PREFIX};
use super::norm::LayerNorm;
use super::weights::{serialize_f32, transpose, NamedTensor};

/// Collects tensors under the hub's names.
#[derive(Default)]
struct HubTensors(Vec<NamedTensor>);

impl HubTensors {
    fn tensor<const D: usize>(&mut self, name: String, t: Tensor<D>) {
        let shape = t.dims().to_vec();
        let values = t.into_data().try_to_vec::<f32>().unwrap_or_default();
        self.0.push((name, values, shape));
    }

    /// A Linear as PyTorch stores it: `weight` `[out, in]`, `bias`.
    fn linear(&mut self, name: &str, l: &Linear) {
        let [d_in, d_out] = l.weight.dims();
        let values = l
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let transposed = transpose(&values, d_in, d_out);
        self.0
            .push((format!("{name}.weight"), transposed, vec![d_out, d_in]));
        if let Some(b) = &l.bias {
            self.tensor(format!("{name}.bias"), b.val());
        }
    }

    /// A LayerNorm as PyTorch stores it: `weight`, `bias`.
    fn norm(&mut self, name: &str, n: &LayerNorm) {
        self.tensor(format!("{name}.weight"), n.gamma.val());
        if let Some(b) = &n.beta {
            self.tensor(format!("{name}.bias"), b.val());
        }
    }
}

/// Named tensors `(name, values, shape)` in the hub's layout (Linear weights `[out, in]`).
pub fn hf_tensors(model: &AstForAudioClassification) -> Vec<NamedTensor> {
    let mut out = HubTensors::default();
    let p = BACKBONE_PREFIX;
    let e = &model.ast.embeddings;
    out.tensor(format!("{p}.embeddings.cls_token"), e.cls_token.val());
    out.tensor(
        format!("{p}.embeddings.distillation_token"),
        e.distillation_token.val(),
    );
    out.tensor(
        format!("{p}.embeddings.position_embeddings"),
        e.position.val(),
    );
    let projection = format!("{p}.embeddings.patch_embeddings.projection");
    out.tensor(format!("{projection}.weight"), e.patch.weight.val());
    if let Some(b) = &e.patch.bias {
        out.tensor(format!("{projection}.bias"), b.val());
    }
    for (i, layer) in model.ast.layers.iter().enumerate() {
        for (name, linear) in layer.linears() {
            out.linear(&format!("{p}.encoder.layer.{i}.{name}"), linear);
        }
        for (name, norm) in layer.norms() {
            out.norm(&format!("{p}.encoder.layer.{i}.{name}"), norm);
        }
    }
    out.norm(&format!("{p}.layernorm"), &model.ast.norm);
    out.norm(&format!("{HEAD_PREFIX}.layernorm"), &model.head.norm);
    out.linear(&format!("{HEAD_PREFIX}.dense"), &model.head.dense);
    out.0
}

/// `model.safetensors` bytes of `model`.
pub fn safetensors_bytes(model: &AstForAudioClassification) -> Vec<u8> {
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    serialize_f32(hf_tensors(model), metadata)
}

/// Writes `config.json` and `model.safetensors` (atomically) into `dir`.
#[cfg(not(target_family = "wasm"))]
pub fn save_dir(
    model: &AstForAudioClassification,
    config: &super::config::AstConfig,
    dir: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut config = config.clone();
    config.max_length = model.ast.max_length;
    crate::io::write_atomic(
        &dir.join(super::checkpoint::WEIGHTS_FILE),
        &safetensors_bytes(model),
    )?;
    crate::io::write_atomic(
        &dir.join(super::checkpoint::CONFIG_FILE),
        config.to_json().as_bytes(),
    )
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use std::collections::BTreeMap;

    use safetensors::SafeTensors;

    use super::*;
    use crate::model::{Checkpoint, LoadOptions};

    fn f32_tensors(bytes: &[u8]) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
        let file = SafeTensors::deserialize(bytes).unwrap();
        file.tensors()
            .into_iter()
            .map(|(name, view)| (name, (view.shape().to_vec(), view.data().to_vec())))
            .collect()
    }

    #[test]
    fn saving_a_loaded_checkpoint_gives_back_its_tensors() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/speech-ast-tiny");
        let checkpoint = Checkpoint::from_dir(dir).unwrap();
        let device = crate::backend::cpu_device().unwrap();
        let model = checkpoint
            .load_classifier(&LoadOptions::default(), &device)
            .unwrap();
        let saved = f32_tensors(&safetensors_bytes(&model));
        let original = f32_tensors(&checkpoint.weights);
        assert_eq!(
            saved.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>()
        );
        for (name, tensor) in &original {
            assert!(saved[name] == *tensor, "{name} differs");
        }
    }
}
