//! Heavy-tail metrics of an ESD: WeightWatcher's power-law fit (α) and the norms built on it.
//!
//! The empirical spectral density is λᵢ = νᵢ² (not normalised: α does not depend on the
//! scale). Definitions follow WeightWatcher 0.7.7's default `analyze()` (`WW_powerlaw.WWFit`,
//! `weightwatcher.fit_powerlaw` and `apply_norm_metrics`), so that the numbers agree:
//!
//! - Only λ > 10⁻⁵ enter the fit (WeightWatcher's `EVALS_THRESH`, an absolute threshold).
//! - With λ sorted ascending (x₀ ≤ … ≤ x_{N−1}), every xᵢ but the largest is a candidate xmin.
//!   For each, n = N − i, α = 1 + n / Σ_{j≥i} ln(xⱼ/xᵢ), and if α > 1
//!   D = max_{k<n} |1 − (x_{i+k}/xᵢ)^{1−α} − k/n| (else D = 1). The xmin of least D wins (the
//!   first one on ties).
//! - Below N = 20 (WeightWatcher's small-N fit) only tails of at least 8 values are candidates,
//!   α is bias-corrected, α = 1 + (n − 1)/Σ ln(xⱼ/xᵢ), tails with Σ ln ≤ 10⁻¹² are skipped, and
//!   again the least D wins: WeightWatcher computes the objective D − 0.868/√n but its `WWFit`
//!   constructor then re-selects by least D, which is what it reports. When no tail qualifies,
//!   the whole ESD is the tail.
//!
//! Cost: the D of every candidate is a scan of its tail, O(N²) in all, but each scan stops as
//! soon as one point (tried coarse to fine) already exceeds the best D so far; 2048 values
//! take well under a millisecond.

use serde::{Deserialize, Serialize};

/// WeightWatcher's `EVALS_THRESH`: eigenvalues at or below it are left out of the fit.
pub const EVALS_THRESH: f64 = 1e-5;
/// Fewest eigenvalues WeightWatcher analyses (`DEFAULT_MIN_EVALS`).
pub const MIN_EVALS: usize = 8;
/// Below this many eigenvalues the small-N fit is used (`SMALL_N_CUTOFF`).
pub const SMALL_N_CUTOFF: usize = 20;
/// Smallest tail the small-N fit considers (`k_min`).
pub const SMALL_N_MIN_TAIL: usize = 8;
/// α below this: over-trained (`OVER_TRAINED_THRESH`).
pub const OVER_TRAINED: f64 = 2.0;
/// α above this: under-trained (`UNDER_TRAINED_THRESH`).
pub const UNDER_TRAINED: f64 = 6.0;

/// A power law p(λ) ∝ λ^{−α} fitted to the tail λ ≥ xmin of an ESD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerLawFit {
    /// The exponent α.
    pub alpha: f64,
    /// Start of the tail, in λ = ν² units.
    pub xmin: f64,
    /// KS distance D between the tail and the fitted law.
    pub d: f64,
    /// Number of eigenvalues in the tail (λ ≥ xmin).
    pub n_tail: usize,
    /// Fitted by the small-N variant (fewer than 20 eigenvalues).
    pub small_n: bool,
}

/// WeightWatcher's verdict on α.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Warning {
    /// α < 2: the layer may be over-trained (or over-regularised).
    #[serde(rename = "over-trained")]
    OverTrained,
    /// α > 6: the layer looks under-trained (close to random).
    #[serde(rename = "under-trained")]
    UnderTrained,
}

impl Warning {
    /// WeightWatcher's warning for `alpha`, if any.
    pub fn of(alpha: f64) -> Option<Self> {
        if alpha < OVER_TRAINED {
            Some(Self::OverTrained)
        } else if alpha > UNDER_TRAINED {
            Some(Self::UnderTrained)
        } else {
            None
        }
    }

    /// "over-trained" or "under-trained".
    pub fn label(self) -> &'static str {
        match self {
            Self::OverTrained => "over-trained",
            Self::UnderTrained => "under-trained",
        }
    }
}

/// The heavy-tail metrics of one block (σ-free: they depend on the values only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeavyTail {
    /// The power-law fit, or why none was made.
    pub fit: Result<PowerLawFit, String>,
    /// log10 Σλ (log of the squared Frobenius norm).
    pub log_norm: f64,
    /// log10 λmax (log of the squared spectral norm).
    pub log_spectral_norm: f64,
    /// Matrix entropy −Σ pᵢ ln pᵢ / ln r, pᵢ = λᵢ/Σλ, r the numerical rank (in [0, 1]).
    pub entropy: f64,
}

impl HeavyTail {
    /// The metrics of singular values `values` (any order) of a block whose long side is `q`.
    pub fn new(values: &[f64], q: usize) -> Self {
        let evals: Vec<f64> = values.iter().map(|v| v * v).collect();
        let norm: f64 = evals.iter().sum();
        let max = evals.iter().copied().fold(0.0, f64::max);
        Self {
            fit: fit_power_law(&evals),
            log_norm: norm.log10(),
            log_spectral_norm: max.log10(),
            entropy: matrix_entropy(values, q),
        }
    }

    /// α, when the fit succeeded.
    pub fn alpha(&self) -> Option<f64> {
        self.fit.as_ref().ok().map(|f| f.alpha)
    }

    /// α · log10 λmax (WeightWatcher's `alpha_weighted`).
    pub fn alpha_weighted(&self) -> Option<f64> {
        self.alpha().map(|a| a * self.log_spectral_norm)
    }

    /// log10 Σ λᵢ^α (WeightWatcher's `log_alpha_norm`), from the singular values.
    pub fn log_alpha_norm(&self, values: &[f64]) -> Option<f64> {
        let a = self.alpha()?;
        Some(values.iter().map(|v| (v * v).powf(a)).sum::<f64>().log10())
    }

    /// WeightWatcher's warning for α.
    pub fn warning(&self) -> Option<Warning> {
        self.alpha().and_then(Warning::of)
    }
}

/// WeightWatcher's matrix entropy of singular values `sv` of a block whose long side is `q`:
/// pᵢ = νᵢ²/Σν² + ε, r = #{νᵢ > tol} + ε, entropy = −Σ pᵢ ln pᵢ / ln r (ε = 10⁻¹⁰).
///
/// WeightWatcher's rank tolerance is ν₁·q·ε_f64, made for LAPACK's SVD; it counts values at the
/// rounding-noise level (10⁻⁸·ν₁ for f32 weights) as rank. The Gram-based values resolve
/// nothing below ~√ε·ν₁ (they come out near it, or 0), so the tolerance here is
/// ν₁·max(q·ε_f64, 10⁻⁶): the same rank as WeightWatcher's for every block that is not
/// rank-deficient, and the true rank for one that is.
pub fn matrix_entropy(sv: &[f64], q: usize) -> f64 {
    const EPSILON: f64 = 1e-10;
    let top = sv.iter().copied().fold(0.0, f64::max);
    let tol = top * (q as f64 * f64::EPSILON).max(1e-6);
    let rank = sv.iter().filter(|&&s| s > tol).count() as f64 + EPSILON;
    let total: f64 = sv.iter().map(|s| s * s).sum();
    let h: f64 = sv
        .iter()
        .map(|s| {
            let p = s * s / total + EPSILON;
            -p * p.ln()
        })
        .sum();
    h / rank.ln()
}

/// Fits a power law to the tail of the eigenvalues `evals` (any order), as WeightWatcher does.
///
/// `Err` says why no α exists: fewer than 8 eigenvalues above 10⁻⁵, or no candidate tail with
/// α > 1.
pub fn fit_power_law(evals: &[f64]) -> Result<PowerLawFit, String> {
    let mut x: Vec<f64> = evals
        .iter()
        .copied()
        .filter(|&l| l > EVALS_THRESH && l.is_finite())
        .collect();
    let n_all = x.len();
    if n_all < MIN_EVALS {
        return Err(format!(
            "{n_all} eigenvalues above {EVALS_THRESH:e}: a power law needs at least {MIN_EVALS}"
        ));
    }
    x.sort_by(f64::total_cmp);
    let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    // suffix[i] = Σ_{j ≥ i} ln xⱼ.
    let mut suffix = vec![0.0; n_all + 1];
    for i in (0..n_all).rev() {
        suffix[i] = suffix[i + 1] + logs[i];
    }
    let small_n = n_all < SMALL_N_CUTOFF;
    let candidates = n_all - 1;
    let mut alphas = vec![0.0; candidates];
    let alpha_at = |i: usize| -> Option<f64> {
        let n = (n_all - i) as f64;
        let s = suffix[i] - n * logs[i];
        let alpha = if small_n {
            if n_all - i < SMALL_N_MIN_TAIL || s <= 1e-12 {
                return None;
            }
            1.0 + (n - 1.0) / s
        } else {
            if s.is_nan() || s <= 0.0 {
                // A tail of equal values: α would be infinite (WeightWatcher's D is then
                // (n − 1)/n, never the least unless every tail is degenerate).
                return None;
            }
            1.0 + n / s
        };
        Some(alpha)
    };
    for (i, a) in alphas.iter_mut().enumerate() {
        *a = alpha_at(i).unwrap_or(0.0);
    }
    let valid = |i: usize| alphas[i] > 1.0;
    let any = (0..candidates).any(valid);
    // WeightWatcher keeps the first candidate of least D. A candidate before the best so far
    // wins a tie, one after it does not, so each is rejected as soon as its D is known to
    // reach (or, before the best, exceed) the best D.
    let mut best: Option<(usize, f64)> = None;
    let consider = |i: usize, best: &mut Option<(usize, f64)>| {
        let (bound, strict) = match *best {
            None => (f64::INFINITY, false),
            Some((j, _)) if j == i => return,
            Some((j, d)) => (d, i < j),
        };
        if let Some(d) = tail_ks(&logs[i..], alphas[i], bound, strict) {
            *best = Some((i, d));
        }
    };
    // A sparse first pass finds a good bound early, so the full pass rejects most candidates
    // after a few points of their tail.
    let stride = (candidates / 64).max(1);
    for i in (0..candidates).step_by(stride).filter(|&i| valid(i)) {
        consider(i, &mut best);
    }
    for i in (0..candidates).filter(|&i| valid(i)) {
        consider(i, &mut best);
    }
    if small_n && !any {
        // WeightWatcher's fallback: the whole ESD as the tail.
        let n = n_all as f64;
        let s = suffix[0] - n * logs[0];
        if s > 1e-12 {
            let alpha = 1.0 + (n - 1.0) / s;
            alphas[0] = alpha;
            if alpha > 1.0 {
                best = tail_ks(&logs, alpha, f64::INFINITY, false).map(|d| (0, d));
            }
        }
    }
    let Some((i, d)) = best else {
        return Err(
            "no power-law tail: every candidate xmin gives α ≤ 1 or a tail of equal values".into(),
        );
    };
    Ok(PowerLawFit {
        alpha: alphas[i],
        xmin: x[i],
        d,
        n_tail: n_all - i,
        small_n,
    })
}

/// D = max_k |1 − (x_k/x₀)^{1−α} − k/n| over the tail whose logs are `logs` (ascending), or
/// `None` as soon as D is known to reach `bound` (exceed it, when `strict`). Points are tried
/// coarse to fine so that a poor fit is rejected after a few.
fn tail_ks(logs: &[f64], alpha: f64, bound: f64, strict: bool) -> Option<f64> {
    let n = logs.len();
    let nf = n as f64;
    let l0 = logs[0];
    let e = 1.0 - alpha;
    let dev = |k: usize| (1.0 - (e * (logs[k] - l0)).exp() - k as f64 / nf).abs();
    let out = |d: f64| if strict { d > bound } else { d >= bound };
    let mut d: f64 = 0.0;
    // Coarse passes: 8, then 64 evenly spaced points.
    for parts in [8, 64] {
        let stride = n / parts;
        if stride > 1 {
            for k in (stride / 2..n).step_by(stride) {
                d = d.max(dev(k));
                if out(d) {
                    return None;
                }
            }
        }
    }
    for k in 0..n {
        d = d.max(dev(k));
        if out(d) {
            return None;
        }
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward O(N²) search, as WeightWatcher writes it.
    fn reference(evals: &[f64]) -> (f64, f64, f64) {
        let mut x: Vec<f64> = evals
            .iter()
            .copied()
            .filter(|&l| l > EVALS_THRESH)
            .collect();
        x.sort_by(f64::total_cmp);
        let n_all = x.len();
        let mut best = (f64::INFINITY, 0.0, 0.0);
        for i in 0..n_all - 1 {
            let n = (n_all - i) as f64;
            let s: f64 = x[i..].iter().map(|v| (v / x[i]).ln()).sum();
            let alpha = 1.0 + n / s;
            let d = if alpha > 1.0 {
                x[i..]
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (1.0 - (v / x[i]).powf(1.0 - alpha) - k as f64 / n).abs())
                    .fold(0.0, f64::max)
            } else {
                1.0
            };
            if d < best.0 {
                best = (d, alpha, x[i]);
            }
        }
        best
    }

    /// Pareto samples with exponent α (density ∝ x^{−α} on [1, ∞)) by inverse CDF.
    fn pareto(n: usize, alpha: f64, seed: u64) -> Vec<f64> {
        let mut rng = crate::rng::Rng::new(seed);
        (0..n)
            .map(|_| (1.0 - rng.uniform()).powf(-1.0 / (alpha - 1.0)))
            .collect()
    }

    #[test]
    fn pruned_search_matches_the_plain_one() {
        for (n, alpha, seed) in [(2048, 2.5, 1), (300, 4.0, 2), (64, 3.0, 3), (1000, 1.8, 4)] {
            let ev = pareto(n, alpha, seed);
            let fit = fit_power_law(&ev).unwrap();
            let (d, a, xmin) = reference(&ev);
            assert!((fit.d - d).abs() < 1e-12, "n {n}: D {} vs {d}", fit.d);
            assert!(
                (fit.alpha - a).abs() < 1e-9 * a,
                "n {n}: α {} vs {a}",
                fit.alpha
            );
            assert_eq!(fit.xmin, xmin);
        }
    }

    #[test]
    fn pareto_tails_recover_their_alpha() {
        for alpha in [1.5, 2.0, 3.0, 5.0] {
            let fit = fit_power_law(&pareto(4000, alpha, 9)).unwrap();
            assert!(
                (fit.alpha / alpha - 1.0).abs() < 0.1,
                "α {} for planted {alpha}",
                fit.alpha
            );
            assert!(fit.d < 0.05, "D {}", fit.d);
        }
    }

    #[test]
    fn small_spectra_use_the_small_n_fit_or_say_why_not() {
        let fit = fit_power_law(&pareto(16, 3.0, 5)).unwrap();
        assert!(fit.small_n && fit.n_tail >= SMALL_N_MIN_TAIL, "{fit:?}");
        let few = fit_power_law(&[1.0, 2.0, 3.0]).unwrap_err();
        assert!(few.contains("at least 8"), "{few}");
        let flat = fit_power_law(&[2.0; 30]).unwrap_err();
        assert!(flat.contains("α ≤ 1"), "{flat}");
    }

    #[test]
    fn warnings_follow_weightwatchers_thresholds() {
        assert_eq!(Warning::of(1.9), Some(Warning::OverTrained));
        assert_eq!(Warning::of(4.0), None);
        assert_eq!(Warning::of(6.5), Some(Warning::UnderTrained));
        assert_eq!(
            serde_json::to_string(&Warning::OverTrained).unwrap(),
            "\"over-trained\""
        );
    }

    #[test]
    fn entropy_is_one_for_a_flat_spectrum_and_low_for_a_spike() {
        let flat = matrix_entropy(&[1.0; 100], 100);
        assert!((flat - 1.0).abs() < 1e-4, "{flat}");
        let mut spiked = vec![1e-3; 100];
        spiked[0] = 10.0;
        assert!(matrix_entropy(&spiked, 100) < 0.05);
    }
}
