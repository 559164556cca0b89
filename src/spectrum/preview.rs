//! A display-precision spectrum of a big block, in a fraction of the exact computation's time.
//!
//! Stochastic Lanczos quadrature with a Jackson-damped Chebyshev density:
//! 1. `R` independent Lanczos runs of `K` steps on the Gram matrix G of the block's short side,
//!    applied as Wᵀ(W·X) to all `R` vectors at once (two thin products a step, G is never
//!    formed), with full reorthogonalisation (cheap: K ≪ p). Run r gives a K×K tridiagonal
//!    matrix whose eigenvalues θ and squared first eigenvector components τ² are the nodes and
//!    weights of a Gauss quadrature for the start vector's spectral measure: exact for
//!    polynomials of degree < 2K. With Rademacher start vectors the mean of these measures is
//!    an unbiased estimate of the eigenvalue distribution of G.
//! 2. The Chebyshev moments μ_j = Σ w·T_j(x) (j < 2K) of that quadrature on [0, θ_max], damped
//!    by the Jackson kernel, give a smooth density that is non-negative (the kernel is) and has
//!    a closed-form CDF: F(θ) = 1 − θ/π − (2/π) Σ_{j≥1} g_j μ_j sin(jθ)/j with x = cos θ.
//! 3. The p quantiles of that CDF at (k + ½)/p stand in for the p eigenvalues λ = ν²; the top
//!    one is the largest Ritz value, which Lanczos finds to many digits when it stands apart.
//!
//! The histogram of these values matches the exact one at screen resolution (the tests bound
//! the difference); scores computed from them are approximations and are not shown as such.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatRef, Par, Side};

use super::SpectrumError;
use super::svd::check_block;
use super::symeig::{axpy, dot};
use crate::rng::Rng;

/// Short side from which the explorer shows a preview before a block's exact values.
pub const PREVIEW_MIN: usize = 1024;

/// Lanczos steps per probe: moments up to degree 2K − 1, a resolution of about π/2K of the
/// spectrum's width (a few bins of a full-width histogram).
const STEPS: usize = 24;

/// Points at which the CDF is evaluated before it is inverted.
const GRID: usize = 4096;

/// Probe vectors for a short side of `p`: enough that R·p, the number of samples behind the
/// density, is about 16 k (at least 4, at most 16).
fn probes(p: usize) -> usize {
    (16_384 / p.max(1)).clamp(4, 16)
}

/// How far a preview is from the exact values, as a histogram shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Largest gap between the two sets' empirical CDFs.
    pub ks: f64,
    /// Share of a histogram over [0, 1.02·ν₁(exact)] that differs (half the L1 distance of the
    /// two sets' bin shares).
    pub histogram: f64,
}

impl Agreement {
    /// Compares `approx` with `exact` (any order) on a histogram of `bins` bins.
    pub fn new(exact: &[f64], approx: &[f64], bins: usize) -> Self {
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let (a, b) = (sorted(exact), sorted(approx));
        let (mut i, mut j, mut ks) = (0usize, 0usize, 0f64);
        while i < a.len() && j < b.len() {
            if a[i] <= b[j] {
                i += 1;
            } else {
                j += 1;
            }
            ks = ks.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
        }
        let bins = bins.max(1);
        let top = a.last().copied().unwrap_or(0.0).max(f64::MIN_POSITIVE) * 1.02;
        let shares = |v: &[f64]| {
            let mut c = vec![0f64; bins];
            for &x in v {
                c[((x / top * bins as f64) as usize).min(bins - 1)] += 1.0 / v.len() as f64;
            }
            c
        };
        let (ca, cb) = (shares(&a), shares(&b));
        let histogram = 0.5 * ca.iter().zip(&cb).map(|(x, y)| (x - y).abs()).sum::<f64>();
        Self { ks, histogram }
    }
}

/// Approximate singular values of `m`, descending, good for a histogram at screen resolution
/// (see the module notes); `par` is the parallelism of the two products per Lanczos step.
pub fn preview_values(m: MatRef<'_, f32>, par: Par) -> Result<Vec<f64>, SpectrumError> {
    check_block(m)?;
    let p = m.nrows().min(m.ncols());
    let steps = STEPS.min(p);
    let (nodes, weights) = lanczos_quadrature(m, probes(p), steps, par, 0x5eed);
    Ok(quantile_values(&nodes, &weights, 2 * steps, p))
}

/// Nodes and weights (summing to 1) of the averaged Gauss quadratures of `r` Lanczos runs of
/// at most `k` steps on the short side's Gram matrix of `m`, from Rademacher start vectors.
fn lanczos_quadrature(
    m: MatRef<'_, f32>,
    r: usize,
    k: usize,
    par: Par,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let p = m.nrows().min(m.ncols());
    let threads = par.degree().max(1);
    let mut rng = Rng::new(seed);
    let scale = 1.0 / (p as f32).sqrt();
    // x: the current Lanczos vector of each probe (one per column), y: W·x, z: G·x.
    let mut x = Mat::<f32>::from_fn(p, r, |_, _| {
        if rng.next_u64() & 1 == 0 {
            scale
        } else {
            -scale
        }
    });
    let mut z = Mat::<f32>::zeros(p, r);
    // Each probe's Lanczos basis, one vector per column.
    let mut basis: Vec<Mat<f32>> = (0..r).map(|_| Mat::zeros(p, k)).collect();
    let mut alpha: Vec<Vec<f64>> = vec![Vec::with_capacity(k); r];
    let mut beta: Vec<Vec<f64>> = vec![Vec::with_capacity(k); r];
    let mut active = vec![true; r];
    let mut h = vec![0f32; k];
    for step in 0..k {
        for (j, b) in basis.iter_mut().enumerate() {
            if active[j] {
                b.col_as_slice_mut(step).copy_from_slice(x.col_as_slice(j));
            }
        }
        apply_gram(m, x.as_ref(), z.as_mut(), threads);
        for j in 0..r {
            if !active[j] {
                continue;
            }
            let q = x.col_as_slice(j);
            let zj = z.col_as_slice_mut(j);
            let a = f64::from(dot(q, zj));
            axpy(-(a as f32), q, zj);
            if let Some(&b) = beta[j].last() {
                axpy(-(b as f32), basis[j].col_as_slice(step - 1), zj);
            }
            // Full reorthogonalisation, twice (classical Gram–Schmidt is enough twice).
            let qs = basis[j].as_ref().subcols(0, step + 1);
            for _ in 0..2 {
                let hv = faer::ColMut::from_slice_mut(&mut h[..=step]);
                let zc = faer::ColRef::from_slice(zj);
                matmul(hv, Accum::Replace, qs.transpose(), zc, 1.0, Par::Seq);
                let hv = faer::ColRef::from_slice(&h[..=step]);
                let zc = faer::ColMut::from_slice_mut(zj);
                matmul(zc, Accum::Add, qs, hv, -1.0, Par::Seq);
            }
            alpha[j].push(a);
            let b = f64::from(dot(zj, zj)).sqrt();
            let size = alpha[j].iter().fold(0f64, |s, v| s.max(v.abs())).max(b);
            if !b.is_finite() || b <= 1e-5 * size || step + 1 == k {
                // An invariant subspace (the quadrature is exact) or the last step.
                active[j] = false;
                continue;
            }
            beta[j].push(b);
            let inv = (1.0 / b) as f32;
            for (xi, zi) in x.col_as_slice_mut(j).iter_mut().zip(zj.iter()) {
                *xi = zi * inv;
            }
        }
        if !active.iter().any(|&a| a) {
            break;
        }
    }
    let mut nodes = Vec::with_capacity(r * k);
    let mut weights = Vec::with_capacity(r * k);
    for (a, b) in alpha.iter().zip(&beta) {
        let n = a.len();
        let t = Mat::<f64>::from_fn(n, n, |i, j| {
            if i == j {
                a[i]
            } else if i == j + 1 {
                b[j]
            } else if j == i + 1 {
                b[i]
            } else {
                0.0
            }
        });
        let Ok(evd) = t.self_adjoint_eigen(Side::Lower) else {
            continue;
        };
        let (s, u) = (evd.S(), evd.U());
        for i in 0..n {
            nodes.push(s[i].max(0.0));
            weights.push(u[(0, i)] * u[(0, i)]);
        }
    }
    let total: f64 = weights.iter().sum();
    if total > 0.0 {
        weights.iter_mut().for_each(|w| *w /= total);
    }
    (nodes, weights)
}

/// Bytes of a panel of `m` that the two products of [`apply_gram`] share: it stays in L2.
const PANEL_BYTES: usize = 512 * 1024;

/// z ← G·x for the Gram matrix G of `m`'s short side (WᵀW when `m` is tall, WWᵀ when wide), in
/// one pass over `m`: panel by panel (rows of a tall `m`, columns of a wide one), y = panel·x
/// (or panelᵀ·x) and then z += panelᵀ·y (or panel·y) while the panel is still in cache. The
/// panels are split over `threads` threads, each with its own sum, added in a fixed order.
fn apply_gram(
    m: MatRef<'_, f32>,
    x: MatRef<'_, f32>,
    mut z: faer::MatMut<'_, f32>,
    threads: usize,
) {
    let (rows, cols) = m.shape();
    let tall = rows >= cols;
    let (long, short) = if tall { (rows, cols) } else { (cols, rows) };
    let r = x.ncols();
    let panel = (PANEL_BYTES / (4 * short)).clamp(8, long);
    let panels = long.div_ceil(panel);
    let threads = threads.min(panels).max(1);
    let part = |first: usize, last: usize, mut acc: faer::MatMut<'_, f32>| {
        let mut y = Mat::<f32>::zeros(panel, r);
        let mut beta = Accum::Replace;
        for b in first..last {
            let start = b * panel;
            let len = panel.min(long - start);
            let mut yb = y.as_mut().subrows_mut(0, len);
            if tall {
                let wb = m.subrows(start, len);
                matmul(yb.rb_mut(), Accum::Replace, wb, x, 1.0, Par::Seq);
                matmul(acc.rb_mut(), beta, wb.transpose(), yb.rb(), 1.0, Par::Seq);
            } else {
                let wb = m.subcols(start, len);
                matmul(
                    yb.rb_mut(),
                    Accum::Replace,
                    wb.transpose(),
                    x,
                    1.0,
                    Par::Seq,
                );
                matmul(acc.rb_mut(), beta, wb, yb.rb(), 1.0, Par::Seq);
            }
            beta = Accum::Add;
        }
        if beta == Accum::Replace {
            acc.fill(0.0);
        }
    };
    let share = panels.div_ceil(threads);
    if threads == 1 {
        part(0, panels, z);
        return;
    }
    let mut sums: Vec<Mat<f32>> = (1..threads).map(|_| Mat::zeros(short, r)).collect();
    std::thread::scope(|s| {
        for (t, sum) in sums.iter_mut().enumerate() {
            let (first, last) = ((t + 1) * share, ((t + 2) * share).min(panels));
            let part = &part;
            s.spawn(move || part(first.min(last), last, sum.as_mut()));
        }
        part(0, share.min(panels), z.rb_mut());
    });
    for sum in &sums {
        z += sum;
    }
}

/// Nodes above this multiple of the nodes' 95% quantile are outliers, kept as atoms: the
/// smooth density then spans the bulk only, and keeps its resolution there however far the
/// outliers reach.
const OUTLIER_FACTOR: f64 = 2.0;

/// Outlier nodes this close (relative) are one eigenvalue found by several probes.
const CLUSTER_TOL: f64 = 1e-4;

/// The `p` singular values (descending) whose squares are the quantiles at (k + ½)/p of the
/// quadrature (`nodes`, `weights`): its outliers as atoms, the rest as a Jackson-damped
/// Chebyshev density of degree < `m` on [0, the largest bulk node].
fn quantile_values(nodes: &[f64], weights: &[f64], m: usize, p: usize) -> Vec<f64> {
    let top = nodes.iter().fold(0f64, |m, &v| m.max(v));
    if !(top > 0.0 && top.is_finite()) {
        return vec![0.0; p];
    }
    let mut pairs: Vec<(f64, f64)> = nodes.iter().copied().zip(weights.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = pairs.iter().map(|q| q.1).sum();
    let mut acc = 0.0;
    let q95 = pairs
        .iter()
        .find(|q| {
            acc += q.1;
            acc >= 0.95 * total
        })
        .map_or(top, |q| q.0);
    let split = pairs.partition_point(|q| q.0 <= OUTLIER_FACTOR * q95);
    let (bulk, outliers) = pairs.split_at(split);
    // Outliers that most probes found at one value are converged eigenvalues: each stands for
    // one value (outliers of real weights are simple; the mass the probes give one is too noisy,
    // ±√(2/R), to count more), and the rest stay weighted atoms.
    let probes = probes(p);
    let mut exact: Vec<f64> = Vec::new();
    let mut atoms: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    while i < outliers.len() {
        let mut j = i + 1;
        while j < outliers.len() && outliers[j].0 - outliers[i].0 <= CLUSTER_TOL * outliers[j].0 {
            j += 1;
        }
        let group = &outliers[i..j];
        let mass: f64 = group.iter().map(|q| q.1).sum::<f64>() / total;
        if 2 * group.len() >= probes {
            let at = group.iter().map(|q| q.0 * q.1).sum::<f64>() / (mass * total);
            exact.push(at);
        } else {
            atoms.extend_from_slice(group);
        }
        i = j;
    }
    let rest = p - exact.len().min(p);
    // The rest's mass: the bulk and the unconverged atoms, renormalised over `rest` values.
    let total: f64 = bulk.iter().chain(&atoms).map(|q| q.1).sum::<f64>();
    if total <= 0.0 {
        return exact_first(&exact, vec![0.0; rest], p, top);
    }
    let bulk_mass: f64 = bulk.iter().map(|q| q.1).sum::<f64>() / total;
    let bulk_top = bulk.last().map_or(0.0, |q| q.0);
    // The bulk's CDF on a grid from λ = 0 up, scaled to its share of the mass.
    let (lam, cdf) = if bulk_top > 0.0 {
        smooth_cdf(bulk, bulk_top, m, bulk_mass)
    } else {
        (vec![0.0, 0.0], vec![bulk_mass, bulk_mass])
    };
    let p_all = p;
    let p = rest;
    let mut out = Vec::with_capacity(p);
    let (mut i, mut a, mut above) = (0usize, 0usize, bulk_mass);
    for k in 0..p {
        let t = (k as f64 + 0.5) / p as f64;
        let l = if t <= bulk_mass || atoms.is_empty() {
            while i + 2 < cdf.len() && cdf[i + 1] < t {
                i += 1;
            }
            let (f0, f1, l0, l1) = (cdf[i], cdf[i + 1], lam[i], lam[i + 1]);
            if f1 > f0 {
                l0 + (l1 - l0) * ((t - f0) / (f1 - f0)).clamp(0.0, 1.0)
            } else {
                l1
            }
        } else {
            while a + 1 < atoms.len() && above + atoms[a].1 / total < t {
                above += atoms[a].1 / total;
                a += 1;
            }
            atoms[a].0
        };
        out.push(l.clamp(0.0, top).sqrt());
    }
    exact_first(&exact, out, p_all, top)
}

/// The converged outliers (eigenvalues), then the `rest` (ascending singular values) as
/// descending singular values, `p` in all, the first being √`top` (the largest Ritz value).
fn exact_first(exact: &[f64], rest: Vec<f64>, p: usize, top: f64) -> Vec<f64> {
    let mut out: Vec<f64> = exact.iter().map(|at| at.max(0.0).sqrt()).collect();
    out.extend(rest.into_iter().rev());
    out.truncate(p);
    out.sort_by(|a, b| b.total_cmp(a));
    if let Some(first) = out.first_mut() {
        *first = top.sqrt();
    }
    out
}

/// The CDF (times `mass`) of the Jackson-damped Chebyshev density of degree < `m` of the
/// weighted nodes `bulk` on [0, `hi`], at [`GRID`] + 1 points from λ = 0 up (uniform in θ,
/// x = cos θ: dense near both ends), made monotone against rounding.
fn smooth_cdf(bulk: &[(f64, f64)], hi: f64, m: usize, mass: f64) -> (Vec<f64>, Vec<f64>) {
    use std::f64::consts::PI;
    let m = m.max(1);
    let sum: f64 = bulk.iter().map(|q| q.1).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut mu = vec![0f64; m];
    for &(l, w) in bulk {
        let x = (2.0 * l / hi - 1.0).clamp(-1.0, 1.0);
        let w = w / sum;
        let (mut t0, mut t1) = (1.0, x);
        mu[0] += w;
        if m > 1 {
            mu[1] += w * x;
        }
        for mj in mu.iter_mut().skip(2) {
            let t2 = 2.0 * x * t1 - t0;
            *mj += w * t2;
            (t0, t1) = (t1, t2);
        }
    }
    let g = jackson(m);
    let mut lam = Vec::with_capacity(GRID + 1);
    let mut cdf = Vec::with_capacity(GRID + 1);
    let mut run = 0f64;
    for i in 0..=GRID {
        let theta = PI * (1.0 - i as f64 / GRID as f64);
        let (s1, c1) = theta.sin_cos();
        // F(θ) = 1 − θ/π − (2/π) Σ g_j μ_j sin(jθ)/j, sin(jθ) by its three-term recurrence.
        let (mut s_prev, mut s) = (0.0, s1);
        let mut f = g[0] * mu[0] * (1.0 - theta / PI);
        for j in 1..m {
            f -= 2.0 / PI * g[j] * mu[j] * s / j as f64;
            (s_prev, s) = (s, 2.0 * c1 * s - s_prev);
        }
        run = run.max(f);
        lam.push((c1 + 1.0) * 0.5 * hi);
        cdf.push(run.min(1.0) * mass);
    }
    (lam, cdf)
}

/// Jackson kernel coefficients g_0 … g_{m−1}.
fn jackson(m: usize) -> Vec<f64> {
    let n = m as f64 + 1.0;
    let a = std::f64::consts::PI / n;
    (0..m)
        .map(|j| {
            let j = j as f64;
            ((n - j) * (a * j).cos() + (a * j).sin() / a.tan()) / n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectrum::{Precision, singular_values};

    fn gaussian(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
        let mut rng = Rng::new(seed);
        let s = 1.0 / (cols as f64).sqrt();
        Mat::from_fn(rows, cols, |_, _| (rng.normal() * s) as f32)
    }

    fn exact(m: &Mat<f32>) -> Vec<f64> {
        let m64 = Mat::<f64>::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f64);
        singular_values(m64.as_ref(), Precision::Precise, Par::Seq).unwrap()
    }

    /// KS distance and differing histogram share (40 bins) of `approx` against `exact`.
    fn gaps(exact: &[f64], approx: &[f64]) -> (f64, f64) {
        let g = Agreement::new(exact, approx, 40);
        (g.ks, g.histogram)
    }

    #[test]
    fn a_noise_block_previews_within_screen_resolution_of_its_exact_values() {
        // Square (values down to 0), tall and wide (a gap above 0), one and two threads.
        for (rows, cols, par) in [
            (1024, 1024, Par::Seq),
            (1536, 512, Par::rayon(2)),
            (512, 1536, Par::Seq),
        ] {
            let m = gaussian(rows, cols, rows as u64 * 7 + cols as u64);
            let approx = preview_values(m.as_ref(), par).unwrap();
            let want = exact(&m);
            assert_eq!(approx.len(), want.len());
            assert!(approx.windows(2).all(|w| w[0] >= w[1]), "descending");
            let (d, h) = gaps(&want, &approx);
            assert!(d < 0.02, "{rows}x{cols}: KS {d}");
            assert!(h < 0.05, "{rows}x{cols}: histogram differs by {h}");
            let top = (approx[0] - want[0]).abs() / want[0];
            assert!(top < 1e-2, "{rows}x{cols}: ν₁ off by {top}");
        }
    }

    #[test]
    fn spikes_above_the_bulk_keep_their_exact_top_value() {
        let (n, mut m) = (1024, gaussian(1024, 1024, 3));
        // Two planted directions, 6× and 4× the bulk edge (≈ 2).
        let mut rng = Rng::new(9);
        let u: Vec<f64> = (0..n).map(|_| rng.normal() / (n as f64).sqrt()).collect();
        let v: Vec<f64> = (0..n).map(|_| rng.normal() / (n as f64).sqrt()).collect();
        for i in 0..n {
            for j in 0..n {
                m[(i, j)] += (12.0 * u[i] * v[j] + 8.0 * u[j] * v[i]) as f32;
            }
        }
        let approx = preview_values(m.as_ref(), Par::Seq).unwrap();
        let want = exact(&m);
        assert!(
            (approx[0] - want[0]).abs() / want[0] < 1e-4,
            "{} vs {}",
            approx[0],
            want[0]
        );
        assert!(gaps(&want, &approx).0 < 0.02);
    }

    #[test]
    fn a_heavy_tailed_spectrum_previews_its_tail_and_its_bulk() {
        // Prescribed values with a power-law tail: ν_i = (p / (i + 1))^0.4 (ν₁/ν_p ≈ 16).
        let p = 1024;
        let orth = |seed| {
            let g = gaussian(p, p, seed);
            let g = Mat::<f64>::from_fn(p, p, |i, j| g[(i, j)] as f64);
            g.qr().compute_Q()
        };
        let (u, v) = (orth(11), orth(12));
        let want: Vec<f64> = (0..p)
            .map(|i| (p as f64 / (i + 1) as f64).powf(0.4))
            .collect();
        let us = Mat::<f64>::from_fn(p, p, |i, j| u[(i, j)] * want[j]);
        let w = &us * v.transpose();
        let m = Mat::<f32>::from_fn(p, p, |i, j| w[(i, j)] as f32);
        let approx = preview_values(m.as_ref(), Par::rayon(2)).unwrap();
        // Half the values sit in ν ∈ [1, 1.32] above a hard edge at 1, which the density
        // softens over about π/2K of the bulk's width: within a bin or two of 40, and the CDF
        // within 0.12 there (0.01 for soft MP edges).
        let (d, h) = gaps(&want, &approx);
        assert!(d < 0.12, "KS {d}");
        assert!(h < 0.07, "histogram differs by {h}");
        assert!((approx[0] - want[0]).abs() / want[0] < 1e-3);
    }

    #[test]
    fn low_rank_zero_and_broken_blocks() {
        // Rank 3: three values, the rest 0 (the Lanczos runs end early, exactly).
        let (a, b) = (gaussian(1024, 3, 1), gaussian(3, 1024, 2));
        let mut m = Mat::<f32>::zeros(1024, 1024);
        faer::linalg::matmul::matmul(m.as_mut(), Accum::Replace, &a, &b, 1.0, Par::Seq);
        let approx = preview_values(m.as_ref(), Par::Seq).unwrap();
        let want = exact(&m);
        assert!((approx[0] - want[0]).abs() / want[0] < 1e-4);
        assert!(approx[10] < 1e-3 * want[0], "{}", approx[10]);
        assert!(approx[2] > 0.5 * want[2], "{} vs {}", approx[2], want[2]);
        // All zeros: p zeros.
        let z = Mat::<f32>::zeros(300, 200);
        assert_eq!(
            preview_values(z.as_ref(), Par::Seq).unwrap(),
            vec![0.0; 200]
        );
        // NaN: the same error as the exact path.
        let mut bad = gaussian(64, 64, 4);
        bad[(3, 5)] = f32::NAN;
        let e = preview_values(bad.as_ref(), Par::Seq).unwrap_err();
        assert!(
            matches!(e, SpectrumError::NonFinite { count: 1, .. }),
            "{e}"
        );
        let empty = Mat::<f32>::zeros(0, 10);
        assert!(preview_values(empty.as_ref(), Par::Seq).is_err());
    }

    #[test]
    fn the_same_block_previews_the_same_way_twice() {
        let m = gaussian(700, 900, 5);
        let par = Par::rayon(2);
        assert_eq!(
            preview_values(m.as_ref(), par).unwrap(),
            preview_values(m.as_ref(), par).unwrap()
        );
    }

    #[test]
    fn the_jackson_kernel_starts_at_one_and_decays_to_zero() {
        let g = jackson(48);
        assert!((g[0] - 1.0).abs() < 1e-12);
        assert!(g.windows(2).all(|w| w[1] <= w[0] + 1e-12));
        assert!(g[47] < 0.01 && g[47] > 0.0);
    }
}
