//! `mpscope report`: the same spectra and scores as the explorer, printed for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::anatomy::{Anatomy, Block, Proj};
use crate::checkpoint::Checkpoint;
use crate::inspect::dtype_label;
use crate::rank::{ScoreKind, rank};
use crate::scan::{self, ComputeOptions, Job};
use crate::spectrum::{Analysis, HeavyTail, SigmaMode, Sigmas, Warning};
use crate::worker::Progress;

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One header line and one line per block.
    Csv,
    /// One JSON object (schema in README).
    Json,
}

/// One computed block: where it comes from and its analysis (or why it failed).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The block.
    pub block: Block,
    /// Its analysis under the chosen σ mode, or the reason it failed.
    pub result: Result<Analysis, String>,
}

/// Every block of a run, in plan order (each whole matrix followed by its heads).
#[derive(Debug, Clone)]
pub struct Results {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Time the scan took.
    pub elapsed: Duration,
    /// False when the run was interrupted before every block was computed.
    pub complete: bool,
}

impl Results {
    /// Number of blocks that failed.
    pub fn failed(&self) -> usize {
        self.entries.iter().filter(|e| e.result.is_err()).count()
    }
}

/// Computes every job on `threads` threads, calling `progress` now and then while it runs.
pub fn run(
    ck: Arc<Checkpoint>,
    jobs: Vec<Job>,
    compute: ComputeOptions,
    mode: SigmaMode,
    threads: usize,
    progress: impl FnMut(&Progress),
) -> Result<Results, crate::worker::StartError> {
    run_until(ck, jobs, compute, mode, threads, progress, &|| false)
}

/// [`run`] that stops early, keeping what finished, once `stop` says so (checked every
/// 100 ms; e.g. on Ctrl-C). The blocks left are errors "not computed: interrupted".
pub fn run_until(
    ck: Arc<Checkpoint>,
    jobs: Vec<Job>,
    compute: ComputeOptions,
    mode: SigmaMode,
    threads: usize,
    progress: impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Results, crate::worker::StartError> {
    let blocks: Vec<Block> = jobs.iter().map(|j| j.block.clone()).collect();
    // Nothing is on screen, so the biggest blocks go first: the small ones then fill the
    // threads at the end instead of one thread finishing a whole matrix alone.
    let batch = crate::worker::run_batch(
        jobs,
        |j: &Job| j.block.id,
        scan::cost,
        threads,
        move |j: &Job| scan::analyze(&ck, j, &compute, mode),
        progress,
        stop,
    )?;
    let entries = blocks
        .into_iter()
        .zip(batch.results)
        .map(|(block, result)| Entry { block, result })
        .collect();
    Ok(Results {
        entries,
        elapsed: batch.elapsed,
        complete: batch.complete,
    })
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed over `path` once
/// complete: an interrupted run never leaves a half-written report where the last one was.
pub fn write_beside(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    // A device or pipe (`-o /dev/null`, `-o /dev/stdout`) is written to, never replaced.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::write(path, bytes);
    }
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// One block as the JSON and CSV outputs and the explorer's `e` export write it (one schema,
/// one parser: the export adds `sigma_mode`, `sigmas` and `singular_values`; `--values` adds
/// `sigmas`, `singular_values` and `shuffled_values`, what the explorer needs to reopen it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRecord {
    /// Full tensor name.
    pub tensor: String,
    /// Layer index.
    pub layer: Option<usize>,
    /// Projection: q, k, v, o, gate, up, down, other.
    pub proj: String,
    /// Head index, `null` for the whole matrix.
    pub head: Option<usize>,
    /// Routed expert index (Mixture of Experts), `null` for every other matrix.
    #[serde(default)]
    pub expert: Option<usize>,
    /// Logical rows.
    pub rows: usize,
    /// Logical columns.
    pub cols: usize,
    /// Stored dtype.
    pub dtype: String,
    /// σ under the chosen mode (the `entry` σ where the `fit` estimator failed).
    pub sigma: Option<f64>,
    /// The `fit` estimator found no MP bulk (its σ is the `entry` σ).
    pub sigma_fit_failed: Option<bool>,
    /// ν−.
    pub mp_min: Option<f64>,
    /// ν+.
    pub mp_max: Option<f64>,
    /// KS distance.
    pub ks: Option<f64>,
    /// Values above the bulk.
    pub above: Option<usize>,
    /// Values below the bulk.
    pub below: Option<usize>,
    /// ν₁ / ν+.
    pub edge_ratio: Option<f64>,
    /// Energy share outside the bulk.
    pub outlier_mass: Option<f64>,
    /// Σν² / ν₁².
    pub stable_rank: Option<f64>,
    /// Mean KS p-value of the right singular vectors.
    pub vector_p: Option<f64>,
    /// Power-law exponent α of the ESD's tail (WeightWatcher's fit).
    pub alpha: Option<f64>,
    /// Why `alpha` is null (too few eigenvalues, no power-law tail).
    pub alpha_reason: Option<String>,
    /// α · log10 λmax.
    pub alpha_weighted: Option<f64>,
    /// Start of the power-law tail, in λ = ν² units.
    pub xmin: Option<f64>,
    /// KS distance D of the tail from the fitted power law.
    pub pl_ks: Option<f64>,
    /// Eigenvalues in the power-law tail.
    pub pl_n: Option<usize>,
    /// log10 Σλ.
    pub log_norm: Option<f64>,
    /// log10 λmax.
    pub log_spectral_norm: Option<f64>,
    /// log10 Σλ^α.
    pub log_alpha_norm: Option<f64>,
    /// Matrix entropy, in [0, 1].
    pub entropy: Option<f64>,
    /// λ+ / λmax: the MP bulk edge over the largest eigenvalue, under the chosen σ.
    pub mp_softrank: Option<f64>,
    /// "over-trained" (α < 2), "under-trained" (α > 6) or null.
    pub warning: Option<Warning>,
    /// KS distance of the shuffled block from MP (`--randomize`): the noise floor of `ks`.
    pub rand_ks: Option<f64>,
    /// Jensen–Shannon distance between the ESDs of the block and its shuffle (`--randomize`).
    pub rand_distance: Option<f64>,
    /// Shuffled values above the MP edge: correlation traps (`--randomize`).
    pub traps: Option<usize>,
    /// σ mode of `sigma` and the scores (in the export; the report says it once at the top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_mode: Option<SigmaMode>,
    /// σ of every mode (in the export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigmas: Option<Sigmas>,
    /// Singular values, descending (with `--values`, and in the export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular_values: Option<Vec<f64>>,
    /// Singular values of the shuffled control, descending (with `--values --randomize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffled_values: Option<Vec<f64>>,
    /// Why the block failed.
    pub error: Option<String>,
}

impl MatrixRecord {
    /// The record of one entry; `values` includes the singular values.
    pub fn new(e: &Entry, values: bool) -> Self {
        Self::of(&e.block, e.result.as_ref().map_err(String::as_str), values)
    }

    /// The full record of one analysed block as the explorer exports it: the report's fields
    /// plus the σ mode, σ of every mode and the singular values.
    pub fn export(b: &Block, a: &Analysis) -> Self {
        Self {
            sigma_mode: Some(a.sigma.mode),
            sigmas: Some(a.sigmas),
            ..Self::of(b, Ok(a), true)
        }
    }

    /// The record of block `b` with its analysis or the reason it failed.
    pub fn of(b: &Block, result: Result<&Analysis, &str>, values: bool) -> Self {
        let ok = result.ok();
        let scores = ok.filter(|a| !a.scores.empty).map(|a| a.scores);
        let tail = ok.filter(|a| !a.scores.empty).map(|a| &a.heavy_tail);
        let fit = tail.and_then(|t| t.fit.as_ref().ok());
        let control = ok.and_then(|a| a.control);
        Self {
            tensor: b.tensor.clone(),
            layer: b.id.layer,
            proj: b.id.proj.proj_label().into(),
            head: b.id.head,
            expert: b.id.expert,
            rows: b.rows,
            cols: b.cols,
            dtype: dtype_label(&b.dtype),
            sigma: ok.map(|a| a.sigma.value),
            sigma_fit_failed: ok.map(|a| a.sigmas.fit_failed),
            mp_min: ok.and_then(|a| a.law.map(|l| l.lower_edge())),
            mp_max: ok.and_then(|a| a.law.map(|l| l.upper_edge())),
            ks: scores.map(|s| s.ks),
            above: scores.map(|s| s.above),
            below: scores.map(|s| s.below),
            edge_ratio: scores.map(|s| s.edge_ratio),
            outlier_mass: scores.map(|s| s.outlier_mass),
            stable_rank: scores.map(|s| s.stable_rank),
            vector_p: scores.and_then(|s| s.vector_p),
            alpha: fit.map(|f| f.alpha),
            alpha_reason: tail.and_then(|t| t.fit.as_ref().err().cloned()),
            alpha_weighted: tail.and_then(HeavyTail::alpha_weighted),
            xmin: fit.map(|f| f.xmin),
            pl_ks: fit.map(|f| f.d),
            pl_n: fit.map(|f| f.n_tail),
            log_norm: tail.map(|t| t.log_norm),
            log_spectral_norm: tail.map(|t| t.log_spectral_norm),
            log_alpha_norm: ok
                .zip(tail)
                .and_then(|(a, t)| t.log_alpha_norm(&a.spectrum.values)),
            entropy: tail.map(|t| t.entropy),
            mp_softrank: scores.map(|s| s.mp_softrank),
            warning: tail.and_then(HeavyTail::warning),
            rand_ks: control.map(|c| c.rand_ks),
            rand_distance: control.map(|c| c.rand_distance),
            traps: control.map(|c| c.traps),
            sigma_mode: None,
            // With the values, what rescoring needs too: a report opens in the explorer.
            sigmas: ok.filter(|_| values).map(|a| a.sigmas),
            singular_values: ok.filter(|_| values).map(|a| a.spectrum.values.clone()),
            shuffled_values: ok
                .filter(|_| values)
                .and_then(|a| a.spectrum.shuffled.clone()),
            error: match result {
                Err(msg) => Some(msg.to_string()),
                Ok(a) if a.scores.empty => Some("empty block (all zeros)".into()),
                Ok(_) => None,
            },
        }
    }
}

/// The model description at the top of the JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// What the user named.
    pub path: String,
    /// Detected family.
    pub family: String,
    /// Number of layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: Option<usize>,
    /// Key/value heads.
    pub kv_heads: Option<usize>,
    /// Head dimension.
    pub head_dim: Option<usize>,
    /// Routed experts per layer (Mixture of Experts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts: Option<usize>,
    /// Tensor count per dtype.
    pub dtypes: BTreeMap<String, usize>,
}

impl ModelRecord {
    /// Describes an opened model.
    pub fn new(path: &str, ck: &Checkpoint, an: &Anatomy) -> Self {
        let mut dtypes = BTreeMap::new();
        for t in ck.tensors() {
            *dtypes.entry(dtype_label(&t.dtype)).or_default() += 1;
        }
        Self {
            path: path.to_string(),
            family: an.family.label().into(),
            layers: an.num_layers,
            heads: an.num_heads,
            kv_heads: an.num_kv_heads,
            head_dim: an.head_dim,
            experts: an.num_experts,
            dtypes,
        }
    }
}

/// The whole JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct JsonReport {
    /// The model.
    pub model: ModelRecord,
    /// σ mode of every score.
    pub sigma_mode: SigmaMode,
    /// False when the run was interrupted: the blocks not reached say so in `error`.
    pub complete: bool,
    /// With `--top`: the score the matrices are ranked by (strangest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranked_by: Option<&'static str>,
    /// Every block (with `--top`, the strangest, in rank order).
    pub matrices: Vec<MatrixRecord>,
}

impl JsonReport {
    /// The report as pretty JSON (no trailing newline): the one writer of every JSON report,
    /// whole or merged from shards.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// The report as one JSON document; `ranked_by` names the score of a `--top` ranking.
pub fn to_json(
    model: ModelRecord,
    mode: SigmaMode,
    r: &Results,
    values: bool,
    ranked_by: Option<ScoreKind>,
) -> String {
    json_report(model, mode, r, values, ranked_by).to_json()
}

/// The JSON report's document, before it is written.
pub fn json_report(
    model: ModelRecord,
    mode: SigmaMode,
    r: &Results,
    values: bool,
    ranked_by: Option<ScoreKind>,
) -> JsonReport {
    JsonReport {
        model,
        sigma_mode: mode,
        complete: r.complete,
        ranked_by: ranked_by.map(ScoreKind::name),
        matrices: r
            .entries
            .iter()
            .map(|e| MatrixRecord::new(e, values))
            .collect(),
    }
}

/// CSV columns, in order.
pub const CSV_COLUMNS: [&str; 35] = [
    "tensor",
    "layer",
    "proj",
    "head",
    "expert",
    "rows",
    "cols",
    "dtype",
    "sigma",
    "sigma_fit_failed",
    "mp_min",
    "mp_max",
    "ks",
    "above",
    "below",
    "edge_ratio",
    "outlier_mass",
    "stable_rank",
    "vector_p",
    "alpha",
    "alpha_reason",
    "alpha_weighted",
    "xmin",
    "pl_ks",
    "pl_n",
    "log_norm",
    "log_spectral_norm",
    "log_alpha_norm",
    "entropy",
    "mp_softrank",
    "warning",
    "rand_ks",
    "rand_distance",
    "traps",
    "error",
];

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The report as CSV (same columns as JSON, without the arrays).
pub fn to_csv(r: &Results) -> String {
    records_to_csv(r.entries.iter().map(|e| MatrixRecord::new(e, false)))
}

/// Records as CSV (e.g. a merged report's).
pub fn records_to_csv(records: impl IntoIterator<Item = MatrixRecord>) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for m in records {
        let fields = [
            csv_field(&m.tensor),
            opt(m.layer),
            m.proj,
            opt(m.head),
            opt(m.expert),
            m.rows.to_string(),
            m.cols.to_string(),
            m.dtype,
            opt(m.sigma),
            opt(m.sigma_fit_failed),
            opt(m.mp_min),
            opt(m.mp_max),
            opt(m.ks),
            opt(m.above),
            opt(m.below),
            opt(m.edge_ratio),
            opt(m.outlier_mass),
            opt(m.stable_rank),
            opt(m.vector_p),
            opt(m.alpha),
            csv_field(&m.alpha_reason.unwrap_or_default()),
            opt(m.alpha_weighted),
            opt(m.xmin),
            opt(m.pl_ks),
            opt(m.pl_n),
            opt(m.log_norm),
            opt(m.log_spectral_norm),
            opt(m.log_alpha_norm),
            opt(m.entropy),
            opt(m.mp_softrank),
            opt(m.warning.map(Warning::label)),
            opt(m.rand_ks),
            opt(m.rand_distance),
            opt(m.traps),
            csv_field(&m.error.unwrap_or_default()),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

pub(crate) fn f3(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// The width a table should fit: `$COLUMNS`, else the terminal's width when standard output
/// is one (`tty`), else 80.
pub fn table_width(tty: bool) -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    columns
        .or_else(|| {
            tty.then(ratatui::crossterm::terminal::size)
                .and_then(Result::ok)
                .map(|(w, _)| w as usize)
                .filter(|&w| w > 0)
        })
        .unwrap_or(80)
}

/// The first line of a table: model, σ mode, blocks and time, split to fit `width`.
fn title_lines(model: &ModelRecord, mode: SigmaMode, r: &Results, width: usize) -> String {
    let rest = format!(
        "{} · {} layers · sigma {} · {} blocks in {:.1}s{}",
        model.family,
        model.layers,
        mode,
        r.entries.len(),
        r.elapsed.as_secs_f64(),
        match r.failed() {
            0 => String::new(),
            n => format!(" · {n} FAILED"),
        }
    );
    let one = format!("{} · {rest}", model.path);
    if one.chars().count() <= width {
        format!("{one}\n")
    } else {
        format!("{}\n{rest}\n", model.path)
    }
}

/// Columns of the matrix table, with the order in which they are dropped when the table is too
/// wide (the heads summary first moves to a line of its own).
const TABLE_HEADER: [&str; 15] = [
    "layer",
    "proj",
    "shape",
    "dtype",
    "sigma",
    "ks",
    "above",
    "below",
    "edge",
    "outlier",
    "s.rank",
    "vec_p",
    "alpha",
    "warning",
    "heads: mean ks / worst ks",
];
/// Least important first: dtype, s.rank, below, sigma, outlier, edge, warning, vec_p, above.
const TABLE_DROP: [usize; 9] = [3, 10, 7, 4, 9, 8, 13, 11, 6];
/// The heads summary column.
const HEADS_COL: usize = 14;
/// Longest projection cell (names of matrices outside the layers) before it is shortened.
const PROJ_MAX: usize = 28;

/// The report as an aligned table that fits `width` columns: a row per whole matrix (heads
/// summarised) and a per-layer summary of mean head `ks` and `vector_p` for q, k and v.
pub fn to_table(model: &ModelRecord, mode: SigmaMode, r: &Results, width: usize) -> String {
    let mut out = title_lines(model, mode, r, width);
    out.push('\n');
    let mut rows: Vec<Vec<String>> = vec![TABLE_HEADER.iter().map(|s| s.to_string()).collect()];
    let mut errors = Vec::new();
    for (i, e) in r.entries.iter().enumerate() {
        if e.block.id.head.is_some() {
            continue;
        }
        let m = MatrixRecord::new(e, false);
        let heads: Vec<(usize, f64)> = r.entries[i + 1..]
            .iter()
            .take_while(|h| h.block.id.head.is_some())
            .filter_map(|h| {
                let a = h.result.as_ref().ok()?;
                (!a.scores.empty).then(|| (h.block.id.head.unwrap_or(0), a.scores.ks))
            })
            .collect();
        let head_col = if heads.is_empty() {
            String::new()
        } else {
            let mean = heads.iter().map(|h| h.1).sum::<f64>() / heads.len() as f64;
            let worst = heads
                .iter()
                .copied()
                .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            format!(
                "{}: {:.3} / {:.3} (h{})",
                heads.len(),
                mean,
                worst.1,
                worst.0
            )
        };
        if let Some(err) = &m.error {
            errors.push(format!("{}: {err}", e.block.tensor));
        }
        rows.push(vec![
            layer_cell(&m),
            proj_cell(&m, &e.block),
            format!("{}x{}", m.rows, m.cols),
            m.dtype.clone(),
            m.sigma.map(|s| format!("{s:.4}")).unwrap_or("-".into()),
            f3(m.ks),
            opt(m.above),
            opt(m.below),
            f3(m.edge_ratio),
            f3(m.outlier_mass),
            f3(m.stable_rank),
            f3(m.vector_p),
            f3(m.alpha),
            m.warning
                .map(|w| match w {
                    Warning::OverTrained => "over",
                    Warning::UnderTrained => "under",
                })
                .unwrap_or("")
                .to_string(),
            head_col,
        ]);
    }
    out.push_str(&fit(rows, &TABLE_DROP, Some(HEADS_COL), width));
    let summary = depth_summary(r);
    if !summary.is_empty() {
        out.push_str("\nper layer, mean over heads\n");
        out.push_str(&summary);
    }
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

fn layer_cell(m: &MatrixRecord) -> String {
    m.layer.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
}

/// q, k, … ("gate e3" for a routed expert) or, outside the layers, the tensor's name
/// (shortened from the left when long).
fn proj_cell(m: &MatrixRecord, b: &Block) -> String {
    if let Some(e) = m.expert {
        return format!("{} e{e}", m.proj);
    }
    if m.proj != "other" {
        return m.proj.clone();
    }
    let name = b.tensor.trim_end_matches(".weight");
    let n = name.chars().count();
    if n <= PROJ_MAX {
        name.to_string()
    } else {
        let tail: String = name.chars().skip(n - (PROJ_MAX - 1)).collect();
        format!("~{tail}")
    }
}

/// The `n` strangest blocks by `kind`, strangest first (blocks without that score left out).
pub fn top(r: &Results, kind: ScoreKind, n: usize) -> Results {
    let ranked = rank(
        r.entries.iter().map(|e| (&e.block, e.result.as_ref().ok())),
        kind,
    );
    let entries = ranked
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .take(n)
        .filter_map(|(b, _)| r.entries.iter().find(|e| e.block.id == b.id).cloned())
        .collect();
    Results {
        entries,
        elapsed: r.elapsed,
        complete: r.complete,
    }
}

/// Scores the ranked table shows beside the ranking score, most important first (the last
/// go first when the table is too wide).
const RANKED_OTHERS: [ScoreKind; 4] = [
    ScoreKind::Ks,
    ScoreKind::Above,
    ScoreKind::EdgeRatio,
    ScoreKind::VectorP,
];

/// `--top n` as a table fitting `width`: rank, block, the ranking score, then other scores.
pub fn to_ranked_table(
    model: &ModelRecord,
    mode: SigmaMode,
    all: &Results,
    kind: ScoreKind,
    n: usize,
    width: usize,
) -> String {
    let mut out = title_lines(model, mode, all, width);
    let r = &top(all, kind, n);
    let order = if kind.low_is_far() {
        "lowest"
    } else {
        "highest"
    };
    let _ = writeln!(
        out,
        "the {} strangest blocks by {} ({order} first)\n",
        r.entries.len(),
        kind.name()
    );
    let others: Vec<ScoreKind> = RANKED_OTHERS.into_iter().filter(|k| *k != kind).collect();
    let mut header: Vec<String> = ["#", "layer", "proj", "head", "shape", kind.name()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(others.iter().map(|k| k.short().to_string()));
    let mut rows = vec![header];
    for (i, e) in r.entries.iter().enumerate() {
        let m = MatrixRecord::new(e, false);
        let a = e.result.as_ref().ok();
        let cell = |k: ScoreKind| match k {
            ScoreKind::Above | ScoreKind::Below => opt(a.and_then(|a| k.value(a))),
            _ => f3(a.and_then(|a| k.value(a))),
        };
        let mut row = vec![
            (i + 1).to_string(),
            layer_cell(&m),
            proj_cell(&m, &e.block),
            m.head
                .map(|h| format!("h{h}"))
                .unwrap_or_else(|| "-".into()),
            format!("{}x{}", m.rows, m.cols),
            cell(kind),
        ];
        row.extend(others.iter().map(|k| cell(*k)));
        rows.push(row);
    }
    let drop: Vec<usize> = (6..6 + others.len()).rev().collect();
    out.push_str(&fit(rows, &drop, None, width));
    out
}

/// Aligns `rows` (the first is the header) into lines no wider than `width` when it can: the
/// `own_line` column moves under its row, then the `drop` columns go, in that order.
pub(crate) fn fit(
    rows: Vec<Vec<String>>,
    drop: &[usize],
    own_line: Option<usize>,
    width: usize,
) -> String {
    let lines = align(&rows);
    if widest(&lines) <= width {
        return lines.concat();
    }
    let mut keep: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .filter(|c| Some(*c) != own_line)
        .collect();
    let project = |keep: &[usize]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| keep.iter().map(|&c| r[c].clone()).collect())
            .collect()
    };
    let mut lines = align(&project(&keep));
    for d in drop {
        if widest(&lines) <= width {
            break;
        }
        keep.retain(|c| c != d);
        lines = align(&project(&keep));
    }
    let mut out = String::new();
    for (row, line) in rows.iter().zip(lines) {
        out.push_str(&line);
        if let Some(extra) = own_line.map(|c| &row[c]).filter(|s| !s.is_empty()) {
            if std::ptr::eq(row, &rows[0]) {
                let _ = writeln!(out, "  {extra}");
            } else {
                let _ = writeln!(out, "  heads {extra}");
            }
        }
    }
    out
}

fn widest(lines: &[String]) -> usize {
    lines
        .iter()
        .map(|l| l.trim_end_matches('\n').chars().count())
        .max()
        .unwrap_or(0)
}

/// Rows as lines (each ending in a newline), columns padded to their widest cell.
fn align(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map(|s| s.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{s}{}", " ".repeat(widths[c] - s.chars().count())))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}

/// Mean head `ks` and `vector_p` per layer for q, k, v (the seed's line plots as numbers).
pub fn depth_summary(r: &Results) -> String {
    let mut acc: BTreeMap<(usize, Proj), (f64, usize, f64, usize)> = BTreeMap::new();
    for e in &r.entries {
        let (Some(layer), Some(_)) = (e.block.id.layer, e.block.id.head) else {
            continue;
        };
        if !matches!(e.block.id.proj, Proj::Q | Proj::K | Proj::V) {
            continue;
        }
        let Ok(a) = &e.result else { continue };
        if a.scores.empty {
            continue;
        }
        let slot = acc.entry((layer, e.block.id.proj)).or_default();
        slot.0 += a.scores.ks;
        slot.1 += 1;
        if let Some(p) = a.scores.vector_p {
            slot.2 += p;
            slot.3 += 1;
        }
    }
    if acc.is_empty() {
        return String::new();
    }
    let layers: std::collections::BTreeSet<usize> = acc.keys().map(|k| k.0).collect();
    let mut rows = vec![
        [
            "layer", "q ks", "k ks", "v ks", "q vec_p", "k vec_p", "v vec_p",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for l in layers {
        let mut row = vec![l.to_string()];
        for which in 0..2 {
            for p in [Proj::Q, Proj::K, Proj::V] {
                let v = acc.get(&(l, p)).and_then(|s| {
                    if which == 0 {
                        (s.1 > 0).then(|| s.0 / s.1 as f64)
                    } else {
                        (s.3 > 0).then(|| s.2 / s.3 as f64)
                    }
                });
                row.push(f3(v));
            }
        }
        rows.push(row);
    }
    align(&rows).concat()
}
