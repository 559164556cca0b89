//! Finding, memory-mapping and decoding safetensors checkpoints.
//!
//! Knows files, headers, dtypes and `config.json`; knows nothing of layer names, math or UI.
//! CONTRACT (shared with anatomy, synth, spectrum, worker): the public types and method
//! signatures below are relied on by other modules; extend, don't rename.

use std::ops::Range;
use std::path::{Path, PathBuf};

use faer::Mat;

mod error;
pub use error::CheckpointError;

/// Element type of a stored tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 double.
    F64,
    /// IEEE 754 single.
    F32,
    /// IEEE 754 half.
    F16,
    /// bfloat16.
    BF16,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits (OCP FP8 E4M3FN).
    F8E4M3,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits.
    F8E5M2,
    /// Any other dtype (integers, bool, packed formats): listed, never decoded.
    Unsupported(String),
}

/// One tensor of the checkpoint: where it lives and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Full tensor name as stored.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape as stored (row-major).
    pub shape: Vec<usize>,
    /// Index into [`Checkpoint::files`].
    pub file: usize,
    /// Byte range of the data within the whole file (header already accounted for).
    pub bytes: Range<usize>,
}

/// What `config.json` says about the model (all optional; absent keys stay `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelConfig {
    /// `architectures[0]`, e.g. "LlamaForCausalLM".
    pub architecture: Option<String>,
    /// `model_type`, e.g. "llama".
    pub model_type: Option<String>,
    /// `hidden_size` (or `n_embd`, `d_model`).
    pub hidden_size: Option<usize>,
    /// `num_hidden_layers` (or `n_layer`).
    pub num_layers: Option<usize>,
    /// `num_attention_heads` (or `n_head`).
    pub num_heads: Option<usize>,
    /// `num_key_value_heads` (GQA); `None` means equal to `num_heads`.
    pub num_kv_heads: Option<usize>,
    /// `head_dim` when given explicitly.
    pub head_dim: Option<usize>,
    /// `intermediate_size` (or `n_inner`).
    pub intermediate_size: Option<usize>,
    /// `vocab_size`.
    pub vocab_size: Option<usize>,
    /// `initializer_range`: σ of the normal initialization.
    pub initializer_range: Option<f64>,
}

/// A 2-D block cut from a stored 2-D tensor, in the logical orientation [out, in].
///
/// The stored rows `rows` (concatenated in order) × stored columns `cols` are taken, then
/// transposed when `transpose` is set (GPT-2 Conv1D stores [in, out]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selection {
    /// Index into [`Checkpoint::tensors`].
    pub tensor: usize,
    /// Stored row ranges, concatenated in order.
    pub rows: Vec<Range<usize>>,
    /// Stored column range.
    pub cols: Range<usize>,
    /// Transpose after cutting.
    pub transpose: bool,
}

/// An opened checkpoint: memory-mapped files, their tensors and the optional config.
pub struct Checkpoint {
    // private fields owned by the checkpoint module
}

impl Checkpoint {
    /// Opens a `.safetensors` file, a model directory, a sharded index, or an HF cache repo id.
    pub fn open(spec: &str) -> Result<Self, CheckpointError> {
        let _ = spec;
        todo!()
    }

    /// The directory or file the user named, resolved.
    pub fn root(&self) -> &Path {
        todo!()
    }

    /// The files opened, in order.
    pub fn files(&self) -> &[PathBuf] {
        todo!()
    }

    /// Every tensor, sorted naturally by name (layer 2 before layer 10).
    pub fn tensors(&self) -> &[TensorInfo] {
        todo!()
    }

    /// The config.json beside the weights, when present.
    pub fn config(&self) -> Option<&ModelConfig> {
        todo!()
    }

    /// Decodes a block into an f32 matrix (NaN and inf pass through unchanged).
    pub fn decode_f32(&self, sel: &Selection) -> Result<Mat<f32>, CheckpointError> {
        let _ = sel;
        todo!()
    }

    /// Decodes a block into an f64 matrix.
    pub fn decode_f64(&self, sel: &Selection) -> Result<Mat<f64>, CheckpointError> {
        let _ = sel;
        todo!()
    }
}
