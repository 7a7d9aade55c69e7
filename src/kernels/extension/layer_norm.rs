//! LayerNorm on burn-flex through the row kernel, and its backward step under burn-autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex};
use burn::tensor::DType;

use super::{contiguous, f32_slice, zeros};
use crate::kernels::layer_norm;

/// [`super::FusedKernels::layer_norm`] on burn-flex.
pub fn forward(
    x: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    beta: FloatTensor<Flex>,
    epsilon: f64,
) -> FloatTensor<Flex> {
    if !all_f32(&[&x, &gamma, &beta]) {
        return burn_layer_norm::<Flex>(x, gamma, beta, epsilon);
    }
    layer_norm_forward(
        &contiguous(x),
        &contiguous(gamma),
        &contiguous(beta),
        epsilon,
    )
    .0
}

/// [`super::FusedKernels::layer_norm`] under autodiff: records [`LayerNormBackward`].
pub fn autodiff_forward<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: FloatTensor<Autodiff<Flex, C>>,
    beta: FloatTensor<Autodiff<Flex, C>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    if !all_f32(&[x.primitive(), gamma.primitive(), beta.primitive()]) {
        return burn_layer_norm::<Autodiff<Flex, C>>(x, gamma, beta, epsilon);
    }
    let nodes = [x.node(), gamma.node(), beta.node()];
    let (x, gamma, beta) = (
        contiguous(x.into_primitive()),
        contiguous(gamma.into_primitive()),
        contiguous(beta.into_primitive()),
    );
    let (out, mean, rstd) = layer_norm_forward(&x, &gamma, &beta, epsilon);
    match LayerNormBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let invertible = layer_norm::output_invertible(f32_slice(&gamma), f32_slice(&beta));
            let kept = if invertible {
                Kept::Output {
                    y: out.clone(),
                    beta,
                }
            } else {
                Kept::Input { x, mean }
            };
            let state = LayerNormState { kept, gamma, rstd };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// burn's own `layer_norm` op (other dtypes).
fn burn_layer_norm<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> FloatTensor<B> {
    <B as burn::backend::ops::ModuleOps<B>>::layer_norm(x, gamma, Some(beta), epsilon)
}

fn all_f32(xs: &[&FloatTensor<Flex>]) -> bool {
    xs.iter().all(|x| x.dtype() == DType::F32)
}

/// The fused forward on contiguous `f32` operands: the output and each row's mean and `rstd`.
fn layer_norm_forward(
    x: &FloatTensor<Flex>,
    gamma: &FloatTensor<Flex>,
    beta: &FloatTensor<Flex>,
    epsilon: f64,
) -> (FloatTensor<Flex>, Vec<f32>, Vec<f32>) {
    let d = gamma.layout().num_elements();
    let rows = x.layout().num_elements() / d.max(1);
    let mut out = zeros(x.layout().shape().clone());
    let (mut mean, mut rstd) = (vec![0.0f32; rows], vec![0.0f32; rows]);
    layer_norm::forward(
        f32_slice(x),
        d,
        f32_slice(gamma),
        f32_slice(beta),
        epsilon as f32,
        out.storage_mut(),
        &mut mean,
        &mut rstd,
    );
    (out, mean, rstd)
}

/// What the LayerNorm backward step keeps: the output and `β` when `x̂` can be recovered from
/// them (the output is then shared with whichever later op keeps it, and the input can go), else
/// the input and the row means; always `γ` and the rows' `rstd`.
#[derive(Debug, Clone)]
struct LayerNormState {
    kept: Kept,
    gamma: FloatTensor<Flex>,
    rstd: Vec<f32>,
}

/// See [`layer_norm::Saved`].
#[derive(Debug, Clone)]
enum Kept {
    Input {
        x: FloatTensor<Flex>,
        mean: Vec<f32>,
    },
    Output {
        y: FloatTensor<Flex>,
        beta: FloatTensor<Flex>,
    },
}

impl Kept {
    fn saved(&self) -> layer_norm::Saved<'_> {
        match self {
            Kept::Input { x, mean } => layer_norm::Saved::Input {
                x: f32_slice(x),
                mean,
            },
            Kept::Output { y, beta } => layer_norm::Saved::Output {
                y: f32_slice(y),
                beta: f32_slice(beta),
            },
        }
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let LayerNormState { kept, gamma, rstd } = ops.state;
        let [x_node, gamma_node, beta_node] = ops.parents;
        let d = gamma.layout().num_elements();
        let mut dx = x_node.as_ref().map(|_| zeros(dy.layout().shape().clone()));
        let params = layer_norm::backward(
            kept.saved(),
            d,
            f32_slice(&gamma),
            &rstd,
            f32_slice(&dy),
            dx.as_mut().map(|dx| dx.storage_mut::<f32>()),
            gamma_node.is_some() || beta_node.is_some(),
        );
        if let (Some(node), Some(dx)) = (x_node, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some((dgamma, dbeta)) = params {
            let shape = gamma.layout().shape().clone();
            let tensor = |values: Vec<f32>| {
                FloatTensor::<Flex>::from_data(burn::tensor::TensorData::new(values, shape.clone()))
            };
            if let Some(node) = gamma_node {
                grads.register::<Flex>(node.id, tensor(dgamma));
            }
            if let Some(node) = beta_node {
                grads.register::<Flex>(node.id, tensor(dbeta));
            }
        }
    }
}
