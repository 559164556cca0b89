//! The entry scale σ of the MP law, by three estimators the user can switch between.
//!
//! Every estimator works from (values, rows, cols) and the config, so switching modes never
//! recomputes a spectrum.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::mp::MpLaw;
use super::scores::{bulk_range, ks_distance};

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
}

impl Sigmas {
    /// All three estimates for a block's values; `init` is the already-resolved init σ.
    pub fn estimate(values: &[f64], rows: usize, cols: usize, init: f64) -> Self {
        Self {
            entry: entry_sigma(values, rows, cols),
            fit: fit_sigma(values, rows, cols),
            init,
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

/// `fit` σ: the σ whose MP law best fits the bulk (0 for an all-zero block).
///
/// Start from `entry` σ; repeat: keep the values within the bulk [ν− − 3s₋, ν+ + 3s₊] of the
/// current σ (see [`Scores`](super::Scores)), then take the σ minimising the KS distance between the kept
/// values and MP(σ) (a grid over ±30% then golden-section refinement); stop when σ moves by less
/// than 1e-6 relative or after 20 rounds. At least half the values are always kept, and σ
/// stays within [0.5, 1.25] × `entry` σ, so neither a heavy tail nor a pile-up of small
/// values (collapsed heads) can make the fit cascade towards zero.
pub fn fit_sigma(values: &[f64], rows: usize, cols: usize) -> f64 {
    let entry = entry_sigma(values, rows, cols);
    if !(entry > 0.0 && entry.is_finite()) {
        return 0.0;
    }
    let mut sigma = entry;
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let min_keep = sorted.len().div_ceil(2);
    for _ in 0..20 {
        let Ok(law) = MpLaw::new(sigma, rows, cols) else {
            break;
        };
        let (lo, hi) = bulk_range(&law);
        let kept: Vec<f64> = sorted
            .iter()
            .copied()
            .filter(|&v| v >= lo && v <= hi)
            .collect();
        if kept.len() < min_keep {
            break;
        }
        let next = best_ks_sigma(&kept, rows, cols, sigma).clamp(0.5 * entry, 1.25 * entry);
        let moved = (next - sigma).abs() / sigma;
        sigma = next;
        if moved < 1e-6 {
            break;
        }
    }
    sigma
}

/// The σ in [0.7, 1.3]·`around` minimising the KS distance of `ascending` against MP(σ).
fn best_ks_sigma(ascending: &[f64], rows: usize, cols: usize, around: f64) -> f64 {
    let ks = |s: f64| match MpLaw::new(s, rows, cols) {
        Ok(law) => ks_distance(ascending, &law),
        Err(_) => f64::INFINITY,
    };
    const GRID: usize = 24;
    let (lo, hi) = (0.7 * around, 1.3 * around);
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
