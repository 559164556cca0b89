//! Transformer anatomy: tensor names to layers × projections × heads.
//!
//! Knows naming rules and layouts of architecture families; knows nothing of files, math or UI.
//! CONTRACT (shared with worker, report, tui): the public types and signatures below are
//! relied on by other modules; extend, don't rename.

use crate::checkpoint::{Checkpoint, Dtype, Selection};

/// Architecture family, as far as naming and layout go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Llama, Mistral, Qwen2/3, Gemma, OLMo: `model.layers.N.self_attn.{q,k,v,o}_proj`.
    Llama,
    /// BERT / MiniLM: `encoder.layer.N.attention.self.{query,key,value}`.
    Bert,
    /// GPT-2: `h.N.attn.c_attn` (Conv1D, fused and transposed).
    Gpt2,
    /// Phi-3: `model.layers.N.self_attn.qkv_proj` (fused q, k, v rows).
    Phi3,
    /// GPT-NeoX / Pythia: `gpt_neox.layers.N.attention.query_key_value` (interleaved per head).
    NeoX,
    /// No known naming: every 2-D tensor is an "other" matrix.
    Unknown,
}

/// Which projection a matrix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proj {
    /// Attention query.
    Q,
    /// Attention key.
    K,
    /// Attention value.
    V,
    /// Attention output.
    O,
    /// MLP gate (SwiGLU).
    Gate,
    /// MLP up / intermediate / `c_fc`.
    Up,
    /// MLP down / output / `mlp.c_proj`.
    Down,
    /// Any other 2-D tensor; the number tells them apart (order in the checkpoint).
    Other(u32),
}

/// Stable identity of a block: layer, projection, and head (`None` = whole matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatrixId {
    /// Layer index, `None` for matrices outside the layer stack.
    pub layer: Option<usize>,
    /// Projection.
    pub proj: Proj,
    /// Head index, `None` for the whole matrix.
    pub head: Option<usize>,
}

/// One analysable block: a whole matrix or one head of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Stable identity.
    pub id: MatrixId,
    /// Full name of the stored tensor it comes from.
    pub tensor: String,
    /// Human name, e.g. "L3 q h5" or "L3 q".
    pub name: String,
    /// Logical rows (output features).
    pub rows: usize,
    /// Logical columns (input features).
    pub cols: usize,
    /// Stored element type.
    pub dtype: Dtype,
    /// How to cut it from the checkpoint.
    pub selection: Selection,
    /// True for token / position embeddings and the LM head.
    pub embedding: bool,
}

/// User overrides for what config.json says (or does not say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--num-heads`.
    pub num_heads: Option<usize>,
    /// `--num-kv-heads`.
    pub num_kv_heads: Option<usize>,
    /// `--head-dim`.
    pub head_dim: Option<usize>,
}

/// The model's layout: family, sizes, and every whole matrix with its head blocks.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// Detected family.
    pub family: Family,
    /// Number of layers found.
    pub num_layers: usize,
    /// Attention heads (q, o), when known.
    pub num_heads: Option<usize>,
    /// Key/value heads (k, v), when known.
    pub num_kv_heads: Option<usize>,
    /// Head dimension, when known.
    pub head_dim: Option<usize>,
    /// Hidden size, when known.
    pub hidden: Option<usize>,
    /// Whole matrices, ordered by layer, then projection, then name.
    pub matrices: Vec<Block>,
}

impl Anatomy {
    /// Reads the layout from a checkpoint's tensor names, shapes and config.
    pub fn from_checkpoint(ck: &Checkpoint, ov: &Overrides) -> Result<Self, AnatomyError> {
        let _ = (ck, ov);
        todo!()
    }

    /// Head blocks of a whole matrix (empty when it has no heads: MLP, other, unknown layout).
    pub fn heads(&self, whole: &Block) -> Vec<Block> {
        let _ = whole;
        todo!()
    }
}

/// Something inconsistent between names, shapes and head counts.
#[derive(Debug, thiserror::Error)]
pub enum AnatomyError {
    /// Head count and head dim do not divide a projection's size.
    #[error("{tensor}: shape {shape:?} does not split into {heads} heads of dim {head_dim}")]
    HeadSplit {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Heads asked for.
        heads: usize,
        /// Head dim asked for.
        head_dim: usize,
    },
}
