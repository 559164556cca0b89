//! What to generate: family, sizes, dtype, sharding, seed and planted structure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::SynthError;
use super::recipe::{CollapseSpec, ColumnScaleSpec, HeavyTailSpec, SpikeSpec};

/// Architecture family whose tensor naming and storage layout the writer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthFamily {
    /// Llama: separate `q/k/v/o_proj`, SwiGLU MLP, GQA.
    Llama,
    /// BERT: `attention.self.{query,key,value}`, no GQA.
    Bert,
    /// GPT-2: Conv1D (transposed) weights, fused `c_attn`.
    Gpt2,
    /// Phi-3: fused `qkv_proj` and `gate_up_proj`.
    Phi3,
    /// GPT-NeoX: `query_key_value` interleaved per head.
    Neox,
    /// Mixtral: Llama attention, a Mixture-of-Experts MLP of `experts` routed experts
    /// (`block_sparse_moe.experts.E.w1/w2/w3`) and a router (`block_sparse_moe.gate`).
    Mixtral,
}

impl SynthFamily {
    /// Every family, in CLI order.
    pub const ALL: [SynthFamily; 6] = [
        SynthFamily::Llama,
        SynthFamily::Bert,
        SynthFamily::Gpt2,
        SynthFamily::Phi3,
        SynthFamily::Neox,
        SynthFamily::Mixtral,
    ];

    /// The CLI name (`llama`, `bert`, `gpt2`, `phi3`, `neox`, `mixtral`).
    pub fn as_str(self) -> &'static str {
        match self {
            SynthFamily::Llama => "llama",
            SynthFamily::Bert => "bert",
            SynthFamily::Gpt2 => "gpt2",
            SynthFamily::Phi3 => "phi3",
            SynthFamily::Neox => "neox",
            SynthFamily::Mixtral => "mixtral",
        }
    }

    /// True when the family has a SwiGLU gate projection (Mixtral: in every expert).
    pub fn has_gate(self) -> bool {
        matches!(
            self,
            SynthFamily::Llama | SynthFamily::Phi3 | SynthFamily::Mixtral
        )
    }

    /// True when the family supports grouped-query attention (kv heads ≠ heads).
    pub fn supports_gqa(self) -> bool {
        matches!(
            self,
            SynthFamily::Llama | SynthFamily::Phi3 | SynthFamily::Mixtral
        )
    }

    /// True when the MLP is a Mixture of Experts (gate, up and down live in the experts).
    pub fn is_moe(self) -> bool {
        self == SynthFamily::Mixtral
    }
}

impl fmt::Display for SynthFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SynthFamily {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "llama" => Ok(SynthFamily::Llama),
            "bert" => Ok(SynthFamily::Bert),
            "gpt2" | "gpt-2" => Ok(SynthFamily::Gpt2),
            "phi3" | "phi-3" => Ok(SynthFamily::Phi3),
            "neox" | "gpt-neox" | "gpt_neox" => Ok(SynthFamily::Neox),
            "mixtral" => Ok(SynthFamily::Mixtral),
            _ => Err(SynthError::parse(
                "family",
                s,
                "expected one of llama, bert, gpt2, phi3, neox, mixtral",
            )),
        }
    }
}

/// Element type the weights are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthDtype {
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
    /// IEEE single.
    F32,
}

impl SynthDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            SynthDtype::Bf16 | SynthDtype::F16 => 2,
            SynthDtype::F32 => 4,
        }
    }

    /// The CLI name (`bf16`, `f16`, `f32`).
    pub fn as_str(self) -> &'static str {
        match self {
            SynthDtype::Bf16 => "bf16",
            SynthDtype::F16 => "f16",
            SynthDtype::F32 => "f32",
        }
    }

    /// The `torch_dtype` string of config.json.
    pub fn torch_name(self) -> &'static str {
        match self {
            SynthDtype::Bf16 => "bfloat16",
            SynthDtype::F16 => "float16",
            SynthDtype::F32 => "float32",
        }
    }

    /// The safetensors dtype's name ("BF16", "F16", "F32").
    pub fn safetensors_name(self) -> &'static str {
        match self {
            SynthDtype::Bf16 => "BF16",
            SynthDtype::F16 => "F16",
            SynthDtype::F32 => "F32",
        }
    }

    /// The safetensors dtype.
    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            SynthDtype::Bf16 => safetensors::Dtype::BF16,
            SynthDtype::F16 => safetensors::Dtype::F16,
            SynthDtype::F32 => safetensors::Dtype::F32,
        }
    }

    /// Rounds an f32 to the nearest value this dtype can hold (round to nearest even).
    #[inline]
    pub fn round(self, x: f32) -> f32 {
        match self {
            SynthDtype::Bf16 => half::bf16::from_f32(x).to_f32(),
            SynthDtype::F16 => half::f16::from_f32(x).to_f32(),
            SynthDtype::F32 => x,
        }
    }

    /// Writes the little-endian stored bytes of `xs` (each first rounded to f32) into `out`
    /// (exactly `size()` bytes per value).
    #[inline]
    pub(crate) fn encode_row(self, xs: &[f64], out: &mut [u8]) {
        match self {
            SynthDtype::Bf16 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(2)) {
                    let b = bf16_bits(*x as f32);
                    o[0] = b as u8;
                    o[1] = (b >> 8) as u8;
                }
            }
            SynthDtype::F16 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(2)) {
                    o.copy_from_slice(&half::f16::from_f32(*x as f32).to_le_bytes());
                }
            }
            SynthDtype::F32 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(4)) {
                    o.copy_from_slice(&(*x as f32).to_le_bytes());
                }
            }
        }
    }

    /// Writes the stored bytes of `xs` (already f32) into `out`.
    #[inline]
    pub(crate) fn encode_f32_row(self, xs: &[f32], out: &mut [u8]) {
        match self {
            SynthDtype::Bf16 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(2)) {
                    let b = bf16_bits(*x);
                    o[0] = b as u8;
                    o[1] = (b >> 8) as u8;
                }
            }
            SynthDtype::F16 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(2)) {
                    o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes());
                }
            }
            SynthDtype::F32 => {
                for (x, o) in xs.iter().zip(out.chunks_exact_mut(4)) {
                    o.copy_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
}

/// bfloat16 bits of `x`, rounded to nearest even exactly as `half::bf16::from_f32` (checked by
/// a test), written out so the hot loop inlines.
#[inline(always)]
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if b & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((b >> 16) | 0x0040) as u16;
    }
    let round = 0x0000_8000u32;
    if b & round != 0 && b & (3 * round - 1) != 0 {
        ((b >> 16) + 1) as u16
    } else {
        (b >> 16) as u16
    }
}

impl fmt::Display for SynthDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SynthDtype {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bf16" | "bfloat16" => Ok(SynthDtype::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(SynthDtype::F16),
            "f32" | "fp32" | "float32" | "float" => Ok(SynthDtype::F32),
            _ => Err(SynthError::parse(
                "dtype",
                s,
                "expected one of bf16, f16, f32",
            )),
        }
    }
}

/// A logical projection of a layer, always in PyTorch [out, in] orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthProj {
    /// Query [heads·d, hidden].
    Q,
    /// Key [kv_heads·d, hidden].
    K,
    /// Value [kv_heads·d, hidden].
    V,
    /// Attention output [hidden, heads·d].
    O,
    /// SwiGLU gate [intermediate, hidden] (llama, phi3 only).
    Gate,
    /// MLP up [intermediate, hidden].
    Up,
    /// MLP down [hidden, intermediate].
    Down,
}

impl SynthProj {
    /// Every projection, in layer order.
    pub const ALL: [SynthProj; 7] = [
        SynthProj::Q,
        SynthProj::K,
        SynthProj::V,
        SynthProj::O,
        SynthProj::Gate,
        SynthProj::Up,
        SynthProj::Down,
    ];

    /// Short name (`q`, `k`, `v`, `o`, `gate`, `up`, `down`).
    pub fn as_str(self) -> &'static str {
        match self {
            SynthProj::Q => "q",
            SynthProj::K => "k",
            SynthProj::V => "v",
            SynthProj::O => "o",
            SynthProj::Gate => "gate",
            SynthProj::Up => "up",
            SynthProj::Down => "down",
        }
    }

    /// True for q, k, v, o (the projections that have heads).
    pub fn is_attention(self) -> bool {
        matches!(
            self,
            SynthProj::Q | SynthProj::K | SynthProj::V | SynthProj::O
        )
    }
}

impl From<SynthProj> for crate::anatomy::Proj {
    fn from(p: SynthProj) -> Self {
        use crate::anatomy::Proj;
        match p {
            SynthProj::Q => Proj::Q,
            SynthProj::K => Proj::K,
            SynthProj::V => Proj::V,
            SynthProj::O => Proj::O,
            SynthProj::Gate => Proj::Gate,
            SynthProj::Up => Proj::Up,
            SynthProj::Down => Proj::Down,
        }
    }
}

impl fmt::Display for SynthProj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SynthProj {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "q" => Ok(SynthProj::Q),
            "k" => Ok(SynthProj::K),
            "v" => Ok(SynthProj::V),
            "o" => Ok(SynthProj::O),
            "gate" => Ok(SynthProj::Gate),
            "up" => Ok(SynthProj::Up),
            "down" => Ok(SynthProj::Down),
            _ => Err(SynthError::parse(
                "projection",
                s,
                "expected one of q, k, v, o, gate, up, down",
            )),
        }
    }
}

/// An extra 2-D tensor outside the layer stack, Kaiming-uniform with bound = gain·√(3/cols).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraTensor {
    /// Full tensor name, e.g. `reference.kaiming_128x3072.weight`.
    pub name: String,
    /// Rows m (fan_out).
    pub rows: usize,
    /// Columns n (fan_in).
    pub cols: usize,
    /// Kaiming gain (1 ⇒ σ = 1/√n).
    pub gain: f64,
}

impl ExtraTensor {
    /// A Kaiming-uniform reference matrix named `reference.kaiming_{rows}x{cols}.weight`.
    pub fn kaiming_reference(rows: usize, cols: usize, gain: f64) -> Self {
        ExtraTensor {
            name: format!("reference.kaiming_{rows}x{cols}.weight"),
            rows,
            cols,
            gain,
        }
    }
}

/// Everything that determines a synthetic checkpoint (same spec ⇒ byte-identical files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    /// Naming and layout family.
    pub family: SynthFamily,
    /// Number of transformer layers.
    pub layers: usize,
    /// Hidden size (model width).
    pub hidden: usize,
    /// Attention heads (q, o).
    pub heads: usize,
    /// Key/value heads (k, v); must divide `heads`; equal to `heads` outside llama/phi3.
    pub kv_heads: usize,
    /// Head dimension; `None` ⇒ hidden / heads.
    pub head_dim: Option<usize>,
    /// MLP width; `None` ⇒ llama/phi3: ⌈8/3·hidden⌉ rounded up to a multiple of 64,
    /// bert/gpt2/neox: 4·hidden.
    pub intermediate: Option<usize>,
    /// Vocabulary size (rows of the embeddings).
    pub vocab: usize,
    /// Maximum positions: rows of bert/gpt2 position embeddings, config value elsewhere.
    pub positions: usize,
    /// Stored element type.
    pub dtype: SynthDtype,
    /// Number of safetensors files (1 ⇒ `model.safetensors`, else sharded with an index).
    pub shards: usize,
    /// Random seed.
    pub seed: u64,
    /// Kaiming gain of every projection (bound = gain·√(3/fan_in), σ = gain/√fan_in).
    pub gain: f64,
    /// Planted rank-one spikes.
    pub spikes: Vec<SpikeSpec>,
    /// Bulk distributions other than Kaiming-uniform (heavy tails).
    pub heavy_tail: Vec<HeavyTailSpec>,
    /// Collapsed blocks (low rank + small noise: a pile-up of small singular values).
    pub collapse: Vec<CollapseSpec>,
    /// Outlier input features (log-normal column scales).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub column_scale: Vec<ColumnScaleSpec>,
    /// Extra Kaiming-uniform 2-D tensors.
    pub extras: Vec<ExtraTensor>,
    /// Routed experts per layer (Mixtral; 0 for the dense families).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub experts: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Routed experts of a Mixtral spec made by [`SynthSpec::new`].
pub const DEFAULT_EXPERTS: usize = 4;

impl SynthSpec {
    /// A plain spec with small defaults: kv_heads = heads, vocab 1024, 128 positions, bf16,
    /// one file, seed 0, gain 1, nothing planted.
    pub fn new(family: SynthFamily, layers: usize, hidden: usize, heads: usize) -> Self {
        SynthSpec {
            family,
            layers,
            hidden,
            heads,
            kv_heads: heads,
            head_dim: None,
            intermediate: None,
            vocab: 1024,
            positions: 128,
            dtype: SynthDtype::Bf16,
            shards: 1,
            seed: 0,
            gain: 1.0,
            spikes: Vec::new(),
            heavy_tail: Vec::new(),
            collapse: Vec::new(),
            column_scale: Vec::new(),
            extras: Vec::new(),
            experts: if family.is_moe() { DEFAULT_EXPERTS } else { 0 },
        }
    }

    /// Experts each token is routed to (config `num_experts_per_tok`): 2, or 1 with one expert.
    pub fn experts_used(&self) -> usize {
        self.experts.min(2)
    }

    /// Head dimension actually used.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden.checked_div(self.heads).unwrap_or(0))
    }

    /// MLP width actually used.
    pub fn intermediate(&self) -> usize {
        self.intermediate.unwrap_or(if self.family.has_gate() {
            (8 * self.hidden).div_ceil(3).div_ceil(64) * 64
        } else {
            4 * self.hidden
        })
    }

    /// Logical shape [rows, cols] of a layer projection (no validation).
    pub fn proj_shape(&self, proj: SynthProj) -> (usize, usize) {
        let d = self.head_dim();
        let (h, i) = (self.hidden, self.intermediate());
        match proj {
            SynthProj::Q => (self.heads * d, h),
            SynthProj::K | SynthProj::V => (self.kv_heads * d, h),
            SynthProj::O => (h, self.heads * d),
            SynthProj::Gate | SynthProj::Up => (i, h),
            SynthProj::Down => (h, i),
        }
    }

    /// Number of heads a projection splits into (`None` for MLP projections).
    pub fn proj_heads(&self, proj: SynthProj) -> Option<usize> {
        match proj {
            SynthProj::Q | SynthProj::O => Some(self.heads),
            SynthProj::K | SynthProj::V => Some(self.kv_heads),
            _ => None,
        }
    }

    /// Projections present in this family as dense layer matrices (a Mixture-of-Experts
    /// family has its gate, up and down in the experts instead).
    pub fn projections(&self) -> Vec<SynthProj> {
        SynthProj::ALL
            .into_iter()
            .filter(|p| *p != SynthProj::Gate || self.family.has_gate())
            .filter(|p| p.is_attention() || !self.family.is_moe())
            .collect()
    }

    /// Checks sizes and family constraints (targets are checked when the model is planned).
    pub fn validate(&self) -> Result<(), SynthError> {
        let fam = self.family;
        let bad = |m: String| Err(SynthError::Spec(m));
        if self.layers == 0 || self.hidden == 0 || self.heads == 0 || self.kv_heads == 0 {
            return bad(format!(
                "layers ({}), hidden ({}), heads ({}) and kv heads ({}) must all be at least 1",
                self.layers, self.hidden, self.heads, self.kv_heads
            ));
        }
        if self.head_dim.is_none() && !self.hidden.is_multiple_of(self.heads) {
            return bad(format!(
                "hidden size {} is not a multiple of {} heads; pass a head dim explicitly",
                self.hidden, self.heads
            ));
        }
        if self.head_dim == Some(0) {
            return bad("head dim must be at least 1".to_string());
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return bad(format!(
                "{} kv heads do not divide {} attention heads",
                self.kv_heads, self.heads
            ));
        }
        if !fam.supports_gqa() {
            if self.kv_heads != self.heads {
                return bad(format!(
                    "family {fam} has no grouped-query attention: kv heads ({}) must equal heads ({})",
                    self.kv_heads, self.heads
                ));
            }
            if self.heads * self.head_dim() != self.hidden {
                return bad(format!(
                    "family {fam} needs heads × head dim = hidden, got {} × {} ≠ {}",
                    self.heads,
                    self.head_dim(),
                    self.hidden
                ));
            }
        }
        if self.intermediate() == 0 || self.vocab == 0 {
            return bad("intermediate size and vocab must be at least 1".to_string());
        }
        if matches!(fam, SynthFamily::Bert | SynthFamily::Gpt2) && self.positions == 0 {
            return bad(format!("family {fam} needs at least 1 position embedding"));
        }
        if self.shards == 0 {
            return bad("shards must be at least 1".to_string());
        }
        match (fam.is_moe(), self.experts) {
            (true, 0) => return bad(format!("family {fam} needs at least 1 expert")),
            (false, n) if n > 0 => {
                return bad(format!(
                    "family {fam} has no experts ({n} asked for); use --family mixtral"
                ));
            }
            _ => {}
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return bad(format!("gain must be a positive number, got {}", self.gain));
        }
        for (i, e) in self.extras.iter().enumerate() {
            if e.rows == 0 || e.cols == 0 || !(e.gain.is_finite() && e.gain > 0.0) {
                return bad(format!(
                    "extra tensor {} needs rows, cols ≥ 1 and a positive gain",
                    e.name
                ));
            }
            if e.name.is_empty() || self.extras[..i].iter().any(|o| o.name == e.name) {
                return bad(format!(
                    "extra tensor name `{}` is empty or repeated",
                    e.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_bits_match_half() {
        let mut r = crate::rng::Rng::new(5);
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
        ];
        let randoms = (0..200_000).map(|_| f32::from_bits(r.next_u64() as u32));
        for x in specials.into_iter().chain(randoms) {
            assert_eq!(bf16_bits(x), half::bf16::from_f32(x).to_bits(), "{x:e}");
        }
    }
}
