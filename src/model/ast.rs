//! The Audio Spectrogram Transformer (`ASTModel`) and its classifier
//! (`ASTForAudioClassification`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::config::AstConfig;
use super::embeddings::AstEmbeddings;
use super::init;
use super::layer::EncoderLayer;
use super::norm::LayerNorm;
use super::weights::WeightPath;

/// The tokens `ASTModel`'s pooler averages: CLS and distillation.
const POOLED_TOKENS: usize = 2;

/// The AST backbone: embeddings, `L` pre-LN encoder layers, final LayerNorm.
///
/// Gong et al., "AST: Audio Spectrogram Transformer", Interspeech 2021 (arXiv 2104.01778).
#[derive(Module, Debug)]
pub struct AstModel {
    /// Patch, special-token and position embeddings.
    pub embeddings: AstEmbeddings,
    /// Encoder layers (`encoder.layer.{i}`).
    pub layers: Vec<EncoderLayer>,
    /// Final LayerNorm (`layernorm`).
    pub norm: LayerNorm,
    /// Number of input frames the position embeddings are made for.
    #[module(skip)]
    pub max_length: usize,
}

/// Outputs of [`AstModel::forward_all`].
#[derive(Debug, Clone)]
pub struct AstOutput {
    /// Input of every layer and output of the last (before the final LayerNorm), like
    /// `output_hidden_states=True`: `L + 1` tensors `[batch, tokens, d]`.
    pub hidden_states: Vec<Tensor<3>>,
    /// After the final LayerNorm, `[batch, tokens, d]`.
    pub last_hidden_state: Tensor<3>,
}

impl AstModel {
    /// Random initialisation for inputs of `max_length` frames.
    pub fn new(config: &AstConfig, max_length: usize, device: &Device) -> Self {
        Self {
            embeddings: AstEmbeddings::new(config, max_length, device),
            layers: (0..config.num_hidden_layers)
                .map(|_| EncoderLayer::new(config, device))
                .collect(),
            norm: init::layer_norm(config, config.hidden_size, device),
            max_length,
        }
    }

    /// Loads an `ASTModel` stored under `path`, with the given (possibly resized) position
    /// embeddings for inputs of `max_length` frames.
    pub fn load(
        config: &AstConfig,
        path: &WeightPath,
        position: Tensor<3>,
        max_length: usize,
    ) -> Self {
        let encoder = path.pp("encoder.layer");
        Self {
            embeddings: AstEmbeddings::load(config, &path.pp("embeddings"), position),
            layers: (0..config.num_hidden_layers)
                .map(|i| EncoderLayer::load(config, &encoder.pp(i)))
                .collect(),
            norm: path
                .pp("layernorm")
                .layer_norm(config.hidden_size, config.layer_norm_eps),
            max_length,
        }
    }

    /// # Shapes
    /// - input: `[batch, max_length, mel]` normalised fbank
    /// - output: `[batch, tokens, d]` after the final LayerNorm
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let x = self
            .layers
            .iter()
            .fold(self.embeddings.forward(input), |x, layer| layer.forward(x));
        self.final_norm(x)
    }

    /// [`Self::pool`] of [`Self::forward`], computing in the last layer only the two rows the
    /// pooler reads (every token stays a key and value of its attention): the same values
    /// for five sixths of one layer's Linear work less.
    ///
    /// # Shapes
    /// - input: `[batch, max_length, mel]` normalised fbank
    /// - output: `[batch, d]`
    pub fn pooled(&self, input: Tensor<3>) -> Tensor<2> {
        let Some((last, layers)) = self.layers.split_last() else {
            return Self::pool(self.forward(input));
        };
        let x = layers
            .iter()
            .fold(self.embeddings.forward(input), |x, layer| layer.forward(x));
        Self::pool(self.final_norm(last.forward_rows(x, 0..POOLED_TOKENS)))
    }

    /// The final LayerNorm (`layernorm`, through [`crate::kernels::layer_norm`]).
    pub fn final_norm(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm.forward(x)
    }

    /// Forward pass that keeps every intermediate hidden state.
    pub fn forward_all(&self, input: Tensor<3>) -> AstOutput {
        let mut hidden_states = vec![self.embeddings.forward(input)];
        for layer in &self.layers {
            let next = layer.forward(hidden_states.last().expect("non-empty").clone());
            hidden_states.push(next);
        }
        let last_hidden_state = self.final_norm(hidden_states.last().expect("non-empty").clone());
        AstOutput {
            hidden_states,
            last_hidden_state,
        }
    }

    /// `ASTModel`'s pooled output: the mean of the CLS and distillation tokens.
    ///
    /// # Shapes
    /// - last_hidden_state: `[batch, tokens, d]`
    /// - output: `[batch, d]`
    pub fn pool(last_hidden_state: Tensor<3>) -> Tensor<2> {
        let [batch, _, d] = last_hidden_state.dims();
        let cls_dist = last_hidden_state.narrow(1, 0, POOLED_TOKENS);
        (cls_dist.sum_dim(1) / POOLED_TOKENS as f64).reshape([batch, d])
    }
}

/// `ASTMLPHead`: LayerNorm then Linear.
#[derive(Module, Debug)]
pub struct ClassifierHead {
    /// `classifier.layernorm`.
    pub norm: LayerNorm,
    /// `classifier.dense`.
    pub dense: Linear,
}

impl ClassifierHead {
    /// Fresh head for `num_labels` classes.
    pub fn new(config: &AstConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            norm: init::layer_norm(config, config.hidden_size, device),
            dense: init::linear(config, config.hidden_size, num_labels, true, device),
        }
    }

    /// Loads `layernorm` and `dense` under `path` (`classifier`).
    pub fn load(config: &AstConfig, path: &WeightPath, num_labels: usize) -> Self {
        let d = config.hidden_size;
        Self {
            norm: path.pp("layernorm").layer_norm(d, config.layer_norm_eps),
            dense: path.pp("dense").linear(d, num_labels, true),
        }
    }

    /// # Shapes
    /// - pooled: `[batch, d]`
    /// - output: `[batch, num_labels]`
    pub fn forward(&self, pooled: Tensor<2>) -> Tensor<2> {
        crate::kernels::linear(&self.dense, self.norm.forward(pooled))
    }
}

/// `ASTForAudioClassification`: the backbone and the head on the pooled CLS/distillation token.
#[derive(Module, Debug)]
pub struct AstForAudioClassification {
    /// The backbone (`audio_spectrogram_transformer`).
    pub ast: AstModel,
    /// The classification head (`classifier`).
    pub head: ClassifierHead,
}

impl AstForAudioClassification {
    /// Random initialisation for inputs of `max_length` frames, with `num_labels` outputs.
    pub fn new(config: &AstConfig, max_length: usize, num_labels: usize, device: &Device) -> Self {
        Self {
            ast: AstModel::new(config, max_length, device),
            head: ClassifierHead::new(config, num_labels, device),
        }
    }

    /// # Shapes
    /// - input: `[batch, max_length, mel]` normalised fbank
    /// - output: logits `[batch, num_labels]`
    pub fn forward(&self, input: Tensor<3>) -> Tensor<2> {
        self.head.forward(self.ast.pooled(input))
    }
}
