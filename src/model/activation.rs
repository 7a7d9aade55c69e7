//! The MLP activation, chosen by `hidden_act`, and QuickGELU.

use burn::tensor::{activation, Tensor};

use super::config::Activation;

impl Activation {
    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => crate::kernels::gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Relu => activation::relu(x),
        }
    }
}

/// `x · σ(1.702 x)` (CLIP's QuickGELU, used by the Convpass adapter).
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * activation::sigmoid(x * 1.702)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use crate::kernels::math::erf_reference as erf;

    /// The exact derivative on the build's CPU backend (burn-flex: the fused kernel) and from
    /// the composition of burn ops (every other backend).
    #[test]
    fn gelu_gradient_is_the_exact_derivative() {
        let device = crate::backend::cpu_device().unwrap().autodiff();
        for gelu in [
            crate::kernels::gelu::<1>,
            crate::kernels::gelu_composed::<1>,
        ] {
            check_gradient(gelu, &device);
        }
    }

    fn check_gradient(gelu: fn(Tensor<1>) -> Tensor<1>, device: &burn::tensor::Device) {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let x =
            Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), device).require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let grad = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (g, &x) in grad.iter().zip(&xs) {
            let x = x as f64;
            let pdf = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let exact = 0.5 * (1.0 + erf(x / 2f64.sqrt())) + x * pdf;
            assert!(
                (*g as f64 - exact).abs() < 1e-5,
                "d/dx gelu({x}) = {g}, expected {exact}"
            );
        }
    }
}
