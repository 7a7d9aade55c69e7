//! Exact GELU on burn-flex, and its backward step under burn-autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex};
use burn::tensor::DType;

use super::{contiguous, spans_buffer, zeros, FusedKernels};

/// [`FusedKernels::gelu_exact`] on burn-flex.
pub fn forward(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if x.dtype() != DType::F32 {
        return composed_gelu::<Flex>(x);
    }
    let mut x = contiguous(x);
    if let Some(xs) = owned_slice(&mut x) {
        crate::kernels::gelu::forward_in_place(xs);
        return x;
    }
    let mut out = zeros(x.layout().shape().clone());
    let input = x.as_slice::<f32>().expect("contiguous f32");
    crate::kernels::gelu::forward(input, out.storage_mut::<f32>());
    out
}

/// [`FusedKernels::gelu_exact_backward`] on burn-flex.
pub fn backward(x: FloatTensor<Flex>, grad: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
        return composed_gelu_backward::<Flex>(x, grad);
    }
    let (x, mut grad) = (contiguous(x), contiguous(grad));
    let input = x.as_slice::<f32>().expect("contiguous f32");
    if let Some(grad) = owned_slice(&mut grad) {
        crate::kernels::gelu::backward_in_place(input, grad);
    } else {
        let mut out = zeros(x.layout().shape().clone());
        let grad = grad.as_slice::<f32>().expect("contiguous f32");
        crate::kernels::gelu::backward(input, grad, out.storage_mut::<f32>());
        return out;
    }
    grad
}

/// [`FusedKernels::gelu_exact`] under autodiff: records [`GeluBackward`].
pub fn autodiff_forward<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match GeluBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, Flex::gelu_exact(x.into_primitive()))
        }
        OpsKind::UnTracked(prep) => prep.finish(Flex::gelu_exact(x.into_primitive())),
    }
}

/// The tensor's `f32` elements to overwrite when `x` owns its buffer and spans all of it
/// (an intermediate result nothing else holds), else `None`.
fn owned_slice(x: &mut FloatTensor<Flex>) -> Option<&mut [f32]> {
    if spans_buffer(x) {
        x.try_storage_mut::<f32>()
    } else {
        None
    }
}

/// Half-precision inputs: the composition in burn ops (the kernels are `f32`).
fn composed_gelu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let cdf = B::float_erf(B::float_mul_scalar(
        x.clone(),
        std::f64::consts::FRAC_1_SQRT_2.into(),
    ));
    let cdf = B::float_mul_scalar(B::float_add_scalar(cdf, 1.0.into()), 0.5.into());
    B::float_mul(x, cdf)
}

fn composed_gelu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let cdf = B::float_erf(B::float_mul_scalar(
        x.clone(),
        std::f64::consts::FRAC_1_SQRT_2.into(),
    ));
    let cdf = B::float_mul_scalar(B::float_add_scalar(cdf, 1.0.into()), 0.5.into());
    let density = B::float_exp(B::float_mul_scalar(
        B::float_mul(x.clone(), x.clone()),
        (-0.5).into(),
    ));
    let density = B::float_mul_scalar(density, (1.0 / (2.0 * std::f64::consts::PI).sqrt()).into());
    let derivative = B::float_add(cdf, B::float_mul(x, density));
    B::float_mul(grad, derivative)
}

/// The backward step of [`FusedKernels::gelu_exact`]: its state is the input's node.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let x = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(ops.state);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            Flex::gelu_exact_backward(x, grad)
        });
    }
}
