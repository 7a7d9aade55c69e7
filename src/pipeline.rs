//! From audio to labels: the feature extractor and the model together, as the CLI and the web app
//! use them.

use burn::tensor::{Device, Tensor, TensorData};

use crate::audio::{Audio, AudioError, FeatureExtractor};
use crate::model::{AstForAudioClassification, Checkpoint, LoadError, LoadOptions};
use crate::petl::checkpoint::{read_metadata, sha256_hex};
use crate::petl::{PetlConfig, PetlModel};

/// The network behind a [`Classifier`].
#[derive(Debug)]
pub enum Network {
    /// A checkpoint's own `ASTForAudioClassification`.
    Ast(AstForAudioClassification),
    /// An AST with PETL methods and a new head.
    Petl(PetlModel),
}

impl Network {
    /// Logits `[batch, classes]` of `[batch, max_length, mel]` inputs.
    pub fn forward(&self, input: Tensor<3>) -> Tensor<2> {
        match self {
            Self::Ast(m) => m.forward(input),
            Self::Petl(m) => m.forward(input),
        }
    }

    /// Input length in frames.
    pub fn max_length(&self) -> usize {
        match self {
            Self::Ast(m) => m.ast.max_length,
            Self::Petl(m) => m.ast.max_length,
        }
    }
}

/// Why a classifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The checkpoint does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The feature-extractor config is invalid.
    #[error(transparent)]
    Audio(#[from] AudioError),
}

/// A loaded classifier with its feature extractor and label names.
#[derive(Debug)]
pub struct Classifier {
    /// The model.
    pub model: Network,
    /// Turns 16 kHz audio into the `[max_length, mel]` input.
    pub extractor: FeatureExtractor,
    /// Label of each output.
    pub labels: Vec<String>,
    /// Whether scores are sigmoids (multi-label) rather than a softmax.
    pub multi_label: bool,
    device: Device,
}

impl Classifier {
    /// Loads the checkpoint's classifier; the extractor's `max_length` follows the model's.
    pub fn new(
        checkpoint: &Checkpoint,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        let model = checkpoint.load_classifier(options, device)?;
        let labels = match options.new_head {
            Some(n) => (0..n).map(|i| format!("LABEL_{i}")).collect(),
            None => checkpoint.config.labels().unwrap_or_default(),
        };
        Self::assemble(
            checkpoint,
            Network::Ast(model),
            labels,
            checkpoint.config.is_multi_label(),
            device,
        )
    }

    /// The checkpoint's classifier with a PEFT LoRA folder merged in.
    #[cfg(not(target_family = "wasm"))]
    pub fn with_peft(
        checkpoint: &Checkpoint,
        options: &LoadOptions,
        dir: &std::path::Path,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        let model = checkpoint.load_classifier(options, device)?;
        let model = crate::petl::peft::merge_peft_lora(model, dir)?;
        let labels = checkpoint.config.labels().unwrap_or_default();
        Self::assemble(
            checkpoint,
            Network::Ast(model),
            labels,
            checkpoint.config.is_multi_label(),
            device,
        )
    }

    /// The backbone of `checkpoint` with a petl-ast adapter file (its metadata names the method,
    /// the labels and the input length).
    pub fn with_adapter(
        checkpoint: &Checkpoint,
        bytes: &[u8],
        source: &str,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        let metadata = read_metadata(bytes, source)?;
        let options = LoadOptions {
            max_length: Some(metadata.max_length),
            position: metadata.petl.position_mode(),
            new_head: None,
        };
        let ast = checkpoint.load_backbone(&options, device)?;
        let hash = sha256_hex(&checkpoint.weights);
        let (model, metadata) =
            PetlModel::from_adapter_bytes(bytes, source, ast, &checkpoint.config, &hash, device)?;
        Self::assemble(
            checkpoint,
            Network::Petl(model),
            metadata.labels,
            false,
            device,
        )
    }

    /// The backbone of `checkpoint` with the trained tensors of a PETL_AST `state_dict`
    /// (safetensors); `petl` must describe the method it was trained with.
    pub fn with_petl_ast(
        checkpoint: &Checkpoint,
        petl: &PetlConfig,
        max_length: Option<usize>,
        bytes: &[u8],
        source: &str,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        let options = LoadOptions {
            max_length,
            position: petl.position_mode(),
            new_head: None,
        };
        let ast = checkpoint.load_backbone(&options, device)?;
        let classes = head_classes(bytes, source)?;
        let model =
            PetlModel::new(ast, &checkpoint.config, petl, classes, device).map_err(|e| {
                LoadError::Config {
                    file: source.to_string(),
                    message: e.to_string(),
                }
            })?;
        let model = model.import_petl_ast(&checkpoint.config, bytes, source)?;
        let labels = (0..classes).map(|i| format!("LABEL_{i}")).collect();
        Self::assemble(checkpoint, Network::Petl(model), labels, false, device)
    }

    /// A classifier around a model trained here (e.g. personalised in the browser).
    pub fn from_petl(
        checkpoint: &Checkpoint,
        model: PetlModel,
        labels: Vec<String>,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        Self::assemble(checkpoint, Network::Petl(model), labels, false, device)
    }

    fn assemble(
        checkpoint: &Checkpoint,
        model: Network,
        labels: Vec<String>,
        multi_label: bool,
        device: &Device,
    ) -> Result<Self, PipelineError> {
        let extractor = checkpoint.extractor(model.max_length())?;
        Ok(Self {
            model,
            extractor,
            labels,
            multi_label,
            device: device.clone(),
        })
    }

    /// The model input of one clip at any sample rate: `max_length × mel` values.
    pub fn features(&self, audio: &Audio) -> Result<Vec<f32>, AudioError> {
        self.extractor.extract_audio(audio)
    }

    /// Stacks feature matrices into a `[batch, max_length, mel]` tensor.
    pub fn batch(&self, features: &[Vec<f32>]) -> Tensor<3> {
        let (frames, bins) = self.extractor.input_shape();
        let data: Vec<f32> = features.iter().flatten().copied().collect();
        Tensor::from_data(
            TensorData::new(data, [features.len(), frames, bins]),
            &self.device,
        )
    }

    /// Logits of each clip.
    pub fn logits(&self, features: &[Vec<f32>]) -> Vec<Vec<f32>> {
        if features.is_empty() {
            return Vec::new();
        }
        let logits = self.model.forward(self.batch(features));
        rows(logits)
    }

    /// Logits of each clip, read back asynchronously (WebGPU in the browser has no blocking
    /// readback).
    pub async fn logits_async(&self, features: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, String> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let logits = self.model.forward(self.batch(features));
        let [_, n] = logits.dims();
        let values = logits
            .into_data_async()
            .await
            .map_err(|e| format!("reading the logits back from the device failed: {e:?}"))?
            .try_to_vec::<f32>()
            .map_err(|e| format!("the logits are not f32: {e:?}"))?;
        Ok(values.chunks(n.max(1)).map(<[f32]>::to_vec).collect())
    }

    /// Scores of each label: softmax probabilities, or sigmoids for a multi-label model.
    pub fn scores(&self, logits: &[f32]) -> Vec<f32> {
        if self.multi_label {
            logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect()
        } else {
            softmax(logits)
        }
    }

    /// The `k` best labels with their scores, best first.
    pub fn top_k(&self, logits: &[f32], k: usize) -> Vec<(String, f32)> {
        let scores = self.scores(logits);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        order
            .into_iter()
            .take(k)
            .map(|i| {
                let label = self
                    .labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("LABEL_{i}"));
                (label, scores[i])
            })
            .collect()
    }
}

/// Number of classes of the `classification_head` in a PETL_AST state_dict.
fn head_classes(bytes: &[u8], source: &str) -> Result<usize, LoadError> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| LoadError::Safetensors {
        file: source.to_string(),
        message: e.to_string(),
    })?;
    let head = st
        .tensor("classification_head.weight")
        .map_err(|_| LoadError::Tensors {
            file: source.to_string(),
            problems: vec![crate::model::TensorProblem::Missing {
                name: "classification_head.weight".into(),
                expected: vec![],
            }],
        })?;
    Ok(head.shape().first().copied().unwrap_or(0))
}

/// Rows of a `[batch, n]` tensor.
pub fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, n] = t.dims();
    let values = t.into_data().try_to_vec::<f32>().unwrap_or_default();
    values.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
}

/// Softmax of `logits` (stable: the maximum is subtracted first).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}
