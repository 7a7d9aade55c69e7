//! `fbank`: the Kaldi filterbank and the feature extractor on arbitrary sample buffers.

use std::sync::OnceLock;

use crate::audio::{
    Audio, AudioError, Fbank, FbankConfig, FeatureExtractor, FeatureExtractorConfig, WindowType,
};

/// Most samples one input expands to (4 s at 16 kHz).
const MAX_SAMPLES: usize = 1 << 16;

/// Values the special-value generator draws from: zeros, full scale, denormals, NaN, infinities.
const SPECIAL: [f32; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
    1e-45, // the smallest denormal
    -1e-40,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e30,
    -1e30,
    f32::EPSILON,
];

/// How the bytes of an `fbank` input are read: byte 0 picks the filterbank
/// ([`configs`] index, modulo), byte 1 the generator, the rest are its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FbankInput {
    /// The rest, as little-endian `f32` (any bit pattern: NaN payloads, infinities, denormals).
    Raw = 0,
    /// Pairs `(value, run)`: [`SPECIAL`]`[value % 16]` repeated `4 * (run + 1)` times.
    Special = 1,
    /// `period: u16 LE, amplitude: u8, length: u16 LE`: a square wave of `±SPECIAL[amplitude]`
    /// (full scale with amplitude 2 or 5), half-period `max(period, 1)` samples.
    Square = 2,
    /// `length: u16 LE` zeros (0 and 1 sample included).
    Silence = 3,
}

/// The filterbanks tried: the AST one, and other valid Kaldi settings.
fn configs() -> &'static [Fbank] {
    static CONFIGS: OnceLock<Vec<Fbank>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            FbankConfig::default(),
            FbankConfig {
                sample_rate: 8000,
                num_mel_bins: 40,
                window: WindowType::Povey,
                preemphasis: 0.0,
                ..Default::default()
            },
            FbankConfig {
                num_mel_bins: 23,
                window: WindowType::Hamming,
                remove_dc_offset: false,
                high_freq: -400.0,
                ..Default::default()
            },
            FbankConfig {
                sample_rate: 44100,
                num_mel_bins: 64,
                window: WindowType::Rectangular,
                round_to_power_of_two: false,
                frame_length_ms: 20.0,
                ..Default::default()
            },
        ]
        .into_iter()
        .map(|c| Fbank::new(c).expect("valid config"))
        .collect()
    })
}

/// The AST feature extractor, keeping 16 frames.
fn extractor() -> &'static FeatureExtractor {
    static EXTRACTOR: OnceLock<FeatureExtractor> = OnceLock::new();
    EXTRACTOR.get_or_init(|| {
        FeatureExtractor::new(FeatureExtractorConfig {
            max_length: 16,
            ..Default::default()
        })
        .expect("valid config")
    })
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    let lo = bytes.get(at).copied().unwrap_or(0);
    let hi = bytes.get(at + 1).copied().unwrap_or(0);
    usize::from(u16::from_le_bytes([lo, hi]))
}

/// The samples an input describes (see [`FbankInput`]).
pub fn samples(kind: u8, rest: &[u8]) -> Vec<f32> {
    match kind % 4 {
        0 => rest
            .chunks_exact(4)
            .take(MAX_SAMPLES)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        1 => {
            let mut out = Vec::new();
            for pair in rest.chunks_exact(2) {
                let run = 4 * (usize::from(pair[1]) + 1);
                let value = SPECIAL[usize::from(pair[0]) % SPECIAL.len()];
                out.extend(std::iter::repeat_n(value, run.min(MAX_SAMPLES - out.len())));
                if out.len() == MAX_SAMPLES {
                    break;
                }
            }
            out
        }
        2 => {
            let half = u16_at(rest, 0).max(1);
            let amplitude = SPECIAL[usize::from(rest.get(2).copied().unwrap_or(2)) % SPECIAL.len()];
            (0..u16_at(rest, 3))
                .map(|i| {
                    if (i / half).is_multiple_of(2) {
                        amplitude
                    } else {
                        -amplitude
                    }
                })
                .collect()
        }
        _ => vec![0.0; u16_at(rest, 0)],
    }
}

/// Contract: for every filterbank, the output has `num_frames(n)` rows of `num_mel_bins`
/// values; a row is finite when its frame's samples are, and all NaN otherwise (torch's
/// behaviour). The extractor gives `max_length × mel` values, finite when the samples it reads
/// are; `extract_audio` refuses the first non-finite sample by index and is finite otherwise.
pub fn fbank(data: &[u8]) {
    let [choice, kind, rest @ ..] = data else {
        return;
    };
    let samples = samples(*kind, rest);
    let banks = configs();
    let bank = &banks[usize::from(*choice) % banks.len()];
    let features = bank.compute(&samples);
    let frames = bank.num_frames(samples.len());
    let bins = bank.num_mel_bins();
    assert_eq!(
        (features.frames, features.num_mel_bins),
        (frames, bins),
        "{} samples",
        samples.len()
    );
    assert_eq!(features.data.len(), frames * bins);
    let (size, shift) = (bank.window_size(), bank.window_shift());
    for f in 0..frames {
        let finite = samples[f * shift..f * shift + size]
            .iter()
            .all(|v| v.is_finite());
        let row = features.row(f).expect("frame within range");
        if finite {
            assert!(
                row.iter().all(|v| v.is_finite()),
                "frame {f} of finite samples gave {row:?}"
            );
        } else {
            assert!(row.iter().all(|v| v.is_nan()), "frame {f}: {row:?}");
        }
    }

    let fx = extractor();
    let out = fx.extract(&samples);
    let (max_length, mel) = fx.input_shape();
    assert_eq!(out.len(), max_length * mel);
    let read = &samples[..samples.len().min(fx.samples_needed())];
    if read.iter().all(|v| v.is_finite()) {
        assert!(out.iter().all(|v| v.is_finite()));
    }
    let audio = Audio {
        samples,
        sample_rate: 16_000,
    };
    let first_bad = audio.samples.iter().position(|v| !v.is_finite());
    match (fx.extract_audio(&audio), first_bad) {
        (Ok(out), None) => assert!(out.iter().all(|v| v.is_finite())),
        (Err(AudioError::NonFinite { index, .. }), Some(bad)) => assert_eq!(index, bad),
        (other, bad) => panic!("extract_audio gave {other:?} with the first bad sample at {bad:?}"),
    }
}
