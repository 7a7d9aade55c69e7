//! The kernels of [`crate::kernels`] as a burn backend extension (`#[backend_extension]`):
//! burn-flex runs them directly; burn-autodiff over burn-flex records a handwritten backward
//! step for each. Inputs the kernels do not take (other dtypes, mismatched shapes) go to burn's
//! own ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Device, Tensor};

use super::attention::Heads;

/// Fused CPU kernels: exact GELU with its derivative, and attention.
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
        if x.dtype() != DType::F32 {
            return composed_gelu::<Self>(x);
        }
        let mut x = contiguous(x);
        if let Some(xs) = owned_slice(&mut x) {
            super::gelu::forward_in_place(xs);
            return x;
        }
        let mut out = FloatTensor::<Self>::empty(x.layout().shape().clone(), DType::F32);
        let input = x.as_slice::<f32>().expect("contiguous f32");
        super::gelu::forward(input, out.storage_mut::<f32>());
        out
    }

    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return composed_gelu_backward::<Self>(x, grad);
        }
        let (x, mut grad) = (contiguous(x), contiguous(grad));
        let input = x.as_slice::<f32>().expect("contiguous f32");
        if let Some(grad) = owned_slice(&mut grad) {
            super::gelu::backward_in_place(input, grad);
        } else {
            let mut out = FloatTensor::<Self>::empty(x.layout().shape().clone(), DType::F32);
            let grad = grad.as_slice::<f32>().expect("contiguous f32");
            super::gelu::backward(input, grad, out.storage_mut::<f32>());
            return out;
        }
        grad
    }

    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !supported(&q, &k, &v) {
            return burn_attention::<Self>(q, k, v);
        }
        attention_forward(&viewable(q), &viewable(k), &viewable(v)).0
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
    let mut out = FloatTensor::<Flex>::empty(q.layout().shape().clone(), DType::F32);
    let [b, h, nq, _] = qh.shape;
    let mut lse = vec![0.0f32; b * h * nq];
    super::attention::forward(
        qh,
        view(k),
        view(v),
        default_scale(q),
        out.storage_mut(),
        &mut lse,
    );
    (out, lse)
}

/// What the attention backward step keeps: the inputs, the output and the log-sum-exp.
#[derive(Debug, Clone)]
struct AttentionState {
    q: FloatTensor<Flex>,
    k: FloatTensor<Flex>,
    v: FloatTensor<Flex>,
    out: FloatTensor<Flex>,
    lse: Vec<f32>,
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = viewable(grads.consume::<Flex>(&ops.node));
        let AttentionState { q, k, v, out, lse } = ops.state;
        let view = |x| heads_view(x).expect("viewable attention operand");
        let mut dq = FloatTensor::<Flex>::empty(q.layout().shape().clone(), DType::F32);
        let mut dk = FloatTensor::<Flex>::empty(k.layout().shape().clone(), DType::F32);
        let mut dv = FloatTensor::<Flex>::empty(v.layout().shape().clone(), DType::F32);
        super::attention::backward(
            view(&q),
            view(&k),
            view(&v),
            view(&out),
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

/// The tensor's `f32` elements to overwrite when `x` owns its buffer and spans all of it
/// (an intermediate result nothing else holds), else `None`.
fn owned_slice(x: &mut FloatTensor<Flex>) -> Option<&mut [f32]> {
    let spans_buffer = x.layout().contiguous_offsets() == Some((0, x.layout().num_elements()))
        && x.bytes().len() == x.layout().num_elements() * std::mem::size_of::<f32>();
    if spans_buffer {
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

impl<C: CheckpointStrategy> FusedKernels for Autodiff<Flex, C> {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
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
        if !supported(q.primitive(), k.primitive(), v.primitive()) {
            return burn_attention::<Self>(q, k, v);
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
                let state = AttentionState {
                    q,
                    k,
                    v,
                    out: out.clone(),
                    lse,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(attention_forward(&q, &k, &v).0),
        }
    }
}
