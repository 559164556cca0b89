//! Deviation scores of a spectrum from its Marchenko–Pastur law.

use serde::{Deserialize, Serialize};

use super::error::SpectrumError;
use super::mp::MpLaw;

/// How far a block's singular values sit from the MP law (p values ν₁ ≥ … ≥ ν_p, scale σ).
///
/// The Tracy–Widom scale in eigenvalue units of ν² is t = σ²(√q + √p)(1/√p + 1/√q)^{1/3};
/// in singular-value units it is s₊ = t/(2ν+) at the upper edge and s₋ = t/(2ν−) at the lower
/// edge (dν = dν²/2ν). The bulk is [ν− − 3s₋, ν+ + 3s₊].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// `ks = sup_ν |F_emp(ν) − F_MP(ν)|`, the Kolmogorov–Smirnov distance of the values from
    /// the MP CDF, in [0, 1]. The headline score.
    pub ks: f64,
    /// `above = #{i : ν_i > ν+ + 3s₊}`: values above the bulk edge by more than three
    /// Tracy–Widom scales.
    pub above: usize,
    /// `below = #{i : ν_i < ν− − 3s₋}`: values below the lower edge by more than three scales.
    /// Always 0 when ν− ≤ 3s₋, which includes every square block (ν− = 0, s₋ = ∞: the lower
    /// edge is the hard edge at 0 and nothing can lie below it) and nearly square ones.
    pub below: usize,
    /// `edge_ratio = ν₁ / ν+` (≈ 1 for a random block, large for a spiked one).
    pub edge_ratio: f64,
    /// `outlier_mass = Σ_{i above or below} ν_i² / Σ_i ν_i²`: the share of the block's energy
    /// outside the bulk, in [0, 1].
    pub outlier_mass: f64,
    /// `stable_rank = Σ_i ν_i² / ν₁²`, in [1, p].
    pub stable_rank: f64,
    /// `mp_softrank = λ+ / λmax = (ν+ / ν₁)²`: the MP bulk edge over the largest eigenvalue
    /// (1 or more for a random block, → 0 for a dominant spike).
    pub mp_softrank: f64,
    /// `vector_p = mean_i P(D ≥ D_i)`: the mean over the right singular vectors v_i (length n)
    /// of the Kolmogorov p-value of the KS statistic D_i of v_i's entries against N(0, 1/n)
    /// (CDF ½ + ½·erf(√(n/2)·x)). ≈ 0.5 for a random block, → 0 for learned structure.
    /// `None` when the vectors were not computed.
    pub vector_p: Option<f64>,
    /// The block is all zeros: every other score is 0 and means nothing.
    pub empty: bool,
}

impl Scores {
    /// The scores of an all-zero block: everything 0, `empty` set.
    pub fn empty() -> Self {
        Self {
            ks: 0.0,
            above: 0,
            below: 0,
            edge_ratio: 0.0,
            outlier_mass: 0.0,
            stable_rank: 0.0,
            mp_softrank: 0.0,
            vector_p: None,
            empty: true,
        }
    }
}

/// The bulk range [ν− − 3s₋, ν+ + 3s₊] in singular-value units (the lower end is −∞ for a
/// square block and may be ≤ 0 for a nearly square one: then nothing counts as below).
pub fn bulk_range(law: &MpLaw) -> (f64, f64) {
    (
        law.lower_edge() - 3.0 * law.lower_tw_scale(),
        law.upper_edge() + 3.0 * law.tw_scale(),
    )
}

/// KS distance sup |F_emp − F_MP| of values sorted ascending against `law`.
///
/// Exact, with few CDF evaluations: F is evaluated at every [`KS_STRIDE`]th value first, then
/// only inside stretches whose bound can beat the largest deviation found so far. F does not
/// decrease, so a value between two evaluated ones has F between theirs, and its deviation is
/// at most max(F(end) − (start+1)/n, end/n − F(start)). The result is the plain maximum over
/// every value, bit for bit.
pub fn ks_distance(ascending: &[f64], law: &MpLaw) -> f64 {
    ks_distance_hinted(ascending, law, &mut 0)
}

/// [`ks_distance`] that first evaluates the value at index `hint` (where a nearby law had its
/// largest deviation: a high first bound prunes more) and leaves there the index of this
/// law's largest deviation. The result does not depend on the hint.
pub(crate) fn ks_distance_hinted(ascending: &[f64], law: &MpLaw, hint: &mut usize) -> f64 {
    let n = ascending.len();
    let nf = n as f64;
    let cdf = law.cdf_fn();
    let dev = |i: usize, f: f64| (f - i as f64 / nf).max((i + 1) as f64 / nf - f);
    let finite = |v: Option<&f64>| v.is_none_or(|v| v.is_finite());
    // Sorted ascending (by value or total order), finite ends mean every value is finite.
    if n < 4 * KS_STRIDE || !finite(ascending.first()) || !finite(ascending.last()) {
        return ascending
            .iter()
            .enumerate()
            .map(|(i, &v)| dev(i, cdf.at(v)))
            .fold(0.0, f64::max);
    }
    let at = |i: usize| cdf.at(ascending[i]);
    // The largest deviation so far and where; ties keep the first found.
    let (mut best, mut arg) = (0f64, 0);
    macro_rules! note {
        ($i:expr, $f:expr) => {{
            let (i, d) = ($i, dev($i, $f));
            if d > best {
                (best, arg) = (d, i);
            }
        }};
    }
    let h = (*hint).min(n - 1);
    note!(h, at(h));
    let mut stretches = Vec::with_capacity(n / KS_STRIDE + 32);
    let (mut a, mut fa) = (0, at(0));
    note!(0, fa);
    while a < n - 1 {
        let b = (a + KS_STRIDE).min(n - 1);
        let fb = at(b);
        note!(b, fb);
        stretches.push((a, fa, b, fb));
        (a, fa) = (b, fb);
    }
    while let Some((a, fa, b, fb)) = stretches.pop() {
        if b - a < 2 {
            continue;
        }
        let bound = (fb - (a + 1) as f64 / nf).max(b as f64 / nf - fa);
        // The slack covers F's rounding, which may break monotonicity by an ulp or two.
        if bound + KS_SLACK <= best {
            continue;
        }
        let m = a + (b - a) / 2;
        let fm = at(m);
        note!(m, fm);
        stretches.push((a, fa, m, fm));
        stretches.push((m, fm, b, fb));
    }
    *hint = arg;
    best
}

/// Spacing of the first CDF evaluations of [`ks_distance`].
const KS_STRIDE: usize = 16;

/// How far the computed CDF may step backwards between increasing values (it is accurate
/// to ~1e-13, so this is generous).
const KS_SLACK: f64 = 1e-11;

#[cfg(test)]
fn ks_distance_plain(ascending: &[f64], law: &MpLaw) -> f64 {
    let n = ascending.len() as f64;
    let cdf = law.cdf_fn();
    ascending
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = cdf.at(v);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// Scores of the singular values `values` (any order) of a rows × cols block under scale
/// `sigma`; `vector_p` is left `None`.
///
/// An all-zero spectrum gives [`Scores::empty`] whatever σ; otherwise σ must be positive and
/// finite.
pub fn score(
    values: &[f64],
    rows: usize,
    cols: usize,
    sigma: f64,
) -> Result<Scores, SpectrumError> {
    let top = values.iter().copied().fold(0.0, f64::max);
    if top == 0.0 {
        return Ok(Scores::empty());
    }
    let law = MpLaw::new(sigma, rows, cols)?;
    let mut ascending = values.to_vec();
    ascending.sort_by(f64::total_cmp);
    let (lo, hi) = bulk_range(&law);
    let above = ascending.iter().filter(|&&v| v > hi).count();
    let below = if lo > 0.0 {
        ascending.iter().filter(|&&v| v < lo).count()
    } else {
        0
    };
    let energy: f64 = ascending.iter().map(|v| v * v).sum();
    // A fold from +0.0: `sum` of no values is −0.0, which would print as "-0.000".
    let outside = ascending
        .iter()
        .filter(|&&v| v > hi || (lo > 0.0 && v < lo))
        .fold(0.0f64, |acc, v| acc + v * v);
    Ok(Scores {
        ks: ks_distance(&ascending, &law),
        above,
        below,
        edge_ratio: top / law.upper_edge(),
        outlier_mass: outside / energy,
        stable_rank: energy / (top * top),
        mp_softrank: (law.upper_edge() / top).powi(2),
        vector_p: None,
        empty: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_distance_equals_the_plain_maximum_bit_for_bit() {
        // Noise spectra under the right σ and wrong ones, spiked, tied, piled at zero, tiny
        // and odd lengths: the pruned search must land on the plain maximum exactly.
        let mut rng = crate::rng::Rng::new(7);
        for &(p, q) in &[
            (64, 64),
            (65, 300),
            (192, 576),
            (576, 576),
            (576, 1536),
            (1000, 4000),
        ] {
            let m = faer::Mat::<f64>::from_fn(p, q, |_, _| rng.normal());
            let mut values = crate::spectrum::singular_values(
                m.as_ref(),
                crate::spectrum::Precision::Fast,
                faer::Par::Seq,
            )
            .unwrap();
            values.sort_by(f64::total_cmp);
            let mut spiked = values.clone();
            for v in spiked.iter_mut().rev().take(5) {
                *v *= 3.0;
            }
            let mut tied = values.clone();
            for c in tied.chunks_mut(7) {
                let x = c[0];
                c.fill(x);
            }
            let mut piled = values.clone();
            for v in piled.iter_mut().take(p / 3) {
                *v = 0.0;
            }
            for v in [&values, &spiked, &tied, &piled] {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                for sigma in [0.5, 0.9, 1.0, 1.02, 1.3, 3.0] {
                    let law = MpLaw::new(sigma, p, q).unwrap();
                    let plain = ks_distance_plain(&v, &law);
                    assert_eq!(ks_distance(&v, &law).to_bits(), plain.to_bits());
                    // Any hint gives the same, and is left where the largest deviation is.
                    for start in [0, p / 2, p - 1, 10 * p] {
                        let mut hint = start;
                        let d = ks_distance_hinted(&v, &law, &mut hint);
                        assert_eq!(d.to_bits(), plain.to_bits());
                        let f = law.cdf(v[hint]);
                        let n = v.len() as f64;
                        let at_hint = (f - hint as f64 / n).max((hint + 1) as f64 / n - f);
                        assert_eq!(at_hint.to_bits(), plain.to_bits());
                    }
                    assert_eq!(
                        ks_distance(&v[..v.len() - 1], &law).to_bits(),
                        ks_distance_plain(&v[..v.len() - 1], &law).to_bits()
                    );
                }
            }
        }
        let law = MpLaw::new(1.0, 100, 400).unwrap();
        let mut nan: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        nan.push(f64::NAN);
        assert_eq!(
            ks_distance(&nan, &law).to_bits(),
            ks_distance_plain(&nan, &law).to_bits()
        );
        assert_eq!(ks_distance(&[], &law), 0.0);
    }

    #[test]
    fn empty_block_scores_are_zero_not_nan() {
        let s = score(&[0.0; 4], 4, 8, 0.0).unwrap();
        assert!(s.empty);
        assert_eq!(s.ks, 0.0);
        for x in [s.ks, s.edge_ratio, s.outlier_mass, s.stable_rank] {
            assert_eq!(x, 0.0);
        }
    }

    #[test]
    fn invalid_sigma_on_nonempty_is_an_error() {
        assert!(score(&[1.0], 1, 1, 0.0).is_err());
        assert!(score(&[1.0], 1, 1, f64::NAN).is_err());
    }

    #[test]
    fn ks_of_exact_quantiles_is_half_a_step() {
        let law = MpLaw::new(1.0, 100, 100).unwrap();
        // Square: F(ν) = (sin θ + θ)/π with ν² = 2p(1 − cos θ); invert by bisection.
        let values: Vec<f64> = (0..100)
            .map(|i| {
                let t = (i as f64 + 0.5) / 100.0;
                let (mut a, mut b) = (0.0, law.upper_edge());
                for _ in 0..200 {
                    let m = (a + b) / 2.0;
                    if law.cdf(m) < t { a = m } else { b = m }
                }
                a
            })
            .collect();
        let s = score(&values, 100, 100, 1.0).unwrap();
        assert!((s.ks - 0.005).abs() < 1e-9, "{}", s.ks);
        assert_eq!((s.above, s.below), (0, 0));
    }

    #[test]
    fn counts_mass_and_ranks() {
        // 4 × 100, σ = 1: ν± = 10 ± 2, s ≈ small; one value at 20 (above), one at 1 (below).
        let law = MpLaw::new(1.0, 4, 100).unwrap();
        let (lo, hi) = bulk_range(&law);
        assert!(lo > 1.0 && hi < 20.0);
        let v = [20.0, 11.0, 9.0, 1.0];
        let s = score(&v, 4, 100, 1.0).unwrap();
        assert_eq!((s.above, s.below), (1, 1));
        assert!((s.outlier_mass - 401.0 / 603.0).abs() < 1e-12);
        assert!((s.stable_rank - 603.0 / 400.0).abs() < 1e-12);
        assert!((s.edge_ratio - 20.0 / 12.0).abs() < 1e-12);
        // Square: the lower edge is hard, nothing is below.
        let sq = score(&[3.0, 1e-9], 2, 2, 1.0).unwrap();
        assert_eq!(sq.below, 0);
    }

    #[test]
    fn no_outliers_means_a_positive_zero_share() {
        let mut rng = crate::rng::Rng::new(11);
        let w = faer::Mat::<f64>::from_fn(64, 1024, |_, _| rng.uniform_sym(1.0));
        let values = crate::spectrum::singular_values(
            w.as_ref(),
            crate::spectrum::Precision::Fast,
            faer::Par::Seq,
        )
        .unwrap();
        let sigma = crate::spectrum::entry_sigma(&values, 64, 1024);
        let s = score(&values, 64, 1024, sigma).unwrap();
        assert_eq!(
            s.above + s.below,
            0,
            "a uniform random block has no outliers"
        );
        assert!(s.outlier_mass == 0.0 && s.outlier_mass.is_sign_positive());
        assert_eq!(format!("{:.3}", s.outlier_mass), "0.000");
    }
}
