//! The one error type of the audio front end.
//!
//! Every variant that is about user data names where that data came from (`origin`: a file
//! path, or a label such as `<upload>` for bytes handed over by the web app), says what is
//! wrong and what to do about it. Nothing in `crate::audio` panics on bad input; it returns
//! one of these instead.

use std::io;

/// Everything that can go wrong while reading, resampling or featurising audio.
#[derive(thiserror::Error, Debug)]
pub enum AudioError {
    /// The file could not be opened or read (permissions, missing file, I/O failure).
    #[error("`{origin}`: cannot read the file: {error}")]
    Io {
        /// Where the audio came from (file path or `<upload>`).
        origin: String,
        /// The underlying I/O error.
        #[source]
        error: io::Error,
    },

    /// The input has no bytes at all.
    #[error("`{origin}`: the file is empty (0 bytes); expected a WAV file")]
    Empty {
        /// Where the audio came from.
        origin: String,
    },

    /// The input does not start with a RIFF/WAVE header.
    #[error(
        "`{origin}`: not a RIFF/WAVE file (first bytes are {first_bytes}){hint}; \
         convert it to WAV first, e.g. `ffmpeg -i INPUT -ac 1 -c:a pcm_s16le out.wav`"
    )]
    NotWav {
        /// Where the audio came from.
        origin: String,
        /// The first bytes as hex and printable ASCII, e.g. `49 44 33 04 ... "ID3."`.
        first_bytes: String,
        /// A guess at what the file is instead (`""`, or e.g. `" (looks like MP3)"`).
        hint: String,
    },

    /// The header is inconsistent or cut short before the audio data starts.
    #[error(
        "`{origin}`: malformed WAV file: {reason}; re-export or re-encode it, \
         e.g. `ffmpeg -i INPUT -ac 1 -c:a pcm_s16le out.wav`"
    )]
    Malformed {
        /// Where the audio came from.
        origin: String,
        /// What is wrong, e.g. `the file ends before the "data" chunk`.
        reason: String,
    },

    /// A valid WAV file with a sample encoding this reader does not decode.
    #[error(
        "`{origin}`: unsupported sample format: {format} (supported: 8/16/24/32-bit integer PCM \
         and 32-bit float); convert it, e.g. `ffmpeg -i INPUT -c:a pcm_s16le out.wav`"
    )]
    UnsupportedFormat {
        /// Where the audio came from.
        origin: String,
        /// What the file holds, e.g. `12-bit integer PCM` or `format tag 0x0055 (MPEG layer 3)`.
        format: String,
    },

    /// The header declares zero channels.
    #[error("`{origin}`: the WAV header declares 0 channels; the file is corrupt")]
    ZeroChannels {
        /// Where the audio came from.
        origin: String,
    },

    /// The header declares a sample rate of 0 Hz.
    #[error("`{origin}`: the WAV header declares a sample rate of 0 Hz; the file is corrupt")]
    ZeroSampleRate {
        /// Where the audio came from.
        origin: String,
    },

    /// The clip is longer than [`AudioLimits::max_seconds`](crate::audio::AudioLimits).
    /// Checked on the header, before any sample buffer is allocated.
    #[error(
        "`{origin}`: clip is {seconds:.1} s long, more than the limit of {limit} s \
         (raise --max-seconds, or cut the clip)"
    )]
    TooLong {
        /// Where the audio came from.
        origin: String,
        /// Duration declared by the header, in seconds.
        seconds: f64,
        /// The limit in force, in seconds.
        limit: f64,
    },

    /// The header declares more audio than the file holds.
    #[error(
        "`{origin}`: truncated: header says {declared} samples, only {present} present; \
         the file was probably cut off while copying or downloading"
    )]
    Truncated {
        /// Where the audio came from.
        origin: String,
        /// Sample frames (per channel) declared by the header.
        declared: u64,
        /// Complete sample frames actually present.
        present: u64,
    },

    /// A float WAV file (or a sample buffer) holds a NaN or an infinity. Refused rather than
    /// turned into NaN features: one such sample would make every logit NaN.
    #[error(
        "`{origin}`: sample {index} (at {seconds:.3} s) is {value}; the audio is corrupt, \
         re-export it (e.g. `ffmpeg -i INPUT -c:a pcm_s16le out.wav`)"
    )]
    NonFinite {
        /// Where the audio came from.
        origin: String,
        /// Index of the first non-finite (mono) sample.
        index: usize,
        /// Its time, in seconds from the start.
        seconds: f64,
        /// The value (`NaN`, `inf` or `-inf`).
        value: f32,
    },

    /// Resampling between these rates is impossible or was refused.
    #[error("cannot resample from {from_hz} Hz to {to_hz} Hz: {reason}")]
    Resample {
        /// Input rate.
        from_hz: u32,
        /// Output rate.
        to_hz: u32,
        /// Why, and what to do.
        reason: String,
    },

    /// A filterbank or feature-extractor configuration is invalid.
    #[error("`{origin}`: invalid feature configuration: {reason}")]
    Config {
        /// Where the configuration came from (file path, or `FbankConfig` for one built in code).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl AudioError {
    /// Where the offending data came from, when the error is about user data.
    pub fn origin(&self) -> Option<&str> {
        match self {
            AudioError::Io { origin, .. }
            | AudioError::Empty { origin }
            | AudioError::NotWav { origin, .. }
            | AudioError::Malformed { origin, .. }
            | AudioError::UnsupportedFormat { origin, .. }
            | AudioError::ZeroChannels { origin }
            | AudioError::ZeroSampleRate { origin }
            | AudioError::TooLong { origin, .. }
            | AudioError::Truncated { origin, .. }
            | AudioError::NonFinite { origin, .. }
            | AudioError::Config { origin, .. } => Some(origin),
            AudioError::Resample { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_origin_and_say_what_to_do() {
        let e = AudioError::TooLong {
            origin: "long.wav".into(),
            seconds: 3600.0,
            limit: 1200.0,
        };
        assert_eq!(
            e.to_string(),
            "`long.wav`: clip is 3600.0 s long, more than the limit of 1200 s \
             (raise --max-seconds, or cut the clip)"
        );
        let e = AudioError::Truncated {
            origin: "x.wav".into(),
            declared: 48000,
            present: 1200,
        };
        assert!(e
            .to_string()
            .starts_with("`x.wav`: truncated: header says 48000 samples, only 1200 present"));
        let e = AudioError::UnsupportedFormat {
            origin: "<upload>".into(),
            format: "12-bit integer PCM".into(),
        };
        assert!(e
            .to_string()
            .starts_with("`<upload>`: unsupported sample format: 12-bit integer PCM"));
        assert!(AudioError::ZeroChannels {
            origin: "a.wav".into()
        }
        .to_string()
        .contains("0 channels"));
        assert!(AudioError::ZeroSampleRate {
            origin: "a.wav".into()
        }
        .to_string()
        .contains("sample rate of 0 Hz"));
    }

    #[test]
    fn non_finite_names_the_sample() {
        let e = AudioError::NonFinite {
            origin: "f.wav".into(),
            index: 16000,
            seconds: 1.0,
            value: f32::NAN,
        };
        assert_eq!(
            e.to_string(),
            "`f.wav`: sample 16000 (at 1.000 s) is NaN; the audio is corrupt, re-export it \
             (e.g. `ffmpeg -i INPUT -c:a pcm_s16le out.wav`)"
        );
        assert_eq!(e.origin(), Some("f.wav"));
    }

    #[test]
    fn origin_accessor() {
        let e = AudioError::Empty {
            origin: "clip.wav".into(),
        };
        assert_eq!(e.origin(), Some("clip.wav"));
        let e = AudioError::Resample {
            from_hz: 1,
            to_hz: 2,
            reason: "x".into(),
        };
        assert_eq!(e.origin(), None);
    }

    #[test]
    fn io_error_keeps_its_source() {
        use std::error::Error as _;
        let e = AudioError::Io {
            origin: "missing.wav".into(),
            error: io::Error::new(io::ErrorKind::NotFound, "No such file"),
        };
        assert!(e.source().is_some());
        assert!(e.to_string().contains("`missing.wav`"));
    }
}
