//! SpecAugment masking (Park et al. 2019) as the paper applies it to ESC-50 and UrbanSound8K:
//! one frequency mask and one time mask per clip, filled with 0 on the normalised fbank
//! (torchaudio `FrequencyMasking(24)` + `TimeMasking(80)`).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Mask widths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpecAugment {
    /// Largest frequency mask, in mel bins.
    pub freq_mask: usize,
    /// Largest time mask, in frames.
    pub time_mask: usize,
}

impl SpecAugment {
    /// The paper's widths: 24 mel bins, 80 frames.
    pub const PAPER: SpecAugment = SpecAugment {
        freq_mask: 24,
        time_mask: 80,
    };

    /// Masks `features` (`[frames, mel]` row-major) in place: a width drawn in `0..=max`, a start
    /// drawn so the mask fits, as torchaudio's `mask_along_axis`.
    pub fn apply(&self, features: &mut [f32], [frames, mel]: [usize; 2], rng: &mut impl Rng) {
        let (f0, fw) = span(self.freq_mask, mel, rng);
        let (t0, tw) = span(self.time_mask, frames, rng);
        for t in 0..frames {
            let row = &mut features[t * mel..(t + 1) * mel];
            if (t0..t0 + tw).contains(&t) {
                row.fill(0.0);
            } else {
                row[f0..f0 + fw].fill(0.0);
            }
        }
    }
}

/// `(start, width)` with `width ∈ [0, max]` and `start + width ≤ len`.
fn span(max: usize, len: usize, rng: &mut impl Rng) -> (usize, usize) {
    let width = (rng.random::<f64>() * max.min(len) as f64) as usize;
    let start = (rng.random::<f64>() * (len - width) as f64) as usize;
    (start, width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn masks_stay_within_bounds_and_widths() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (frames, mel) = (100, 128);
        for _ in 0..200 {
            let mut x = vec![1.0f32; frames * mel];
            SpecAugment::PAPER.apply(&mut x, [frames, mel], &mut rng);
            let zero_rows = (0..frames)
                .filter(|t| x[t * mel..(t + 1) * mel].iter().all(|v| *v == 0.0))
                .count();
            assert!(zero_rows <= 80);
            let zero_cols = (0..mel)
                .filter(|m| (0..frames).all(|t| x[t * mel + m] == 0.0))
                .count();
            assert!(
                zero_cols <= 24 || zero_rows == frames,
                "{zero_cols} masked bins"
            );
            assert_eq!(x.len(), frames * mel);
        }
    }

    #[test]
    fn short_inputs_never_overflow() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let mut x = vec![1.0f32; 5 * 3];
            SpecAugment::PAPER.apply(&mut x, [5, 3], &mut rng);
            // Masks wider than the input are clamped to it: values are kept or zeroed, never
            // anything else, and the length does not change.
            assert_eq!(x.len(), 15);
            assert!(x.iter().all(|&v| v == 0.0 || v == 1.0), "{x:?}");
        }
    }
}
