//! Reading and validating one GGUF file (llama.cpp, Ollama, LM Studio), v2 and v3.
//!
//! Layout (little-endian): magic `GGUF`, version u32, tensor count u64, metadata count u64;
//! the metadata key/values (key string, type u32, value); the tensor infos (name string, dims
//! u32, each dim u64 fastest first, GGML type u32, offset u64 from the data section); padding
//! to `general.alignment` (default 32); the data section. A string is a u64 length and UTF-8
//! bytes. Every count, length, offset and size is checked against the file before use, so a
//! malformed file gives one [`CheckpointError::BadGguf`] naming the file and the problem.
//!
//! GGUF lists dimensions fastest first; the shapes here are reversed to row-major (`[out, in]`
//! for a weight, as Hugging Face stores it). Tensor names are mapped to Hugging Face names
//! (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`) so the anatomy sees one
//! naming; fused `attn_qkv` (phi3, gpt2, gptneox, stored as q, k, v row blocks by llama.cpp's
//! converter) becomes Phi-3's `qkv_proj`, and phi3's fused `ffn_up` its `gate_up_proj`. Mixture
//! of Experts: the 3-D `ffn_{gate,up,down}_exps` ([experts, out, in]) become
//! `mlp.experts.{gate,up,down}_proj`, which the anatomy cuts by position into one matrix per
//! expert; `ffn_gate_inp` is the router `mlp.gate`, `ffn_*_shexp` the shared expert.

use std::path::Path;

use super::header::Entry;
use super::{CheckpointError, Dtype, ModelConfig, Quant};

/// The only magic: "GGUF" as bytes.
const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of the data section and of every tensor offset when the file does not say.
const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML's limit on tensor dimensions.
const MAX_DIMS: usize = 4;
/// Deepest nesting of arrays accepted in metadata.
const MAX_NESTING: usize = 4;

/// A metadata value; arrays keep their element type and length only.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Any unsigned integer type.
    UInt(u64),
    /// Any signed integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// bool.
    Bool(bool),
    /// A UTF-8 string (lossy when the bytes are not UTF-8).
    Str(String),
    /// An array: element type id and length.
    Array(u32, u64),
}

impl Value {
    fn as_usize(&self) -> Option<usize> {
        match *self {
            Value::UInt(v) => usize::try_from(v).ok(),
            Value::Int(v) => usize::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One parsed GGUF file: its tensors (GGUF names, row-major shapes) and metadata.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// Tensors in file order.
    pub entries: Vec<Entry>,
    /// Metadata in file order.
    pub meta: Vec<(String, Value)>,
}

impl Parsed {
    fn get(&self, key: &str) -> Option<&Value> {
        self.meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn text(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Option<&str> {
        self.text("general.architecture")
    }

    /// Sizes from the architecture's metadata, as config.json would give them.
    pub fn config(&self) -> ModelConfig {
        let arch = self.architecture().unwrap_or_default();
        let n = |key: &str| self.get(&format!("{arch}.{key}")).and_then(Value::as_usize);
        let vocab = n("vocab_size").or_else(|| match self.get("tokenizer.ggml.tokens") {
            Some(Value::Array(_, len)) => usize::try_from(*len).ok(),
            _ => None,
        });
        ModelConfig {
            architecture: None,
            model_type: None,
            hidden_size: n("embedding_length"),
            num_layers: n("block_count"),
            num_heads: n("attention.head_count"),
            num_kv_heads: n("attention.head_count_kv"),
            head_dim: n("attention.key_length"),
            intermediate_size: n("feed_forward_length"),
            vocab_size: vocab,
            initializer_range: None,
            num_experts: n("expert_count"),
            experts_used: n("expert_used_count"),
            shared_experts: n("expert_shared_count"),
        }
    }

    /// What the file says about the model, for people: name, size label, file type,
    /// architecture.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, label) in [
            ("general.name", "name"),
            ("general.size_label", "size label"),
        ] {
            if let Some(v) = self.text(key) {
                out.push((label.to_owned(), v.to_owned()));
            }
        }
        if let Some(t) = self.get("general.file_type").and_then(Value::as_usize) {
            out.push(("file type".to_owned(), file_type_name(t)));
        }
        if let Some(a) = self.architecture() {
            out.push(("architecture".to_owned(), a.to_owned()));
        }
        out
    }
}

/// llama.cpp's `llama_ftype` names (what `general.file_type` holds).
fn file_type_name(t: usize) -> String {
    const NAMES: [(usize, &str); 33] = [
        (0, "F32"),
        (1, "F16"),
        (2, "Q4_0"),
        (3, "Q4_1"),
        (7, "Q8_0"),
        (8, "Q5_0"),
        (9, "Q5_1"),
        (10, "Q2_K"),
        (11, "Q3_K_S"),
        (12, "Q3_K_M"),
        (13, "Q3_K_L"),
        (14, "Q4_K_S"),
        (15, "Q4_K_M"),
        (16, "Q5_K_S"),
        (17, "Q5_K_M"),
        (18, "Q6_K"),
        (19, "IQ2_XXS"),
        (20, "IQ2_XS"),
        (21, "Q2_K_S"),
        (22, "IQ3_XS"),
        (23, "IQ3_XXS"),
        (24, "IQ1_S"),
        (25, "IQ4_NL"),
        (26, "IQ3_S"),
        (27, "IQ3_M"),
        (28, "IQ2_S"),
        (29, "IQ2_M"),
        (30, "IQ4_XS"),
        (31, "IQ1_M"),
        (32, "BF16"),
        (36, "TQ1_0"),
        (37, "TQ2_0"),
        (38, "MXFP4_MOE"),
    ];
    NAMES
        .iter()
        .find(|(id, _)| *id == t)
        .map_or_else(|| format!("type {t}"), |(_, n)| (*n).to_owned())
}

/// A GGML tensor type: name, values and bytes per block, and the dtype it decodes as.
struct GgmlType {
    name: &'static str,
    block_values: usize,
    block_bytes: usize,
    dtype: Dtype,
}

/// The GGML type of a type id; `None` for ids GGML does not define.
fn ggml_type(id: u32) -> Option<GgmlType> {
    let known = |dtype: Dtype| {
        let (v, b) = match &dtype {
            Dtype::Quant(q) => (q.block_values(), q.block_bytes()),
            Dtype::F64 => (1, 8),
            Dtype::F32 => (1, 4),
            _ => (1, 2),
        };
        (v, b, dtype)
    };
    let other = |v: usize, b: usize, name: &str| (v, b, Dtype::Unsupported(name.to_owned()));
    let (name, (block_values, block_bytes, dtype)) = match id {
        0 => ("F32", known(Dtype::F32)),
        1 => ("F16", known(Dtype::F16)),
        2 => ("Q4_0", known(Dtype::Quant(Quant::Q4_0))),
        3 => ("Q4_1", known(Dtype::Quant(Quant::Q4_1))),
        6 => ("Q5_0", known(Dtype::Quant(Quant::Q5_0))),
        7 => ("Q5_1", known(Dtype::Quant(Quant::Q5_1))),
        8 => ("Q8_0", known(Dtype::Quant(Quant::Q8_0))),
        9 => ("Q8_1", other(32, 36, "Q8_1")),
        10 => ("Q2_K", known(Dtype::Quant(Quant::Q2K))),
        11 => ("Q3_K", known(Dtype::Quant(Quant::Q3K))),
        12 => ("Q4_K", known(Dtype::Quant(Quant::Q4K))),
        13 => ("Q5_K", known(Dtype::Quant(Quant::Q5K))),
        14 => ("Q6_K", known(Dtype::Quant(Quant::Q6K))),
        15 => ("Q8_K", known(Dtype::Quant(Quant::Q8K))),
        16 => ("IQ2_XXS", other(256, 66, "IQ2_XXS")),
        17 => ("IQ2_XS", other(256, 74, "IQ2_XS")),
        18 => ("IQ3_XXS", other(256, 98, "IQ3_XXS")),
        19 => ("IQ1_S", other(256, 50, "IQ1_S")),
        20 => ("IQ4_NL", other(32, 18, "IQ4_NL")),
        21 => ("IQ3_S", other(256, 110, "IQ3_S")),
        22 => ("IQ2_S", other(256, 82, "IQ2_S")),
        23 => ("IQ4_XS", other(256, 136, "IQ4_XS")),
        24 => ("I8", other(1, 1, "I8")),
        25 => ("I16", other(1, 2, "I16")),
        26 => ("I32", other(1, 4, "I32")),
        27 => ("I64", other(1, 8, "I64")),
        28 => ("F64", known(Dtype::F64)),
        29 => ("IQ1_M", other(256, 56, "IQ1_M")),
        30 => ("BF16", known(Dtype::BF16)),
        34 => ("TQ1_0", other(256, 54, "TQ1_0")),
        35 => ("TQ2_0", other(256, 66, "TQ2_0")),
        39 => ("MXFP4", other(32, 17, "MXFP4")),
        40 => ("NVFP4", other(64, 36, "NVFP4")),
        41 => ("Q1_0", other(128, 18, "Q1_0")),
        _ => return None,
    };
    Some(GgmlType {
        name,
        block_values,
        block_bytes,
        dtype,
    })
}

/// Why parsing stopped short of a result.
#[derive(Debug, PartialEq)]
pub(crate) enum Stop {
    /// The bytes given end before the header does: the first `n` bytes of the file are needed.
    Need(usize),
    /// The file is malformed: what is wrong, and where.
    Bad(String),
}

impl From<String> for Stop {
    fn from(problem: String) -> Self {
        Stop::Bad(problem)
    }
}

/// What a parse of the first bytes of a GGUF file gives: the header, or how many bytes it needs.
#[derive(Debug)]
pub(crate) enum Step {
    /// The whole header was within the bytes given.
    Done(Parsed),
    /// The header runs past the bytes given: read the first `n` bytes of the file and parse again.
    NeedBytes(usize),
}

/// Most bytes of a GGUF header (metadata and tensor infos) read; real ones are a few MB, the
/// largest tokenizer vocabularies included.
pub(crate) const MAX_HEADER: usize = 1 << 28;

/// A bounds-checked little-endian reader over the first bytes of a file of `file_len` bytes.
struct Reader<'a> {
    buf: &'a [u8],
    file_len: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.file_len);
        let Some(end) = end else {
            return Err(format!(
                "truncated: {} needs {n} bytes at offset {}, but the file ends at {}",
                what(),
                self.pos,
                self.file_len
            )
            .into());
        };
        let Some(s) = self.buf.get(self.pos..end) else {
            return Err(Stop::Need(end));
        };
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], Stop> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, Stop> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, Stop> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Bytes of the file after the current position.
    fn remaining(&self) -> usize {
        self.file_len - self.pos
    }

    /// A u64 count of items of at least `min` bytes each, checked against the bytes left.
    fn count(&mut self, min: usize, what: &dyn Fn() -> String) -> Result<usize, Stop> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|k| k.checked_mul(min))
            .is_some_and(|b| b <= self.remaining());
        if !fits {
            return Err(format!(
                "{} is {n}, more than the {} bytes left in the file could hold; the file is \
                 truncated or corrupt",
                what(),
                self.remaining()
            )
            .into());
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, Stop> {
        let n = self.count(1, &|| format!("the length of {}", what()))?;
        let bytes = self.take(n, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A value of metadata type `ty`; arrays are walked (and checked) but not kept.
    fn value(&mut self, ty: u32, depth: usize, what: &dyn Fn() -> String) -> Result<Value, Stop> {
        let fixed = |r: &mut Self, n: usize| r.take(n, what).map(|s| s.to_vec());
        Ok(match ty {
            0 => Value::UInt(u64::from(fixed(self, 1)?[0])),
            1 => Value::Int(i64::from(fixed(self, 1)?[0] as i8)),
            2 => Value::UInt(u64::from(u16::from_le_bytes(self.array(what)?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.array(what)?))),
            4 => Value::UInt(u64::from(self.u32(what)?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.array(what)?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.array(what)?))),
            7 => match fixed(self, 1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{} is a bool stored as {b}, not 0 or 1", what()).into()),
            },
            8 => Value::Str(self.string(what)?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(format!("{} nests arrays deeper than {MAX_NESTING}", what()).into());
                }
                let elem = self.u32(&|| format!("the element type of {}", what()))?;
                let min = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(format!("{} has unknown element type {t}", what()).into()),
                };
                let len = self.count(min, &|| format!("the length of {}", what()))?;
                if matches!(elem, 8 | 9) {
                    for i in 0..len {
                        self.value(elem, depth + 1, &|| format!("element {i} of {}", what()))?;
                    }
                } else {
                    self.take(len * min, what)?;
                }
                Value::Array(elem, len as u64)
            }
            10 => Value::UInt(self.u64(what)?),
            11 => Value::Int(i64::from_le_bytes(self.array(what)?)),
            12 => Value::Float(f64::from_le_bytes(self.array(what)?)),
            t => return Err(format!("{} has unknown value type {t}", what()).into()),
        })
    }
}

/// True when `buf` starts with the GGUF magic.
pub(crate) fn is_gguf(buf: &[u8]) -> bool {
    buf.starts_with(MAGIC)
}

/// Parses and checks the header of the GGUF file at `path`, `file_len` bytes long, from its
/// first bytes `buf`; when the header runs past them, says how many are needed.
pub(crate) fn parse(path: &Path, file_len: usize, buf: &[u8]) -> Result<Step, CheckpointError> {
    match parse_inner(buf, file_len) {
        Ok(parsed) => Ok(Step::Done(parsed)),
        Err(Stop::Need(n)) => Ok(Step::NeedBytes(n)),
        Err(Stop::Bad(problem)) => Err(CheckpointError::BadGguf {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

fn parse_inner(buf: &[u8], file_len: usize) -> Result<Parsed, Stop> {
    if file_len == 0 {
        return Err(Stop::Bad("the file is empty".into()));
    }
    let buf = &buf[..buf.len().min(file_len)];
    let mut r = Reader {
        buf,
        file_len,
        pos: 0,
    };
    let magic = r.take(4, &|| "the magic".into())?;
    if magic != MAGIC {
        return Err(
            format!("bad magic {magic:02x?}; a GGUF file starts with the bytes \"GGUF\"").into(),
        );
    }
    let version = r.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        let hint = if version.swap_bytes() == 3 || version.swap_bytes() == 2 {
            " (a big-endian file)"
        } else if version == 1 {
            " (GGUF v1 predates 64-bit counts)"
        } else {
            ""
        };
        return Err(
            format!("unsupported version {version}{hint}; mpscope reads GGUF v2 and v3").into(),
        );
    }
    // The smallest tensor info: empty name (8), one dim (4 + 8), type (4), offset (8).
    let n_tensors = r.count(32, &|| "the tensor count".into())?;
    // The smallest key/value: empty key (8), type (4), a one-byte value.
    let n_kv = r.count(13, &|| "the metadata count".into())?;

    let mut meta = Vec::with_capacity(n_kv);
    for i in 0..n_kv {
        let key = r.string(&|| format!("the key of metadata entry {i}"))?;
        let what = || format!("metadata `{key}`");
        let ty = r.u32(&|| format!("the type of {}", what()))?;
        let value = r.value(ty, 0, &what)?;
        meta.push((key, value));
    }
    let alignment = match meta.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::UInt(a))) if a.is_power_of_two() => *a,
        Some((_, v)) => {
            return Err(format!(
                "metadata `general.alignment` is {v:?}; expected a power of two (u32)"
            )
            .into());
        }
    };
    for (key, want) in [
        ("general.architecture", "a string"),
        ("general.name", "a string"),
    ] {
        if let Some((_, v)) = meta.iter().find(|(k, _)| k == key)
            && !matches!(v, Value::Str(_))
        {
            return Err(format!("metadata `{key}` is {v:?}; expected {want}").into());
        }
    }

    struct Raw {
        name: String,
        dims: Vec<usize>,
        ty: GgmlType,
        offset: u64,
        bytes: usize,
    }
    let mut raws: Vec<Raw> = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = r.string(&|| format!("the name of tensor {i}"))?;
        let what = || format!("tensor `{name}`");
        let n_dims = r.u32(&|| format!("the dimension count of {}", what()))? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "{} has {n_dims} dimensions; GGUF tensors have 1 to {MAX_DIMS}",
                what()
            )
            .into());
        }
        let mut dims = Vec::with_capacity(n_dims);
        for d in 0..n_dims {
            let v = r.u64(&|| format!("dimension {d} of {}", what()))?;
            dims.push(
                usize::try_from(v)
                    .map_err(|_| format!("{}: dimension {d} ({v}) overflows", what()))?,
            );
        }
        let id = r.u32(&|| format!("the type of {}", what()))?;
        let ty = ggml_type(id).ok_or_else(|| format!("{} has unknown type id {id}", what()))?;
        let offset = r.u64(&|| format!("the offset of {}", what()))?;
        if offset % alignment != 0 {
            return Err(format!(
                "{} has offset {offset}, not a multiple of the alignment {alignment}",
                what()
            )
            .into());
        }
        let numel = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("{}: dimensions {dims:?} overflow", what()))?;
        if !dims[0].is_multiple_of(ty.block_values) {
            return Err(format!(
                "{}: {} values per row is not a whole number of {} blocks of {}",
                what(),
                dims[0],
                ty.name,
                ty.block_values
            )
            .into());
        }
        let bytes = (numel / ty.block_values)
            .checked_mul(ty.block_bytes)
            .ok_or_else(|| format!("{}: dimensions {dims:?} overflow", what()))?;
        raws.push(Raw {
            name,
            dims,
            ty,
            offset,
            bytes,
        });
    }
    let data_start = r
        .pos
        .div_ceil(alignment as usize)
        .saturating_mul(alignment as usize);
    let data_len = file_len.saturating_sub(data_start);

    let mut seen = std::collections::HashSet::with_capacity(raws.len());
    let mut entries = Vec::with_capacity(raws.len());
    for t in raws {
        if !seen.insert(t.name.clone()) {
            return Err(format!("tensor `{}` is defined twice", t.name).into());
        }
        let end = usize::try_from(t.offset)
            .ok()
            .and_then(|o| o.checked_add(t.bytes))
            .filter(|&e| e <= data_len);
        let Some(end) = end else {
            return Err(format!(
                "tensor `{}` ({} {:?}, {} bytes at offset {}) runs past the end of the data \
                 ({data_len} bytes); the file is truncated",
                t.name, t.ty.name, t.dims, t.bytes, t.offset
            )
            .into());
        };
        let begin = end - t.bytes;
        entries.push(Entry {
            name: t.name,
            dtype: t.ty.dtype,
            shape: t.dims.into_iter().rev().collect(),
            bytes: data_start + begin..data_start + end,
        });
    }
    Ok(Parsed { entries, meta })
}

/// Per-layer GGUF tensor names and the Hugging Face (Llama / Phi-3) names they map to.
const LAYER_NAMES: [(&str, &str); 22] = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_qkv", "self_attn.qkv_proj"),
    ("attn_norm", "input_layernorm"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("attn_post_norm", "self_attn.post_norm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_post_norm", "post_feedforward_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("ffn_gate_inp", "mlp.gate"),
    ("ffn_gate_exps", "mlp.experts.gate_proj"),
    ("ffn_up_exps", "mlp.experts.up_proj"),
    ("ffn_down_exps", "mlp.experts.down_proj"),
    ("ffn_gate_shexp", "mlp.shared_expert.gate_proj"),
    ("ffn_up_shexp", "mlp.shared_expert.up_proj"),
    ("ffn_down_shexp", "mlp.shared_expert.down_proj"),
    ("ffn_gate_inp_shexp", "mlp.shared_expert_gate"),
];

/// Tensors outside the layers.
const TOP_NAMES: [(&str, &str); 5] = [
    ("token_embd", "model.embed_tokens"),
    ("position_embd", "model.embed_positions"),
    ("token_types", "model.token_type_embeddings"),
    ("output_norm", "model.norm"),
    ("output", "lm_head"),
];

/// A tensor name cut at its layer: `PREFIX<layer>.<part>[.weight|.bias]`.
struct Cut<'a> {
    /// The layer index digits, when the name starts with the prefix and a layer.
    layer: Option<&'a str>,
    /// The rest without the suffix (the whole stem outside a layer).
    part: &'a str,
    /// `weight` or `bias`, when the name ends with it.
    suffix: Option<&'a str>,
}

impl<'a> Cut<'a> {
    fn new(name: &'a str, prefix: &str) -> Self {
        let (stem, suffix) = match name.rsplit_once('.') {
            Some((s, x @ ("weight" | "bias"))) => (s, Some(x)),
            _ => (name, None),
        };
        if let Some(rest) = stem.strip_prefix(prefix)
            && let Some((layer, part)) = rest.split_once('.')
            && !layer.is_empty()
            && layer.bytes().all(|b| b.is_ascii_digit())
        {
            return Cut {
                layer: Some(layer),
                part,
                suffix,
            };
        }
        Cut {
            layer: None,
            part: stem,
            suffix,
        }
    }

    /// `base` with the suffix put back.
    fn with_suffix(&self, base: String) -> String {
        match self.suffix {
            Some(x) => format!("{base}.{x}"),
            None => base,
        }
    }
}

/// The Hugging Face name of a GGUF tensor of architecture `arch`; unknown names map to
/// `model.layers.N.<rest>` inside a layer and stay as they are outside.
pub(crate) fn hf_name(arch: &str, name: &str) -> String {
    let cut = Cut::new(name, "blk.");
    if let Some(layer) = cut.layer {
        let part = cut.part;
        let mapped = match part {
            // Phi-3 fuses gate and up rows into one `ffn_up`, as its gate_up_proj.
            "ffn_up" if arch == "phi3" => "mlp.gate_up_proj",
            _ => LAYER_NAMES
                .iter()
                .find(|(g, _)| *g == part)
                .map_or(part, |(_, hf)| hf),
        };
        return cut.with_suffix(format!("model.layers.{layer}.{mapped}"));
    }
    match TOP_NAMES.iter().find(|(g, _)| *g == cut.part) {
        Some((_, hf)) => cut.with_suffix((*hf).to_owned()),
        None => name.to_owned(),
    }
}

/// The GGUF name of a Hugging Face tensor name in architecture `arch`: the inverse of
/// [`hf_name`] for the names it maps; other names are kept.
pub fn gguf_name(arch: &str, name: &str) -> String {
    let cut = Cut::new(name, "model.layers.");
    if let Some(layer) = cut.layer {
        let part = cut.part;
        let gguf = match part {
            "mlp.gate_up_proj" if arch == "phi3" => Some("ffn_up"),
            _ => LAYER_NAMES
                .iter()
                .find(|(g, hf)| *hf == part && !(arch == "phi3" && *g == "ffn_up"))
                .map(|(g, _)| *g),
        };
        if let Some(g) = gguf {
            return cut.with_suffix(format!("blk.{layer}.{g}"));
        }
        return name.to_owned();
    }
    match TOP_NAMES.iter().find(|(_, hf)| *hf == cut.part) {
        Some((g, _)) => cut.with_suffix((*g).to_owned()),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face() {
        let cases = [
            (
                "llama",
                "blk.3.attn_q.weight",
                "model.layers.3.self_attn.q_proj.weight",
            ),
            (
                "llama",
                "blk.0.attn_output.weight",
                "model.layers.0.self_attn.o_proj.weight",
            ),
            (
                "qwen2",
                "blk.1.attn_k.bias",
                "model.layers.1.self_attn.k_proj.bias",
            ),
            (
                "phi3",
                "blk.2.attn_qkv.weight",
                "model.layers.2.self_attn.qkv_proj.weight",
            ),
            (
                "phi3",
                "blk.2.ffn_up.weight",
                "model.layers.2.mlp.gate_up_proj.weight",
            ),
            (
                "gpt2",
                "blk.2.ffn_up.weight",
                "model.layers.2.mlp.up_proj.weight",
            ),
            // Mixture of Experts: stacked experts, routers, shared experts.
            (
                "qwen2moe",
                "blk.5.ffn_gate_exps.weight",
                "model.layers.5.mlp.experts.gate_proj.weight",
            ),
            (
                "llama",
                "blk.0.ffn_down_exps.weight",
                "model.layers.0.mlp.experts.down_proj.weight",
            ),
            (
                "deepseek2",
                "blk.3.ffn_gate_inp.weight",
                "model.layers.3.mlp.gate.weight",
            ),
            (
                "qwen2moe",
                "blk.1.ffn_up_shexp.weight",
                "model.layers.1.mlp.shared_expert.up_proj.weight",
            ),
            (
                "deepseek2",
                "blk.1.ffn_down_shexp.weight",
                "model.layers.1.mlp.shared_expert.down_proj.weight",
            ),
            (
                "qwen2moe",
                "blk.1.ffn_gate_inp_shexp.weight",
                "model.layers.1.mlp.shared_expert_gate.weight",
            ),
            ("llama", "token_embd.weight", "model.embed_tokens.weight"),
            ("llama", "output.weight", "lm_head.weight"),
            ("llama", "output_norm.weight", "model.norm.weight"),
            ("llama", "rope_freqs.weight", "rope_freqs.weight"),
            (
                "llama",
                "blk.4.new_thing.weight",
                "model.layers.4.new_thing.weight",
            ),
            ("llama", "blk.x.attn_q.weight", "blk.x.attn_q.weight"),
        ];
        for (arch, g, hf) in cases {
            assert_eq!(hf_name(arch, g), hf, "{arch} {g}");
            if !g.starts_with("blk.x") && !g.contains("new_thing") {
                assert_eq!(gguf_name(arch, hf), g, "{arch} {hf}");
            }
        }
    }

    /// Fuzzes the header parser: random byte flips, overwritten u64/u32 fields, insertions
    /// and truncations of a real gguf-py file must give `Ok` or an error, never a panic, and
    /// every `Ok` must keep each tensor's bytes inside the file. Deterministic (seeded), a few
    /// seconds; `MPSCOPE_FUZZ_CASES` raises the count.
    #[test]
    fn fuzz_header_parser_never_panics() {
        let base: &[u8] = include_bytes!("../../tests/data/tiny.gguf");
        // The header, metadata and tensor infos, plus a little data: where the parser looks.
        let header_end = parse_inner(base, base.len())
            .map(|p| p.entries.iter().map(|e| e.bytes.start).min().unwrap_or(0))
            .unwrap_or(base.len());
        let cases: usize = std::env::var("MPSCOPE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let mut rng = crate::rng::Rng::new(13);
        let mut below = |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
        let (mut ok, mut err) = (0, 0);
        for _ in 0..cases {
            let mut buf = base.to_vec();
            for _ in 0..1 + below(4) {
                let at = below(header_end.min(buf.len()));
                match below(6) {
                    0 if at < buf.len() => buf[at] ^= 1 << below(8),
                    1 if at < buf.len() => buf[at] = below(256) as u8,
                    2 if at + 8 <= buf.len() => {
                        let v = [0, 1, u64::MAX, 1 << 32, 1 << 62, below(1 << 20) as u64];
                        buf[at..at + 8].copy_from_slice(&v[below(6)].to_le_bytes());
                    }
                    3 if at + 4 <= buf.len() => {
                        let v = [0u32, 1, 9, 31, 99, u32::MAX];
                        buf[at..at + 4].copy_from_slice(&v[below(6)].to_le_bytes());
                    }
                    4 => buf.truncate(at),
                    _ => buf.insert(at.min(buf.len()), below(256) as u8),
                }
            }
            let whole = parse_inner(&buf, buf.len());
            match &whole {
                Ok(p) => {
                    ok += 1;
                    assert!(p.entries.iter().all(|e| e.bytes.end <= buf.len()));
                }
                Err(Stop::Bad(e)) => {
                    err += 1;
                    assert!(!e.is_empty());
                }
                Err(Stop::Need(n)) => panic!("the whole file cannot need more ({n} bytes)"),
            }
            // The first bytes only, as the chunked reader gives them: the same answer, or a
            // request for more bytes than were given.
            let cut = below(buf.len() + 1);
            match parse_inner(&buf[..cut], buf.len()) {
                Err(Stop::Need(n)) => assert!(n > cut && n <= buf.len(), "{n} after {cut}"),
                prefix => assert_eq!(
                    format!("{prefix:?}"),
                    format!("{whole:?}"),
                    "the first {cut} bytes"
                ),
            }
        }
        assert!(ok > 0 && err > 0, "{ok} parsed, {err} refused");
    }

    #[test]
    fn file_types() {
        assert_eq!(file_type_name(15), "Q4_K_M");
        assert_eq!(file_type_name(99), "type 99");
    }
}
