//! `mpscope report OTHER --base BASE`: a comparison printed as table, CSV or JSON.
//!
//! Kept apart from `report` (single-model output): the records here describe a pair of blocks
//! and the change between them.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::compare::{Comparison, Mismatch, Other, PairJob, Pairing, Sources};
use crate::inspect::dtype_label;
use crate::report::{ModelRecord, csv_field, f3, fit, opt};
use crate::scan::{self, ComputeOptions};
use crate::spectrum::SigmaMode;
use crate::worker::{Progress, StartError, run_batch};

/// One compared pair: the jobs' blocks and the comparison (or why it failed).
#[derive(Debug, Clone)]
pub struct CompareEntry {
    /// The pair.
    pub job: PairJob,
    /// The comparison, or the reason it failed.
    pub result: Result<Comparison, String>,
}

/// A whole comparison run, in the base's plan order (each whole matrix followed by its heads).
#[derive(Debug, Clone)]
pub struct CompareResults {
    /// The pairs.
    pub entries: Vec<CompareEntry>,
    /// What did not pair (its `jobs` emptied: they are in `entries`).
    pub pairing: Pairing,
    /// Time the run took.
    pub elapsed: Duration,
    /// False when interrupted.
    pub complete: bool,
}

impl CompareResults {
    /// Number of pairs that failed.
    pub fn failed(&self) -> usize {
        self.entries.iter().filter(|e| e.result.is_err()).count()
    }
}

/// Compares every pair on `threads` threads; stops early (keeping what finished) once `stop`
/// says so.
pub fn run_until(
    sources: Arc<Sources>,
    mut pairing: Pairing,
    compute: ComputeOptions,
    mode: SigmaMode,
    threads: usize,
    progress: impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<CompareResults, StartError> {
    let jobs = std::mem::take(&mut pairing.jobs);
    let kept = jobs.clone();
    let compute = sources.options(compute);
    let batch = run_batch(
        jobs,
        |j: &PairJob| j.base.block.id,
        // ΔW and the other block cost about as much again as the base block.
        |j: &PairJob| 3 * scan::cost(&j.base),
        threads,
        move |j: &PairJob| sources.compare(j, &compute, mode),
        progress,
        stop,
    )?;
    Ok(CompareResults {
        entries: kept
            .into_iter()
            .zip(batch.results)
            .map(|(job, result)| CompareEntry { job, result })
            .collect(),
        pairing,
        elapsed: batch.elapsed,
        complete: batch.complete,
    })
}

/// One pair as JSON and CSV write it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRecord {
    /// Base tensor.
    pub tensor: String,
    /// Other tensor (for an adapter: the adapted module).
    pub other_tensor: String,
    /// Layer.
    pub layer: Option<usize>,
    /// Projection.
    pub proj: String,
    /// Head, `null` for the whole matrix.
    pub head: Option<usize>,
    /// Routed expert (Mixture of Experts), `null` for every other matrix.
    pub expert: Option<usize>,
    /// Logical rows.
    pub rows: usize,
    /// Logical columns.
    pub cols: usize,
    /// Base dtype.
    pub base_dtype: String,
    /// Other dtype (for an adapter: its factors').
    pub other_dtype: String,
    /// ‖ΔW‖_F / ‖W_base‖_F (0 exactly for identical blocks).
    pub delta_rel: Option<f64>,
    /// Numerical rank of ΔW at `delta_rank_tol`.
    pub delta_rank: Option<usize>,
    /// Σν²/ν₁² of ΔW.
    pub delta_stable_rank: Option<f64>,
    /// KS distance of ΔW's values to its MP law (small: noise-like; large: a structured update).
    pub delta_ks: Option<f64>,
    /// The three largest singular values of ΔW.
    pub delta_top: Option<Vec<f64>>,
    /// The tolerance of `delta_rank` (an absolute singular value).
    pub delta_rank_tol: Option<f64>,
    /// How ΔW's values were found: zero, gram, svd or factored.
    pub delta_method: Option<String>,
    /// Mean cos² of the principal angles between the top-k right singular subspaces.
    pub subspace_overlap: Option<f64>,
    /// ks of the base block.
    pub ks_base: Option<f64>,
    /// ks of the other block.
    pub ks_other: Option<f64>,
    /// ks(other) − ks(base).
    pub ks_shift: Option<f64>,
    /// α of the base block.
    pub alpha_base: Option<f64>,
    /// α of the other block.
    pub alpha_other: Option<f64>,
    /// α(other) − α(base).
    pub alpha_shift: Option<f64>,
    /// True when ΔW is exactly zero.
    pub unchanged: Option<bool>,
    /// "adapter learned nothing here: lora_B is all zero", when so.
    pub note: Option<String>,
    /// ΔW's singular values, descending (`--values`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_singular_values: Option<Vec<f64>>,
    /// Why the pair failed.
    pub error: Option<String>,
}

impl CompareRecord {
    /// The record of one entry; `values` adds ΔW's singular values.
    pub fn new(e: &CompareEntry, values: bool) -> Self {
        let b = &e.job.base.block;
        let other_dtype = match &e.job.other {
            crate::compare::OtherBlock::Dense(o) => dtype_label(&o.dtype),
            crate::compare::OtherBlock::Lora(_) => "lora".into(),
        };
        let ok = e.result.as_ref().ok();
        let d = ok.map(|c| &c.delta);
        let ks = |a: &crate::spectrum::Analysis| (!a.scores.empty).then_some(a.scores.ks);
        Self {
            tensor: b.tensor.clone(),
            other_tensor: e.job.other_tensor().to_owned(),
            layer: b.id.layer,
            proj: b.id.proj.proj_label().into(),
            head: b.id.head,
            expert: b.id.expert,
            rows: b.rows,
            cols: b.cols,
            base_dtype: dtype_label(&b.dtype),
            other_dtype,
            delta_rel: d.map(|d| d.rel),
            delta_rank: d.map(|d| d.rank),
            delta_stable_rank: d.and_then(|d| d.stable_rank()),
            delta_ks: d.and_then(|d| d.ks()),
            delta_top: d.map(|d| d.top(3)),
            delta_rank_tol: d.map(|d| d.rank_tol),
            delta_method: d.and_then(|d| {
                serde_json::to_value(d.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
            }),
            subspace_overlap: ok.and_then(|c| c.subspace_overlap),
            ks_base: ok.and_then(|c| ks(&c.base)),
            ks_other: ok.and_then(|c| ks(&c.other)),
            ks_shift: ok.and_then(Comparison::ks_shift),
            alpha_base: ok.and_then(|c| c.base.heavy_tail.alpha()),
            alpha_other: ok.and_then(|c| c.other.heavy_tail.alpha()),
            alpha_shift: ok.and_then(Comparison::alpha_shift),
            unchanged: d.map(|d| d.is_zero()),
            note: d.and_then(|d| d.learned_nothing.clone()),
            delta_singular_values: (values && ok.is_some())
                .then(|| d.map(|d| d.values().to_vec()).unwrap_or_default()),
            error: e.result.as_ref().err().cloned(),
        }
    }
}

/// What did not pair, as the JSON report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PairingRecord {
    /// Base blocks without a partner.
    pub unpaired_base: Vec<String>,
    /// Other blocks (adapter modules) without a partner.
    pub unpaired_other: Vec<String>,
    /// Partners of different shapes (not compared).
    pub shape_mismatches: Vec<Mismatch>,
    /// Other remarks.
    pub notes: Vec<String>,
}

/// The whole comparison as one JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct CompareJson {
    /// The base model.
    pub base: ModelRecord,
    /// The other side: a model, or an adapter (`path`, `adapter`).
    pub other: serde_json::Value,
    /// σ mode of every score.
    pub sigma_mode: SigmaMode,
    /// False when the run was interrupted.
    pub complete: bool,
    /// What did not pair.
    pub pairing: PairingRecord,
    /// Every pair, each whole matrix followed by its heads.
    pub blocks: Vec<CompareRecord>,
}

/// The other side's description: a model record, or the adapter's settings.
pub fn other_record(s: &Sources) -> serde_json::Value {
    match &s.other {
        Other::Checkpoint { ck, anatomy } => {
            serde_json::to_value(ModelRecord::new(&s.other_name, ck, anatomy)).unwrap_or_default()
        }
        Other::Adapter(a) => serde_json::json!({
            "path": s.other_name,
            "adapter": {
                "r": a.config.r,
                "lora_alpha": a.config.alpha,
                "use_rslora": a.config.use_rslora,
                "fan_in_fan_out": a.config.fan_in_fan_out,
                "modules": a.modules.len(),
            },
        }),
    }
}

/// The comparison as JSON.
pub fn to_json(s: &Sources, mode: SigmaMode, r: &CompareResults, values: bool) -> String {
    let p = &r.pairing;
    let doc = CompareJson {
        base: ModelRecord::new(&s.base_name, &s.base, &s.base_anatomy),
        other: other_record(s),
        sigma_mode: mode,
        complete: r.complete,
        pairing: PairingRecord {
            unpaired_base: p.unpaired_base.clone(),
            unpaired_other: p.unpaired_other.clone(),
            shape_mismatches: p.mismatched.clone(),
            notes: p.notes.clone(),
        },
        blocks: r
            .entries
            .iter()
            .map(|e| CompareRecord::new(e, values))
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// CSV columns, in order (the arrays: `delta_top` joined by `;`).
pub const CSV_COLUMNS: [&str; 27] = [
    "tensor",
    "other_tensor",
    "layer",
    "proj",
    "head",
    "expert",
    "rows",
    "cols",
    "base_dtype",
    "other_dtype",
    "delta_rel",
    "delta_rank",
    "delta_stable_rank",
    "delta_ks",
    "delta_top",
    "delta_rank_tol",
    "delta_method",
    "subspace_overlap",
    "ks_base",
    "ks_other",
    "ks_shift",
    "alpha_base",
    "alpha_other",
    "alpha_shift",
    "unchanged",
    "note",
    "error",
];

/// The comparison as CSV, one line per pair.
pub fn to_csv(r: &CompareResults) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for e in &r.entries {
        let m = CompareRecord::new(e, false);
        let fields = [
            csv_field(&m.tensor),
            csv_field(&m.other_tensor),
            opt(m.layer),
            m.proj,
            opt(m.head),
            opt(m.expert),
            m.rows.to_string(),
            m.cols.to_string(),
            m.base_dtype,
            m.other_dtype,
            opt(m.delta_rel),
            opt(m.delta_rank),
            opt(m.delta_stable_rank),
            opt(m.delta_ks),
            m.delta_top
                .map(|t| t.iter().map(f64::to_string).collect::<Vec<_>>().join(";"))
                .unwrap_or_default(),
            opt(m.delta_rank_tol),
            m.delta_method.unwrap_or_default(),
            opt(m.subspace_overlap),
            opt(m.ks_base),
            opt(m.ks_other),
            opt(m.ks_shift),
            opt(m.alpha_base),
            opt(m.alpha_other),
            opt(m.alpha_shift),
            opt(m.unchanged),
            csv_field(&m.note.unwrap_or_default()),
            csv_field(&m.error.unwrap_or_default()),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// A relative change for people: "0" when exactly zero, 3 decimals, or scientific when small.
pub fn rel_cell(v: Option<f64>) -> String {
    match v {
        Some(0.0) => "0".into(),
        Some(v) if v.abs() < 1e-3 => format!("{v:.2e}"),
        v => f3(v),
    }
}

/// Columns of the comparison table; dropped when too wide in `TABLE_DROP` order.
const TABLE_HEADER: [&str; 8] = [
    "layer",
    "proj",
    "shape",
    "delta_rel",
    "delta_rank",
    "delta_ks",
    "note",
    "heads changed / worst delta_rel",
];
/// Least important first: shape, then the note.
const TABLE_DROP: [usize; 2] = [2, 6];
/// The heads summary column (moves to a line of its own when narrow).
const HEADS_COL: usize = 7;

/// The comparison as an aligned table fitting `width`: a row per whole matrix (delta_rel,
/// delta_rank, delta_ks; heads summarised), then what did not pair.
pub fn to_table(s: &Sources, r: &CompareResults, width: usize) -> String {
    let changed = r
        .entries
        .iter()
        .filter(|e| e.result.as_ref().is_ok_and(|c| !c.delta.is_zero()))
        .count();
    let mut out = format!(
        "{} vs {}\n{} pairs in {:.1}s · {changed} changed{}\n\n",
        s.other_name,
        s.base_name,
        r.entries.len(),
        r.elapsed.as_secs_f64(),
        match r.failed() {
            0 => String::new(),
            n => format!(" · {n} FAILED"),
        }
    );
    let mut rows: Vec<Vec<String>> = vec![TABLE_HEADER.iter().map(|s| s.to_string()).collect()];
    let mut errors = Vec::new();
    for (i, e) in r.entries.iter().enumerate() {
        if e.job.base.block.id.head.is_some() {
            continue;
        }
        let m = CompareRecord::new(e, false);
        let heads: Vec<(usize, f64)> = r.entries[i + 1..]
            .iter()
            .take_while(|h| h.job.base.block.id.head.is_some())
            .filter_map(|h| {
                let c = h.result.as_ref().ok()?;
                Some((h.job.base.block.id.head.unwrap_or(0), c.delta.rel))
            })
            .collect();
        let head_col = if heads.is_empty() {
            String::new()
        } else {
            let n = heads.iter().filter(|h| h.1 != 0.0).count();
            let worst = heads
                .iter()
                .copied()
                .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            if n == 0 {
                format!("0/{}", heads.len())
            } else {
                format!(
                    "{n}/{}: {} (h{})",
                    heads.len(),
                    rel_cell(Some(worst.1)),
                    worst.0
                )
            }
        };
        if let Some(err) = &m.error {
            errors.push(format!("{}: {err}", m.tensor));
        }
        let note = match (&e.result, m.unchanged) {
            (Ok(c), _) if let Some(which) = c.delta.zero_factor => {
                format!("learned nothing: {which} = 0")
            }
            (_, Some(true)) => "unchanged".into(),
            _ => String::new(),
        };
        rows.push(vec![
            m.layer.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            if let Some(e) = m.expert {
                format!("{} e{e}", m.proj)
            } else if m.proj == "other" {
                m.tensor.trim_end_matches(".weight").to_string()
            } else {
                m.proj.clone()
            },
            format!("{}x{}", m.rows, m.cols),
            rel_cell(m.delta_rel),
            opt(m.delta_rank),
            f3(m.delta_ks),
            note,
            head_col,
        ]);
    }
    out.push_str(&fit(rows, &TABLE_DROP, Some(HEADS_COL), width));
    let p = &r.pairing;
    let list = |out: &mut String, title: &str, items: &[String]| {
        if !items.is_empty() {
            let _ = writeln!(out, "\n{title} ({}):", items.len());
            for it in items.iter().take(20) {
                let _ = writeln!(out, "  {it}");
            }
            if items.len() > 20 {
                let _ = writeln!(out, "  … and {} more", items.len() - 20);
            }
        }
    };
    list(&mut out, "only in the base", &p.unpaired_base);
    list(&mut out, "only in the other", &p.unpaired_other);
    let mismatches: Vec<String> = p
        .mismatched
        .iter()
        .map(|m| {
            format!(
                "{}: {}x{} in the base, {}x{} in the other",
                m.block, m.base_shape[0], m.base_shape[1], m.other_shape[0], m.other_shape[1]
            )
        })
        .collect();
    list(&mut out, "shape mismatches, not compared", &mismatches);
    list(&mut out, "notes", &p.notes);
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}
