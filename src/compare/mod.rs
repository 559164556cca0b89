//! Comparing two sources block by block: two checkpoints, or a base and a LoRA adapter.
//!
//! Owns pairing the blocks of the two sources ([`pair`]), the change ΔW = W_other − W_base of
//! each pair and its scores ([`delta`]), and LoRA adapters read in factored form ([`lora`]).
//! Knows nothing of file formats (the checkpoint room decodes both sides) or of drawing; the
//! spectra themselves come from the spectrum room. Every pair is decoded on its own, so memory
//! grows with the largest block, never with the model.

mod error;

pub mod change;
pub mod delta;
pub mod lora;
pub mod pair;

use std::path::{Path, PathBuf};
use std::time::Instant;

use faer::{Mat, MatRef, Par};

pub use change::ChangeKind;
pub use delta::DeltaMethod;
pub use error::CompareError;
pub use lora::{Adapter, LoraConfig, is_adapter_dir};
pub use pair::{Mismatch, OtherBlock, PairJob, Pairing};

use crate::anatomy::{Anatomy, Overrides};
use crate::checkpoint::{Checkpoint, Dtype};
use crate::scan::{ComputeOptions, Job, ScanOptions, shuffle_seed};
use crate::spectrum::{
    Analysis, Method, Precision, SigmaMode, Spectrum, init_sigma, shuffled, singular_values,
    singular_values_with, values_and_right_vectors, vector_ks_p,
};

/// The other side of a comparison.
#[derive(Debug)]
pub enum Other {
    /// A checkpoint, with its layout.
    Checkpoint {
        /// The opened files.
        ck: Checkpoint,
        /// Its layers, projections and heads.
        anatomy: Anatomy,
    },
    /// A LoRA adapter on the base.
    Adapter(Adapter),
}

/// The two sources of a comparison, opened.
#[derive(Debug)]
pub struct Sources {
    /// The base checkpoint.
    pub base: Checkpoint,
    /// Its layout.
    pub base_anatomy: Anatomy,
    /// The base as named (or as the adapter names it).
    pub base_name: String,
    /// The other side.
    pub other: Other,
    /// The other side as named.
    pub other_name: String,
}

impl Sources {
    /// Opens `other` (a checkpoint or a PEFT adapter directory) and its base: `base` when given,
    /// else the adapter's `base_model_name_or_path` (a local path, relative to the working
    /// directory or to the adapter, or an HF cache repo id). A checkpoint needs a base.
    pub fn open(other: &str, base: Option<&str>, ov: &Overrides) -> Result<Self, CompareError> {
        let dir = Path::new(other);
        if is_adapter_dir(dir) {
            let adapter = Adapter::open(dir)?;
            let (base, base_name) = match base {
                Some(b) => (Checkpoint::open(b)?, b.to_owned()),
                None => open_adapter_base(dir, adapter.config.base_model.as_deref())?,
            };
            let base_anatomy = Anatomy::from_checkpoint(&base, ov)?;
            return Ok(Self {
                base,
                base_anatomy,
                base_name,
                other: Other::Adapter(adapter),
                other_name: other.to_owned(),
            });
        }
        let Some(base_spec) = base else {
            return Err(CompareError::BaseNotFound {
                adapter: PathBuf::from(other),
                tried: format!("{other} is not an adapter directory (no adapter_config.json)"),
            });
        };
        let base_ck = Checkpoint::open(base_spec)?;
        let base_anatomy = Anatomy::from_checkpoint(&base_ck, ov)?;
        let ck = Checkpoint::open(other)?;
        let anatomy = Anatomy::from_checkpoint(&ck, ov)?;
        Ok(Self {
            base: base_ck,
            base_anatomy,
            base_name: base_spec.to_owned(),
            other: Other::Checkpoint { ck, anatomy },
            other_name: other.to_owned(),
        })
    }

    /// "OTHER vs BASE", as the explorer's header says it.
    pub fn title(&self) -> String {
        format!("{} vs {}", self.other_name, self.base_name)
    }

    /// Pairs the blocks `opts` selects; an error when nothing pairs with a block of its shape.
    pub fn pair(&self, opts: &ScanOptions) -> Result<Pairing, CompareError> {
        let p = match &self.other {
            Other::Checkpoint { anatomy, .. } => {
                pair::pair_dense(&self.base_anatomy, anatomy, opts)
            }
            Other::Adapter(a) => pair::pair_lora(&self.base, &self.base_anatomy, a, opts),
        };
        if p.jobs.is_empty() {
            let detail = if p.mismatched.is_empty() {
                "; no tensor name or (layer, projection) in common".to_owned()
            } else {
                let shown: Vec<String> = p
                    .mismatched
                    .iter()
                    .take(3)
                    .map(|m| {
                        format!(
                            "{} is {}x{} in the base and {}x{} in the other",
                            m.block,
                            m.base_shape[0],
                            m.base_shape[1],
                            m.other_shape[0],
                            m.other_shape[1]
                        )
                    })
                    .collect();
                format!(
                    " ({} shape mismatches, e.g. {}): the models have different shapes",
                    p.mismatched.len(),
                    shown.join("; ")
                )
            };
            return Err(CompareError::NothingPairs {
                base: self.base_name.clone(),
                other: self.other_name.clone(),
                detail,
            });
        }
        Ok(p)
    }

    /// Decodes one pair from both sources and compares it (runs on worker threads).
    pub fn compare(
        &self,
        job: &PairJob,
        opts: &ComputeOptions,
        mode: SigmaMode,
    ) -> Result<Comparison, String> {
        let b = &job.base.block;
        let err = |e: String| format!("{} ({}): {e}", b.tensor, b.name);
        let w0 = self
            .base
            .decode_f64(&b.selection)
            .map_err(|e| err(e.to_string()))?;
        match (&job.other, &self.other) {
            (OtherBlock::Dense(o), Other::Checkpoint { ck, .. }) => {
                let w1 = ck
                    .decode_f64(&o.selection)
                    .map_err(|e| err(e.to_string()))?;
                compare_dense(&job.base, w0, w1, [&b.dtype, &o.dtype], opts, mode).map_err(err)
            }
            (OtherBlock::Lora(l), Other::Adapter(a)) => {
                let f = l.factors(&a.weights).map_err(err)?;
                compare_lora(&job.base, w0, f, l.module.scale, opts, mode).map_err(err)
            }
            _ => Err(err("the pair does not match its sources".into())),
        }
    }
}

/// Opens an adapter's base from its `base_model_name_or_path`.
fn open_adapter_base(
    dir: &Path,
    named: Option<&str>,
) -> Result<(Checkpoint, String), CompareError> {
    let not_found = |tried: String| CompareError::BaseNotFound {
        adapter: dir.to_path_buf(),
        tried,
    };
    let Some(spec) = named else {
        return Err(not_found(
            "adapter_config.json has no base_model_name_or_path".into(),
        ));
    };
    let beside = dir.join(spec);
    if Path::new(spec).is_relative() && !Path::new(spec).exists() && beside.exists() {
        let s = beside.to_string_lossy().into_owned();
        return Checkpoint::open(&s)
            .map(|ck| (ck, s.clone()))
            .map_err(|e| not_found(format!("base_model_name_or_path {spec:?} ({s}): {e}")));
    }
    Checkpoint::open(spec)
        .map(|ck| (ck, spec.to_owned()))
        .map_err(|e| not_found(format!("base_model_name_or_path {spec:?}: {e}")))
}

/// ΔW of one pair and what it did to the block.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// ‖ΔW‖_F / ‖W_base‖_F; exactly 0 when the blocks are identical.
    pub rel: f64,
    /// Numerical rank of ΔW at `rank_tol` (see [`delta`]).
    pub rank: usize,
    /// The tolerance of `rank`.
    pub rank_tol: f64,
    /// How ΔW's values were found.
    pub method: DeltaMethod,
    /// ΔW's spectrum, σ, MP law and scores (`None` when ΔW = 0).
    pub analysis: Option<Analysis>,
    /// Why a LoRA block is unchanged ("adapter learned nothing here: lora_B is all zero").
    pub learned_nothing: Option<String>,
    /// The adapter factor that is all zero on this block ("lora_B" or "lora_A"), if one is.
    pub zero_factor: Option<&'static str>,
}

impl Delta {
    /// ΔW = 0: nothing changed.
    fn zero(zero_factor: Option<&'static str>) -> Self {
        Self {
            learned_nothing: zero_factor
                .map(|which| format!("adapter learned nothing here: {which} is all zero")),
            zero_factor,
            rel: 0.0,
            rank: 0,
            rank_tol: 0.0,
            method: DeltaMethod::Zero,
            analysis: None,
        }
    }

    /// ΔW's singular values, descending (empty when ΔW = 0).
    pub fn values(&self) -> &[f64] {
        self.analysis
            .as_ref()
            .map(|a| a.spectrum.values.as_slice())
            .unwrap_or(&[])
    }

    /// The `n` largest singular values of ΔW (zeros when ΔW = 0).
    pub fn top(&self, n: usize) -> Vec<f64> {
        let v = self.values();
        (0..n).map(|i| v.get(i).copied().unwrap_or(0.0)).collect()
    }

    /// ΔW's KS distance to its MP law (`None` when ΔW = 0: no law to compare with).
    pub fn ks(&self) -> Option<f64> {
        self.analysis.as_ref().map(|a| a.scores.ks)
    }

    /// ΔW's stable rank Σν²/ν₁² (`None` when ΔW = 0).
    pub fn stable_rank(&self) -> Option<f64> {
        self.analysis.as_ref().map(|a| a.scores.stable_rank)
    }

    /// True when ΔW is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.method == DeltaMethod::Zero
    }
}

/// One compared pair: both analyses and the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The base block's analysis.
    pub base: Analysis,
    /// The other block's analysis (a LoRA block's: of the merged W + ΔW).
    pub other: Analysis,
    /// ΔW.
    pub delta: Delta,
    /// Mean cos² of the principal angles between the top-k right singular vectors of base and
    /// other, k = the base's values above the MP bulk (at least 1); 1 when unchanged, `None`
    /// when the vectors were not computed (whole matrices without `--vectors`).
    pub subspace_overlap: Option<f64>,
}

impl Comparison {
    /// A block that did not change: one analysis on both sides, ΔW = 0, overlap 1.
    fn unchanged(base: Analysis, zero_factor: Option<&'static str>) -> Self {
        Self {
            other: base.clone(),
            base,
            delta: Delta::zero(zero_factor),
            subspace_overlap: Some(1.0),
        }
    }

    /// A changed block: both analyses (with their right singular vectors, when computed) and ΔW.
    fn changed(
        base: (Analysis, Vec<Vec<f64>>),
        other: (Analysis, Vec<Vec<f64>>),
        delta: Delta,
    ) -> Self {
        let subspace_overlap = overlap(&base.0, base.1, other.1);
        Self {
            base: base.0,
            other: other.0,
            delta,
            subspace_overlap,
        }
    }

    /// ks(other) − ks(base), when both blocks are nonzero.
    pub fn ks_shift(&self) -> Option<f64> {
        (!self.base.scores.empty && !self.other.scores.empty)
            .then_some(self.other.scores.ks - self.base.scores.ks)
    }

    /// α(other) − α(base), when both have α.
    pub fn alpha_shift(&self) -> Option<f64> {
        Some(self.other.heavy_tail.alpha()? - self.base.heavy_tail.alpha()?)
    }
}

/// Two dense blocks of one shape: identical (ΔW = 0, one spectrum) or not.
fn compare_dense(
    job: &Job,
    w0: Mat<f64>,
    w1: Mat<f64>,
    dtypes: [&Dtype; 2],
    opts: &ComputeOptions,
    mode: SigmaMode,
) -> Result<Comparison, String> {
    if w0.shape() != w1.shape() {
        return Err(format!(
            "shapes differ: {:?} against {:?}",
            w0.shape(),
            w1.shape()
        ));
    }
    let base = analyze_block(w0.as_ref(), job, opts, mode)?;
    if identical(w0.as_ref(), w1.as_ref()) {
        return Ok(Comparison::unchanged(base.0, None));
    }
    let other = analyze_block(w1.as_ref(), job, opts, mode)?;
    let u = delta::unit_roundoff(dtypes[0]).min(delta::unit_roundoff(dtypes[1]));
    let rms = delta::rms(w0.as_ref()).max(delta::rms(w1.as_ref()));
    let base_norm = delta::frobenius(w0.as_ref());
    let dw = &w1 - &w0;
    drop((w0, w1));
    let (method, m) = match opts.precision {
        Precision::Fast => (DeltaMethod::Gram, Precision::Fast.method()),
        Precision::Precise => (DeltaMethod::Svd, Method::SvdF64),
    };
    let start = Instant::now();
    let values = singular_values_with(dw.as_ref(), m, Par::Seq).map_err(|e| e.to_string())?;
    let delta = DeltaInputs {
        values,
        shape: dw.shape(),
        fro: delta::frobenius(dw.as_ref()),
        base_norm,
        method,
        u,
        rms,
        elapsed: start.elapsed(),
    }
    .finish(mode)?;
    Ok(Comparison::changed(base, other, delta))
}

/// A base block and a LoRA adapter's factors (X, Y, and which factor is all zero, if one is).
fn compare_lora(
    job: &Job,
    w0: Mat<f64>,
    factors: lora::Factors,
    scale: f64,
    opts: &ComputeOptions,
    mode: SigmaMode,
) -> Result<Comparison, String> {
    let base = analyze_block(w0.as_ref(), job, opts, mode)?;
    if let Some(which) = factors.zero {
        return Ok(Comparison::unchanged(base.0, Some(which)));
    }
    let start = Instant::now();
    let values = lora::factored_values(factors.x.as_ref(), factors.y.as_ref(), scale)?;
    let elapsed = start.elapsed();
    let base_norm = delta::frobenius(w0.as_ref());
    let fro = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut merged = w0;
    faer::linalg::matmul::matmul(
        merged.as_mut(),
        faer::Accum::Add,
        factors.x.as_ref(),
        factors.y.as_ref(),
        scale,
        Par::Seq,
    );
    let other = analyze_block(merged.as_ref(), job, opts, mode)?;
    // The factored values are exact: no rounding term, only the method's floor.
    let delta = DeltaInputs {
        values,
        shape: merged.shape(),
        fro,
        base_norm,
        method: DeltaMethod::Factored,
        u: 0.0,
        rms: 0.0,
        elapsed,
    }
    .finish(mode)?;
    Ok(Comparison::changed(base, other, delta))
}

/// What ΔW's rank, spectrum and scores are made from.
struct DeltaInputs {
    /// ΔW's singular values, descending.
    values: Vec<f64>,
    /// (rows, cols).
    shape: (usize, usize),
    /// ‖ΔW‖_F.
    fro: f64,
    /// ‖W_base‖_F.
    base_norm: f64,
    /// How the values were found.
    method: DeltaMethod,
    /// Unit round-off of the finer dtype (0 for LoRA).
    u: f64,
    /// The larger RMS entry of the two blocks.
    rms: f64,
    /// Time the values took.
    elapsed: std::time::Duration,
}

impl DeltaInputs {
    /// ΔW's rank at the tolerance of [`delta`], its spectrum and its scores under `mode`.
    fn finish(self, mode: SigmaMode) -> Result<Delta, String> {
        let (rows, cols) = self.shape;
        let nu1 = self.values.first().copied().unwrap_or(0.0);
        if nu1 == 0.0 {
            return Ok(Delta::zero(None));
        }
        let floor = self.method.floor(rows, cols);
        let rank_tol = delta::rank_tolerance(nu1, floor, self.u, self.rms, rows, cols);
        let rank = delta::numerical_rank(&self.values, rank_tol);
        let entry = self.fro / ((rows * cols) as f64).sqrt();
        let spectrum = Spectrum {
            values: self.values,
            rows,
            cols,
            precision: Precision::Precise,
            vector_p: None,
            // ΔW has no initialization: its `init` σ is its entry σ.
            init_sigma: entry,
            shuffled: None,
            compute_time: self.elapsed,
        };
        let analysis = Analysis::new(spectrum, mode).map_err(|e| format!("ΔW: {e}"))?;
        Ok(Delta {
            rel: if self.base_norm > 0.0 {
                self.fro / self.base_norm
            } else {
                f64::INFINITY
            },
            rank,
            rank_tol,
            method: self.method,
            analysis: Some(analysis),
            learned_nothing: None,
            zero_factor: None,
        })
    }
}

/// The block's analysis as the scan computes it, plus its right singular vectors (descending
/// by value) when the job asks for vectors.
fn analyze_block(
    m: MatRef<'_, f64>,
    job: &Job,
    opts: &ComputeOptions,
    mode: SigmaMode,
) -> Result<(Analysis, Vec<Vec<f64>>), String> {
    let start = Instant::now();
    let e = |e: crate::spectrum::SpectrumError| e.to_string();
    let (rows, cols) = m.shape();
    let (values, vector_p, vecs) = if job.vectors {
        let mut sum = 0.0;
        let mut pairs: Vec<(f64, Vec<f64>)> = Vec::new();
        let gram = values_and_right_vectors(m, Par::Seq, |nu, v| {
            sum += vector_ks_p(v);
            pairs.push((nu, v.to_vec()));
        })
        .map_err(e)?;
        let vector_p = (!pairs.is_empty()).then(|| sum / pairs.len() as f64);
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let values = match opts.precision {
            Precision::Fast => gram,
            Precision::Precise => singular_values(m, Precision::Precise, Par::Seq).map_err(e)?,
        };
        (values, vector_p, pairs.into_iter().map(|p| p.1).collect())
    } else {
        (
            singular_values(m, opts.precision, Par::Seq).map_err(e)?,
            None,
            Vec::new(),
        )
    };
    let shuffled = match opts.randomize {
        true => Some(
            singular_values(
                shuffled(m, shuffle_seed(&job.block)).as_ref(),
                opts.precision,
                Par::Seq,
            )
            .map_err(e)?,
        ),
        false => None,
    };
    let spectrum = Spectrum {
        values,
        rows,
        cols,
        precision: opts.precision,
        vector_p,
        init_sigma: init_sigma(job.fan_in, opts.initializer_range),
        shuffled,
        compute_time: start.elapsed(),
    };
    Ok((Analysis::new(spectrum, mode).map_err(e)?, vecs))
}

/// Subspace overlap of the top-k right singular vectors, k = the base's values above the
/// bulk (at least 1); `None` without vectors.
fn overlap(base: &Analysis, a: Vec<Vec<f64>>, b: Vec<Vec<f64>>) -> Option<f64> {
    let k = base.scores.above.max(1);
    let a = &a[..k.min(a.len())];
    let b = &b[..k.min(b.len())];
    delta::subspace_overlap(a, b)
}

/// True when both matrices hold the same values (bit-identical storage always does).
fn identical(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> bool {
    (0..a.ncols()).all(|j| a.col(j).iter().zip(b.col(j).iter()).all(|(x, y)| x == y))
}
