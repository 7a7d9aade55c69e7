//! LayerNorm over the last dim (`y = (x − μ)·rstd·γ + β`, `rstd = 1/√(σ² + ε)`) and its
//! backward, row by row on `f32` slices.
//!
//! Under burn-autodiff, burn's `layer_norm` is differentiated through its composition (mean,
//! subtract, square, mean, sqrt, divide, scale, shift), ≈ 25× the time of the forward; the
//! backward here is one pass per row from the saved `μ` and `rstd`:
//! `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·γ`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.

/// Rows per parallel task.
#[cfg(not(target_family = "wasm"))]
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
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        x.par_chunks(ROWS * d)
            .zip(out.par_chunks_mut(ROWS * d))
            .zip(mean.par_chunks_mut(ROWS).zip(rstd.par_chunks_mut(ROWS)))
            .for_each(|((x, out), (mean, rstd))| rows(x, out, mean, rstd));
    }
    #[cfg(target_family = "wasm")]
    rows(x, out, mean, rstd);
}

/// `dx` (when asked) and `(dγ, dβ)` (when asked) of [`forward`] for the output gradient `dy`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    d: usize,
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    want_params: bool,
) -> Option<(Vec<f32>, Vec<f32>)> {
    check(x.len(), d, gamma, mean.len());
    assert_eq!(dy.len(), x.len(), "layer norm backward: gradient length");
    assert_eq!(rstd.len(), mean.len(), "layer norm backward: rstd length");
    if let Some(dx) = dx {
        assert_eq!(dx.len(), x.len(), "layer norm backward: dx length");
        let rows = |x: &[f32], dy: &[f32], dx: &mut [f32], mean: &[f32], rstd: &[f32]| {
            for ((((x, dy), dx), &mean), &rstd) in x
                .chunks_exact(d)
                .zip(dy.chunks_exact(d))
                .zip(dx.chunks_exact_mut(d))
                .zip(mean)
                .zip(rstd)
            {
                simd::input_grad_row(x, dy, gamma, mean, rstd, dx);
            }
        };
        #[cfg(not(target_family = "wasm"))]
        {
            use rayon::prelude::*;
            x.par_chunks(ROWS * d)
                .zip(dy.par_chunks(ROWS * d))
                .zip(dx.par_chunks_mut(ROWS * d))
                .zip(mean.par_chunks(ROWS).zip(rstd.par_chunks(ROWS)))
                .for_each(|(((x, dy), dx), (mean, rstd))| rows(x, dy, dx, mean, rstd));
        }
        #[cfg(target_family = "wasm")]
        rows(x, dy, dx, mean, rstd);
    }
    want_params.then(|| param_grads(x, d, mean, rstd, dy))
}

/// `(Σ dy·x̂, Σ dy)` over all rows.
fn param_grads(
    x: &[f32],
    d: usize,
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let partial = |x: &[f32], dy: &[f32], mean: &[f32], rstd: &[f32]| {
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
        for (((x, dy), &mean), &rstd) in x
            .chunks_exact(d)
            .zip(dy.chunks_exact(d))
            .zip(mean)
            .zip(rstd)
        {
            simd::param_grad_row(x, dy, mean, rstd, &mut dgamma, &mut dbeta);
        }
        (dgamma, dbeta)
    };
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        x.par_chunks(ROWS * d)
            .zip(dy.par_chunks(ROWS * d))
            .zip(mean.par_chunks(ROWS).zip(rstd.par_chunks(ROWS)))
            .map(|((x, dy), (mean, rstd))| partial(x, dy, mean, rstd))
            .reduce(
                || (vec![0.0; d], vec![0.0; d]),
                |(mut ga, mut ba), (gb, bb)| {
                    ga.iter_mut().zip(&gb).for_each(|(a, b)| *a += b);
                    ba.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
                    (ga, ba)
                },
            )
    }
    #[cfg(target_family = "wasm")]
    partial(x, dy, mean, rstd)
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

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn input_grad_row(
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: f32,
        rstd: f32,
        dx: &mut [f32],
    ) {
        let n = x.len() as f32;
        let mean_g = lane_sum(x, |i| dy[i] * gamma[i]) / n;
        let mean_gx = lane_sum(x, |i| dy[i] * gamma[i] * (x[i] - mean) * rstd) / n;
        for (((dx, &x), &dy), &g) in dx.iter_mut().zip(x).zip(dy).zip(gamma) {
            let x_hat = (x - mean) * rstd;
            *dx = rstd * (dy * g - mean_g - x_hat * mean_gx);
        }
    }

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn param_grad_row(
        x: &[f32],
        dy: &[f32],
        mean: f32,
        rstd: f32,
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        for (((dg, db), &x), &dy) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(x).zip(dy) {
            *dg += dy * (x - mean) * rstd;
            *db += dy;
        }
    }
}
