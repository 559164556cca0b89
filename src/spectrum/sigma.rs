//! The entry scale σ of the MP law, by three estimators the user can switch between.
//!
//! Every estimator works from (values, rows, cols) and the config, so switching modes never
//! recomputes a spectrum.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::mp::MpLaw;
use super::scores::{bulk_range, ks_distance, ks_distance_hinted};

/// Which estimator gives σ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigmaMode {
    /// σ = √(Σν² / (m n)), the RMS of the entries (no centring). Parameter-free.
    #[default]
    Entry,
    /// σ fitted to the bulk: outliers beyond the edges are dropped and σ minimises the KS
    /// distance of the rest, iterated until the kept set is stable.
    Fit,
    /// σ of the initialisation: `initializer_range` if the config gives one, else PyTorch's
    /// `nn.Linear` default 1/√(3·fan_in).
    Init,
}

impl SigmaMode {
    /// All modes, in the order the UI cycles through them.
    pub const ALL: [SigmaMode; 3] = [SigmaMode::Entry, SigmaMode::Fit, SigmaMode::Init];

    /// Lowercase name ("entry", "fit", "init").
    pub fn name(self) -> &'static str {
        match self {
            SigmaMode::Entry => "entry",
            SigmaMode::Fit => "fit",
            SigmaMode::Init => "init",
        }
    }

    /// The next mode in [`SigmaMode::ALL`], wrapping around.
    pub fn next(self) -> Self {
        match self {
            SigmaMode::Entry => SigmaMode::Fit,
            SigmaMode::Fit => SigmaMode::Init,
            SigmaMode::Init => SigmaMode::Entry,
        }
    }
}

impl fmt::Display for SigmaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A σ value together with the mode that produced it (always reported together).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sigma {
    /// The estimator used.
    pub mode: SigmaMode,
    /// The value of σ (0 only for an all-zero block in `entry`/`fit` mode).
    pub value: f64,
}

/// σ of each mode for one block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sigmas {
    /// `entry` σ.
    pub entry: f64,
    /// `fit` σ.
    pub fit: f64,
    /// `init` σ.
    pub init: f64,
    /// The `fit` estimator found no MP bulk: `fit` holds the `entry` σ.
    #[serde(default)]
    pub fit_failed: bool,
}

impl Sigmas {
    /// All three estimates for a block's values; `init` is the already-resolved init σ.
    pub fn estimate(values: &[f64], rows: usize, cols: usize, init: f64) -> Self {
        let fit = fit_sigma_checked(values, rows, cols);
        Self {
            entry: entry_sigma(values, rows, cols),
            fit: fit.sigma,
            init,
            fit_failed: fit.failed,
        }
    }

    /// The σ of `mode`.
    pub fn get(&self, mode: SigmaMode) -> Sigma {
        let value = match mode {
            SigmaMode::Entry => self.entry,
            SigmaMode::Fit => self.fit,
            SigmaMode::Init => self.init,
        };
        Sigma { mode, value }
    }
}

/// `entry` σ = √(Σν² / (rows·cols)) = ‖W‖_F / √(m n), the RMS of the entries.
pub fn entry_sigma(values: &[f64], rows: usize, cols: usize) -> f64 {
    let n = (rows * cols) as f64;
    if n == 0.0 {
        return 0.0;
    }
    (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt()
}

/// `init` σ: `initializer_range` when given (positive and finite), else 1/√(3·fan_in).
pub fn init_sigma(fan_in: usize, initializer_range: Option<f64>) -> f64 {
    match initializer_range {
        Some(r) if r.is_finite() && r > 0.0 => r,
        _ => 1.0 / (3.0 * fan_in.max(1) as f64).sqrt(),
    }
}

/// The outcome of the `fit` estimator: σ, or the admission that no MP bulk fits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SigmaFit {
    /// The fitted σ; the `entry` σ when the fit failed (0 for an all-zero block).
    pub sigma: f64,
    /// Values inside the fitted bulk (0 when the fit failed).
    pub kept: usize,
    /// No σ gave an MP bulk holding enough of the values: `sigma` is the `entry` σ.
    pub failed: bool,
}

/// Fewest values a fitted bulk may hold: a quarter of the spectrum, and at least 8.
fn min_bulk(p: usize) -> usize {
    p.div_ceil(4).max(8.min(p))
}

/// Largest KS distance between the bulk's values and MP(σ) that still counts as a fit.
const FIT_KS_MAX: f64 = 0.25;

/// `fit` σ: the σ whose MP bulk holds the largest share of the values and fits them.
///
/// Real trained blocks often pile many small values below ν− and carry spikes above ν+, so
/// neither the entry σ nor the median places the bulk. The fit therefore starts from several
/// scales (the entry σ, the median's and quartiles' MP scale, and a grid from 0.1 to 2 × entry)
/// and from each iterates to a fixed point:
///
/// 1. keep the values inside the bulk [ν− − 3s₋, ν+ + 3s₊] of the current σ (see
///    [`Scores`](super::Scores));
/// 2. regress the kept values on the MP(1) quantiles at their plotting positions (central 90%,
///    through the origin: a quantile–quantile fit, since every MP quantile scales with σ).
///
/// Among the fixed points whose bulk holds at least a quarter of the values (and 8), the one
/// with the largest share of values in the bulk less the KS distance of those values wins; its
/// σ is then polished by minimising that KS distance (within ±10%). When no start reaches such a bulk, or the best bulk's KS
/// distance exceeds 0.25, the fit fails and says so: σ is then the `entry` σ, flagged.
pub fn fit_sigma_checked(values: &[f64], rows: usize, cols: usize) -> SigmaFit {
    let entry = entry_sigma(values, rows, cols);
    let failed = SigmaFit {
        sigma: entry,
        kept: 0,
        failed: true,
    };
    if !(entry > 0.0 && entry.is_finite()) {
        return SigmaFit {
            sigma: 0.0,
            kept: 0,
            failed: false,
        };
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let p = sorted.len();
    let Ok(unit) = MpLaw::new(1.0, rows, cols) else {
        return failed;
    };
    let quantiles = QuantileTable::new(&unit);
    let at = |u: f64| sorted[((u * p as f64) as usize).min(p - 1)];
    let mut starts = vec![entry];
    for u in [0.25, 0.5, 0.75] {
        let q = quantiles.quantile(u);
        if q > 0.0 {
            starts.push(at(u) / q);
        }
    }
    starts.extend((1..=20).map(|i| entry * 0.1 * i as f64));
    let mut best: Option<(f64, usize, f64, f64)> = None; // (merit, kept, ks, σ)
    let mut seen = std::collections::HashSet::new();
    for start in starts {
        let Some((sigma, range)) = fixed_point(&sorted, rows, cols, start, &quantiles, &mut seen)
        else {
            continue;
        };
        let Ok(law) = MpLaw::new(sigma, rows, cols) else {
            continue;
        };
        let kept = range.len();
        let ks = ks_distance(&sorted[range], &law);
        // The share of values in the bulk, less how badly they fit it.
        let merit = kept as f64 / p as f64 - ks;
        if best.is_none_or(|b| merit > b.0) {
            best = Some((merit, kept, ks, sigma));
        }
    }
    let Some((_, kept, ks, sigma)) = best else {
        return failed;
    };
    // Polish: the σ near the fixed point minimising the KS distance of the same bulk.
    let Ok(law) = MpLaw::new(sigma, rows, cols) else {
        return failed;
    };
    let range = bulk_indices(&sorted, &law);
    let polished = best_ks_sigma(&sorted[range.clone()], rows, cols, sigma, 0.1);
    let (sigma, ks) = match MpLaw::new(polished, rows, cols) {
        Ok(l) if ks_distance(&sorted[range.clone()], &l) <= ks => {
            (polished, ks_distance(&sorted[range], &l))
        }
        _ => (sigma, ks),
    };
    if ks > FIT_KS_MAX {
        return failed;
    }
    SigmaFit {
        sigma,
        kept,
        failed: false,
    }
}

/// `fit` σ (the `entry` σ when the fit fails; see [`fit_sigma_checked`]).
pub fn fit_sigma(values: &[f64], rows: usize, cols: usize) -> f64 {
    fit_sigma_checked(values, rows, cols).sigma
}

/// Indices of the ascending `sorted` values inside the bulk of `law`.
fn bulk_indices(sorted: &[f64], law: &MpLaw) -> std::ops::Range<usize> {
    let (lo, hi) = bulk_range(law);
    let a = sorted.partition_point(|&v| v < lo);
    let b = sorted.partition_point(|&v| v <= hi);
    a..b.max(a)
}

/// Iterates bulk selection and quantile regression from `start` to a fixed point; `None`
/// when the bulk falls below [`min_bulk`] values on the way, or when it reaches a bulk an
/// earlier start already went through (`seen`): the next σ depends on the bulk alone, so from
/// there the path is the earlier one, and so is its end.
fn fixed_point(
    sorted: &[f64],
    rows: usize,
    cols: usize,
    start: f64,
    quantiles: &QuantileTable,
    seen: &mut std::collections::HashSet<(usize, usize)>,
) -> Option<(f64, std::ops::Range<usize>)> {
    let min = min_bulk(sorted.len());
    let mut own = Vec::new();
    let end = walk(sorted, rows, cols, start, quantiles, seen, &mut own, min);
    seen.extend(own);
    end
}

/// The path of [`fixed_point`], recording the bulks it visits in `own`.
#[allow(clippy::too_many_arguments)]
fn walk(
    sorted: &[f64],
    rows: usize,
    cols: usize,
    start: f64,
    quantiles: &QuantileTable,
    seen: &std::collections::HashSet<(usize, usize)>,
    own: &mut Vec<(usize, usize)>,
    min: usize,
) -> Option<(f64, std::ops::Range<usize>)> {
    let mut sigma = start;
    let mut last = 0..0;
    for _ in 0..50 {
        let law = MpLaw::new(sigma, rows, cols).ok()?;
        let range = bulk_indices(sorted, &law);
        if range.len() < min || seen.contains(&(range.start, range.end)) {
            return None;
        }
        own.push((range.start, range.end));
        let next = qq_sigma(&sorted[range.clone()], quantiles)?;
        let settled = range == last && (next - sigma).abs() <= 1e-12 * sigma;
        sigma = next;
        if settled {
            return Some((sigma, range));
        }
        last = range;
    }
    // No exact fixed point (the bulk flips between two sets): take where it stopped.
    Some((sigma, last))
}

/// σ of the least-squares line through the origin of the kept values against the MP(1)
/// quantiles at their plotting positions (i + ½)/k, over the central 90%.
fn qq_sigma(kept: &[f64], quantiles: &QuantileTable) -> Option<f64> {
    let k = kept.len();
    let (lo, hi) = (k / 20, k - k / 20);
    let (mut xy, mut yy) = (0.0, 0.0);
    // The plotting positions increase, so the table is walked forward once.
    let mut cursor = 0;
    for (i, &x) in kept.iter().enumerate().take(hi).skip(lo) {
        let q = quantiles.quantile_from((i as f64 + 0.5) / k as f64, &mut cursor);
        xy += x * q;
        yy += q * q;
    }
    let s = xy / yy;
    (s.is_finite() && s > 0.0).then_some(s)
}

/// The quantile function of an MP law, tabulated on the substitution angle θ.
struct QuantileTable {
    cdf: Vec<f64>,
    nu: Vec<f64>,
}

impl QuantileTable {
    const POINTS: usize = 1024;

    fn new(law: &MpLaw) -> Self {
        let (a, b) = (law.lower_edge().powi(2), law.upper_edge().powi(2));
        let (c, d) = ((a + b) / 2.0, (b - a) / 2.0);
        let (mut cdf, mut nu) = (Vec::new(), Vec::new());
        let f = law.cdf_fn();
        for i in 0..=Self::POINTS {
            let theta = std::f64::consts::PI * i as f64 / Self::POINTS as f64;
            let v = (c - d * theta.cos()).max(0.0).sqrt();
            cdf.push(f.at(v));
            nu.push(v);
        }
        Self { cdf, nu }
    }

    /// ν at which the CDF reaches `u` (linear between table points).
    fn quantile(&self, u: f64) -> f64 {
        let mut from = self.cdf.partition_point(|&f| f < u);
        self.quantile_from(u, &mut from)
    }

    /// [`QuantileTable::quantile`] for a `u` at least the previous one's: the first table point
    /// with F ≥ u is sought forward from `cursor`, which is left there (a pass over increasing
    /// u walks the table once).
    fn quantile_from(&self, u: f64, cursor: &mut usize) -> f64 {
        while *cursor < self.cdf.len() && self.cdf[*cursor] < u {
            *cursor += 1;
        }
        let i = (*cursor).clamp(1, self.cdf.len() - 1);
        let (f0, f1) = (self.cdf[i - 1], self.cdf[i]);
        let t = if f1 > f0 { (u - f0) / (f1 - f0) } else { 0.0 };
        self.nu[i - 1] + t.clamp(0.0, 1.0) * (self.nu[i] - self.nu[i - 1])
    }
}

/// The σ in [1 − w, 1 + w]·`around` minimising the KS distance of `ascending` against MP(σ).
fn best_ks_sigma(ascending: &[f64], rows: usize, cols: usize, around: f64, w: f64) -> f64 {
    // Neighbouring σ's deviate most at nearby values: each search starts from the last one's.
    let hint = std::cell::Cell::new(0);
    let ks = |s: f64| match MpLaw::new(s, rows, cols) {
        Ok(law) => {
            let mut h = hint.get();
            let d = ks_distance_hinted(ascending, &law, &mut h);
            hint.set(h);
            d
        }
        Err(_) => f64::INFINITY,
    };
    const GRID: usize = 24;
    let (lo, hi) = ((1.0 - w) * around, (1.0 + w) * around);
    let step = (hi - lo) / GRID as f64;
    let best = (0..=GRID)
        .map(|i| lo + step * i as f64)
        .map(|s| (s, ks(s)))
        .fold(
            (around, f64::INFINITY),
            |b, c| if c.1 < b.1 { c } else { b },
        );
    // Golden-section search in the bracket around the best grid point.
    let (mut a, mut b) = (best.0 - step, best.0 + step);
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - r * (b - a), a + r * (b - a));
    let (mut fc, mut fd) = (ks(c), ks(d));
    for _ in 0..40 {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = ks(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = ks(d);
        }
        if (b - a) < 1e-7 * around {
            break;
        }
    }
    let (s, f) = if fc <= fd { (c, fc) } else { (d, fd) };
    if f <= best.1 { s } else { best.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_rms_of_entries() {
        // W = [[3, 0], [0, 4], [0, 0]]: ν = 4, 3; RMS = √(25/6).
        let s = entry_sigma(&[4.0, 3.0], 3, 2);
        assert!((s - (25.0f64 / 6.0).sqrt()).abs() < 1e-15);
        assert_eq!(entry_sigma(&[0.0, 0.0], 2, 2), 0.0);
        assert_eq!(fit_sigma(&[0.0, 0.0], 2, 2), 0.0);
    }

    #[test]
    fn init_uses_config_or_kaiming() {
        assert_eq!(init_sigma(2048, Some(0.02)), 0.02);
        assert!((init_sigma(3, None) - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(init_sigma(3, Some(-1.0)), init_sigma(3, None));
    }

    #[test]
    fn modes_cycle_and_print() {
        assert_eq!(SigmaMode::Init.next(), SigmaMode::Entry);
        assert_eq!(SigmaMode::Fit.to_string(), "fit");
        assert_eq!(
            serde_json::to_string(&SigmaMode::Entry).unwrap(),
            "\"entry\""
        );
    }

    #[test]
    fn fit_recovers_sigma_of_exact_quantiles() {
        // Values placed at the MP quantiles of σ = 0.3 plus two far outliers.
        let (rows, cols) = (200, 800);
        let law = MpLaw::new(0.3, rows, cols).unwrap();
        let mut values: Vec<f64> = (0..198)
            .map(|i| {
                let target = (i as f64 + 0.5) / 198.0;
                let (mut lo, mut hi) = (law.lower_edge(), law.upper_edge());
                for _ in 0..100 {
                    let mid = (lo + hi) / 2.0;
                    if law.cdf(mid) < target {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                lo
            })
            .collect();
        values.extend([40.0, 60.0]);
        let fit = fit_sigma(&values, rows, cols);
        assert!((fit / 0.3 - 1.0).abs() < 1e-3, "{fit}");
        assert!(entry_sigma(&values, rows, cols) > 0.33);
    }
}
