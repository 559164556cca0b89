//! Head counts (config, overrides, shapes) and head blocks as sub-selections.

use std::ops::Range;

use super::{Anatomy, AnatomyError, Block, MatrixId, Overrides, Proj};
use crate::checkpoint::{ModelConfig, Selection};

/// A size read from a tensor, kept with the tensor for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    /// Tensor name.
    pub tensor: String,
    /// Stored shape.
    pub shape: Vec<usize>,
    /// The size: H·d for query sources, KV·d for key/value sources.
    pub size: usize,
}

/// What the shapes say about the attention sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Query features H·d (from q rows, else o columns, else a fused tensor).
    pub q: Option<Source>,
    /// Key/value features KV·d (from k or v rows, else a fused tensor).
    pub kv: Option<Source>,
    /// Hidden size (config.json, else the input size of an attention matrix).
    pub hidden: Option<usize>,
}

/// Resolved head counts; all three known means heads can be split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub heads: Option<usize>,
    pub kv_heads: Option<usize>,
    pub head_dim: Option<usize>,
}

impl Counts {
    /// (H, KV, d) when all are known.
    pub fn complete(&self) -> Option<(usize, usize, usize)> {
        Some((self.heads?, self.kv_heads?, self.head_dim?))
    }
}

/// The override if given, else the config value; zero from either is an error.
fn pick(
    flag: Option<usize>,
    flag_name: &str,
    cfg: Option<usize>,
    cfg_key: &str,
) -> Result<Option<usize>, AnatomyError> {
    let (value, source) = match flag {
        Some(v) => (Some(v), flag_name.to_string()),
        None => (cfg, format!("config.json {cfg_key}")),
    };
    if value == Some(0) {
        return Err(AnatomyError::InvalidHeads {
            detail: format!("{source} is 0; it must be at least 1"),
        });
    }
    Ok(value)
}

/// `src.size / by`, or an error naming the tensor when it does not divide exactly.
fn divide(
    src: &Source,
    by: usize,
    what: &'static str,
    label: String,
) -> Result<usize, AnatomyError> {
    match src.size.checked_div(by) {
        Some(n) if n > 0 && src.size.is_multiple_of(by) => Ok(n),
        _ => Err(AnatomyError::Indivisible {
            tensor: src.tensor.clone(),
            shape: src.shape.clone(),
            size: src.size,
            what,
            by: label,
        }),
    }
}

/// Combines overrides, config.json and shapes into head counts. The head dim is never guessed:
/// it comes from `--head-dim`, config `head_dim`, or q size / H (H from a flag or config).
///
/// config.json's counts are one coherent reading: a flag that changes H or d makes the config's
/// values that depend on it (its d, its H, its KV) stale, so those are re-derived from the
/// shapes instead (when the shapes can tell).
pub(crate) fn resolve(
    facts: &Facts,
    cfg: &ModelConfig,
    ov: &Overrides,
) -> Result<Counts, AnatomyError> {
    let q_known = facts.q.is_some() || facts.hidden.is_some();
    let cfg_heads = match (ov.num_heads, ov.head_dim) {
        (None, Some(_)) if facts.q.is_some() => None,
        _ => cfg.num_heads,
    };
    let cfg_head_dim = match (ov.num_heads, ov.head_dim) {
        (Some(_), None) if q_known => None,
        _ => cfg.head_dim,
    };
    let cfg_kv = match (ov.num_heads, ov.head_dim, ov.num_kv_heads) {
        (Some(_), _, None) | (_, Some(_), None) if facts.kv.is_some() => None,
        _ => cfg.num_kv_heads,
    };
    let mut h = pick(
        ov.num_heads,
        "--num-heads",
        cfg_heads,
        "num_attention_heads",
    )?;
    let mut kv = pick(
        ov.num_kv_heads,
        "--num-kv-heads",
        cfg_kv,
        "num_key_value_heads",
    )?;
    let mut d = pick(ov.head_dim, "--head-dim", cfg_head_dim, "head_dim")?;

    if d.is_none() {
        if let Some(h) = h {
            d = match (&facts.q, facts.hidden) {
                (Some(q), _) => Some(divide(q, h, "query", format!("{h} heads"))?),
                (None, Some(hidden)) => match hidden.checked_div(h) {
                    Some(n) if n > 0 && hidden.is_multiple_of(h) => Some(n),
                    _ => {
                        return Err(AnatomyError::InvalidHeads {
                            detail: format!(
                                "hidden size {hidden} does not split into {h} heads; \
                                 pass --head-dim"
                            ),
                        });
                    }
                },
                (None, None) => None,
            };
        } else if let (Some(kv), Some(k)) = (kv, &facts.kv) {
            d = Some(divide(k, kv, "key/value", format!("{kv} key/value heads"))?);
        }
    }
    if let Some(dim) = d {
        if h.is_none()
            && let Some(q) = &facts.q
        {
            h = Some(divide(q, dim, "query", format!("head dim {dim}"))?);
        }
        if kv.is_none() {
            kv = match &facts.kv {
                Some(k) => Some(divide(k, dim, "key/value", format!("head dim {dim}"))?),
                None => h,
            };
        }
    } else if kv.is_none() {
        kv = h;
    }
    if let (Some(h), Some(kv)) = (h, kv)
        && (kv > h || !h.is_multiple_of(kv))
    {
        return Err(AnatomyError::InvalidHeads {
            detail: format!(
                "{kv} key/value heads do not divide {h} attention heads \
                 (from config.json or --num-heads / --num-kv-heads)"
            ),
        });
    }
    Ok(Counts {
        heads: h,
        kv_heads: kv,
        head_dim: d,
    })
}

/// Logical elements `start..start + len` of a list of ranges concatenated in order.
pub(crate) fn sub_ranges(
    ranges: &[Range<usize>],
    start: usize,
    len: usize,
) -> Option<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let mut skip = start;
    let mut need = len;
    for r in ranges {
        if need == 0 {
            break;
        }
        let n = r.end.saturating_sub(r.start);
        if skip >= n {
            skip -= n;
            continue;
        }
        let take = need.min(n - skip);
        let a = r.start + skip;
        out.push(a..a + take);
        need -= take;
        skip = 0;
    }
    (need == 0).then_some(out)
}

/// A contiguous sub-range `start..start + len` of `r`, if it fits.
fn sub_range(r: &Range<usize>, start: usize, len: usize) -> Option<Range<usize>> {
    let a = r.start.checked_add(start)?;
    let b = a.checked_add(len)?;
    (b <= r.end).then_some(a..b)
}

/// The sub-selection of logical rows `start..start + len` (stored columns when transposed).
pub(crate) fn logical_rows(sel: &Selection, start: usize, len: usize) -> Option<Selection> {
    let mut out = sel.clone();
    if sel.transpose {
        out.cols = sub_range(&sel.cols, start, len)?;
    } else {
        out.rows = sub_ranges(&sel.rows, start, len)?;
    }
    Some(out)
}

/// The sub-selection of logical columns `start..start + len` (stored rows when transposed).
pub(crate) fn logical_cols(sel: &Selection, start: usize, len: usize) -> Option<Selection> {
    let mut out = sel.clone();
    if sel.transpose {
        out.rows = sub_ranges(&sel.rows, start, len)?;
    } else {
        out.cols = sub_range(&sel.cols, start, len)?;
    }
    Some(out)
}

/// Head blocks of a whole q/k/v/o matrix: q/k/v head h = logical rows h·d..(h+1)·d,
/// o head h = logical columns h·d..(h+1)·d. Empty when heads are unknown or do not fit.
pub(crate) fn head_blocks(a: &Anatomy, whole: &Block) -> Vec<Block> {
    let (Some(h), Some(kv), Some(d)) = (a.num_heads, a.num_kv_heads, a.head_dim) else {
        return Vec::new();
    };
    if whole.id.head.is_some() || d == 0 {
        return Vec::new();
    }
    let (n, by_rows) = match whole.id.proj {
        Proj::Q => (h, true),
        Proj::K | Proj::V => (kv, true),
        Proj::O => (h, false),
        _ => return Vec::new(),
    };
    let total = if by_rows { whole.rows } else { whole.cols };
    if n.checked_mul(d) != Some(total) {
        return Vec::new();
    }
    (0..n)
        .filter_map(|i| {
            let selection = if by_rows {
                logical_rows(&whole.selection, i * d, d)?
            } else {
                logical_cols(&whole.selection, i * d, d)?
            };
            Some(Block {
                id: MatrixId {
                    head: Some(i),
                    ..whole.id
                },
                tensor: whole.tensor.clone(),
                name: format!("{} h{i}", whole.name),
                rows: if by_rows { d } else { whole.rows },
                cols: if by_rows { whole.cols } else { d },
                dtype: whole.dtype.clone(),
                selection,
                embedding: false,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn src(size: usize) -> Source {
        Source {
            tensor: "t".into(),
            shape: vec![size, 8],
            size,
        }
    }

    fn cfg(h: Option<usize>, kv: Option<usize>, d: Option<usize>) -> ModelConfig {
        ModelConfig {
            num_heads: h,
            num_kv_heads: kv,
            head_dim: d,
            ..Default::default()
        }
    }

    fn facts(q: usize, kv: usize) -> Facts {
        Facts {
            q: Some(src(q)),
            kv: Some(src(kv)),
            hidden: Some(q),
        }
    }

    fn counts(h: usize, kv: usize, d: usize) -> Counts {
        Counts {
            heads: Some(h),
            kv_heads: Some(kv),
            head_dim: Some(d),
        }
    }

    #[test]
    fn sub_ranges_walks_concatenation() {
        let r = [0..4, 10..14, 20..24];
        assert_eq!(sub_ranges(&r, 0, 4), Some(vec![0..4]));
        assert_eq!(sub_ranges(&r, 4, 4), Some(vec![10..14]));
        assert_eq!(sub_ranges(&r, 2, 4), Some(vec![2..4, 10..12]));
        assert_eq!(sub_ranges(&r, 2, 10), Some(vec![2..4, 10..14, 20..24]));
        assert_eq!(sub_ranges(&r, 10, 3), None);
        assert_eq!(sub_ranges(&[3..9], 1, 2), Some(vec![4..6]));
    }

    #[test]
    fn resolve_from_config() {
        let o = Overrides::default();
        let c = resolve(&facts(64, 16), &cfg(Some(8), Some(2), None), &o).unwrap();
        assert_eq!(c, counts(8, 2, 8));
        // kv absent in config: inferred from k shape once d is known.
        let c = resolve(&facts(64, 16), &cfg(Some(8), None, None), &o).unwrap();
        assert_eq!(c, counts(8, 2, 8));
        // explicit head_dim with H·d ≠ hidden (Gemma).
        let c = resolve(&facts(128, 32), &cfg(Some(8), Some(2), Some(16)), &o).unwrap();
        assert_eq!(c, counts(8, 2, 16));
    }

    #[test]
    fn resolve_from_overrides_only() {
        let c = resolve(
            &facts(64, 16),
            &cfg(None, None, None),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c, Counts::default());
        let d_only = Overrides {
            head_dim: Some(8),
            ..Default::default()
        };
        let c = resolve(&facts(64, 16), &ModelConfig::default(), &d_only).unwrap();
        assert_eq!(c, counts(8, 2, 8));
        let kv_only = Overrides {
            num_kv_heads: Some(4),
            ..Default::default()
        };
        let c = resolve(&facts(64, 16), &ModelConfig::default(), &kv_only).unwrap();
        assert_eq!(c, counts(16, 4, 4));
        let h_only = Overrides {
            num_heads: Some(4),
            ..Default::default()
        };
        // the flag wins over config.json, and the config's kv count (which went with its 8
        // heads) is re-derived from the shapes: 16 kv features / d 16.
        let c = resolve(&facts(64, 16), &cfg(Some(8), Some(2), None), &h_only).unwrap();
        assert_eq!(c, counts(4, 1, 16));
        // an explicit config head_dim goes with the config's head count, not with the flag's.
        let c = resolve(&facts(128, 32), &cfg(Some(8), Some(2), Some(16)), &h_only).unwrap();
        assert_eq!(c, counts(4, 1, 32));
        let d_only = Overrides {
            head_dim: Some(32),
            ..Default::default()
        };
        let c = resolve(&facts(128, 32), &cfg(Some(8), Some(2), Some(16)), &d_only).unwrap();
        assert_eq!(c, counts(4, 1, 32));
        // a kv flag alone leaves the config's H and d alone.
        let c = resolve(&facts(128, 32), &cfg(Some(8), Some(2), Some(16)), &kv_only).unwrap();
        assert_eq!(c, counts(8, 4, 16));
    }

    #[test]
    fn resolve_errors() {
        let o = Overrides {
            num_heads: Some(5),
            ..Default::default()
        };
        let e = resolve(&facts(64, 16), &ModelConfig::default(), &o).unwrap_err();
        assert!(
            matches!(e, AnatomyError::Indivisible { size: 64, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("5 heads"));
        let o = Overrides {
            num_heads: Some(0),
            ..Default::default()
        };
        let e = resolve(&facts(64, 16), &ModelConfig::default(), &o).unwrap_err();
        assert!(e.to_string().contains("--num-heads is 0"), "{e}");
        let e = resolve(
            &facts(64, 16),
            &cfg(Some(8), Some(0), None),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("num_key_value_heads is 0"), "{e}");
        let e = resolve(
            &facts(64, 24),
            &cfg(Some(8), Some(3), None),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(e, AnatomyError::InvalidHeads { .. }), "{e}");
        let no_q = Facts {
            hidden: Some(30),
            ..Default::default()
        };
        let e = resolve(&no_q, &cfg(Some(8), None, None), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("hidden size 30"), "{e}");
        let c = resolve(&no_q, &cfg(Some(6), None, None), &Overrides::default()).unwrap();
        assert_eq!(c, counts(6, 6, 5));
    }
}
