//! Patch embedding of the Audio Spectrogram Transformer (`ASTEmbeddings`).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use super::config::AstConfig;
use super::weights::WeightPath;

/// Turns a log-Mel spectrogram into tokens: a `patch_size²` convolution with strides
/// (`frequency_stride`, `time_stride`) over the (mel × frame) image, flattened frequency-major,
/// after a CLS and a distillation token, plus learned position embeddings.
///
/// Gong et al., "AST: Audio Spectrogram Transformer", Interspeech 2021 (arXiv 2104.01778).
#[derive(Module, Debug)]
pub struct AstEmbeddings {
    /// CLS token, `[1, 1, d]`.
    pub cls_token: Param<Tensor<3>>,
    /// Distillation token, `[1, 1, d]`.
    pub distillation_token: Param<Tensor<3>>,
    /// Position embeddings, `[1, num_tokens, d]`.
    pub position: Param<Tensor<3>>,
    /// Patch projection, weight `[d, 1, patch, patch]`.
    pub patch: Conv2d,
}

impl AstEmbeddings {
    /// A randomly initialised embedding for inputs of `max_length` frames (tokens and position
    /// embeddings truncated-normal with `initializer_range`, as `transformers` does for new weights).
    pub fn new(config: &AstConfig, max_length: usize, device: &Device) -> Self {
        let d = config.hidden_size;
        let std = config.initializer_range;
        let normal = |shape: [usize; 3]| {
            Param::from_tensor(Tensor::random(
                shape,
                burn::tensor::Distribution::Normal(0.0, std),
                device,
            ))
        };
        Self {
            cls_token: normal([1, 1, d]),
            distillation_token: normal([1, 1, d]),
            position: normal([1, config.num_tokens(max_length), d]),
            patch: patch_conv(config).init(device),
        }
    }

    /// Loads `cls_token`, `distillation_token`, `patch_embeddings.projection` from `path`;
    /// the position embeddings are given (they may have been resized).
    pub fn load(config: &AstConfig, path: &WeightPath, position: Tensor<3>) -> Self {
        let d = config.hidden_size;
        let p = config.patch_size;
        let mut patch = patch_conv(config).init(path.weights().device());
        let projection = path.pp("patch_embeddings.projection");
        patch.weight = projection.tensor("weight", [d, 1, p, p]);
        patch.bias = Some(projection.tensor("bias", [d]));
        Self {
            cls_token: path.tensor("cls_token", [1, 1, d]),
            distillation_token: path.tensor("distillation_token", [1, 1, d]),
            position: Param::from_tensor(position),
            patch,
        }
    }

    /// Patch tokens without the two special tokens and without position embeddings.
    ///
    /// # Shapes
    /// - input: `[batch, frames, mel]` (the feature extractor's layout)
    /// - output: `[batch, patches, d]`, patches ordered frequency-major
    pub fn patch_tokens(&self, input: Tensor<3>) -> Tensor<3> {
        let image = input.unsqueeze_dim::<4>(1).swap_dims(2, 3);
        let patches = self.patch.forward(image);
        let [batch, d, f, t] = patches.dims();
        patches.reshape([batch, d, f * t]).swap_dims(1, 2)
    }

    /// Full embedding: `[CLS, DIST, patches] + position`.
    ///
    /// # Shapes
    /// - input: `[batch, frames, mel]` with `frames` the length the position embeddings were
    ///   made for
    /// - output: `[batch, num_tokens, d]`
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let patches = self.patch_tokens(input);
        let [batch, _, d] = patches.dims();
        let tokens = Tensor::cat(
            vec![
                self.cls_token.val().expand([batch, 1, d]),
                self.distillation_token.val().expand([batch, 1, d]),
                patches,
            ],
            1,
        );
        let position = self.position.val();
        assert_eq!(
            tokens.dims()[1],
            position.dims()[1],
            "input length gives {} tokens but the position embeddings have {}",
            tokens.dims()[1],
            position.dims()[1]
        );
        tokens + position
    }
}

fn patch_conv(config: &AstConfig) -> Conv2dConfig {
    let p = config.patch_size;
    Conv2dConfig::new([1, config.hidden_size], [p, p])
        .with_stride([config.frequency_stride, config.time_stride])
}
