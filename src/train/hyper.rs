//! Optimiser hyper-parameters of the paper per method (PETL_AST `hparams/train.yaml`).

use serde::{Deserialize, Serialize};

use crate::petl::PetlConfig;

/// AdamW settings and the peak learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Peak learning rate of the cosine schedule.
    pub lr: f64,
    /// AdamW β₁.
    pub beta1: f32,
    /// AdamW β₂.
    pub beta2: f32,
    /// AdamW ε.
    pub epsilon: f32,
    /// Decoupled weight decay, on every trainable tensor (as the reference).
    pub weight_decay: f32,
}

impl OptimizerConfig {
    /// The paper's settings for `method`: AdamW β = (0.9, 0.98), ε = 1e-6, weight decay 0.1;
    /// lr 5e-3 for adapters / LoRA / BitFit / MoA, 1e-2 for prompt and prefix tuning, 5e-5 for
    /// full fine-tuning, 1e-3 for linear probing.
    pub fn paper(method: &PetlConfig) -> Self {
        let lr = method.learning_rate();
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-6,
            weight_decay: 0.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::petl::{Method, MethodArgs};

    fn lr(method: Method) -> f64 {
        let config = MethodArgs::for_method(method).to_config(768, 12).unwrap();
        OptimizerConfig::paper(&config).lr
    }

    #[test]
    fn learning_rates_follow_the_paper() {
        assert_eq!(lr(Method::Adapter), 5e-3);
        assert_eq!(lr(Method::Lora), 5e-3);
        assert_eq!(lr(Method::Bitfit), 5e-3);
        assert_eq!(lr(Method::DenseMoa), 5e-3);
        assert_eq!(lr(Method::PromptTuning), 1e-2);
        assert_eq!(lr(Method::PrefixTuning), 1e-2);
        assert_eq!(lr(Method::Full), 5e-5);
        assert_eq!(lr(Method::Linear), 1e-3);
        assert_eq!(lr(Method::Ia3), 5e-3);
        let c = OptimizerConfig::paper(&MethodArgs::default().to_config(768, 12).unwrap());
        assert_eq!(
            (c.beta1, c.beta2, c.epsilon, c.weight_decay),
            (0.9, 0.98, 1e-6, 0.1)
        );
    }
}
