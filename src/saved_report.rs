//! A JSON report written with `--values`, read back as the blocks and analyses the explorer shows, with no weights.
//!
//! The report's records carry what rescoring needs: the singular values, σ of every mode,
//! `vector_p` and, with `--randomize`, the shuffled control's values. From them every view,
//! σ mode and score is recomputed exactly as from the checkpoint (the same code, the same
//! f64 values: JSON numbers are written and parsed round-trip exact).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::anatomy::{Anatomy, Block, Family, MatrixId, Proj};
use crate::checkpoint::{Dtype, Quant, Selection};
use crate::report::{MatrixRecord, ModelRecord};
use crate::scan::Job;
use crate::spectrum::{Analysis, Precision, SigmaMode, Sigmas, Spectrum, init_sigma};

/// A report that cannot be opened in the explorer.
#[derive(Debug, thiserror::Error)]
pub enum SavedReportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The report.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not an mpscope JSON report.
    #[error(
        "{path} is not an mpscope report ({problem}); the explorer opens a checkpoint, or a \
         report written by `mpscope report MODEL --values -o FILE.json`"
    )]
    NotReport {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The report holds scores but no singular values.
    #[error(
        "{path} holds no singular values (it was written without --values); write it again \
         with `mpscope report {model} --values -o {path}`"
    )]
    NoValues {
        /// The file.
        path: PathBuf,
        /// The model it was computed from.
        model: String,
    },
}

/// The part of a JSON report the explorer reads (other fields are ignored).
#[derive(Debug, Deserialize)]
struct ReportFile {
    model: ModelRecord,
    matrices: Vec<MatrixRecord>,
}

/// A report read back: the model's layout, its blocks as jobs, and each block's analysis
/// ingredients (or why it has none).
#[derive(Debug, Clone)]
pub struct SavedReport {
    /// The report file.
    pub path: PathBuf,
    /// What the report says about the model.
    pub model: ModelRecord,
    /// Layers, projections and heads, rebuilt from the records.
    pub anatomy: Anatomy,
    /// One job per block (their selections point nowhere: there are no weights).
    pub jobs: Vec<Job>,
    /// Each block's spectrum and σ estimates, or why the report has none.
    pub blocks: HashMap<MatrixId, Result<(Spectrum, Sigmas), String>>,
    /// The report holds the shuffled control's values.
    pub randomized: bool,
}

/// True for a path the explorer should read as a report: a `.json` file that is not a sharded
/// checkpoint's `*.index.json`.
pub fn is_report_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".json") && !name.ends_with(".index.json") && path.is_file()
}

impl SavedReport {
    /// Reads the report at `path`.
    pub fn read(path: &Path) -> Result<Self, SavedReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| SavedReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let not_report = |problem: String| SavedReportError::NotReport {
            path: path.to_path_buf(),
            problem,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| not_report(format!("not JSON: {e}")))?;
        for key in ["model", "matrices"] {
            if value.get(key).is_none() {
                return Err(not_report(format!("no \"{key}\"")));
            }
        }
        let file: ReportFile =
            serde_json::from_value(value).map_err(|e| not_report(e.to_string()))?;
        if !file.matrices.iter().any(|m| m.singular_values.is_some()) {
            return Err(SavedReportError::NoValues {
                path: path.to_path_buf(),
                model: file.model.path.clone(),
            });
        }
        Ok(Self::build(path, file))
    }

    fn build(path: &Path, file: ReportFile) -> Self {
        let mut others: HashMap<String, u32> = HashMap::new();
        let mut proj_of = |m: &MatrixRecord| -> Proj {
            m.proj.parse().unwrap_or_else(|_| {
                let n = others.len() as u32;
                Proj::Other(*others.entry(m.tensor.clone()).or_insert(n))
            })
        };
        let mut wholes: Vec<Block> = Vec::new();
        let mut jobs = Vec::new();
        let mut blocks = HashMap::new();
        let mut guessed_init = false;
        for m in &file.matrices {
            let proj = proj_of(m);
            let id = MatrixId {
                layer: m.layer,
                proj,
                head: m.head,
                expert: m.expert,
            };
            let whole_name = match (m.layer, proj) {
                (Some(l), Proj::Other(_)) => format!("L{l} {}", short(&m.tensor)),
                (Some(l), p) => format!("L{l} {p}"),
                (None, _) => short(&m.tensor),
            };
            let whole_name = match m.expert {
                Some(e) => format!("{whole_name} e{e}"),
                None => whole_name,
            };
            let block = Block {
                id,
                tensor: m.tensor.clone(),
                name: match m.head {
                    Some(h) => format!("{whole_name} h{h}"),
                    None => whole_name,
                },
                rows: m.rows,
                cols: m.cols,
                dtype: dtype(&m.dtype),
                selection: Selection {
                    tensor: 0,
                    rows: Vec::new(),
                    cols: 0..0,
                    transpose: false,
                },
                embedding: false,
            };
            if m.head.is_none() {
                wholes.push(block.clone());
            }
            let fan_in = wholes
                .iter()
                .find(|w| w.id.layer == m.layer && w.id.proj == proj && w.id.expert == m.expert)
                .map_or(m.cols, |w| w.cols);
            let outcome = match &m.singular_values {
                Some(values) => {
                    let sigmas = m.sigmas.unwrap_or_else(|| {
                        guessed_init = true;
                        Sigmas::estimate(values, m.rows, m.cols, init_sigma(fan_in, None))
                    });
                    Ok((
                        Spectrum {
                            values: values.clone(),
                            rows: m.rows,
                            cols: m.cols,
                            precision: Precision::Fast,
                            vector_p: m.vector_p,
                            init_sigma: sigmas.init,
                            shuffled: m.shuffled_values.clone(),
                            compute_time: Duration::ZERO,
                        },
                        sigmas,
                    ))
                }
                None => Err(m
                    .error
                    .clone()
                    .unwrap_or_else(|| "no values in the report".into())),
            };
            blocks.insert(id, outcome);
            jobs.push(Job {
                block,
                vectors: m.head.is_some(),
                fan_in,
            });
        }
        // A `--top` report may hold heads without their whole matrix: the explorer lists
        // matrices, so each such matrix is there, saying why it has no numbers.
        let orphans: Vec<Job> = jobs
            .iter()
            .filter(|j| j.block.id.head.is_some())
            .filter(|j| {
                !wholes.iter().any(|w| {
                    (w.id.layer, w.id.proj, w.id.expert)
                        == (j.block.id.layer, j.block.id.proj, j.block.id.expert)
                })
            })
            .map(|j| {
                let mut block = j.block.clone();
                block.id.head = None;
                block.name = block
                    .name
                    .rsplit_once(" h")
                    .map_or(block.name.clone(), |(whole, _)| whole.to_string());
                (block.rows, block.cols) = (0, 0);
                Job { block, ..j.clone() }
            })
            .collect();
        for j in orphans {
            if blocks.contains_key(&j.block.id) {
                continue;
            }
            blocks.insert(
                j.block.id,
                Err("not in this report (a --top report)".into()),
            );
            wholes.push(j.block.clone());
            jobs.push(j);
        }
        let model = &file.model;
        let has_heads = file.matrices.iter().any(|m| m.head.is_some());
        let mut notes = vec![format!("a report of {}", model.path)];
        if guessed_init {
            notes.insert(
                0,
                "the report has no sigmas: σ init is nn.Linear's default".into(),
            );
        }
        let anatomy = Anatomy {
            family: family(&model.family),
            num_layers: model.layers,
            num_heads: model.heads,
            num_kv_heads: model.kv_heads,
            head_dim: model.head_dim.filter(|_| has_heads),
            hidden: None,
            num_experts: model.experts,
            experts_used: None,
            shared_experts: None,
            matrices: wholes,
            notes,
            skipped: Vec::new(),
        };
        let randomized = file.matrices.iter().any(|m| m.shuffled_values.is_some());
        Self {
            path: path.to_path_buf(),
            model: file.model,
            anatomy,
            jobs,
            blocks,
            randomized,
        }
    }

    /// The analysis of `job`'s block under `mode`, from the report's numbers (run on the
    /// explorer's worker threads like a computation).
    pub fn analyze(&self, job: &Job, mode: SigmaMode) -> Result<Analysis, String> {
        match self.blocks.get(&job.block.id) {
            Some(Ok((spectrum, sigmas))) => {
                Analysis::with_sigmas(spectrum.clone(), *sigmas, mode).map_err(|e| e.to_string())
            }
            Some(Err(e)) => Err(e.clone()),
            None => Err("not in the report".into()),
        }
    }
}

/// A tensor's name without its `.weight`, as a block name.
fn short(tensor: &str) -> String {
    tensor.trim_end_matches(".weight").to_string()
}

/// The family a report's `model.family` label names.
fn family(label: &str) -> Family {
    [
        Family::Llama,
        Family::Bert,
        Family::Gpt2,
        Family::Phi3,
        Family::NeoX,
    ]
    .into_iter()
    .find(|f| f.label() == label)
    .unwrap_or(Family::Unknown)
}

/// The dtype a report's `dtype` label names ("bf16", "q8_0", "i8 (unsupported)").
fn dtype(label: &str) -> Dtype {
    let name = label
        .trim_end_matches(" (unsupported)")
        .to_ascii_uppercase();
    let floats = [
        Dtype::F64,
        Dtype::F32,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F8E4M3,
        Dtype::F8E5M2,
    ];
    floats
        .into_iter()
        .chain(Quant::ALL.into_iter().map(Dtype::Quant))
        .find(|d| d.name() == name)
        .unwrap_or(Dtype::Unsupported(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::dtype_label;

    #[test]
    fn labels_read_back() {
        for d in [Dtype::BF16, Dtype::F8E4M3, Dtype::Quant(Quant::Q4K)] {
            assert_eq!(dtype(&dtype_label(&d)), d);
        }
        let odd = Dtype::Unsupported("I8".into());
        assert_eq!(dtype(&dtype_label(&odd)), odd);
        assert_eq!(family("gpt2"), Family::Gpt2);
        assert_eq!(family("?"), Family::Unknown);
    }

    #[test]
    fn report_paths_are_json_but_not_weight_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let (r, i) = (
            dir.path().join("r.JSON"),
            dir.path().join("model.safetensors.index.json"),
        );
        std::fs::write(&r, "{}").unwrap();
        std::fs::write(&i, "{}").unwrap();
        assert!(is_report_path(&r));
        assert!(!is_report_path(&i));
        assert!(!is_report_path(&dir.path().join("missing.json")));
    }
}
