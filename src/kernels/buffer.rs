//! New `f32` buffers for the kernels' results, written once, in parallel where `cfg(threaded)`.
//!
//! burn-flex's `FlexTensor::empty` zeroes a `Vec<u8>` and then copies it into a 16-byte-aligned
//! allocation (a `Vec<u8>` reports alignment 1), two serial passes on the thread that drives the
//! graph while rayon's workers wait (a visible share of a training step's samples under
//! `perf`; docs/benchmark-history.md). These buffers are `Vec<f32>`s,
//! which burn takes without a copy, and their one initialising pass is split over rayon's
//! threads.

use std::mem::MaybeUninit;

/// Elements per parallel task: large enough that rayon's overhead is noise.
#[cfg(threaded)]
const CHUNK: usize = 1 << 15;

/// `len` copies of `value`.
pub fn filled(len: usize, value: f32) -> Vec<f32> {
    init(len, 1, |chunk| {
        chunk.iter_mut().for_each(|x| {
            x.write(value);
        });
    })
}

/// `copies` copies of `pattern`, one after another (a row repeated down a matrix).
pub fn tiled(pattern: &[f32], copies: usize) -> Vec<f32> {
    if pattern.is_empty() {
        return Vec::new();
    }
    init(pattern.len() * copies, pattern.len(), |chunk| {
        for row in chunk.chunks_exact_mut(pattern.len()) {
            for (x, &p) in row.iter_mut().zip(pattern) {
                x.write(p);
            }
        }
    })
}

/// A vector of `len` elements, each set by `write`, which must initialise every slot of the
/// chunks it is handed; their lengths are multiples of `unit`.
fn init(len: usize, unit: usize, write: impl Fn(&mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    assert!(
        unit > 0 && len.is_multiple_of(unit),
        "buffer: length not a multiple of {unit}"
    );
    let mut values = Vec::with_capacity(len);
    let slots = &mut values.spare_capacity_mut()[..len];
    #[cfg(threaded)]
    {
        use rayon::prelude::*;
        let chunk = CHUNK.div_ceil(unit).max(1) * unit;
        slots.par_chunks_mut(chunk).for_each(&write);
    }
    #[cfg(not(threaded))]
    write(slots);
    // SAFETY: the chunks cover `0..len` and `write` initialises every slot of each (both
    // callers above: `filled` every slot, `tiled` whole rows of chunks of whole rows).
    unsafe { values.set_len(len) };
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_sets_every_element_across_chunks() {
        for len in [0, 1, 5, (1 << 15) + 3, 3 << 16] {
            let values = filled(len, 2.5);
            assert_eq!(values.len(), len);
            assert!(values.iter().all(|&x| x == 2.5), "len {len}");
        }
    }

    #[test]
    fn tiled_repeats_the_pattern_whole_across_chunks() {
        let pattern: Vec<f32> = (0..768).map(|i| i as f32).collect();
        for copies in [0, 1, 43, 200] {
            let values = tiled(&pattern, copies);
            assert_eq!(values.len(), pattern.len() * copies);
            for row in values.chunks_exact(pattern.len()) {
                assert_eq!(row, &pattern[..]);
            }
        }
        assert!(tiled(&[], 7).is_empty());
    }
}
