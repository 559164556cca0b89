//! The cost model: floating-point operations of one job, from its block's shape alone.
//!
//! For a p × q block (p = short side, q = long side), counting a multiply-add as two:
//! - values (`fast`): the Gram matrix of the short side, p²·q (symmetric, half of 2p²q), plus
//!   its reduction to tridiagonal form, 4p³/3 (the tridiagonal QL is O(p²), left out);
//! - values (`precise`): the bidiagonal SVD, 4p²q − 4p³/3;
//! - singular vectors (`vector_p`, head blocks): the Gram matrix p²q, its eigenvectors ~9p³,
//!   the right vectors Aᵀ·U, 2p²q, and sorting each of the p vectors of length q for its KS
//!   test, p·q·log₂q;
//! - `--randomize` adds the values of the shuffled block once more.
//!
//! The model ranks jobs and balances shards; `plan` turns it into seconds with a measured
//! rate. Only relative costs matter for balance, so constants off by a few percent move
//! nothing.

use crate::scan::{ComputeOptions, Job};
use crate::spectrum::Precision;

/// Floating-point operations of the values of a p × q block (p ≤ q).
fn values(p: u128, q: u128, precision: Precision) -> u128 {
    match precision {
        Precision::Fast => p * p * q + 4 * p * p * p / 3,
        Precision::Precise => 4 * p * p * q - 4 * p * p * p / 3,
    }
}

/// Floating-point operations of the values and right singular vectors with their KS tests.
fn with_vectors(p: u128, q: u128) -> u128 {
    let log_q = 128 - q.max(2).leading_zeros() as u128;
    p * p * q + 9 * p * p * p + 2 * p * p * q + p * q * log_q
}

/// Estimated floating-point operations of `job` under `opts`.
pub fn flops(job: &Job, opts: &ComputeOptions) -> u128 {
    shape_flops(job.block.rows, job.block.cols, job.vectors, opts)
}

/// Estimated floating-point operations of a `rows` × `cols` block, with its singular-vector
/// test when `vectors`.
pub fn shape_flops(rows: usize, cols: usize, vectors: bool, opts: &ComputeOptions) -> u128 {
    let (r, c) = (rows as u128, cols as u128);
    let (p, q) = (r.min(c), r.max(c));
    let mut f = if vectors {
        // Precise recomputes the values by SVD after the vectors' Gram path.
        with_vectors(p, q)
            + match opts.precision {
                Precision::Fast => 0,
                Precision::Precise => values(p, q, Precision::Precise),
            }
    } else {
        values(p, q, opts.precision)
    };
    if opts.randomize {
        f += values(p, q, opts.precision);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_plus_reduction_of_a_square_block() {
        // 2048²: Gram 2048³, reduction 4/3·2048³.
        let p = 2048u128;
        assert_eq!(values(p, p, Precision::Fast), p * p * p + 4 * p * p * p / 3);
        // A wide block costs the same as its transpose.
        assert_eq!(
            values(512, 2048, Precision::Fast),
            512 * 512 * 2048 + 4 * 512 * 512 * 512 / 3
        );
        // Vectors cost more than values; precise more than fast.
        assert!(with_vectors(128, 8192) > values(128, 8192, Precision::Fast));
        assert!(values(512, 2048, Precision::Precise) > values(512, 2048, Precision::Fast));
    }
}
