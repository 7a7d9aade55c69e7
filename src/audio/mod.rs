//! The audio front end: WAV reading, resampling and AST features, in pure Rust on `&[f32]`.
//!
//! Shared by the native CLI and the wasm web app; no tensor library involved.
//!
//! ```no_run
//! use petl_ast::audio::{read_wav, AudioLimits, FeatureExtractor};
//! # fn main() -> Result<(), petl_ast::audio::AudioError> {
//! let audio = read_wav("clip.wav".as_ref(), &AudioLimits::default())?;
//! let extractor = FeatureExtractor::default(); // AudioSet AST: 1024 x 128, 16 kHz
//! let input_values = extractor.extract_audio(&audio)?; // resampled to 16 kHz first
//! assert_eq!(input_values.len(), 1024 * 128);
//! # Ok(())
//! # }
//! ```

mod error;
mod extractor;
mod fbank;
mod mel;
mod reduce;
mod resample;
mod riff;
mod vad;
mod wav;

pub use error::AudioError;
pub use extractor::{FeatureExtractor, FeatureExtractorConfig};
pub use fbank::{Fbank, FbankConfig, Features, WindowType, ENERGY_FLOOR};
pub use resample::{resample, resample_prefix, to_16k, AST_SAMPLE_RATE};
pub use vad::{Segmenter, SegmenterConfig, Utterance};
pub use wav::{decode_wav, read_wav, Audio, AudioLimits, DEFAULT_MAX_SECONDS};
