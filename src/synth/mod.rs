//! Deterministic synthetic checkpoints for the demo, tests and benchmarks.
//!
//! A [`SynthSpec`] names a family (llama, bert, gpt2, phi3, neox, mixtral), sizes, dtype, shards, seed
//! and planted structure (spikes, heavy tails, collapse, outlier input features); [`write`] produces real safetensors files with the family's exact
//! tensor names and storage layouts (fused and transposed where the family does so), a
//! `config.json`, an index when sharded, and `truth.json` saying what was planted.
//!
//! Every layer projection is generated as a logical [out, in] matrix (q, k, v separately),
//! Kaiming-uniform with bound = gain·√(3/fan_in) unless a planting says otherwise, rounded to
//! the dtype, then laid out into storage. Each row of each logical matrix has its own random
//! stream (`Rng::stream` of the matrix key's seed and the row index), so files are
//! byte-identical for a spec whatever the thread count. Embeddings are normal(0, 0.02), norm
//! weights 1 + normal(0, 0.02), biases normal(0, 0.01).

mod derive;
mod draw;
mod error;
mod gguf;
mod layout;
mod presets;
mod recipe;
mod spec;
mod truth;
mod write;

use std::ops::Range;
use std::path::Path;

pub use derive::{
    DerivedTruth, LoraSpec, LoraTruth, UpdateSpec, UpdateTruth, write_finetune, write_lora,
};
pub use error::SynthError;
pub use gguf::GgufQuant;
pub use presets::{DEMO_SEED, PRESETS, preset};
pub use recipe::{
    Bulk, CollapseSpec, ColumnScaleSpec, HeavyTailSpec, Span, SpikeSpec, Target, parse_list,
};
pub use spec::{DEFAULT_EXPERTS, ExtraTensor, SynthDtype, SynthFamily, SynthProj, SynthSpec};
pub use truth::{CollapseTruth, ColumnScaleTruth, HeadTruth, MatrixTruth, SpikeTruth, Truth};

use layout::Plan;

/// A dense row-major f32 matrix (values already rounded to the checkpoint's dtype).
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-major values, `rows * cols` of them.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Entry (r, c); panics when out of range.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// The sub-block of rows `rows` and columns `cols` (a copy); panics when out of range.
    pub fn block(&self, rows: Range<usize>, cols: Range<usize>) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * cols.len());
        for r in rows.clone() {
            data.extend_from_slice(&self.data[r * self.cols..][cols.clone()]);
        }
        Matrix {
            rows: rows.len(),
            cols: cols.len(),
            data,
        }
    }

    /// The same values as a faer f64 matrix.
    pub fn to_faer(&self) -> faer::Mat<f64> {
        faer::Mat::from_fn(self.rows, self.cols, |r, c| self.get(r, c) as f64)
    }
}

/// A stored tensor's shape and values as they sit in the file (dtype-rounded, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Values, row-major in the stored layout.
    pub data: Vec<f32>,
}

/// Writes the checkpoint of `spec` into `out_dir` (created if missing): the weights, their
/// index when sharded, `config.json` and `truth.json`. Earlier `model*.safetensors` files and
/// index in `out_dir` that the new checkpoint does not overwrite are removed.
pub fn write(out_dir: &Path, spec: &SynthSpec) -> Result<Truth, SynthError> {
    write::write_plan(out_dir, &Plan::build(spec)?, false)
}

/// [`write`] with only the headers (and config.json): the weights are a hole in each file, all
/// zeros and no disk space. Enough for `inspect` and `report --plan` of a shape too large to
/// generate (a 70B model).
pub fn write_sparse(out_dir: &Path, spec: &SynthSpec) -> Result<Truth, SynthError> {
    write::write_plan(out_dir, &Plan::build(spec)?, true)
}

/// Writes the model of `spec` as one GGUF file, `out_dir/model.gguf` (plus truth.json), with
/// its matrices stored as `quant` and its vectors as f32, laid out and named as llama.cpp's
/// converter does: Mixtral's experts stacked into 3-D `ffn_*_exps` tensors, GPT-2's and
/// GPT-NeoX's fused q, k, v as `attn_qkv` row blocks [3·hidden, hidden]. Not BERT.
pub fn write_gguf(out_dir: &Path, spec: &SynthSpec, quant: GgufQuant) -> Result<Truth, SynthError> {
    gguf::write_gguf(out_dir, &Plan::build(spec)?.for_gguf(), quant)
}

/// What [`write`] would plant and record in truth.json, without writing anything.
pub fn truth(spec: &SynthSpec) -> Result<Truth, SynthError> {
    Ok(write::truth_of(&Plan::build(spec)?))
}

/// The logical [out, in] matrix `proj` of `layer` exactly as written (after dtype rounding),
/// before any fusing or transposing of the family's storage.
pub fn logical_matrix(
    spec: &SynthSpec,
    layer: usize,
    proj: SynthProj,
) -> Result<Matrix, SynthError> {
    let plan = Plan::build(spec)?;
    let idx = plan.find(layer, proj, None).ok_or_else(|| {
        SynthError::NoSuchMatrix(format!(
            "layer {layer} {proj} (the {} model has {} layers and projections {:?})",
            spec.family,
            spec.layers,
            spec.projections()
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
        ))
    })?;
    Ok(plan.matrix(idx))
}

/// Routed expert `expert`'s logical [out, in] matrix `proj` (gate, up or down) of `layer`,
/// exactly as written (after dtype rounding).
pub fn expert_matrix(
    spec: &SynthSpec,
    layer: usize,
    proj: SynthProj,
    expert: usize,
) -> Result<Matrix, SynthError> {
    let plan = Plan::build(spec)?;
    let idx = plan.find(layer, proj, Some(expert)).ok_or_else(|| {
        SynthError::NoSuchMatrix(format!(
            "layer {layer} {proj} of expert {expert} (the {} model has {} layers of {} experts)",
            spec.family, spec.layers, spec.experts
        ))
    })?;
    Ok(plan.matrix(idx))
}

/// The stored tensor `name` exactly as written (shape and dtype-rounded values, stored layout).
pub fn stored_tensor(spec: &SynthSpec, name: &str) -> Result<StoredTensor, SynthError> {
    let plan = Plan::build(spec)?;
    let idx = plan
        .stored
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| SynthError::NoSuchMatrix(format!("tensor `{name}`")))?;
    let data = plan.stored_values(idx);
    Ok(StoredTensor {
        shape: plan.stored[idx].shape.clone(),
        data,
    })
}

/// Every stored tensor's name and shape, in the order the layers are built.
pub fn tensor_shapes(spec: &SynthSpec) -> Result<Vec<(String, Vec<usize>)>, SynthError> {
    let plan = Plan::build(spec)?;
    Ok(plan.stored.into_iter().map(|s| (s.name, s.shape)).collect())
}

/// Sum of every tensor's data bytes (the files are this plus one small header each).
pub fn total_size(spec: &SynthSpec) -> Result<u64, SynthError> {
    Ok(Plan::build(spec)?.total_bytes())
}
