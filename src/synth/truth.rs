//! What was planted, written as `truth.json` beside the weights.

use serde::{Deserialize, Serialize};

use super::recipe::Bulk;
use super::spec::{SynthProj, SynthSpec};

/// Everything the generator planted, so tests can check an analysis against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Generator name and format version.
    pub generator: String,
    /// The spec that produced the files (writing it again gives the same bytes).
    pub spec: SynthSpec,
    /// Head dimension used.
    pub head_dim: usize,
    /// MLP width used.
    pub intermediate: usize,
    /// Weight files written, in shard order.
    pub files: Vec<String>,
    /// Sum of every tensor's data bytes (the index's `metadata.total_size`).
    pub total_size: u64,
    /// Every 2-D matrix in logical [out, in] orientation: embeddings, layer by layer, then the
    /// tensors after the layers and the extras.
    pub matrices: Vec<MatrixTruth>,
}

impl Truth {
    /// The logical matrix `proj` of `layer` (a dense one, not an expert's).
    pub fn matrix(&self, layer: usize, proj: SynthProj) -> Option<&MatrixTruth> {
        self.matrices
            .iter()
            .find(|m| m.layer == Some(layer) && m.proj == Some(proj) && m.expert.is_none())
    }

    /// Routed expert `expert`'s matrix `proj` (gate, up or down) of `layer`.
    pub fn expert(&self, layer: usize, proj: SynthProj, expert: usize) -> Option<&MatrixTruth> {
        self.matrices
            .iter()
            .find(|m| m.layer == Some(layer) && m.proj == Some(proj) && m.expert == Some(expert))
    }

    /// A matrix outside the layer projections (embedding, pooler, extra) by tensor name.
    pub fn named(&self, tensor: &str) -> Option<&MatrixTruth> {
        self.matrices
            .iter()
            .find(|m| m.proj.is_none() && m.tensor == tensor)
    }
}

/// One logical matrix: its bulk, scale and planted structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixTruth {
    /// Generator key (`L3.q`, `L3.e5.gate` for an expert, `L3.router`, or the tensor name
    /// outside layers); seeds its random stream.
    pub key: String,
    /// Stored tensor holding it (a fused tensor for GPT-2 / Phi-3 / NeoX attention).
    pub tensor: String,
    /// Layer, for layer projections.
    pub layer: Option<usize>,
    /// Projection, for layer projections.
    pub proj: Option<SynthProj>,
    /// Routed expert index, for an expert's gate, up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<usize>,
    /// Logical rows (out).
    pub rows: usize,
    /// Logical columns (in, fan_in).
    pub cols: usize,
    /// True for token / position embeddings and the LM head.
    pub embedding: bool,
    /// Bulk distribution of the whole matrix (heads may override).
    pub bulk: Bulk,
    /// Entry σ of the bulk (before dtype rounding and planted structure).
    pub sigma: f64,
    /// Uniform bound √3·σ for Kaiming-uniform bulks.
    pub bound: Option<f64>,
    /// Whole-matrix spikes.
    pub spikes: Vec<SpikeTruth>,
    /// Whole-matrix collapse.
    pub collapse: Option<CollapseTruth>,
    /// Whole-matrix column scales (outlier input features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_scale: Option<ColumnScaleTruth>,
    /// Heads with structure of their own (plain heads are not listed).
    pub heads: Vec<HeadTruth>,
}

/// A head block with its own bulk, spikes or collapse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadTruth {
    /// Head index.
    pub head: usize,
    /// Block rows (d for q/k/v, hidden for o).
    pub rows: usize,
    /// Block columns (hidden for q/k/v, d for o).
    pub cols: usize,
    /// Bulk distribution in this head.
    pub bulk: Bulk,
    /// Entry σ of the bulk.
    pub sigma: f64,
    /// Spikes living in this head only.
    pub spikes: Vec<SpikeTruth>,
    /// Collapse of this head.
    pub collapse: Option<CollapseTruth>,
    /// Column scales of this head only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_scale: Option<ColumnScaleTruth>,
}

/// One planted rank-one spike θ·u·vᵀ (u, v unit, orthonormal within the block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeTruth {
    /// θ / BBP threshold.
    pub multiple: f64,
    /// θ.
    pub strength: f64,
    /// BBP threshold σ(m n)^{1/4} of the block.
    pub bbp: f64,
    /// Where the singular value is expected: √((θ²+σ²m)(θ²+σ²n))/θ.
    pub expected_sv: f64,
}

/// A collapsed block: α·(L + ε·noise), L of rank r with unit-variance entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollapseTruth {
    /// Rank r of the low-rank part.
    pub rank: usize,
    /// Relative noise ε.
    pub eps: f64,
    /// α = σ/√(1+ε²), so the block keeps entry σ.
    pub alpha: f64,
    /// Approximate range αε(√q ∓ √p) of the p − r small singular values.
    pub noise_edges: [f64; 2],
}

/// Column scales s_j (log-normal, mean square 1) multiplying a block's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnScaleTruth {
    /// τ, the standard deviation of log s_j.
    pub tau: f64,
    /// Smallest s_j.
    pub min: f64,
    /// Largest s_j.
    pub max: f64,
    /// Participation ratio (Σ s_j²)² / Σ s_j⁴ / n: 1 for equal scales, small when a few
    /// columns dominate.
    pub participation: f64,
}
