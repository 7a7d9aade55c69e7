//! The Kaldi mel filterbank of `torchaudio.compliance.kaldi.get_mel_banks` (no VTLN warp).
//!
//! `mel(f) = 1127 ln(1 + f / 700)`; `num_bins + 2` equally spaced points on the mel scale
//! from `mel(low_freq)` to `mel(high_freq)` define triangular filters, evaluated at the mel
//! of each FFT bin `i * sample_rate / padded_len` for `i < padded_len / 2`; the Nyquist bin
//! gets weight 0 (torchaudio pads that column with zeros). The weights are computed with the
//! same `f32` operations as torchaudio (the scalars `mel(low)`, `mel(high)` and the step in
//! `f64`, like Python floats), except that `ln` is correctly rounded where torch's vectorised
//! `log` may be 1 ulp off: weights agree with torchaudio's to ~1e-5 and have the same zeros.

/// One triangular filter: `weights[j]` applies to FFT bin `start + j`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MelFilter {
    /// First FFT bin with a non-zero weight.
    pub start: usize,
    /// Non-zero weights (possibly empty: a filter so narrow that no FFT bin falls inside).
    pub weights: Vec<f64>,
}

/// Kaldi's mel scale, in `f64` (`mel_scale_scalar`).
pub(crate) fn mel_scale(freq: f64) -> f64 {
    1127.0 * (1.0 + freq / 700.0).ln()
}

/// Kaldi's mel scale on an `f32` tensor value (`mel_scale`): every operation in `f32`.
fn mel_scale_f32(freq: f32) -> f32 {
    let x = 1.0f32 + freq / 700.0f32;
    1127.0f32 * (f64::from(x).ln() as f32)
}

/// Dense weights `[num_bins][padded_len / 2 + 1]` as torchaudio computes them (`f32`).
pub(crate) fn mel_banks_dense(
    num_bins: usize,
    padded_len: usize,
    sample_rate: f64,
    low_freq: f64,
    high_freq: f64,
) -> Vec<Vec<f32>> {
    let num_fft_bins = padded_len / 2;
    let nyquist = 0.5 * sample_rate;
    let high_freq = if high_freq <= 0.0 {
        high_freq + nyquist
    } else {
        high_freq
    };
    let fft_bin_width = sample_rate / padded_len as f64;
    let mel_low = mel_scale(low_freq);
    let mel_high = mel_scale(high_freq);
    let delta = (mel_high - mel_low) / (num_bins + 1) as f64;

    let (mel_low32, delta32, width32) = (mel_low as f32, delta as f32, fft_bin_width as f32);
    let mels: Vec<f32> = (0..num_fft_bins)
        .map(|i| mel_scale_f32(width32 * i as f32))
        .collect();
    (0..num_bins)
        .map(|b| {
            let b = b as f32;
            let left = mel_low32 + b * delta32;
            let center = mel_low32 + (b + 1.0) * delta32;
            let right = mel_low32 + (b + 2.0) * delta32;
            let mut row: Vec<f32> = mels
                .iter()
                .map(|&m| {
                    let up = (m - left) / (center - left);
                    let down = (right - m) / (right - center);
                    // torch.max(zeros, torch.min(up, down)); NaN cannot occur here.
                    up.min(down).max(0.0)
                })
                .collect();
            row.push(0.0);
            row
        })
        .collect()
}

/// The filters in sparse form (see [`MelFilter`]).
pub(crate) fn mel_filters(
    num_bins: usize,
    padded_len: usize,
    sample_rate: f64,
    low_freq: f64,
    high_freq: f64,
) -> Vec<MelFilter> {
    mel_banks_dense(num_bins, padded_len, sample_rate, low_freq, high_freq)
        .into_iter()
        .map(|row| {
            let first = row.iter().position(|&w| w > 0.0);
            let last = row.iter().rposition(|&w| w > 0.0);
            match (first, last) {
                (Some(a), Some(b)) => MelFilter {
                    start: a,
                    weights: row[a..=b].iter().map(|&w| f64::from(w)).collect(),
                },
                _ => MelFilter {
                    start: 0,
                    weights: Vec::new(),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ast_banks() -> Vec<Vec<f32>> {
        mel_banks_dense(128, 512, 16000.0, 20.0, 0.0)
    }

    #[test]
    fn mel_scale_values() {
        assert_eq!(mel_scale(0.0), 0.0);
        assert!((mel_scale(700.0) - 1127.0 * 2f64.ln()).abs() < 1e-9);
        assert!((mel_scale(8000.0) - 2_840.037_711_738_378).abs() < 1e-9);
    }

    #[test]
    fn ast_bank_shape_and_known_properties() {
        let b = ast_banks();
        assert_eq!(b.len(), 128);
        assert!(b.iter().all(|r| r.len() == 257));
        // Nyquist column and DC column are zero.
        assert!(b.iter().all(|r| r[256] == 0.0 && r[0] == 0.0));
        // Filter 3 is narrower than one FFT bin: all zero (torchaudio too).
        assert!(b[3].iter().all(|&w| w == 0.0));
        assert!(b
            .iter()
            .enumerate()
            .all(|(i, r)| i == 3 || r.iter().any(|&w| w > 0.0)));
        // Triangles: weights within [0, 1].
        assert!(b.iter().flatten().all(|&w| (0.0..=1.0).contains(&w)));
        // 1 kHz = FFT bin 32 is covered by exactly two filters whose weights sum to 1
        // (torchaudio: 0.52337146 and 0.47662851).
        let w: Vec<f32> = b.iter().map(|r| r[32]).filter(|&w| w > 0.0).collect();
        assert_eq!(w.len(), 2);
        assert!((w[0] - 0.52337146).abs() < 2e-5 && (w[1] - 0.476_628_5).abs() < 2e-5);
        assert!((w[0] + w[1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn sparse_form_matches_dense() {
        let dense = ast_banks();
        let sparse = mel_filters(128, 512, 16000.0, 20.0, 0.0);
        for (d, s) in dense.iter().zip(&sparse) {
            for (i, &w) in d.iter().enumerate() {
                let sw = if i >= s.start && i < s.start + s.weights.len() {
                    s.weights[i - s.start]
                } else {
                    0.0
                };
                assert_eq!(f64::from(w), sw);
            }
        }
        assert!(sparse[3].weights.is_empty());
    }

    #[test]
    fn explicit_high_freq_and_negative_offset() {
        let a = mel_banks_dense(23, 512, 16000.0, 20.0, 8000.0);
        let b = mel_banks_dense(23, 512, 16000.0, 20.0, 0.0);
        assert_eq!(a, b);
        let c = mel_banks_dense(23, 512, 16000.0, 20.0, -400.0); // 7600 Hz
        assert!(c
            .iter()
            .all(|r| r[(7600.0 / 31.25) as usize + 1..].iter().all(|&w| w == 0.0)));
    }
}
