//! How far the top singular subspace moved: the top-k right singular vectors of a block, found
//! from its short side's Gram matrix (cheap: k vectors, not the whole basis), and the overlap
//! which [`super::delta::subspace_overlap`] compares.
//!
//! The vectors are computed apart from the block's spectrum, so that a spectrum read back from
//! the cache (which keeps values, not vectors) and a freshly computed one give the same
//! overlap, bit for bit.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};

/// Values at or below this fraction of ν₁ have no reliable vector (as in the spectrum engine's
/// `values_and_right_vectors`) and are left out.
const CUT: f64 = 1e-6;

/// The right singular vectors (length `cols`, unit norm) of the `k` largest singular values of
/// `m`, descending; fewer when `m` has fewer values above `CUT`·ν₁.
///
/// From the short side's f64 Gram matrix: for a p × q block with p ≤ q (a query head, 64 ×
/// 2048), G = WWᵀ = UΛUᵀ and vᵢ = Wᵀuᵢ/νᵢ; for a tall one (an output head), G = WᵀW and its
/// eigenvectors are the vᵢ themselves.
pub fn top_right_vectors(m: MatRef<'_, f64>, k: usize) -> Result<Vec<Vec<f64>>, String> {
    let wide = m.nrows() <= m.ncols();
    let a = if wide { m } else { m.transpose() };
    let p = a.nrows();
    if p == 0 || k == 0 {
        return Ok(Vec::new());
    }
    // The lower triangle only: all the eigensolver reads.
    let mut g = Mat::<f64>::zeros(p, p);
    triangular::matmul(
        g.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        a,
        BlockStructure::Rectangular,
        a.transpose(),
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
    let mut u = Mat::<f64>::zeros(p, p);
    let mut s = Diag::<f64>::zeros(p);
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        p,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        g.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|_| format!("the eigensolver did not converge on a {p}² Gram matrix"))?;
    // faer's eigenvalues ascend: the largest come last.
    let values: Vec<f64> = s
        .column_vector()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .collect();
    let top = values.iter().copied().fold(0.0, f64::max);
    let chosen: Vec<usize> = (0..p)
        .rev()
        .filter(|&i| values[i] > CUT * top)
        .take(k)
        .collect();
    if !wide {
        return Ok(chosen
            .iter()
            .map(|&i| u.col(i).iter().copied().collect())
            .collect());
    }
    let uk = Mat::<f64>::from_fn(p, chosen.len(), |r, c| {
        u[(r, chosen[c])] / values[chosen[c]]
    });
    let mut v = Mat::<f64>::zeros(a.ncols(), chosen.len());
    matmul(
        v.as_mut(),
        Accum::Replace,
        a.transpose(),
        uk.as_ref(),
        1.0,
        Par::Seq,
    );
    Ok((0..chosen.len())
        .map(|c| v.col(c).iter().copied().collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::delta;
    use crate::rng::Rng;
    use crate::spectrum::values_and_right_vectors;

    /// A noise block with `spikes` rank-one updates of decreasing strength.
    fn spiked(rows: usize, cols: usize, spikes: usize, seed: u64) -> Mat<f64> {
        let mut rng = Rng::new(seed);
        let mut m = Mat::<f64>::from_fn(rows, cols, |_, _| rng.normal());
        for s in 0..spikes {
            let x: Vec<f64> = (0..rows).map(|_| rng.normal()).collect();
            let y: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
            let w = 4.0 / (s + 1) as f64 / ((rows * cols) as f64).sqrt().sqrt();
            for j in 0..cols {
                for i in 0..rows {
                    m[(i, j)] += w * x[i] * y[j] * 3.0;
                }
            }
        }
        m
    }

    /// The overlap as the comparison computed it before the cache: every right vector from the
    /// spectrum engine, the top k kept.
    fn engine_overlap(a: MatRef<'_, f64>, b: MatRef<'_, f64>, k: usize) -> Option<f64> {
        let top = |m: MatRef<'_, f64>| {
            let mut pairs: Vec<(f64, Vec<f64>)> = Vec::new();
            values_and_right_vectors(m, Par::Seq, |nu, v| pairs.push((nu, v.to_vec()))).unwrap();
            pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
            pairs.into_iter().take(k).map(|p| p.1).collect::<Vec<_>>()
        };
        delta::subspace_overlap(&top(a), &top(b))
    }

    #[test]
    fn top_vectors_are_unit_right_singular_vectors() {
        for (rows, cols) in [(16, 96), (96, 16), (40, 40)] {
            let m = spiked(rows, cols, 2, 7);
            let v = top_right_vectors(m.as_ref(), 3).unwrap();
            assert_eq!(v.len(), 3);
            for x in &v {
                assert_eq!(x.len(), cols);
                let n: f64 = x.iter().map(|t| t * t).sum();
                assert!((n - 1.0).abs() < 1e-10, "{rows}x{cols}: |v|² = {n}");
            }
            // Orthonormal: the overlap of a set with itself is 1.
            let self_overlap = delta::subspace_overlap(&v, &v).unwrap();
            assert!((self_overlap - 1.0).abs() < 1e-10);
        }
    }

    #[test]
    fn the_overlap_agrees_with_the_engines_vectors() {
        for (rows, cols) in [(32, 256), (256, 32), (64, 64)] {
            let base = spiked(rows, cols, 3, 1);
            let mut other = base.clone();
            let nudge = spiked(rows, cols, 2, 2);
            for j in 0..cols {
                for i in 0..rows {
                    other[(i, j)] += 0.3 * nudge[(i, j)];
                }
            }
            for k in [1, 2, 3] {
                let (a, b) = (
                    top_right_vectors(base.as_ref(), k).unwrap(),
                    top_right_vectors(other.as_ref(), k).unwrap(),
                );
                let ours = delta::subspace_overlap(&a, &b).unwrap();
                let engine = engine_overlap(base.as_ref(), other.as_ref(), k).unwrap();
                assert!(
                    (ours - engine).abs() < 1e-10,
                    "{rows}x{cols} k={k}: {ours} against {engine}"
                );
                assert!(ours > 0.0 && ours < 1.0, "{ours}");
            }
        }
    }

    #[test]
    fn a_zero_block_has_no_vectors() {
        let z = Mat::<f64>::zeros(8, 20);
        assert!(top_right_vectors(z.as_ref(), 2).unwrap().is_empty());
    }
}
