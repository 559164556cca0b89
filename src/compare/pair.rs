//! Pairing the blocks of two sources: by tensor name (PEFT's `base_model.model.` prefix
//! stripped), else by anatomy identity (layer, projection), head by head.

use super::lora::{Adapter, LoraBlock, PEFT_PREFIX};
use crate::anatomy::{Anatomy, Block};
use crate::checkpoint::Checkpoint;
use crate::scan::{self, Job, ScanOptions};

/// The other side of a pair.
#[derive(Debug, Clone, PartialEq)]
pub enum OtherBlock {
    /// A block of the other checkpoint.
    Dense(Block),
    /// A LoRA adapter's factors for the base block.
    Lora(LoraBlock),
}

/// One block to compare: the base's job and the other side's block.
#[derive(Debug, Clone, PartialEq)]
pub struct PairJob {
    /// The base block (with whether its singular vectors are wanted, and its fan-in).
    pub base: Job,
    /// The other side.
    pub other: OtherBlock,
}

impl PairJob {
    /// The other side's stored tensor name (the adapter module for LoRA).
    pub fn other_tensor(&self) -> &str {
        match &self.other {
            OtherBlock::Dense(b) => &b.tensor,
            OtherBlock::Lora(l) => &l.module.module,
        }
    }
}

/// Two blocks that pair by name or identity but differ in shape (never compared).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    /// Block name, e.g. "L3 q".
    pub block: String,
    /// Base tensor.
    pub base_tensor: String,
    /// Other tensor (or adapter module).
    pub other_tensor: String,
    /// Base shape (logical rows × cols).
    pub base_shape: [usize; 2],
    /// Other shape (for an adapter: the [out, in] its factors imply).
    pub other_shape: [usize; 2],
}

/// The outcome of pairing: the jobs, and what did not pair.
#[derive(Debug, Clone, Default)]
pub struct Pairing {
    /// Every pair, each whole matrix followed by its heads, in the base's plan order.
    pub jobs: Vec<PairJob>,
    /// Base blocks with no partner (names).
    pub unpaired_base: Vec<String>,
    /// Other blocks (or adapter modules) with no partner.
    pub unpaired_other: Vec<String>,
    /// Partners of different shapes.
    pub mismatched: Vec<Mismatch>,
    /// Other remarks (blocks an adapter leaves alone, tensors it leaves out).
    pub notes: Vec<String>,
}

/// A tensor name without PEFT's prefix.
pub fn strip_peft(name: &str) -> &str {
    name.strip_prefix(PEFT_PREFIX).unwrap_or(name)
}

/// Pairs the blocks of two checkpoints' anatomies (the base's plan decides which blocks).
pub fn pair_dense(base: &Anatomy, other: &Anatomy, opts: &ScanOptions) -> Pairing {
    let mut out = Pairing::default();
    let others: Vec<&Block> = other.matrices.iter().collect();
    let mut used = vec![false; others.len()];
    let jobs = scan::plan(base, opts);
    for (whole, heads) in with_heads(&jobs) {
        let b = &whole.block;
        let name = strip_peft(&b.tensor);
        let by_name_id = others
            .iter()
            .position(|o| strip_peft(&o.tensor) == name && o.id == b.id);
        let by_name = || {
            let hits: Vec<usize> = (0..others.len())
                .filter(|&k| strip_peft(&others[k].tensor) == name)
                .collect();
            let base_blocks = base
                .matrices
                .iter()
                .filter(|m| m.tensor == b.tensor)
                .count();
            (hits.len() == 1 && base_blocks == 1).then(|| hits[0])
        };
        let by_id = || {
            (!b.id.proj.is_other())
                .then(|| others.iter().position(|o| o.id == b.id))
                .flatten()
        };
        let Some(k) = by_name_id
            .or_else(by_name)
            .or_else(by_id)
            .filter(|&k| !used[k])
        else {
            out.unpaired_base.push(describe(b));
            continue;
        };
        used[k] = true;
        let o = others[k];
        if (o.rows, o.cols) != (b.rows, b.cols) {
            out.mismatched.push(Mismatch {
                block: b.name.clone(),
                base_tensor: b.tensor.clone(),
                other_tensor: o.tensor.clone(),
                base_shape: [b.rows, b.cols],
                other_shape: [o.rows, o.cols],
            });
            continue;
        }
        out.jobs.push(PairJob {
            base: whole.clone(),
            other: OtherBlock::Dense(o.clone()),
        });
        let other_heads = other.heads(o);
        for h in heads {
            match other_heads.iter().find(|oh| {
                oh.id.head == h.block.id.head && (oh.rows, oh.cols) == (h.block.rows, h.block.cols)
            }) {
                Some(oh) => out.jobs.push(PairJob {
                    base: h.clone(),
                    other: OtherBlock::Dense(oh.clone()),
                }),
                None => out.unpaired_base.push(describe(&h.block)),
            }
        }
    }
    let in_scope: Vec<Job> = scan::plan(
        other,
        &ScanOptions {
            heads: false,
            ..opts.clone()
        },
    );
    for (k, o) in others.iter().enumerate() {
        if !used[k]
            && in_scope
                .iter()
                .any(|j| j.block.id == o.id && j.block.tensor == o.tensor)
        {
            out.unpaired_other.push(describe(o));
        }
    }
    out
}

/// Pairs the base's blocks with an adapter's modules: only adapted blocks are compared.
pub fn pair_lora(
    base_ck: &Checkpoint,
    base: &Anatomy,
    adapter: &Adapter,
    opts: &ScanOptions,
) -> Pairing {
    let mut out = Pairing::default();
    let mut used = vec![false; adapter.modules.len()];
    let mut untouched = 0;
    let fifo = adapter.config.fan_in_fan_out;
    let jobs = scan::plan(base, opts);
    for (whole, heads) in with_heads(&jobs) {
        let b = &whole.block;
        let Some(m) = adapter.module_of(&b.tensor) else {
            untouched += 1;
            continue;
        };
        if let Some(k) = adapter.modules.iter().position(|x| x == m) {
            used[k] = true;
        }
        // The stored [rows, cols] of the base tensor the factors must fit.
        let ts = adapter.weights.tensors();
        let (a_in, b_out) = (ts[m.a].shape[1], ts[m.b].shape[0]);
        let implied = if fifo { [a_in, b_out] } else { [b_out, a_in] };
        let stored =
            base_ck
                .tensors()
                .get(b.selection.tensor)
                .and_then(|t| match t.shape.as_slice() {
                    [r, c] => Some([*r, *c]),
                    _ => None,
                });
        if Some(implied) != stored {
            out.mismatched.push(Mismatch {
                block: b.name.clone(),
                base_tensor: b.tensor.clone(),
                other_tensor: m.module.clone(),
                base_shape: stored.unwrap_or([b.rows, b.cols]),
                other_shape: implied,
            });
            continue;
        }
        for job in std::iter::once(whole).chain(heads) {
            out.jobs.push(PairJob {
                base: job.clone(),
                other: OtherBlock::Lora(LoraBlock {
                    module: m.clone(),
                    selection: job.block.selection.clone(),
                    fan_in_fan_out: fifo,
                }),
            });
        }
    }
    // Modules of base matrices the selection left out are not "unpaired"; only those whose
    // tensor the base lacks are.
    for (k, m) in adapter.modules.iter().enumerate() {
        let in_base = base
            .matrices
            .iter()
            .any(|b| adapter.module_of(&b.tensor).is_some_and(|x| x == m));
        if !used[k] && !in_base {
            out.unpaired_other.push(m.module.clone());
        }
    }
    if untouched > 0 {
        out.notes.push(format!(
            "{untouched} matrices of the base are not adapted (left out: their ΔW is 0)"
        ));
    }
    out.notes.extend(adapter.notes.iter().cloned());
    out
}

/// A plan's jobs as (whole matrix, its heads), in order.
fn with_heads(jobs: &[Job]) -> Vec<(&Job, &[Job])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < jobs.len() {
        let n = jobs[i + 1..]
            .iter()
            .take_while(|j| j.block.id.head.is_some())
            .count();
        out.push((&jobs[i], &jobs[i + 1..i + 1 + n]));
        i += 1 + n;
    }
    out
}

/// "L3 q (model.layers.3.self_attn.q_proj.weight)".
fn describe(b: &Block) -> String {
    format!("{} ({})", b.name, b.tensor)
}
