//! Comparing two sources block by block: two checkpoints, or a base and a LoRA adapter.
//!
//! Owns pairing the blocks of the two sources ([`pair`]), the change ΔW = W_other − W_base of
//! each pair and its scores ([`delta`]), the moved top subspace ([`subspace`]), and LoRA
//! adapters read in factored form ([`lora`]). Knows nothing of file formats (the checkpoint
//! room decodes both sides) or of drawing; the spectra themselves come from the spectrum room,
//! each side's through the spectrum cache as a single scan of its checkpoint reads and writes
//! it ([`crate::scan::analyze_decoded`]). Every pair is decoded on its own, so memory grows
//! with the largest block, never with the model.

mod error;

pub mod change;
pub mod delta;
pub mod lora;
pub mod pair;
pub mod subspace;

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
use crate::scan::{self, CacheSlot, ComputeOptions, Job, ScanOptions};
use crate::spectrum::{Analysis, Method, Precision, SigmaMode, Spectrum, singular_values_with};

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

    /// How each side of a pair is computed from the base's options `base`: the other
    /// checkpoint with the same precision and control, its own `initializer_range` and its own
    /// part of the cache (so a comparison and a single scan of either model share entries); a
    /// LoRA adapter's merged blocks are never cached (they have no file of their own).
    pub fn options(&self, base: ComputeOptions) -> PairOptions {
        let other = match &self.other {
            Other::Checkpoint { ck, .. } => ComputeOptions {
                initializer_range: ck.config().and_then(|c| c.initializer_range),
                cache: base.cache.as_ref().map(|c| c.sibling(ck.root())),
                ..base.clone()
            },
            Other::Adapter(_) => ComputeOptions {
                cache: None,
                ..base.clone()
            },
        };
        PairOptions { base, other }
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

    /// Decodes one pair from both sources and compares it (runs on worker threads). Each
    /// side's analysis is read from its checkpoint's part of the cache when there, and stored
    /// when computed, under the key a single scan of that checkpoint uses.
    pub fn compare(
        &self,
        job: &PairJob,
        opts: &PairOptions,
        mode: SigmaMode,
    ) -> Result<Comparison, String> {
        let b = &job.base.block;
        let err = |e: String| format!("{} ({}): {e}", b.tensor, b.name);
        let w0 = self
            .base
            .decode_f64(&b.selection)
            .map_err(|e| err(e.to_string()))?;
        let base = Side {
            ck: Some(&self.base),
            job: &job.base,
            opts: &opts.base,
        };
        match (&job.other, &self.other) {
            (OtherBlock::Dense(o), Other::Checkpoint { ck, .. }) => {
                let w1 = ck
                    .decode_f64(&o.selection)
                    .map_err(|e| err(e.to_string()))?;
                // The job a single scan of the other checkpoint has for this block.
                let other_job = Job {
                    block: o.clone(),
                    ..job.base.clone()
                };
                let other = Side {
                    ck: Some(ck),
                    job: &other_job,
                    opts: &opts.other,
                };
                compare_dense([base, other], w0, w1, mode).map_err(err)
            }
            (OtherBlock::Lora(l), Other::Adapter(a)) => {
                let f = l.factors(&a.weights).map_err(err)?;
                let merged = Side {
                    ck: None,
                    job: &job.base,
                    opts: &opts.other,
                };
                compare_lora([base, merged], w0, f, l.module.scale, mode).map_err(err)
            }
            _ => Err(err("the pair does not match its sources".into())),
        }
    }
}

/// How both sides of a pair are computed ([`Sources::options`]).
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// The base checkpoint's options (its part of the cache included).
    pub base: ComputeOptions,
    /// The other side's: the other checkpoint's part of the cache and `initializer_range`, or
    /// no cache for a LoRA adapter's merged blocks.
    pub other: ComputeOptions,
}

/// One side of a pair: the checkpoint it is read from (`None` for a LoRA adapter's merged
/// block, which is never cached), the job a single scan of it has, and its options.
#[derive(Clone, Copy)]
struct Side<'a> {
    ck: Option<&'a Checkpoint>,
    job: &'a Job,
    opts: &'a ComputeOptions,
}

impl Side<'_> {
    /// The side's analysis of its decoded block `m`: for a checkpoint, as a single scan of it
    /// gives it ([`scan::analyze_decoded`]: read from the cache when there, else computed and
    /// stored); for a merged LoRA block, computed as a scan would.
    fn analyze(&self, m: MatRef<'_, f64>, mode: SigmaMode) -> Result<Analysis, String> {
        match self.ck {
            Some(ck) => scan::analyze_decoded(ck, self.job, self.opts, mode, Some(m)),
            None => {
                let spectrum = Spectrum::compute(m, &scan::analyze_options(self.job, self.opts))
                    .map_err(|e| e.to_string())?;
                Analysis::new(spectrum, mode).map_err(|e| e.to_string())
            }
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

    /// A changed block: both analyses, ΔW and the subspace overlap.
    fn changed(
        base: Analysis,
        other: Analysis,
        delta: Delta,
        subspace_overlap: Option<f64>,
    ) -> Self {
        Self {
            base,
            other,
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
    [base_side, other_side]: [Side<'_>; 2],
    w0: Mat<f64>,
    w1: Mat<f64>,
    mode: SigmaMode,
) -> Result<Comparison, String> {
    if w0.shape() != w1.shape() {
        return Err(format!(
            "shapes differ: {:?} against {:?}",
            w0.shape(),
            w1.shape()
        ));
    }
    let base = base_side.analyze(w0.as_ref(), mode)?;
    if identical(w0.as_ref(), w1.as_ref()) {
        keep_unchanged(&base, base_side, other_side);
        return Ok(Comparison::unchanged(base, None));
    }
    let other = other_side.analyze(w1.as_ref(), mode)?;
    let top = TopVectors::of(base_side.job, &base);
    let overlap = top.overlap(top.of_block(w0.as_ref())?, w1.as_ref())?;
    let dtypes: [&Dtype; 2] = [&base_side.job.block.dtype, &other_side.job.block.dtype];
    let u = delta::unit_roundoff(dtypes[0]).min(delta::unit_roundoff(dtypes[1]));
    let rms = delta::rms(w0.as_ref()).max(delta::rms(w1.as_ref()));
    let base_norm = delta::frobenius(w0.as_ref());
    let dw = &w1 - &w0;
    drop((w0, w1));
    let (method, m) = match base_side.opts.precision {
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
    Ok(Comparison::changed(base, other, delta, overlap))
}

/// An unchanged block's analysis is the other checkpoint's too: kept under the other's key
/// as well (unless already there), so that a later single scan of it reads it back. Not when
/// the shuffled controls' seeds differ (the blocks are named differently on the two sides).
fn keep_unchanged(base: &Analysis, base_side: Side<'_>, other_side: Side<'_>) {
    let (job, opts) = (other_side.job, other_side.opts);
    if opts.randomize && scan::shuffle_seed(&job.block) != scan::shuffle_seed(&base_side.job.block)
    {
        return;
    }
    let Some(slot) = other_side.ck.and_then(|ck| CacheSlot::of(ck, job, opts)) else {
        return;
    };
    if !slot.cache.contains(&slot.key) {
        slot.put(base);
    }
}

/// Which right singular vectors the subspace overlap compares: the top k, k = the base's
/// values above the MP bulk (at least 1), when the job asks for singular vectors at all.
struct TopVectors(Option<usize>);

impl TopVectors {
    fn of(job: &Job, base: &Analysis) -> Self {
        Self(job.vectors.then(|| base.scores.above.max(1)))
    }

    /// The top-k right vectors of `m` (`None` without vectors).
    fn of_block(&self, m: MatRef<'_, f64>) -> Result<Option<Vec<Vec<f64>>>, String> {
        self.0
            .map(|k| subspace::top_right_vectors(m, k))
            .transpose()
    }

    /// The overlap of the base's vectors `base` with those of the other block `other`.
    fn overlap(
        &self,
        base: Option<Vec<Vec<f64>>>,
        other: MatRef<'_, f64>,
    ) -> Result<Option<f64>, String> {
        match (base, self.of_block(other)?) {
            (Some(a), Some(b)) => Ok(delta::subspace_overlap(&a, &b)),
            _ => Ok(None),
        }
    }
}

/// A base block and a LoRA adapter's factors (X, Y, and which factor is all zero, if one is).
fn compare_lora(
    [base_side, merged_side]: [Side<'_>; 2],
    w0: Mat<f64>,
    factors: lora::Factors,
    scale: f64,
    mode: SigmaMode,
) -> Result<Comparison, String> {
    let base = base_side.analyze(w0.as_ref(), mode)?;
    if let Some(which) = factors.zero {
        return Ok(Comparison::unchanged(base, Some(which)));
    }
    let start = Instant::now();
    let values = lora::factored_values(factors.x.as_ref(), factors.y.as_ref(), scale)?;
    let elapsed = start.elapsed();
    let base_norm = delta::frobenius(w0.as_ref());
    let fro = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    let top = TopVectors::of(base_side.job, &base);
    let base_vectors = top.of_block(w0.as_ref())?;
    let mut merged = w0;
    faer::linalg::matmul::matmul(
        merged.as_mut(),
        faer::Accum::Add,
        factors.x.as_ref(),
        factors.y.as_ref(),
        scale,
        Par::Seq,
    );
    let other = merged_side.analyze(merged.as_ref(), mode)?;
    let overlap = top.overlap(base_vectors, merged.as_ref())?;
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
    Ok(Comparison::changed(base, other, delta, overlap))
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

/// True when both matrices hold the same values (bit-identical storage always does).
fn identical(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> bool {
    (0..a.ncols()).all(|j| a.col(j).iter().zip(b.col(j).iter()).all(|(x, y)| x == y))
}
