//! From audio to labels: the feature extractor and the model together, as the CLI and the web app
//! use them.

use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::audio::{Audio, AudioError, FeatureExtractor};
use crate::model::{AstForAudioClassification, Checkpoint, LoadError, LoadOptions};

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
    pub model: AstForAudioClassification,
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
        let mut config = checkpoint.preprocessor.clone();
        config.max_length = model.ast.max_length;
        config.num_mel_bins = checkpoint.config.num_mel_bins;
        let extractor = FeatureExtractor::new(config)?;
        let labels = match options.new_head {
            Some(n) => (0..n).map(|i| format!("LABEL_{i}")).collect(),
            None => checkpoint.config.labels().unwrap_or_default(),
        };
        Ok(Self {
            model,
            extractor,
            labels,
            multi_label: checkpoint.config.is_multi_label(),
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

    /// Scores of each label: softmax probabilities, or sigmoids for a multi-label model.
    pub fn scores(&self, logits: &[f32]) -> Vec<f32> {
        let t = Tensor::<1>::from_data(
            TensorData::new(logits.to_vec(), [logits.len()]),
            &self.device,
        );
        let scores = if self.multi_label {
            sigmoid(t)
        } else {
            softmax(t, 0)
        };
        scores.into_data().try_to_vec::<f32>().unwrap_or_default()
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

/// Rows of a `[batch, n]` tensor.
pub fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, n] = t.dims();
    let values = t.into_data().try_to_vec::<f32>().unwrap_or_default();
    values.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
}
