//! The paper's named methods as PETL_AST's command-line flags, turned into a [`PetlConfig`].
//!
//! Flag names mirror PETL_AST `main.py` (`--method adapter --adapter-block bottleneck
//! --adapter-type Pfeiffer --seq-or-par parallel --reduction-rate 64 --apply-residual false`, …),
//! with real booleans (the reference's `type=bool` flags read "False" as true).

use serde::{Deserialize, Serialize};

use super::config::{
    AdapterBlock, AdapterConfig, Backbone, ConfigError, HeadInput, Insertion, Location, LoraConfig,
    LoraTarget, MoaConfig, MoaKind, PetlConfig, Position, PrefixConfig, PromptConfig,
};
use super::registry::MethodConfig;

/// A PETL method of the paper (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Linear probing: frozen backbone, trains the final LayerNorm and the head.
    #[cfg_attr(feature = "cli", value(name = "linear"))]
    Linear,
    /// Full fine-tuning.
    #[cfg_attr(feature = "cli", value(name = "full-FT", alias = "full"))]
    Full,
    /// BitFit: biases only.
    #[cfg_attr(feature = "cli", value(name = "BitFit", alias = "bitfit"))]
    Bitfit,
    /// Prompt tuning (shallow, or deep with `--deep`).
    #[cfg_attr(feature = "cli", value(name = "prompt-tuning"))]
    PromptTuning,
    /// Prefix tuning.
    #[cfg_attr(feature = "cli", value(name = "prefix-tuning"))]
    PrefixTuning,
    /// LoRA.
    #[cfg_attr(feature = "cli", value(name = "LoRA", alias = "lora"))]
    Lora,
    /// Adapters (Pfeiffer, Houlsby, HOU-mixed; or the placement ablation).
    #[cfg_attr(feature = "cli", value(name = "adapter"))]
    Adapter,
    /// Hydra: a sequential and a parallel adapter at the FFN.
    #[cfg_attr(feature = "cli", value(name = "adapter-Hydra", alias = "hydra"))]
    Hydra,
    /// Dense mixture of adapters.
    #[cfg_attr(feature = "cli", value(name = "MoA", alias = "dense-moa"))]
    DenseMoa,
    /// Soft mixture of adapters.
    #[cfg_attr(feature = "cli", value(name = "soft-MoA", alias = "soft-moa"))]
    SoftMoa,
    /// IA³: learned rescaling of keys, values and the MLP hidden activation.
    #[cfg_attr(feature = "cli", value(name = "IA3", alias = "ia3"))]
    Ia3,
}

/// Adapter configuration (`--adapter-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum AdapterType {
    /// One adapter, at the FFN.
    #[cfg_attr(feature = "cli", value(name = "Pfeiffer", alias = "pfeiffer"))]
    Pfeiffer,
    /// Two adapters, at the MHSA and the FFN.
    #[cfg_attr(feature = "cli", value(name = "Houlsby", alias = "houlsby"))]
    Houlsby,
    /// Parallel adapter at the MHSA, sequential (with residual) at the FFN.
    #[cfg_attr(feature = "cli", value(name = "HOU-mixed", alias = "mixed"))]
    HouMixed,
}

/// Flags that choose and size a method; [`MethodArgs::to_config`] turns them into a
/// [`PetlConfig`]. Defaults are the paper's Table I settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct MethodArgs {
    /// PETL method.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "adapter"))]
    pub method: Method,
    /// Adapter block.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "bottleneck"))]
    pub adapter_block: AdapterBlock,
    /// Adapter configuration.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "Pfeiffer"))]
    pub adapter_type: AdapterType,
    /// Parallel or sequential adapters.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "parallel"))]
    pub seq_or_par: Insertion,
    /// Adapter (and MoA expert) reduction rate RR: width d / RR.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub reduction_rate: usize,
    /// Add each adapter's input to its output.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = false, action = clap::ArgAction::Set))]
    pub apply_residual: bool,
    /// Depth-wise kernel of the Conformer adapter.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 31))]
    pub kernel_size: usize,
    /// Table III ablation: one adapter at `--location`, `--seq-or-par`, `--befafter`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub is_adapter_ablation: bool,
    /// Sub-layer of the ablation adapter or of the mixture.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "FFN"))]
    pub location: Location,
    /// Whether the ablation adapter reads the sub-layer input (before) or output (after).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "before"))]
    pub befafter: Position,
    /// LoRA reduction rate RR: rank d / RR.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 128))]
    pub reduction_rate_lora: usize,
    /// LoRA alpha; the update is scaled by alpha / RR.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8.0))]
    pub alpha_lora: f64,
    /// Projections LoRA adapts.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_enum, value_delimiter = ',', default_value = "q,v")
    )]
    pub lora_targets: Vec<LoraTarget>,
    /// Prompt tokens (prompt tuning) or prefix vectors (prefix tuning); default 25 / 24.
    #[cfg_attr(feature = "cli", arg(long))]
    pub prompt_len: Option<usize>,
    /// Deep prompt tuning (fresh prompts at every layer).
    #[cfg_attr(feature = "cli", arg(long))]
    pub deep: bool,
    /// Experts of a mixture of adapters.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 7))]
    pub num_adapters: usize,
    /// Slots per expert (Soft-MoA).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub num_slots: usize,
    /// Head input: mean of all tokens (paper) or CLS.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value = "ALL"))]
    pub final_output: HeadInput,
    /// Reproduce the reference code's effective behaviour, quirks included.
    #[cfg_attr(feature = "cli", arg(long))]
    pub paper_compat: bool,
    /// Add LoRA (`--reduction-rate-lora`, `--alpha-lora`) to an adapter method (appendix B).
    #[cfg_attr(feature = "cli", arg(long))]
    pub with_lora: bool,
    /// Add deep prompts (`--prompt-len`) to an adapter method (appendix B).
    #[cfg_attr(feature = "cli", arg(long))]
    pub with_deep_prompts: bool,
}

impl Default for MethodArgs {
    fn default() -> Self {
        Self {
            method: Method::Adapter,
            adapter_block: AdapterBlock::Bottleneck,
            adapter_type: AdapterType::Pfeiffer,
            seq_or_par: Insertion::Parallel,
            reduction_rate: 64,
            apply_residual: false,
            kernel_size: 31,
            is_adapter_ablation: false,
            location: Location::Ffn,
            befafter: Position::Before,
            reduction_rate_lora: 128,
            alpha_lora: 8.0,
            lora_targets: vec![LoraTarget::Q, LoraTarget::V],
            prompt_len: None,
            deep: false,
            num_adapters: 7,
            num_slots: 1,
            final_output: HeadInput::All,
            paper_compat: false,
            with_lora: false,
            with_deep_prompts: false,
        }
    }
}

impl MethodArgs {
    /// Default flags for `method`.
    pub fn for_method(method: Method) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }

    fn adapter(
        &self,
        location: Location,
        insertion: Insertion,
        position: Position,
        residual: bool,
    ) -> AdapterConfig {
        AdapterConfig {
            location,
            block: self.adapter_block,
            insertion,
            position,
            residual,
            reduction_rate: self.reduction_rate,
            kernel_size: self.kernel_size,
        }
    }

    fn natural_position(insertion: Insertion) -> Position {
        match insertion {
            Insertion::Parallel => Position::Before,
            Insertion::Sequential => Position::After,
        }
    }

    fn adapters(&self) -> Vec<AdapterConfig> {
        let ins = self.seq_or_par;
        let pos = Self::natural_position(ins);
        let r = self.apply_residual;
        if self.is_adapter_ablation {
            // The ablation class always keeps the sequential adapter's residual.
            let residual = ins == Insertion::Sequential;
            return vec![self.adapter(self.location, ins, self.befafter, residual)];
        }
        match self.adapter_type {
            AdapterType::Pfeiffer => vec![self.adapter(Location::Ffn, ins, pos, r)],
            AdapterType::Houlsby => vec![
                self.adapter(Location::Mhsa, ins, pos, r),
                self.adapter(Location::Ffn, ins, pos, r),
            ],
            AdapterType::HouMixed => vec![
                self.adapter(Location::Mhsa, Insertion::Parallel, Position::Before, false),
                self.adapter(Location::Ffn, Insertion::Sequential, Position::After, true),
            ],
        }
    }

    fn lora(&self) -> LoraConfig {
        LoraConfig {
            reduction_rate: self.reduction_rate_lora,
            alpha: self.alpha_lora,
            targets: self.lora_targets.clone(),
        }
    }

    fn moa(&self, kind: MoaKind) -> MoaConfig {
        MoaConfig {
            kind,
            location: self.location,
            experts: self.num_adapters,
            reduction_rate: self.reduction_rate,
            slots: self.num_slots,
        }
    }

    /// The [`PetlConfig`] these flags describe, validated for a model of width `d`.
    pub fn to_config(&self, d: usize, layers: usize) -> Result<PetlConfig, ConfigError> {
        let mut config = PetlConfig {
            head: self.final_output,
            paper_compat: self.paper_compat,
            ..PetlConfig::default()
        };
        match self.method {
            Method::Linear => {}
            Method::Full => config.backbone = Backbone::Full,
            Method::Bitfit => config.backbone = Backbone::Bitfit,
            Method::PromptTuning => {
                config.prompt = Some(PromptConfig {
                    length: self.prompt_len.unwrap_or(25),
                    deep: self.deep,
                })
            }
            Method::PrefixTuning => {
                config.prefix = Some(PrefixConfig {
                    length: self.prompt_len.unwrap_or(24),
                })
            }
            Method::Lora => config.lora = Some(self.lora()),
            Method::Adapter => config.adapters = self.adapters(),
            Method::Hydra => {
                config.adapters = vec![
                    self.adapter(Location::Ffn, Insertion::Sequential, Position::After, true),
                    self.adapter(Location::Ffn, Insertion::Parallel, Position::Before, false),
                ]
            }
            Method::DenseMoa => config.moa = Some(self.moa(MoaKind::Dense)),
            Method::SoftMoa => config.moa = Some(self.moa(MoaKind::Soft)),
            Method::Ia3 => config.methods.push(MethodConfig::Ia3(Default::default())),
        }
        if self.with_lora {
            config.lora = Some(self.lora());
        }
        if self.with_deep_prompts {
            config.prompt = Some(PromptConfig {
                length: self.prompt_len.unwrap_or(25),
                deep: true,
            });
        }
        config.validate(d, layers)?;
        Ok(config)
    }
}
