//! [`PetlConfig`]: which PETL method(s) to apply to the AST, as one serialisable value.
//!
//! The methods compose: every field is independent (adapters + LoRA + deep prompts is the paper's
//! appendix-B combination). Presets for the paper's named methods are built by
//! [`PetlConfig::preset`].

use serde::{Deserialize, Serialize};

use super::init::Init;
use super::registry::{MethodConfig, PetlMethod, FULL_LR, HEAD_LR, MODULE_LR};

/// Where the classification head reads the encoder output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum HeadInput {
    /// Mean of all output tokens (the paper's `final_output: ALL`).
    #[default]
    #[cfg_attr(feature = "cli", value(name = "ALL"))]
    All,
    /// The CLS token.
    #[cfg_attr(feature = "cli", value(name = "CLS"))]
    Cls,
}

/// How much of the backbone trains besides what the methods add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// Frozen (every PETL method; linear probing when nothing else is added).
    #[default]
    Frozen,
    /// Every backbone tensor trains (full fine-tuning).
    Full,
    /// Only the biases of every Linear and LayerNorm of the encoder and the final LayerNorm
    /// (BitFit, Ben Zaken et al. 2022).
    Bitfit,
}

/// Sub-layer of an encoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Location {
    /// Multi-head self-attention.
    #[serde(rename = "MHSA", alias = "mhsa")]
    #[cfg_attr(feature = "cli", value(name = "MHSA", alias = "mhsa"))]
    Mhsa,
    /// Feed-forward MLP.
    #[serde(rename = "FFN", alias = "ffn")]
    #[cfg_attr(feature = "cli", value(name = "FFN", alias = "ffn"))]
    Ffn,
}

/// How an adapter is wired to its sub-layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Insertion {
    /// Beside the sub-layer.
    Parallel,
    /// In series with the sub-layer.
    Sequential,
}

/// Whether the adapter reads the sub-layer's input or its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Reads the (layer-normed) sub-layer input.
    Before,
    /// Reads the sub-layer output.
    After,
}

/// The adapter's inner network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum AdapterBlock {
    /// `up(GELU(down(x)))` (Houlsby et al. 2019).
    Bottleneck,
    /// `up(QuickGELU(conv3(QuickGELU(down(x)))))` over the token axis (Jie & Deng 2022).
    Convpass,
    /// The Conformer convolution module (Gulati et al. 2020) as a bottleneck.
    Conformer,
}

/// One adapter per layer at one place.
///
/// With `F` the sub-layer, `z` its layer-normed input and `A` the adapter, the sub-layer output
/// (before the layer's own residual) is:
/// - parallel + before: `F(z) + A(z) [+ z]`
/// - sequential + after: `A(F(z)) [+ F(z)]`
/// - sequential + before: `F(A(z)) [+ A(z)]`
/// - parallel + after: `F(z) + A(F(z))`
///
/// where `[…]` is added when `residual` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Sub-layer the adapter belongs to.
    pub location: Location,
    /// Inner network.
    pub block: AdapterBlock,
    /// Parallel or sequential.
    pub insertion: Insertion,
    /// Reads the sub-layer input or output.
    pub position: Position,
    /// Adds the adapter's input to its output.
    #[serde(default)]
    pub residual: bool,
    /// Reduction rate RR: bottleneck width `round(d / RR)`.
    pub reduction_rate: usize,
    /// Depth-wise kernel size of the Conformer block.
    #[serde(default = "default_kernel")]
    pub kernel_size: usize,
}

fn default_kernel() -> usize {
    31
}

/// LoRA on attention projections (Hu et al. 2022), as in PETL_AST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Reduction rate RR: rank `round(d / RR)`.
    pub reduction_rate: usize,
    /// Scale numerator: the update is `alpha / RR · up(down(x))` (PETL_AST's scaling).
    pub alpha: f64,
    /// Projections adapted, from `q`, `k`, `v`, `o`.
    pub targets: Vec<LoraTarget>,
}

/// An attention projection LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LoraTarget {
    /// Query `Wq`.
    Q,
    /// Key `Wk`.
    K,
    /// Value `Wv`.
    V,
    /// Output `Wo`.
    O,
}

/// Prompt tuning (VPT, Jia et al. 2022): prompts replace the distillation token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptConfig {
    /// Number of prompt tokens `p`.
    pub length: usize,
    /// Deep: fresh prompts before every layer (DPT); shallow: only at the input (SPT).
    pub deep: bool,
}

/// Prefix tuning (Li & Liang 2021): learned key and value vectors in every layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixConfig {
    /// Number of prefix vectors `p`: `p/2` keys and `p/2` values (must be even).
    pub length: usize,
}

/// Mixture of adapters (Cappellazzo et al., arXiv 2402.00828).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoaConfig {
    /// Dense (every expert on every token, softmax router) or Soft (slots).
    pub kind: MoaKind,
    /// Sub-layer the mixture sits beside.
    pub location: Location,
    /// Number of bottleneck experts.
    pub experts: usize,
    /// Reduction rate of each expert.
    pub reduction_rate: usize,
    /// Slots per expert (Soft-MoA).
    #[serde(default = "one")]
    pub slots: usize,
}

fn one() -> usize {
    1
}

/// Kind of mixture of adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoaKind {
    /// Dense-MoA.
    Dense,
    /// Soft-MoA.
    Soft,
}

/// Which PETL method(s) to apply, and how.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PetlConfig {
    /// What the backbone itself trains.
    #[serde(default)]
    pub backbone: Backbone,
    /// Head input.
    #[serde(default)]
    pub head: HeadInput,
    /// Adapters (at most one parallel and one sequential per location).
    #[serde(default)]
    pub adapters: Vec<AdapterConfig>,
    /// LoRA.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
    /// Prompt tuning.
    #[serde(default)]
    pub prompt: Option<PromptConfig>,
    /// Prefix tuning.
    #[serde(default)]
    pub prefix: Option<PrefixConfig>,
    /// Mixture of adapters.
    #[serde(default)]
    pub moa: Option<MoaConfig>,
    /// Methods of the registry ([`super::registry`]), e.g. IA³.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<MethodConfig>,
    /// Reproduce what the PETL_AST reference code effectively computes, quirks included (see
    /// `docs/petl_reference.md` §7): re-initialised adapter/LoRA weights, zeroed position
    /// embeddings, Convpass without its conv, Conformer without its input LayerNorm, the
    /// Pfeiffer-MHSA MoA output added twice.
    #[serde(default)]
    pub paper_compat: bool,
}

/// Most prompt tokens, prefix vectors or Soft-MoA slots per expert (the paper uses up to 300).
pub const MAX_TOKENS: usize = 4096;
/// Largest Conformer depth-wise kernel (the paper uses 31).
pub const MAX_KERNEL: usize = 1023;
/// Most experts of a mixture of adapters (the paper uses up to 7).
pub const MAX_EXPERTS: usize = 256;

/// Why a [`PetlConfig`] cannot be applied to a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PETL configuration: {0}")]
pub struct ConfigError(pub String);

/// `round(d / rr)` with the check that it is a usable width.
pub fn reduced_width(d: usize, rr: usize, what: &str) -> Result<usize, ConfigError> {
    if rr == 0 {
        return Err(ConfigError(format!(
            "{what}: reduction rate must be positive, got 0"
        )));
    }
    if !d.is_multiple_of(rr) {
        return Err(ConfigError(format!(
            "{what}: reduction rate {rr} does not divide the hidden size {d}"
        )));
    }
    Ok(d / rr)
}

impl PetlConfig {
    /// How the new modules start: [`Init::Paper`] under `paper_compat`.
    pub fn init_mode(&self) -> Init {
        if self.paper_compat {
            Init::Paper
        } else {
            Init::Sound
        }
    }

    /// What to do with the checkpoint's position embeddings when the input length changes:
    /// zero them under `paper_compat` (what the reference code gets), else crop / interpolate.
    pub fn position_mode(&self) -> crate::model::PositionMode {
        if self.paper_compat {
            crate::model::PositionMode::Zero
        } else {
            crate::model::PositionMode::Adapt
        }
    }

    /// Every method this config applies (the backbone's own training included when it is not
    /// frozen); empty for a linear probe.
    pub fn each_method(&self) -> Vec<&dyn PetlMethod> {
        let mut methods: Vec<&dyn PetlMethod> = Vec::new();
        if self.backbone != Backbone::Frozen {
            methods.push(&self.backbone);
        }
        methods.extend(self.adapters.iter().map(|a| a as &dyn PetlMethod));
        let optional: [Option<&dyn PetlMethod>; 4] = [
            self.lora.as_ref().map(|m| m as _),
            self.prompt.as_ref().map(|m| m as _),
            self.prefix.as_ref().map(|m| m as _),
            self.moa.as_ref().map(|m| m as _),
        ];
        methods.extend(optional.into_iter().flatten());
        methods.extend(self.methods.iter().map(MethodConfig::method));
        methods
    }

    /// Whether nothing but the head and the final LayerNorm trains.
    pub fn is_linear_probe(&self) -> bool {
        self.each_method().is_empty()
    }

    /// The paper's peak learning rate: the smallest of the methods' (5e-5 for full fine-tuning,
    /// 5e-3 for added modules and BitFit, 1e-2 for prompts and prefixes), 1e-3 for a probe.
    pub fn learning_rate(&self) -> f64 {
        self.each_method()
            .iter()
            .map(|m| m.learning_rate())
            .reduce(f64::min)
            .unwrap_or(HEAD_LR)
    }

    /// Whether the LayerNorm in front of the sub-layer at `location` trains.
    pub fn trains_norm_at(&self, location: Location) -> bool {
        self.each_method()
            .iter()
            .any(|m| m.trains_norm_at(location))
    }

    /// Checks the config against a model of width `d` with `layers` encoder layers.
    ///
    /// Sizes are bounded ([`MAX_TOKENS`], [`MAX_KERNEL`], [`MAX_EXPERTS`]) because adapter
    /// files carry their config: a corrupt one must be refused, not allocated.
    pub fn validate(&self, d: usize, layers: usize) -> Result<(), ConfigError> {
        for method in self.each_method() {
            method.validate(d, layers)?;
        }
        for location in [Location::Mhsa, Location::Ffn] {
            for insertion in [Insertion::Parallel, Insertion::Sequential] {
                let n = self
                    .adapters
                    .iter()
                    .filter(|a| a.location == location && a.insertion == insertion)
                    .count();
                if n > 1 {
                    return Err(ConfigError(format!(
                        "{n} {insertion:?} adapters at {location:?}; at most one of each kind per location"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Full fine-tuning and BitFit train the backbone itself.
impl PetlMethod for Backbone {
    fn validate(&self, _d: usize, _layers: usize) -> Result<(), ConfigError> {
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        match self {
            Backbone::Full => FULL_LR,
            Backbone::Bitfit => MODULE_LR,
            Backbone::Frozen => HEAD_LR,
        }
    }
}
