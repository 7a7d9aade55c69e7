//! A Hugging Face model folder (`config.json`, `model.safetensors`, optional
//! `preprocessor_config.json`) and loading it into an [`AstForAudioClassification`].

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::ast::{AstForAudioClassification, AstModel, ClassifierHead};
use super::config::AstConfig;
use super::error::LoadError;
use super::position::{Grid, PositionMode};
use super::weights::{WeightPath, Weights};
use crate::audio::{AudioError, FeatureExtractor, FeatureExtractorConfig};

/// Name of the config file in a model folder.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the weights file in a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the feature-extractor config in a model folder.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

/// Longest input accepted, in frames (the `max_length` limit of `config.json`).
pub const MAX_INPUT_FRAMES: usize = 1 << 16;
/// Most classes a head may have (AudioSet has 527; ImageNet-21k 21,841).
pub const MAX_CLASSES: usize = 1 << 16;

/// Weights a config may describe beyond four times what its file holds (4 MiB of `f32`).
const SLACK_VALUES: u128 = 1 << 20;

/// Prefix of the backbone in an `ASTForAudioClassification` checkpoint.
pub const BACKBONE_PREFIX: &str = "audio_spectrogram_transformer";
/// Prefix of the head in an `ASTForAudioClassification` checkpoint.
pub const HEAD_PREFIX: &str = "classifier";

/// How to build the model from a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Input length in frames; `None` keeps the checkpoint's `max_length`.
    pub max_length: Option<usize>,
    /// What to do with position embeddings when `max_length` changes the number of patches.
    pub position: PositionMode,
    /// `Some(n)`: ignore the checkpoint's classifier and create a fresh head of `n` classes.
    pub new_head: Option<usize>,
}

/// A checkpoint in memory: the parsed configs and the raw weight bytes.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// `config.json`.
    pub config: AstConfig,
    /// `preprocessor_config.json`, or the AST defaults when the folder has none.
    pub preprocessor: FeatureExtractorConfig,
    /// Contents of `model.safetensors`.
    pub weights: Vec<u8>,
    /// Where the weights came from (a path or a URL), for messages.
    pub weights_source: String,
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))
}

impl Checkpoint {
    /// The feature extractor of this checkpoint for inputs of `max_length` frames: its
    /// preprocessor config with the model's mel bins.
    pub fn extractor(&self, max_length: usize) -> Result<FeatureExtractor, AudioError> {
        FeatureExtractor::new(FeatureExtractorConfig {
            max_length,
            num_mel_bins: self.config.num_mel_bins,
            ..self.preprocessor.clone()
        })
    }

    /// Reads a Hugging Face model folder.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(LoadError::Io {
                file: dir.display().to_string(),
                message:
                    "not a directory (expected a folder with config.json and model.safetensors)"
                        .into(),
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        let weights_path: PathBuf = dir.join(WEIGHTS_FILE);
        let preprocessor_path = dir.join(PREPROCESSOR_FILE);
        let config = read_text(&config_path)?;
        let preprocessor = if preprocessor_path.exists() {
            Some(read_text(&preprocessor_path)?)
        } else {
            None
        };
        let weights = std::fs::read(&weights_path).map_err(|e| LoadError::io(&weights_path, e))?;
        Self::from_parts(
            &config,
            &config_path.display().to_string(),
            preprocessor
                .as_deref()
                .map(|text| (text, preprocessor_path.display().to_string())),
            weights,
            &weights_path.display().to_string(),
        )
    }

    /// Builds a checkpoint from file contents (the web app's path); the names serve messages.
    pub fn from_parts(
        config_json: &str,
        config_source: &str,
        preprocessor: Option<(&str, String)>,
        weights: Vec<u8>,
        weights_source: &str,
    ) -> Result<Self, LoadError> {
        let config = AstConfig::from_json(config_json, config_source)?;
        let preprocessor = match preprocessor {
            Some((text, source)) => {
                FeatureExtractorConfig::from_json(text, &source).map_err(|e| LoadError::Config {
                    file: source.clone(),
                    message: e.to_string(),
                })?
            }
            None => FeatureExtractorConfig::default(),
        };
        // Parse once now so that a broken file is reported before any model is built.
        safetensors::SafeTensors::deserialize(&weights).map_err(|e| LoadError::Safetensors {
            file: weights_source.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            config,
            preprocessor,
            weights,
            weights_source: weights_source.to_string(),
        })
    }

    /// Loads the full classifier. The head comes from the checkpoint unless
    /// [`LoadOptions::new_head`] asks for a fresh one.
    pub fn load_classifier(
        &self,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<AstForAudioClassification, LoadError> {
        let weights = Weights::from_bytes(&self.weights, &self.weights_source, device)?;
        let head_values = match options.new_head {
            Some(_) => 0,
            None => (self.config.hidden_size * self.config.num_labels()) as u128,
        };
        self.check_sizes(&weights, options, head_values)?;
        let backbone_prefix = self.backbone_prefix(&weights);
        let ast = self.load_backbone_from(&weights, &backbone_prefix, options);
        let head = match options.new_head {
            Some(n) => {
                weights.skip_prefix(HEAD_PREFIX);
                ClassifierHead::new(&self.config, n, device)
            }
            None => ClassifierHead::load(
                &self.config,
                &weights.root().pp(HEAD_PREFIX),
                self.config.num_labels(),
            ),
        };
        weights.finish()?;
        Ok(AstForAudioClassification { ast, head })
    }

    /// Loads only the backbone; a classifier in the file is ignored.
    pub fn load_backbone(
        &self,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<AstModel, LoadError> {
        let weights = Weights::from_bytes(&self.weights, &self.weights_source, device)?;
        self.check_sizes(&weights, options, 0)?;
        let prefix = self.backbone_prefix(&weights);
        let ast = self.load_backbone_from(&weights, &prefix, options);
        weights.skip_prefix(HEAD_PREFIX);
        weights.finish()?;
        Ok(ast)
    }

    /// Refuses, before anything is allocated, what would build a model far larger than the file:
    /// a `max_length` or a new head beyond the config limits, or a `config.json` describing more
    /// weights than `model.safetensors` holds (missing tensors are filled with zeros while every
    /// problem is collected, so a config claiming a huge model would otherwise allocate it).
    fn check_sizes(
        &self,
        weights: &Weights,
        options: &LoadOptions,
        head_values: u128,
    ) -> Result<(), LoadError> {
        let config = &self.config;
        let max_length = options.max_length.unwrap_or(config.max_length);
        if !(config.patch_size..=MAX_INPUT_FRAMES).contains(&max_length) {
            return Err(LoadError::Config {
                file: self.weights_source.clone(),
                message: format!(
                    "an input length of {max_length} frames is not possible for this model: it \
                     must be {}..={MAX_INPUT_FRAMES} (the patch size up to the config limit)",
                    config.patch_size
                ),
            });
        }
        if let Some(n) = options.new_head {
            if !(1..=MAX_CLASSES).contains(&n) {
                return Err(LoadError::Config {
                    file: self.weights_source.clone(),
                    message: format!("a new head needs 1..={MAX_CLASSES} classes, got {n}"),
                });
            }
        }
        // Zeros stand in for missing tensors so that every problem is listed at once; that
        // is bounded by a few times what the file holds (a moderately broken file still gets
        // the full list), not by what the config claims.
        let needed = config.backbone_weight_values(config.max_length) + head_values;
        let held = weights.total_values();
        if needed > held.saturating_mul(4) + SLACK_VALUES {
            return Err(LoadError::Config {
                file: self.weights_source.clone(),
                message: format!(
                    "the config describes a model with at least {needed} weights but the file \
                     holds only {held} values: config.json and model.safetensors do not belong \
                     together (re-download the folder, or check `hidden_size`, \
                     `num_hidden_layers`, `intermediate_size` and `id2label`)"
                ),
            });
        }
        Ok(())
    }

    /// `audio_spectrogram_transformer` for an `ASTForAudioClassification` file, empty for a bare
    /// `ASTModel` file.
    fn backbone_prefix(&self, weights: &Weights) -> String {
        if weights.contains("embeddings.cls_token") {
            String::new()
        } else {
            BACKBONE_PREFIX.to_string()
        }
    }

    fn load_backbone_from(
        &self,
        weights: &Weights,
        prefix: &str,
        options: &LoadOptions,
    ) -> AstModel {
        let root = weights.root();
        let path = if prefix.is_empty() {
            root
        } else {
            root.pp(prefix)
        };
        let max_length = options.max_length.unwrap_or(self.config.max_length);
        let position =
            self.position_embeddings(&path.pp("embeddings"), max_length, options.position);
        AstModel::load(&self.config, &path, position, max_length)
    }

    /// The checkpoint's position embeddings adapted to `max_length` frames.
    fn position_embeddings(
        &self,
        path: &WeightPath,
        max_length: usize,
        mode: PositionMode,
    ) -> Tensor<3> {
        let config = &self.config;
        let d = config.hidden_size;
        let device = path.weights().device();
        let stored_tokens = config.num_tokens(config.max_length);
        let tokens = config.num_tokens(max_length);
        let name = path.name("position_embeddings");
        let Some(host) = path
            .weights()
            .host_with_shape(&name, &[1, stored_tokens, d])
        else {
            return Tensor::zeros([1, tokens, d], device);
        };
        if tokens == stored_tokens {
            return Tensor::from_data(TensorData::new(host.data, [1, tokens, d]), device);
        }
        match mode {
            PositionMode::Zero => Tensor::zeros([1, tokens, d], device),
            PositionMode::Adapt => {
                let freq = config.frequency_out_dim();
                let grid = Grid {
                    data: host.data[2 * d..].to_vec(),
                    freq,
                    time: config.time_out_dim(config.max_length),
                    d,
                }
                .resize(freq, config.time_out_dim(max_length));
                let mut data = host.data[..2 * d].to_vec();
                data.extend(grid.data);
                Tensor::from_data(TensorData::new(data, [1, tokens, d]), device)
            }
        }
    }
}
