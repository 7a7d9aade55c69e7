//! AdamW with its update fused into one pass on burn-flex.
//!
//! On `f32` parameters on burn-flex (the `cpu` backend, native and in the browser's CPU
//! fallback) each parameter's update is [`crate::kernels::adamw`]: one in-place pass instead of
//! burn's ~15 tensor ops. Elsewhere it is burn's `AdamW`. Both keep burn's `AdamWState`, so a
//! saved optimizer record does not depend on the backend that wrote it.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::OptimizerConfig;

/// AdamW (decoupled weight decay, bias-corrected moments, no AMSGrad), the paper's optimizer.
#[derive(Clone)]
pub struct FusedAdamW {
    config: OptimizerConfig,
    /// burn's AdamW with the same settings: the update where the fused kernel does not apply.
    composed: AdamW,
}

impl FusedAdamW {
    /// AdamW with `config`'s moments, decay and ε (the learning rate is given per step).
    pub fn new(config: &OptimizerConfig) -> Self {
        Self {
            config: config.clone(),
            composed: composed_adamw(config),
        }
    }
}

/// burn's own `AdamW` (composed from tensor ops) with `config`'s moments, decay and ε: what
/// [`FusedAdamW`] runs off burn-flex, and the comparison for it.
pub fn composed_adamw(config: &OptimizerConfig) -> AdamW {
    AdamWConfig::new()
        .with_beta_1(config.beta1)
        .with_beta_2(config.beta2)
        .with_epsilon(config.epsilon)
        .with_weight_decay(config.weight_decay)
        .build()
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        #[cfg(feature = "flex")]
        if crate::kernels::fuses_adamw(&tensor) {
            return fused_step(&self.config, lr, tensor, grad, state);
        }
        self.composed.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

/// The update on burn-flex; a first step starts from zero moments, as burn's does.
#[cfg(feature = "flex")]
fn fused_step<const D: usize>(
    config: &OptimizerConfig,
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdamWState<D>>,
) -> (Tensor<D>, Option<AdamWState<D>>) {
    let (moment_1, moment_2, time) = match state {
        Some(AdamWState { momentum }) => (momentum.moment_1, momentum.moment_2, momentum.time + 1),
        None => (grad.zeros_like(), grad.zeros_like(), 1),
    };
    let step = crate::kernels::adamw::AdamWStep {
        lr,
        beta_1: config.beta1,
        beta_2: config.beta2,
        epsilon: config.epsilon,
        weight_decay: config.weight_decay,
        time,
    };
    let (tensor, moment_1, moment_2) =
        crate::kernels::adamw_step(tensor, grad, moment_1, moment_2, step);
    let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
    (tensor, Some(AdamWState::new(momentum)))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, ModuleOptimizer};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    fn config() -> OptimizerConfig {
        OptimizerConfig {
            lr: 5e-3,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-6,
            weight_decay: 0.1,
        }
    }

    fn burn_adamw(o: &OptimizerConfig) -> ModuleOptimizer {
        ModuleOptimizer::from(composed_adamw(o))
    }

    /// A Linear whose weight is a transposed (non-contiguous) view, as weights imported from
    /// PyTorch can be, so the fused path also meets a parameter it must copy.
    fn model(device: &Device) -> Linear {
        let mut linear = LinearConfig::new(37, 53).init(device);
        let transposed = Tensor::<2>::random([53, 37], Distribution::Normal(0.0, 0.2), device);
        linear.weight = Param::from_tensor(transposed.transpose());
        linear
    }

    /// One step of `optimizer` on a fixed loss; the gradients differ from step to step.
    fn step(optimizer: &mut ModuleOptimizer, model: Linear, k: usize, device: &Device) -> Linear {
        let x = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(
                (0..5 * 37)
                    .map(|i| ((i * (k + 3)) as f32 * 0.173).sin())
                    .collect(),
                [5, 37],
            ),
            device,
        );
        #[allow(clippy::disallowed_methods)] // a bare Linear as the model under test
        let loss = model.forward(x).powi_scalar(2).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optimizer.step(config().lr, model, grads)
    }

    fn max_abs_diff(a: &Linear, b: &Linear) -> f32 {
        let diff = |x: Tensor<2>, y: Tensor<2>| x.sub(y).abs().max().into_scalar::<f32>();
        let bias = |l: &Linear| l.bias.as_ref().unwrap().val().unsqueeze::<2>();
        diff(a.weight.val(), b.weight.val()).max(diff(bias(a), bias(b)))
    }

    #[test]
    fn fused_steps_match_burns_adamw_and_continue_its_record() {
        let device = Device::flex().autodiff();
        let start = model(&device);
        assert!(crate::kernels::fuses_adamw(&start.weight.val().inner()));
        let (mut fused, mut composed) = (crate::train::adamw(&config()), burn_adamw(&config()));
        let (mut a, mut b) = (start.clone(), start.clone());
        for k in 0..3 {
            a = step(&mut fused, a, k, &device);
            b = step(&mut composed, b, k, &device);
            let d = max_abs_diff(&a, &b);
            assert!(d < 1e-6, "step {k}: fused and burn's AdamW differ by {d}");
        }
        assert!(max_abs_diff(&a, &start) > 1e-3, "the steps moved nothing");

        // burn's saved moments continue under the fused update (same record), and vice versa.
        let from_burn = crate::train::adamw(&config())
            .from_bytes(composed.clone().into_bytes().unwrap())
            .unwrap();
        let from_fused = burn_adamw(&config())
            .from_bytes(fused.into_bytes().unwrap())
            .unwrap();
        for (mut optimizer, mut reference) in
            [(from_burn, composed.clone()), (from_fused, composed)]
        {
            let next = step(&mut optimizer, b.clone(), 3, &device);
            let expected = step(&mut reference, b.clone(), 3, &device);
            let d = max_abs_diff(&next, &expected);
            assert!(d < 1e-6, "resumed step differs by {d}");
        }
    }
}
