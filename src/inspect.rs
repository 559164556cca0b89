//! `mpscope inspect`: the model summary and its layers × projections table, from headers only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::anatomy::{Anatomy, Block, Proj};
use crate::checkpoint::{Checkpoint, Dtype};
use crate::units;

/// Short lowercase name of a dtype, as safetensors spells it but lowercase ("bf16", "f8_e4m3").
pub fn dtype_label(d: &Dtype) -> String {
    let name = d.name().to_lowercase();
    if d.is_supported() {
        name
    } else {
        format!("{name} (unsupported)")
    }
}

/// The model summary printed by `mpscope inspect` (and the table of layers × projections).
pub fn summary(ck: &Checkpoint, an: &Anatomy, ascii: bool) -> String {
    let mut out = String::new();
    let files = ck.files();
    let file_names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let shown = if file_names.len() > 3 {
        format!(
            "{}, … {}",
            file_names[..2].join(", "),
            file_names[file_names.len() - 1]
        )
    } else {
        file_names.join(", ")
    };
    let _ = writeln!(out, "model     {}", ck.root().display());
    let _ = writeln!(
        out,
        "files     {} ({}), {}",
        files.len(),
        shown,
        units::bytes(ck.total_bytes())
    );
    let arch = ck
        .config()
        .and_then(|c| c.architecture.clone())
        .map(|a| format!(" ({a})"))
        .unwrap_or_else(|| {
            if ck.config().is_none() {
                " (no config.json)".into()
            } else {
                String::new()
            }
        });
    let _ = writeln!(out, "family    {}{}", an.family.label(), arch);
    if !ck.facts().is_empty() {
        let facts: Vec<&str> = ck.facts().iter().map(|(_, v)| v.as_str()).collect();
        let sep = if ascii { " - " } else { " · " };
        let _ = writeln!(out, "gguf      {}", facts.join(sep));
    }
    let opt = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    let _ = writeln!(
        out,
        "layers    {}    hidden {}    heads {}    kv heads {}    head_dim {}",
        an.num_layers,
        opt(an.hidden),
        opt(an.num_heads),
        opt(an.num_kv_heads),
        opt(an.head_dim)
    );
    if let Some(n) = an.num_experts {
        let mut line = format!("experts   {n} per layer");
        if let Some(k) = an.experts_used {
            let _ = write!(line, ", {k} per token");
        }
        if let Some(s) = an.shared_experts {
            let _ = write!(line, ", {s} shared");
        }
        let _ = writeln!(out, "{line}");
    }
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    for t in ck.tensors() {
        *dtypes.entry(dtype_label(&t.dtype)).or_default() += 1;
    }
    let mix: Vec<String> = dtypes.iter().map(|(d, n)| format!("{d} ×{n}")).collect();
    let mix = mix.join(", ");
    let mix = if ascii { mix.replace('×', "x") } else { mix };
    let _ = writeln!(out, "dtypes    {mix}");
    let in_layers = an.matrices.iter().filter(|b| b.id.layer.is_some()).count();
    let emb = an.matrices.iter().filter(|b| b.embedding).count();
    let _ = writeln!(
        out,
        "tensors   {} ({} matrices: {} in layers, {} embeddings, {} other; {} skipped)",
        ck.tensors().len(),
        an.matrices.len(),
        in_layers,
        emb,
        an.matrices.len() - in_layers - emb,
        an.skipped.len()
    );
    out.push('\n');
    out.push_str(&layer_table(an, ascii));
    let outside: Vec<&Block> = an
        .matrices
        .iter()
        .filter(|b| b.id.layer.is_none())
        .collect();
    if !outside.is_empty() {
        out.push_str("\noutside the layers\n");
        let w = outside.iter().map(|b| b.tensor.len()).max().unwrap_or(0);
        for b in outside {
            let kind = if b.embedding { "embedding" } else { "other" };
            let _ = writeln!(
                out,
                "  {:<w$}  {:>12}  {:<6} {}",
                b.tensor,
                units::shape(&[b.rows, b.cols], ascii),
                dtype_label(&b.dtype),
                kind
            );
        }
    }
    out.push_str(&skipped_list(an, ascii));
    for note in an.notes() {
        let _ = writeln!(out, "\nnote: {note}");
    }
    out
}

/// Skipped tensors listed one per line up to this many; beyond it, grouped by reason.
const SKIPPED_LISTED: usize = 12;

/// The tensors never analysed and why: one per line, or grouped by reason when there are many.
fn skipped_list(an: &Anatomy, ascii: bool) -> String {
    let mut out = String::new();
    if an.skipped.is_empty() {
        return out;
    }
    out.push_str("\nskipped (never analysed)\n");
    if an.skipped.len() <= SKIPPED_LISTED {
        let w = an.skipped.iter().map(|s| s.tensor.len()).max().unwrap_or(0);
        for s in &an.skipped {
            let _ = writeln!(
                out,
                "  {:<w$}  {:>12}  {}",
                s.tensor,
                units::shape(&s.shape, ascii),
                s.reason
            );
        }
        return out;
    }
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &an.skipped {
        groups.entry(&s.reason).or_default().push(&s.tensor);
    }
    for (reason, names) in groups {
        let shown: Vec<String> = names.iter().take(2).map(|n| format!("`{n}`")).collect();
        let more = if names.len() > 2 { ", …" } else { "" };
        let line = format!(
            "  {:>5} × {reason} (e.g. {}{more})",
            names.len(),
            shown.join(", ")
        );
        let line = if ascii {
            line.replace('×', "x").replace('…', "...")
        } else {
            line
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// One cell of the layers table: shape and head count of a projection in a layer.
fn cell(an: &Anatomy, b: &Block, ascii: bool) -> String {
    let s = units::shape(&[b.rows, b.cols], ascii);
    match an.heads_of(b.id.proj) {
        Some(h) if matches!(b.id.proj, Proj::Q | Proj::K | Proj::V | Proj::O) => {
            format!("{s} /{h}h")
        }
        _ => s,
    }
}

/// Layers × projections with shapes and head counts; runs of identical layers share a row.
pub fn layer_table(an: &Anatomy, ascii: bool) -> String {
    let projs: Vec<Proj> = an.projections();
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    for layer in 0..an.num_layers {
        let cells: Vec<String> = projs
            .iter()
            .map(|p| {
                let dense: Vec<String> = an
                    .layer_matrices(layer)
                    .filter(|b| b.id.proj == *p && b.id.expert.is_none())
                    .map(|b| cell(an, b, ascii))
                    .collect();
                // Routed experts: one shape and the count, "64×32 ×8e".
                let experts: Vec<&Block> = an
                    .layer_matrices(layer)
                    .filter(|b| b.id.proj == *p && b.id.expert.is_some())
                    .collect();
                let times = if ascii { "x" } else { "×" };
                let experts = experts.first().map(|b| {
                    let shape = units::shape(&[b.rows, b.cols], ascii);
                    format!("{shape} {times}{}e", experts.len())
                });
                dense
                    .into_iter()
                    .chain(experts)
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .map(|c| if c.is_empty() { "-".into() } else { c })
            .collect();
        rows.push((layer, cells));
    }
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j + 1 < rows.len() && rows[j + 1].1 == rows[i].1 {
            j += 1;
        }
        let label = if i == j {
            rows[i].0.to_string()
        } else {
            format!("{}-{}", rows[i].0, rows[j].0)
        };
        grouped.push((label, rows[i].1.clone()));
        i = j + 1;
    }
    let mut header = vec!["layer".to_string()];
    header.extend(projs.iter().map(|p| p.to_string()));
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (label, cells) in &grouped {
        widths[0] = widths[0].max(label.chars().count());
        for (k, c) in cells.iter().enumerate() {
            widths[k + 1] = widths[k + 1].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(&header));
    for (label, cells) in grouped {
        let mut all = vec![label];
        all.extend(cells);
        let _ = writeln!(out, "{}", line(&all));
    }
    out
}

/// Every tensor with dtype, shape and size in bytes (`inspect --tensors`).
pub fn tensor_list(ck: &Checkpoint, ascii: bool) -> String {
    let w = ck.tensors().iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for t in ck.tensors() {
        let _ = writeln!(
            out,
            "{:<w$}  {:<8} {:>16} {:>12}",
            t.name,
            dtype_label(&t.dtype),
            units::shape(&t.shape, ascii),
            t.bytes.len()
        );
    }
    out
}
