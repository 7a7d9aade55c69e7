//! The fixed tiny model the checkpoint and adapter targets load into.

use std::sync::OnceLock;

use crate::model::{AstConfig, AstForAudioClassification};

/// `config.json` of the tiny test checkpoint `tests/fixtures/models/ast-tiny-s10` (d 64,
/// 2 layers, 4 heads, 100 frames, 10 labels): the PETL_AST and PEFT fixtures were made for it.
pub const TINY_CONFIG_JSON: &str = r#"{
  "architectures": ["ASTForAudioClassification"],
  "frequency_stride": 10,
  "hidden_act": "gelu",
  "hidden_size": 64,
  "id2label": {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
               "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine"},
  "initializer_range": 0.02,
  "intermediate_size": 128,
  "layer_norm_eps": 1e-12,
  "max_length": 100,
  "model_type": "audio-spectrogram-transformer",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_mel_bins": 128,
  "patch_size": 16,
  "qkv_bias": true,
  "time_stride": 10
}"#;

/// [`TINY_CONFIG_JSON`], parsed.
pub fn tiny_config() -> &'static AstConfig {
    static CONFIG: OnceLock<AstConfig> = OnceLock::new();
    CONFIG.get_or_init(|| AstConfig::from_json(TINY_CONFIG_JSON, "tiny").expect("valid config"))
}

/// A randomly initialised `model.safetensors` for [`tiny_config`] (the base of adapter inputs;
/// their importers replace what they train, so the values do not matter).
pub fn tiny_weights() -> &'static [u8] {
    static WEIGHTS: OnceLock<Vec<u8>> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let config = tiny_config();
        let device = super::device();
        let model =
            AstForAudioClassification::new(config, config.max_length, config.num_labels(), &device);
        crate::model::save::safetensors_bytes(&model)
    })
}
