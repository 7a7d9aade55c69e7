//! Row-major `f32` matrix products for the CPU kernels.
//!
//! Natively with the `blas` feature they run on the system BLAS (`cblas_sgemm`, OpenBLAS
//! single-threaded, the rows or columns of the result split over rayon's threads); otherwise on
//! the `gemm` crate burn-flex uses. OpenBLAS is the faster of the two on the AST-base Linears'
//! shapes (docs/benchmark-history.md).

/// A read-only matrix inside a slice: element `(i, j)` is `data[offset + i·row_stride +
/// j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view; panics when it would read outside `data`.
    pub fn new(
        data: &'a [f32],
        offset: usize,
        [rows, cols]: [usize; 2],
        [row_stride, col_stride]: [usize; 2],
    ) -> Self {
        if rows > 0 && cols > 0 {
            let last = offset + (rows - 1) * row_stride + (cols - 1) * col_stride;
            assert!(
                last < data.len(),
                "matmul: a {rows}×{cols} view at {offset} with strides \
                 ({row_stride}, {col_stride}) reads past {} elements",
                data.len()
            );
        }
        Self {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The contiguous row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, 0, [rows, cols], [cols, 1])
    }

    /// The transpose (a view: nothing is copied).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `start..start + len`.
    fn rows_range(self, start: usize, len: usize) -> Self {
        Self {
            offset: self.offset + start * self.row_stride,
            rows: len,
            ..self
        }
    }

    /// Columns `start..start + len`.
    fn cols_range(self, start: usize, len: usize) -> Self {
        self.t().rows_range(start, len).t()
    }

    fn ptr(&self) -> *const f32 {
        // In bounds: checked in `new` (an empty view is never read).
        self.data[self.offset..].as_ptr()
    }
}

/// `c = a·b` (`c += a·b` when `accumulate`), `c` the contiguous row-major `a.rows × b.cols`
/// result, in parallel over rayon's threads where `cfg(threaded)` (natively, and in the
/// threaded wasm build).
pub fn matmul(a: MatRef, b: MatRef, c: &mut [f32], accumulate: bool) {
    let [m, n] = check(&a, &b, c);
    let threads = worker_threads();
    let c = SharedOut(c.as_mut_ptr());
    // Below ≈ 2 M multiply-adds per thread the split costs more than it gains.
    if threads < 2 || m * n * a.cols < threads << 21 {
        // SAFETY: `c` holds `m` rows of `n` (checked).
        return unsafe { product(a, b, c.at(0), n, accumulate) };
    }
    if m >= n {
        let chunk = m.div_ceil(threads);
        run_parts(m.div_ceil(chunk), |part| {
            let (start, len) = (part * chunk, chunk.min(m - part * chunk));
            // SAFETY: the parts write disjoint row blocks of `c`.
            unsafe { product(a.rows_range(start, len), b, c.at(start * n), n, accumulate) };
        });
    } else {
        let chunk = n.div_ceil(threads);
        run_parts(n.div_ceil(chunk), |part| {
            let (start, len) = (part * chunk, chunk.min(n - part * chunk));
            // SAFETY: the parts write disjoint column blocks of `c` (row stride `n`).
            unsafe { product(a, b.cols_range(start, len), c.at(start), n, accumulate) };
        });
    }
}

/// [`matmul`] on the calling thread only (for callers that are parallel themselves).
pub fn matmul_serial(a: MatRef, b: MatRef, c: &mut [f32], accumulate: bool) {
    let [_, n] = check(&a, &b, c);
    // SAFETY: `c` holds `a.rows` rows of `n` (checked).
    unsafe { product(a, b, c.as_mut_ptr(), n, accumulate) };
}

fn check(a: &MatRef, b: &MatRef, c: &[f32]) -> [usize; 2] {
    assert_eq!(
        a.cols, b.rows,
        "matmul: inner dimensions differ ({}×{} · {}×{})",
        a.rows, a.cols, b.rows, b.cols
    );
    assert_eq!(c.len(), a.rows * b.cols, "matmul: output size");
    [a.rows, b.cols]
}

/// The output pointer shared by the parts of a split product.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: each part writes its own disjoint region (see `matmul`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// # Safety
    /// `offset` must lie inside the output.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

#[cfg(threaded)]
fn worker_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(not(threaded))]
fn worker_threads() -> usize {
    1
}

#[cfg(threaded)]
fn run_parts(parts: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..parts).into_par_iter().for_each(f);
}

#[cfg(not(threaded))]
fn run_parts(parts: usize, f: impl Fn(usize) + Sync + Send) {
    (0..parts).for_each(f);
}

/// One product on this thread into `c`, `a.rows` rows of row stride `ldc`.
///
/// # Safety
/// `c` must be valid for writes of `(a.rows − 1)·ldc + b.cols` elements that nothing else
/// accesses meanwhile.
unsafe fn product(a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    let [m, k, n] = [a.rows, a.cols, b.cols];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row `i` of `c` (caller's contract).
                unsafe { std::ptr::write_bytes(c.add(i * ldc), 0, n) };
            }
        }
        return;
    }
    #[cfg(all(feature = "blas", not(target_family = "wasm")))]
    // SAFETY: forwarded contract.
    if unsafe { blas::sgemm(a, b, c, ldc, accumulate) } {
        return;
    }
    // SAFETY: forwarded contract.
    unsafe { gemm_crate(a, b, c, ldc, accumulate) };
}

/// The `gemm` crate's product, single-threaded.
///
/// # Safety
/// As [`product`].
pub(crate) unsafe fn gemm_crate(a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    let [m, k, n] = [a.rows, a.cols, b.cols];
    // SAFETY: `a` and `b` are bounds-checked views; `c` is the caller's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            ldc as isize,
            accumulate,
            a.ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(all(feature = "blas", not(target_family = "wasm")))]
pub(crate) mod blas {
    //! `cblas_sgemm` from the system OpenBLAS, kept single-threaded: the callers split the work
    //! over rayon's threads, and OpenBLAS's own thread pool would spin between calls on the
    //! cores the next (rayon) op needs.

    use std::os::raw::c_int;
    use std::sync::Once;

    use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};

    use super::MatRef;

    // The system OpenBLAS provides the CBLAS symbols too.
    #[link(name = "openblas")]
    extern "C" {
        fn openblas_set_num_threads(threads: c_int);
    }

    /// `(transpose flag, leading dimension)` of a view CBLAS can read: one unit stride.
    fn layout(m: &MatRef) -> Option<(CBLAS_TRANSPOSE, c_int)> {
        let ld = |stride: usize, len: usize| c_int::try_from(stride.max(len).max(1)).ok();
        if m.col_stride == 1 && (m.rows <= 1 || m.row_stride >= m.cols) {
            Some((CBLAS_TRANSPOSE::CblasNoTrans, ld(m.row_stride, m.cols)?))
        } else if m.row_stride == 1 && (m.cols <= 1 || m.col_stride >= m.rows) {
            Some((CBLAS_TRANSPOSE::CblasTrans, ld(m.col_stride, m.rows)?))
        } else {
            None
        }
    }

    /// `c = a·b` (or `+=`) through BLAS; `false` (nothing done) when a view has no unit stride
    /// or a size exceeds CBLAS's `int`.
    ///
    /// # Safety
    /// As `super::product`.
    pub(crate) unsafe fn sgemm(
        a: MatRef,
        b: MatRef,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) -> bool {
        static SINGLE_THREADED: Once = Once::new();
        let (Some((ta, lda)), Some((tb, ldb))) = (layout(&a), layout(&b)) else {
            return false;
        };
        let int = |x: usize| c_int::try_from(x).ok();
        let (Some(m), Some(n), Some(k), Some(ldc)) =
            (int(a.rows), int(b.cols), int(a.cols), int(ldc))
        else {
            return false;
        };
        SINGLE_THREADED.call_once(|| unsafe { openblas_set_num_threads(1) });
        // SAFETY: the views are bounds-checked with these strides; `c` is the caller's.
        unsafe {
            cblas_sgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                ta,
                tb,
                m,
                n,
                k,
                1.0,
                a.ptr(),
                lda,
                b.ptr(),
                ldb,
                if accumulate { 1.0 } else { 0.0 },
                c,
                ldc,
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef, b: MatRef) -> Vec<f64> {
        let at = |m: &MatRef, i: usize, j: usize| {
            m.data[m.offset + i * m.row_stride + j * m.col_stride] as f64
        };
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                c[i * b.cols + j] = (0..a.cols).map(|p| at(&a, i, p) * at(&b, p, j)).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    /// Plain, transposed and strided operands; row and column splits; accumulation.
    #[test]
    fn products_match_a_naive_reference() {
        for &[m, k, n] in &[
            [3, 5, 4],
            [300, 70, 40],
            [40, 70, 300],
            [257, 1, 129],
            [2, 0, 3],
        ] {
            let a_data = values(m * k + 7, 1);
            let b_data = values(k * n * 2 + 3, 2);
            let operands = [
                (
                    MatRef::new(&a_data, 7, [m, k], [k, 1]),
                    MatRef::row_major(&b_data, k, n),
                ),
                (
                    MatRef::new(&a_data, 0, [k, m], [m, 1]).t(),
                    MatRef::new(&b_data, 3, [n, k], [k, 1]).t(),
                ),
                // Every other row of b: strides (2n, 1).
                (
                    MatRef::row_major(&a_data, m, k),
                    MatRef::new(&b_data, 0, [k, n], [2 * n, 1]),
                ),
            ];
            for (case, (a, b)) in operands.into_iter().enumerate() {
                let want = naive(a, b);
                let what = format!("{m}×{k}×{n} case {case}");
                let mut c = vec![f32::NAN; m * n];
                matmul(a, b, &mut c, false);
                assert_close(&c, &want, &what);
                let mut serial = vec![0.0; m * n];
                matmul_serial(a, b, &mut serial, false);
                assert_close(&serial, &want, &what);
                let mut gemm = vec![0.0; m * n];
                // SAFETY: `gemm` holds m rows of n.
                unsafe { gemm_crate(a, b, gemm.as_mut_ptr(), n, false) };
                assert_close(&gemm, &want, &what);
                // Accumulating onto c doubles it.
                matmul(a, b, &mut c, true);
                let twice: Vec<f64> = want.iter().map(|w| 2.0 * w).collect();
                assert_close(&c, &twice, &format!("{what} accumulated"));
            }
        }
    }

    /// Large enough to be split over threads (≥ 2 MFLOP per thread), both ways.
    #[test]
    fn split_products_match_a_naive_reference() {
        for &[m, k, n] in &[[700, 96, 80], [80, 96, 700]] {
            let (a_data, b_data) = (values(m * k, 3), values(k * n, 4));
            let (a, b) = (
                MatRef::row_major(&a_data, m, k),
                MatRef::row_major(&b_data, k, n),
            );
            let mut c = vec![0.0; m * n];
            matmul(a, b, &mut c, false);
            assert_close(&c, &naive(a, b), &format!("{m}×{k}×{n}"));
        }
    }

    #[test]
    #[should_panic(expected = "reads past")]
    fn out_of_bounds_views_are_refused() {
        let data = [0.0; 5];
        MatRef::new(&data, 0, [2, 3], [3, 1]);
    }
}
