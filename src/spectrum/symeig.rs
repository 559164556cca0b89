//! Eigenvalues of a dense symmetric matrix (f32 or f64) by two-stage tridiagonalization.
//!
//! faer's one-stage tridiagonalization reads the whole trailing matrix once per column
//! (level-2 BLAS), so for n ≳ 256 it is bound by memory bandwidth, and two blocks reduced at
//! once on two cores fight over it. Here instead:
//!
//! 1. **dense → band** of half-bandwidth b: for each panel of b columns, a Householder QR of the
//!    part below the band (Q = I − V T Vᵀ, LAPACK's compact WY form), then the two-sided update
//!    A₂₂ ← QᵀA₂₂Q = A₂₂ − W Vᵀ − V Wᵀ with X = A₂₂ V T, W = X − ½ V (Tᵀ Vᵀ X), all by faer
//!    (triangular) matrix products on the lower triangle: level 3, compute bound.
//! 2. **band → tridiagonal** by Householder bulge chasing (`chase`), on two threads when `par`
//!    allows.
//! 3. **tridiagonal eigenvalues** by root-free QL (`tridiag`).
//!
//! Every step is an orthogonal similarity, so the eigenvalues are backward stable as in the
//! one-stage path (errors of order ε·‖A‖, with ε that of the type the reduction runs in; the
//! tridiagonal eigenvalues are always found in f64).

use faer::linalg::matmul;
use faer::linalg::matmul::triangular::BlockStructure;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use num_traits::Float;

use super::svd::Element;

/// The real types the reduction runs in: T, or f32 for speed where its accuracy suffices.
pub(crate) trait Real: Element + Float + std::iter::Sum {
    /// Σ aᵢbᵢ over the common length with `simd`'s vectors (four accumulators).
    fn dot_simd<S: pulp::Simd>(simd: S, a: &[Self], b: &[Self]) -> Self;
    /// Four columns of a symmetric product at once: y += Σⱼ fⱼ·xⱼ, and returns (xⱼ·v)ⱼ
    /// (all slices of one length), loading y and v once for the four.
    fn symv4_simd<S: pulp::Simd>(
        simd: S,
        x: [&[Self]; 4],
        f: [Self; 4],
        v: &[Self],
        y: &mut [Self],
    ) -> [Self; 4];
}

/// [`Real`]'s SIMD kernels for one element type, from its pulp split, splat and FMA.
macro_rules! dot_simd {
    ($t:ty, $split:ident, $split_mut:ident, $splat:ident, $fma:ident) => {
        impl Real for $t {
            #[inline(always)]
            fn dot_simd<S: pulp::Simd>(simd: S, a: &[$t], b: &[$t]) -> $t {
                let n = a.len().min(b.len());
                let (ah, at) = S::$split(&a[..n]);
                let (bh, bt) = S::$split(&b[..n]);
                let zero = simd.$splat(0.0);
                let mut acc = [zero; 4];
                let (ac, bc) = (ah.chunks_exact(4), bh.chunks_exact(4));
                let (ar, br) = (ac.remainder(), bc.remainder());
                for (x, y) in ac.zip(bc) {
                    for l in 0..4 {
                        acc[l] = simd.$fma(x[l], y[l], acc[l]);
                    }
                }
                for (l, (x, y)) in ar.iter().zip(br).enumerate() {
                    acc[l] = simd.$fma(*x, *y, acc[l]);
                }
                let mut t: $t = at.iter().zip(bt).map(|(x, y)| x * y).sum();
                for a in acc {
                    t += lanes_sum::<S, $t>(a);
                }
                t
            }

            #[inline(always)]
            fn symv4_simd<S: pulp::Simd>(
                simd: S,
                x: [&[$t]; 4],
                f: [$t; 4],
                v: &[$t],
                y: &mut [$t],
            ) -> [$t; 4] {
                let n = y.len();
                let v = &v[..n];
                let (x0, x1, x2, x3) = (&x[0][..n], &x[1][..n], &x[2][..n], &x[3][..n]);
                let (yh, yt) = S::$split_mut(y);
                let (vh, vt) = S::$split(v);
                let (h0, h1, h2, h3) = (
                    S::$split(x0).0,
                    S::$split(x1).0,
                    S::$split(x2).0,
                    S::$split(x3).0,
                );
                let (f0, f1, f2, f3) = (
                    simd.$splat(f[0]),
                    simd.$splat(f[1]),
                    simd.$splat(f[2]),
                    simd.$splat(f[3]),
                );
                let zero = simd.$splat(0.0);
                let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
                for (i, (yy, vv)) in yh.iter_mut().zip(vh).enumerate() {
                    let (p0, p1, p2, p3) = (h0[i], h1[i], h2[i], h3[i]);
                    let lo = simd.$fma(p1, f1, simd.$fma(p0, f0, *yy));
                    *yy = simd.$fma(p3, f3, simd.$fma(p2, f2, lo));
                    a0 = simd.$fma(p0, *vv, a0);
                    a1 = simd.$fma(p1, *vv, a1);
                    a2 = simd.$fma(p2, *vv, a2);
                    a3 = simd.$fma(p3, *vv, a3);
                }
                let mut out = [
                    lanes_sum::<S, $t>(a0),
                    lanes_sum::<S, $t>(a1),
                    lanes_sum::<S, $t>(a2),
                    lanes_sum::<S, $t>(a3),
                ];
                let at = n - yt.len();
                for (i, (yy, vv)) in yt.iter_mut().zip(vt).enumerate() {
                    let k = at + i;
                    *yy += f[0] * x0[k] + f[1] * x1[k] + f[2] * x2[k] + f[3] * x3[k];
                    out[0] += x0[k] * *vv;
                    out[1] += x1[k] * *vv;
                    out[2] += x2[k] * *vv;
                    out[3] += x3[k] * *vv;
                }
                out
            }
        }
    };
}

/// Σ of a SIMD vector's lanes, stored and summed as a tree (pulp's own reduction calls
/// intrinsics that are not inlined outside its dispatch).
#[inline(always)]
fn lanes_sum<S: pulp::Simd, T: Lanes<S>>(x: T::Vector) -> T {
    T::lanes_sum(x)
}

/// An element type whose pulp vectors can be summed across lanes.
trait Lanes<S: pulp::Simd>: Sized {
    /// pulp's vector of this type.
    type Vector: Copy;
    /// Σ of the lanes of `x`.
    fn lanes_sum(x: Self::Vector) -> Self;
}

/// [`Lanes`] for f32 and f64: the vector written to a 512-bit buffer, then a tree sum.
macro_rules! lanes {
    ($t:ty, $v:ident, $split_mut:ident) => {
        impl<S: pulp::Simd> Lanes<S> for $t {
            type Vector = S::$v;
            #[inline(always)]
            fn lanes_sum(x: S::$v) -> $t {
                const W: usize = 64 / std::mem::size_of::<$t>();
                let mut buf = [0.0 as $t; W];
                let (h, _) = S::$split_mut(&mut buf);
                match h.first_mut() {
                    Some(slot) => *slot = x,
                    None => return 0.0,
                }
                tree_sum(buf)
            }
        }
    };
}

/// Σ xᵢ of N (a power of two) entries, added as a balanced tree so that it vectorizes.
#[inline(always)]
fn tree_sum<T: Real, const N: usize>(mut x: [T; N]) -> T {
    let mut half = N / 2;
    while half > 0 {
        for l in 0..half {
            x[l] += x[l + half];
        }
        half /= 2;
    }
    x[0]
}

lanes!(f32, f32s, as_mut_simd_f32s);
lanes!(f64, f64s, as_mut_simd_f64s);

dot_simd!(
    f32,
    as_simd_f32s,
    as_mut_simd_f32s,
    splat_f32s,
    mul_add_f32s
);
dot_simd!(
    f64,
    as_simd_f64s,
    as_mut_simd_f64s,
    splat_f64s,
    mul_add_f64s
);

/// Eigenvalues (ascending) of the symmetric matrix whose lower triangle is `a` (n × n), by
/// two-stage reduction with half-bandwidth `band`; `a` is overwritten.
pub(crate) fn eigenvalues_two_stage<T: Real>(
    mut a: MatMut<'_, T>,
    band: usize,
    par: Par,
) -> Option<Vec<f64>> {
    let n = a.nrows();
    let b = band.max(1);
    if n == 0 {
        return Some(Vec::new());
    }
    dense_to_band(a.rb_mut(), b, par);
    crate::simd::clear_upper();
    let (d, e) = super::chase::band_to_tridiagonal(a.rb(), b, par);
    let mut d: Vec<f64> = d.into_iter().map(Element::to_f64).collect();
    let mut e: Vec<f64> = e.into_iter().map(Element::to_f64).collect();
    super::tridiag::eigenvalues(&mut d, &mut e).then_some(d)
}

/// Reduces the lower triangle of `a` to half-bandwidth `b` by blocked Householder panels.
fn dense_to_band<T: Real>(a: MatMut<'_, T>, b: usize, par: Par) {
    struct ToBand<'a, T>(MatMut<'a, T>, usize, Par);
    impl<T: Real> crate::simd::Kernel for ToBand<'_, T> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            to_band(self.0, self.1, self.2)
        }
    }
    crate::simd::run(ToBand(a, b, par))
}

#[inline(always)]
fn to_band<T: Real>(mut a: MatMut<'_, T>, b: usize, par: Par) {
    let n = a.nrows();
    let mut k = 0;
    let mut panel = Vec::new();
    let mut taus = Vec::new();
    while k + b + 2 <= n {
        let m = n - k - b;
        // Only the two m × m products split across threads, and only while they are big
        // enough to pay for it; the r-sized products always run on one thread.
        let big = if m >= PAR_MIN { par } else { Par::Seq };
        let w = b;
        let r = w.min(m);
        // Panel P = A[k+b.., k..k+w] copied out, factored in place (R above, V below).
        panel.clear();
        panel.resize(m * w, T::zero());
        for c in 0..w {
            let col = a.rb().col(k + c).subrows(k + b, m);
            for (i, x) in col.iter().enumerate() {
                panel[c * m + i] = *x;
            }
        }
        taus.clear();
        householder_qr(&mut panel, m, w, &mut taus);
        // Write R back (upper trapezoid), zeros below.
        for c in 0..w {
            let mut col = a.rb_mut().col_mut(k + c).subrows_mut(k + b, m);
            for i in 0..m {
                col[i] = if i <= c { panel[c * m + i] } else { T::zero() };
            }
        }
        // V: m × r, unit lower trapezoidal.
        let v = Mat::<T>::from_fn(m, r, |i, j| {
            if i < j {
                T::zero()
            } else if i == j {
                T::one()
            } else {
                panel[j * m + i]
            }
        });
        if taus.iter().all(|&t| t == T::zero()) {
            k += b;
            continue;
        }
        let t = compact_wy_factor(v.as_ref(), &taus);
        let mut a22 = a.rb_mut().submatrix_mut(k + b, k + b, m, m);
        // X0 = A₂₂ V from A₂₂'s lower triangle.
        // (The one-pass kernel pays in f64 only; in f32 faer's products were faster.)
        let x0 = if r <= THIN && std::mem::size_of::<T>() == 8 {
            symm_thin(a22.rb(), v.as_ref(), big)
        } else {
            symm_faer(a22.rb(), v.as_ref(), big)
        };
        // X = X0 T; Y = Tᵀ (Vᵀ X); W = X − ½ V Y, stored as the left half of L = [W V].
        let mut lw = Mat::<T>::zeros(m, 2 * r);
        matmul::matmul(
            lw.as_mut().subcols_mut(0, r),
            Accum::Replace,
            x0.as_ref(),
            t.as_ref(),
            T::one(),
            Par::Seq,
        );
        let mut vtx = Mat::<T>::zeros(r, r);
        matmul::matmul(
            vtx.as_mut(),
            Accum::Replace,
            v.as_ref().transpose(),
            lw.as_ref().subcols(0, r),
            T::one(),
            Par::Seq,
        );
        let mut y = Mat::<T>::zeros(r, r);
        matmul::matmul(
            y.as_mut(),
            Accum::Replace,
            t.as_ref().transpose(),
            vtx.as_ref(),
            T::one(),
            Par::Seq,
        );
        matmul::matmul(
            lw.as_mut().subcols_mut(0, r),
            Accum::Add,
            v.as_ref(),
            y.as_ref(),
            T::from_f64(-0.5),
            Par::Seq,
        );
        lw.as_mut().subcols_mut(r, r).copy_from(v.as_ref());
        let mut rv = Mat::<T>::zeros(m, 2 * r);
        rv.as_mut().subcols_mut(0, r).copy_from(v.as_ref());
        rv.as_mut()
            .subcols_mut(r, r)
            .copy_from(lw.as_ref().subcols(0, r));
        // A₂₂ ← A₂₂ − [W V][V W]ᵀ on the lower triangle.
        matmul::triangular::matmul(
            a22.rb_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            lw.as_ref(),
            BlockStructure::Rectangular,
            rv.as_ref().transpose(),
            BlockStructure::Rectangular,
            -T::one(),
            big,
        );
        k += b;
    }
}

/// Smallest trailing size m whose products A₂₂V and the rank-2r update split across threads
/// (measured, f32, two cores: on 512² the split made the band stage 5.8 ms against 3.7 ms on one
/// thread, on 1024² 26.6 ms against 22.6 ms, on 2048² it saves 30%).
const PAR_MIN: usize = 1024;

/// Widest V that [`symm_thin`] handles.
const THIN: usize = 16;

/// A V for the symmetric A (m × m) whose lower triangle is `a`, by faer's triangular products
/// (A = L + Lₛᵀ, L lower with diagonal, Lₛ strictly lower).
fn symm_faer<T: Real>(a: MatRef<'_, T>, v: MatRef<'_, T>, par: Par) -> Mat<T> {
    let mut x = Mat::<T>::zeros(a.nrows(), v.ncols());
    matmul::triangular::matmul(
        x.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        a,
        BlockStructure::TriangularLower,
        v,
        BlockStructure::Rectangular,
        T::one(),
        par,
    );
    matmul::triangular::matmul(
        x.as_mut(),
        BlockStructure::Rectangular,
        Accum::Add,
        a.transpose(),
        BlockStructure::StrictTriangularUpper,
        v,
        BlockStructure::Rectangular,
        T::one(),
        par,
    );
    x
}

/// A V for the symmetric A whose lower triangle is `a` and a thin V (at most [`THIN`]
/// columns), in one pass over the triangle: each entry a = A[i, c] below the diagonal adds
/// a·V[c, :] to X[i, :] and a·V[i, :] to X[c, :], four columns c at a time with V and X held
/// row-major, so the inner loop is a few register-wide FMAs. On 2048 × 16 (one core) it takes
/// 3.8 ms against 5.2 ms for faer's two triangular products, which split across threads.
#[inline(always)]
fn symm_thin<T: Real>(a: MatRef<'_, T>, v: MatRef<'_, T>, par: Par) -> Mat<T> {
    let m = a.nrows();
    let r = v.ncols();
    let Some(cols) = (0..m)
        .map(|c| a.col(c).try_as_col_major().map(|col| col.as_slice()))
        .collect::<Option<Vec<&[T]>>>()
    else {
        return symm_faer(a, v, par);
    };
    let mut vr = vec![[T::zero(); THIN]; m];
    for (i, row) in vr.iter_mut().enumerate() {
        for (k, x) in row.iter_mut().take(r).enumerate() {
            *x = v[(i, k)];
        }
    }
    let mut xr = vec![[T::zero(); THIN]; m];
    // The caller passes threads only for m ≥ PAR_MIN.
    if par.degree() > 1 {
        // Two halves of the triangle's area: columns 0..split and split..m, each into its own
        // X, summed at the end.
        let split = ((m as f64 * (1.0 - std::f64::consts::FRAC_1_SQRT_2)) as usize) & !3;
        let mut xr2 = vec![[T::zero(); THIN]; m];
        rayon::join(
            || crate::simd::run(SymmCols(&cols, &vr, 0..split, &mut xr)),
            || crate::simd::run(SymmCols(&cols, &vr, split..m, &mut xr2)),
        );
        for (x, y) in xr.iter_mut().zip(&xr2) {
            for k in 0..THIN {
                x[k] += y[k];
            }
        }
    } else {
        symm_cols(&cols, &vr, 0..m, &mut xr);
    }
    Mat::from_fn(m, r, |i, k| xr[i][k])
}

/// [`symm_cols`] as a SIMD-dispatched kernel.
struct SymmCols<'a, T>(
    &'a [&'a [T]],
    &'a [[T; THIN]],
    std::ops::Range<usize>,
    &'a mut [[T; THIN]],
);

impl<T: Real> crate::simd::Kernel for SymmCols<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        symm_cols(self.0, self.1, self.2, self.3)
    }
}

/// Adds to `xr` the part of A V (rows of V in `vr`) that the lower-triangle columns `range` of
/// A (in `cols`) contribute.
#[inline(always)]
fn symm_cols<T: Real>(
    cols: &[&[T]],
    vr: &[[T; THIN]],
    range: std::ops::Range<usize>,
    xr: &mut [[T; THIN]],
) {
    let m = cols.len();
    let mut c = range.start;
    while c + 4 <= range.end {
        let vc = [vr[c], vr[c + 1], vr[c + 2], vr[c + 3]];
        let mut acc = [[T::zero(); THIN]; 4];
        // The 4 × 4 diagonal block.
        for j in 0..4 {
            for i in c + j..c + 4 {
                let aij = cols[c + j][i];
                for k in 0..THIN {
                    acc[j][k] += aij * vr[i][k];
                }
                if i != c + j {
                    for k in 0..THIN {
                        xr[i][k] += aij * vc[j][k];
                    }
                }
            }
        }
        let (c0, c1, c2, c3) = (cols[c], cols[c + 1], cols[c + 2], cols[c + 3]);
        for i in c + 4..m {
            let (a0, a1, a2, a3) = (c0[i], c1[i], c2[i], c3[i]);
            let vi = vr[i];
            let xi = &mut xr[i];
            for k in 0..THIN {
                xi[k] += a0 * vc[0][k] + a1 * vc[1][k] + a2 * vc[2][k] + a3 * vc[3][k];
                acc[0][k] += a0 * vi[k];
                acc[1][k] += a1 * vi[k];
                acc[2][k] += a2 * vi[k];
                acc[3][k] += a3 * vi[k];
            }
        }
        for j in 0..4 {
            for k in 0..THIN {
                xr[c + j][k] += acc[j][k];
            }
        }
        c += 4;
    }
    for c in c..range.end {
        let vc = vr[c];
        let mut acc = [T::zero(); THIN];
        for i in c..m {
            let aic = cols[c][i];
            for k in 0..THIN {
                acc[k] += aic * vr[i][k];
            }
            if i != c {
                for k in 0..THIN {
                    xr[i][k] += aic * vc[k];
                }
            }
        }
        for k in 0..THIN {
            xr[c][k] += acc[k];
        }
    }
}

/// Householder QR of the column-major m × w `p` in place (LAPACK `geqr2`): R on and above the
/// diagonal, the reflectors' essential parts below, τ of each in `taus` (min(m, w) of them).
#[inline(always)]
fn householder_qr<T: Real>(p: &mut [T], m: usize, w: usize, taus: &mut Vec<T>) {
    for j in 0..w.min(m) {
        let (left, right) = p.split_at_mut((j + 1) * m);
        let x = &mut left[j * m + j..(j + 1) * m];
        let tau = make_reflector(x);
        taus.push(tau);
        if tau == T::zero() {
            continue;
        }
        // Apply H = I − τ v vᵀ (v₀ = 1, v₁.. = x[1..]) to the remaining columns.
        let v = &x[1..];
        for c in 0..(w - j - 1) {
            let col = &mut right[c * m + j..(c + 1) * m];
            let (head, tail) = col.split_at_mut(1);
            let dot = head[0] + dot(v, tail);
            let f = tau * dot;
            head[0] -= f;
            axpy(-f, v, tail);
        }
    }
}

/// Turns `x` into β e₀ by H = I − τ v vᵀ (LAPACK `larfg`): on return x[0] = β and x[1..] holds
/// v's essential part (v₀ = 1). Returns τ (0 when x[1..] is already zero).
#[inline(always)]
pub(super) fn make_reflector<T: Real>(x: &mut [T]) -> T {
    let Some((alpha, tail)) = x.split_first_mut() else {
        return T::zero();
    };
    let xnorm = dot(tail, tail).sqrt();
    if xnorm == T::zero() {
        return T::zero();
    }
    let beta = -alpha.hypot(xnorm).copysign(*alpha);
    let tau = (beta - *alpha) / beta;
    let scale = T::one() / (*alpha - beta);
    for t in tail.iter_mut() {
        *t *= scale;
    }
    *alpha = beta;
    tau
}

/// The upper triangular T of H₀H₁⋯H_{r−1} = I − V T Vᵀ (LAPACK `larft`, forward, columnwise).
fn compact_wy_factor<T: Real>(v: MatRef<'_, T>, taus: &[T]) -> Mat<T> {
    let r = taus.len();
    let mut s = Mat::<T>::zeros(r, r);
    matmul::matmul(
        s.as_mut(),
        Accum::Replace,
        v.transpose(),
        v,
        T::one(),
        Par::Seq,
    );
    let mut t = Mat::<T>::zeros(r, r);
    for i in 0..r {
        let tau = taus[i];
        t[(i, i)] = tau;
        if tau == T::zero() {
            continue;
        }
        // T[0..i, i] = −τ_i T[0..i, 0..i] (Vᵀ v_i)[0..i].
        for a in 0..i {
            let mut sum = T::zero();
            for c in a..i {
                sum += t[(a, c)] * s[(c, i)];
            }
            t[(a, i)] = -tau * sum;
        }
    }
    t
}

#[inline(always)]
pub(super) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    // Four independent sums so the loop vectorizes.
    let mut acc = [T::zero(); 8];
    let chunks = a.len() / 8;
    for k in 0..chunks {
        for l in 0..8 {
            acc[l] += a[8 * k + l] * b[8 * k + l];
        }
    }
    let mut sum: T = acc.iter().copied().sum();
    for k in chunks * 8..a.len() {
        sum += a[k] * b[k];
    }
    sum
}

#[inline(always)]
pub(super) fn axpy<T: Real>(f: T, x: &[T], y: &mut [T]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += f * *x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(n: usize, b: usize, seed: u64) {
        check_par(n, b, seed, Par::Seq);
    }

    fn check_par(n: usize, b: usize, seed: u64, par: Par) {
        let mut rng = crate::rng::Rng::new(seed);
        let x = Mat::<f64>::from_fn(n, n + 3, |_, _| rng.normal());
        let g = &x * x.transpose();
        let want = super::super::testing::reference_eigenvalues(g.as_ref());
        let mut lower = g.clone();
        for j in 0..n {
            for i in 0..j {
                lower[(i, j)] = f64::NAN; // upper triangle must not be read
            }
        }
        let got = eigenvalues_two_stage(lower.as_mut(), b, par).unwrap();
        let top = want[n - 1];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * top, "n={n} b={b}: {g} vs {w}");
        }
    }

    #[test]
    fn matches_one_stage_on_many_shapes() {
        for (n, b) in [
            (1, 4),
            (2, 4),
            (3, 1),
            (5, 2),
            (9, 4),
            (17, 4),
            (40, 8),
            (64, 16),
            (100, 7),
            (130, 32),
        ] {
            check(n, b, n as u64 * 31 + b as u64);
        }
        // Large enough (m ≥ PAR_MIN in the first panels) for the two-thread split of the A·V
        // product and of the update.
        check_par(PAR_MIN + 40, 16, 7, Par::rayon(2));
        check_par(PAR_MIN + 40, 16, 7, Par::Seq);
    }

    #[test]
    fn diagonal_and_zero_blocks() {
        let mut z = Mat::<f64>::zeros(50, 50);
        assert_eq!(
            eigenvalues_two_stage(z.as_mut(), 8, Par::Seq).unwrap(),
            vec![0.0; 50]
        );
        let mut d = Mat::<f64>::from_fn(40, 40, |i, j| if i == j { i as f64 } else { 0.0 });
        let got = eigenvalues_two_stage(d.as_mut(), 8, Par::Seq).unwrap();
        for (i, g) in got.iter().enumerate() {
            assert!((*g - i as f64).abs() < 1e-12 * 40.0, "{g} vs {i}");
        }
    }
}
