//! Importing a Hugging Face PEFT LoRA adapter folder (`adapter_config.json` +
//! `adapter_model.safetensors`) made for `ASTForAudioClassification`: the updates are merged into
//! the base projections (`W + α/r · B A`, or `α/√r` with rsLoRA).

use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

use crate::model::weights::{transpose, Weights};
use crate::model::{AstForAudioClassification, LoadError, TensorProblem};

/// The fields of PEFT's `adapter_config.json` that matter here.
#[derive(Debug, Clone, Deserialize)]
pub struct PeftLoraConfig {
    /// `"LORA"`.
    #[serde(default)]
    pub peft_type: Option<String>,
    /// Rank.
    pub r: usize,
    /// Scale numerator.
    pub lora_alpha: f64,
    /// rsLoRA scaling `α/√r`.
    #[serde(default)]
    pub use_rslora: bool,
}

impl PeftLoraConfig {
    /// The factor PEFT multiplies `B A x` by.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }
}

/// The Linear of `model` that the Hugging Face module path `name` denotes, in the hub's
/// (transformers 4) or transformers 5 spelling.
fn linear_mut<'m>(model: &'m mut AstForAudioClassification, name: &str) -> Option<&'m mut Linear> {
    if name == "classifier.dense" {
        return Some(&mut model.head.dense);
    }
    let rest = name
        .strip_prefix("audio_spectrogram_transformer.encoder.layer.")
        .or_else(|| name.strip_prefix("audio_spectrogram_transformer.layers."))?;
    let (index, part) = rest.split_once('.')?;
    let layer = model.ast.layers.get_mut(index.parse::<usize>().ok()?)?;
    // transformers 5 names the same six Linears, in the same order, after their role.
    const TRANSFORMERS_5: [&str; 6] = [
        "attention.q_proj",
        "attention.k_proj",
        "attention.v_proj",
        "attention.o_proj",
        "mlp.fc1",
        "mlp.fc2",
    ];
    layer
        .linears_mut()
        .into_iter()
        .zip(TRANSFORMERS_5)
        .find(|((hub, _), v5)| part == *hub || part == *v5)
        .map(|((_, linear), _)| linear)
}

/// Merges the LoRA updates of a PEFT folder into `model`.
pub fn merge_peft_lora(
    model: AstForAudioClassification,
    dir: &Path,
) -> Result<AstForAudioClassification, LoadError> {
    let config_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| LoadError::io(&config_path, e))?;
    let config = PeftLoraConfig::from_json(&text, &config_path.display().to_string())?;
    let weights_path = dir.join("adapter_model.safetensors");
    let bytes = std::fs::read(&weights_path).map_err(|e| LoadError::io(&weights_path, e))?;
    merge(model, &config, &bytes, &weights_path.display().to_string())
}

/// [`merge_peft_lora`] on the contents of `adapter_config.json` and
/// `adapter_model.safetensors`; the sources name them in errors.
pub fn merge_peft_lora_bytes(
    model: AstForAudioClassification,
    config_json: &str,
    config_source: &str,
    bytes: &[u8],
    source: &str,
) -> Result<AstForAudioClassification, LoadError> {
    let config = PeftLoraConfig::from_json(config_json, config_source)?;
    merge(model, &config, bytes, source)
}

impl PeftLoraConfig {
    /// Parses and checks `adapter_config.json`; `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self, LoadError> {
        let config: Self = serde_json::from_str(text).map_err(|e| LoadError::Json {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        let refuse = |message: String| {
            Err(LoadError::Config {
                file: source.to_string(),
                message,
            })
        };
        if let Some(kind) = config.peft_type.as_deref().filter(|k| *k != "LORA") {
            return refuse(format!(
                "peft_type is {kind}; only LORA adapters can be imported"
            ));
        }
        if config.r == 0 {
            return refuse("`r` should be a positive integer, got 0".into());
        }
        if !config.lora_alpha.is_finite() {
            return refuse(format!(
                "`lora_alpha` should be a finite number, got {}",
                config.lora_alpha
            ));
        }
        Ok(config)
    }
}

fn merge(
    mut model: AstForAudioClassification,
    config: &PeftLoraConfig,
    bytes: &[u8],
    source: &str,
) -> Result<AstForAudioClassification, LoadError> {
    let source = source.to_string();
    let device = model.head.dense.weight.device();
    let weights = Weights::from_bytes(bytes, &source, &device)?;
    let scale = config.scale() as f32;
    let r = config.r;
    for name in weights.names() {
        let Some(module) = name
            .strip_prefix("base_model.model.")
            .and_then(|n| n.strip_suffix(".lora_A.weight"))
        else {
            continue;
        };
        let Some(linear) = linear_mut(&mut model, module) else {
            weights.problem(TensorProblem::Unexpected { name: name.clone() });
            continue;
        };
        let [d_in, d_out] = linear.weight.dims();
        let b_name = format!("base_model.model.{module}.lora_B.weight");
        let (Some(a), Some(b)) = (
            weights.host_with_shape(&name, &[r, d_in]),
            weights.host_with_shape(&b_name, &[d_out, r]),
        ) else {
            continue;
        };
        // ΔW (burn layout [in, out]) = scale · Aᵀ Bᵀ.
        let a_t = Tensor::<2>::from_data(
            TensorData::new(transpose(&a.data, r, d_in), [d_in, r]),
            &device,
        );
        let b_t = Tensor::<2>::from_data(
            TensorData::new(transpose(&b.data, d_out, r), [r, d_out]),
            &device,
        );
        let merged = linear.weight.val() + a_t.matmul(b_t) * scale as f64;
        linear.weight = Param::from_tensor(merged);
    }
    // Heads retrained with `modules_to_save`.
    let head_prefix = "base_model.model.classifier.dense.modules_to_save.default";
    if weights.contains(&format!("{head_prefix}.weight")) {
        let classes = model.head.dense.weight.dims()[1];
        let d = model.head.dense.weight.dims()[0];
        model.head.dense = weights.root().pp(head_prefix).linear(d, classes, true);
    }
    weights.skip_prefix("base_model.model.classifier.");
    weights.finish()?;
    Ok(model)
}
