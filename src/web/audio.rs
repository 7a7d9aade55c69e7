//! Audio for the page's main thread: decoding dropped wav files, the live spectrogram and the
//! utterance detector over the microphone stream.

use wasm_bindgen::prelude::*;

use super::js_error;
use crate::audio::{
    decode_wav as decode, to_16k, Audio, AudioLimits, FeatureExtractor, Segmenter, SegmenterConfig,
};

/// Decodes a wav file's bytes to mono 16 kHz samples; `name` appears in error messages.
#[wasm_bindgen(js_name = decodeWav)]
pub fn decode_wav(bytes: &[u8], name: &str) -> Result<Vec<f32>, JsError> {
    let audio = decode(bytes, name, &AudioLimits::default()).map_err(js_error)?;
    resample_16k(audio.samples, audio.sample_rate, name)
}

/// Resamples mono `samples` at `sample_rate` to 16 kHz.
#[wasm_bindgen(js_name = resampleTo16k)]
pub fn resample_to_16k(samples: Vec<f32>, sample_rate: u32) -> Result<Vec<f32>, JsError> {
    resample_16k(samples, sample_rate, "microphone")
}

fn resample_16k(samples: Vec<f32>, sample_rate: u32, name: &str) -> Result<Vec<f32>, JsError> {
    if sample_rate == 0 {
        return Err(JsError::new(&format!("{name}: the sample rate is 0")));
    }
    to_16k(Audio {
        samples,
        sample_rate,
    })
    .map_err(js_error)
}

/// A log-Mel spectrogram: `frames × bins` values, frame-major.
#[wasm_bindgen]
pub struct Spectrogram {
    frames: usize,
    bins: usize,
    values: Vec<f32>,
}

#[wasm_bindgen]
impl Spectrogram {
    /// Number of 10 ms frames.
    #[wasm_bindgen(getter)]
    pub fn frames(&self) -> usize {
        self.frames
    }
    /// Mel bins per frame.
    #[wasm_bindgen(getter)]
    pub fn bins(&self) -> usize {
        self.bins
    }
    /// The log-Mel energies, frame-major.
    #[wasm_bindgen(getter)]
    pub fn values(&self) -> Vec<f32> {
        self.values.clone()
    }
}

/// The Kaldi fbank of the AST front end (128 mel bins, 25 ms / 10 ms) of 16 kHz `samples`,
/// before the model's normalisation: what the page draws.
#[wasm_bindgen]
pub fn spectrogram(samples: &[f32]) -> Result<Spectrogram, JsError> {
    let extractor = FeatureExtractor::default();
    let features = extractor.fbank().compute(samples);
    Ok(Spectrogram {
        frames: features.frames,
        bins: features.num_mel_bins,
        values: features.data,
    })
}

/// Cuts utterances out of a 16 kHz stream.
#[wasm_bindgen]
pub struct UtteranceDetector {
    inner: Segmenter,
}

#[wasm_bindgen]
impl UtteranceDetector {
    /// A detector for speech at 16 kHz.
    #[wasm_bindgen(constructor)]
    pub fn new() -> UtteranceDetector {
        Self {
            inner: Segmenter::new(SegmenterConfig::speech(16_000)),
        }
    }

    /// Feeds samples; returns the utterances that ended (arrays of samples).
    pub fn push(&mut self, samples: &[f32]) -> js_sys::Array {
        self.inner
            .push(samples)
            .into_iter()
            .map(|u| JsValue::from(js_sys::Float32Array::from(u.samples.as_slice())))
            .collect()
    }

    /// Ends the stream: the utterance in progress, if any.
    pub fn flush(&mut self) -> Option<Vec<f32>> {
        self.inner.flush().map(|u| u.samples)
    }

    /// Whether someone is speaking now.
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> bool {
        self.inner.is_active()
    }
}

impl Default for UtteranceDetector {
    fn default() -> Self {
        Self::new()
    }
}
