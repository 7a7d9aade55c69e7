//! Mixtures of adapters beside a sub-layer (Cappellazzo et al., "Efficient Fine-tuning of Audio
//! Spectrogram Transformers via Soft Mixture of Adapters", arXiv 2402.00828).
//!
//! Reference: <https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/MoA.py#L35-L123>.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor};

use super::adapter::Bottleneck;
use super::config::{ConfigError, Location, MoaConfig, MoaKind, MAX_EXPERTS, MAX_TOKENS};
use super::init::{self, Init};
use super::registry::{PetlMethod, MODULE_LR};

/// Dense-MoA: every expert runs on every token; a per-token softmax router mixes them.
#[derive(Module, Debug)]
pub struct DenseMoa {
    /// `d → N` router.
    pub router: Linear,
    /// The bottleneck experts.
    pub experts: Vec<Bottleneck>,
}

/// Soft-MoA (Puigcerver et al. 2024 applied to adapters): tokens are softly dispatched to
/// `N · slots` slots, each expert processes its slots, outputs are softly combined back.
#[derive(Module, Debug)]
pub struct SoftMoa {
    /// Slot parameters Φ, `[d, N · slots]` (the reference's `[d, N, slots]` flattened).
    pub slots: Param<Tensor<2>>,
    /// The bottleneck experts.
    pub experts: Vec<Bottleneck>,
    /// Slots per expert.
    #[module(skip)]
    pub slots_per_expert: usize,
}

/// A mixture of adapters of either kind.
#[derive(Module, Debug)]
pub enum Moa {
    /// See [`DenseMoa`].
    Dense(DenseMoa),
    /// See [`SoftMoa`].
    Soft(SoftMoa),
}

impl Moa {
    /// A fresh mixture for width `d`.
    pub fn new(config: &MoaConfig, d: usize, init_mode: Init, device: &Device) -> Self {
        let b = d / config.reduction_rate;
        let n = config.experts;
        let experts = (0..n)
            .map(|_| Bottleneck::new(d, b, init_mode, device))
            .collect();
        match config.kind {
            MoaKind::Dense => Self::Dense(DenseMoa {
                router: init::linear(d, n, true, init::hf_normal(), device),
                experts,
            }),
            MoaKind::Soft => {
                // xavier_normal_ on [d, N, p]: fan_in = N·p, fan_out = d·p.
                let p = config.slots;
                let std = (2.0 / ((n * p) + d * p) as f64).sqrt();
                Self::Soft(SoftMoa {
                    slots: Param::from_tensor(Tensor::random(
                        [d, n * p],
                        Distribution::Normal(0.0, std),
                        device,
                    )),
                    experts,
                    slots_per_expert: p,
                })
            }
        }
    }

    /// # Shapes
    /// - x, output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Self::Dense(m) => m.forward(x),
            Self::Soft(m) => m.forward(x),
        }
    }
}

impl DenseMoa {
    /// `Σ_e softmax(router(x))_e · A_e(x)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let weights = softmax(crate::kernels::linear(&self.router, x.clone()), 2);
        self.experts
            .iter()
            .enumerate()
            .map(|(e, expert)| expert.forward(x.clone()) * weights.clone().narrow(2, e, 1))
            .reduce(|a, b| a + b)
            .expect("at least one expert")
    }
}

impl SoftMoa {
    /// Soft dispatch over tokens, experts on their slots, soft combine over slots.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, _, d] = x.dims();
        let phi = self.slots.val();
        let total = phi.dims()[1];
        let logits = x
            .clone()
            .matmul(phi.unsqueeze_dim::<3>(0).expand([batch, d, total]));
        let dispatch = softmax(logits.clone(), 1);
        let combine = softmax(logits, 2);
        let slot_inputs = dispatch.swap_dims(1, 2).matmul(x);
        let p = self.slots_per_expert;
        let slot_outputs = Tensor::cat(
            self.experts
                .iter()
                .enumerate()
                .map(|(e, expert)| expert.forward(slot_inputs.clone().narrow(1, e * p, p)))
                .collect(),
            1,
        );
        combine.matmul(slot_outputs)
    }
}

impl PetlMethod for MoaConfig {
    fn validate(&self, d: usize, _layers: usize) -> Result<(), ConfigError> {
        super::config::reduced_width(d, self.reduction_rate, "MoA")?;
        if !(1..=MAX_EXPERTS).contains(&self.experts) || !(1..=MAX_TOKENS).contains(&self.slots) {
            return Err(ConfigError(format!(
                "MoA needs 1..={MAX_EXPERTS} experts and 1..={MAX_TOKENS} slots per expert, \
                 got {} and {}",
                self.experts, self.slots
            )));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        MODULE_LR
    }

    /// PETL_AST trains the LayerNorm in front of the sub-layer the mixture sits beside.
    fn trains_norm_at(&self, location: Location) -> bool {
        self.location == location
    }
}
