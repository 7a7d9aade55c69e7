//! The kernels of [`crate::kernels`] as a burn backend extension (`#[backend_extension]`):
//! burn-flex runs them directly; burn-autodiff over burn-flex records a handwritten backward
//! step for each. Inputs the kernels do not take (other dtypes, mismatched shapes) go to burn's
//! own ops.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{Device, Shape, Tensor, TensorData};

use crate::kernels::adamw::AdamWStep;
use crate::kernels::buffer;

mod adamw;
mod attention;
mod gelu;
mod layer_norm;
mod linear;
mod linear_gelu;

/// Fused CPU kernels: exact GELU with its derivative, attention, LayerNorm, the MLP expansion
/// `gelu(x·W + b)` with a recomputing backward, and the AdamW update.
#[backend_extension(Flex, Autodiff)]
pub trait FusedKernels: Backend {
    /// Exact GELU.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `grad · gelu'(x)`.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `softmax(qkᵀ/√dh)·v` per head; q `[b, h, nq, dh]`, k and v `[b, h, nk, dh]`.
    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// LayerNorm over the last dim with scale `gamma` and shift `beta` (`[d]` each).
    fn layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
    /// `x·weight + bias`, `weight` `[d_in, d_out]`, on [`crate::kernels::matmul`].
    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `gelu(x·weight + bias)`, `weight` `[d_in, d_out]`; under autodiff it keeps only its
    /// inputs and recomputes the product in the backward.
    fn linear_gelu_recomputed(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// One AdamW update of `param` (`f32`) from `grad`; returns the parameter and the two
    /// moments after it.
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether `x` lives on burn-flex (possibly under autodiff), the backend with these kernels.
pub fn runs_on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    x.device().inner() == Device::flex()
}

/// [`FusedKernels::gelu_exact`] on a high-level tensor (which must be on burn-flex).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::gelu_exact(x.into_dispatch()))
}

/// [`FusedKernels::attention`] on high-level tensors (which must be on burn-flex).
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
    ))
}

/// [`FusedKernels::linear`] on high-level tensors (which must be on burn-flex).
pub fn linear<const D: usize>(x: Tensor<D>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// [`FusedKernels::linear_gelu_recomputed`] on high-level tensors (which must be on burn-flex).
pub fn linear_gelu_recomputed<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Tensor<1>,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::linear_gelu_recomputed(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// [`FusedKernels::layer_norm`] on high-level tensors (which must be on burn-flex).
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    ))
}

/// [`FusedKernels::adamw_step`] on high-level tensors (which must be `f32` on burn-flex).
pub fn adamw_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (param, moment_1, moment_2) = <Dispatch as FusedKernels>::adamw_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(param),
        Tensor::from_dispatch(moment_1),
        Tensor::from_dispatch(moment_2),
    )
}

/// A contiguous `f32` tensor of `shape` holding `values` (taken without a copy).
fn tensor_of(values: Vec<f32>, shape: Shape) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape))
}

/// A contiguous `f32` tensor of zeros, zeroed over rayon's threads (see [`buffer`]).
fn zeros(shape: Shape) -> FloatTensor<Flex> {
    let len = shape.num_elements();
    tensor_of(buffer::filled(len, 0.0), shape)
}

/// Whether `x`'s elements are its whole `f32` buffer, in order (no offset, no gaps, nothing
/// beyond): the buffer can be overwritten as the tensor's values.
fn spans_buffer(x: &FloatTensor<Flex>) -> bool {
    let n = x.layout().num_elements();
    x.layout().contiguous_offsets() == Some((0, n))
        && x.bytes().len() == n * std::mem::size_of::<f32>()
}

/// A contiguous `f32` copy-free view of `x`, or a contiguous copy when `x` is strided.
fn contiguous(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    }
}

impl FusedKernels for Flex {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu::forward(x)
    }

    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu::backward(x, grad)
    }

    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        attention::forward(q, k, v)
    }

    fn layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        layer_norm::forward(x, gamma, beta, epsilon)
    }

    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        linear::forward(x, weight, bias)
    }

    fn linear_gelu_recomputed(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        linear_gelu::forward(x, weight, bias)
    }

    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        adamw::step(param, grad, moment_1, moment_2, step)
    }
}

impl<C: CheckpointStrategy> FusedKernels for Autodiff<Flex, C> {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu::autodiff_forward::<C>(x)
    }

    /// Not differentiable itself (no second derivatives through GELU): the result is a constant.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(Flex::gelu_exact_backward(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }

    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        attention::autodiff_forward::<C>(q, k, v)
    }

    fn layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        layer_norm::autodiff_forward::<C>(x, gamma, beta, epsilon)
    }

    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        linear::autodiff_forward::<C>(x, weight, bias)
    }

    fn linear_gelu_recomputed(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        linear_gelu::autodiff_forward::<C>(x, weight, bias)
    }

    /// An optimizer update, outside the graph: the results are untracked.
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (param, moment_1, moment_2) = adamw::step(
            param.into_primitive(),
            grad.into_primitive(),
            moment_1.into_primitive(),
            moment_2.into_primitive(),
            step,
        );
        (
            FloatTensor::<Self>::new(param),
            FloatTensor::<Self>::new(moment_1),
            FloatTensor::<Self>::new(moment_2),
        )
    }
}

/// The elements of a contiguous `f32` tensor.
fn f32_slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32")
}
