//! The shuffled control: the same block with its entries permuted, as a noise floor.
//!
//! Permuting a block's entries keeps their distribution (and so the `entry` σ) but destroys
//! every correlation between them, so the shuffle's spectrum is what this block would look
//! like with no learned structure at all. WeightWatcher's `randomize=True` draws the entries
//! with replacement from an unseeded generator; mpscope permutes them with a generator seeded
//! from the tensor and block names, so the control is the same on every run.

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use super::mp::MpLaw;
use super::scores::{bulk_range, ks_distance};
use super::sigma::entry_sigma;
use super::svd::Element;
use crate::rng::Rng;

/// What the shuffled control says about a block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// KS distance of the shuffled block's values from MP at the `entry` σ: the noise floor of
    /// `ks` for this shape and entry distribution.
    pub rand_ks: f64,
    /// Jensen–Shannon distance between the sorted ESDs of the block and of its shuffle, each
    /// normalised to sum to 1 (WeightWatcher's `rand_distance`), in [0, √ln 2].
    pub rand_distance: f64,
    /// Shuffled values above the MP edge by more than three Tracy–Widom scales (at the
    /// `entry` σ): WeightWatcher's correlation traps, structure that survives shuffling (a few
    /// huge entries).
    pub traps: usize,
}

impl Control {
    /// The control of a rows × cols block with singular values `values` whose shuffle has
    /// singular values `shuffled` (both any order); `None` for an all-zero block.
    pub fn new(values: &[f64], shuffled: &[f64], rows: usize, cols: usize) -> Option<Self> {
        let law = MpLaw::new(entry_sigma(shuffled, rows, cols), rows, cols).ok()?;
        let mut asc = shuffled.to_vec();
        asc.sort_by(f64::total_cmp);
        let (_, hi) = bulk_range(&law);
        Some(Self {
            rand_ks: ks_distance(&asc, &law),
            rand_distance: esd_distance(values, shuffled),
            traps: asc.iter().filter(|&&v| v > hi).count(),
        })
    }
}

/// Jensen–Shannon distance between the ascending eigenvalue vectors λ = ν² of `a` and `b`,
/// each read as a probability vector (WeightWatcher's `jensen_shannon_distance(evals,
/// rand_evals)`, natural logarithms).
pub fn esd_distance(a: &[f64], b: &[f64]) -> f64 {
    let prob = |v: &[f64]| {
        let mut l: Vec<f64> = v.iter().map(|x| x * x).collect();
        l.sort_by(f64::total_cmp);
        let s: f64 = l.iter().sum();
        l.iter_mut().for_each(|x| *x /= s);
        l
    };
    let (p, q) = (prob(a), prob(b));
    let kl = |x: &[f64], m: &[f64]| -> f64 {
        x.iter()
            .zip(m)
            .filter(|(xi, _)| **xi > 0.0)
            .map(|(xi, mi)| xi * (xi / mi).ln())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(x, y)| (x + y) / 2.0).collect();
    ((kl(&p, &m) + kl(&q, &m)) / 2.0).max(0.0).sqrt()
}

/// A copy of `m` with its entries permuted by a Fisher–Yates shuffle seeded with `seed`.
pub fn shuffled<S: Element>(m: MatRef<'_, S>, seed: u64) -> Mat<S> {
    let (rows, cols) = m.shape();
    let mut flat: Vec<S> = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        flat.extend((0..rows).map(|i| m[(i, j)]));
    }
    let mut rng = Rng::new(seed);
    for i in (1..flat.len()).rev() {
        let k = (rng.next_u64() % (i as u64 + 1)) as usize;
        flat.swap(i, k);
    }
    Mat::from_fn(rows, cols, |i, j| flat[j * rows + i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let m = Mat::<f64>::from_fn(7, 5, |i, j| (i * 5 + j) as f64);
        let a = shuffled(m.as_ref(), 3);
        let b = shuffled(m.as_ref(), 3);
        assert_eq!(a, b);
        assert_ne!(a, shuffled(m.as_ref(), 4));
        let mut entries: Vec<f64> = (0..7)
            .flat_map(|i| (0..5).map(move |j| (i, j)))
            .map(|(i, j)| a[(i, j)])
            .collect();
        entries.sort_by(f64::total_cmp);
        assert_eq!(entries, (0..35).map(|x| x as f64).collect::<Vec<_>>());
    }

    #[test]
    fn esd_distance_is_zero_for_equal_spectra_and_grows_apart() {
        let a = [3.0, 2.0, 1.0];
        assert!(esd_distance(&a, &a).abs() < 1e-15);
        let near = esd_distance(&a, &[3.1, 2.0, 0.9]);
        let far = esd_distance(&a, &[10.0, 0.1, 0.1]);
        assert!(near > 0.0 && far > near && far <= 2f64.ln().sqrt());
    }
}
