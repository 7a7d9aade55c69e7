//! Few-shot personalisation: a handful of clips per new class turned into a PETL training run on
//! a checkpoint's backbone. The recipe the web page uses; the native tests run the same code.
//!
//! ```text
//! clips (16 kHz) ──fbank──▶ examples ──▶ PetlModel(any method) ──TrainSession──▶ Classifier
//! ```
//!
//! The head starts as the nearest-class-mean classifier of the clips' pooled embeddings
//! ([`crate::prototypes`], "weight imprinting", Qi et al., CVPR 2018): with one clip per class
//! the model already answers before its first step, and training refines it. The same class
//! means give a leave-one-out estimate of how well the classes separate ([`HeldOut`]).

use std::str::FromStr;

use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::audio::{resample, FeatureExtractor, AST_SAMPLE_RATE};
use crate::model::{Checkpoint, LoadError, LoadOptions};
use crate::petl::checkpoint::sha256_hex;
use crate::petl::{
    AdapterBlock, AdapterMetadata, AdapterType, Method, MethodArgs, PetlConfig, PetlModel,
};
use crate::prototypes::{ClassMeans, HeldOutEstimate};
use crate::train::{
    Example, OptimizerConfig, SpecAugment, TimeShift, TrainConfig, TrainError, TrainSession,
};

/// The methods offered for personalisation: every PETL method of the crate except full
/// fine-tuning (its file would be a whole backbone, and on AST-base its optimizer state alone
/// outgrows the page's memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonaliseMethod {
    /// Parallel Bottleneck adapter after each FFN input (Pfeiffer placement).
    Adapter,
    /// LoRA on the query and value projections.
    Lora,
    /// Linear probe: only the final LayerNorm and the head train.
    Linear,
    /// Parallel Bottleneck adapters after both sub-layers (Houlsby placement), the default: the
    /// best of the page's methods on new speakers and new words (BENCHMARKS.md, few-shot).
    Houlsby,
    /// BitFit: every bias of the backbone trains.
    Bitfit,
    /// Deep prompt tuning: eight learned tokens before every layer.
    Prompt,
    /// Prefix tuning: eight learned keys and values in every layer's attention.
    Prefix,
    /// IA³: learned rescaling of keys, values and the MLP hidden activation.
    Ia3,
    /// Parallel Conformer adapter at the FFN (Pfeiffer placement).
    Conformer,
    /// Parallel Convpass adapter at the FFN (Pfeiffer placement).
    Convpass,
    /// Hydra: a sequential and a parallel Bottleneck adapter at the FFN.
    Hydra,
    /// Dense mixture of seven Bottleneck adapters at the FFN.
    Moa,
    /// Soft mixture of seven Bottleneck adapters at the FFN.
    SoftMoa,
}

impl PersonaliseMethod {
    /// Every method, the page's default first.
    pub const ALL: [Self; 13] = [
        Self::Houlsby,
        Self::Adapter,
        Self::Lora,
        Self::Linear,
        Self::Bitfit,
        Self::Prompt,
        Self::Prefix,
        Self::Ia3,
        Self::Conformer,
        Self::Convpass,
        Self::Hydra,
        Self::Moa,
        Self::SoftMoa,
    ];

    /// The name the page, the CLI and option files use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adapter => "adapter",
            Self::Lora => "lora",
            Self::Linear => "linear",
            Self::Houlsby => "houlsby",
            Self::Bitfit => "bitfit",
            Self::Prompt => "prompt",
            Self::Prefix => "prefix",
            Self::Ia3 => "ia3",
            Self::Conformer => "conformer",
            Self::Convpass => "convpass",
            Self::Hydra => "hydra",
            Self::Moa => "moa",
            Self::SoftMoa => "soft-moa",
        }
    }
}

impl PersonaliseMethod {
    /// The page's method closest to the paper's flags (`train --recipe personalise`): the
    /// method, the adapter block and Houlsby's two placements; the page's own sizes. `None` for
    /// full fine-tuning.
    pub fn for_flags(flags: &MethodArgs) -> Option<Self> {
        Some(match flags.method {
            Method::Adapter => match (flags.adapter_block, flags.adapter_type) {
                (AdapterBlock::Conformer, _) => Self::Conformer,
                (AdapterBlock::Convpass, _) => Self::Convpass,
                (AdapterBlock::Bottleneck, AdapterType::Houlsby) => Self::Houlsby,
                (AdapterBlock::Bottleneck, _) => Self::Adapter,
            },
            Method::Lora => Self::Lora,
            Method::Linear => Self::Linear,
            Method::Bitfit => Self::Bitfit,
            Method::PromptTuning => Self::Prompt,
            Method::PrefixTuning => Self::Prefix,
            Method::Ia3 => Self::Ia3,
            Method::Hydra => Self::Hydra,
            Method::DenseMoa => Self::Moa,
            Method::SoftMoa => Self::SoftMoa,
            Method::Full => return None,
        })
    }
}

impl FromStr for PersonaliseMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let name = match s.to_ascii_lowercase().as_str() {
            "bottleneck" => "adapter".to_string(),
            "prompt-tuning" => "prompt".to_string(),
            "prefix-tuning" => "prefix".to_string(),
            other => other.to_string(),
        };
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown personalisation method \"{s}\" (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Prompt tokens of [`PersonaliseMethod::Prompt`] and prefix vectors of
/// [`PersonaliseMethod::Prefix`].
const PROMPT_TOKENS: usize = 8;

/// The largest reduction rate ≤ 64 that divides `d` and keeps at least 8 hidden units.
fn reduction_rate(d: usize) -> usize {
    (1..=64)
        .rev()
        .find(|&rr| d.is_multiple_of(rr) && d / rr >= 8)
        .unwrap_or(1)
}

impl PersonaliseMethod {
    /// What [`PersonaliseOptions::size`] sets for this method, in words for the page; `None`
    /// for the methods without a size (the page greys its size box out).
    pub fn size_meaning(self) -> Option<&'static str> {
        match self {
            Self::Adapter | Self::Houlsby | Self::Conformer | Self::Convpass | Self::Hydra => {
                Some("adapter width")
            }
            Self::Moa | Self::SoftMoa => Some("expert width"),
            Self::Lora => Some("LoRA rank"),
            Self::Prompt => Some("prompt tokens"),
            Self::Prefix => Some("prefix vectors"),
            Self::Linear | Self::Bitfit | Self::Ia3 => None,
        }
    }

    /// The method's [`PetlConfig`] for a backbone of width `d` and `layers` layers: the paper's
    /// settings, with adapters and LoRA at least 8 wide and 8 prompt tokens unless `size` (see
    /// [`PersonaliseOptions::size`]) says otherwise.
    pub fn petl_config(
        self,
        d: usize,
        layers: usize,
        size: Option<usize>,
    ) -> Result<PetlConfig, String> {
        if size == Some(0) {
            return Err("the method's size must be at least 1".into());
        }
        // A width w is the reduction rate d / w (the width then is d / (d / w), w or just above).
        let rr = size.map_or_else(|| reduction_rate(d), |w| (d / w).max(1));
        let tokens = size.unwrap_or(PROMPT_TOKENS);
        let adapter = |adapter_type, adapter_block| MethodArgs {
            adapter_type,
            adapter_block,
            seq_or_par: crate::petl::Insertion::Parallel,
            reduction_rate: rr,
            ..MethodArgs::for_method(Method::Adapter)
        };
        let args = match self {
            Self::Adapter => adapter(AdapterType::Pfeiffer, AdapterBlock::Bottleneck),
            Self::Houlsby => adapter(AdapterType::Houlsby, AdapterBlock::Bottleneck),
            Self::Conformer => adapter(AdapterType::Pfeiffer, AdapterBlock::Conformer),
            Self::Convpass => adapter(AdapterType::Pfeiffer, AdapterBlock::Convpass),
            Self::Lora => MethodArgs {
                reduction_rate_lora: rr,
                ..MethodArgs::for_method(Method::Lora)
            },
            Self::Linear => MethodArgs::for_method(Method::Linear),
            Self::Bitfit => MethodArgs::for_method(Method::Bitfit),
            Self::Ia3 => MethodArgs::for_method(Method::Ia3),
            Self::Prompt => MethodArgs {
                prompt_len: Some(tokens),
                deep: true,
                ..MethodArgs::for_method(Method::PromptTuning)
            },
            Self::Prefix => MethodArgs {
                // Half keys, half values: an even count.
                prompt_len: Some(tokens.div_ceil(2) * 2),
                ..MethodArgs::for_method(Method::PrefixTuning)
            },
            Self::Hydra => MethodArgs {
                reduction_rate: rr,
                ..MethodArgs::for_method(Method::Hydra)
            },
            Self::Moa => MethodArgs {
                reduction_rate: rr,
                ..MethodArgs::for_method(Method::DenseMoa)
            },
            Self::SoftMoa => MethodArgs {
                reduction_rate: rr,
                ..MethodArgs::for_method(Method::SoftMoa)
            },
        };
        args.to_config(d, layers).map_err(|e| e.to_string())
    }
}

/// What a personalisation run needs besides the clips. In serde form (the page's options) any
/// field left out keeps its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonaliseOptions {
    /// The method.
    pub method: PersonaliseMethod,
    /// Passes over the clips (and their speed-changed copies, see
    /// [`PersonaliseOptions::speed_perturb`]).
    pub epochs: usize,
    /// Clips per step.
    pub batch_size: usize,
    /// Peak learning rate; `None` takes the paper's for adapters and LoRA (5e-3) and 1e-2 for the
    /// linear probe (the paper's 1e-3 assumes thousands of steps).
    pub lr: Option<f64>,
    /// The method's main size: the width of each adapter (and mixture expert), the LoRA rank,
    /// or the number of prompt tokens / prefix vectors; `None` takes the page's defaults (at
    /// least 8 wide, 8 tokens). Methods without one (linear, BitFit, IA³) ignore it.
    pub size: Option<usize>,
    /// Input length cap in frames (the backbone's `max_length` if smaller).
    pub max_length: usize,
    /// Seed of the head/adapter initialisation order and shuffling.
    pub seed: u64,
    /// Each pass sees every clip shifted in time and with SpecAugment masks
    /// ([`PersonaliseOptions::AUGMENT_TIME_SHIFT`], [`PersonaliseOptions::AUGMENT_MASKS`]).
    pub augment: bool,
    /// Speed perturbation: besides each clip, train on it played at each of
    /// [`PersonaliseOptions::PERTURB_SPEEDS`] (tempo and pitch together, as Kaldi's speed
    /// perturbation). The class means that start the head are those of the clips as recorded.
    pub speed_perturb: bool,
}

impl PersonaliseOptions {
    /// The time shift of [`PersonaliseOptions::augment`].
    pub const AUGMENT_TIME_SHIFT: TimeShift = TimeShift { max_frames: 30 };
    /// The SpecAugment masks of [`PersonaliseOptions::augment`] (narrower than the paper's, for
    /// clips of one or two words).
    pub const AUGMENT_MASKS: SpecAugment = SpecAugment {
        freq_mask: 16,
        time_mask: 20,
    };

    /// The speeds of [`PersonaliseOptions::speed_perturb`].
    pub const PERTURB_SPEEDS: [f64; 2] = [0.9, 1.1];

    /// Input length in frames on a backbone that reads `backbone_max_length` frames.
    pub fn input_length(&self, backbone_max_length: usize) -> usize {
        self.max_length.min(backbone_max_length).max(16)
    }

    /// The speeds each clip is also trained at: [`PersonaliseOptions::PERTURB_SPEEDS`] with
    /// [`PersonaliseOptions::speed_perturb`], else none.
    pub fn speeds(&self) -> &'static [f64] {
        if self.speed_perturb {
            &Self::PERTURB_SPEEDS
        } else {
            &[]
        }
    }

    /// The examples the recipe trains on: the features of `clips` (16 kHz samples, class) in
    /// their order, then, with [`PersonaliseOptions::speed_perturb`], those of every clip at each
    /// of [`PersonaliseOptions::PERTURB_SPEEDS`] in turn.
    pub fn examples(
        &self,
        extractor: &FeatureExtractor,
        clips: &[(Vec<f32>, usize)],
    ) -> Vec<Example> {
        let example = |features, label| Example { features, label };
        let recorded = clips
            .iter()
            .map(|(samples, label)| example(extractor.extract(samples), *label));
        let copies = clips.iter().flat_map(|(samples, label)| {
            self.speed_copies(extractor, samples)
                .into_iter()
                .map(|features| example(features, *label))
        });
        let copies = self.speed_major(copies.collect());
        recorded.chain(copies).collect()
    }

    /// The inputs of `samples` (16 kHz) at each of [`Self::speeds`], in that order.
    pub fn speed_copies(&self, extractor: &FeatureExtractor, samples: &[f32]) -> Vec<Vec<f32>> {
        self.speeds()
            .iter()
            .map(|&speed| extractor.extract(&speed_changed(samples, speed)))
            .collect()
    }

    /// `copies` made clip after clip ([`Self::speed_copies`] of each) in the order the recipe
    /// trains on them: every clip at the first speed, then every clip at the next.
    pub fn speed_major(&self, copies: Vec<Example>) -> Vec<Example> {
        let speeds = self.speeds().len();
        if speeds < 2 {
            return copies;
        }
        let mut by_speed: Vec<Vec<Example>> = (0..speeds).map(|_| Vec::new()).collect();
        for (i, copy) in copies.into_iter().enumerate() {
            by_speed[i % speeds].push(copy);
        }
        by_speed.into_iter().flatten().collect()
    }

    /// The training settings of the recipe for `petl` on `clips` recorded clips (also the CLI's
    /// `train --recipe personalise`): batches hold at most that many examples.
    pub fn train_config(&self, petl: &PetlConfig, clips: usize) -> TrainConfig {
        let mut optimizer = OptimizerConfig::paper(petl);
        optimizer.lr = self.lr.unwrap_or(match self.method {
            // The paper's 1e-3 is for thousands of steps; a personalisation run has tens.
            PersonaliseMethod::Linear => 1e-2,
            _ => optimizer.lr,
        });
        TrainConfig {
            epochs: self.epochs.max(1),
            batch_size: self.batch_size.clamp(1, clips.max(1)),
            optimizer,
            seed: self.seed,
            spec_augment: self.augment.then_some(Self::AUGMENT_MASKS),
            max_bad_steps: 5,
            warmup_steps: 0,
            devices: Vec::new(),
            time_shift: self.augment.then_some(Self::AUGMENT_TIME_SHIFT),
        }
    }
}

impl Default for PersonaliseOptions {
    fn default() -> Self {
        Self {
            method: PersonaliseMethod::Houlsby,
            epochs: 7,
            batch_size: 16,
            lr: None,
            size: None,
            max_length: 200,
            seed: 0,
            augment: false,
            speed_perturb: true,
        }
    }
}

/// Why personalisation could not start.
#[derive(Debug, thiserror::Error)]
pub enum PersonaliseError {
    /// Fewer than two classes, or a class without clips.
    #[error("{0}")]
    Classes(String),
    /// The backbone does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The method does not fit the backbone.
    #[error("{0}")]
    Method(String),
    /// The clips cannot be trained on.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// A personalisation run in progress.
pub struct Personalisation {
    /// The training, one step at a time.
    pub session: TrainSession<'static, PetlModel>,
    /// Names of the new classes.
    pub labels: Vec<String>,
    /// Everything an adapter file records about the run.
    pub metadata: AdapterMetadata,
    /// Turns clips into inputs of the trained model.
    pub extractor: FeatureExtractor,
    /// The leave-one-out estimate over the clips, still on the device.
    pub held_out: HeldOut,
}

/// The leave-one-out nearest-class-mean prediction of each clip on the backbone's embeddings,
/// not read back yet (the browser reads it asynchronously).
pub struct HeldOut {
    /// Predicted class per clip (`[clips]`).
    pub predicted: Tensor<1, Int>,
    /// The class of each clip.
    pub truth: Vec<usize>,
}

impl HeldOut {
    /// The estimate from the predictions read back.
    pub fn estimate(&self, predicted: &[i64], labels: &[String]) -> HeldOutEstimate {
        HeldOutEstimate::new(predicted, &self.truth, labels)
    }

    /// Reads the predictions back (blocking: native backends) and sums them up.
    #[cfg(not(target_family = "wasm"))]
    pub fn read(&self, labels: &[String]) -> HeldOutEstimate {
        let predicted = self
            .predicted
            .clone()
            .into_data()
            .try_into_vec_as::<i64>()
            .unwrap_or_default();
        self.estimate(&predicted, labels)
    }
}

impl Personalisation {
    /// Prepares training on `clips` (16 kHz samples, class index) for `labels`, on the backbone
    /// of `checkpoint` named `base_name`; `device` must be an autodiff device.
    pub fn start(
        checkpoint: &Checkpoint,
        base_name: &str,
        clips: &[(Vec<f32>, usize)],
        labels: Vec<String>,
        options: &PersonaliseOptions,
        device: &Device,
    ) -> Result<Self, PersonaliseError> {
        if labels.len() < 2 {
            return Err(PersonaliseError::Classes(
                "add at least two classes to personalise".into(),
            ));
        }
        for (i, name) in labels.iter().enumerate() {
            if !clips.iter().any(|(_, l)| *l == i) {
                return Err(PersonaliseError::Classes(format!(
                    "class \"{name}\" has no clips yet"
                )));
            }
        }
        if let Some((_, l)) = clips.iter().find(|(_, l)| *l >= labels.len()) {
            return Err(PersonaliseError::Classes(format!(
                "a clip has class index {l} but there are only {} classes",
                labels.len()
            )));
        }
        let config = &checkpoint.config;
        let petl = options
            .method
            .petl_config(config.hidden_size, config.num_hidden_layers, options.size)
            .map_err(PersonaliseError::Method)?;
        let max_length = options.input_length(config.max_length);
        let load = LoadOptions {
            max_length: Some(max_length),
            position: petl.position_mode(),
            new_head: None,
        };
        // Same seed, same initial adapter and head: a run can be repeated exactly.
        device.seed(options.seed);
        let ast = checkpoint.load_backbone(&load, device)?;
        let model = PetlModel::new(ast, config, &petl, labels.len(), device)
            .map_err(|e| PersonaliseError::Method(e.to_string()))?;
        let extractor = checkpoint
            .extractor(max_length)
            .map_err(|e| PersonaliseError::Method(e.to_string()))?;
        let examples = options.examples(&extractor, clips);
        let recorded = &examples[..clips.len()];
        let shape = [max_length, config.num_mel_bins];
        crate::train::session::check_examples(&examples, shape)?;
        // Batches of at most as many examples as clips were recorded (as the page asks), so that a
        // handful of clips still gets several steps per pass over them and their copies.
        let train = options.train_config(&petl, clips.len());
        let means = ClassMeans::of(&model, recorded, shape, labels.len(), train.batch_size);
        let held_out = HeldOut {
            predicted: means.leave_one_out(),
            truth: recorded.iter().map(|e| e.label).collect(),
        };
        let model = means.into_head(model);
        let session = TrainSession::new(model, examples, shape, train)?;
        let metadata = AdapterMetadata {
            petl,
            base_model: base_name.to_string(),
            base_sha256: sha256_hex(&checkpoint.weights),
            labels: labels.clone(),
            max_length,
        };
        Ok(Self {
            session,
            labels,
            metadata,
            extractor,
            held_out,
        })
    }
}

/// Sample rate the clips must have.
pub const SAMPLE_RATE: u32 = AST_SAMPLE_RATE;

/// `samples` (16 kHz) played `speed` times as fast: read as if recorded at `speed` × 16 kHz and
/// resampled to 16 kHz, so tempo and pitch change together. A clip the resampler refuses (it
/// cannot be, at these rates) is returned as it is.
pub fn speed_changed(samples: &[f32], speed: f64) -> Vec<f32> {
    let from = (f64::from(SAMPLE_RATE) * speed).round() as u32;
    resample(samples, from, SAMPLE_RATE).unwrap_or_else(|_| samples.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero crossings per second of `samples` at 16 kHz.
    fn crossings_per_second(samples: &[f32]) -> f32 {
        let crossings = samples.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0));
        crossings.count() as f32 * SAMPLE_RATE as f32 / samples.len() as f32
    }

    #[test]
    fn speed_changes_move_tempo_and_pitch_together() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin())
            .collect();
        for speed in PersonaliseOptions::PERTURB_SPEEDS {
            let changed = speed_changed(&tone, speed);
            let expected_len = (16_000.0 / speed).round() as usize;
            let speed = speed as f32;
            assert!(
                changed.len().abs_diff(expected_len) <= 1,
                "{speed}: {}",
                changed.len()
            );
            let pitch = crossings_per_second(&changed) / 2.0;
            assert!(
                (pitch / (440.0 * speed) - 1.0).abs() < 0.01,
                "{speed}: {pitch} Hz"
            );
        }
    }

    #[test]
    fn speed_perturbation_appends_each_speed_after_the_clips() {
        let extractor = FeatureExtractor::new(Default::default()).unwrap();
        let clip = |hz: f32| -> Vec<f32> {
            (0..8_000)
                .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / 16_000.0).sin() * 0.3)
                .collect()
        };
        let clips = vec![(clip(300.0), 0), (clip(900.0), 1)];
        let on = PersonaliseOptions::default();
        assert!(on.speed_perturb);
        let examples = on.examples(&extractor, &clips);
        assert_eq!(
            examples.len(),
            2 * (1 + PersonaliseOptions::PERTURB_SPEEDS.len())
        );
        let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [0, 1, 0, 1, 0, 1]);
        assert_eq!(examples[0].features, extractor.extract(&clips[0].0));
        // Every clip at the first speed, then every clip at the second.
        let [slow, fast] = PersonaliseOptions::PERTURB_SPEEDS;
        assert_eq!(
            examples[2].features,
            extractor.extract(&speed_changed(&clips[0].0, slow))
        );
        assert_eq!(
            examples[3].features,
            extractor.extract(&speed_changed(&clips[1].0, slow))
        );
        assert_eq!(
            examples[5].features,
            extractor.extract(&speed_changed(&clips[1].0, fast))
        );
        assert_ne!(examples[2].features, examples[0].features);
        let off = PersonaliseOptions {
            speed_perturb: false,
            ..on
        };
        assert_eq!(off.examples(&extractor, &clips).len(), 2);
    }

    #[test]
    fn reduction_rates_keep_eight_hidden_units() {
        assert_eq!(reduction_rate(768), 64);
        assert_eq!(reduction_rate(128), 16);
        assert_eq!(reduction_rate(64), 8);
        assert_eq!(reduction_rate(12), 1);
    }

    #[test]
    fn the_size_sets_widths_ranks_and_tokens() {
        let config = |method: PersonaliseMethod, size| method.petl_config(128, 4, size).unwrap();
        assert_eq!(
            config(PersonaliseMethod::Adapter, None).adapters[0].reduction_rate,
            16
        );
        assert_eq!(
            config(PersonaliseMethod::Adapter, Some(32)).adapters[0].reduction_rate,
            4
        );
        assert_eq!(
            config(PersonaliseMethod::Moa, Some(32))
                .moa
                .unwrap()
                .reduction_rate,
            4
        );
        let lora = config(PersonaliseMethod::Lora, Some(4)).lora.unwrap();
        assert_eq!(lora.reduction_rate, 32);
        assert_eq!(
            config(PersonaliseMethod::Prompt, Some(3))
                .prompt
                .unwrap()
                .length,
            3
        );
        assert_eq!(
            config(PersonaliseMethod::Prefix, Some(5))
                .prefix
                .unwrap()
                .length,
            6
        );
        assert_eq!(
            config(PersonaliseMethod::Linear, Some(7)),
            config(PersonaliseMethod::Linear, None)
        );
        for method in PersonaliseMethod::ALL {
            let sized = config(method, Some(2)) != config(method, None);
            assert_eq!(sized, method.size_meaning().is_some(), "{method:?}");
        }
        assert!(PersonaliseMethod::Adapter
            .petl_config(128, 4, Some(0))
            .is_err());
        assert!(PersonaliseMethod::Prompt
            .petl_config(128, 4, Some(1 << 20))
            .is_err());
    }

    #[test]
    fn methods_parse_and_configure() {
        let a: PersonaliseMethod = "Adapter".parse().unwrap();
        let c = a.petl_config(128, 4, None).unwrap();
        assert_eq!(c.adapters.len(), 1);
        let l = "lora"
            .parse::<PersonaliseMethod>()
            .unwrap()
            .petl_config(128, 4, None)
            .unwrap();
        assert!(l.lora.is_some());
        let p = PersonaliseMethod::Linear.petl_config(128, 4, None).unwrap();
        assert!(p.adapters.is_empty() && p.lora.is_none());
        assert!("full".parse::<PersonaliseMethod>().is_err());
        for method in PersonaliseMethod::ALL {
            assert_eq!(method.name().parse::<PersonaliseMethod>(), Ok(method));
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.name()));
            for (d, layers) in [(128, 4), (768, 12)] {
                let config = method.petl_config(d, layers, None);
                assert!(config.is_ok(), "{method:?} at d {d}: {config:?}");
            }
        }
    }
}
