//! Adapters: the Bottleneck, Convpass and Conformer blocks and how they are wired to a sub-layer.
//!
//! Cappellazzo et al., "Parameter-Efficient Transfer Learning of Audio Spectrogram Transformers"
//! (arXiv 2312.03694), §III-B; reference: PETL_AST `src/AST_adapters.py`
//! (<https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_adapters.py#L209-L269>).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, PaddingConfig1d};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::kernels::{gelu, linear};
use crate::model::activation::quick_gelu;
use crate::model::norm::LayerNorm;

use super::config::{
    AdapterBlock, AdapterConfig, ConfigError, Insertion, Location, Position, MAX_KERNEL,
};
use super::init::{self, Init};
use super::registry::{PetlMethod, MODULE_LR};

/// `up(GELU(down(x)))`.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// `d → b`.
    pub down: Linear,
    /// `b → d`.
    pub up: Linear,
}

impl Bottleneck {
    /// Sound mode: `down` Kaiming, `up` zero (the adapter starts as the zero function).
    /// Paper mode: both `N(0, 0.02²)` as `from_pretrained` leaves them.
    pub fn new(d: usize, b: usize, init_mode: Init, device: &Device) -> Self {
        if init_mode == Init::Paper {
            Self {
                down: init::linear(d, b, true, init::hf_normal(), device),
                up: init::linear(b, d, true, init::hf_normal(), device),
            }
        } else {
            Self {
                down: init::linear(d, b, true, init::kaiming(d), device),
                up: init::zero_linear(b, d, true, device),
            }
        }
    }

    /// # Shapes
    /// - x, output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.up, gelu(linear(&self.down, x)))
    }
}

/// Convpass (Jie & Deng, arXiv 2207.07039) as PETL_AST builds it: a 3-wide 1-D convolution over
/// the token axis between QuickGELU projections.
#[derive(Module, Debug)]
pub struct Convpass {
    /// `d → b`.
    pub down: Linear,
    /// `b → b`, kernel 3, "same" padding, over tokens.
    pub conv: Conv1d,
    /// `b → d`.
    pub up: Linear,
    /// Reference quirk: the conv output is discarded and `up` receives `q(q(down x))`.
    #[module(skip)]
    pub skip_conv: bool,
}

impl Convpass {
    /// Xavier-uniform conv (kept by `from_pretrained`); projections as [`Bottleneck::new`].
    pub fn new(d: usize, b: usize, init_mode: Init, device: &Device) -> Self {
        let Bottleneck { down, up } = Bottleneck::new(d, b, init_mode, device);
        let mut conv = Conv1dConfig::new(b, b, 3)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        conv.bias = Some(burn::module::Param::from_tensor(Tensor::zeros([b], device)));
        Self {
            down,
            conv,
            up,
            skip_conv: init_mode == Init::Paper,
        }
    }

    /// # Shapes
    /// - x, output: `[batch, tokens, d]`
    // PETL_AST: https://github.com/umbertocappellazzo/PETL_AST/blob/94b588961520f9001fb8937a7840e9da5a2825a3/src/AST_adapters.py#L70-L82
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let u = quick_gelu(linear(&self.down, x));
        let mixed = if self.skip_conv {
            u
        } else {
            self.conv.forward(u.swap_dims(1, 2)).swap_dims(1, 2)
        };
        linear(&self.up, quick_gelu(mixed))
    }
}

/// The Conformer convolution module (Gulati et al. 2020) as a bottleneck adapter:
/// LN → point-wise conv (d → 2b) → GLU → depth-wise conv (k) → BatchNorm → SiLU →
/// point-wise conv (b → d), over the token axis.
#[derive(Module, Debug)]
pub struct Conformer {
    /// Input LayerNorm.
    pub norm: LayerNorm,
    /// Point-wise `d → 2b` (a Linear; PETL_AST stores it as a kernel-1 Conv1d).
    pub pointwise_in: Linear,
    /// Depth-wise conv, `b` groups.
    pub depthwise: Conv1d,
    /// BatchNorm over the `b` channels.
    pub batch_norm: BatchNorm,
    /// Point-wise `b → d`.
    pub pointwise_out: Linear,
    /// Reference quirk: the input LayerNorm is computed and discarded.
    #[module(skip)]
    pub skip_norm: bool,
}

impl Conformer {
    /// PyTorch's default Conv1d inits (kept by `from_pretrained`); in sound mode the output
    /// projection starts at zero.
    pub fn new(d: usize, b: usize, kernel: usize, init_mode: Init, device: &Device) -> Self {
        let pointwise_out = if init_mode == Init::Paper {
            init::linear(b, d, true, init::kaiming(b), device)
        } else {
            init::zero_linear(b, d, true, device)
        };
        let mut pointwise_in = init::linear(d, 2 * b, true, init::kaiming(d), device);
        let mut depthwise = Conv1dConfig::new(b, b, kernel)
            .with_groups(b)
            .with_padding(PaddingConfig1d::Explicit(kernel / 2, kernel / 2))
            .with_initializer(Initializer::Uniform {
                min: -1.0 / (kernel as f64).sqrt(),
                max: 1.0 / (kernel as f64).sqrt(),
            })
            .init(device);
        // PyTorch draws conv/linear biases from the same U(±1/√fan_in) as the weights.
        pointwise_in.bias = Some(burn::module::Param::from_tensor(Tensor::random(
            [2 * b],
            init::kaiming(d),
            device,
        )));
        depthwise.bias = Some(burn::module::Param::from_tensor(Tensor::random(
            [b],
            init::kaiming(kernel),
            device,
        )));
        Self {
            // PyTorch `nn.LayerNorm`'s default ε, as the reference builds it.
            norm: LayerNorm::new(d, 1e-5, device),
            pointwise_in,
            depthwise,
            batch_norm: BatchNormConfig::new(b).init(device),
            pointwise_out,
            skip_norm: init_mode == Init::Paper,
        }
    }

    /// # Shapes
    /// - x, output: `[batch, tokens, d]`
    // PETL_AST: https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_adapters.py#L126-L140
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = if self.skip_norm {
            x
        } else {
            self.norm.forward(x)
        };
        let h = linear(&self.pointwise_in, x);
        let b = h.dims()[2] / 2;
        let glu = h.clone().narrow(2, 0, b) * sigmoid(h.narrow(2, b, b));
        let h = self.depthwise.forward(glu.swap_dims(1, 2));
        let h = burn::tensor::activation::silu(self.batch_norm.forward(h));
        linear(&self.pointwise_out, h.swap_dims(1, 2))
    }
}

/// The inner network of an adapter.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per layer; boxing would complicate the module derive
pub enum Block {
    /// See [`Bottleneck`].
    Bottleneck(Bottleneck),
    /// See [`Convpass`].
    Convpass(Convpass),
    /// See [`Conformer`].
    Conformer(Conformer),
}

impl Block {
    /// A block of `kind` for width `d`, bottleneck `b`.
    pub fn new(
        kind: AdapterBlock,
        d: usize,
        b: usize,
        kernel: usize,
        init_mode: Init,
        device: &Device,
    ) -> Self {
        match kind {
            AdapterBlock::Bottleneck => Self::Bottleneck(Bottleneck::new(d, b, init_mode, device)),
            AdapterBlock::Convpass => Self::Convpass(Convpass::new(d, b, init_mode, device)),
            AdapterBlock::Conformer => {
                Self::Conformer(Conformer::new(d, b, kernel, init_mode, device))
            }
        }
    }

    /// # Shapes
    /// - x, output: `[batch, tokens, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Self::Bottleneck(m) => m.forward(x),
            Self::Convpass(m) => m.forward(x),
            Self::Conformer(m) => m.forward(x),
        }
    }
}

/// An adapter with its wiring (see [`AdapterConfig`] for the formulas).
#[derive(Module, Debug)]
pub struct Adapter {
    /// The inner network.
    pub block: Block,
    /// Parallel or sequential.
    #[module(skip)]
    pub insertion: Insertion,
    /// Before or after the sub-layer.
    #[module(skip)]
    pub position: Position,
    /// Adds its input to its output.
    #[module(skip)]
    pub residual: bool,
}

impl Adapter {
    /// A fresh adapter for width `d`.
    pub fn new(config: &AdapterConfig, d: usize, init_mode: Init, device: &Device) -> Self {
        let b = d / config.reduction_rate;
        Self {
            block: Block::new(config.block, d, b, config.kernel_size, init_mode, device),
            insertion: config.insertion,
            position: config.position,
            residual: config.residual,
        }
    }

    /// `A(x) [+ x]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let out = self.block.forward(x.clone());
        if self.residual {
            out + x
        } else {
            out
        }
    }
}

impl PetlMethod for AdapterConfig {
    fn validate(&self, d: usize, _layers: usize) -> Result<(), ConfigError> {
        super::config::reduced_width(d, self.reduction_rate, "adapter")?;
        if self.block == AdapterBlock::Conformer && self.kernel_size > MAX_KERNEL {
            return Err(ConfigError(format!(
                "Conformer adapter: kernel size must be at most {MAX_KERNEL}, got {}",
                self.kernel_size
            )));
        }
        if self.block == AdapterBlock::Conformer && self.kernel_size.is_multiple_of(2) {
            return Err(ConfigError(format!(
                "Conformer adapter: kernel size must be odd for \"same\" padding, got {}",
                self.kernel_size
            )));
        }
        if self.insertion == Insertion::Parallel
            && self.position == Position::After
            && self.residual
        {
            return Err(ConfigError(
                "a parallel adapter after the sub-layer has no residual option".into(),
            ));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        MODULE_LR
    }

    /// PETL_AST trains the LayerNorm in front of every sub-layer that carries an adapter.
    fn trains_norm_at(&self, location: Location) -> bool {
        self.location == location
    }
}
