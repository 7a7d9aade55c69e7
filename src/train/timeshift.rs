//! Random time shift: moves a clip later inside its padded window, so a model trained on short
//! clips (spoken digits fill a third of a 1.28 s window) does not tie a class to where in the
//! window the sound starts. The padding frames the feature extractor appended (identical rows at
//! the end, `(0 - mean) / (2 std)` after normalisation) move to the front; nothing of the clip
//! is lost.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Largest shift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeShift {
    /// Largest shift in frames; the clip's own padding bounds it too.
    pub max_frames: usize,
}

impl TimeShift {
    /// Shifts `features` (`[frames, mel]` row-major) later by a number of frames drawn
    /// uniformly in `0..=min(max_frames, padding)`, filling the front with the padding row.
    /// A clip without trailing padding is left as it is.
    pub fn apply(&self, features: &mut [f32], [frames, mel]: [usize; 2], rng: &mut impl Rng) {
        let padding = trailing_padding(features, frames, mel);
        let shift = rng.random_range(0..=padding.min(self.max_frames));
        if shift == 0 {
            return;
        }
        let pad_row = features[(frames - 1) * mel..frames * mel].to_vec();
        features.copy_within(0..(frames - shift) * mel, shift * mel);
        for row in features[..shift * mel].chunks_exact_mut(mel) {
            row.copy_from_slice(&pad_row);
        }
    }
}

/// Trailing rows identical to the last one: the extractor's padding. One such row alone is the
/// clip's own last frame, not padding.
fn trailing_padding(features: &[f32], frames: usize, mel: usize) -> usize {
    if frames == 0 || mel == 0 || features.len() < frames * mel {
        return 0;
    }
    let last = &features[(frames - 1) * mel..frames * mel];
    let same = (0..frames)
        .rev()
        .take_while(|&t| &features[t * mel..(t + 1) * mel] == last)
        .count();
    if same >= 2 {
        same
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `content` distinct rows then `frames - content` copies of a padding row.
    fn clip(content: usize, frames: usize, mel: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|t| {
                (0..mel).map(move |m| {
                    if t < content {
                        (t * mel + m) as f32
                    } else {
                        -1.0
                    }
                })
            })
            .collect()
    }

    #[test]
    fn shifts_the_clip_intact_within_its_padding() {
        let (content, frames, mel) = (30, 100, 4);
        let original = clip(content, frames, mel);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut shifts = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let mut x = original.clone();
            TimeShift { max_frames: 50 }.apply(&mut x, [frames, mel], &mut rng);
            let shift = x.chunks(mel).take_while(|r| r[0] == -1.0).count();
            assert!(shift <= 50, "shift {shift} beyond the bound");
            assert_eq!(
                &x[shift * mel..(shift + content) * mel],
                &original[..content * mel]
            );
            assert!(x[(shift + content) * mel..].iter().all(|v| *v == -1.0));
            shifts.insert(shift);
        }
        assert!(
            shifts.contains(&0) && shifts.len() > 30,
            "shifts drawn: {shifts:?}"
        );
    }

    #[test]
    fn the_padding_bounds_the_shift() {
        let (content, frames, mel) = (95, 100, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..100 {
            let mut x = clip(content, frames, mel);
            TimeShift { max_frames: 80 }.apply(&mut x, [frames, mel], &mut rng);
            let shift = x.chunks(mel).take_while(|r| r[0] == -1.0).count();
            assert!(shift <= 5);
            assert_eq!(
                x[shift * mel],
                0.0,
                "the clip starts right after the moved padding"
            );
        }
    }

    #[test]
    fn a_clip_without_padding_is_untouched() {
        let (frames, mel) = (20, 3);
        let original = clip(frames, frames, mel);
        let mut x = original.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        TimeShift { max_frames: 10 }.apply(&mut x, [frames, mel], &mut rng);
        assert_eq!(x, original);
    }
}
