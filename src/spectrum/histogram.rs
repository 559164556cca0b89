//! Histograms of a spectrum with the MP expectation per bin, ready to draw.

use serde::{Deserialize, Serialize};

use super::mp::{MpLaw, Unit};

/// Which part of the spectrum a histogram's range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HistogramRange {
    /// Every value and the whole MP support, with 2% margins.
    #[default]
    Full,
    /// The MP support and the values inside it; outliers above are only counted (`over`).
    Bulk,
}

/// Counts of singular values (or λ = ν²/q) in equal bins, with the MP expected count per bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Unit of the bin edges.
    pub unit: Unit,
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Values per bin; bin i is [lo + i·w, lo + (i+1)·w), the last one closed.
    pub counts: Vec<usize>,
    /// MP expected count per bin, p·(F(right) − F(left)); all 0 when σ is not usable.
    pub expected: Vec<f64>,
    /// Values below `lo` (not drawn).
    pub under: usize,
    /// Values above `hi` (not drawn).
    pub over: usize,
}

impl Histogram {
    /// Histogram of `values` of a rows × cols block in `bins` bins (at least 1) over `range`,
    /// with the MP law of scale `sigma` (no expectation when σ is not positive and finite).
    pub fn new(
        values: &[f64],
        rows: usize,
        cols: usize,
        sigma: f64,
        unit: Unit,
        bins: usize,
        range: HistogramRange,
    ) -> Self {
        let law = MpLaw::new(sigma, rows, cols).ok();
        let q = rows.max(cols).max(1) as f64;
        let to_unit = |nu: f64| match unit {
            Unit::Singular => nu,
            Unit::Eigen => nu * nu / q,
        };
        let top = to_unit(values.iter().copied().fold(0.0, f64::max));
        let bottom = to_unit(values.iter().copied().fold(f64::INFINITY, f64::min));
        let (edge_lo, edge_hi) = law.map_or((bottom, top), |l| l.edges_in(unit));
        let x_max = match range {
            HistogramRange::Full => top.max(edge_hi),
            HistogramRange::Bulk if law.is_some() => edge_hi,
            HistogramRange::Bulk => top,
        };
        let x_min = bottom.min(edge_lo).max(0.0);
        let (lo, hi) = if x_max <= 0.0 {
            (0.0, 1.0)
        } else {
            let pad = 0.02 * (x_max - x_min);
            // Start at 0 unless the support (or, without a law, the data) stays well clear of it.
            let reach = law.map_or(top, |_| edge_hi);
            let lo = if x_min < 0.25 * reach {
                0.0
            } else {
                x_min - pad
            };
            (lo, x_max + pad)
        };
        Self::with_limits(values, law.as_ref(), q as usize, unit, bins, lo, hi)
    }

    /// Histogram over the explicit range [lo, hi] (e.g. shared by a grid of heads).
    pub fn with_limits(
        values: &[f64],
        law: Option<&MpLaw>,
        q: usize,
        unit: Unit,
        bins: usize,
        lo: f64,
        hi: f64,
    ) -> Self {
        let bins = bins.max(1);
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
        let w = (hi - lo) / bins as f64;
        let q = q.max(1) as f64;
        let mut counts = vec![0; bins];
        let (mut under, mut over) = (0, 0);
        for &nu in values {
            let x = match unit {
                Unit::Singular => nu,
                Unit::Eigen => nu * nu / q,
            };
            if x < lo {
                under += 1;
            } else if x > hi {
                over += 1;
            } else {
                let i = (((x - lo) / w) as usize).min(bins - 1);
                counts[i] += 1;
            }
        }
        let expected = match law {
            Some(law) => {
                let edges: Vec<f64> = (0..=bins).map(|i| lo + w * i as f64).collect();
                let cdf: Vec<f64> = edges.iter().map(|&e| law.cdf_in(unit, e)).collect();
                cdf.windows(2)
                    .map(|c| law.p as f64 * (c[1] - c[0]))
                    .collect()
            }
            None => vec![0.0; bins],
        };
        Self {
            unit,
            lo,
            hi,
            counts,
            expected,
            under,
            over,
        }
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len().max(1) as f64
    }

    /// Left edge of bin `i` (`i = bins` gives `hi`).
    pub fn edge(&self, i: usize) -> f64 {
        self.lo + self.bin_width() * i as f64
    }

    /// Values outside the drawn range (`under + over`).
    pub fn beyond(&self) -> usize {
        self.under + self.over
    }
}

/// Number of bins for `xs` over [lo, hi] by the Freedman–Diaconis rule: bin width
/// 2·IQR·n^(−1/3), so that few values get few, well-filled bins instead of a comb; clamped to
/// [`min`, `max`] (`max` is usually the columns available). Values outside [lo, hi] are ignored.
pub fn freedman_diaconis_bins(xs: &[f64], lo: f64, hi: f64, min: usize, max: usize) -> usize {
    let max = max.max(1);
    let min = min.clamp(1, max);
    let mut v: Vec<f64> = xs
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x >= lo && *x <= hi)
        .collect();
    if v.len() < 4 || hi <= lo {
        return min;
    }
    v.sort_by(f64::total_cmp);
    let quantile = |f: f64| {
        let pos = f * (v.len() - 1) as f64;
        let (i, t) = (pos.floor() as usize, pos.fract());
        v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * t
    };
    let iqr = quantile(0.75) - quantile(0.25);
    let width = 2.0 * iqr / (v.len() as f64).cbrt();
    if !width.is_finite() || width <= 0.0 {
        return min;
    }
    ((hi - lo) / width).ceil().clamp(min as f64, max as f64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_expectation_add_up() {
        let law = MpLaw::new(1.0, 64, 256).unwrap();
        let (lo, hi) = (law.lower_edge(), law.upper_edge());
        let mut values: Vec<f64> = (0..63)
            .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / 63.0)
            .collect();
        values.push(3.0 * hi);
        for unit in [Unit::Singular, Unit::Eigen] {
            let full = Histogram::new(&values, 64, 256, 1.0, unit, 40, HistogramRange::Full);
            assert_eq!(full.counts.iter().sum::<usize>(), 64);
            assert_eq!(full.beyond(), 0);
            assert!((full.expected.iter().sum::<f64>() - 64.0).abs() < 1e-9);
            if unit == Unit::Singular {
                assert!(full.lo > 0.0, "a 1:4 block's ν histogram starts near ν−");
            }
            let bulk = Histogram::new(&values, 64, 256, 1.0, unit, 40, HistogramRange::Bulk);
            assert_eq!(bulk.over, 1);
            assert_eq!(bulk.counts.iter().sum::<usize>(), 63);
            assert!((bulk.expected.iter().sum::<f64>() - 64.0).abs() < 1e-9);
        }
    }

    #[test]
    fn empty_spectrum_draws_without_nan() {
        let h = Histogram::new(
            &[0.0; 8],
            8,
            8,
            0.0,
            Unit::Singular,
            10,
            HistogramRange::Full,
        );
        assert_eq!(h.counts[0], 8);
        assert!(h.expected.iter().all(|&e| e == 0.0));
        assert!(h.hi > h.lo);
        let z = Histogram::with_limits(&[1.0], None, 1, Unit::Eigen, 0, 0.0, 2.0);
        assert_eq!(z.counts, vec![1]);
    }

    #[test]
    fn freedman_diaconis_gives_few_values_few_bins_and_many_values_more() {
        // n evenly spread values over [0, 1]: IQR = 1/2, so bins = ceil(n^(1/3)).
        let spread = |n: usize| -> Vec<f64> { (0..n).map(|i| i as f64 / (n - 1) as f64).collect() };
        assert_eq!(freedman_diaconis_bins(&spread(64), 0.0, 1.0, 1, 200), 4);
        assert_eq!(freedman_diaconis_bins(&spread(1000), 0.0, 1.0, 1, 200), 10);
        assert_eq!(
            freedman_diaconis_bins(&spread(64_000), 0.0, 1.0, 1, 200),
            40
        );
        // Bounds: never above the width, never below the floor.
        assert_eq!(freedman_diaconis_bins(&spread(64_000), 0.0, 1.0, 1, 30), 30);
        assert_eq!(freedman_diaconis_bins(&spread(64), 0.0, 1.0, 8, 60), 8);
        // The range counts: the same values in a range twice as wide get twice the bins.
        assert_eq!(freedman_diaconis_bins(&spread(1000), 0.0, 2.0, 1, 200), 20);
        // Degenerate input falls back to the floor.
        assert_eq!(freedman_diaconis_bins(&[1.0; 50], 0.0, 2.0, 6, 60), 6);
        assert_eq!(freedman_diaconis_bins(&[], 0.0, 1.0, 6, 60), 6);
        assert_eq!(freedman_diaconis_bins(&spread(64), 0.0, 1.0, 8, 0), 1);
    }
}
