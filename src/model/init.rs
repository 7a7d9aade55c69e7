//! Fresh initialisation of layers, as `transformers`' `ASTPreTrainedModel._init_weights` does it.

use burn::module::Param;
use burn::nn::Linear;

use super::norm::LayerNorm;
use burn::tensor::{Device, Distribution, Tensor};

use super::config::AstConfig;

/// A Linear with weights `N(0, initializer_range²)` and zero bias.
pub fn linear(
    config: &AstConfig,
    d_input: usize,
    d_output: usize,
    bias: bool,
    device: &Device,
) -> Linear {
    Linear {
        weight: Param::from_tensor(Tensor::random(
            [d_input, d_output],
            Distribution::Normal(0.0, config.initializer_range),
            device,
        )),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_output], device))),
    }
}

/// A LayerNorm with unit gain and zero bias.
pub fn layer_norm(config: &AstConfig, d: usize, device: &Device) -> LayerNorm {
    LayerNorm::new(d, config.layer_norm_eps, device)
}
