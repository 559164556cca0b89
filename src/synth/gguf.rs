//! Writing a plan as one GGUF v3 file (`synth --format gguf --quant …`), the way llama.cpp's
//! converter lays it out: matrices quantized (or f16), vectors f32, architecture metadata.
//!
//! The quantizers are gguf-py's reference ones (`quants.py`), step for step in f32, so a
//! block written here has the same bytes gguf-py would write for the same values
//! (tests/synth_gguf.rs checks them against tests/data/gguf_quants.json).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use half::f16;

use super::error::SynthError;
use super::layout::Plan;
use super::spec::SynthFamily;
use super::truth::Truth;
use super::write::{remove_stale, truth_of, write_json};
use crate::checkpoint::gguf_name;

/// How the matrices of a synthetic GGUF are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgufQuant {
    /// 8-bit blocks of 32.
    Q8_0,
    /// 4-bit blocks of 32, symmetric.
    Q4_0,
    /// 4-bit blocks of 32 with a minimum.
    Q4_1,
    /// 5-bit blocks of 32, symmetric.
    Q5_0,
    /// 5-bit blocks of 32 with a minimum.
    Q5_1,
    /// IEEE half, unquantized.
    F16,
}

impl GgufQuant {
    /// The CLI name (`q8_0`, ..., `f16`).
    pub fn as_str(self) -> &'static str {
        match self {
            GgufQuant::Q8_0 => "q8_0",
            GgufQuant::Q4_0 => "q4_0",
            GgufQuant::Q4_1 => "q4_1",
            GgufQuant::Q5_0 => "q5_0",
            GgufQuant::Q5_1 => "q5_1",
            GgufQuant::F16 => "f16",
        }
    }

    /// GGML type id, bytes per block of 32, and llama.cpp's `general.file_type`.
    fn ids(self) -> (u32, usize, u32) {
        match self {
            GgufQuant::Q8_0 => (8, 34, 7),
            GgufQuant::Q4_0 => (2, 18, 2),
            GgufQuant::Q4_1 => (3, 20, 3),
            GgufQuant::Q5_0 => (6, 22, 8),
            GgufQuant::Q5_1 => (7, 24, 9),
            GgufQuant::F16 => (1, 64, 1),
        }
    }

    /// Encodes values (a multiple of 32 of them) into `out`.
    pub fn quantize(self, xs: &[f32], out: &mut Vec<u8>) {
        for b in xs.chunks_exact(32) {
            let b: &[f32; 32] = b.try_into().unwrap_or(&[0.0; 32]);
            match self {
                GgufQuant::Q8_0 => q8_0(b, out),
                GgufQuant::Q4_0 => q4_0(b, out),
                GgufQuant::Q4_1 => q4_1(b, out),
                GgufQuant::Q5_0 => q5_0(b, out),
                GgufQuant::Q5_1 => q5_1(b, out),
                GgufQuant::F16 => {
                    out.extend(b.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()))
                }
            }
        }
    }
}

impl fmt::Display for GgufQuant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GgufQuant {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "q8_0" => GgufQuant::Q8_0,
            "q4_0" => GgufQuant::Q4_0,
            "q4_1" => GgufQuant::Q4_1,
            "q5_0" => GgufQuant::Q5_0,
            "q5_1" => GgufQuant::Q5_1,
            "f16" => GgufQuant::F16,
            _ => {
                return Err(SynthError::parse(
                    "quant",
                    s,
                    "expected one of q8_0, q4_0, q4_1, q5_0, q5_1, f16",
                ));
            }
        })
    }
}

/// 1 / d, or 0 for d = 0 (gguf-py's `np.where(d == 0, 0, 1 / d)`).
fn inv(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

fn h(out: &mut Vec<u8>, x: f32) {
    out.extend(f16::from_f32(x).to_le_bytes());
}

/// The value of largest magnitude, the first one on ties (numpy's `argmax` of `abs`).
fn signed_max(b: &[f32; 32]) -> f32 {
    b.iter()
        .copied()
        .fold(0.0f32, |m, x| if x.abs() > m.abs() { x } else { m })
}

fn min_max(b: &[f32; 32]) -> (f32, f32) {
    b.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn q8_0(b: &[f32; 32], out: &mut Vec<u8>) {
    let amax = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = inv(d);
    h(out, d);
    // np_roundf: round half away from zero.
    out.extend(b.iter().map(|&x| (x * id).round() as i8 as u8));
}

fn q4_0(b: &[f32; 32], out: &mut Vec<u8>) {
    let d = signed_max(b) / -8.0;
    let id = inv(d);
    let q = b.map(|x| ((x * id + 8.5).trunc() as i32).clamp(0, 15) as u8);
    h(out, d);
    out.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
}

fn q4_1(b: &[f32; 32], out: &mut Vec<u8>) {
    let (min, max) = min_max(b);
    let d = (max - min) / 15.0;
    let id = inv(d);
    let q = b.map(|x| (((x - min) * id + 0.5).trunc() as i32).clamp(0, 15) as u8);
    h(out, d);
    h(out, min);
    out.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
}

/// Packs 5-bit values: the fifth bits little-endian in a u32, then low nibbles as Q4.
fn pack5(q: &[u8; 32], out: &mut Vec<u8>) {
    let qh = q
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, &v)| acc | (u32::from(v >> 4) << i));
    out.extend(qh.to_le_bytes());
    out.extend((0..16).map(|j| (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4)));
}

fn q5_0(b: &[f32; 32], out: &mut Vec<u8>) {
    let d = signed_max(b) / -16.0;
    let id = inv(d);
    let q = b.map(|x| ((x * id + 16.5).trunc() as i32).clamp(0, 31) as u8);
    h(out, d);
    pack5(&q, out);
}

fn q5_1(b: &[f32; 32], out: &mut Vec<u8>) {
    let (min, max) = min_max(b);
    let d = (max - min) / 31.0;
    let id = inv(d);
    let q = b.map(|x| (((x - min) * id + 0.5).trunc() as i32).clamp(0, 31) as u8);
    h(out, d);
    h(out, min);
    pack5(&q, out);
}

/// GGUF metadata value types used here.
enum Meta {
    U32(u32),
    F32(f32),
    Str(String),
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// Data section alignment (GGUF's default).
const ALIGN: usize = 32;

/// Writes `plan` as `out_dir/model.gguf` (plus truth.json) with matrices stored as `quant`.
pub(crate) fn write_gguf(
    out_dir: &Path,
    plan: &Plan,
    quant: GgufQuant,
) -> Result<Truth, SynthError> {
    let spec = &plan.spec;
    let arch = match spec.family {
        // llama.cpp converts Mixtral as a llama with experts.
        SynthFamily::Llama | SynthFamily::Mixtral => "llama",
        SynthFamily::Phi3 => "phi3",
        SynthFamily::Gpt2 => "gpt2",
        SynthFamily::Neox => "gptneox",
        f => {
            return Err(SynthError::Spec(format!(
                "--format gguf writes the llama, phi3, mixtral, gpt2 and neox families \
                 (llama.cpp's layouts for them); {f} is not supported"
            )));
        }
    };
    // GPT-2 and GPT-NeoX GGUF files give no kv head count or head size: q, k and v have as
    // many heads as there are, of hidden / heads.
    let fused_only = matches!(spec.family, SynthFamily::Gpt2 | SynthFamily::Neox);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    remove_stale(out_dir, &[])?;
    let (qtype, qbytes, file_type) = quant.ids();

    let mut meta = vec![
        ("general.architecture", Meta::Str(arch.into())),
        ("general.name", Meta::Str(format!("mpscope synth {arch}"))),
        ("general.file_type", Meta::U32(file_type)),
        ("general.quantization_version", Meta::U32(2)),
        ("block_count", Meta::U32(spec.layers as u32)),
        ("context_length", Meta::U32(spec.positions as u32)),
        ("embedding_length", Meta::U32(spec.hidden as u32)),
        ("feed_forward_length", Meta::U32(spec.intermediate() as u32)),
        ("attention.head_count", Meta::U32(spec.heads as u32)),
        ("attention.head_count_kv", Meta::U32(spec.kv_heads as u32)),
        ("attention.key_length", Meta::U32(spec.head_dim() as u32)),
        ("attention.value_length", Meta::U32(spec.head_dim() as u32)),
        ("attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("vocab_size", Meta::U32(spec.vocab as u32)),
    ];
    if fused_only {
        meta.retain(|(k, _)| {
            !matches!(
                *k,
                "attention.head_count_kv" | "attention.key_length" | "attention.value_length"
            )
        });
    }
    if spec.experts > 0 {
        meta.push(("expert_count", Meta::U32(spec.experts as u32)));
        meta.push(("expert_used_count", Meta::U32(spec.experts_used() as u32)));
    }
    let mut head = b"GGUF".to_vec();
    head.extend(3u32.to_le_bytes());
    head.extend((plan.stored.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in &meta {
        let key = if key.starts_with("general.") {
            (*key).to_owned()
        } else {
            format!("{arch}.{key}")
        };
        gguf_string(&mut head, &key);
        match value {
            Meta::U32(v) => {
                head.extend(4u32.to_le_bytes());
                head.extend(v.to_le_bytes());
            }
            Meta::F32(v) => {
                head.extend(6u32.to_le_bytes());
                head.extend(v.to_le_bytes());
            }
            Meta::Str(s) => {
                head.extend(8u32.to_le_bytes());
                gguf_string(&mut head, s);
            }
        }
    }
    // Matrices (and stacked experts) whose rows are whole blocks get `quant`; vectors (norms,
    // biases) stay f32.
    let stored_type = |shape: &[usize]| match shape {
        [_, cols] | [_, _, cols] if cols % 32 == 0 => (qtype, qbytes),
        _ => (0, 128),
    };
    let mut offset = 0usize;
    for st in &plan.stored {
        let (ty, bytes_per_32) = stored_type(&st.shape);
        gguf_string(&mut head, &converted_name(spec.family, arch, &st.name));
        head.extend((st.shape.len() as u32).to_le_bytes());
        for d in st.shape.iter().rev() {
            head.extend((*d as u64).to_le_bytes());
        }
        head.extend(ty.to_le_bytes());
        head.extend((offset as u64).to_le_bytes());
        let size = (st.numel() * bytes_per_32).div_ceil(32);
        offset = (offset + size).div_ceil(ALIGN) * ALIGN;
    }
    head.resize(head.len().div_ceil(ALIGN) * ALIGN, 0);

    let path = out_dir.join("model.gguf");
    let file = fs::File::create(&path).map_err(io(&path))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&head).map_err(io(&path))?;
    let mut buf = Vec::new();
    for (idx, st) in plan.stored.iter().enumerate() {
        let values = plan.stored_values(idx);
        buf.clear();
        match stored_type(&st.shape) {
            (0, _) => buf.extend(values.iter().flat_map(|x| x.to_le_bytes())),
            _ => quant.quantize(&values, &mut buf),
        }
        buf.resize(buf.len().div_ceil(ALIGN) * ALIGN, 0);
        w.write_all(&buf).map_err(io(&path))?;
    }
    w.flush().map_err(io(&path))?;
    let truth = truth_of(plan);
    write_json(&out_dir.join("truth.json"), &truth)?;
    Ok(truth)
}

/// The GGUF name llama.cpp's converter gives a tensor of the synthetic model: Llama-style
/// names through [`gguf_name`]; GPT-2's and GPT-NeoX's own names through their tables.
fn converted_name(family: SynthFamily, arch: &str, name: &str) -> String {
    let (layers, layer_names, top_names): (&str, &[NamePair], &[NamePair]) = match family {
        SynthFamily::Gpt2 => ("h.", &GPT2_LAYER, &GPT2_TOP),
        SynthFamily::Neox => ("gpt_neox.layers.", &NEOX_LAYER, &NEOX_TOP),
        _ => return gguf_name(arch, name),
    };
    let (stem, suffix) = name.rsplit_once('.').unwrap_or((name, ""));
    let mapped = match stem.strip_prefix(layers).and_then(|r| r.split_once('.')) {
        Some((layer, part)) => layer_names
            .iter()
            .find(|(hf, _)| *hf == part)
            .map(|(_, g)| format!("blk.{layer}.{g}")),
        None => top_names
            .iter()
            .find(|(hf, _)| *hf == stem)
            .map(|(_, g)| (*g).to_owned()),
    };
    match mapped {
        Some(m) => format!("{m}.{suffix}"),
        None => name.to_owned(),
    }
}

/// A Hugging Face name part and its GGUF name.
type NamePair = (&'static str, &'static str);

/// GPT-2 layer tensors (after `h.N.`) and their GGUF names.
const GPT2_LAYER: [(&str, &str); 6] = [
    ("ln_1", "attn_norm"),
    ("attn.c_attn", "attn_qkv"),
    ("attn.c_proj", "attn_output"),
    ("ln_2", "ffn_norm"),
    ("mlp.c_fc", "ffn_up"),
    ("mlp.c_proj", "ffn_down"),
];

/// GPT-2 tensors outside the layers.
const GPT2_TOP: [(&str, &str); 3] = [
    ("wte", "token_embd"),
    ("wpe", "position_embd"),
    ("ln_f", "output_norm"),
];

/// GPT-NeoX layer tensors (after `gpt_neox.layers.N.`) and their GGUF names.
const NEOX_LAYER: [(&str, &str); 6] = [
    ("input_layernorm", "attn_norm"),
    ("attention.query_key_value", "attn_qkv"),
    ("attention.dense", "attn_output"),
    ("post_attention_layernorm", "ffn_norm"),
    ("mlp.dense_h_to_4h", "ffn_up"),
    ("mlp.dense_4h_to_h", "ffn_down"),
];

/// GPT-NeoX tensors outside the layers.
const NEOX_TOP: [(&str, &str); 3] = [
    ("gpt_neox.embed_in", "token_embd"),
    ("gpt_neox.final_layer_norm", "output_norm"),
    ("embed_out", "output"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converter_names() {
        let cases = [
            (
                SynthFamily::Gpt2,
                "h.3.attn.c_attn.weight",
                "blk.3.attn_qkv.weight",
            ),
            (
                SynthFamily::Gpt2,
                "h.0.mlp.c_proj.bias",
                "blk.0.ffn_down.bias",
            ),
            (SynthFamily::Gpt2, "wpe.weight", "position_embd.weight"),
            (
                SynthFamily::Neox,
                "gpt_neox.layers.1.attention.query_key_value.weight",
                "blk.1.attn_qkv.weight",
            ),
            (SynthFamily::Neox, "embed_out.weight", "output.weight"),
            (
                SynthFamily::Neox,
                "gpt_neox.layers.1.other.weight",
                "gpt_neox.layers.1.other.weight",
            ),
            (
                SynthFamily::Mixtral,
                "model.layers.2.mlp.experts.down_proj.weight",
                "blk.2.ffn_down_exps.weight",
            ),
            (
                SynthFamily::Mixtral,
                "model.layers.2.mlp.gate.weight",
                "blk.2.ffn_gate_inp.weight",
            ),
        ];
        for (family, hf, gguf) in cases {
            let arch = if family == SynthFamily::Neox {
                "gptneox"
            } else {
                "x"
            };
            assert_eq!(converted_name(family, arch, hf), gguf, "{hf}");
        }
    }

    #[test]
    fn quantizers_round_trip_within_half_a_step() {
        let xs: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 31.5) / 50.0)
            .collect();
        for (q, levels) in [
            (GgufQuant::Q8_0, 127.0),
            (GgufQuant::Q4_0, 8.0),
            (GgufQuant::Q4_1, 15.0),
            (GgufQuant::Q5_0, 16.0),
            (GgufQuant::Q5_1, 31.0),
        ] {
            let mut bytes = Vec::new();
            q.quantize(&xs, &mut bytes);
            let (id, size, _) = q.ids();
            assert_eq!(bytes.len(), 2 * size, "{q}");
            let quant = crate::checkpoint::Quant::ALL
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(q.as_str()))
                .unwrap();
            assert!(id > 1);
            let mut back = vec![0f32; 64];
            quant.dequantize(&bytes, &mut back);
            let step = 0.63 / levels;
            for (a, b) in xs.iter().zip(&back) {
                assert!((a - b).abs() <= step * 1.01, "{q}: {a} vs {b}");
            }
        }
    }
}
