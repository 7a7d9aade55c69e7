//! Sample-rate conversion with `rubato`'s synchronous FFT resampler.
//!
//! The ratio is exact (`to / from` reduced by their gcd), the anti-aliasing filter is a long
//! windowed sinc (Blackman-Harris, at least 1024 taps at the input rate), and the filter's
//! delay is removed so that output sample `k` is the input signal at time `k / to_hz`.
//! The output has `round(len * to_hz / from_hz)` samples. Computation is in `f64`.

use rubato::{FftFixedInOut, Resampler};

use super::error::AudioError;
use super::wav::Audio;

/// Target rate of the AST feature extractor.
pub const AST_SAMPLE_RATE: u32 = 16_000;

/// Largest reduced ratio term (`from / gcd`, `to / gcd`) accepted: it sets the FFT sizes.
const MAX_REDUCED_RATE: u64 = 1 << 18;

/// Largest output accepted, in samples (`u32::MAX`, about 74 hours at 16 kHz).
const MAX_OUTPUT_SAMPLES: u128 = u32::MAX as u128;

/// Aim for at least this many input samples per FFT block (longer filter, sharper cut-off).
const MIN_BLOCK_IN: u64 = 1024;

/// ...but no more than this many output samples per block: upsampling from a tiny rate
/// (a header declaring 1 Hz) would otherwise ask for FFTs of millions of points.
const MAX_BLOCK_OUT: u64 = 1 << 18;

/// `f32::MAX` in `f64`.
const F32_MAX: f64 = f32::MAX as f64;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `round(len * to / from)`, or `None` when it does not fit the output limit.
fn output_len(len: usize, from_hz: u32, to_hz: u32) -> Option<usize> {
    let (len, from, to) = (len as u128, u128::from(from_hz), u128::from(to_hz));
    let n = (len * to + from / 2) / from;
    (n <= MAX_OUTPUT_SAMPLES).then_some(n as usize)
}

/// Resamples mono `samples` from `from_hz` to `to_hz`.
///
/// Equal rates return a copy. The output is time-aligned with the input (the resampler's
/// delay is compensated) and `round(samples.len() * to_hz / from_hz)` long. Errors for a zero
/// rate, for rates whose reduced ratio needs FFTs longer than 2^18 (e.g. a prime rate above
/// 262144 Hz), and for outputs longer than `u32::MAX` samples.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, AudioError> {
    resample_prefix(samples, from_hz, to_hz, usize::MAX)
}

/// The first `max_out` samples of [`resample`]`(samples, from_hz, to_hz)`, bit for bit, reading
/// only the input they need: a feature extractor that keeps 10 s does not resample 20 minutes.
pub fn resample_prefix(
    samples: &[f32],
    from_hz: u32,
    to_hz: u32,
    max_out: usize,
) -> Result<Vec<f32>, AudioError> {
    let err = |reason: String| AudioError::Resample {
        from_hz,
        to_hz,
        reason,
    };
    if from_hz == 0 || to_hz == 0 {
        return Err(err("a sample rate of 0 Hz is meaningless".into()));
    }
    if from_hz == to_hz {
        return Ok(samples[..samples.len().min(max_out)].to_vec());
    }
    let out_len = output_len(samples.len(), from_hz, to_hz).ok_or_else(|| {
        err(format!(
            "the output would have more than {MAX_OUTPUT_SAMPLES} samples; cut the clip"
        ))
    })?;
    let out_len = out_len.min(max_out);
    if samples.is_empty() {
        return Ok(Vec::new());
    }

    let g = gcd(u64::from(from_hz), u64::from(to_hz));
    let (step_in, step_out) = (u64::from(from_hz) / g, u64::from(to_hz) / g);
    if step_in > MAX_REDUCED_RATE || step_out > MAX_REDUCED_RATE {
        return Err(err(format!(
            "the ratio reduces to {step_out}/{step_in}, which needs FFTs longer than \
             {MAX_REDUCED_RATE}; convert the file to a common rate (e.g. 16000 or 48000 Hz) first"
        )));
    }
    // An even number of minimal blocks per FFT block makes both block sizes even, so the
    // filter delay (half a block) is a whole number of output samples.
    let mut blocks = MIN_BLOCK_IN
        .div_ceil(step_in)
        .min(MAX_BLOCK_OUT / step_out)
        .max(1);
    blocks += blocks % 2;
    let chunk_in = (blocks * step_in) as usize;

    let mut resampler = FftFixedInOut::<f64>::new(from_hz as usize, to_hz as usize, chunk_in, 1)
        .map_err(|e| err(e.to_string()))?;
    let chunk_in = resampler.input_frames_next();
    let chunk_out = resampler.output_frames_next();
    let delay = resampler.output_delay();

    let mut input = vec![vec![0.0f64; chunk_in]];
    let mut output = vec![vec![0.0f64; chunk_out]];
    let mut result = Vec::with_capacity(out_len);
    let mut skip = delay;
    let mut pos = 0usize;
    while result.len() < out_len {
        let take = samples.len().saturating_sub(pos).min(chunk_in);
        let block = &mut input[0];
        for (dst, &src) in block.iter_mut().zip(&samples[pos..pos + take]) {
            *dst = f64::from(src);
        }
        block[take..].fill(0.0);
        pos += take;
        let (_, produced) = resampler
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| err(e.to_string()))?;
        let fresh = &output[0][..produced];
        let drop = skip.min(fresh.len());
        skip -= drop;
        let want = out_len - result.len();
        // Ringing can overshoot finite input near f32::MAX: saturate instead of going infinite.
        result.extend(
            fresh[drop..]
                .iter()
                .take(want)
                .map(|&v| v.clamp(-F32_MAX, F32_MAX) as f32),
        );
    }
    Ok(result)
}

/// Resamples mono audio to 16 kHz, the rate of the AST feature extractor (no copy when it
/// already is at 16 kHz).
pub fn to_16k(audio: Audio) -> Result<Vec<f32>, AudioError> {
    if audio.sample_rate == AST_SAMPLE_RATE {
        return Ok(audio.samples);
    }
    resample(&audio.samples, audio.sample_rate, AST_SAMPLE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// Max deviation from the analytic sine, away from the first and last `edge` samples.
    fn max_err_vs_sine(y: &[f32], freq: f64, rate: u32, edge: usize) -> f64 {
        y.iter()
            .enumerate()
            .skip(edge)
            .take(y.len().saturating_sub(2 * edge))
            .map(|(i, &v)| {
                (f64::from(v) - (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn upsampling_8k_to_16k_keeps_a_440hz_sine() {
        let x = sine(440.0, 8000, 8000);
        let y = resample(&x, 8000, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        let err = max_err_vs_sine(&y, 440.0, 16000, 400);
        assert!(err < 1e-2, "max error {err}");
    }

    #[test]
    fn downsampling_44k1_to_16k_keeps_a_440hz_sine() {
        let x = sine(440.0, 44100, 44100);
        let y = resample(&x, 44100, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        let err = max_err_vs_sine(&y, 440.0, 16000, 400);
        assert!(err < 1e-2, "max error {err}");
    }

    #[test]
    fn odd_rates_are_time_aligned_too() {
        for (from, to) in [
            (48000, 16000),
            (22050, 16000),
            (16000, 8000),
            (11025, 16000),
            (44101, 16000),
        ] {
            let x = sine(300.0, from, from as usize / 2);
            let y = resample(&x, from, to).unwrap();
            assert_eq!(
                y.len(),
                (x.len() as u64 * to as u64 + from as u64 / 2) as usize / from as usize
            );
            let err = max_err_vs_sine(&y, 300.0, to, to as usize / 20);
            assert!(err < 1e-2, "{from}->{to}: max error {err}");
        }
    }

    #[test]
    fn content_above_the_new_nyquist_is_removed() {
        // 7 kHz at 44.1 kHz must not alias into the 8 kHz-band output.
        let x = sine(7000.0, 44100, 44100);
        let y = resample(&x, 44100, 8000).unwrap();
        let mid = &y[800..y.len() - 800];
        let peak = mid.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak < 1e-3, "aliased peak {peak}");
    }

    #[test]
    fn identity_empty_and_lengths() {
        let x = vec![0.5f32, -0.25, 0.0];
        assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
        assert!(resample(&[], 8000, 16000).unwrap().is_empty());
        assert_eq!(resample(&[1.0], 8000, 16000).unwrap().len(), 2);
        assert_eq!(resample(&[1.0; 3], 44100, 16000).unwrap().len(), 1);
        assert_eq!(resample(&[1.0; 1], 44100, 16000).unwrap().len(), 0);
        assert_eq!(output_len(5, 3, 2), Some(3)); // 3.33 -> 3
        assert_eq!(output_len(7, 2, 1), Some(4)); // 3.5 -> 4
    }

    #[test]
    fn constant_signal_keeps_its_level() {
        let y = resample(&vec![0.5f32; 16000], 16000, 44100).unwrap();
        for &v in &y[2000..y.len() - 2000] {
            assert!((v - 0.5).abs() < 1e-4, "{v}");
        }
    }

    #[test]
    fn bad_rates_are_errors_not_panics() {
        assert!(matches!(
            resample(&[1.0], 0, 16000),
            Err(AudioError::Resample { .. })
        ));
        assert!(matches!(
            resample(&[1.0], 16000, 0),
            Err(AudioError::Resample { .. })
        ));
        // A prime rate above 2^18: refused with advice.
        let e = resample(&[1.0; 10], 4_294_967_291, 16000).unwrap_err();
        assert!(e.to_string().contains("convert the file"), "{e}");
        // Output too long.
        let e = resample(&[0.0; 2], 1, u32::MAX).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn a_prefix_is_the_start_of_the_full_output_bit_for_bit() {
        let x = sine(300.0, 44100, 44100);
        let full = resample(&x, 44100, 16000).unwrap();
        for n in [0, 1, 100, 5000, 15999, 16000, 20000] {
            let prefix = resample_prefix(&x, 44100, 16000, n).unwrap();
            assert_eq!(prefix.len(), n.min(full.len()));
            assert!(prefix
                .iter()
                .zip(&full)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        assert_eq!(
            resample_prefix(&x, 44100, 44100, 7).unwrap(),
            x[..7].to_vec()
        );
    }

    #[test]
    fn tiny_and_huge_rates_stay_cheap_and_finite() {
        // 1 Hz -> 16 kHz: 16000 outputs per input sample, blocks capped.
        let y = resample(&[0.5; 40], 1, 16000).unwrap();
        assert_eq!(y.len(), 640_000);
        assert!(y.iter().all(|v| v.is_finite()));
        // Full-scale input overshoots through the filter: saturated, not infinite.
        let square: Vec<f32> = (0..4000)
            .map(|i| {
                if (i / 5) % 2 == 0 {
                    f32::MAX
                } else {
                    -f32::MAX
                }
            })
            .collect();
        let y = resample(&square, 44100, 16000).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn to_16k_moves_without_copy_when_already_16k() {
        let audio = Audio {
            samples: vec![0.1, 0.2],
            sample_rate: 16000,
        };
        let ptr = audio.samples.as_ptr();
        let y = to_16k(audio).unwrap();
        assert_eq!(y.as_ptr(), ptr);
        let y = to_16k(Audio {
            samples: sine(440.0, 8000, 800),
            sample_rate: 8000,
        })
        .unwrap();
        assert_eq!(y.len(), 1600);
    }
}
