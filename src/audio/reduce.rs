//! `f32` summation in the order PyTorch's CPU kernel uses.
//!
//! `torchaudio.compliance.kaldi.fbank` removes each frame's DC offset with `torch.mean`, which
//! on the CPU is `sum(dim) / n` with `float` accumulation in ATen's `cascade_sum`
//! (`aten/src/ATen/native/cpu/SumKernel.cpp`): for a contiguous row of at least 8 values it
//! sums 8-lane vectors (AVX2) into 4 interleaved accumulators with a multi-level cascade, then
//! adds the scalar tail and finally the 8 lanes in order. The speech features are sensitive
//! to the last bit of that mean (a 1-ulp different DC offset moves low-energy mel bins by
//! ~1e-4 in log space), so this module reproduces the order exactly; it is bit-identical to
//! `torch.mean` on an AVX2 build (an AVX-512 build uses 16 lanes and may differ by an ulp).

/// Lanes of ATen's `Vectorized<float>` on AVX2.
const LANES: usize = 8;
/// ATen's `ilp_factor`: interleaved accumulators in `row_sum`.
const ILP: usize = 4;
/// ATen's `num_levels` in `multi_row_sum`.
const LEVELS: usize = 4;

/// `utils::CeilLog2`.
fn ceil_log2(x: usize) -> usize {
    if x <= 2 {
        1
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
}

/// `multi_row_sum<acc_t, 4>` over `size` groups of 4 consecutive `W`-wide elements of `x`.
// The index loops mirror ATen's, to keep the correspondence (and the order) obvious.
#[allow(clippy::needless_range_loop)]
fn multi_row_sum<const W: usize>(x: &[f32], size: usize) -> [[f32; W]; ILP] {
    let load = |i: usize| -> &[f32] { &x[i * W..(i + 1) * W] };
    let level_power = (ceil_log2(size) / LEVELS).max(4);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let mut acc = [[[0.0f32; W]; ILP]; LEVELS];
    let add = |dst: &mut [f32; W], src: &[f32]| {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += *s;
        }
    };
    let mut i = 0usize;
    while i + level_step <= size {
        for _ in 0..level_step {
            for k in 0..ILP {
                add(&mut acc[0][k], load(i * ILP + k));
            }
            i += 1;
        }
        for j in 1..LEVELS {
            for k in 0..ILP {
                let lower = acc[j - 1][k];
                add(&mut acc[j][k], &lower);
                acc[j - 1][k] = [0.0; W];
            }
            let mask = level_mask << (j * level_power);
            if i & mask != 0 {
                break;
            }
        }
    }
    while i < size {
        for k in 0..ILP {
            add(&mut acc[0][k], load(i * ILP + k));
        }
        i += 1;
    }
    for j in 1..LEVELS {
        for k in 0..ILP {
            let upper = acc[j][k];
            add(&mut acc[0][k], &upper);
        }
    }
    acc[0]
}

/// `row_sum<acc_t>` over the first `size` `W`-wide elements of `x`.
fn row_sum<const W: usize>(x: &[f32], size: usize) -> [f32; W] {
    let size_ilp = size / ILP;
    let mut partial = multi_row_sum::<W>(x, size_ilp);
    for i in size_ilp * ILP..size {
        for (p, v) in partial[0].iter_mut().zip(&x[i * W..(i + 1) * W]) {
            *p += *v;
        }
    }
    for k in 1..ILP {
        let other = partial[k];
        for (p, v) in partial[0].iter_mut().zip(&other) {
            *p += *v;
        }
    }
    partial[0]
}

/// `torch.sum` of a contiguous `float` row, bit for bit (AVX2 build).
pub(crate) fn torch_sum(x: &[f32]) -> f32 {
    if x.len() >= LANES {
        let vec_size = x.len() / LANES;
        let lanes = row_sum::<LANES>(x, vec_size);
        let mut total = 0.0f32;
        for &v in &x[vec_size * LANES..] {
            total += v;
        }
        for v in lanes {
            total += v;
        }
        total
    } else {
        row_sum::<1>(x, x.len())[0]
    }
}

/// `torch.mean` of a contiguous `float` row: [`torch_sum`] divided by the length in `f32`.
/// `NaN` for an empty row, like torch.
pub(crate) fn torch_mean(x: &[f32]) -> f32 {
    torch_sum(x) / x.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic, badly conditioned test row (large and tiny values, both signs).
    fn row(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                if i % 7 == 0 {
                    u * 1000.0
                } else {
                    u * 1e-3
                }
            })
            .collect()
    }

    #[test]
    fn ceil_log2_matches_aten() {
        assert_eq!(ceil_log2(0), 1);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(4), 2);
        assert_eq!(ceil_log2(5), 3);
        assert_eq!(ceil_log2(1 << 20), 20);
        assert_eq!(ceil_log2((1 << 20) + 1), 21);
    }

    #[test]
    fn exact_on_representable_sums() {
        let x: Vec<f32> = (0..400).map(|i| i as f32).collect();
        assert_eq!(torch_sum(&x), 79800.0);
        assert_eq!(torch_mean(&x), 199.5);
        assert_eq!(torch_sum(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(torch_sum(&[]), 0.0);
        assert!(torch_mean(&[]).is_nan());
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn order_for_400_values() {
        // For 400 values (50 vectors, 12 groups of 4 + 2): accumulator k gets vectors
        // k, k+4, ..., k+44 in order; vectors 48 and 49 go to accumulator 0; then the
        // accumulators 0+1+2+3; then lanes 0..7.
        let x = row(400, 7);
        let v = |i: usize, l: usize| x[i * 8 + l];
        let mut acc = [[0.0f32; 8]; 4];
        for i in 0..12 {
            for (k, a) in acc.iter_mut().enumerate() {
                for (l, al) in a.iter_mut().enumerate() {
                    *al += v(4 * i + k, l);
                }
            }
        }
        for i in 48..50 {
            for l in 0..8 {
                acc[0][l] += v(i, l);
            }
        }
        for k in 1..4 {
            for l in 0..8 {
                acc[0][l] += acc[k][l];
            }
        }
        let mut expected = 0.0f32;
        for l in 0..8 {
            expected += acc[0][l];
        }
        assert_eq!(torch_sum(&x).to_bits(), expected.to_bits());
        // ...which is not what a naive left-to-right sum gives for this row.
        let naive: f32 = x.iter().sum();
        assert_ne!(naive.to_bits(), expected.to_bits());
    }

    #[test]
    fn long_rows_use_the_cascade_and_stay_accurate() {
        for n in [1usize, 7, 8, 9, 31, 33, 127, 128, 129, 4096, 100_003] {
            let x = row(n, n as u64);
            let exact: f64 = x.iter().map(|&v| f64::from(v)).sum();
            let scale: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
            let got = f64::from(torch_sum(&x));
            assert!(
                (got - exact).abs() <= 1e-5 * scale,
                "n={n}: {got} vs {exact}"
            );
        }
    }
}
