//! Transformer anatomy: tensor names to layers × projections × heads.
//!
//! Knows naming rules and layouts of architecture families; knows nothing of files, math or UI.
//! CONTRACT (shared with worker, report, tui): the public types and signatures below are
//! relied on by other modules; extend, don't rename.

use crate::checkpoint::{Checkpoint, Dtype, ModelConfig, Selection, TensorInfo};

mod family;
mod heads;
mod layout;
mod names;
mod proj;

pub use proj::ParseProjError;

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
    /// Mixture-of-experts router: `block_sparse_moe.gate`, `mlp.gate`, GGUF `ffn_gate_inp`
    /// ([experts, hidden]).
    Router,
    /// Shared expert's gate: `mlp.shared_expert(s).gate_proj`, GGUF `ffn_gate_shexp`.
    SharedGate,
    /// Shared expert's up projection: `mlp.shared_expert(s).up_proj`, GGUF `ffn_up_shexp`.
    SharedUp,
    /// Shared expert's down projection: `mlp.shared_expert(s).down_proj`, GGUF `ffn_down_shexp`.
    SharedDown,
    /// Qwen2-MoE's gate of the shared expert, `mlp.shared_expert_gate` ([1, hidden]).
    SharedRouter,
    /// Any other 2-D tensor; the number tells them apart (order in the checkpoint).
    Other(u32),
}

/// Stable identity of a block: layer, projection, head (`None` = whole matrix) and expert.
///
/// Experts are a second axis beside heads: each routed expert's gate, up and down matrix is a
/// whole matrix of its own, `proj` Gate / Up / Down with `expert: Some(e)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatrixId {
    /// Layer index, `None` for matrices outside the layer stack.
    pub layer: Option<usize>,
    /// Projection.
    pub proj: Proj,
    /// Head index, `None` for the whole matrix.
    pub head: Option<usize>,
    /// Routed expert index (Mixture of Experts), `None` for every other matrix.
    pub expert: Option<usize>,
}

impl MatrixId {
    /// The whole matrix `proj` of a layer (no head, no expert).
    pub fn whole(layer: Option<usize>, proj: Proj) -> Self {
        Self {
            layer,
            proj,
            head: None,
            expert: None,
        }
    }

    /// Head `h` of this matrix.
    pub fn with_head(self, h: usize) -> Self {
        Self {
            head: Some(h),
            ..self
        }
    }

    /// Expert `e`'s matrix of this projection.
    pub fn with_expert(self, e: usize) -> Self {
        Self {
            expert: Some(e),
            head: None,
            ..self
        }
    }
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

/// A tensor that is never analysed (an integer or bool buffer, packed data, a mask), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Full tensor name as stored.
    pub tensor: String,
    /// Stored element type.
    pub dtype: Dtype,
    /// Stored shape.
    pub shape: Vec<usize>,
    /// Why it is skipped, e.g. "i64 tensor: a buffer or packed data, not a weight".
    pub reason: String,
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
    /// Routed experts per MoE layer (config.json `num_local_experts` / `num_experts` /
    /// `n_routed_experts`, GGUF `{arch}.expert_count`, else counted from the tensors).
    pub num_experts: Option<usize>,
    /// Experts each token is routed to (`num_experts_per_tok`, GGUF `expert_used_count`).
    pub experts_used: Option<usize>,
    /// Shared experts (`n_shared_experts`, or 1 when `shared_expert` tensors exist).
    pub shared_experts: Option<usize>,
    /// Whole matrices: layers in order (projections Q, K, V, O, Gate, Up, Down, then other
    /// matrices of the layer in checkpoint order), then the matrices outside the layer stack
    /// (embeddings, LM head, pooler, ...) in checkpoint order.
    pub matrices: Vec<Block>,
    /// Hints for the user about what could not be inferred (e.g. unknown head count).
    pub notes: Vec<String>,
    /// Tensors that are never analysed (buffers, integer or packed data), in checkpoint order.
    pub skipped: Vec<Skipped>,
}

impl Anatomy {
    /// Reads the layout from a checkpoint's tensor names, shapes and config.
    pub fn from_checkpoint(ck: &Checkpoint, ov: &Overrides) -> Result<Self, AnatomyError> {
        from_parts(ck.tensors(), ck.config(), ov)
    }

    /// Reads the layout from a tensor list (as [`Checkpoint::tensors`]) and an optional config.
    pub fn from_parts(
        tensors: &[TensorInfo],
        config: Option<&ModelConfig>,
        ov: &Overrides,
    ) -> Result<Self, AnatomyError> {
        layout::build(tensors, config, ov)
    }

    /// Head blocks of a whole matrix (empty when it has no heads: MLP, other, unknown layout).
    pub fn heads(&self, whole: &Block) -> Vec<Block> {
        heads::head_blocks(self, whole)
    }

    /// Hints about what could not be inferred (unknown head count, skipped stacks, ...).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The whole matrix with this id's layer, projection and expert (its `head` is ignored).
    pub fn matrix(&self, id: MatrixId) -> Option<&Block> {
        self.matrices
            .iter()
            .find(|b| b.id.layer == id.layer && b.id.proj == id.proj && b.id.expert == id.expert)
    }

    /// The block with exactly this id: a whole matrix or one of its heads.
    pub fn block(&self, id: MatrixId) -> Option<Block> {
        let whole = self.matrix(id)?;
        match id.head {
            None => Some(whole.clone()),
            Some(_) => self.heads(whole).into_iter().find(|b| b.id == id),
        }
    }

    /// Whole matrices of one layer, in projection order.
    pub fn layer_matrices(&self, layer: usize) -> impl Iterator<Item = &Block> {
        self.matrices
            .iter()
            .filter(move |b| b.id.layer == Some(layer))
    }

    /// Whole matrices outside the layer stack (embeddings, LM head, other tensors).
    pub fn outside_layers(&self) -> impl Iterator<Item = &Block> {
        self.matrices.iter().filter(|b| b.id.layer.is_none())
    }

    /// Every block: each whole matrix followed by its heads (q, k, v, o), in `matrices` order.
    pub fn all_blocks(&self) -> Vec<Block> {
        let mut out = Vec::new();
        for whole in &self.matrices {
            out.push(whole.clone());
            out.extend(self.heads(whole));
        }
        out
    }

    /// Named projections (Q … Down, then the MoE router and shared experts; not `Other`)
    /// present in at least one layer, in order.
    pub fn projections(&self) -> Vec<Proj> {
        Proj::NAMED
            .into_iter()
            .chain(Proj::MOE)
            .filter(|p| {
                self.matrices
                    .iter()
                    .any(|b| b.id.layer.is_some() && b.id.proj == *p)
            })
            .collect()
    }

    /// Number of heads a projection splits into (H for q/o, KV for k/v), when known.
    pub fn heads_of(&self, proj: Proj) -> Option<usize> {
        self.head_dim?;
        match proj {
            Proj::Q | Proj::O => self.num_heads,
            Proj::K | Proj::V => self.num_kv_heads,
            _ => None,
        }
    }

    /// Number of routed experts of `proj` in `layer` (0 when it has none).
    pub fn experts_of(&self, layer: usize, proj: Proj) -> usize {
        self.matrices
            .iter()
            .filter(|b| b.id.layer == Some(layer) && b.id.proj == proj && b.id.expert.is_some())
            .count()
    }

    /// True when the model has routed experts.
    pub fn has_experts(&self) -> bool {
        self.matrices.iter().any(|b| b.id.expert.is_some())
    }
}

/// Reads the layout from a tensor list (as [`Checkpoint::tensors`]) and an optional config;
/// `Selection::tensor` indexes `tensors`.
pub fn from_parts(
    tensors: &[TensorInfo],
    config: Option<&ModelConfig>,
    ov: &Overrides,
) -> Result<Anatomy, AnatomyError> {
    layout::build(tensors, config, ov)
}

/// Something inconsistent between names, shapes and head counts.
#[derive(Debug, thiserror::Error)]
pub enum AnatomyError {
    /// Head count and head dim do not divide a projection's size.
    #[error(
        "{tensor}: shape {shape:?} does not split into {heads} heads of dim {head_dim} \
         (check --num-heads, --num-kv-heads, --head-dim)"
    )]
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
    /// A projection's size is not a multiple of the head count or head dim given.
    #[error(
        "{tensor}: shape {shape:?} has {size} {what} features, not a multiple of {by} \
         (check --num-heads, --num-kv-heads, --head-dim)"
    )]
    Indivisible {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The size that should divide (q rows, k rows, ...).
        size: usize,
        /// Which features ("query", "key/value", "output input").
        what: &'static str,
        /// What it should divide by, e.g. "8 heads" or "head dim 64".
        by: String,
    },
    /// A fused tensor (GPT-2 `c_attn`, Phi-3 `qkv_proj`/`gate_up_proj`, NeoX
    /// `query_key_value`) whose size does not match the layout.
    #[error("{tensor}: fused shape {shape:?} cannot be split: {detail}")]
    FusedSplit {
        /// Tensor name.
        tensor: String,
        /// Its stored shape.
        shape: Vec<usize>,
        /// What was expected.
        detail: String,
    },
    /// Head counts that contradict each other or are zero (from config.json or the flags).
    #[error("invalid head counts: {detail}")]
    InvalidHeads {
        /// What is wrong, naming the flag or config key.
        detail: String,
    },
}
