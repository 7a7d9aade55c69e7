//! One AdamW update (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019) over
//! `f32` slices, in one pass and in place: the parameter and both moments are read and written
//! once, the gradient read once.
//!
//! burn's `AdamW` composes the same update from about fifteen tensor ops, each a pass over the
//! parameter's size, which on full fine-tuning of AST-base (86 M parameters) is a visible part
//! of the step (docs/benchmark-history.md has the measurement).
//! The arithmetic follows burn's, so the two agree to rounding and share one state record:
//!
//! ```text
//! m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
//! p ← p·(1 − lr·λ) − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
//! ```

/// The scalars of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// β₁, the first moment's decay.
    pub beta_1: f32,
    /// β₂, the second moment's decay.
    pub beta_2: f32,
    /// ε, added to the denominator.
    pub epsilon: f32,
    /// Decoupled weight decay λ (the parameter shrinks by `lr·λ` per step).
    pub weight_decay: f32,
    /// The step number `t`, from 1.
    pub time: usize,
}

/// The per-element constants of a step, in `f32`.
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    beta_1: f32,
    one_minus_beta_1: f32,
    beta_2: f32,
    one_minus_beta_2: f32,
    /// `1 − β₁ᵗ`.
    correction_1: f32,
    /// `1 − β₂ᵗ`.
    correction_2: f32,
    epsilon: f32,
    /// `1 − lr·λ`.
    decay: f32,
    lr: f32,
}

impl AdamWStep {
    fn coefficients(&self) -> Coefficients {
        let time = i32::try_from(self.time).unwrap_or(i32::MAX);
        Coefficients {
            beta_1: self.beta_1,
            one_minus_beta_1: 1.0 - self.beta_1,
            beta_2: self.beta_2,
            one_minus_beta_2: 1.0 - self.beta_2,
            correction_1: 1.0 - self.beta_1.powi(time),
            correction_2: 1.0 - self.beta_2.powi(time),
            epsilon: self.epsilon,
            decay: (1.0 - self.lr * f64::from(self.weight_decay)) as f32,
            lr: self.lr as f32,
        }
    }
}

/// Elements per parallel task: large enough that rayon's overhead is noise.
#[cfg(threaded)]
const CHUNK: usize = 1 << 15;

/// Updates `param`, `moment_1` and `moment_2` in place from `grad`. Panics when the lengths
/// differ.
pub fn step(
    param: &mut [f32],
    grad: &[f32],
    moment_1: &mut [f32],
    moment_2: &mut [f32],
    step: AdamWStep,
) {
    let n = param.len();
    assert!(
        grad.len() == n && moment_1.len() == n && moment_2.len() == n,
        "adamw: parameter, gradient and moment lengths differ"
    );
    let c = step.coefficients();
    #[cfg(threaded)]
    {
        use rayon::prelude::*;
        param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(moment_1.par_chunks_mut(CHUNK))
            .zip(moment_2.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| simd::step(p, g, m, v, c));
    }
    #[cfg(not(threaded))]
    simd::step(param, grad, moment_1, moment_2, c);
}

/// The loop compiled for each instruction set, picked at run time (`multiversion`).
mod simd {
    use multiversion::multiversion;

    use super::Coefficients;

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefficients) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = *m * c.beta_1 + g * c.one_minus_beta_1;
            *v = *v * c.beta_2 + g * g * c.one_minus_beta_2;
            let delta = (*m / c.correction_1) / ((*v / c.correction_2).sqrt() + c.epsilon);
            *p = *p * c.decay - delta * c.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The update in `f64`, term by term as in the module docs.
    fn reference(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], s: AdamWStep) {
        let (b1, b2) = (f64::from(s.beta_1), f64::from(s.beta_2));
        let t = s.time as i32;
        for i in 0..p.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - b1.powi(t));
            let v_hat = v[i] / (1.0 - b2.powi(t));
            p[i] = p[i] * (1.0 - s.lr * f64::from(s.weight_decay))
                - s.lr * m_hat / (v_hat.sqrt() + f64::from(s.epsilon));
        }
    }

    #[test]
    fn three_steps_match_the_update_in_f64_across_chunks() {
        // Longer than one parallel chunk, with a ragged tail.
        let n = (1 << 15) * 2 + 37;
        let value = |i: usize, k: f64| ((i as f64 * k).sin() * 0.5) as f32;
        let mut p: Vec<f32> = (0..n).map(|i| value(i, 0.37)).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut p64: Vec<f64> = p.iter().map(|&x| f64::from(x)).collect();
        let (mut m64, mut v64) = (vec![0.0f64; n], vec![0.0f64; n]);
        for time in 1..=3 {
            let g: Vec<f32> = (0..n).map(|i| value(i, 0.11 * time as f64)).collect();
            let g64: Vec<f64> = g.iter().map(|&x| f64::from(x)).collect();
            let s = AdamWStep {
                lr: 5e-3,
                beta_1: 0.9,
                beta_2: 0.98,
                epsilon: 1e-6,
                weight_decay: 0.1,
                time,
            };
            step(&mut p, &g, &mut m, &mut v, s);
            reference(&mut p64, &g64, &mut m64, &mut v64, s);
        }
        let worst = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&a, &b)| (f64::from(a) - b).abs() / (b.abs() + 1e-3))
                .fold(0.0f64, f64::max)
        };
        assert!(worst(&p, &p64) < 1e-5, "parameter: {}", worst(&p, &p64));
        assert!(worst(&m, &m64) < 1e-5, "first moment: {}", worst(&m, &m64));
        assert!(worst(&v, &v64) < 1e-4, "second moment: {}", worst(&v, &v64));
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn mismatched_lengths_are_refused() {
        let s = AdamWStep {
            lr: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            time: 1,
        };
        step(&mut [0.0; 3], &[0.0; 2], &mut [0.0; 3], &mut [0.0; 3], s);
    }
}
