//! LayerNorm over the last dim (`y = (x − μ)·rstd·γ + β`, `rstd = 1/√(σ² + ε)`) and its
//! backward, row by row on `f32` slices.
//!
//! Under burn-autodiff, burn's `layer_norm` is differentiated through its composition (mean,
//! subtract, square, mean, sqrt, divide, scale, shift), ≈ 25× the time of the forward; the
//! backward here is one pass per row from the saved `rstd` and the normalised row `x̂`:
//! `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·γ`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.
//!
//! `x̂` comes from what the forward kept ([`Saved`]): the input (`x̂ = (x − μ)·rstd`) or, as in
//! Apex's memory-efficient LayerNorm, the output (`x̂ = (y − β)/γ`). The output is usually kept
//! anyway by the layer after the norm when its weight trains (a Linear's weight gradient needs its
//! input), and then the input need not be kept at all.

/// The largest `|β/γ|` of any channel for which [`Saved::Output`] is used: `x̂ = (y − β)/γ`
/// carries `y`'s rounding error times `1 + |β/γ|` (here ≤ 101 · 2⁻²⁴ ≈ 6·10⁻⁶ relative).
pub const MAX_BETA_OVER_GAMMA: f32 = 100.0;

/// Whether `x̂` may be recovered from the output: every `γ` nonzero and `|β| ≤ 100·|γ|`
/// (see [`MAX_BETA_OVER_GAMMA`]).
pub fn output_invertible(gamma: &[f32], beta: &[f32]) -> bool {
    gamma
        .iter()
        .zip(beta)
        .all(|(g, b)| g.is_finite() && b.abs() <= MAX_BETA_OVER_GAMMA * g.abs() && *g != 0.0)
}

/// What the backward reads `x̂` from.
#[derive(Debug, Clone, Copy)]
pub enum Saved<'a> {
    /// The forward's input and each row's mean.
    Input { x: &'a [f32], mean: &'a [f32] },
    /// The forward's output and `β` (requires [`output_invertible`]).
    Output { y: &'a [f32], beta: &'a [f32] },
}

impl Saved<'_> {
    fn len(&self) -> usize {
        match self {
            Saved::Input { x, .. } => x.len(),
            Saved::Output { y, .. } => y.len(),
        }
    }
}

/// Rows per parallel task.
#[cfg(threaded)]
const ROWS: usize = 64;

/// Normalises every `d`-wide row of `x` into `out`; writes each row's mean and `rstd`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    d: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
) {
    check(x.len(), d, gamma, mean.len());
    assert_eq!(beta.len(), d, "layer norm: beta length");
    assert_eq!(out.len(), x.len(), "layer norm: output length");
    assert_eq!(rstd.len(), mean.len(), "layer norm: rstd length");
    let rows = |x: &[f32], out: &mut [f32], mean: &mut [f32], rstd: &mut [f32]| {
        for (((x, out), mean), rstd) in x
            .chunks_exact(d)
            .zip(out.chunks_exact_mut(d))
            .zip(mean.iter_mut())
            .zip(rstd.iter_mut())
        {
            (*mean, *rstd) = simd::forward_row(x, gamma, beta, eps, out);
        }
    };
    #[cfg(threaded)]
    {
        use rayon::prelude::*;
        x.par_chunks(ROWS * d)
            .zip(out.par_chunks_mut(ROWS * d))
            .zip(mean.par_chunks_mut(ROWS).zip(rstd.par_chunks_mut(ROWS)))
            .for_each(|((x, out), (mean, rstd))| rows(x, out, mean, rstd));
    }
    #[cfg(not(threaded))]
    rows(x, out, mean, rstd);
}

/// `dx` (when asked) and `(dγ, dβ)` (when asked) of [`forward`] for the output gradient `dy`.
pub fn backward(
    saved: Saved,
    d: usize,
    gamma: &[f32],
    rstd: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    want_params: bool,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let len = saved.len();
    check(len, d, gamma, rstd.len());
    assert_eq!(dy.len(), len, "layer norm backward: gradient length");
    let inv_gamma: Vec<f32> = match saved {
        Saved::Input { mean, .. } => {
            assert_eq!(mean.len(), rstd.len(), "layer norm backward: mean length");
            Vec::new()
        }
        Saved::Output { beta, .. } => {
            assert_eq!(beta.len(), d, "layer norm backward: beta length");
            gamma.iter().map(|g| 1.0 / g).collect()
        }
    };
    // `x̂` of row `r` into `x_hat`.
    let normalized = |r: usize, x_hat: &mut [f32]| match saved {
        Saved::Input { x, mean } => simd::normalize(&x[r * d..][..d], mean[r], rstd[r], x_hat),
        Saved::Output { y, beta } => simd::unshift(&y[r * d..][..d], beta, &inv_gamma, x_hat),
    };
    if let Some(dx) = dx {
        assert_eq!(dx.len(), len, "layer norm backward: dx length");
        let rows = |first: usize, dy: &[f32], dx: &mut [f32]| {
            let mut x_hat = vec![0.0f32; d];
            for (row, (dy, dx)) in dy.chunks_exact(d).zip(dx.chunks_exact_mut(d)).enumerate() {
                normalized(first + row, &mut x_hat);
                simd::input_grad_row(&x_hat, dy, gamma, rstd[first + row], dx);
            }
        };
        #[cfg(threaded)]
        {
            use rayon::prelude::*;
            dy.par_chunks(ROWS * d)
                .zip(dx.par_chunks_mut(ROWS * d))
                .enumerate()
                .for_each(|(task, (dy, dx))| rows(task * ROWS, dy, dx));
        }
        #[cfg(not(threaded))]
        rows(0, dy, dx);
    }
    want_params.then(|| {
        // `(Σ dy·x̂, Σ dy)` over all rows.
        let partial = |first: usize, dy: &[f32]| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            let mut x_hat = vec![0.0f32; d];
            for (row, dy) in dy.chunks_exact(d).enumerate() {
                normalized(first + row, &mut x_hat);
                simd::param_grad_row(&x_hat, dy, &mut dgamma, &mut dbeta);
            }
            (dgamma, dbeta)
        };
        #[cfg(threaded)]
        {
            use rayon::prelude::*;
            dy.par_chunks(ROWS * d)
                .enumerate()
                .map(|(task, dy)| partial(task * ROWS, dy))
                .reduce(
                    || (vec![0.0; d], vec![0.0; d]),
                    |(mut ga, mut ba), (gb, bb)| {
                        ga.iter_mut().zip(&gb).for_each(|(a, b)| *a += b);
                        ba.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
                        (ga, ba)
                    },
                )
        }
        #[cfg(not(threaded))]
        partial(0, dy)
    })
}

fn check(len: usize, d: usize, gamma: &[f32], rows: usize) {
    assert!(
        d > 0 && len.is_multiple_of(d),
        "layer norm: length {len} is not a multiple of {d}"
    );
    assert_eq!(gamma.len(), d, "layer norm: gamma length");
    assert_eq!(rows, len / d, "layer norm: one mean per row");
}

/// The per-row loops, compiled per instruction set and picked at run time.
mod simd {
    use multiversion::multiversion;

    /// Lanes of the manual reductions (strict `f32` order would keep them scalar).
    const LANES: usize = 8;

    #[inline(always)]
    fn sum(xs: impl Iterator<Item = f32>) -> f32 {
        let mut acc = [0.0f32; LANES];
        for (i, x) in xs.enumerate() {
            acc[i % LANES] += x;
        }
        acc.iter().sum()
    }

    #[inline(always)]
    fn lane_sum(xs: &[f32], f: impl Fn(usize) -> f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let full = xs.len() / LANES * LANES;
        for base in (0..full).step_by(LANES) {
            for (lane, a) in acc.iter_mut().enumerate() {
                *a += f(base + lane);
            }
        }
        sum((full..xs.len()).map(&f)) + acc.iter().sum::<f32>()
    }

    /// Returns `(mean, rstd)`.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn forward_row(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        out: &mut [f32],
    ) -> (f32, f32) {
        let n = x.len() as f32;
        let mean = lane_sum(x, |i| x[i]) / n;
        let var = lane_sum(x, |i| (x[i] - mean) * (x[i] - mean)) / n;
        let rstd = 1.0 / (var + eps).sqrt();
        for (((o, &x), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
            *o = (x - mean) * rstd * g + b;
        }
        (mean, rstd)
    }

    /// `x̂ = (x − mean)·rstd`.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn normalize(x: &[f32], mean: f32, rstd: f32, x_hat: &mut [f32]) {
        for (h, &x) in x_hat.iter_mut().zip(x) {
            *h = (x - mean) * rstd;
        }
    }

    /// `x̂ = (y − β)·(1/γ)`.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn unshift(y: &[f32], beta: &[f32], inv_gamma: &[f32], x_hat: &mut [f32]) {
        for (((h, &y), &b), &ig) in x_hat.iter_mut().zip(y).zip(beta).zip(inv_gamma) {
            *h = (y - b) * ig;
        }
    }

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn input_grad_row(x_hat: &[f32], dy: &[f32], gamma: &[f32], rstd: f32, dx: &mut [f32]) {
        let n = x_hat.len() as f32;
        let mean_g = lane_sum(x_hat, |i| dy[i] * gamma[i]) / n;
        let mean_gx = lane_sum(x_hat, |i| dy[i] * gamma[i] * x_hat[i]) / n;
        for (((dx, &h), &dy), &g) in dx.iter_mut().zip(x_hat).zip(dy).zip(gamma) {
            *dx = rstd * (dy * g - mean_g - h * mean_gx);
        }
    }

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn param_grad_row(x_hat: &[f32], dy: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
        for (((dg, db), &h), &dy) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(x_hat).zip(dy) {
            *dg += dy * h;
            *db += dy;
        }
    }
}
