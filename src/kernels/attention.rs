//! Scaled dot-product attention `softmax(s·QKᵀ)V` per head, forward and backward, on `f32`
//! slices: `gemm`-crate matmuls on blocks of query rows, with a vectorised softmax in between.
//!
//! The forward keeps one `block × keys` score tile per task (never a head's full score matrix)
//! and returns each row's log-sum-exp; the backward recomputes the probabilities of a tile from
//! it (Dao et al., "FlashAttention", 2022, Algorithm 2 without the key tiling) instead of keeping
//! every layer's `[batch, heads, queries, keys]` probabilities alive between the passes, which
//! is what burn-autodiff's composed attention does.

use super::math::exp;
use super::matmul::{matmul_serial, MatRef};

/// Query rows per tile: with the products on OpenBLAS, 128 rows were faster than 64 on a long
/// clip and no slower on short ones (docs/benchmark-history.md); a tile's scores stay
/// ≤ 128 × keys floats per thread.
const BLOCK: usize = 128;

/// One `[batch, heads, rows, dh]` operand: a slice with strides in elements (the last dim is
/// contiguous).
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    /// The elements; `offset` is where `[0, 0, 0, 0]` lies.
    pub data: &'a [f32],
    /// Element offset of `[0, 0, 0, 0]`.
    pub offset: usize,
    /// `[batch, heads, rows, dh]`.
    pub shape: [usize; 4],
    /// Strides of the batch, head and row dims (the dh stride is 1).
    pub strides: [usize; 3],
}

impl Heads<'_> {
    /// Offset of row 0 of head `(b, h)`.
    fn head(&self, b: usize, h: usize) -> usize {
        self.offset + b * self.strides[0] + h * self.strides[1]
    }

    fn rows(&self) -> usize {
        self.shape[2]
    }

    fn row_stride(&self) -> usize {
        self.strides[2]
    }

    /// Rows `start..start + len` of head `(b, h)` as a `len × dh` matrix.
    fn tile(&self, b: usize, h: usize, start: usize, len: usize) -> MatRef<'_> {
        MatRef::new(
            self.data,
            self.head(b, h) + start * self.row_stride(),
            [len, self.shape[3]],
            [self.row_stride(), 1],
        )
    }

    /// All rows of head `(b, h)`.
    fn whole(&self, b: usize, h: usize) -> MatRef<'_> {
        self.tile(b, h, 0, self.rows())
    }

    /// Panics unless the last index of the last row is inside `data`.
    fn check(&self, name: &str) {
        let [b, h, n, _] = self.shape;
        if self.shape.iter().product::<usize>() == 0 {
            return;
        }
        let last = self.head(b - 1, h - 1) + (n - 1) * self.row_stride() + self.shape[3];
        assert!(
            last <= self.data.len(),
            "attention: {name} view exceeds its buffer"
        );
    }
}

/// Checks shapes: q `[b, h, nq, d]`, k and v `[b, h, nk, d]`; returns `(b, h, nq, nk, d)`.
fn dims(q: &Heads, k: &Heads, v: &Heads) -> (usize, usize, usize, usize, usize) {
    let [b, h, nq, d] = q.shape;
    assert_eq!(k.shape, v.shape, "attention: key and value shapes differ");
    assert_eq!(
        [b, h, d],
        [k.shape[0], k.shape[1], k.shape[3]],
        "attention: q/k shapes"
    );
    q.check("query");
    k.check("key");
    v.check("value");
    (b, h, nq, k.rows(), d)
}

/// Turns each score row into `exp(s·(x − max))` in place; returns `(max, sum)` per row.
fn softmax_rows(scores: &mut [f32], keys: usize, scale: f32, lse: &mut [f32]) -> Vec<f32> {
    let mut sums = Vec::with_capacity(lse.len());
    for (row, lse) in scores.chunks_exact_mut(keys).zip(lse.iter_mut()) {
        let max = simd::row_max(row);
        let sum = simd::exp_shifted_sum(row, max, scale);
        *lse = max * scale + sum.ln();
        sums.push(sum);
    }
    sums
}

/// Forward pass. `out` is `[b, h, nq, d]` contiguous; `lse` (`[b, h, nq]`) receives each
/// row's `log Σ exp(s·qkᵀ)` for [`backward`].
pub fn forward(q: Heads, k: Heads, v: Heads, scale: f32, out: &mut [f32], lse: &mut [f32]) {
    let (batch, heads, nq, nk, d) = dims(&q, &k, &v);
    assert_eq!(
        out.len(),
        batch * heads * nq * d,
        "attention: output length"
    );
    assert_eq!(
        lse.len(),
        batch * heads * nq,
        "attention: log-sum-exp length"
    );
    if out.is_empty() {
        return;
    }
    let task = |bh: usize, out: &mut [f32], lse: &mut [f32]| {
        let (b, h) = (bh / heads, bh % heads);
        let (k_head, v_head) = (k.whole(b, h), v.whole(b, h));
        let mut scores = vec![0.0f32; BLOCK.min(nq) * nk];
        for start in (0..nq).step_by(BLOCK) {
            let rows = BLOCK.min(nq - start);
            let scores = &mut scores[..rows * nk];
            let out = &mut out[start * d..(start + rows) * d];
            matmul_serial(q.tile(b, h, start, rows), k_head.t(), scores, false);
            let sums = softmax_rows(scores, nk, scale, &mut lse[start..start + rows]);
            let probs = MatRef::row_major(scores, rows, nk);
            matmul_serial(probs, v_head, out, false);
            for (row, sum) in out.chunks_exact_mut(d).zip(sums) {
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|x| *x *= inv);
            }
        }
    };
    par_heads(out, nq * d, lse, nq, task);
}

/// Gradients of [`forward`] with respect to q, k and v (each written contiguous
/// `[b, h, rows, d]`), given the forward's `lse` and the output gradient `dout`.
///
/// FlashAttention's backward needs `delta_i = Σ_j p_ij·dp_ij` per query row; it usually reads
/// it as `o_i · dout_i`, which would keep the forward output alive until the backward. Each tile
/// here holds whole rows of `p` and `dp`, so `delta` comes from them and the output is not kept
/// (under a frozen output projection nothing else keeps it).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: Heads,
    k: Heads,
    v: Heads,
    dout: Heads,
    lse: &[f32],
    scale: f32,
    [dq, dk, dv]: [&mut [f32]; 3],
) {
    let (batch, heads, nq, nk, d) = dims(&q, &k, &v);
    assert_eq!(dout.shape, q.shape, "attention backward: gradient shape");
    dout.check("output gradient");
    assert_eq!(
        lse.len(),
        batch * heads * nq,
        "attention backward: log-sum-exp length"
    );
    assert_eq!(
        dq.len(),
        batch * heads * nq * d,
        "attention backward: dq length"
    );
    assert_eq!(
        dk.len(),
        batch * heads * nk * d,
        "attention backward: dk length"
    );
    assert_eq!(
        dv.len(),
        batch * heads * nk * d,
        "attention backward: dv length"
    );
    if dq.is_empty() || dk.is_empty() {
        return;
    }
    let task = |bh: usize, dq: &mut [f32], dk: &mut [f32], dv: &mut [f32]| {
        let (b, h) = (bh / heads, bh % heads);
        let (k_head, v_head) = (k.whole(b, h), v.whole(b, h));
        let lse = &lse[bh * nq..(bh + 1) * nq];
        let mut probs = vec![0.0f32; BLOCK.min(nq) * nk];
        let mut dprobs = vec![0.0f32; BLOCK.min(nq) * nk];
        for start in (0..nq).step_by(BLOCK) {
            let rows = BLOCK.min(nq - start);
            let probs = &mut probs[..rows * nk];
            let dprobs = &mut dprobs[..rows * nk];
            let (q_rows, g_rows) = (q.tile(b, h, start, rows), dout.tile(b, h, start, rows));
            matmul_serial(q_rows, k_head.t(), probs, false);
            matmul_serial(g_rows, v_head.t(), dprobs, false);
            for (i, (p, dp)) in probs
                .chunks_exact_mut(nk)
                .zip(dprobs.chunks_exact_mut(nk))
                .enumerate()
            {
                let delta = simd::probs_and_delta(p, dp, scale, lse[start + i]);
                simd::score_grads(p, dp, scale, delta);
            }
            // dv += pᵀ·dout, dq = ds·k, dk += dsᵀ·q (the first tile writes dk and dv over
            // whatever they held)
            let accumulate = start > 0;
            let (probs, dscores) = (
                MatRef::row_major(probs, rows, nk),
                MatRef::row_major(dprobs, rows, nk),
            );
            matmul_serial(probs.t(), g_rows, dv, accumulate);
            matmul_serial(
                dscores,
                k_head,
                &mut dq[start * d..(start + rows) * d],
                false,
            );
            matmul_serial(dscores.t(), q_rows, dk, accumulate);
        }
    };
    par_heads3(dq, nq * d, dk, dv, nk * d, task);
}

/// Runs `task(bh, out_chunk, lse_chunk)` for every head, in parallel where `cfg(threaded)`.
fn par_heads(
    out: &mut [f32],
    out_chunk: usize,
    lse: &mut [f32],
    lse_chunk: usize,
    task: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
) {
    #[cfg(threaded)]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(out_chunk)
            .zip(lse.par_chunks_mut(lse_chunk))
            .enumerate()
            .for_each(|(bh, (out, lse))| task(bh, out, lse));
    }
    #[cfg(not(threaded))]
    out.chunks_mut(out_chunk)
        .zip(lse.chunks_mut(lse_chunk))
        .enumerate()
        .for_each(|(bh, (out, lse))| task(bh, out, lse));
}

/// Runs `task(bh, dq_chunk, dk_chunk, dv_chunk)` for every head, in parallel where
/// `cfg(threaded)`.
fn par_heads3(
    dq: &mut [f32],
    q_chunk: usize,
    dk: &mut [f32],
    dv: &mut [f32],
    kv_chunk: usize,
    task: impl Fn(usize, &mut [f32], &mut [f32], &mut [f32]) + Sync,
) {
    #[cfg(threaded)]
    {
        use rayon::prelude::*;
        dq.par_chunks_mut(q_chunk)
            .zip(dk.par_chunks_mut(kv_chunk).zip(dv.par_chunks_mut(kv_chunk)))
            .enumerate()
            .for_each(|(bh, (dq, (dk, dv)))| task(bh, dq, dk, dv));
    }
    #[cfg(not(threaded))]
    dq.chunks_mut(q_chunk)
        .zip(dk.chunks_mut(kv_chunk).zip(dv.chunks_mut(kv_chunk)))
        .enumerate()
        .for_each(|(bh, (dq, (dk, dv)))| task(bh, dq, dk, dv));
}

/// The element-wise loops, compiled per instruction set and picked at run time.
mod simd {
    use multiversion::multiversion;

    /// Lanes of the manual reductions (strict `f32` order would keep them scalar).
    const LANES: usize = 8;

    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn row_max(row: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a = if x > *a { x } else { *a };
            }
        }
        tail.iter()
            .chain(&acc)
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
    }

    /// `row[j] = exp(scale·(row[j] − max))`; returns the sum.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn exp_shifted_sum(row: &mut [f32], max: f32, scale: f32) -> f32 {
        let shift = max * scale;
        let mut acc = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (a, x) in acc.iter_mut().zip(chunk) {
                *x = super::exp(*x * scale - shift);
                *a += *x;
            }
        }
        let mut sum = 0.0;
        for x in chunks.into_remainder() {
            *x = super::exp(*x * scale - shift);
            sum += *x;
        }
        sum + acc.iter().sum::<f32>()
    }

    /// Scores → probabilities `p = exp(s·x − lse)` in place; returns `delta = Σ p·dp`.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn probs_and_delta(p: &mut [f32], dp: &[f32], scale: f32, lse: f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let mut p_chunks = p.chunks_exact_mut(LANES);
        let mut dp_chunks = dp.chunks_exact(LANES);
        for (p, dp) in (&mut p_chunks).zip(&mut dp_chunks) {
            for ((a, p), dp) in acc.iter_mut().zip(p).zip(dp) {
                *p = super::exp(*p * scale - lse);
                *a += *p * dp;
            }
        }
        let mut sum = 0.0;
        for (p, dp) in p_chunks
            .into_remainder()
            .iter_mut()
            .zip(dp_chunks.remainder())
        {
            *p = super::exp(*p * scale - lse);
            sum += *p * dp;
        }
        sum + acc.iter().sum::<f32>()
    }

    /// `dp` → score gradients `s·p·(dp − delta)`, in place.
    #[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
    pub fn score_grads(p: &[f32], dp: &mut [f32], scale: f32, delta: f32) {
        for (p, dp) in p.iter().zip(dp.iter_mut()) {
            *dp = scale * *p * (*dp - delta);
        }
    }
}
