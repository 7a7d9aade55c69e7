//! Initialisers of the PETL modules, in the two modes ([`Init`]: sound by default, the paper's under `paper_compat`).

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

/// How new PETL modules start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Starting as the identity where a method allows it (adapter up-projections and LoRA `B`
    /// at zero), so training starts from the pre-trained model.
    Sound,
    /// What the reference code effectively does (`--paper-compat`): every new Linear
    /// re-initialised with `N(0, 0.02²)` by `from_pretrained`, and its other quirks.
    Paper,
}

/// Standard deviation of `transformers`' `_init_weights` for new Linear layers (AST
/// `initializer_range`), which is what every Linear added by PETL_AST effectively starts from.
pub const HF_INIT_STD: f64 = 0.02;

/// A bias-optional Linear `[d_input, d_output]` with weights drawn from `dist` and zero bias.
pub fn linear(
    d_input: usize,
    d_output: usize,
    bias: bool,
    dist: Distribution,
    device: &Device,
) -> Linear {
    Linear {
        weight: Param::from_tensor(Tensor::random([d_input, d_output], dist, device)),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_output], device))),
    }
}

/// A Linear that starts at exactly zero (the "up" side of adapters and LoRA in the sound mode).
pub fn zero_linear(d_input: usize, d_output: usize, bias: bool, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(Tensor::zeros([d_input, d_output], device)),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_output], device))),
    }
}

/// Kaiming-uniform for a `d_input → d_output` projection, as `nn.Linear` does by default:
/// `U(±1/√d_input)`.
pub fn kaiming(d_input: usize) -> Distribution {
    let bound = 1.0 / (d_input as f64).sqrt();
    Distribution::Uniform(-bound, bound)
}

/// `N(0, 0.02²)`.
pub fn hf_normal() -> Distribution {
    Distribution::Normal(0.0, HF_INIT_STD)
}

/// VPT's uniform bound for prompt tokens, `√(6 / (3·patch² + d))` (0.0625 for AST-base).
pub fn prompt_bound(patch_size: usize, d: usize) -> f64 {
    (6.0 / (3 * patch_size * patch_size + d) as f64).sqrt()
}
