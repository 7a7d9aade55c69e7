//! Branch-free scalar math that the compiler vectorises inside the kernels' loops.

/// `e^w` for `w ≤ 88` (Cephes `expf`: `2^n · e^r` with `|r| ≤ ½ ln 2`), relative error
/// ≤ 3e-7. Arguments below −87, where `e^w` leaves `f32`'s normal range, give `e^−87` ≈ 1.6e-38.
#[inline(always)]
pub fn exp(w: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5·2²³: adding and subtracting it rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let w = w.max(-87.0);
    // `t`'s low mantissa bits hold round(w·log2 e) (+ the bits of ROUND): integer ops read it
    // without a float → int conversion, which Rust's saturating `as` would keep scalar.
    let t = w * LOG2E + ROUND;
    let n = t - ROUND;
    let r = w - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n = f32::from_bits(n_int.wrapping_add(127) << 23);
    e_r * two_n
}

/// erf by Simpson integration of 2/√π·e^(−t²) in f64 (error ≈ 1e-12 for |x| ≤ 12): the
/// reference the kernels' tests compare against.
#[cfg(test)]
pub(crate) fn erf_reference(x: f64) -> f64 {
    let n = 20_000;
    let h = x / n as f64;
    let sum: f64 = (0..=n)
        .map(|i| {
            let t = i as f64 * h;
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * (-t * t).exp()
        })
        .sum();
    sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_polynomial_is_accurate_on_its_domain() {
        for i in -800..=870 {
            let w = -(i as f32) * 0.1;
            let exact = (w as f64).exp();
            let got = super::exp(w) as f64;
            assert!(
                (got - exact).abs() <= 3.0e-7 * exact,
                "exp({w}) = {got}, exact {exact}"
            );
        }
    }
}
