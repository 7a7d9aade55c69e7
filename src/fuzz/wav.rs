//! `wav`: the WAV reader, then the feature extractor on what it decodes.

use std::sync::OnceLock;

use crate::audio::{decode_wav, AudioError, AudioLimits, FeatureExtractor, FeatureExtractorConfig};

use super::assert_names;

const ORIGIN: &str = "fuzz.wav";

/// An AST extractor that keeps 24 frames (the full 1024 would only slow the fuzzer down).
fn extractor() -> &'static FeatureExtractor {
    static EXTRACTOR: OnceLock<FeatureExtractor> = OnceLock::new();
    EXTRACTOR.get_or_init(|| {
        FeatureExtractor::new(FeatureExtractorConfig {
            max_length: 24,
            ..Default::default()
        })
        .expect("valid config")
    })
}

/// Decodes `data` as a WAV file with the default limits. Contract: an error names the input;
/// decoded audio has a positive rate, is within the duration limit, is finite and holds no more
/// samples than the file has bytes; its features (resampled to 16 kHz) are finite, or resampling
/// is refused with a reason.
pub fn wav(data: &[u8]) {
    let limits = AudioLimits::default();
    let audio = match decode_wav(data, ORIGIN, &limits) {
        Ok(audio) => audio,
        Err(e) => {
            assert_eq!(e.origin(), Some(ORIGIN), "{e}");
            return assert_names(&e.to_string(), ORIGIN);
        }
    };
    assert!(audio.sample_rate > 0);
    assert!(audio.duration_seconds() <= limits.max_seconds);
    assert!(audio.samples.len() <= data.len());
    assert!(audio.samples.iter().all(|v| v.is_finite()));
    match extractor().extract_audio(&audio) {
        Ok(features) => {
            let (frames, bins) = extractor().input_shape();
            assert_eq!(features.len(), frames * bins);
            assert!(
                features.iter().all(|v| v.is_finite()),
                "finite audio at {} Hz gave non-finite features",
                audio.sample_rate
            );
        }
        Err(AudioError::Resample { reason, .. }) => assert!(!reason.is_empty()),
        Err(e) => panic!("unexpected error for decoded audio: {e}"),
    }
}
