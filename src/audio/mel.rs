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

/// The mel of every FFT bin below Nyquist and the `f32` left edge and spacing of the filters.
struct MelGrid {
    mels: Vec<f32>,
    mel_low: f32,
    delta: f32,
}

impl MelGrid {
    fn new(
        num_bins: usize,
        padded_len: usize,
        sample_rate: f64,
        low_freq: f64,
        high_freq: f64,
    ) -> Self {
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
        let width32 = fft_bin_width as f32;
        MelGrid {
            mels: (0..num_fft_bins)
                .map(|i| mel_scale_f32(width32 * i as f32))
                .collect(),
            mel_low: mel_low as f32,
            delta: delta as f32,
        }
    }

    /// Filter `b` evaluated at FFT bins `range` (torchaudio's values; zero outside the triangle).
    fn weights(&self, b: usize, range: std::ops::Range<usize>) -> impl Iterator<Item = f32> + '_ {
        let (left, center, right) = self.edges(b);
        self.mels[range].iter().map(move |&m| {
            let up = (m - left) / (center - left);
            let down = (right - m) / (right - center);
            // torch.max(zeros, torch.min(up, down)).
            up.min(down).max(0.0)
        })
    }

    fn edges(&self, b: usize) -> (f32, f32, f32) {
        let b = b as f32;
        (
            self.mel_low + b * self.delta,
            self.mel_low + (b + 1.0) * self.delta,
            self.mel_low + (b + 2.0) * self.delta,
        )
    }
}

/// Dense weights `[num_bins][padded_len / 2 + 1]` as torchaudio computes them (`f32`).
#[cfg(test)]
pub(crate) fn mel_banks_dense(
    num_bins: usize,
    padded_len: usize,
    sample_rate: f64,
    low_freq: f64,
    high_freq: f64,
) -> Vec<Vec<f32>> {
    let grid = MelGrid::new(num_bins, padded_len, sample_rate, low_freq, high_freq);
    (0..num_bins)
        .map(|b| {
            let mut row: Vec<f32> = grid.weights(b, 0..grid.mels.len()).collect();
            row.push(0.0);
            row
        })
        .collect()
}

/// The filters in sparse form (see [`MelFilter`]), equal to the non-zero span of each dense row.
///
/// Only the FFT bins strictly inside each triangle are evaluated (the mels of the bins are
/// non-decreasing, so they form one range): time and memory grow with the FFT length, not with
/// `num_bins × FFT length`, which matters for large configs (4096 bins × 32769 FFT bins would
/// be half a gigabyte dense).
pub(crate) fn mel_filters(
    num_bins: usize,
    padded_len: usize,
    sample_rate: f64,
    low_freq: f64,
    high_freq: f64,
) -> Vec<MelFilter> {
    let grid = MelGrid::new(num_bins, padded_len, sample_rate, low_freq, high_freq);
    (0..num_bins)
        .map(|b| {
            let (left, _, right) = grid.edges(b);
            let from = grid.mels.partition_point(|&m| m <= left);
            let to = grid.mels.partition_point(|&m| m < right).max(from);
            let row: Vec<f32> = grid.weights(b, from..to).collect();
            let first = row.iter().position(|&w| w > 0.0);
            let last = row.iter().rposition(|&w| w > 0.0);
            match (first, last) {
                (Some(a), Some(z)) => MelFilter {
                    start: from + a,
                    weights: row[a..=z].iter().map(|&w| f64::from(w)).collect(),
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
        for (bins, padded, rate, low, high) in [
            (128, 512, 16000.0, 20.0, 0.0),
            (40, 256, 8000.0, 20.0, 0.0),
            (23, 512, 16000.0, 300.0, -400.0),
            (1000, 1024, 44100.0, 0.0, 0.0), // many filters narrower than one FFT bin
            (4, 65536, 2_621_440.0, 20.0, 0.0),
        ] {
            let dense = mel_banks_dense(bins, padded, rate, low, high);
            let sparse = mel_filters(bins, padded, rate, low, high);
            assert_eq!(dense.len(), sparse.len());
            for (d, s) in dense.iter().zip(&sparse) {
                for (i, &w) in d.iter().enumerate() {
                    let sw = if i >= s.start && i < s.start + s.weights.len() {
                        s.weights[i - s.start]
                    } else {
                        0.0
                    };
                    assert_eq!(f64::from(w), sw, "{bins} bins, padded {padded}: bin {i}");
                }
            }
        }
        assert!(mel_filters(128, 512, 16000.0, 20.0, 0.0)[3]
            .weights
            .is_empty());
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
