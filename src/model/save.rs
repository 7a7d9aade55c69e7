//! Writing an [`AstForAudioClassification`] as a Hugging Face checkpoint folder
//! (`config.json` + `model.safetensors` with the hub's tensor names), the inverse of
//! [`Checkpoint::from_dir`](super::Checkpoint::from_dir).

use burn::nn::Linear;

use super::norm::LayerNorm;

use super::ast::AstForAudioClassification;
use super::weights::{serialize_f32, transpose, NamedTensor};

/// Named tensors `(name, values, shape)` in the hub's layout (Linear weights `[out, in]`).
pub fn hf_tensors(model: &AstForAudioClassification) -> Vec<NamedTensor> {
    let mut tensors: Vec<NamedTensor> = Vec::new();
    let linear = |name: &str, l: &Linear, tensors: &mut Vec<NamedTensor>| {
        let [d_in, d_out] = l.weight.dims();
        let values = l
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        tensors.push((
            format!("{name}.weight"),
            transpose(&values, d_in, d_out),
            vec![d_out, d_in],
        ));
        if let Some(b) = &l.bias {
            tensors.push((
                format!("{name}.bias"),
                b.val().into_data().try_to_vec::<f32>().unwrap_or_default(),
                vec![d_out],
            ));
        }
    };
    let norm = |name: &str, n: &LayerNorm, tensors: &mut Vec<NamedTensor>| {
        let d = n.gamma.dims()[0];
        tensors.push((
            format!("{name}.weight"),
            n.gamma
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
            vec![d],
        ));
        if let Some(b) = &n.beta {
            tensors.push((
                format!("{name}.bias"),
                b.val().into_data().try_to_vec::<f32>().unwrap_or_default(),
                vec![d],
            ));
        }
    };
    let p = "audio_spectrogram_transformer";
    let e = &model.ast.embeddings;
    for (name, t) in [
        ("cls_token", e.cls_token.val()),
        ("distillation_token", e.distillation_token.val()),
        ("position_embeddings", e.position.val()),
    ] {
        let shape = t.dims().to_vec();
        tensors.push((
            format!("{p}.embeddings.{name}"),
            t.into_data().try_to_vec::<f32>().unwrap_or_default(),
            shape,
        ));
    }
    let w = e.patch.weight.val();
    let shape = w.dims().to_vec();
    tensors.push((
        format!("{p}.embeddings.patch_embeddings.projection.weight"),
        w.into_data().try_to_vec::<f32>().unwrap_or_default(),
        shape,
    ));
    if let Some(b) = &e.patch.bias {
        let values = b.val().into_data().try_to_vec::<f32>().unwrap_or_default();
        let n = values.len();
        tensors.push((
            format!("{p}.embeddings.patch_embeddings.projection.bias"),
            values,
            vec![n],
        ));
    }
    for (i, layer) in model.ast.layers.iter().enumerate() {
        let l = format!("{p}.encoder.layer.{i}");
        let a = &layer.attention;
        linear(
            &format!("{l}.attention.attention.query"),
            &a.query,
            &mut tensors,
        );
        linear(
            &format!("{l}.attention.attention.key"),
            &a.key,
            &mut tensors,
        );
        linear(
            &format!("{l}.attention.attention.value"),
            &a.value,
            &mut tensors,
        );
        linear(
            &format!("{l}.attention.output.dense"),
            &a.output,
            &mut tensors,
        );
        linear(
            &format!("{l}.intermediate.dense"),
            &layer.mlp_in,
            &mut tensors,
        );
        linear(&format!("{l}.output.dense"), &layer.mlp_out, &mut tensors);
        norm(
            &format!("{l}.layernorm_before"),
            &layer.norm_attention,
            &mut tensors,
        );
        norm(
            &format!("{l}.layernorm_after"),
            &layer.norm_mlp,
            &mut tensors,
        );
    }
    norm(&format!("{p}.layernorm"), &model.ast.norm, &mut tensors);
    norm("classifier.layernorm", &model.head.norm, &mut tensors);
    linear("classifier.dense", &model.head.dense, &mut tensors);
    tensors
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
