//! Attention on burn-flex through the tiled kernel, and its backward step under burn-autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::DType;

use super::zeros;
use crate::kernels::attention::Heads;

/// [`super::FusedKernels::attention`] on burn-flex.
pub fn forward(
    q: FloatTensor<Flex>,
    k: FloatTensor<Flex>,
    v: FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    if !supported(&q, &k, &v) {
        return burn_attention::<Flex>(q, k, v);
    }
    attention_forward(&viewable(q), &viewable(k), &viewable(v)).0
}

/// [`super::FusedKernels::attention`] under autodiff: records [`AttentionBackward`].
pub fn autodiff_forward<C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<Flex, C>>,
    k: FloatTensor<Autodiff<Flex, C>>,
    v: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    if !supported(q.primitive(), k.primitive(), v.primitive()) {
        return burn_attention::<Autodiff<Flex, C>>(q, k, v);
    }
    let nodes = [q.node(), k.node(), v.node()];
    let (q, k, v) = (
        viewable(q.into_primitive()),
        viewable(k.into_primitive()),
        viewable(v.into_primitive()),
    );
    match AttentionBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, lse) = attention_forward(&q, &k, &v);
            let state = AttentionState { q, k, v, lse };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(attention_forward(&q, &k, &v).0),
    }
}

/// burn's own attention op (other dtypes).
fn burn_attention<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
) -> FloatTensor<B> {
    B::attention(q, k, v, None, None, AttentionModuleOptions::default())
}

/// `1/√dh`, the default softmax scale.
fn default_scale(q: &FloatTensor<Flex>) -> f32 {
    1.0 / (q.layout().shape()[3] as f32).sqrt()
}

/// `x` as [`Heads`] (rank 4, `f32`, last dim contiguous, non-negative strides), or `None`.
fn heads_view(x: &FloatTensor<Flex>) -> Option<Heads<'_>> {
    let layout = x.layout();
    let (shape, strides) = (layout.shape(), layout.strides());
    if x.dtype() != DType::F32 || shape.num_dims() != 4 || strides[3] != 1 {
        return None;
    }
    let stride = |i: usize| usize::try_from(strides[i]).ok();
    Some(Heads {
        data: x.storage::<f32>(),
        offset: layout.start_offset(),
        shape: [shape[0], shape[1], shape[2], shape[3]],
        strides: [stride(0)?, stride(1)?, stride(2)?],
    })
}

/// `x`, copied to a contiguous layout unless [`heads_view`] can read it as it is.
fn viewable(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if heads_view(&x).is_some() {
        x
    } else {
        x.to_contiguous()
    }
}

/// Whether the fused kernel takes these operands: `f32`, rank 4, q `[b, h, nq, d]` against k and
/// v `[b, h, nk, d]`. burn's own op handles anything else.
fn supported(q: &FloatTensor<Flex>, k: &FloatTensor<Flex>, v: &FloatTensor<Flex>) -> bool {
    let rank4_f32 =
        |x: &FloatTensor<Flex>| x.dtype() == DType::F32 && x.layout().shape().num_dims() == 4;
    if !(rank4_f32(q) && rank4_f32(k) && rank4_f32(v)) {
        return false;
    }
    let (qs, ks, vs) = (q.layout().shape(), k.layout().shape(), v.layout().shape());
    ks == vs && qs[0] == ks[0] && qs[1] == ks[1] && qs[3] == ks[3]
}

/// The fused forward on [`supported`], [`viewable`] operands: the output and the log-sum-exp
/// of each query row.
fn attention_forward(
    q: &FloatTensor<Flex>,
    k: &FloatTensor<Flex>,
    v: &FloatTensor<Flex>,
) -> (FloatTensor<Flex>, Vec<f32>) {
    let view = |x| heads_view(x).expect("viewable attention operand");
    let qh = view(q);
    let mut out = zeros(q.layout().shape().clone());
    let [b, h, nq, _] = qh.shape;
    let mut lse = vec![0.0f32; b * h * nq];
    crate::kernels::attention::forward(
        qh,
        view(k),
        view(v),
        default_scale(q),
        out.storage_mut(),
        &mut lse,
    );
    (out, lse)
}

/// What the attention backward step keeps: the inputs and the log-sum-exp (not the output:
/// see [`crate::kernels::attention::backward`]).
#[derive(Debug, Clone)]
struct AttentionState {
    q: FloatTensor<Flex>,
    k: FloatTensor<Flex>,
    v: FloatTensor<Flex>,
    lse: Vec<f32>,
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = viewable(grads.consume::<Flex>(&ops.node));
        let AttentionState { q, k, v, lse } = ops.state;
        let view = |x| heads_view(x).expect("viewable attention operand");
        let mut dq = zeros(q.layout().shape().clone());
        let mut dk = zeros(k.layout().shape().clone());
        let mut dv = zeros(v.layout().shape().clone());
        crate::kernels::attention::backward(
            view(&q),
            view(&k),
            view(&v),
            view(&grad),
            &lse,
            default_scale(&q),
            [dq.storage_mut(), dk.storage_mut(), dv.storage_mut()],
        );
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}
