//! `gelu(x·W + b)` that keeps only its input for the backward and recomputes `x·W + b` there.
//!
//! A GELU's backward needs its input, the MLP's widest activation (`[batch, tokens, 4·d]`,
//! ≈ 45 % of what an AST layer keeps for an adapter step). The Linear's input `x` (the LayerNorm
//! output, `d` wide) is kept anyway whenever a weight reading it trains, so keeping `x` and
//! recomputing the product in the backward trades one `x·W` matmul per layer for that memory:
//! activation checkpointing of the one tensor where it pays.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};

use super::{contiguous, linear, FusedKernels};

/// [`FusedKernels::linear_gelu_recomputed`] on burn-flex (nothing is kept without autodiff).
pub fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    Flex::gelu_exact(linear::forward(x, weight, bias))
}

/// [`FusedKernels::linear_gelu_recomputed`] under autodiff: records [`LinearGeluBackward`],
/// whose state is the three inputs (no intermediate).
pub fn autodiff_forward<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    if !linear::supported(x.primitive(), weight.primitive(), bias.primitive()) {
        // Other dtypes or shapes: the composition, differentiated op by op.
        let pre = <Autodiff<Flex, C> as ModuleOps<_>>::linear(x, weight, Some(bias));
        return Autodiff::<Flex, C>::gelu_exact(pre);
    }
    let nodes = [x.node(), weight.node(), bias.node()];
    let (x, weight, bias) = (
        x.into_primitive(),
        weight.into_primitive(),
        bias.into_primitive(),
    );
    match LinearGeluBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let out = forward(x.clone(), weight.clone(), bias.clone());
            prep.finish((x, weight, bias), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x, weight, bias)),
    }
}

#[derive(Debug)]
struct LinearGeluBackward;

impl Backward<Flex, 3> for LinearGeluBackward {
    type State = (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, bias) = ops.state;
        let [x_node, weight_node, bias_node] = ops.parents;
        // The recomputed pre-activation, then the gradient with respect to it.
        let pre = linear::forward(x.clone(), weight.clone(), bias);
        let grad_pre = contiguous(Flex::gelu_exact_backward(pre, grad));
        if let Some(node) = weight_node {
            grads.register::<Flex>(node.id, linear::weight_grad(&contiguous(x), &grad_pre));
        }
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, linear::input_grad(&contiguous(weight), &grad_pre));
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, linear::bias_grad(grad_pre));
        }
    }
}
