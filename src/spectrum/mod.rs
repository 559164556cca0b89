//! Singular values, the Marchenko–Pastur law, σ estimators, deviation scores and histograms.
//!
//! Knows faer matrices and math; knows nothing of files or UI. The usual entry point is
//! [`analyze`]; the UI re-scores a [`Spectrum`] under another σ mode without recomputing it:
//!
//! ```
//! use mpscope::spectrum::{analyze, AnalyzeOptions, SigmaMode};
//! let w = faer::Mat::<f32>::from_fn(16, 64, |i, j| ((i * 7 + j * 13) % 11) as f32 - 5.0);
//! let a = analyze(w.as_ref(), &AnalyzeOptions::default()).unwrap();
//! let fit = a.spectrum.sigma(SigmaMode::Fit);
//! let rescored = a.spectrum.scores(fit.value).unwrap();
//! assert!(rescored.ks >= 0.0 && rescored.ks <= 1.0);
//! ```

use std::time::{Duration, Instant};

use faer::{MatRef, Par};
use serde::{Deserialize, Serialize};

mod chase;
mod control;
mod error;
pub mod heavy_tail;
mod histogram;
mod mp;
mod onestage;
pub mod preview;
mod scores;
mod scratch;
mod sigma;
mod svd;
mod symeig;
mod tridiag;
mod vectors;

pub use control::{Control, esd_distance, shuffled};
pub use error::SpectrumError;
pub use heavy_tail::{HeavyTail, PowerLawFit, Warning, fit_power_law, matrix_entropy};
pub use histogram::{Histogram, HistogramRange, freedman_diaconis_bins};
pub use mp::{MpLaw, Unit};
pub use scores::{Scores, bulk_range, ks_distance, score};
pub use sigma::{
    Sigma, SigmaFit, SigmaMode, Sigmas, entry_sigma, fit_sigma, fit_sigma_checked, init_sigma,
};
pub use svd::{
    Element, Method, Precision, count_non_finite, gram_values_two_stage, reads_entries_as_f32,
    singular_values, singular_values_with, values_and_right_vectors,
};
pub use vectors::{erf, kolmogorov_sf, ks_normal_statistic, normal_cdf, vector_ks_p};

/// How to analyse a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyzeOptions {
    /// Accuracy of the singular values.
    pub precision: Precision,
    /// faer parallelism inside one block (`Par::Seq` when many blocks run on rayon threads).
    pub par: Par,
    /// Compute `vector_p` (needs right singular vectors; the worker asks for it on head blocks).
    pub vector_p: bool,
    /// σ mode of the reported law and scores.
    pub sigma_mode: SigmaMode,
    /// `initializer_range` from config.json, for the `init` σ.
    pub initializer_range: Option<f64>,
    /// Fan-in of the whole matrix the block was cut from, for the `init` σ (default: cols).
    pub fan_in: Option<usize>,
    /// Also compute the spectrum of the block with its entries shuffled by this seed (the
    /// shuffled control, see [`Control`]).
    pub shuffle_seed: Option<u64>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            precision: Precision::Fast,
            par: Par::Seq,
            vector_p: false,
            sigma_mode: SigmaMode::Entry,
            initializer_range: None,
            fan_in: None,
            shuffle_seed: None,
        }
    }
}

/// The singular values of one block and what is needed to score them under any σ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// Singular values ν₁ ≥ … ≥ ν_p, p = min(rows, cols).
    pub values: Vec<f64>,
    /// Rows m of the block (output features).
    pub rows: usize,
    /// Columns n of the block (input features).
    pub cols: usize,
    /// Accuracy the values were computed at.
    pub precision: Precision,
    /// Mean KS p-value of the right singular vectors (see [`Scores::vector_p`]), if computed.
    pub vector_p: Option<f64>,
    /// The `init` σ resolved from the config and fan-in when the spectrum was computed.
    pub init_sigma: f64,
    /// Singular values of the block with its entries shuffled (the shuffled control), when
    /// asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffled: Option<Vec<f64>>,
    /// Wall time spent computing values (and vectors).
    pub compute_time: Duration,
}

impl Spectrum {
    /// Computes the spectrum of `m` (f32 or f64) as `opts` asks.
    pub fn compute<S: Element>(
        m: MatRef<'_, S>,
        opts: &AnalyzeOptions,
    ) -> Result<Self, SpectrumError> {
        let start = Instant::now();
        let (rows, cols) = m.shape();
        let (values, vector_p) = if opts.vector_p {
            let mut sum = 0.0;
            let mut count = 0usize;
            let gram_values = values_and_right_vectors(m, opts.par, |_, v| {
                sum += vector_ks_p(v);
                count += 1;
            })?;
            let values = match opts.precision {
                Precision::Fast => gram_values,
                Precision::Precise => singular_values(m, Precision::Precise, opts.par)?,
            };
            (values, (count > 0).then(|| sum / count as f64))
        } else {
            (singular_values(m, opts.precision, opts.par)?, None)
        };
        let shuffled = match opts.shuffle_seed {
            Some(seed) => Some(singular_values(
                shuffled(m, seed).as_ref(),
                opts.precision,
                opts.par,
            )?),
            None => None,
        };
        Ok(Self {
            values,
            rows,
            cols,
            precision: opts.precision,
            vector_p,
            init_sigma: init_sigma(opts.fan_in.unwrap_or(cols), opts.initializer_range),
            shuffled,
            compute_time: start.elapsed(),
        })
    }

    /// Short side p = min(rows, cols) (the number of values).
    pub fn p(&self) -> usize {
        self.rows.min(self.cols)
    }

    /// Long side q = max(rows, cols).
    pub fn q(&self) -> usize {
        self.rows.max(self.cols)
    }

    /// Largest singular value ν₁ (0 for an all-zero block).
    pub fn top(&self) -> f64 {
        self.values.first().copied().unwrap_or(0.0)
    }

    /// Whether the block is all zeros (no law, scores flagged empty).
    pub fn is_empty(&self) -> bool {
        self.top() == 0.0
    }

    /// σ of every mode.
    pub fn sigmas(&self) -> Sigmas {
        Sigmas::estimate(&self.values, self.rows, self.cols, self.init_sigma)
    }

    /// σ of one mode.
    pub fn sigma(&self, mode: SigmaMode) -> Sigma {
        let value = match mode {
            SigmaMode::Entry => entry_sigma(&self.values, self.rows, self.cols),
            SigmaMode::Fit => fit_sigma(&self.values, self.rows, self.cols),
            SigmaMode::Init => self.init_sigma,
        };
        Sigma { mode, value }
    }

    /// The MP law of this block's shape at scale `sigma`.
    pub fn law(&self, sigma: f64) -> Result<MpLaw, SpectrumError> {
        MpLaw::new(sigma, self.rows, self.cols)
    }

    /// Scores under scale `sigma`, including `vector_p`.
    pub fn scores(&self, sigma: f64) -> Result<Scores, SpectrumError> {
        let mut s = score(&self.values, self.rows, self.cols, sigma)?;
        if !s.empty {
            s.vector_p = self.vector_p;
        }
        Ok(s)
    }

    /// Histogram in `unit` with `bins` bins over `range`, MP expectation at scale `sigma`.
    pub fn histogram(
        &self,
        sigma: f64,
        unit: Unit,
        bins: usize,
        range: HistogramRange,
    ) -> Histogram {
        Histogram::new(&self.values, self.rows, self.cols, sigma, unit, bins, range)
    }
}

/// A spectrum with its σ estimates and its scores under the chosen mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The values and what they were computed from.
    pub spectrum: Spectrum,
    /// σ of every mode.
    pub sigmas: Sigmas,
    /// σ in use (mode and value).
    pub sigma: Sigma,
    /// MP law at that σ (`None` for an all-zero block).
    pub law: Option<MpLaw>,
    /// Scores at that σ.
    pub scores: Scores,
    /// Heavy-tail metrics (α and the norms; σ-free).
    pub heavy_tail: HeavyTail,
    /// The shuffled control, when the shuffled spectrum was computed (σ-free).
    pub control: Option<Control>,
}

impl Analysis {
    /// Scores and law of `spectrum` under `mode` (σ estimates, heavy-tail metrics and the
    /// shuffled control computed once).
    pub fn new(spectrum: Spectrum, mode: SigmaMode) -> Result<Self, SpectrumError> {
        let sigmas = spectrum.sigmas();
        Self::with_sigmas(spectrum, sigmas, mode)
    }

    /// [`Analysis::new`] with σ estimates already known (read back from a cache or a report):
    /// the same analysis, without estimating σ again.
    pub fn with_sigmas(
        spectrum: Spectrum,
        sigmas: Sigmas,
        mode: SigmaMode,
    ) -> Result<Self, SpectrumError> {
        let heavy_tail = HeavyTail::new(&spectrum.values, spectrum.q());
        let control = spectrum
            .shuffled
            .as_deref()
            .and_then(|sh| Control::new(&spectrum.values, sh, spectrum.rows, spectrum.cols));
        let sigma = sigmas.get(mode);
        let (scores, law) = Self::score(&spectrum, sigma.value)?;
        Ok(Self {
            spectrum,
            sigmas,
            sigma,
            law,
            scores,
            heavy_tail,
            control,
        })
    }

    /// Scores and law (`None` for an all-zero block) of `spectrum` at scale `sigma`.
    fn score(spectrum: &Spectrum, sigma: f64) -> Result<(Scores, Option<MpLaw>), SpectrumError> {
        let scores = spectrum.scores(sigma)?;
        let law = if scores.empty {
            None
        } else {
            Some(spectrum.law(sigma)?)
        };
        Ok((scores, law))
    }

    /// The same analysis under another σ mode (no spectrum recomputed).
    pub fn rescored(&self, mode: SigmaMode) -> Result<Self, SpectrumError> {
        let sigma = self.sigmas.get(mode);
        let (scores, law) = Self::score(&self.spectrum, sigma.value)?;
        Ok(Self {
            sigma,
            scores,
            law,
            ..self.clone()
        })
    }
}

/// Singular values, σ estimates, MP law and scores of one block (f32 or f64).
pub fn analyze<S: Element>(
    m: MatRef<'_, S>,
    opts: &AnalyzeOptions,
) -> Result<Analysis, SpectrumError> {
    Analysis::new(Spectrum::compute(m, opts)?, opts.sigma_mode)
}

/// Helpers shared by the eigensolver tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Eigenvalues (ascending) of the symmetric matrix whose lower triangle is `a`, by faer's
    /// dense solver: the reference the project's own eigensolvers are checked against.
    pub(crate) fn reference_eigenvalues(a: faer::MatRef<'_, f64>) -> Vec<f64> {
        let mut v: Vec<f64> = a
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .unwrap()
            .into_iter()
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}
