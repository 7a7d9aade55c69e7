//! `x·W + b` on burn-flex through [`crate::kernels::matmul`] (the system BLAS with the `blas`
//! feature), and its backward step under burn-autodiff.
//!
//! The same products burn's `linear` runs, on the faster matmul; under autodiff it keeps what
//! burn's keeps: `x` only when the weight trains, the weight only when `x` needs a gradient.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Shape};

use super::{contiguous, f32_slice, tensor_of, zeros};
use crate::kernels::buffer;
use crate::kernels::matmul::{matmul, MatRef};

/// [`super::FusedKernels::linear`] on burn-flex.
pub fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    if !supported(&x, &weight, &bias) {
        return Flex::linear(x, weight, Some(bias));
    }
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    let [d_in, d_out] = dims(&weight);
    let rows = x.layout().num_elements() / d_in.max(1);
    // The bias first, then `+= x·W` (BLAS reads it inside the product: no second pass).
    let mut out = buffer::tiled(f32_slice(&bias), rows);
    let x_rows = MatRef::row_major(f32_slice(&x), rows, d_in);
    let w = MatRef::row_major(f32_slice(&weight), d_in, d_out);
    matmul(x_rows, w, &mut out, true);
    tensor_of(out, with_last_dim(x.layout().shape(), d_out))
}

/// `grad·Wᵀ`, the input gradient (shape of `grad` with the last dim `d_in`).
pub fn input_grad(weight: &FloatTensor<Flex>, grad: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [d_in, d_out] = dims(weight);
    let rows = grad.layout().num_elements() / d_out.max(1);
    product(
        MatRef::row_major(f32_slice(grad), rows, d_out),
        MatRef::row_major(f32_slice(weight), d_in, d_out).t(),
        with_last_dim(grad.layout().shape(), d_in),
    )
}

/// `xᵀ·grad` over every row, the weight gradient `[d_in, d_out]`.
pub fn weight_grad(x: &FloatTensor<Flex>, grad: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let d_in = last_dim(x);
    let d_out = last_dim(grad);
    let rows = x.layout().num_elements() / d_in.max(1);
    product(
        MatRef::row_major(f32_slice(x), rows, d_in).t(),
        MatRef::row_major(f32_slice(grad), rows, d_out),
        Shape::new([d_in, d_out]),
    )
}

/// The sum of `grad` over every row, the bias gradient `[d_out]`.
pub fn bias_grad(grad: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let d_out = last_dim(&grad);
    let rows = grad.layout().num_elements() / d_out.max(1);
    let summed = Flex::float_sum_dim(Flex::float_reshape(grad, Shape::new([rows, d_out])), 0);
    Flex::float_reshape(summed, Shape::new([d_out]))
}

/// `a·b` into a new tensor of `shape`.
fn product(a: MatRef, b: MatRef, shape: Shape) -> FloatTensor<Flex> {
    let mut out = zeros(shape);
    matmul(a, b, out.storage_mut::<f32>(), false);
    out
}

/// `f32` operands with matching sizes: `x` `[.., d_in]`, weight `[d_in, d_out]`, bias `[d_out]`.
/// burn's own op handles anything else.
pub(super) fn supported(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    bias: &FloatTensor<Flex>,
) -> bool {
    let (xs, ws, bs) = (
        x.layout().shape(),
        weight.layout().shape(),
        bias.layout().shape(),
    );
    [x.dtype(), weight.dtype(), bias.dtype()] == [DType::F32; 3]
        && xs.num_dims() >= 2
        && ws.num_dims() == 2
        && bs.num_dims() == 1
        && xs[xs.num_dims() - 1] == ws[0]
        && bs[0] == ws[1]
}

fn dims(weight: &FloatTensor<Flex>) -> [usize; 2] {
    let shape = weight.layout().shape();
    [shape[0], shape[1]]
}

fn last_dim(x: &FloatTensor<Flex>) -> usize {
    let shape = x.layout().shape();
    shape[shape.num_dims() - 1]
}

fn with_last_dim(shape: &Shape, last: usize) -> Shape {
    let mut dims: Vec<usize> = shape.iter().copied().collect();
    *dims.last_mut().expect("rank ≥ 1") = last;
    Shape::from(dims)
}

/// [`super::FusedKernels::linear`] under autodiff: records [`LinearBackward`].
pub fn autodiff_forward<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    if !supported(x.primitive(), weight.primitive(), bias.primitive()) {
        return Autodiff::<Flex, C>::linear(x, weight, Some(bias));
    }
    let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
    match LinearBackward
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            // x is needed only for the weight's gradient, and the weight only for x's.
            let x_state = weight_tracked.then(|| prep.checkpoint(&x));
            let weight_state = x_tracked.then(|| prep.checkpoint(&weight));
            let out = forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            prep.finish((x_state, weight_state), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        )),
    }
}

/// The backward step of [`super::FusedKernels::linear`]; its state is the nodes of `x` and the
/// weight, each kept only when the other one's gradient needs it.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let [x_node, weight_node, bias_node] = ops.parents;
        let (x_state, weight_state) = ops.state;
        let mut retrieve = |id: Option<NodeId>| {
            id.map(|id| contiguous(checkpointer.retrieve_node_output::<FloatTensor<Flex>>(id)))
        };
        let (x, weight) = (retrieve(x_state), retrieve(weight_state));
        if let (Some(node), Some(weight)) = (x_node, weight) {
            grads.register::<Flex>(node.id, input_grad(&weight, &grad));
        }
        if let (Some(node), Some(x)) = (weight_node, x) {
            grads.register::<Flex>(node.id, weight_grad(&x, &grad));
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, bias_grad(grad));
        }
    }
}
