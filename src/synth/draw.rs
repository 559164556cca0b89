//! Row-by-row generation of one logical matrix: bulk draws, low-rank collapse parts and
//! rank-one spikes. Every row has its own random stream, so the values do not depend on
//! how rows are spread over threads.

use crate::rng::{Rng, fnv1a};

use super::recipe::Bulk;

/// How one entry is drawn: `offset + scale · unit`, unit by kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Draw {
    kind: Kind,
    offset: f64,
    scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Uniform on [−1, 1).
    Uniform,
    /// Standard normal.
    Normal,
    /// Student-t(dof), not rescaled.
    StudentT(u32),
}

impl Draw {
    /// A bulk of distribution `bulk` with entry standard deviation `sigma`.
    pub(crate) fn bulk(bulk: Bulk, sigma: f64) -> Self {
        match bulk {
            Bulk::KaimingUniform => Draw {
                kind: Kind::Uniform,
                offset: 0.0,
                scale: 3f64.sqrt() * sigma,
            },
            Bulk::Gaussian => Draw::normal(0.0, sigma),
            Bulk::StudentT { dof } => {
                let var = dof as f64 / (dof as f64 - 2.0);
                Draw {
                    kind: Kind::StudentT(dof),
                    offset: 0.0,
                    scale: sigma / var.sqrt(),
                }
            }
        }
    }

    /// Normal(offset, sd²).
    pub(crate) fn normal(offset: f64, sd: f64) -> Self {
        Draw {
            kind: Kind::Normal,
            offset,
            scale: sd,
        }
    }

    #[inline]
    fn fill(&self, rng: &mut Rng, out: &mut [f64]) {
        let (o, s) = (self.offset, self.scale);
        match self.kind {
            Kind::Uniform => out
                .iter_mut()
                .for_each(|x| *x = o + s * (2.0 * rng.uniform() - 1.0)),
            Kind::Normal => out.iter_mut().for_each(|x| *x = o + s * rng.normal()),
            Kind::StudentT(d) => out.iter_mut().for_each(|x| *x = o + s * rng.student_t(d)),
        }
    }
}

/// Whether head blocks are row bands (q, k, v) or column bands (o).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Head h = rows h·d…(h+1)·d.
    Rows,
    /// Head h = columns h·d…(h+1)·d.
    Cols,
}

/// Per-head bulk overrides.
#[derive(Debug, Clone)]
pub(crate) struct HeadDraws {
    pub axis: Axis,
    pub d: usize,
    pub draws: Vec<Option<Draw>>,
}

/// coef · A Bᵀ added on rows r0…r0+nr, columns c0…c0+nc; A is nr×rank, B is nc×rank.
#[derive(Debug, Clone)]
pub(crate) struct LowRank {
    pub r0: usize,
    pub c0: usize,
    pub rank: usize,
    pub coef: f64,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
}

/// θ·u vᵀ added on rows r0…r0+len(u), columns c0…c0+len(v).
#[derive(Debug, Clone)]
pub(crate) struct Rank1 {
    pub theta: f64,
    pub r0: usize,
    pub c0: usize,
    pub u: Vec<f64>,
    pub v: Vec<f64>,
}

/// Columns c0…c0+len(s) of rows r0…r0+nr multiplied by s (applied after bulk and low rank,
/// before spikes).
#[derive(Debug, Clone)]
pub(crate) struct ColScale {
    pub r0: usize,
    pub nr: usize,
    pub c0: usize,
    pub s: Vec<f64>,
}

/// Log-normal column scales: n values exp(τ z), rescaled to mean square 1.
pub(crate) fn lognormal_scales(rng: &mut Rng, n: usize, tau: f64) -> Vec<f64> {
    let mut s: Vec<f64> = (0..n).map(|_| (tau * rng.normal()).exp()).collect();
    let ms = s.iter().fold(0.0, |a, x| a + x * x) / n.max(1) as f64;
    if ms > 0.0 {
        let k = ms.sqrt();
        s.iter_mut().for_each(|x| *x /= k);
    }
    s
}

/// Everything needed to produce any row of one logical matrix.
#[derive(Debug, Clone)]
pub(crate) struct GenPlan {
    pub seed: u64,
    pub base: Draw,
    pub heads: Option<HeadDraws>,
    pub low_rank: Vec<LowRank>,
    pub col_scales: Vec<ColScale>,
    pub spikes: Vec<Rank1>,
}

impl GenPlan {
    /// Plain iid matrix (or vector when rows = 1).
    pub(crate) fn plain(seed: u64, base: Draw) -> Self {
        GenPlan {
            seed,
            base,
            heads: None,
            low_rank: Vec::new(),
            col_scales: Vec::new(),
            spikes: Vec::new(),
        }
    }

    /// Writes row `i` (f64, before any rounding) into `out` (one value per column).
    pub(crate) fn row(&self, i: usize, out: &mut [f64]) {
        let mut rng = Rng::stream(self.seed, i as u64);
        match &self.heads {
            None => self.base.fill(&mut rng, out),
            Some(hd) => match hd.axis {
                Axis::Rows => {
                    let draw = hd
                        .draws
                        .get(i / hd.d)
                        .copied()
                        .flatten()
                        .unwrap_or(self.base);
                    draw.fill(&mut rng, out);
                }
                Axis::Cols => {
                    for (h, seg) in out.chunks_mut(hd.d).enumerate() {
                        let draw = hd.draws.get(h).copied().flatten().unwrap_or(self.base);
                        draw.fill(&mut rng, seg);
                    }
                }
            },
        }
        for lr in &self.low_rank {
            let nr = lr.a.len() / lr.rank;
            if i < lr.r0 || i >= lr.r0 + nr {
                continue;
            }
            let a = &lr.a[(i - lr.r0) * lr.rank..][..lr.rank];
            for (x, b) in out[lr.c0..].iter_mut().zip(lr.b.chunks_exact(lr.rank)) {
                let dot: f64 = a.iter().zip(b).fold(0.0, |s, (p, q)| s + p * q);
                *x += lr.coef * dot;
            }
        }
        for cs in &self.col_scales {
            if i < cs.r0 || i >= cs.r0 + cs.nr {
                continue;
            }
            for (x, s) in out[cs.c0..].iter_mut().zip(&cs.s) {
                *x *= s;
            }
        }
        for sp in &self.spikes {
            if i < sp.r0 || i >= sp.r0 + sp.u.len() {
                continue;
            }
            let ui = sp.theta * sp.u[i - sp.r0];
            for (x, v) in out[sp.c0..].iter_mut().zip(&sp.v) {
                *x += ui * v;
            }
        }
    }
}

/// `count` orthonormal random vectors of length `n` from `rng` (Gram–Schmidt on Gaussians).
pub(crate) fn orthonormal(rng: &mut Rng, count: usize, n: usize) -> Vec<Vec<f64>> {
    orthonormal_shaped(rng, count, n, None)
}

/// Like [`orthonormal`], each Gaussian first multiplied entrywise by `shape` (length `n`), so
/// the vectors concentrate where `shape` is large.
pub(crate) fn orthonormal_shaped(
    rng: &mut Rng,
    count: usize,
    n: usize,
    shape: Option<&[f64]>,
) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(count);
    while out.len() < count {
        let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        if let Some(s) = shape {
            x.iter_mut().zip(s).for_each(|(a, b)| *a *= b);
        }
        for _ in 0..2 {
            for q in &out {
                let dot: f64 = x.iter().zip(q).fold(0.0, |s, (a, b)| s + a * b);
                x.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
            }
        }
        let norm = x.iter().fold(0.0, |s, a| s + a * a).sqrt();
        if norm > 1e-6 {
            x.iter_mut().for_each(|a| *a /= norm);
            out.push(x);
        }
    }
    out
}

/// The seed of the stream named `key` under the model seed.
pub(crate) fn key_seed(seed: u64, key: &str) -> u64 {
    Rng::stream(seed, fnv1a(key)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthonormal_vectors_are_orthonormal() {
        let v = orthonormal(&mut Rng::new(3), 4, 50);
        for i in 0..4 {
            for j in 0..4 {
                let d: f64 = v[i].iter().zip(&v[j]).map(|(a, b)| a * b).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn lognormal_scales_have_mean_square_one() {
        let s = lognormal_scales(&mut Rng::new(9), 500, 1.0);
        let ms = s.iter().map(|x| x * x).sum::<f64>() / 500.0;
        assert!((ms - 1.0).abs() < 1e-12, "{ms}");
        assert!(s.iter().all(|x| *x > 0.0));
        assert_eq!(s, lognormal_scales(&mut Rng::new(9), 500, 1.0));
    }

    #[test]
    fn student_t_draw_has_sigma() {
        let p = GenPlan::plain(1, Draw::bulk(Bulk::StudentT { dof: 5 }, 0.5));
        let mut row = vec![0.0; 100_000];
        p.row(0, &mut row);
        let rms = (row.iter().map(|x| x * x).sum::<f64>() / 1e5).sqrt();
        assert!((rms - 0.5).abs() < 0.02, "{rms}");
    }
}
