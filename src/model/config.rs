//! [`AstConfig`]: the Hugging Face `config.json` of an Audio Spectrogram Transformer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::LoadError;

/// Hyper-parameters of an Audio Spectrogram Transformer, deserialised from the Hugging Face
/// `config.json` with its own key names (`ASTConfig` in `transformers`).
///
/// Unknown keys are kept in [`AstConfig::extra`] so that a config read and written again loses
/// nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AstConfig {
    /// Width `d` of every token.
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    /// Number of encoder layers `L`.
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Number of attention heads; must divide `hidden_size`.
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    /// Width of the MLP inside each layer.
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    /// MLP activation: `gelu` (exact, erf), `gelu_new` / `gelu_pytorch_tanh` (tanh
    /// approximation) or `relu`.
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    /// Standard deviation of the truncated-normal initialiser of new weights.
    #[serde(default = "defaults::initializer_range")]
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm.
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Side of the square patch (in mel bins and frames).
    #[serde(default = "defaults::patch_size")]
    pub patch_size: usize,
    /// Whether the query/key/value projections have a bias.
    #[serde(default = "defaults::qkv_bias")]
    pub qkv_bias: bool,
    /// Patch stride along the mel (frequency) axis.
    #[serde(default = "defaults::stride")]
    pub frequency_stride: usize,
    /// Patch stride along the frame (time) axis.
    #[serde(default = "defaults::stride")]
    pub time_stride: usize,
    /// Number of frames the position embeddings were made for.
    #[serde(default = "defaults::max_length")]
    pub max_length: usize,
    /// Number of mel bins of the input spectrogram.
    #[serde(default = "defaults::num_mel_bins")]
    pub num_mel_bins: usize,
    /// Class index (as a decimal string, as Hugging Face writes it) to label name.
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    /// Label name to class index.
    #[serde(default)]
    pub label2id: BTreeMap<String, serde_json::Value>,
    /// `single_label_classification` (softmax) or `multi_label_classification` (sigmoid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// Every other key of the file, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod defaults {
    pub fn hidden_size() -> usize {
        768
    }
    pub fn num_hidden_layers() -> usize {
        12
    }
    pub fn num_attention_heads() -> usize {
        12
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn hidden_act() -> String {
        "gelu".into()
    }
    pub fn initializer_range() -> f64 {
        0.02
    }
    pub fn layer_norm_eps() -> f64 {
        1e-12
    }
    pub fn patch_size() -> usize {
        16
    }
    pub fn qkv_bias() -> bool {
        true
    }
    pub fn stride() -> usize {
        10
    }
    pub fn max_length() -> usize {
        1024
    }
    pub fn num_mel_bins() -> usize {
        128
    }
}

impl Default for AstConfig {
    /// The AST-base configuration (`ASTConfig()` in `transformers`), with no labels.
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// Activation of the encoder MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x Φ(x)` with the error function.
    Gelu,
    /// GELU with the tanh approximation.
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

impl AstConfig {
    /// Parses and validates a `config.json`; `source` names the file in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self, LoadError> {
        let config: Self = serde_json::from_str(text).map_err(|e| LoadError::Json {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| LoadError::Config {
            file: source.to_string(),
            message,
        })?;
        Ok(config)
    }

    /// Serialises the config in the Hugging Face layout.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// Checks that the hyper-parameters describe a buildable model.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("patch_size", self.patch_size),
            ("frequency_stride", self.frequency_stride),
            ("time_stride", self.time_stride),
            ("max_length", self.max_length),
            ("num_mel_bins", self.num_mel_bins),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("`{name}` must be a positive integer, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_mel_bins < self.patch_size {
            return Err(format!(
                "`num_mel_bins` ({}) is smaller than `patch_size` ({})",
                self.num_mel_bins, self.patch_size
            ));
        }
        if self.max_length < self.patch_size {
            return Err(format!(
                "`max_length` ({}) is smaller than `patch_size` ({})",
                self.max_length, self.patch_size
            ));
        }
        // Guard against configs that would allocate absurd amounts of memory.
        const LIMIT: usize = 1 << 16;
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("max_length", self.max_length),
            ("num_mel_bins", self.num_mel_bins),
        ] {
            if value > LIMIT {
                return Err(format!("`{name}` = {value} is larger than {LIMIT}"));
            }
        }
        self.activation()?;
        self.labels()?;
        Ok(())
    }

    /// The MLP activation named by `hidden_act`.
    pub fn activation(&self) -> Result<Activation, String> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(format!(
                "`hidden_act` \"{other}\" is not supported (use gelu, gelu_new or relu)"
            )),
        }
    }

    /// Size of the attention head, `hidden_size / num_attention_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of patches along the mel axis.
    pub fn frequency_out_dim(&self) -> usize {
        (self.num_mel_bins - self.patch_size) / self.frequency_stride + 1
    }

    /// Number of patches along the time axis for inputs of `max_length` frames.
    pub fn time_out_dim(&self, max_length: usize) -> usize {
        (max_length.max(self.patch_size) - self.patch_size) / self.time_stride + 1
    }

    /// Number of tokens for inputs of `max_length` frames: patches + CLS + distillation.
    pub fn num_tokens(&self, max_length: usize) -> usize {
        self.frequency_out_dim() * self.time_out_dim(max_length) + 2
    }

    /// Values in the weight matrices and embeddings of the backbone for inputs of `max_length`
    /// frames (biases and LayerNorms left out): a lower bound on what a `model.safetensors` of
    /// this config holds, checked before anything is allocated for it.
    pub fn backbone_weight_values(&self, max_length: usize) -> u128 {
        let (d, i, p) = (
            self.hidden_size as u128,
            self.intermediate_size as u128,
            self.patch_size as u128,
        );
        let layers = self.num_hidden_layers as u128;
        layers * (4 * d * d + 2 * d * i) + d * p * p + self.num_tokens(max_length) as u128 * d
    }

    /// Number of classes (the size of `id2label`).
    pub fn num_labels(&self) -> usize {
        self.id2label.len()
    }

    /// Label names ordered by class index; `id2label` must hold exactly the ids `0..n`.
    pub fn labels(&self) -> Result<Vec<String>, String> {
        let mut labels = vec![None; self.id2label.len()];
        for (id, name) in &self.id2label {
            let index: usize = id
                .parse()
                .map_err(|_| format!("`id2label` key \"{id}\" is not an integer"))?;
            let slot = labels.get_mut(index).ok_or_else(|| {
                format!(
                    "`id2label` has {} entries but an id {index}",
                    self.id2label.len()
                )
            })?;
            *slot = Some(name.clone());
        }
        Ok(labels.into_iter().map(|l| l.unwrap_or_default()).collect())
    }

    /// Replaces the label set (`id2label` and `label2id`).
    pub fn set_labels(&mut self, labels: &[String]) {
        self.id2label = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone()))
            .collect();
        self.label2id = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), serde_json::Value::from(i)))
            .collect();
    }

    /// Whether the classifier is multi-label (sigmoid scores) rather than softmax.
    pub fn is_multi_label(&self) -> bool {
        self.problem_type.as_deref() == Some("multi_label_classification")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ast_base() {
        let c = AstConfig::default();
        assert_eq!(c.hidden_size, 768);
        assert_eq!(c.frequency_out_dim(), 12);
        assert_eq!(c.time_out_dim(1024), 101);
        assert_eq!(c.num_tokens(1024), 1214);
        assert_eq!(c.activation(), Ok(Activation::Gelu));
    }

    #[test]
    fn weight_values_of_ast_base() {
        // 12 × (4·768² + 2·768·3072) + 768·256 + 1214·768: AST-base's 86.2 M minus biases,
        // LayerNorms, CLS/distillation tokens.
        let c = AstConfig::default();
        assert_eq!(c.backbone_weight_values(1024), 86_063_616);
    }

    #[test]
    fn reads_hf_keys_and_keeps_unknown_ones() {
        let text = r#"{"hidden_size": 64, "num_attention_heads": 4, "frequency_stride": 16,
            "time_stride": 12, "max_length": 128, "id2label": {"1": "b", "0": "a"},
            "model_type": "audio-spectrogram-transformer"}"#;
        let c = AstConfig::from_json(text, "config.json").unwrap();
        assert_eq!(c.frequency_out_dim(), 8);
        assert_eq!(c.time_out_dim(128), 10);
        assert_eq!(c.labels().unwrap(), vec!["a", "b"]);
        assert_eq!(c.extra["model_type"], "audio-spectrogram-transformer");
        let again = AstConfig::from_json(&c.to_json(), "again").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_configs_name_the_file_and_the_value() {
        let err = AstConfig::from_json(
            r#"{"hidden_size": 100, "num_attention_heads": 12}"#,
            "m/config.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("m/config.json") && err.contains("100"),
            "{err}"
        );
        let err = AstConfig::from_json(r#"{"hidden_act": "swish"}"#, "c.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("swish"), "{err}");
        let err = AstConfig::from_json(r#"{"id2label": {"0": "a", "5": "b"}}"#, "c.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("id 5"), "{err}");
        let err = AstConfig::from_json("{not json", "c.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.json"), "{err}");
    }
}
