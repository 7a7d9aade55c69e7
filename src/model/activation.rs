//! The MLP activation, chosen by `hidden_act`.

use burn::tensor::{activation, Tensor};

use super::config::Activation;

/// Exact GELU, `x · ½(1 + erf(x/√2))`, built from `erf` so that its gradient is exact too.
///
/// burn 0.22's fused `gelu` computes the exact forward but differentiates the tanh approximation
/// (`gelu_backward` in burn-backend), an error of up to 9e-4 in the derivative that shows as
/// 6e-4 relative error in adapter gradients against PyTorch.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        * x
        * 0.5
}

impl Activation {
    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Relu => activation::relu(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    /// erf by Simpson integration of 2/√π·e^(−t²), accurate to ~1e-12 here.
    fn erf(x: f64) -> f64 {
        let n = 20_000;
        let h = x / n as f64;
        let sum: f64 = (0..=n)
            .map(|i| {
                let t = i as f64 * h;
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                w * (-t * t).exp()
            })
            .sum();
        sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_gradient_is_the_exact_derivative() {
        let device = crate::backend::cpu_device().unwrap().autodiff();
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let x =
            Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device).require_grad();
        let grads = super::gelu(x.clone()).sum().backward();
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
