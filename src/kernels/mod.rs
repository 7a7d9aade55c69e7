//! CPU kernels behind burn's backend boundary, for the ops of the AST where burn-flex /
//! burn-autodiff left the most time (BENCHMARKS.md): attention (burn-autodiff composes it and
//! keeps every score matrix for the backward), exact GELU (burn-flex evaluates `erf` one element
//! at a time through libm), LayerNorm (burn-autodiff differentiates its composition) and the
//! Linear layers (their products on [`matmul`]: the system OpenBLAS with the `blas` feature,
//! 20–30 % faster than burn-flex's `gemm` crate at the AST's shapes).
//!
//! They are a burn backend extension (`extension.rs`): vectorised kernels for burn-flex with
//! handwritten backward steps for burn-autodiff; other backends keep burn's own ops.
//!
//! [`linear_gelu`] is the MLP expansion with a backward that recomputes its product instead of
//! keeping the GELU input (`--gradient-checkpointing` on the cpu backend). [`adamw`] is the
//! optimizer's update in one pass per parameter (`train::FusedAdamW`). The kernels' results are
//! `Vec<f32>` buffers initialised over rayon's threads (`buffer.rs`), which burn-flex takes
//! without a copy.

pub mod adamw;
#[cfg(feature = "flex")]
pub mod attention;
#[cfg(feature = "flex")]
mod buffer;
#[cfg(feature = "flex")]
mod extension;
pub mod gelu;
#[cfg(feature = "flex")]
pub mod layer_norm;
pub(crate) mod math;
#[cfg(feature = "flex")]
pub mod matmul;

use burn::tensor::Tensor;

/// The library behind the kernels' matmuls on burn-flex, for benchmark records: `"OpenBLAS"`
/// with the `blas` feature (native), `"gemm"` otherwise, `"none"` without burn-flex.
pub const MATMUL_LIBRARY: &str = if cfg!(all(feature = "blas", not(target_family = "wasm"))) {
    "OpenBLAS"
} else if cfg!(feature = "flex") {
    "gemm"
} else {
    "none"
};

/// Exact GELU `x·½(1 + erf(x/√2))` with its exact derivative.
///
/// On burn-flex (with or without autodiff) this is one fused, vectorised pass forward and one
/// backward; elsewhere it is the composition of burn tensor ops.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if extension::runs_on_flex(&x) {
        return extension::gelu(x);
    }
    gelu_composed(x)
}

/// `softmax(q kᵀ/√dh) v` per head: q `[batch, heads, queries, dh]`, k and v
/// `[batch, heads, keys, dh]`.
///
/// On burn-flex (with or without autodiff) this is the tiled kernel of [`attention`] with its
/// own backward, which keeps no score matrices between the passes; elsewhere it is burn's
/// `attention` op (fused on cubecl, composed under autodiff).
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if extension::runs_on_flex(&q) {
        return extension::attention(q, k, v);
    }
    burn::tensor::module::attention(
        q,
        k,
        v,
        None,
        None,
        burn::tensor::ops::AttentionModuleOptions::default(),
    )
}

/// LayerNorm over the last dim of `x` with scale `gamma`, shift `beta` and `epsilon` (what
/// [`crate::model::norm::LayerNorm`] calls).
///
/// On burn-flex (with or without autodiff) a LayerNorm with a shift runs the row kernel of
/// [`layer_norm`] with its own backward; elsewhere it is burn's `layer_norm` op.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    epsilon: f64,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if extension::runs_on_flex(&x) {
        if let Some(beta) = beta {
            return extension::layer_norm(x, gamma, beta, epsilon);
        }
    }
    burn::tensor::module::layer_norm(x, gamma, beta, epsilon)
}

/// `linear(x)` (`x·W + b`).
///
/// On burn-flex (with or without autodiff) a Linear with a bias runs on [`matmul`] (the system
/// BLAS with the `blas` feature) with the bias added inside the product; elsewhere, and without
/// a bias, it is `linear.forward`.
#[allow(clippy::disallowed_methods)] // the one place that calls burn's Linear
pub fn linear<const D: usize>(linear: &burn::nn::Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if extension::runs_on_flex(&x) {
        if let Some(bias) = &linear.bias {
            return extension::linear(x, linear.weight.val(), bias.val());
        }
    }
    linear.forward(x)
}

/// `gelu(linear(x))`, the MLP's expansion.
///
/// With `recompute`, on burn-flex under autodiff, the backward keeps only `x` (and the Linear's
/// parameters) and recomputes `linear(x)`: the `4·d`-wide GELU input is not kept between the
/// passes, for one more matmul in the backward. Otherwise, and on other backends, the Linear then
/// [`gelu`].
pub fn linear_gelu<const D: usize>(
    linear: &burn::nn::Linear,
    x: Tensor<D>,
    recompute: bool,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if recompute && extension::runs_on_flex(&x) && x.device().is_autodiff() {
        if let Some(bias) = &linear.bias {
            return extension::linear_gelu_recomputed(x, linear.weight.val(), bias.val());
        }
    }
    let _ = recompute;
    gelu(self::linear(linear, x))
}

/// Whether the fused AdamW update (`adamw_step`, with the `flex` feature) takes `param`: an
/// `f32` tensor on burn-flex.
pub fn fuses_adamw<const D: usize>(param: &Tensor<D>) -> bool {
    #[cfg(feature = "flex")]
    return extension::runs_on_flex(param) && param.dtype() == burn::tensor::DType::F32;
    #[cfg(not(feature = "flex"))]
    {
        let _ = param;
        false
    }
}

/// One AdamW update ([`adamw`]) of `param` from `grad` with its moments, fused into one pass
/// and in place where the buffers are not shared; returns `(param, moment_1, moment_2)`.
/// Requires [`fuses_adamw`] (burn's `AdamW` is the update elsewhere).
#[cfg(feature = "flex")]
pub fn adamw_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: adamw::AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    assert!(fuses_adamw(&param), "adamw_step: f32 on burn-flex only");
    extension::adamw_step(param, grad, moment_1, moment_2, step)
}

/// The exact GELU from burn tensor ops (`erf` included), differentiated op by op.
///
/// burn 0.22's fused `activation::gelu` computes the exact forward but differentiates the tanh
/// approximation (`gelu_backward` in burn-backend), an error of up to 9e-4 in the derivative.
pub fn gelu_composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        * x
        * 0.5
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    #[test]
    fn flex_tensors_take_the_kernel_path_with_and_without_autodiff() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<2>::random([3, 5], Distribution::Default, &device);
            assert!(super::extension::runs_on_flex(&x), "{device:?}");
        }
    }

    /// Strided input (copied, then overwritten in place) and shared contiguous input (kept).
    #[test]
    fn kernel_matches_the_composition_on_strided_and_shared_input() {
        let device = Device::flex();
        let x = Tensor::<3>::random([2, 70, 33], Distribution::Normal(0.0, 3.0), &device);
        for x in [x.clone().swap_dims(1, 2), x] {
            let before = x.to_data();
            let fused = super::gelu(x.clone()).into_data();
            let composed = super::gelu_composed(x.clone()).into_data();
            fused.assert_approx_eq::<f32>(&composed, burn::tensor::Tolerance::absolute(2e-6));
            x.into_data().assert_eq(&before, true);
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod attention_tests {
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    /// burn's composed attention (matmul, softmax, matmul) on the same values.
    fn reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        let scale = (q.dims()[3] as f64).sqrt().recip();
        burn::tensor::activation::softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3).matmul(v)
    }

    fn operands(device: &Device, [b, h, nq, nk, d]: [usize; 5]) -> [Tensor<4>; 3] {
        // q through a head split of `[b, nq, h·d]` (strided, like the model's), k and v plain.
        let q = Tensor::<3>::random([b, nq, h * d], Distribution::Normal(0.0, 1.5), device)
            .reshape([b, nq, h, d])
            .swap_dims(1, 2);
        let k = Tensor::<4>::random([b, h, nk, d], Distribution::Normal(0.0, 1.5), device);
        let v = Tensor::<4>::random([b, h, nk, d], Distribution::Default, device);
        [q, k, v]
    }

    const SHAPES: [[usize; 5]; 3] = [[2, 3, 70, 70, 16], [1, 2, 130, 155, 8], [3, 1, 1, 5, 4]];

    #[test]
    fn forward_matches_the_composed_attention_and_burn_flex() {
        for shape in SHAPES {
            let [q, k, v] = operands(&Device::flex(), shape);
            let ours = super::attention(q.clone(), k.clone(), v.clone()).into_data();
            let composed = reference(q.clone(), k.clone(), v.clone()).into_data();
            ours.assert_approx_eq::<f32>(&composed, Tolerance::absolute(2e-5));
            let flex = attention(q, k, v, None, None, AttentionModuleOptions::default());
            ours.assert_approx_eq::<f32>(&flex.into_data(), Tolerance::absolute(2e-5));
        }
    }

    #[test]
    fn gradients_match_the_composed_attention() {
        let device = Device::flex().autodiff();
        for shape in SHAPES {
            let [q, k, v] = operands(&device, shape).map(|x| x.require_grad());
            let weights = Tensor::<4>::random(q.dims(), Distribution::Default, &device);
            let loss = |out: Tensor<4>| (out * weights.clone()).sum();
            let ours = loss(super::attention(q.clone(), k.clone(), v.clone())).backward();
            let composed = loss(reference(q.clone(), k.clone(), v.clone())).backward();
            for (name, x) in [("q", &q), ("k", &k), ("v", &v)] {
                let a = x.grad(&ours).unwrap().into_data();
                let b = x.grad(&composed).unwrap().into_data();
                a.assert_approx_eq::<f32>(&b, Tolerance::absolute(5e-5));
                assert!(
                    b.iter::<f32>().any(|g| g.abs() > 1e-3),
                    "{name} gradient of {shape:?} is all but zero"
                );
            }
        }
    }

    #[test]
    fn only_some_operands_tracked() {
        let device = Device::flex().autodiff();
        let [q, k, v] = operands(&device, [1, 2, 20, 30, 8]);
        let v = v.require_grad();
        let grads = super::attention(q.clone(), k.clone(), v.clone())
            .sum()
            .backward();
        let reference_grads = reference(q, k, v.clone()).sum().backward();
        v.grad(&grads).unwrap().into_data().assert_approx_eq::<f32>(
            &v.grad(&reference_grads).unwrap().into_data(),
            Tolerance::absolute(2e-5),
        );
    }
}

#[cfg(all(test, feature = "flex"))]
mod checkpointing_tests {
    use burn::tensor::{Device, Distribution, Tensor, TensorData, Tolerance};

    /// q/k/v gradients of `sum(w ⊙ gelu(attention(2q, k, v + 1)))`: memory-bound ops around both
    /// kernels, which burn's balanced checkpointing recomputes instead of keeping.
    fn grads(device: &Device, values: &[TensorData; 4]) -> Vec<TensorData> {
        let [q, k, v, w] = values
            .clone()
            .map(|data| Tensor::<4>::from_data(data, device));
        let [q, k, v] = [q, k, v].map(|x| x.require_grad());
        let out = super::attention(q.clone() * 2.0, k.clone(), v.clone().add_scalar(1.0));
        let grads = (super::gelu(out) * w).sum().backward();
        [q, k, v]
            .iter()
            .map(|x| x.grad(&grads).unwrap().into_data())
            .collect()
    }

    #[test]
    fn gradient_checkpointing_gives_the_same_gradients() {
        let flex = Device::flex();
        let values = [0, 1, 2, 3]
            .map(|_| Tensor::<4>::random([2, 3, 40, 8], Distribution::Default, &flex).into_data());
        let plain = grads(&Device::flex().autodiff(), &values);
        let checkpointed = grads(&Device::flex().autodiff().gradient_checkpointing(), &values);
        for (a, b) in plain.iter().zip(&checkpointed) {
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-6));
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod layer_norm_tests {
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    /// Against burn's `LayerNorm` (forward, and x / γ / β gradients under autodiff), with
    /// non-trivial γ, β, rows of 37 (not a multiple of the SIMD lanes) and a strided input; once
    /// with γ, β from which the backward recovers `x̂` from the output, once with a zero γ that
    /// makes it keep the input.
    #[test]
    fn matches_burn_layer_norm_forward_and_gradients() {
        let eps = 1e-5;
        let beta: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let invertible: Vec<f32> = (0..37)
            .map(|i| 0.3 + (i as f32 * 0.71).cos().abs())
            .collect();
        let mut with_zero = invertible.clone();
        with_zero[5] = 0.0;
        assert!(crate::kernels::layer_norm::output_invertible(
            &invertible,
            &beta
        ));
        assert!(!crate::kernels::layer_norm::output_invertible(
            &with_zero, &beta
        ));
        for gamma in [invertible, with_zero] {
            check_against_burn(eps, &gamma, &beta);
        }
    }

    fn check_against_burn(eps: f64, gamma: &[f32], beta: &[f32]) {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let mut norm = LayerNormConfig::new(37).with_epsilon(eps).init(&device);
            norm.gamma = Param::from_tensor(Tensor::from_floats(gamma, &device));
            norm.beta = Some(Param::from_tensor(Tensor::from_floats(beta, &device)));
            let x = Tensor::<3>::random([3, 37, 70], Distribution::Normal(2.0, 3.0), &device)
                .swap_dims(1, 2);
            let x = if device.is_autodiff() {
                x.require_grad()
            } else {
                x
            };
            let ours = super::layer_norm(
                x.clone(),
                norm.gamma.val(),
                norm.beta.as_ref().map(|b| b.val()),
                eps,
            );
            #[allow(clippy::disallowed_methods)] // burn's own module, the reference
            let burns = norm.forward(x.clone());
            ours.to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), Tolerance::absolute(2e-5));
            if !device.is_autodiff() {
                continue;
            }
            let w = Tensor::<3>::random(ours.dims(), Distribution::Default, &device);
            let g_ours = (ours * w.clone()).sum().backward();
            let g_burn = (burns * w).sum().backward();
            let beta = norm.beta.as_ref().unwrap().val();
            let pairs = [
                (
                    x.grad(&g_ours).unwrap().into_data(),
                    x.grad(&g_burn).unwrap().into_data(),
                ),
                (
                    norm.gamma.val().grad(&g_ours).unwrap().into_data(),
                    norm.gamma.val().grad(&g_burn).unwrap().into_data(),
                ),
                (
                    beta.grad(&g_ours).unwrap().into_data(),
                    beta.grad(&g_burn).unwrap().into_data(),
                ),
            ];
            for (a, b) in pairs {
                a.assert_approx_eq::<f32>(&b, Tolerance::absolute(1e-4));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod linear_tests {
    use burn::module::Param;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution, Tensor, TensorData, Tolerance};

    /// The Linear (+ GELU) variants compared here.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// [`super::linear`]: this crate's product (BLAS with the `blas` feature).
        Linear,
        /// burn's `Linear::forward`.
        BurnLinear,
        /// [`super::linear_gelu`] with the recomputing backward.
        LinearGeluRecomputed,
        /// burn's `Linear::forward`, then the GELU composed from burn ops.
        BurnLinearGelu,
    }

    /// Output and the gradients of `x`, `W`, `b` (those tracked) of `sum(w ⊙ op(x))`; `x` is
    /// read through a transposed view when `strided_x`.
    fn run(
        op: Op,
        track: [bool; 3],
        strided_x: bool,
        [x, weight, bias, w]: &[TensorData; 4],
    ) -> Vec<TensorData> {
        let device = Device::flex().autodiff();
        let mut linear = LinearConfig::new(13, 37).init(&device);
        let tracked = |t: Tensor<2>, on: bool| if on { t.require_grad() } else { t };
        linear.weight = Param::from_tensor(tracked(
            Tensor::from_data(weight.clone(), &device),
            track[1],
        ));
        let bias = Tensor::<1>::from_data(bias.clone(), &device);
        linear.bias = Some(Param::from_tensor(if track[2] {
            bias.require_grad()
        } else {
            bias
        }));
        let x_leaf = Tensor::<3>::from_data(x.clone(), &device);
        let x_leaf = if track[0] {
            x_leaf.require_grad()
        } else {
            x_leaf
        };
        // The same values read as `[29, 3, 13]`, then viewed as `[3, 29, 13]`: a strided input.
        let x = if strided_x {
            x_leaf.clone().reshape([29, 3, 13]).swap_dims(0, 1)
        } else {
            x_leaf.clone()
        };
        #[allow(clippy::disallowed_methods)] // burn's own op, the reference
        let out = match op {
            Op::Linear => super::linear(&linear, x),
            Op::BurnLinear => linear.forward(x),
            Op::LinearGeluRecomputed => super::linear_gelu(&linear, x, true),
            Op::BurnLinearGelu => super::gelu_composed(linear.forward(x)),
        };
        let w = Tensor::<3>::from_data(w.clone(), &device);
        let grads = (out.clone() * w).sum().backward();
        let mut results = vec![out.into_data()];
        if track[0] {
            results.push(x_leaf.grad(&grads).unwrap().into_data());
        }
        if track[1] {
            results.push(linear.weight.val().grad(&grads).unwrap().into_data());
        }
        if track[2] {
            let bias = linear.bias.as_ref().unwrap().val();
            results.push(bias.grad(&grads).unwrap().into_data());
        }
        results
    }

    /// `ours` against `reference` for every subset of tracked operands (rows 3 × 29, widths not
    /// multiples of the SIMD lanes), with a contiguous and a strided input.
    fn assert_matches(ours: Op, reference: Op) {
        let flex = Device::flex();
        let values = [
            Tensor::<3>::random([3, 29, 13], Distribution::Normal(0.0, 1.5), &flex).into_data(),
            Tensor::<2>::random([13, 37], Distribution::Normal(0.0, 0.5), &flex).into_data(),
            Tensor::<1>::random([37], Distribution::Default, &flex).into_data(),
            Tensor::<3>::random([3, 29, 37], Distribution::Default, &flex).into_data(),
        ];
        for track in [
            [true, true, true],
            [true, false, false],
            [false, true, true],
            [false, false, true],
            [false, false, false],
        ] {
            for strided_x in [false, true] {
                let got = run(ours, track, strided_x, &values);
                let want = run(reference, track, strided_x, &values);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-5, 1e-5));
                }
            }
        }
    }

    /// The Linear on this crate's product gives burn's outputs and gradients.
    #[test]
    fn linear_matches_burns_linear() {
        assert_matches(Op::Linear, Op::BurnLinear);
    }

    /// The recomputing backward gives what burn's Linear then the composed GELU give.
    #[test]
    fn recomputing_backward_matches_the_composition() {
        assert_matches(Op::LinearGeluRecomputed, Op::BurnLinearGelu);
    }
}
