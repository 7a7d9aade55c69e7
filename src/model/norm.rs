//! The LayerNorm of every model in the crate: burn's parameters (γ, an optional β) with its ε
//! kept beside them, applied through [`crate::kernels::layer_norm`] so that no caller can miss
//! the CPU kernel. The fields are named as burn's `LayerNorm`, so module paths (adapter files,
//! training states) are the same.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// `y = (x − μ) / √(σ² + ε) · γ + β` over the last dim (PyTorch's `nn.LayerNorm`).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale γ `[d]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift β `[d]` (absent: no shift).
    pub beta: Option<Param<Tensor<1>>>,
    /// Added to the variance.
    pub epsilon: f64,
}

impl LayerNorm {
    /// Unit scale, zero shift.
    pub fn new(d: usize, epsilon: f64, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Some(Param::from_tensor(Tensor::zeros([d], device))),
            epsilon,
        }
    }

    /// # Shapes
    /// - x, output: `[..., d]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::kernels::layer_norm(
            x,
            self.gamma.val(),
            self.beta.as_ref().map(Param::val),
            self.epsilon,
        )
    }
}
