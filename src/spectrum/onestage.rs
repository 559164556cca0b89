//! Dense symmetric → tridiagonal in one stage, blocked (LAPACK's `sytrd` with `latrd`), for
//! matrices small enough that their lower triangle stays in a core's L2 cache.
//!
//! Column k's reflector H = I − τ v vᵀ needs w = τ A₂₂ v on the trailing matrix as updated by
//! the reflectors before it. Within a panel of `nb` columns those updates are kept lazy, as
//! the pairs (V, W): A₂₂ v = A₂₂⁰ v − V (Wᵀ v) − W (Vᵀ v), with A₂₂⁰ the trailing matrix at the
//! panel's start, and column k itself is brought up to date just before its reflector is
//! made. After the panel one rank-2·nb product A −= V Wᵀ + W Vᵀ (faer, lower triangle only)
//! applies them all. Half the work is the symmetric product A₂₂⁰ v, one pass over the lower
//! triangle per column: from L2 that pass runs near the vector units' speed, where the
//! two-stage path (`symeig`) spends as much again on the bulge chase. For n of a few hundred
//! this is the faster path (measured, see `svd::ONE_STAGE_F32_MAX`); beyond L2 it is not.
//!
//! Every step is an orthogonal similarity, so the eigenvalues keep the backward stability of
//! the other paths: errors of order ε·‖A‖ with ε that of T.

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatMut, Par};

use super::symeig::{Real, make_reflector};

/// Panel width: LAPACK's default block size for `sytrd` (32), and 16 below n = 1024, where
/// the lazy updates of a panel's columns (O(n·nb) per column) weigh more against the
/// symmetric product (O(n²)): one core, 576² in f32, 5.45 ms against 5.95 ms for 32 (8 and
/// 12 no better, 48 worse).
fn panel_width(n: usize) -> usize {
    if n < 1024 { 16 } else { 32 }
}

/// Tridiagonal (diagonal, off-diagonal) of the symmetric matrix whose lower triangle is the
/// n × n column-major `a`; `a` is overwritten.
pub(super) fn tridiagonalize<T: Real>(a: &mut [T], n: usize) -> (Vec<T>, Vec<T>) {
    struct Reduce<'a, T>(&'a mut [T], usize);
    impl<T: Real> pulp::WithSimd for Reduce<'_, T> {
        type Output = (Vec<T>, Vec<T>);
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, simd: S) -> Self::Output {
            reduce(simd, self.0, self.1)
        }
    }
    pulp::Arch::new().dispatch(Reduce(a, n))
}

#[inline(always)]
fn reduce<T: Real, S: pulp::Simd>(simd: S, a: &mut [T], n: usize) -> (Vec<T>, Vec<T>) {
    assert_eq!(a.len(), n * n, "an n × n matrix");
    let mut d = vec![T::zero(); n];
    let mut e = vec![T::zero(); n];
    if n == 0 {
        return (d, e);
    }
    // Panel reflectors and their products, column-major n × nb; rows below the panel's own
    // column are the only ones used.
    let nb = panel_width(n);
    let mut vs = vec![T::zero(); n * nb];
    let mut ws = vec![T::zero(); n * nb];
    let mut y = vec![T::zero(); n];
    // A panel's V and W side by side as [V W V], for its update (allocated once).
    let mut vwv = Mat::<T>::zeros(n, 3 * nb);
    let mut k0 = 0;
    while k0 + 1 < n {
        let nbk = nb.min(n - 1 - k0);
        for j in 0..nbk {
            let k = k0 + j;
            // Column k (rows k..n) brought up to date with the panel's earlier reflectors.
            {
                let col = &mut a[k * n + k..(k + 1) * n];
                for l in 0..j {
                    let (vl, wl) = (&vs[l * n + k..(l + 1) * n], &ws[l * n + k..(l + 1) * n]);
                    let (fw, fv) = (wl[0], vl[0]);
                    for ((x, v), w) in col.iter_mut().zip(vl).zip(wl) {
                        *x -= *v * fw + *w * fv;
                    }
                }
            }
            d[k] = a[k * n + k];
            let m = n - k - 1;
            let x = &mut a[k * n + k + 1..(k + 1) * n];
            let tau = make_reflector(x);
            e[k] = x[0];
            let v = &mut vs[j * n + k + 1..(j + 1) * n];
            v[0] = T::one();
            v[1..].copy_from_slice(&x[1..]);
            let w = &mut ws[j * n + k + 1..(j + 1) * n];
            if tau == T::zero() {
                w.fill(T::zero());
                continue;
            }
            // w = τ (A₂₂⁰ v − V (Wᵀ v) − W (Vᵀ v)) − ½ τ² (vᵀ(…)) v.
            let (v_all, w_all) = (&vs[..], &mut ws[..]);
            let v = &v_all[j * n + k + 1..(j + 1) * n];
            let yk = &mut y[..m];
            symv_lower(simd, a, n, k + 1, v, yk);
            for l in 0..j {
                let (vl, wl) = (
                    &v_all[l * n + k + 1..(l + 1) * n],
                    &w_all[l * n + k + 1..(l + 1) * n],
                );
                let (wv, vv) = (T::dot_simd(simd, wl, v), T::dot_simd(simd, vl, v));
                for ((o, a), b) in yk.iter_mut().zip(vl).zip(wl) {
                    *o -= *a * wv + *b * vv;
                }
            }
            let alpha = T::from_f64(-0.5) * tau * tau * T::dot_simd(simd, yk, v);
            let w = &mut w_all[j * n + k + 1..(j + 1) * n];
            for ((o, y), v) in w.iter_mut().zip(yk.iter()).zip(v) {
                *o = tau * *y + alpha * *v;
            }
        }
        // A[s.., s..] −= V Wᵀ + W Vᵀ for the rows and columns after the panel.
        let s = k0 + nbk;
        if s < n {
            let rows = n - s;
            // L = [V W] and R = [W V] are overlapping columns of [V W V]: A −= L Rᵀ.
            for c in 0..nbk {
                let (v, w) = (&vs[c * n + s..(c + 1) * n], &ws[c * n + s..(c + 1) * n]);
                for (dst, src) in [(c, v), (nbk + c, w), (2 * nbk + c, v)] {
                    vwv.col_mut(dst)
                        .subrows_mut(0, rows)
                        .iter_mut()
                        .zip(src)
                        .for_each(|(x, y)| *x = *y);
                }
            }
            let (l, r) = (
                vwv.as_ref().submatrix(0, 0, rows, 2 * nbk),
                vwv.as_ref().submatrix(0, nbk, rows, 2 * nbk),
            );
            let trail =
                MatMut::from_column_major_slice_with_stride_mut(&mut a[s * n + s..], rows, rows, n);
            triangular::matmul(
                trail,
                BlockStructure::TriangularLower,
                Accum::Add,
                l,
                BlockStructure::Rectangular,
                r.transpose(),
                BlockStructure::Rectangular,
                -T::one(),
                Par::Seq,
            );
        }
        k0 += nbk;
    }
    d[n - 1] = a[n * n - 1];
    (d, e)
}

/// y = A v for the symmetric trailing matrix A = `a`[s.., s..] (lower triangle, column-major
/// n × n storage); v and y have n − s entries.
#[inline(always)]
fn symv_lower<T: Real, S: pulp::Simd>(simd: S, a: &[T], n: usize, s: usize, v: &[T], y: &mut [T]) {
    let m = n - s;
    y.fill(T::zero());
    let col = |c: usize| &a[(s + c) * n + s + c..(s + c + 1) * n];
    let mut c = 0;
    // Four columns at a time: their 4 × 4 diagonal corner one by one, the rows below together.
    while c + 4 <= m {
        let cols = [col(c), col(c + 1), col(c + 2), col(c + 3)];
        for j in 0..4 {
            let x = cols[j];
            let mut t = x[0] * v[c + j];
            for i in 1..4 - j {
                y[c + j + i] += x[i] * v[c + j];
                t += x[i] * v[c + j + i];
            }
            y[c + j] += t;
        }
        let below = [&cols[0][4..], &cols[1][3..], &cols[2][2..], &cols[3][1..]];
        let f = [v[c], v[c + 1], v[c + 2], v[c + 3]];
        let t = T::symv4_simd(simd, below, f, &v[c + 4..], &mut y[c + 4..]);
        for j in 0..4 {
            y[c + j] += t[j];
        }
        c += 4;
    }
    while c < m {
        let x = col(c);
        let vc = v[c];
        let (below, vb) = (&x[1..], &v[c + 1..]);
        for (yy, x) in y[c + 1..].iter_mut().zip(below) {
            *yy += *x * vc;
        }
        y[c] += x[0] * vc + T::dot_simd(simd, below, vb);
        c += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::spectrum::testing::reference_eigenvalues;

    fn check(n: usize, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut g = Mat::<f64>::from_fn(n, n, |_, _| rng.normal());
        for i in 0..n {
            for j in 0..i {
                g[(j, i)] = g[(i, j)];
            }
        }
        let want = reference_eigenvalues(g.as_ref());
        let mut a: Vec<f64> = (0..n * n).map(|x| g[(x % n, x / n)]).collect();
        let (d, e) = tridiagonalize(&mut a, n);
        let (mut d, mut e) = (d, e);
        assert!(crate::spectrum::tridiag::eigenvalues(&mut d, &mut e));
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (got, want) in d.iter().zip(&want) {
            assert!(
                (got - want).abs() <= 1e-12 * scale,
                "n {n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn matches_the_reference_across_panel_edges() {
        for (n, seed) in [
            (1, 1),
            (2, 2),
            (3, 3),
            (15, 11),
            (16, 12),
            (17, 13),
            (31, 4),
            (32, 5),
            (33, 6),
            (64, 7),
            (97, 8),
            (200, 9),
            // Panels of 32 from n = 1024 on.
            (1030, 10),
        ] {
            check(n, seed);
        }
    }
}
