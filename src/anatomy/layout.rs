//! Building the anatomy: roles, fused splits, whole-matrix selections, ordering, notes.

// `Selection::rows` is a list of stored row ranges; a list of one range is the common case.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;

use super::family::{self, role_of};
use super::heads::{self, Counts, Facts, Source};
use super::names::{self, Fused, NameParts, Role};
use super::{Anatomy, AnatomyError, Block, Family, MatrixId, Overrides, Proj, Skipped};
use crate::checkpoint::{Dtype, ModelConfig, Selection, TensorInfo};

/// What one 2-D tensor becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A recognized layer tensor.
    Role(Role),
    /// Any other matrix.
    Other,
}

/// A 2-D tensor with its place in the model.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// Index into the tensor list.
    tensor: usize,
    /// Stored rows and columns (of one expert, for a stacked-experts tensor).
    shape: [usize; 2],
    /// Matrices stacked along the leading axis: the expert count of a 3-D experts tensor, else 1.
    stack: usize,
    /// Layer index (only for tensors of the main layer stack).
    layer: Option<usize>,
    kind: Kind,
}

/// Builds the anatomy from a tensor list and an optional config (see [`super::from_parts`]).
pub(crate) fn build(
    tensors: &[TensorInfo],
    config: Option<&ModelConfig>,
    ov: &Overrides,
) -> Result<Anatomy, AnatomyError> {
    let default_cfg = ModelConfig::default();
    let cfg = config.unwrap_or(&default_cfg);
    let parts: Vec<NameParts> = tensors.iter().map(|t| names::parse(&t.name)).collect();
    let mut notes = Vec::new();
    let skipped: Vec<Option<Skipped>> = tensors
        .iter()
        .zip(&parts)
        .map(|(t, p)| skip(t, p))
        .collect();

    let (family, note) = family::detect(tensors, &parts, config);
    notes.extend(note);
    let main = main_stack(family, tensors, &parts);
    let items = classify(family, main.as_deref(), tensors, &parts, &skipped);
    let facts = facts(&items, tensors, cfg);
    let counts = heads::resolve(&facts, cfg, ov)?;

    let mut builder = Builder {
        tensors,
        parts: &parts,
        cfg,
        facts: &facts,
        counts,
        matrices: Vec::new(),
        others: 0,
        unsplit: Vec::new(),
    };
    for item in &items {
        builder.add(item)?;
    }
    let Builder {
        mut matrices,
        unsplit,
        ..
    } = builder;
    if let Some((h, kv, d)) = counts.complete() {
        for b in &matrices {
            check_heads(b, tensors, h, kv, d)?;
        }
    }
    matrices.sort_by_key(|b| (b.id.layer.is_none(), b.id.layer, b.id.proj, b.id.expert));

    let num_layers = match &main {
        Some(stack) => parts
            .iter()
            .filter(|p| p.stack.as_deref() == Some(stack))
            .filter_map(|p| p.layer)
            .max()
            .map_or(0, |l| l + 1),
        None => 0,
    };

    if let Some(n) = cfg.num_layers
        && n != num_layers
        && family != Family::Unknown
    {
        notes.push(format!(
            "config.json says {n} layers, the tensor names have {num_layers}"
        ));
    }
    let has_attention = matrices.iter().any(|b| b.id.proj.is_attention()) || !unsplit.is_empty();
    if has_attention && counts.complete().is_none() {
        let mut note = "head count unknown: pass --num-heads (and --head-dim) to split attention \
                        matrices into heads"
            .to_string();
        if let (Some(q), Some(k)) = (&facts.q, &facts.kv)
            && k.size > 0
            && q.size.is_multiple_of(k.size)
            && q.size > k.size
        {
            note.push_str(&format!(
                "; k/v have {}x fewer rows than q (grouped-query attention)",
                q.size / k.size
            ));
        }
        notes.push(note);
    }
    for name in &unsplit {
        notes.push(format!(
            "{name}: the interleaved q/k/v layout needs the head count; listed as other \
             (pass --num-heads)"
        ));
    }
    if let Some(stack) = &main {
        let elsewhere: Vec<&str> = tensors
            .iter()
            .zip(&parts)
            .filter(|(t, p)| {
                t.shape.len() == 2 && p.stack.is_some() && p.stack.as_deref() != Some(stack)
            })
            .map(|(t, _)| t.name.as_str())
            .collect();
        if let Some(first) = elsewhere.first() {
            notes.push(format!(
                "{} matrices outside the main layer stack `{stack}` (e.g. `{first}`) are \
                 listed as other",
                elsewhere.len()
            ));
        }
    }
    let found_experts = (0..num_layers)
        .flat_map(|l| Proj::NAMED.map(|p| (l, p)))
        .map(|(l, p)| {
            matrices
                .iter()
                .filter(|b| b.id.layer == Some(l) && b.id.proj == p && b.id.expert.is_some())
                .count()
        })
        .max()
        .filter(|&n| n > 0);
    if let (Some(c), Some(f)) = (cfg.num_experts, found_experts)
        && c != f
    {
        notes.push(format!(
            "the config says {c} experts per layer, the tensor names have {f}"
        ));
    }
    let has_shared = matrices.iter().any(|b| {
        matches!(
            b.id.proj,
            Proj::SharedGate | Proj::SharedUp | Proj::SharedDown
        )
    });
    Ok(Anatomy {
        family,
        num_layers,
        num_heads: counts.heads,
        num_kv_heads: counts.kv_heads,
        head_dim: counts.head_dim,
        hidden: cfg.hidden_size.or(facts.hidden),
        num_experts: found_experts,
        experts_used: cfg.experts_used.filter(|_| found_experts.is_some()),
        shared_experts: cfg
            .shared_experts
            .filter(|&n| n > 0 && has_shared)
            .or(has_shared.then_some(1)),
        matrices,
        notes,
        skipped: skipped.into_iter().flatten().collect(),
    })
}

/// Why a tensor is never analysed: a dtype that holds no weights mpscope can decode, or a name
/// that marks a buffer (position ids, rotary frequencies, masks, counters).
fn skip(t: &TensorInfo, p: &NameParts) -> Option<Skipped> {
    let reason = t.dtype.skip_reason().or_else(|| {
        names::buffer_kind(p, t.shape.len()).map(|what| format!("{what}, not a weight"))
    })?;
    Some(Skipped {
        tensor: t.name.clone(),
        dtype: t.dtype.clone(),
        shape: t.shape.clone(),
        reason,
    })
}

/// The layer stack (e.g. "model.layers") that holds the family's projections; for an unknown
/// family, the stack with the most tensors. Ties go to the stack seen first.
fn main_stack(family: Family, tensors: &[TensorInfo], parts: &[NameParts]) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (t, p) in tensors.iter().zip(parts) {
        let Some(stack) = p.stack.as_deref() else {
            continue;
        };
        let weight = match family {
            Family::Unknown => 1,
            f => usize::from(role_of(f, t, p).is_some()),
        };
        match counts.iter_mut().find(|(s, _)| *s == stack) {
            Some((_, n)) => *n += weight,
            None => counts.push((stack, weight)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (s, n) in counts {
        if n > 0 && best.is_none_or(|(_, m)| n > m) {
            best = Some((s, n));
        }
    }
    best.map(|(s, _)| s.to_string())
}

/// Every 2-D tensor with its role (or other) and its layer in the main stack.
fn classify(
    family: Family,
    main: Option<&str>,
    tensors: &[TensorInfo],
    parts: &[NameParts],
    skipped: &[Option<Skipped>],
) -> Vec<Item> {
    tensors
        .iter()
        .zip(parts)
        .zip(skipped)
        .enumerate()
        .filter_map(|(i, ((t, p), skipped))| {
            if skipped.is_some() {
                return None;
            }
            let in_main = main.is_some() && p.stack.as_deref() == main;
            let layer = if in_main { p.layer } else { None };
            let role = if in_main { role_of(family, t, p) } else { None };
            let (stack, r, c) = match (&t.shape[..], role) {
                (&[r, c], _) => (1, r, c),
                (&[e, r, c], Some(Role::Experts(_))) => (e, r, c),
                _ => return None,
            };
            Some(Item {
                tensor: i,
                shape: [r, c],
                stack,
                layer,
                kind: role.map_or(Kind::Other, Kind::Role),
            })
        })
        .collect()
}

/// Reads the attention sizes off the first matching tensors (validated against all later).
fn facts(items: &[Item], tensors: &[TensorInfo], cfg: &ModelConfig) -> Facts {
    let source = |item: &Item, size: usize| Source {
        tensor: tensors
            .get(item.tensor)
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        shape: item.shape.to_vec(),
        size,
    };
    let plain = |want: Proj| {
        items.iter().find_map(|it| match it.kind {
            Kind::Role(Role::Plain { proj, transposed }) if proj == want => {
                Some((it, logical(it.shape, transposed)))
            }
            _ => None,
        })
    };
    let fused = items.iter().find_map(|it| match it.kind {
        Kind::Role(Role::Qkv(f)) => Some((it, f)),
        _ => None,
    });
    // Equal thirds of GPT-2 and NeoX fused tensors (no GQA in those layouts).
    let thirds = fused.and_then(|(it, f)| {
        let n = match f {
            Fused::Gpt2 => it.shape[1],
            Fused::NeoX => it.shape[0],
            Fused::Phi3 => return None,
        };
        (n.is_multiple_of(3) && n > 0).then(|| source(it, n / 3))
    });

    let q_plain = plain(Proj::Q);
    let o_plain = plain(Proj::O);
    let q = q_plain
        .map(|(it, (rows, _))| source(it, rows))
        .or_else(|| o_plain.map(|(it, (_, cols))| source(it, cols)))
        .or_else(|| thirds.clone());
    let kv = plain(Proj::K)
        .or_else(|| plain(Proj::V))
        .map(|(it, (rows, _))| source(it, rows))
        .or_else(|| thirds.clone())
        .or_else(|| {
            let (it, f) = fused?;
            if f != Fused::Phi3 {
                return None;
            }
            let rest = it.shape[0].checked_sub(q.as_ref()?.size)?;
            (rest > 0 && rest.is_multiple_of(2)).then(|| source(it, rest / 2))
        });
    let hidden = cfg.hidden_size.or_else(|| {
        q_plain
            .map(|(_, (_, cols))| cols)
            .or_else(|| o_plain.map(|(_, (rows, _))| rows))
            .or_else(|| {
                let (it, f) = fused?;
                Some(match f {
                    Fused::Gpt2 => it.shape[0],
                    Fused::Phi3 | Fused::NeoX => it.shape[1],
                })
            })
    });
    Facts { q, kv, hidden }
}

/// Logical [rows, cols] of a stored [r, c] tensor.
fn logical([r, c]: [usize; 2], transposed: bool) -> (usize, usize) {
    if transposed { (c, r) } else { (r, c) }
}

/// Turns items into whole-matrix blocks, splitting fused tensors.
struct Builder<'a> {
    tensors: &'a [TensorInfo],
    parts: &'a [NameParts],
    cfg: &'a ModelConfig,
    facts: &'a Facts,
    counts: Counts,
    matrices: Vec<Block>,
    /// `Other(i)` numbers handed out so far.
    others: u32,
    /// Fused NeoX tensors left whole for lack of a head count.
    unsplit: Vec<String>,
}

impl Builder<'_> {
    fn add(&mut self, item: &Item) -> Result<(), AnatomyError> {
        let [r, c] = item.shape;
        let Some(layer) = item.layer else {
            self.other(item);
            return Ok(());
        };
        let role = match item.kind {
            Kind::Role(role) => role,
            Kind::Other => {
                self.other(item);
                return Ok(());
            }
        };
        match role {
            Role::Plain { proj, transposed } => {
                self.push(item, layer, proj, vec![0..r], 0..c, transposed);
            }
            Role::Expert { proj, expert } => {
                self.push(item, layer, proj, vec![0..r], 0..c, false);
                self.set_expert(expert);
            }
            Role::Experts(proj) => {
                // Expert e is the row block e·out..(e+1)·out of the [experts·out, in] view:
                // a selection by position, nothing copied.
                for e in 0..item.stack {
                    self.push(item, layer, proj, vec![e * r..(e + 1) * r], 0..c, false);
                    self.set_expert(e);
                }
            }
            Role::Qkv(Fused::Gpt2) => {
                let hidden = self.cfg.hidden_size.unwrap_or(r);
                if r != hidden || Some(c) != hidden.checked_mul(3) {
                    return Err(self.fused(
                        item,
                        format!(
                            "GPT-2 c_attn (Conv1D, stored [in, 3·out]) should be \
                             [{hidden}, 3·{hidden}] for hidden size {hidden}"
                        ),
                    ));
                }
                for (i, proj) in [Proj::Q, Proj::K, Proj::V].into_iter().enumerate() {
                    let cols = i * hidden..(i + 1) * hidden;
                    self.push(item, layer, proj, vec![0..r], cols, true);
                }
            }
            Role::Qkv(Fused::Phi3) => {
                let (qn, kn) = match self.counts.complete() {
                    Some((h, kv, d)) => {
                        let sizes = h.checked_mul(d).zip(kv.checked_mul(d));
                        let total = sizes.and_then(|(q, k)| q.checked_add(k.checked_mul(2)?));
                        if total != Some(r) {
                            return Err(self.fused(
                                item,
                                format!(
                                    "Phi-3 qkv_proj should have (heads + 2·kv heads)·head dim \
                                     = ({h} + 2·{kv})·{d} rows"
                                ),
                            ));
                        }
                        sizes.unwrap_or_default()
                    }
                    None => {
                        let qn = self
                            .facts
                            .q
                            .as_ref()
                            .map_or(self.cfg.hidden_size.unwrap_or(c), |q| q.size);
                        match r.checked_sub(qn) {
                            Some(rest) if rest > 0 && rest.is_multiple_of(2) => (qn, rest / 2),
                            _ => {
                                return Err(self.fused(
                                    item,
                                    format!(
                                        "cannot tell {qn} query rows from equal key and value \
                                         rows; pass --num-heads and --num-kv-heads"
                                    ),
                                ));
                            }
                        }
                    }
                };
                let bounds = [0, qn, qn + kn, qn + 2 * kn];
                for (i, proj) in [Proj::Q, Proj::K, Proj::V].into_iter().enumerate() {
                    self.push(
                        item,
                        layer,
                        proj,
                        vec![bounds[i]..bounds[i + 1]],
                        0..c,
                        false,
                    );
                }
            }
            Role::Qkv(Fused::NeoX) => {
                let Some((h, kv, d)) = self.counts.complete() else {
                    if let Some(t) = self.tensors.get(item.tensor) {
                        self.unsplit.push(t.name.clone());
                    }
                    self.other(item);
                    return Ok(());
                };
                if kv != h {
                    return Err(self.fused(
                        item,
                        format!(
                            "the GPT-NeoX interleaved layout has as many key/value heads as \
                             heads, got {kv} and {h}"
                        ),
                    ));
                }
                if h.checked_mul(d).and_then(|n| n.checked_mul(3)) != Some(r) {
                    return Err(self.fused(
                        item,
                        format!("GPT-NeoX query_key_value should have 3·{h} heads·{d} rows"),
                    ));
                }
                for (i, proj) in [Proj::Q, Proj::K, Proj::V].into_iter().enumerate() {
                    let rows: Vec<Range<usize>> = (0..h)
                        .map(|head| {
                            let start = head * 3 * d + i * d;
                            start..start + d
                        })
                        .collect();
                    self.push(item, layer, proj, rows, 0..c, false);
                }
            }
            Role::GateUp => {
                let half = r / 2;
                let expected = self.cfg.intermediate_size.unwrap_or(half);
                if r == 0 || !r.is_multiple_of(2) || half != expected {
                    return Err(self.fused(
                        item,
                        format!(
                            "Phi-3 gate_up_proj should have 2·intermediate size = 2·{expected} \
                             rows (gate, then up)"
                        ),
                    ));
                }
                self.push(item, layer, Proj::Gate, vec![0..half], 0..c, false);
                self.push(item, layer, Proj::Up, vec![half..r], 0..c, false);
            }
        }
        Ok(())
    }

    fn fused(&self, item: &Item, detail: String) -> AnatomyError {
        AnatomyError::FusedSplit {
            tensor: self.name(item),
            shape: item.shape.to_vec(),
            detail,
        }
    }

    fn name(&self, item: &Item) -> String {
        self.tensors
            .get(item.tensor)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }

    fn dtype(&self, item: &Item) -> Dtype {
        self.tensors
            .get(item.tensor)
            .map_or(Dtype::Unsupported(String::new()), |t| t.dtype.clone())
    }

    /// A projection block cut from `item` (rows/cols in stored coordinates).
    fn push(
        &mut self,
        item: &Item,
        layer: usize,
        proj: Proj,
        rows: Vec<Range<usize>>,
        cols: Range<usize>,
        transpose: bool,
    ) {
        let stored_rows: usize = rows.iter().map(|r| r.len()).sum();
        let (lr, lc) = logical([stored_rows, cols.len()], transpose);
        self.matrices.push(Block {
            id: MatrixId {
                layer: Some(layer),
                proj,
                head: None,
                expert: None,
            },
            tensor: self.name(item),
            name: format!("L{layer} {proj}"),
            rows: lr,
            cols: lc,
            dtype: self.dtype(item),
            selection: Selection {
                tensor: item.tensor,
                rows,
                cols,
                transpose,
            },
            embedding: false,
        });
    }

    /// Makes the matrix pushed last expert `e`'s.
    fn set_expert(&mut self, e: usize) {
        if let Some(b) = self.matrices.last_mut() {
            b.id.expert = Some(e);
            b.name = format!("{} e{e}", b.name);
        }
    }

    /// A whole "other" matrix, numbered in checkpoint order.
    fn other(&mut self, item: &Item) {
        let [r, c] = item.shape;
        let tensor = self.name(item);
        let parts = self.parts.get(item.tensor);
        let name = match (item.layer, parts) {
            (Some(l), Some(p)) if !p.suffix.is_empty() => format!("L{l} {}", p.suffix),
            (Some(l), _) => format!("L{l} weight"),
            (None, _) => names::short_name(&tensor),
        };
        self.matrices.push(Block {
            id: MatrixId {
                layer: item.layer,
                proj: Proj::Other(self.others),
                head: None,
                expert: None,
            },
            tensor,
            name,
            rows: r,
            cols: c,
            dtype: self.dtype(item),
            selection: Selection {
                tensor: item.tensor,
                rows: vec![0..r],
                cols: 0..c,
                transpose: false,
            },
            embedding: parts.is_some_and(names::is_embedding),
        });
        self.others += 1;
    }
}

/// Checks that a q/k/v/o matrix splits into the resolved heads.
fn check_heads(
    b: &Block,
    tensors: &[TensorInfo],
    h: usize,
    kv: usize,
    d: usize,
) -> Result<(), AnatomyError> {
    let (heads, size) = match b.id.proj {
        Proj::Q => (h, b.rows),
        Proj::K | Proj::V => (kv, b.rows),
        Proj::O => (h, b.cols),
        _ => return Ok(()),
    };
    if heads.checked_mul(d) == Some(size) {
        return Ok(());
    }
    Err(AnatomyError::HeadSplit {
        tensor: b.tensor.clone(),
        shape: tensors
            .get(b.selection.tensor)
            .map(|t| t.shape.clone())
            .unwrap_or_default(),
        heads,
        head_dim: d,
    })
}
