//! Reading WAV files (from a path, or from bytes for the web app) into mono `f32` samples.
//!
//! Decoding is done by `hound`; this module adds what a service that reads untrusted files
//! needs: a duration limit checked on the header before any sample buffer is allocated, a
//! check that the declared data is really present, errors that name the input, and the
//! sample scaling of `torchaudio.load` so that features match the Python reference:
//!
//! | stored as | value |
//! |---|---|
//! | 8-bit unsigned PCM `u` | `(u - 128) / 128` |
//! | 16-bit PCM `i` | `i / 32768` |
//! | 24-bit PCM `i` (3- or 4-byte containers) | `i / 2^23` |
//! | 32-bit PCM `i` | `i / 2^31` (rounded to `f32`) |
//! | 32-bit float | as stored |
//!
//! Multi-channel audio is averaged to mono (`f32` sum over channels, then divided by the
//! channel count, the order `torch.mean(dim=0)` uses; where that `f32` sum of finite samples
//! overflows, the mean is taken in `f64` instead). 64-bit float WAV is refused with a clear
//! error: `hound` 3.5 does not decode it. A float file holding a NaN or an infinity is refused
//! ([`AudioError::NonFinite`], naming the sample), so decoded audio is always finite.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use hound::{SampleFormat, WavReader};

use super::error::AudioError;
use super::riff::{self, FmtInfo};

/// Default of [`AudioLimits::max_seconds`]: 20 minutes.
pub const DEFAULT_MAX_SECONDS: f64 = 1200.0;

/// How many bytes of a file are looked at to describe its format in error messages.
const HEAD_BYTES: u64 = 64 * 1024;

/// Mono audio.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Samples in `[-1, 1]` (float WAV files may exceed that range; they are kept as stored).
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Audio {
    /// Duration in seconds (0 for a zero sample rate).
    pub fn duration_seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.samples.len() as f64 / f64::from(self.sample_rate)
        }
    }
}

/// Limits applied while reading untrusted audio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioLimits {
    /// Longest clip accepted, in seconds, judged from the header before allocating.
    /// A NaN limit refuses everything.
    pub max_seconds: f64,
}

impl Default for AudioLimits {
    fn default() -> Self {
        AudioLimits {
            max_seconds: DEFAULT_MAX_SECONDS,
        }
    }
}

/// Reads a WAV file into mono `f32` samples at the file's own rate.
///
/// Errors ([`AudioError`]) name `path`; see the module documentation for the scaling.
pub fn read_wav(path: &Path, limits: &AudioLimits) -> Result<Audio, AudioError> {
    let origin = path.display().to_string();
    let io_err = |error| AudioError::Io {
        origin: origin.clone(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let total_len = file.metadata().map_err(io_err)?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    decode_stream(BufReader::new(file), total_len, &head, &origin, limits)
}

/// Decodes a WAV file held in memory (e.g. an upload in the web app) into mono `f32` samples.
///
/// `origin` names the data in error messages (e.g. the upload's file name, or `<upload>`).
pub fn decode_wav(bytes: &[u8], origin: &str, limits: &AudioLimits) -> Result<Audio, AudioError> {
    let head = &bytes[..bytes.len().min(HEAD_BYTES as usize)];
    decode_stream(bytes, bytes.len() as u64, head, origin, limits)
}

/// Counts the bytes handed to `hound`, so that the position of the data chunk is known.
struct Counting<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The shared decoder: `reader` yields the whole file, `total_len` bytes long; `head` is a
/// prefix of it, used to describe formats that `hound` refuses.
fn decode_stream<R: Read>(
    reader: R,
    total_len: u64,
    head: &[u8],
    origin: &str,
    limits: &AudioLimits,
) -> Result<Audio, AudioError> {
    let origin_s = || origin.to_string();
    if total_len == 0 {
        return Err(AudioError::Empty { origin: origin_s() });
    }
    if !riff::is_riff_wave(head) {
        return Err(AudioError::NotWav {
            origin: origin_s(),
            first_bytes: riff::describe_first_bytes(head),
            hint: riff::guess_kind(head).to_string(),
        });
    }
    let fmt = riff::find_fmt(head);
    if let Some(info) = &fmt {
        check_fmt(info, origin)?;
    }

    let count = Cell::new(0u64);
    let counting = Counting {
        inner: reader,
        count: &count,
    };
    let at_eof = || count.get() >= total_len;
    let mut wav = WavReader::new(counting).map_err(|e| {
        header_error(
            e,
            origin,
            fmt.as_ref(),
            at_eof(),
            "the file ends before the `data` chunk",
        )
    })?;
    let spec = wav.spec();
    check_spec(&spec, origin)?;

    let channels = u64::from(spec.channels);
    let frames = u64::from(wav.duration());
    let seconds = frames as f64 / f64::from(spec.sample_rate);
    if seconds > limits.max_seconds || limits.max_seconds.is_nan() {
        return Err(AudioError::TooLong {
            origin: origin_s(),
            seconds,
            limit: limits.max_seconds,
        });
    }

    // Is the declared data really there? (Checked before allocating for it.)
    let container = fmt
        .and_then(|f| f.container_bytes())
        .map(u64::from)
        .unwrap_or_else(|| u64::from(spec.bits_per_sample).div_ceil(8))
        .max(1);
    let available = total_len.saturating_sub(count.get());
    check_data_present(u64::from(wav.len()), container, channels, available, origin)?;

    let mut samples = Vec::with_capacity(frames as usize);
    let result = match spec.sample_format {
        SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            collect_mono(wav.samples::<i32>(), channels, frames, &mut samples, |v| {
                v as f32 * scale
            })
        }
        SampleFormat::Float => {
            collect_mono(wav.samples::<f32>(), channels, frames, &mut samples, |v| v)
        }
    };
    match result {
        Ok(()) => {
            if let Some((index, value)) = first_non_finite(&samples) {
                return Err(AudioError::NonFinite {
                    origin: origin_s(),
                    index,
                    seconds: index as f64 / f64::from(spec.sample_rate),
                    value,
                });
            }
            Ok(Audio {
                samples,
                sample_rate: spec.sample_rate,
            })
        }
        Err(Some(hound::Error::IoError(error))) if !at_eof() => Err(AudioError::Io {
            origin: origin_s(),
            error,
        }),
        Err(Some(hound::Error::IoError(_))) | Err(None) => Err(AudioError::Truncated {
            origin: origin_s(),
            declared: frames,
            present: samples.len() as u64,
        }),
        Err(Some(e)) => Err(header_error(e, origin, fmt.as_ref(), false, "")),
    }
}

/// Refuses a file whose `available` bytes after the header hold fewer than the `samples` it
/// declares, each `container` bytes wide (in frames of `channels` samples).
fn check_data_present(
    samples: u64,
    container: u64,
    channels: u64,
    available: u64,
    origin: &str,
) -> Result<(), AudioError> {
    if available < samples * container {
        return Err(AudioError::Truncated {
            origin: origin.to_string(),
            declared: samples / channels,
            present: available / (container * channels),
        });
    }
    Ok(())
}

/// Refuses what the decoder cannot read: no channels, a zero rate, a sample format other than
/// 8/16/24/32-bit integer or 32-bit float.
fn check_spec(spec: &hound::WavSpec, origin: &str) -> Result<(), AudioError> {
    let origin = || origin.to_string();
    if spec.channels == 0 {
        return Err(AudioError::ZeroChannels { origin: origin() });
    }
    if spec.sample_rate == 0 {
        return Err(AudioError::ZeroSampleRate { origin: origin() });
    }
    let supported = matches!(
        (spec.sample_format, spec.bits_per_sample),
        (SampleFormat::Int, 8 | 16 | 24 | 32) | (SampleFormat::Float, 32)
    );
    if !supported {
        let kind = match spec.sample_format {
            SampleFormat::Int => "integer PCM",
            SampleFormat::Float => "float",
        };
        return Err(AudioError::UnsupportedFormat {
            origin: origin(),
            format: format!("{}-bit {kind}", spec.bits_per_sample),
        });
    }
    Ok(())
}

/// The index and value of the first NaN or infinite sample.
pub(crate) fn first_non_finite(samples: &[f32]) -> Option<(usize, f32)> {
    samples
        .iter()
        .position(|v| !v.is_finite())
        .map(|i| (i, samples[i]))
}

/// Refuses what the `fmt ` chunk already shows to be unusable, with a precise message.
fn check_fmt(info: &FmtInfo, origin: &str) -> Result<(), AudioError> {
    if info.channels == 0 {
        return Err(AudioError::ZeroChannels {
            origin: origin.to_string(),
        });
    }
    if info.sample_rate == 0 {
        return Err(AudioError::ZeroSampleRate {
            origin: origin.to_string(),
        });
    }
    if !info.is_supported() {
        return Err(AudioError::UnsupportedFormat {
            origin: origin.to_string(),
            format: info.describe(),
        });
    }
    Ok(())
}

/// Maps a `hound` error to an [`AudioError`] naming `origin`.
fn header_error(
    e: hound::Error,
    origin: &str,
    fmt: Option<&FmtInfo>,
    at_eof: bool,
    eof_reason: &str,
) -> AudioError {
    let origin = origin.to_string();
    let format = || {
        fmt.map(FmtInfo::describe)
            .unwrap_or_else(|| "an encoding this reader does not decode".to_string())
    };
    match e {
        hound::Error::IoError(_) if at_eof => AudioError::Malformed {
            origin,
            reason: eof_reason.to_string(),
        },
        hound::Error::IoError(error) => AudioError::Io { origin, error },
        hound::Error::FormatError("file contains zero channels") => {
            AudioError::ZeroChannels { origin }
        }
        hound::Error::FormatError(reason) => match fmt {
            Some(info) if !info.is_supported() => AudioError::UnsupportedFormat {
                origin,
                format: info.describe(),
            },
            _ => AudioError::Malformed {
                origin,
                reason: reason.to_string(),
            },
        },
        hound::Error::Unsupported | hound::Error::TooWide | hound::Error::InvalidSampleFormat => {
            AudioError::UnsupportedFormat {
                origin,
                format: format(),
            }
        }
        other => AudioError::Malformed {
            origin,
            reason: other.to_string(),
        },
    }
}

/// Reads `frames` frames of `channels` interleaved samples, averaging each frame to mono.
/// `Err(None)` means the samples ran out early, `Err(Some(e))` that `hound` failed.
fn collect_mono<S, I, F>(
    mut iter: I,
    channels: u64,
    frames: u64,
    out: &mut Vec<f32>,
    to_f32: F,
) -> Result<(), Option<hound::Error>>
where
    I: Iterator<Item = hound::Result<S>>,
    F: Fn(S) -> f32,
{
    let mut next = || match iter.next() {
        Some(Ok(v)) => Ok(to_f32(v)),
        Some(Err(e)) => Err(Some(e)),
        None => Err(None),
    };
    if channels == 1 {
        for _ in 0..frames {
            out.push(next()?);
        }
    } else {
        let n = channels as f32;
        for _ in 0..frames {
            // The f32 sum is torch's; the f64 one only stands in where the f32 sum of finite
            // samples overflows (float files near f32::MAX), so that the mean stays finite.
            let (mut sum, mut wide) = (0.0f32, 0.0f64);
            for _ in 0..channels {
                let v = next()?;
                sum += v;
                wide += f64::from(v);
            }
            let mean = sum / n;
            out.push(if mean.is_finite() || !wide.is_finite() {
                mean
            } else {
                (wide / f64::from(n)) as f32
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::{WavSpec, WavWriter};
    use std::io::Cursor;

    fn write_wav<S: hound::Sample + Copy>(spec: WavSpec, samples: &[S]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut w = WavWriter::new(&mut cursor, spec).unwrap();
            for &s in samples {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: SampleFormat) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    fn decode(bytes: &[u8]) -> Result<Audio, AudioError> {
        decode_wav(bytes, "t.wav", &AudioLimits::default())
    }

    #[test]
    fn int16_scaling_is_torchaudio_s() {
        let bytes = write_wav(
            spec(1, 16, SampleFormat::Int),
            &[0i16, 1, -1, 16384, 32767, -32768],
        );
        let a = decode(&bytes).unwrap();
        assert_eq!(a.sample_rate, 16000);
        assert_eq!(
            a.samples,
            vec![
                0.0,
                1.0 / 32768.0,
                -1.0 / 32768.0,
                0.5,
                32767.0 / 32768.0,
                -1.0
            ]
        );
    }

    #[test]
    fn eight_bit_is_unsigned_offset_128() {
        // hound takes and returns signed values: stored byte = v + 128.
        let bytes = write_wav(spec(1, 8, SampleFormat::Int), &[-128i8, 0, 127, 64]);
        assert_eq!(&bytes[44..48], &[0u8, 128, 255, 192]);
        let a = decode(&bytes).unwrap();
        assert_eq!(a.samples, vec![-1.0, 0.0, 127.0 / 128.0, 0.5]);
    }

    #[test]
    fn twenty_four_and_thirty_two_bit() {
        let bytes = write_wav(spec(1, 24, SampleFormat::Int), &[-(1i32 << 23), 1 << 22, 1]);
        let a = decode(&bytes).unwrap();
        assert_eq!(a.samples, vec![-1.0, 0.5, 1.0 / 8_388_608.0]);
        let bytes = write_wav(
            spec(1, 32, SampleFormat::Int),
            &[i32::MIN, 1 << 30, i32::MAX],
        );
        let a = decode(&bytes).unwrap();
        assert_eq!(a.samples, vec![-1.0, 0.5, 1.0]); // i32::MAX rounds to 2^31 in f32
    }

    #[test]
    fn float32_is_kept_as_stored() {
        let v = [0.25f32, -1.5, 1e-30, 0.0];
        let a = decode(&write_wav(spec(1, 32, SampleFormat::Float), &v)).unwrap();
        assert_eq!(a.samples, v.to_vec());
    }

    #[test]
    fn non_finite_float_samples_are_refused_by_position() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let bytes = write_wav(spec(1, 32, SampleFormat::Float), &[0.0, 0.5, bad, 0.0]);
            match decode(&bytes) {
                Err(AudioError::NonFinite {
                    origin,
                    index,
                    value,
                    ..
                }) => {
                    assert_eq!((origin.as_str(), index), ("t.wav", 2));
                    assert_eq!(value.to_bits(), bad.to_bits());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn full_scale_float_stereo_averages_to_a_finite_mean() {
        let v = [
            f32::MAX,
            f32::MAX,
            -f32::MAX,
            -f32::MAX,
            f32::MAX,
            -f32::MAX,
        ];
        let a = decode(&write_wav(spec(2, 32, SampleFormat::Float), &v)).unwrap();
        assert_eq!(a.samples, vec![f32::MAX, -f32::MAX, 0.0]);
    }

    #[test]
    fn stereo_is_averaged() {
        let bytes = write_wav(
            spec(2, 16, SampleFormat::Int),
            &[16384i16, 0, -32768, -16384],
        );
        let a = decode(&bytes).unwrap();
        assert_eq!(a.samples, vec![0.25, -0.75]);
        let bytes = write_wav(spec(3, 16, SampleFormat::Int), &[3i16, 3, 3]);
        assert_eq!(decode(&bytes).unwrap().samples, vec![3.0 / 32768.0]);
    }

    #[test]
    fn zero_samples_is_an_empty_clip() {
        let a = decode(&write_wav::<i16>(spec(1, 16, SampleFormat::Int), &[])).unwrap();
        assert!(a.samples.is_empty());
        assert_eq!(a.duration_seconds(), 0.0);
    }

    #[test]
    fn limit_is_checked_on_the_header() {
        let bytes = write_wav(spec(1, 16, SampleFormat::Int), &vec![0i16; 32000]);
        let limits = AudioLimits { max_seconds: 1.5 };
        match decode_wav(&bytes, "two.wav", &limits) {
            Err(AudioError::TooLong {
                origin,
                seconds,
                limit,
            }) => {
                assert_eq!(origin, "two.wav");
                assert_eq!(seconds, 2.0);
                assert_eq!(limit, 1.5);
            }
            other => panic!("{other:?}"),
        }
        let nan = AudioLimits {
            max_seconds: f64::NAN,
        };
        assert!(matches!(
            decode_wav(&bytes, "x", &nan),
            Err(AudioError::TooLong { .. })
        ));
        assert!(decode_wav(&bytes, "x", &AudioLimits { max_seconds: 2.0 }).is_ok());
    }

    #[test]
    fn truncation_is_reported_with_counts() {
        let bytes = write_wav(spec(1, 16, SampleFormat::Int), &vec![7i16; 1000]);
        let cut = &bytes[..44 + 2 * 300 + 1];
        match decode(cut) {
            Err(AudioError::Truncated {
                origin,
                declared,
                present,
            }) => {
                assert_eq!(origin, "t.wav");
                assert_eq!((declared, present), (1000, 300));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_errors() {
        let bytes = write_wav(spec(1, 16, SampleFormat::Int), &[1i16, 2, 3]);
        // Cut inside the fmt chunk and before the data chunk header.
        for n in [12, 20, 30, 40] {
            let e = decode(&bytes[..n]).unwrap_err();
            assert!(matches!(e, AudioError::Malformed { .. }), "{n}: {e}");
            assert!(e.to_string().contains("`t.wav`"));
        }
        assert!(matches!(decode(&[]), Err(AudioError::Empty { .. })));
        assert!(matches!(
            decode(b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            Err(AudioError::NotWav { .. })
        ));
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_handled() {
        let bytes = write_wav(spec(2, 16, SampleFormat::Int), &[1i16, -2, 3, -4, 5, -6]);
        for n in 0..bytes.len() {
            let _ = decode(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            for v in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Err(e) = decode(&b) {
                    assert_eq!(e.origin(), Some("t.wav"), "{e}");
                }
            }
        }
    }

    #[test]
    fn read_wav_reports_missing_files_by_path() {
        let e = read_wav(Path::new("/nonexistent/dir/x.wav"), &AudioLimits::default()).unwrap_err();
        assert!(matches!(e, AudioError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/dir/x.wav"));
    }
}
