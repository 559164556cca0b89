//! Singular values (and, on request, right singular vectors) of a block, with faer.
//!
//! The block W is m × n; p = min(m, n), q = max(m, n). Work always happens on the short side:
//! A is W or Wᵀ oriented p × q, its Gram matrix G = A Aᵀ is p × p and λ(G) = ν². Blocks up to
//! embedding size (128256 × 2048) are handled by accumulating G over column chunks of A, so no
//! full f64 copy of a large f32 block is ever made on the Gram path.
//!
//! **Method choice (measured, `cargo bench --bench spectrum`, Kaiming blocks, error against
//! faer's f64 SVD).** Relative error of values ≥ 0.1·ν₁, for 2048², 512×2048, 64×2048:
//!
//! | method            | 2048² rel | 512×2048 rel | 64×2048 rel | 2048² time (1 core) |
//! |-------------------|-----------|--------------|-------------|---------------------|
//! | gram-f64/band-f32 | 2.0e-6    | 5.2e-7       | 8.5e-15     | 0.50 s              |
//! | gram-f32          | 1.2e-5    | 2.0e-6       | 7.8e-7      | 0.43 s              |
//! | gram-f32/evd-f64  | 1.2e-5    | 1.9e-6       | 7.1e-7      | 0.53 s              |
//! | gram-f64/evd-f32  | 1.8e-6    | 2.2e-7       | 2.0e-7      | 0.57 s              |
//! | svd-f32           | 1.1e-5    | 1.2e-5       | 4.9e-6      | 1.01 s              |
//! | gram-f64          | 1.6e-14   | 1.3e-14      | 8.5e-15     | 0.61 s              |
//! | svd-f64           | (ref.)    |              |             | 2.65 s              |
//!
//! The error that matters comes from the Gram matrix: accumulated in f32 it already misses the
//! `Fast` target (1e-5 relative for ν ≥ 0.1·ν₁) on 2048², and it grows with size. Rounding an
//! f64 Gram matrix to f32 for the reduction instead costs ε₃₂·‖G‖ in the eigenvalues, which is
//! at most 50·ε₃₂·c relative for any ν ≥ 0.1·ν₁ whatever the spectrum (measured 2e-6 on
//! 2048², 5× inside the target), and halves the reduction's time. So `Fast` is
//! `gram-f64/band-f32`: the Gram matrix in f64; from p = 160 on, the reduction to tridiagonal
//! in f32; the tridiagonal eigenvalues always in f64, by root-free QL (`tridiag`, 3.5× faster
//! than faer's implicit QR). Below p = 160, faer's one-stage f64 reduction. The f32 reduction
//! is the blocked one-stage one (`onestage`, LAPACK's `sytrd`) on one thread; a block given
//! more threads from p = 1024 on takes the two-stage one (dense → band by Householder panels
//! and gemm updates, then bulge chasing; see `symeig`), whose band stage and chase use them.
//! One core, 576² (the MLP and attention blocks of ~100M-parameter models): Gram 3.7 ms, then
//! one-stage 11.9 ms against two-stage 15.5 ms in all; 2048²: 0.47 s against 0.51 s. (Since
//! then panels of 16 below 1024 rows took the 576² reduction from 5.95 to 5.45 ms.)
//! From p = 160 to 1023 the Gram matrix is a sum of f32 Gram matrices of 128 columns each,
//! added in f64 (`gram_chunked_lower`): f32 products at twice f64's rate, each partial sum
//! rounded over 128 terms rather than all n (≤ 4e-7 of the largest entry on a 576 × 1536 bf16
//! block, where the f32 rounding that follows costs 6e-8 of each entry); the SmolLM2-135M scan
//! took 2.85 → 2.57 CPU-seconds and its values moved by f32 rounding only. Blocks whose largest
//! entry leaves 1e-15 … 1e15 keep the f64 Gram matrix (f32 products would overflow or vanish).
//! `Precise` uses the f64 bidiagonal SVD, which is backward stable on W itself rather than on
//! WWᵀ.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::triangular::BlockStructure;
use faer::linalg::{evd, matmul, svd};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use serde::{Deserialize, Serialize};

use super::error::SpectrumError;
use super::{onestage, scratch, symeig, tridiag};

/// How accurately singular values are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Precision {
    /// Every value within 1e-3·ν₁ of LAPACK f64, every value ≥ 0.1·ν₁ within 1e-5 relative.
    #[default]
    Fast,
    /// f64 bidiagonal SVD: every value ≥ 1e-3·ν₁ within 1e-6 relative of LAPACK f64.
    Precise,
}

impl Precision {
    /// The method this precision uses (chosen by measurement: f64 Gram with an f32 band
    /// reduction for `Fast`, f64 SVD for `Precise`).
    pub fn method(self) -> Method {
        match self {
            Precision::Fast => Method::GramMixed,
            Precision::Precise => Method::SvdF64,
        }
    }
}

/// One way of computing singular values; [`Precision`] picks one, the benchmark compares all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Gram matrix of the short side and its symmetric eigenvalues, both in f32.
    GramF32,
    /// Gram matrix accumulated in f64 (exact products of f32 entries), eigenvalues in f64 (by
    /// two-stage tridiagonalization from p = 1024 on, else faer's one-stage).
    GramF64,
    /// As `GramF64` but always with faer's one-stage tridiagonalization.
    GramF64OneStage,
    /// Gram matrix accumulated in f32, eigenvalues in f64 as `GramF64`.
    GramF32EvdF64,
    /// Gram matrix accumulated in f64; from p = 160 on, scaled and rounded to f32 for the
    /// reduction to tridiagonal (one-stage on one thread, two-stage on more from p = 1024),
    /// whose eigenvalues are then found in f64; below, faer's one-stage reduction in f64.
    GramMixed,
    /// Gram matrix accumulated in f64, rounded to f32, eigenvalues in f32.
    GramF64EvdF32,
    /// Bidiagonal SVD in f32.
    SvdF32,
    /// Bidiagonal SVD in f64.
    SvdF64,
}

impl Method {
    /// All methods, for comparisons.
    pub const ALL: [Method; 8] = [
        Method::GramMixed,
        Method::GramF32,
        Method::GramF64,
        Method::GramF64OneStage,
        Method::GramF32EvdF64,
        Method::GramF64EvdF32,
        Method::SvdF32,
        Method::SvdF64,
    ];

    /// Short lowercase name, e.g. "gram-f64".
    pub fn name(self) -> &'static str {
        match self {
            Method::GramF32 => "gram-f32",
            Method::GramF64 => "gram-f64",
            Method::GramMixed => "gram-f64/band-f32",
            Method::GramF64OneStage => "gram-f64/1stage",
            Method::GramF32EvdF64 => "gram-f32/evd-f64",
            Method::GramF64EvdF32 => "gram-f64/evd-f32",
            Method::SvdF32 => "svd-f32",
            Method::SvdF64 => "svd-f64",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A real element type a block may hold (f32 or f64).
pub trait Element: sealed::Sealed + faer::traits::RealField + Copy + Send + Sync + 'static {
    /// The value as f64 (exact).
    fn to_f64(self) -> f64;
    /// The nearest value of this type to an f64.
    fn from_f64(x: f64) -> Self;
    /// Whether the value is neither NaN nor infinite.
    fn finite(self) -> bool;
    /// `m` itself when the element type is already f64 (so it needs no converted copy).
    fn f64_view(m: MatRef<'_, Self>) -> Option<MatRef<'_, f64>>;
    /// `m` itself when the element type is already f32 (so it needs no converted copy).
    fn f32_view(m: MatRef<'_, Self>) -> Option<MatRef<'_, f32>>;
    /// max |x| over `v` (0 when empty; NaN is skipped).
    fn max_abs(v: &[Self]) -> f64;
}

impl Element for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn f64_view(_: MatRef<'_, Self>) -> Option<MatRef<'_, f64>> {
        None
    }
    fn f32_view(m: MatRef<'_, Self>) -> Option<MatRef<'_, f32>> {
        Some(m)
    }
    fn max_abs(v: &[Self]) -> f64 {
        f64::from(lanes_max_abs(v))
    }
}

impl Element for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn f64_view(m: MatRef<'_, Self>) -> Option<MatRef<'_, f64>> {
        Some(m)
    }
    fn f32_view(_: MatRef<'_, Self>) -> Option<MatRef<'_, f32>> {
        None
    }
    fn max_abs(v: &[Self]) -> f64 {
        v.iter().fold(0.0, |m, x| m.max(x.abs()))
    }
}

/// Number of NaN or infinite entries of `m`.
pub fn count_non_finite<S: Element>(m: MatRef<'_, S>) -> usize {
    struct Count<'a, S>(MatRef<'a, S>);
    impl<S: Element> crate::simd::Kernel for Count<'_, S> {
        type Output = usize;
        #[inline(always)]
        fn run(self) -> usize {
            let m = unit_stride_columns(self.0);
            let mut count = 0;
            for j in 0..m.ncols() {
                let col = m.col(j);
                count += match col.try_as_col_major() {
                    Some(c) => c.as_slice().iter().filter(|x| !x.finite()).count(),
                    None => col.iter().filter(|x| !x.finite()).count(),
                };
            }
            count
        }
    }
    crate::simd::run(Count(m))
}

/// `m`, or its transpose when that makes its columns contiguous: the view whose columns a
/// pass over every entry should walk.
#[inline(always)]
fn unit_stride_columns<S>(m: MatRef<'_, S>) -> MatRef<'_, S> {
    if m.row_stride().unsigned_abs() == 1 || m.col_stride().unsigned_abs() != 1 {
        m
    } else {
        m.transpose()
    }
}

/// Checks that `m` has entries and that all are finite.
pub(crate) fn check_block<S: Element>(m: MatRef<'_, S>) -> Result<(), SpectrumError> {
    let (rows, cols) = m.shape();
    if rows == 0 || cols == 0 {
        return Err(SpectrumError::NoEntries { rows, cols });
    }
    let count = count_non_finite(m);
    if count > 0 {
        return Err(SpectrumError::NonFinite {
            count,
            total: rows * cols,
            rows,
            cols,
        });
    }
    Ok(())
}

/// Singular values of `m`, descending, at the given precision; `par` is faer's parallelism.
pub fn singular_values<S: Element>(
    m: MatRef<'_, S>,
    precision: Precision,
    par: Par,
) -> Result<Vec<f64>, SpectrumError> {
    singular_values_with(m, precision.method(), par)
}

/// Singular values of `m`, descending, by an explicit [`Method`].
pub fn singular_values_with<S: Element>(
    m: MatRef<'_, S>,
    method: Method,
    par: Par,
) -> Result<Vec<f64>, SpectrumError> {
    check_block(m)?;
    let (rows, cols) = m.shape();
    let a = short_side(m);
    let no_convergence = |method| SpectrumError::NoConvergence { method, rows, cols };
    let values = match method {
        Method::SvdF32 => bidiag_svd::<S, f32>(a, par).ok_or(no_convergence("bidiagonal SVD"))?,
        Method::SvdF64 => bidiag_svd::<S, f64>(a, par).ok_or(no_convergence("bidiagonal SVD"))?,
        gram_method => values_from_lambdas(
            &gram_lambdas(a, gram_method, par).ok_or(no_convergence("symmetric eigensolver"))?,
        ),
    };
    crate::simd::clear_upper();
    Ok(sorted_descending(values))
}

/// Eigenvalues (ascending) of the short side's Gram matrix by one of the Gram methods (`None`
/// when the eigensolver does not converge; the SVD methods are the caller's).
fn gram_lambdas<S: Element>(a: MatRef<'_, S>, method: Method, par: Par) -> Option<Vec<f64>> {
    match method {
        Method::GramF32 => eigenvalues(gram::<S, f32>(a, par).as_ref(), par),
        Method::GramF64 => gram_eigenvalues_f64(gram_f64(a, par), par),
        Method::GramF32EvdF64 => {
            let g32 = gram::<S, f32>(a, par);
            let g = Mat::<f64>::from_fn(g32.nrows(), g32.ncols(), |i, j| g32[(i, j)] as f64);
            gram_eigenvalues_f64(g, par)
        }
        Method::GramF64OneStage => eigenvalues(gram_f64(a, par).as_ref(), par),
        Method::GramF64EvdF32 => {
            let g = gram_f64(a, par);
            let g32 = Mat::<f32>::from_fn(g.nrows(), g.ncols(), |i, j| g[(i, j)] as f32);
            eigenvalues(g32.as_ref(), par)
        }
        Method::GramMixed => {
            let chunked = (a.nrows() >= MIXED_MIN && a.nrows() < CHUNKED_MAX)
                .then(|| gram_chunked_lower(a, par))
                .flatten();
            let g = chunked.unwrap_or_else(|| gram_f64_lower(a, par));
            let p = g.nrows();
            if p >= MIXED_MIN {
                let two_stage = par.degree() > 1 && p >= TWO_STAGE_F32_MIN;
                eigenvalues_f32_reduction(g, two_stage.then(|| band_width_f32(p)), par)
            } else {
                let lambdas = eigenvalues(g.as_ref(), par);
                scratch::keep_gram(g);
                lambdas
            }
        }
        Method::SvdF32 | Method::SvdF64 => None,
    }
}

/// Eigenvalues (ascending) of an f64 Gram matrix in f64: two-stage from [`TWO_STAGE_MIN`] on,
/// faer's one-stage reduction below.
fn gram_eigenvalues_f64(mut g: Mat<f64>, par: Par) -> Option<Vec<f64>> {
    let p = g.nrows();
    if p >= TWO_STAGE_MIN {
        symeig::eigenvalues_two_stage(g.as_mut(), BAND_F64, par)
    } else {
        eigenvalues(g.as_ref(), par)
    }
}

/// Singular values ν = √max(λ, 0), descending, from Gram eigenvalues in ascending order.
fn values_from_lambdas(lambdas: &[f64]) -> Vec<f64> {
    lambdas.iter().rev().map(|&l| l.max(0.0).sqrt()).collect()
}

/// Singular values (descending) and right singular vectors of `m` from the f64 Gram matrix.
///
/// Calls `visit(ν_i, v_i)` once per singular value ν_i > `1e-6·ν₁` with its right singular
/// vector v_i (length n = cols, unit norm); values at or below that cut have no reliable vector
/// and are skipped. The values returned meet [`Precision::Fast`].
pub fn values_and_right_vectors<S: Element>(
    m: MatRef<'_, S>,
    par: Par,
    mut visit: impl FnMut(f64, &[f64]),
) -> Result<Vec<f64>, SpectrumError> {
    check_block(m)?;
    let (rows, cols) = m.shape();
    let a = short_side(m);
    let p = a.nrows();
    let g = gram_f64(a, par);
    let mut vecs = Mat::<f64>::zeros(p, p);
    let lambdas = eigen(g.as_ref(), vecs.as_mut(), par).ok_or(SpectrumError::NoConvergence {
        method: "symmetric eigensolver",
        rows,
        cols,
    })?;
    crate::simd::clear_upper();
    let values: Vec<f64> = lambdas.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let top = values.iter().copied().fold(0.0, f64::max);
    let keep: Vec<usize> = (0..p).filter(|&i| values[i] > 1e-6 * top).collect();
    if rows > cols {
        // A = Wᵀ, G = WᵀW: its eigenvectors are W's right singular vectors.
        let mut buf = vec![0.0; p];
        for &i in &keep {
            for (k, b) in buf.iter_mut().enumerate() {
                *b = vecs[(k, i)];
            }
            visit(values[i], &buf);
        }
    } else {
        // A = W, G = WWᵀ = UΛUᵀ: v_i = Wᵀu_i / ν_i, in chunks of vectors.
        let q = a.ncols();
        const CHUNK: usize = 64;
        let mut buf = vec![0.0; q];
        for chunk in keep.chunks(CHUNK) {
            let u = Mat::<f64>::from_fn(p, chunk.len(), |k, c| {
                vecs[(k, chunk[c])] / values[chunk[c]]
            });
            let mut v = Mat::<f64>::zeros(q, chunk.len());
            match S::f64_view(a) {
                Some(a) => matmul::matmul(
                    v.as_mut(),
                    Accum::Replace,
                    a.transpose(),
                    u.as_ref(),
                    1.0,
                    par,
                ),
                None => for_each_column_chunk::<S, f64>(a, |j0, block| {
                    matmul::matmul(
                        v.as_mut().subrows_mut(j0, block.ncols()),
                        Accum::Replace,
                        block.transpose(),
                        u.as_ref(),
                        1.0,
                        par,
                    );
                }),
            }
            crate::simd::clear_upper();
            for (c, &i) in chunk.iter().enumerate() {
                match v.col(c).try_as_col_major() {
                    Some(col) => visit(values[i], col.as_slice()),
                    None => {
                        for (k, b) in buf.iter_mut().enumerate() {
                            *b = v[(k, c)];
                        }
                        visit(values[i], &buf);
                    }
                }
            }
        }
    }
    Ok(sorted_descending(values))
}

/// Smallest Gram size for which the two-stage eigensolver is used (measured).
const TWO_STAGE_MIN: usize = 1024;

/// Smallest Gram size reduced in f32 by `GramMixed` (measured, one core: 192² took 1.28 ms
/// against 1.36 ms for faer's f64 one-stage, 128² 0.54 against 0.47 ms).
const MIXED_MIN: usize = 160;

/// Smallest Gram size that `GramMixed` reduces in two stages, and only when it may use more
/// than one thread (the band stage and the chase run on two; measured on one core the blocked
/// one-stage reduction beat the two-stage one at every size from 192 to 2048: 576² 16.2 ms
/// against 19.8 ms for the whole values computation, 2048² 0.47 s against 0.51 s).
const TWO_STAGE_F32_MIN: usize = 1024;

/// Eigenvalues (ascending) of the f64 Gram matrix `g` (lower triangle) by a reduction to
/// tridiagonal in f32: two-stage with half-bandwidth `band` when given, else the blocked
/// one-stage reduction (`onestage`). G is scaled by its largest diagonal entry first, which no
/// entry of a Gram matrix exceeds, so that f32 neither overflows nor underflows whatever the
/// weights' scale; the scale is undone on the eigenvalues.
fn eigenvalues_f32_reduction(g: Mat<f64>, band: Option<usize>, par: Par) -> Option<Vec<f64>> {
    let p = g.nrows();
    let s = (0..p).map(|i| g[(i, i)]).fold(0.0f64, f64::max);
    if s == 0.0 {
        return Some(vec![0.0; p]);
    }
    let inv = 1.0 / s;
    let scaled = |x: f64| {
        if inv.is_finite() {
            (x * inv) as f32
        } else {
            (x / s) as f32
        }
    };
    let mut lambdas = if let Some(band) = band {
        let mut g32 =
            Mat::<f32>::from_fn(p, p, |i, j| if i >= j { scaled(g[(i, j)]) } else { 0.0 });
        scratch::keep_gram(g);
        symeig::eigenvalues_two_stage(g32.as_mut(), band, par)?
    } else {
        // Lower triangle, column-major, as the one-stage reduction takes it.
        let mut a = scratch::reduce_buffer(p * p);
        for (c, col) in a.chunks_exact_mut(p).enumerate() {
            let src = g.col(c).subrows(c, p - c);
            for (x, y) in col[c..].iter_mut().zip(src.iter()) {
                *x = scaled(*y);
            }
        }
        scratch::keep_gram(g);
        let (d, e) = onestage::tridiagonalize(&mut a, p);
        scratch::keep_reduce_buffer(a);
        let mut d: Vec<f64> = d.into_iter().map(f64::from).collect();
        let mut e: Vec<f64> = e.into_iter().map(f64::from).collect();
        tridiag::eigenvalues(&mut d, &mut e).then_some(d)?
    };
    for l in &mut lambdas {
        *l *= s;
    }
    Some(lambdas)
}

/// Half-bandwidth of the two-stage reduction in f64 (measured on 2048²: band 16 beat 32 and
/// 64, the chase growing faster than the band stage shrinks).
const BAND_F64: usize = 16;

/// Half-bandwidth of the two-stage reduction in f32 (measured, band stage + chase + QL, one
/// core for the band stage: on 512² band 16 takes 10.6 ms against 11.6 ms for 32; on 1024²
/// 52 ms against 54 ms; on 2048² 32 is best, 16 → 0.25 s, 24 and 32 → 0.24 s).
fn band_width_f32(p: usize) -> usize {
    if p < 1536 { 16 } else { 32 }
}

/// Singular values of `m` (descending) from its f64 Gram matrix and the two-stage eigensolver
/// with an explicit half-bandwidth, reducing in f32 or f64 (for tests and tuning benchmarks).
#[doc(hidden)]
pub fn gram_values_two_stage<S: Element>(
    m: MatRef<'_, S>,
    band: usize,
    reduce_in_f32: bool,
    par: Par,
) -> Result<Vec<f64>, SpectrumError> {
    check_block(m)?;
    let (rows, cols) = m.shape();
    let mut g = gram_f64(short_side(m), par);
    let lambdas = if reduce_in_f32 {
        eigenvalues_f32_reduction(g, Some(band), par)
    } else {
        symeig::eigenvalues_two_stage(g.as_mut(), band, par)
    }
    .ok_or(SpectrumError::NoConvergence {
        method: "symmetric eigensolver",
        rows,
        cols,
    })?;
    Ok(sorted_descending(values_from_lambdas(&lambdas)))
}

fn sorted_descending(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

/// W oriented p × q (short side first).
fn short_side<S>(m: MatRef<'_, S>) -> MatRef<'_, S> {
    if m.nrows() <= m.ncols() {
        m
    } else {
        m.transpose()
    }
}

/// Largest number of entries converted at once (a 32 MB f64 buffer).
const CHUNK_ENTRIES: usize = 1 << 22;

/// Calls `f(j0, block)` for consecutive column chunks of `a`, converted to column-major `T`.
fn for_each_column_chunk<S: Element, T: Element>(
    a: MatRef<'_, S>,
    mut f: impl FnMut(usize, MatRef<'_, T>),
) {
    let (p, q) = a.shape();
    let width = (CHUNK_ENTRIES / p.max(1)).clamp(1, q.max(1));
    let mut buf = Mat::<T>::zeros(p, width);
    let mut j0 = 0;
    while j0 < q {
        let w = width.min(q - j0);
        let src = a.subcols(j0, w);
        let mut dst = buf.as_mut().subcols_mut(0, w);
        copy_convert(src, dst.as_mut());
        f(j0, dst.as_ref());
        j0 += w;
    }
}

/// dst ← src converted element-wise, walking src along its unit stride.
fn copy_convert<S: Element, T: Element>(src: MatRef<'_, S>, mut dst: MatMut<'_, T>) {
    let (p, w) = src.shape();
    if dst.row_stride() != 1 {
        for j in 0..w {
            for i in 0..p {
                dst[(i, j)] = T::from_f64(src[(i, j)].to_f64());
            }
        }
        return;
    }
    // Column slices of dst (contiguous: the buffers this module allocates are column-major).
    let mut cols: Vec<&mut [T]> = dst
        .col_iter_mut()
        .filter_map(|c| c.try_as_col_major_mut().map(|c| c.as_slice_mut()))
        .collect();
    if src.col_stride().unsigned_abs() == 1 && src.row_stride().unsigned_abs() != 1 {
        // Rows of src are contiguous (a transposed view): scatter each row across columns.
        for i in 0..p {
            let row = src.row(i);
            match row.try_as_row_major() {
                Some(row) => {
                    for (col, x) in cols.iter_mut().zip(row.as_slice()) {
                        col[i] = T::from_f64(x.to_f64());
                    }
                }
                None => {
                    for (j, col) in cols.iter_mut().enumerate() {
                        col[i] = T::from_f64(src[(i, j)].to_f64());
                    }
                }
            }
        }
        return;
    }
    for (j, col) in cols.iter_mut().enumerate() {
        match src.col(j).try_as_col_major() {
            Some(s) => {
                for (d, x) in col.iter_mut().zip(s.as_slice()) {
                    *d = T::from_f64(x.to_f64());
                }
            }
            None => {
                for (i, d) in col.iter_mut().enumerate() {
                    *d = T::from_f64(src[(i, j)].to_f64());
                }
            }
        }
    }
}

/// Lower triangle of G = A Aᵀ in f64, straight from `a` when it already is f64.
fn gram_f64<S: Element>(a: MatRef<'_, S>, par: Par) -> Mat<f64> {
    gram_f64_in(a, par, || Mat::zeros(a.nrows(), a.nrows()))
}

/// [`gram_f64`]'s lower triangle in this thread's kept buffer (the upper triangle is stale;
/// give it back with [`scratch::keep_gram`]).
fn gram_f64_lower<S: Element>(a: MatRef<'_, S>, par: Par) -> Mat<f64> {
    gram_f64_in(a, par, || scratch::gram(a.nrows()))
}

/// The Gram matrix of `a` in f64, its lower triangle written into `buffer()`'s p × p matrix
/// when `a` is f64 already (otherwise accumulated over converted column chunks).
fn gram_f64_in<S: Element>(
    a: MatRef<'_, S>,
    par: Par,
    buffer: impl FnOnce() -> Mat<f64>,
) -> Mat<f64> {
    let Some(a) = S::f64_view(a) else {
        return gram::<S, f64>(a, par);
    };
    let mut g = buffer();
    add_gram(g.as_mut(), a, Accum::Replace, par);
    g
}

/// Whether the engine at `precision` reads the entries of a rows × cols block as f32 values
/// (Fast, short side from 160 to 1023: the chunked f32 Gram matrix), so that a block decoded
/// straight to f32 gives the same spectrum as one decoded to f64.
pub fn reads_entries_as_f32(rows: usize, cols: usize, precision: Precision) -> bool {
    let p = rows.min(cols);
    precision.method() == Method::GramMixed && (MIXED_MIN..CHUNKED_MAX).contains(&p)
}

/// Columns per f32 partial Gram matrix in [`gram_chunked_lower`].
const GRAM_CHUNK: usize = 128;

/// Short sides below which [`Method::GramMixed`] forms its Gram matrix by [`gram_chunked_lower`].
const CHUNKED_MAX: usize = 1024;

/// Lower triangle of G = A Aᵀ in f64 as a sum of f32 Gram matrices of [`GRAM_CHUNK`] columns
/// each (twice f64's speed; each partial sum's rounding is that of 128 terms, not of all n).
/// `None` when an entry's magnitude leaves 1e-15 … 1e15, where f32 products could overflow
/// or lose the block to underflow (the caller then forms G in f64).
fn gram_chunked_lower<S: Element>(a: MatRef<'_, S>, par: Par) -> Option<Mat<f64>> {
    if !(1e-15..=1e15).contains(&max_abs(a)) {
        return None;
    }
    let (p, n) = a.shape();
    let width = GRAM_CHUNK.min(n.max(1));
    // An f32 block is multiplied where it lies (its chunks are views); any other is converted
    // chunk by chunk. The products are the same either way.
    let direct = S::f32_view(a);
    let mut g = scratch::gram(p);
    // The partial Gram matrix and the converted chunk live in this thread's reduction buffer,
    // which the reduction only takes after this returns.
    let mut buf = scratch::reduce_buffer(p * p + p * width);
    let (part, chunk) = buf.split_at_mut(p * p);
    let mut j0 = 0;
    while j0 < n {
        let w = width.min(n - j0);
        let cols = match direct {
            Some(a) => a.subcols(j0, w),
            None => {
                let cols = &mut chunk[..p * w];
                copy_convert(
                    a.subcols(j0, w),
                    MatMut::from_column_major_slice_mut(cols, p, w),
                );
                MatRef::from_column_major_slice(cols, p, w)
            }
        };
        add_gram(
            MatMut::from_column_major_slice_mut(part, p, p),
            cols,
            Accum::Replace,
            par,
        );
        add_lower(&mut g, part, j0 == 0);
        j0 += w;
    }
    scratch::keep_reduce_buffer(buf);
    Some(g)
}

/// The lower triangle of the f64 `g` set to (`first`) or increased by that of the f32 p × p
/// column-major `part`, with the CPU's widest vectors.
fn add_lower(g: &mut Mat<f64>, part: &[f32], first: bool) {
    struct Add<'a>(&'a mut Mat<f64>, &'a [f32], bool);
    impl crate::simd::Kernel for Add<'_> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Add(g, part, first) = self;
            let p = g.nrows();
            for (j, src) in part.chunks_exact(p).enumerate().take(p) {
                let out = &mut g.col_as_slice_mut(j)[j..];
                let src = &src[j..];
                if first {
                    for (o, &s) in out.iter_mut().zip(src) {
                        *o = f64::from(s);
                    }
                } else {
                    for (o, &s) in out.iter_mut().zip(src) {
                        *o += f64::from(s);
                    }
                }
            }
        }
    }
    crate::simd::clear_upper();
    crate::simd::run(Add(g, part, first));
}

/// max |x| over the entries of `m` (which the caller has checked are finite), along its
/// unit stride.
fn max_abs<S: Element>(m: MatRef<'_, S>) -> f64 {
    let m = unit_stride_columns(m);
    let mut largest = 0f64;
    for j in 0..m.ncols() {
        let col = m.col(j);
        let amax = match col.try_as_col_major() {
            Some(c) => S::max_abs(c.as_slice()),
            None => col.iter().fold(0f64, |a, x| a.max(x.to_f64().abs())),
        };
        largest = largest.max(amax);
    }
    largest
}

/// max |x| over `v` (0 when empty), sixteen lanes at a time with the CPU's widest vectors.
fn lanes_max_abs(v: &[f32]) -> f32 {
    struct MaxAbs<'a>(&'a [f32]);
    impl crate::simd::Kernel for MaxAbs<'_> {
        type Output = f32;
        #[inline(always)]
        fn run(self) -> f32 {
            let mut acc = [0f32; 16];
            let chunks = self.0.chunks_exact(16);
            let tail = chunks.remainder().iter().fold(0f32, |m, x| m.max(x.abs()));
            for c in chunks {
                for l in 0..16 {
                    acc[l] = acc[l].max(c[l].abs());
                }
            }
            acc.iter().fold(tail, |m, &x| m.max(x))
        }
    }
    crate::simd::run(MaxAbs(v))
}

/// Lower triangle of G = A Aᵀ accumulated in `T` (the upper triangle is left zero).
fn gram<S: Element, T: Element>(a: MatRef<'_, S>, par: Par) -> Mat<T> {
    let p = a.nrows();
    let mut g = Mat::<T>::zeros(p, p);
    let mut first = true;
    for_each_column_chunk::<S, T>(a, |_, block| {
        add_gram(
            g.as_mut(),
            block,
            if first { Accum::Replace } else { Accum::Add },
            par,
        );
        first = false;
    });
    g
}

/// The lower triangle of `g` set to (`Replace`) or increased by (`Add`) A Aᵀ.
fn add_gram<T: Element>(g: MatMut<'_, T>, a: MatRef<'_, T>, accum: Accum, par: Par) {
    matmul::triangular::matmul(
        g,
        BlockStructure::TriangularLower,
        accum,
        a,
        BlockStructure::Rectangular,
        a.transpose(),
        BlockStructure::Rectangular,
        T::from_f64(1.0),
        par,
    );
}

/// Eigenvalues (ascending, as f64) of the symmetric matrix whose lower triangle is `g`: faer's
/// one-stage tridiagonalization, then the root-free QL of [`tridiag`].
fn eigenvalues<T: Element>(g: MatRef<'_, T>, par: Par) -> Option<Vec<f64>> {
    let n = g.nrows();
    if n == 0 {
        return Some(Vec::new());
    }
    let mut a = Mat::<T>::zeros(n, n);
    a.copy_from_triangular_lower(g);
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<T>(n, n);
    let mut householder = Mat::<T>::zeros(bs, n - 1);
    let mut mem = MemBuffer::new(evd::tridiag::tridiag_in_place_scratch::<T>(
        n,
        par,
        Default::default(),
    ));
    evd::tridiag::tridiag_in_place(
        a.as_mut(),
        householder.as_mut(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    );
    let mut d: Vec<f64> = (0..n).map(|i| a[(i, i)].to_f64()).collect();
    let mut e: Vec<f64> = (0..n - 1).map(|i| a[(i + 1, i)].to_f64()).collect();
    tridiag::eigenvalues(&mut d, &mut e).then_some(d)
}

/// Eigenvalues (ascending) and eigenvectors (columns of `u`) of the symmetric f64 matrix `g`.
fn eigen(g: MatRef<'_, f64>, u: MatMut<'_, f64>, par: Par) -> Option<Vec<f64>> {
    let n = g.nrows();
    let mut s = Diag::<f64>::zeros(n);
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        par,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        g,
        s.as_mut(),
        Some(u),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .ok()?;
    Some(s.column_vector().iter().copied().collect())
}

/// Singular values of the p × q matrix `a` by faer's bidiagonal SVD in `T`.
fn bidiag_svd<S: Element, T: Element>(a: MatRef<'_, S>, par: Par) -> Option<Vec<f64>> {
    let (p, q) = a.shape();
    // SVD needs the whole block in T; faer reduces a wide block by QR itself.
    let mut w = Mat::<T>::zeros(p, q);
    copy_convert(a, w.as_mut());
    let mut s = Diag::<T>::zeros(p);
    let mut mem = MemBuffer::new(svd::svd_scratch::<T>(
        p,
        q,
        svd::ComputeSvdVectors::No,
        svd::ComputeSvdVectors::No,
        par,
        Default::default(),
    ));
    svd::svd(
        w.as_ref(),
        s.as_mut(),
        None,
        None,
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .ok()?;
    Some(s.column_vector().iter().map(|x| x.to_f64()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64) -> Mat<f64> {
        Mat::from_fn(rows, cols, f)
    }

    #[test]
    fn the_chunked_f32_gram_matches_the_f64_one_and_declines_extreme_scales() {
        // A bf16-like block (entries with 8-bit mantissas) of a small model's MLP shape.
        let mut rng = crate::rng::Rng::new(5);
        let a = Mat::<f64>::from_fn(576, 1536, |_, _| {
            let x = rng.normal() as f32 * 0.02;
            f32::from_bits(x.to_bits() & 0xffff_0000) as f64
        });
        let chunked = gram_chunked_lower(a.as_ref(), Par::Seq).unwrap();
        let exact = gram::<f64, f64>(a.as_ref(), Par::Seq);
        let diag = (0..576).map(|i| exact[(i, i)]).fold(0.0, f64::max);
        let mut worst = 0f64;
        for j in 0..576 {
            for i in j..576 {
                worst = worst.max((chunked[(i, j)] - exact[(i, j)]).abs() / diag);
            }
        }
        // 128-term f32 partial sums: a few ε₃₂ of the largest entry, below the f32 rounding
        // the reduction applies next (ε₃₂/2 of each entry) times a small factor.
        assert!(worst < 4e-7, "{worst:e}");
        assert!(worst > 0.0, "an f64 sum would be exact here");
        for scale in [1e-20, 1e20] {
            let m = mat(200, 300, |i, j| scale * ((i * 7 + j * 3) % 11) as f64);
            assert!(
                gram_chunked_lower(m.as_ref(), Par::Seq).is_none(),
                "{scale}"
            );
        }
    }

    #[test]
    fn an_f32_block_gives_the_values_of_the_same_block_in_f64_bit_for_bit() {
        // What lets the scan decode such blocks straight to f32: the chunked Gram matrix reads
        // f32 entries either way, as views of an f32 block or as converted chunks of an f64 one.
        let mut rng = crate::rng::Rng::new(9);
        for (rows, cols) in [
            (576, 1536),
            (1536, 576),
            (576, 576),
            (192, 576),
            (1000, 300),
        ] {
            assert!(reads_entries_as_f32(rows, cols, Precision::Fast));
            let a32 = Mat::<f32>::from_fn(rows, cols, |_, _| {
                let x = rng.normal() as f32 * 0.02;
                f32::from_bits(x.to_bits() & 0xffff_0000)
            });
            let a64 = Mat::<f64>::from_fn(rows, cols, |i, j| f64::from(a32[(i, j)]));
            let v32 = singular_values(a32.as_ref(), Precision::Fast, Par::Seq).unwrap();
            let v64 = singular_values(a64.as_ref(), Precision::Fast, Par::Seq).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v32), bits(&v64), "{rows} x {cols}");
        }
        assert!(!reads_entries_as_f32(100, 576, Precision::Fast));
        assert!(!reads_entries_as_f32(1024, 2048, Precision::Fast));
        assert!(!reads_entries_as_f32(576, 576, Precision::Precise));
        // Extreme scales decline the f32 Gram matrix in either type.
        let tiny = Mat::<f32>::from_fn(200, 300, |i, j| 1e-20 * ((i * 7 + j * 3) % 11) as f32);
        assert!(gram_chunked_lower(tiny.as_ref(), Par::Seq).is_none());
    }

    #[test]
    fn diagonal_values_every_method() {
        let d = [3.0, 0.5, 2.0, 1.0];
        let m = mat(4, 6, |i, j| if i == j { d[i] } else { 0.0 });
        for method in Method::ALL {
            for mm in [m.as_ref(), m.as_ref().transpose()] {
                let v = singular_values_with(mm, method, Par::Seq).unwrap();
                let want = [3.0, 2.0, 1.0, 0.5];
                for (a, b) in v.iter().zip(want) {
                    assert!((a - b).abs() < 1e-6, "{method:?}: {v:?}");
                }
            }
        }
    }

    #[test]
    fn one_by_one_and_row_vector() {
        let m = mat(1, 1, |_, _| -2.5);
        assert_eq!(
            singular_values(m.as_ref(), Precision::Fast, Par::Seq).unwrap(),
            vec![2.5]
        );
        let r = mat(1, 5, |_, j| j as f64);
        let v = singular_values(r.as_ref(), Precision::Precise, Par::Seq).unwrap();
        assert!((v[0] - 30f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn non_finite_and_empty_are_errors() {
        let mut m = mat(3, 4, |i, j| (i + j) as f64);
        m[(1, 2)] = f64::NAN;
        m[(2, 3)] = f64::INFINITY;
        let err = singular_values(m.as_ref(), Precision::Fast, Par::Seq).unwrap_err();
        assert_eq!(
            err,
            SpectrumError::NonFinite {
                count: 2,
                total: 12,
                rows: 3,
                cols: 4
            }
        );
        assert!(err.to_string().contains("2 non-finite entries"));
        let e = Mat::<f32>::zeros(0, 3);
        assert!(matches!(
            singular_values(e.as_ref(), Precision::Fast, Par::Seq),
            Err(SpectrumError::NoEntries { .. })
        ));
    }

    #[test]
    fn zero_block_gives_zeros() {
        let z = Mat::<f32>::zeros(5, 7);
        for method in Method::ALL {
            let v = singular_values_with(z.as_ref(), method, Par::Seq).unwrap();
            assert_eq!(v, vec![0.0; 5]);
        }
    }

    #[test]
    fn chunked_gram_matches_direct() {
        // More columns than one chunk holds for p = 1 << 12 would be slow; use a tiny chunk by a
        // tall thin block instead: p = 2, q large enough to need several chunks.
        let q = (CHUNK_ENTRIES / 2) * 2 + 5;
        let m = Mat::<f32>::from_fn(2, q, |i, j| ((i * 7 + j * 13) % 17) as f32 - 8.0);
        let g = gram::<f32, f64>(m.as_ref(), Par::Seq);
        let mut want = [[0.0f64; 2]; 2];
        for j in 0..q {
            for (a, row) in want.iter_mut().enumerate() {
                for (b, x) in row.iter_mut().enumerate() {
                    *x += m[(a, j)] as f64 * m[(b, j)] as f64;
                }
            }
        }
        assert_eq!(g[(0, 0)], want[0][0]);
        assert_eq!(g[(1, 0)], want[1][0]);
        assert_eq!(g[(1, 1)], want[1][1]);
    }

    #[test]
    fn right_vectors_are_singular_vectors() {
        let m = mat(5, 9, |i, j| {
            ((i * 31 + j * 17) % 11) as f64 - 5.0 + if i == j { 4.0 } else { 0.0 }
        });
        for mm in [m.as_ref(), m.as_ref().transpose()] {
            let mut seen = 0;
            values_and_right_vectors(mm, Par::Seq, |nu, v| {
                // ‖W v‖ = ν and ‖v‖ = 1.
                let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!((norm - 1.0).abs() < 1e-9);
                let wv: f64 = (0..mm.nrows())
                    .map(|i| {
                        (0..mm.ncols())
                            .map(|j| mm[(i, j)] * v[j])
                            .sum::<f64>()
                            .powi(2)
                    })
                    .sum::<f64>()
                    .sqrt();
                assert!((wv - nu).abs() < 1e-9 * nu.max(1.0), "{wv} vs {nu}");
                assert_eq!(v.len(), mm.ncols());
                seen += 1;
            })
            .unwrap();
            assert_eq!(seen, 5);
        }
    }
}
