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
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Shape;

use super::FusedKernels;

/// [`FusedKernels::linear_gelu_recomputed`] on burn-flex (nothing is kept without autodiff).
pub fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    Flex::gelu_exact(Flex::linear(x, weight, Some(bias)))
}

/// [`FusedKernels::linear_gelu_recomputed`] under autodiff: records [`LinearGeluBackward`],
/// whose state is the three inputs (no intermediate).
pub fn autodiff_forward<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
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
        let pre = Flex::linear(x.clone(), weight.clone(), Some(bias));
        let grad_pre = Flex::gelu_exact_backward(pre, grad);
        let x_shape = x.layout().shape().clone();
        let (d_in, d_out) = (weight.layout().shape()[0], weight.layout().shape()[1]);
        let rows = x_shape.num_elements() / d_in.max(1);
        let grad_rows = Flex::float_reshape(grad_pre, Shape::new([rows, d_out]));
        if let Some(node) = x_node {
            let dx = Flex::float_matmul(grad_rows.clone(), Flex::float_transpose(weight));
            grads.register::<Flex>(node.id, Flex::float_reshape(dx, x_shape));
        }
        if let Some(node) = weight_node {
            let x_rows = Flex::float_reshape(x, Shape::new([rows, d_in]));
            let dw = Flex::float_matmul(Flex::float_transpose(x_rows), grad_rows.clone());
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = bias_node {
            let db = Flex::float_sum_dim(grad_rows, 0);
            grads.register::<Flex>(node.id, Flex::float_reshape(db, Shape::new([d_out])));
        }
    }
}
