//! Hugging Face's `ASTFeatureExtractor`: fbank, pad/truncate to `max_length` frames, normalise.
//!
//! [`FeatureExtractorConfig`] is the model's `preprocessor_config.json`; [`FeatureExtractor`]
//! turns a waveform into the `[max_length][num_mel_bins]` matrix the model takes as
//! `input_values`:
//! 1. Kaldi fbank ([`Fbank`], AST settings at the config's rate and mel count);
//! 2. zero rows appended up to `max_length` frames, or frames past `max_length` dropped;
//! 3. if `do_normalize`: `(x - mean) / (2 * std)` on every value, padding rows included
//!    (computed in `f32` like numpy does for HF: `x - f32(mean)`, then `/ f32(2 * std)`).
//!
//! Unlike HF (whose torchaudio path raises for clips shorter than one 25 ms frame), a clip
//! too short for one frame gives a matrix of padding rows.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::AudioError;
use super::fbank::{Fbank, FbankConfig};
use super::resample::resample_prefix;
use super::wav::{first_non_finite, Audio};

/// Largest `max_length` accepted (frames; 100 000 frames = 1000 s).
const MAX_LENGTH_LIMIT: usize = 100_000;

/// Most values of one feature matrix, `max_length × num_mel_bins` (64 MiB of `f32`; AST-base
/// uses 1024 × 128).
const MAX_VALUES: usize = 1 << 24;

/// Largest `|mean|` and `std`, and inverse of the smallest `std`, of the normalisation.
const NORM_LIMIT: f64 = 1e6;

/// `preprocessor_config.json` of an `ASTFeatureExtractor`. Missing keys take the HF defaults,
/// unknown keys (`feature_extractor_type`, `padding_side`, ...) are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureExtractorConfig {
    /// HF `SequenceFeatureExtractor.feature_size`: channels of the *raw* input, 1 for AST
    /// (not the mel count). Not used by the computation.
    pub feature_size: usize,
    /// Rate the model expects, in Hz (16000). Audio is resampled to it.
    pub sampling_rate: u32,
    /// Mel bins per frame (128).
    pub num_mel_bins: usize,
    /// Frames per input matrix (1024 for AudioSet models).
    pub max_length: usize,
    /// HF `padding_value`; the AST extractor ignores it and pads the fbank with zeros.
    pub padding_value: f64,
    /// Apply `(x - mean) / (2 * std)` (true).
    pub do_normalize: bool,
    /// Normalisation mean (AudioSet: -4.2677393).
    pub mean: f64,
    /// Normalisation standard deviation (AudioSet: 4.5689974).
    pub std: f64,
    /// HF `return_attention_mask`; not used here (the model takes no mask).
    pub return_attention_mask: bool,
}

impl Default for FeatureExtractorConfig {
    fn default() -> Self {
        FeatureExtractorConfig {
            feature_size: 1,
            sampling_rate: 16_000,
            num_mel_bins: 128,
            max_length: 1024,
            padding_value: 0.0,
            do_normalize: true,
            mean: -4.2677393,
            std: 4.5689974,
            return_attention_mask: false,
        }
    }
}

impl FeatureExtractorConfig {
    /// Parses and validates `preprocessor_config.json` text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, AudioError> {
        let config: Self = serde_json::from_str(text).map_err(|e| AudioError::Config {
            origin: origin.to_string(),
            reason: format!("not a valid preprocessor_config.json: {e}"),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads, parses and validates a `preprocessor_config.json` file.
    pub fn read(path: &Path) -> Result<Self, AudioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| AudioError::Io {
            origin: origin.clone(),
            error,
        })?;
        Self::from_json(&text, &origin)
    }

    /// Checks the values this crate relies on; `origin` names the config in errors.
    pub fn validate(&self, origin: &str) -> Result<(), AudioError> {
        let fail = |reason: String| {
            Err(AudioError::Config {
                origin: origin.to_string(),
                reason,
            })
        };
        if self.sampling_rate == 0 {
            return fail("sampling_rate is 0".into());
        }
        if !(1..=MAX_LENGTH_LIMIT).contains(&self.max_length) {
            return fail(format!(
                "max_length is {}; it must be 1..={MAX_LENGTH_LIMIT}",
                self.max_length
            ));
        }
        if self.max_length.saturating_mul(self.num_mel_bins) > MAX_VALUES {
            return fail(format!(
                "max_length {} × num_mel_bins {} is more than {MAX_VALUES} values per clip",
                self.max_length, self.num_mel_bins
            ));
        }
        // Bounds that keep `(x - mean) / (2 std)` finite in f32 for every log-mel value
        // (|x| < 200); AudioSet's are -4.27 and 4.57.
        let mean_ok = self.mean.abs() <= NORM_LIMIT;
        let std_ok = (1.0 / NORM_LIMIT..=NORM_LIMIT).contains(&self.std);
        if self.do_normalize && !(mean_ok && std_ok) {
            return fail(format!(
                "normalisation needs |mean| <= {NORM_LIMIT:e} and std within {:e}..={NORM_LIMIT:e}; \
                 got mean {} and std {}",
                1.0 / NORM_LIMIT,
                self.mean,
                self.std
            ));
        }
        Fbank::new(self.fbank_config())
            .map(|_| ())
            .map_err(|e| match e {
                AudioError::Config { reason, .. } => AudioError::Config {
                    origin: origin.to_string(),
                    reason,
                },
                other => other,
            })
    }

    /// The filterbank settings: AST/Kaldi defaults at this rate and mel count.
    pub fn fbank_config(&self) -> FbankConfig {
        FbankConfig {
            sample_rate: self.sampling_rate,
            num_mel_bins: self.num_mel_bins,
            ..FbankConfig::default()
        }
    }
}

/// A ready-to-use AST feature extractor (config plus precomputed filterbank).
#[derive(Clone, Debug)]
pub struct FeatureExtractor {
    config: FeatureExtractorConfig,
    fbank: Fbank,
}

impl Default for FeatureExtractor {
    /// The AudioSet AST extractor (128 mel bins, 1024 frames, 16 kHz).
    fn default() -> Self {
        FeatureExtractor::new(FeatureExtractorConfig::default())
            .expect("the default FeatureExtractorConfig is valid")
    }
}

impl FeatureExtractor {
    /// Validates `config` and builds the filterbank.
    pub fn new(config: FeatureExtractorConfig) -> Result<Self, AudioError> {
        config.validate("FeatureExtractorConfig")?;
        let fbank = Fbank::new(config.fbank_config())?;
        Ok(FeatureExtractor { config, fbank })
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureExtractorConfig {
        &self.config
    }

    /// The filterbank.
    pub fn fbank(&self) -> &Fbank {
        &self.fbank
    }

    /// `(max_length, num_mel_bins)`: the shape of every output of [`Self::extract`].
    pub fn input_shape(&self) -> (usize, usize) {
        (self.config.max_length, self.config.num_mel_bins)
    }

    /// How many leading rows of the output come from the audio (the rest is padding) for a
    /// clip of `num_samples` samples at the config's rate.
    pub fn valid_frames(&self, num_samples: usize) -> usize {
        self.fbank
            .num_frames(num_samples)
            .min(self.config.max_length)
    }

    /// Samples (at the config's rate) that the `max_length` frames read; later ones are ignored.
    pub fn samples_needed(&self) -> usize {
        (self.config.max_length - 1) * self.fbank.window_shift() + self.fbank.window_size()
    }

    /// The model input for `samples` at `config().sampling_rate`: exactly
    /// `max_length * num_mel_bins` values, row-major `[frame][mel]`.
    ///
    /// Finite samples give finite values. This infallible form mirrors torch for any buffer: a
    /// frame holding a NaN or an infinity is a row of NaN; [`Self::extract_audio`] refuses such
    /// input instead.
    pub fn extract(&self, samples: &[f32]) -> Vec<f32> {
        let (max_length, bins) = self.input_shape();
        // Frames past max_length are dropped anyway: do not compute them.
        let needed = self.samples_needed();
        let features = self.fbank.compute(&samples[..samples.len().min(needed)]);
        let mut out = features.data;
        out.truncate(max_length * bins);
        out.resize(max_length * bins, 0.0);
        if self.config.do_normalize {
            let mean = self.config.mean as f32;
            let scale = (self.config.std * 2.0) as f32;
            out.iter_mut().for_each(|v| *v = (*v - mean) / scale);
        }
        out
    }

    /// Like [`Self::extract`] for audio at any rate: resamples to `config().sampling_rate`
    /// first (see [`resample`](crate::audio::resample); only the part of the clip the frames read is resampled).
    ///
    /// The output is always finite: a NaN or infinite sample is refused with
    /// [`AudioError::NonFinite`] (origin `audio samples`; the WAV reader already refuses such
    /// files by name).
    pub fn extract_audio(&self, audio: &Audio) -> Result<Vec<f32>, AudioError> {
        if let Some((index, value)) = first_non_finite(&audio.samples) {
            return Err(AudioError::NonFinite {
                origin: "audio samples".into(),
                index,
                seconds: index as f64 / f64::from(audio.sample_rate.max(1)),
                value,
            });
        }
        if audio.sample_rate == self.config.sampling_rate {
            return Ok(self.extract(&audio.samples));
        }
        let samples = resample_prefix(
            &audio.samples,
            audio.sample_rate,
            self.config.sampling_rate,
            self.samples_needed(),
        )?;
        Ok(self.extract(&samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::resample;

    const PAD: f32 = (4.2677393f64 / 9.1379948f64) as f32;

    #[test]
    fn parses_the_hub_config_and_ignores_unknown_keys() {
        let text = r#"{
            "do_normalize": true,
            "feature_extractor_type": "ASTFeatureExtractor",
            "feature_size": 1,
            "max_length": 1024,
            "mean": -4.2677393,
            "num_mel_bins": 128,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": false,
            "sampling_rate": 16000,
            "std": 4.5689974
        }"#;
        let c = FeatureExtractorConfig::from_json(text, "preprocessor_config.json").unwrap();
        assert_eq!(c, FeatureExtractorConfig::default());
        let c = FeatureExtractorConfig::from_json(r#"{"max_length": 100}"#, "x").unwrap();
        assert_eq!(c.max_length, 100);
        assert_eq!(c.num_mel_bins, 128);
        assert_eq!(
            FeatureExtractorConfig::from_json("{}", "x").unwrap(),
            Default::default()
        );
    }

    #[test]
    fn bad_configs_name_their_origin() {
        for text in [
            "",
            "[1,2]",
            r#"{"max_length": -1}"#,
            r#"{"max_length": 0}"#,
            r#"{"sampling_rate": 0}"#,
            r#"{"num_mel_bins": 2}"#,
            r#"{"std": 0.0}"#,
            r#"{"std": -4.5}"#,
            r#"{"std": 1e-300}"#,
            r#"{"mean": 1e300}"#,
            r#"{"max_length": 1e12}"#,
            r#"{"max_length": 100000, "num_mel_bins": 4096}"#,
        ] {
            let e = FeatureExtractorConfig::from_json(text, "cfg.json").unwrap_err();
            assert!(matches!(e, AudioError::Config { .. }), "{text}: {e}");
            assert!(e.to_string().starts_with("`cfg.json`"), "{text}: {e}");
        }
        // std 0 is fine when normalisation is off.
        assert!(
            FeatureExtractorConfig::from_json(r#"{"std": 0, "do_normalize": false}"#, "x").is_ok()
        );
    }

    #[test]
    fn output_shape_padding_and_truncation() {
        let config = FeatureExtractorConfig {
            max_length: 10,
            ..Default::default()
        };
        let fx = FeatureExtractor::new(config).unwrap();
        assert_eq!(fx.input_shape(), (10, 128));
        // Silence: 3 frames of log(eps), then 7 padding rows.
        let out = fx.extract(&vec![0.0; 720]);
        assert_eq!(out.len(), 1280);
        assert_eq!(fx.valid_frames(720), 3);
        let floor = ((-15.942385f64 + 4.2677393) / 9.1379948) as f32;
        assert!(out[..3 * 128].iter().all(|&v| (v - floor).abs() < 1e-6));
        assert!(out[3 * 128..].iter().all(|&v| (v - PAD).abs() < 1e-6));
        // Long input: truncated to 10 frames, same as the first 10 frames of the fbank.
        let x: Vec<f32> = (0..40_000)
            .map(|i| (i * 7919 % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let out = fx.extract(&x);
        let full = fx.fbank().compute(&x);
        assert!(full.frames > 10);
        let (mean, scale) = (-4.2677393f64 as f32, (4.5689974f64 * 2.0) as f32);
        for (a, b) in out.iter().zip(&full.data[..1280]) {
            assert_eq!(*a, (*b - mean) / scale);
        }
        // Too short for one frame: all padding.
        assert!(fx
            .extract(&[0.1; 399])
            .iter()
            .all(|&v| (v - PAD).abs() < 1e-6));
        assert_eq!(fx.extract(&[]).len(), 1280);
    }

    #[test]
    fn without_normalisation_padding_is_zero() {
        let fx = FeatureExtractor::new(FeatureExtractorConfig {
            max_length: 4,
            do_normalize: false,
            ..Default::default()
        })
        .unwrap();
        let out = fx.extract(&vec![0.0; 400]);
        assert_eq!(out[0], -15.942385);
        assert!(out[128..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn extract_audio_resamples_first() {
        let fx = FeatureExtractor::new(FeatureExtractorConfig {
            max_length: 20,
            ..Default::default()
        })
        .unwrap();
        let tone = |rate: u32, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    (2.0 * std::f64::consts::PI * 500.0 * i as f64 / f64::from(rate)).sin() as f32
                        * 0.5
                })
                .collect()
        };
        let at16 = fx.extract(&tone(16000, 4000));
        let at8 = fx
            .extract_audio(&Audio {
                samples: tone(8000, 2000),
                sample_rate: 8000,
            })
            .unwrap();
        assert_eq!(at8.len(), at16.len());
        // Same tone, so the strong bins (log energy above 0) agree; weak bins need not
        // (resampling leaves its own faint traces, e.g. in the empty 4-8 kHz band).
        let strong = (4.2677393f64 / 9.1379948f64) as f32;
        let row = 5 * 128;
        let mut compared = 0;
        for m in 0..128 {
            if at16[row + m] > strong {
                compared += 1;
                assert!((at8[row + m] - at16[row + m]).abs() < 0.01, "bin {m}");
            }
        }
        assert!(compared >= 2);
        let e = fx
            .extract_audio(&Audio {
                samples: vec![0.0; 10],
                sample_rate: 0,
            })
            .unwrap_err();
        assert!(matches!(e, AudioError::Resample { .. }));
        // Resampling only the part the frames read changes nothing.
        let long = tone(44100, 44100 * 3);
        let audio = Audio {
            samples: long.clone(),
            sample_rate: 44100,
        };
        let full = resample(&long, 44100, 16000).unwrap();
        assert_eq!(fx.extract_audio(&audio).unwrap(), fx.extract(&full));
    }

    #[test]
    fn extract_audio_refuses_non_finite_samples() {
        let fx = FeatureExtractor::new(FeatureExtractorConfig {
            max_length: 8,
            ..Default::default()
        })
        .unwrap();
        let mut samples = vec![0.1f32; 2000];
        samples[1600] = f32::INFINITY;
        let e = fx
            .extract_audio(&Audio {
                samples,
                sample_rate: 16000,
            })
            .unwrap_err();
        assert!(
            matches!(e, AudioError::NonFinite { index: 1600, .. }),
            "{e}"
        );
        assert!(
            e.to_string().contains("sample 1600 (at 0.100 s) is inf"),
            "{e}"
        );
        // Full-scale finite audio, resampled or not, gives finite features.
        let square: Vec<f32> = (0..8000)
            .map(|i| {
                if (i / 7) % 2 == 0 {
                    f32::MAX
                } else {
                    -f32::MAX
                }
            })
            .collect();
        for rate in [16000, 8000, 44100] {
            let out = fx
                .extract_audio(&Audio {
                    samples: square.clone(),
                    sample_rate: rate,
                })
                .unwrap();
            assert!(out.iter().all(|v| v.is_finite()), "{rate}");
        }
    }
}
