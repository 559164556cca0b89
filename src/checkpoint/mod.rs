//! Finding, reading and decoding safetensors and GGUF checkpoints.
//!
//! Knows files, headers, dtypes and `config.json`; knows nothing of layer names, math or UI.
//! Files of both formats are read by position, never memory-mapped (a GGUF header in growing
//! chunks, its quantized rows a whole block span at a time), and checked for changes on disk
//! around every read (see [`Change`] and the README's "Watching a training run").
//! CONTRACT (shared with anatomy, synth, spectrum, worker): the public types and method
//! signatures below are relied on by other modules; extend, don't rename.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use faer::Mat;

mod config;
mod decode;
mod error;
mod file;
mod gguf;
mod header;
mod hf;
mod natural;
mod ollama;
mod quant;

pub(crate) use decode::Elem;
use decode::Kind;
pub use error::CheckpointError;
use file::OpenFile;
pub use file::{Change, Identity};
pub use gguf::gguf_name;
pub use hf::{hf_cache_from_env, hf_cache_root, looks_like_repo_id};
pub use natural::natural_cmp;
pub use ollama::ollama_models_from_env;
pub use quant::Quant;

/// Element type of a stored tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 double.
    F64,
    /// IEEE 754 single.
    F32,
    /// IEEE 754 half.
    F16,
    /// bfloat16.
    BF16,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits (OCP FP8 E4M3FN).
    F8E4M3,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits.
    F8E5M2,
    /// A GGML block quantization (GGUF files): blocks of 32 or 256 values with their scales.
    Quant(Quant),
    /// Any other dtype (integers, bool, packed formats): listed, never decoded.
    Unsupported(String),
}

/// One tensor of the checkpoint: where it lives and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Full tensor name as stored.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape as stored (row-major).
    pub shape: Vec<usize>,
    /// Index into [`Checkpoint::files`].
    pub file: usize,
    /// Byte range of the data within the whole file (header already accounted for).
    pub bytes: Range<usize>,
}

/// What `config.json` says about the model (all optional; absent keys stay `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelConfig {
    /// `architectures[0]`, e.g. "LlamaForCausalLM".
    pub architecture: Option<String>,
    /// `model_type`, e.g. "llama".
    pub model_type: Option<String>,
    /// `hidden_size` (or `n_embd`, `d_model`).
    pub hidden_size: Option<usize>,
    /// `num_hidden_layers` (or `n_layer`).
    pub num_layers: Option<usize>,
    /// `num_attention_heads` (or `n_head`).
    pub num_heads: Option<usize>,
    /// `num_key_value_heads` (GQA); `None` means equal to `num_heads`.
    pub num_kv_heads: Option<usize>,
    /// `head_dim` when given explicitly.
    pub head_dim: Option<usize>,
    /// `intermediate_size` (or `n_inner`).
    pub intermediate_size: Option<usize>,
    /// `vocab_size`.
    pub vocab_size: Option<usize>,
    /// `initializer_range`: σ of the normal initialization.
    pub initializer_range: Option<f64>,
    /// Routed experts per MoE layer: `num_local_experts` (Mixtral), `num_experts` (Qwen-MoE),
    /// `n_routed_experts` (DeepSeek), GGUF `{arch}.expert_count`.
    pub num_experts: Option<usize>,
    /// Experts per token: `num_experts_per_tok`, GGUF `{arch}.expert_used_count`.
    pub experts_used: Option<usize>,
    /// Shared experts: `n_shared_experts` (DeepSeek), GGUF `{arch}.expert_shared_count`.
    pub shared_experts: Option<usize>,
}

/// A 2-D block cut from a stored 2-D tensor, in the logical orientation [out, in].
///
/// The stored rows `rows` (concatenated in order) × stored columns `cols` are taken, then
/// transposed when `transpose` is set (GPT-2 Conv1D stores [in, out]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selection {
    /// Index into [`Checkpoint::tensors`].
    pub tensor: usize,
    /// Stored row ranges, concatenated in order.
    pub rows: Vec<Range<usize>>,
    /// Stored column range.
    pub cols: Range<usize>,
    /// Transpose after cutting.
    pub transpose: bool,
}

impl Dtype {
    /// The safetensors name of the dtype ("F32", "BF16", "F8_E4M3", "I8", ...).
    pub fn name(&self) -> &str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::Quant(q) => q.name(),
            Dtype::Unsupported(name) => name,
        }
    }

    /// Whether mpscope can decode this dtype.
    pub fn is_supported(&self) -> bool {
        self.kind().is_some()
    }

    /// Why a tensor of this dtype is never analysed, or `None` when it can be decoded.
    ///
    /// Integer and bool tensors are buffers (position ids, masks, counters) or packed
    /// quantized data, never a weight matrix as stored; sub-byte and scale-only floats are
    /// packed formats mpscope does not unpack; GGUF's IQ*, TQ* and FP4 types are quantized
    /// weights whose codebooks mpscope does not decode.
    pub fn skip_reason(&self) -> Option<String> {
        let Dtype::Unsupported(name) = self else {
            return None;
        };
        let upper = name.to_ascii_uppercase();
        let integer = upper == "BOOL"
            || ["I", "U"].iter().any(|p| {
                upper.strip_prefix(p).is_some_and(|bits| {
                    !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit())
                })
            });
        Some(if integer {
            format!(
                "{} tensor: a buffer or packed data, not a weight",
                name.to_lowercase()
            )
        } else {
            format!("{}: a dtype mpscope does not decode", name.to_lowercase())
        })
    }

    fn kind(&self) -> Option<Kind> {
        Some(match self {
            Dtype::F64 => Kind::F64,
            Dtype::F32 => Kind::F32,
            Dtype::F16 => Kind::F16,
            Dtype::BF16 => Kind::BF16,
            Dtype::F8E4M3 => Kind::E4M3,
            Dtype::F8E5M2 => Kind::E5M2,
            Dtype::Quant(q) => Kind::Block(*q),
            Dtype::Unsupported(_) => return None,
        })
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TensorInfo {
    /// Number of elements (product of the shape).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How to open a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Hugging Face hub cache to resolve repo ids in; `None` means the environment's
    /// (see [`hf_cache_from_env`]).
    pub hf_cache: Option<PathBuf>,
}

/// An opened checkpoint: its open files, their tensors and the optional config.
pub struct Checkpoint {
    root: PathBuf,
    files: Vec<PathBuf>,
    open: Vec<OpenFile>,
    tensors: Vec<TensorInfo>,
    config: Option<ModelConfig>,
    config_path: Option<PathBuf>,
    facts: Vec<(String, String)>,
}

/// What to open: resolved from the user's path before any file is read.
struct Layout {
    root: PathBuf,
    files: Vec<PathBuf>,
    /// The index file and its weight_map, when sharded.
    index: Option<(PathBuf, Vec<(String, PathBuf)>)>,
    config_dir: PathBuf,
}

impl Checkpoint {
    /// Opens a `.safetensors` or `.gguf` file, a model directory, a sharded index, an HF cache
    /// repo id, or `ollama:NAME[:TAG]` from Ollama's local store.
    pub fn open(spec: &str) -> Result<Self, CheckpointError> {
        Self::open_with(spec, &OpenOptions::default())
    }

    /// [`Checkpoint::open`] with explicit options (e.g. the HF cache to look in).
    pub fn open_with(spec: &str, opts: &OpenOptions) -> Result<Self, CheckpointError> {
        if let Some(model) = spec.strip_prefix(ollama::PREFIX) {
            let blob = ollama::resolve(model, ollama_models_from_env().as_deref())?;
            return Self::load(Layout {
                root: blob.clone(),
                files: vec![blob.clone()],
                index: None,
                config_dir: parent_dir(&blob),
            });
        }
        let path = Path::new(spec);
        let layout = match std::fs::metadata(path) {
            Ok(md) if md.is_dir() => dir_layout(path)?,
            Ok(_) => file_layout(path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !hf::looks_like_repo_id(spec) {
                    return Err(CheckpointError::NotFound {
                        path: path.to_path_buf(),
                    });
                }
                let cache = opts.hf_cache.clone().or_else(hf_cache_from_env);
                dir_layout(&hf::resolve(spec, cache.as_deref())?)?
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_path_buf(),
                    action: "read",
                    source,
                });
            }
        };
        Self::load(layout)
    }

    fn load(layout: Layout) -> Result<Self, CheckpointError> {
        let mut open = Vec::with_capacity(layout.files.len());
        let mut tensors = Vec::new();
        // The first GGUF file's metadata (split models keep it in part 1).
        let mut gguf_meta: Option<gguf::Parsed> = None;
        for (file, path) in layout.files.iter().enumerate() {
            let (f, mut entries, meta) = open_file(path)?;
            open.push(f);
            if let Some(meta) = meta {
                let first = gguf_meta.get_or_insert(meta);
                let arch = first.architecture().unwrap_or_default();
                for e in &mut entries {
                    e.name = gguf::hf_name(arch, &e.name);
                }
            }
            tensors.extend(entries.into_iter().map(|e| TensorInfo {
                name: e.name,
                dtype: e.dtype,
                shape: e.shape,
                file,
                bytes: e.bytes,
            }));
        }
        tensors.sort_by(|a, b| natural_cmp(&a.name, &b.name).then(a.file.cmp(&b.file)));
        for w in tensors.windows(2) {
            if let [a, b] = w
                && a.name == b.name
            {
                return Err(CheckpointError::DuplicateTensor {
                    tensor: b.name.clone(),
                    first: layout.files[a.file].clone(),
                    second: layout.files[b.file].clone(),
                });
            }
        }
        if let Some((index, map)) = &layout.index {
            for (name, shard) in map {
                let found = tensors
                    .binary_search_by(|t| natural_cmp(&t.name, name))
                    .ok()
                    .and_then(|i| tensors.get(i));
                if found.is_none_or(|t| layout.files.get(t.file) != Some(shard)) {
                    return Err(CheckpointError::ShardLacksTensor {
                        index: index.clone(),
                        shard: shard.clone(),
                        tensor: name.clone(),
                    });
                }
            }
        }
        if tensors.is_empty() {
            return Err(CheckpointError::NoTensors { path: layout.root });
        }
        let config_path = layout.config_dir.join("config.json");
        let (config, config_path) = match &gguf_meta {
            Some(meta) => (Some(meta.config()), None),
            None => read_config(config_path)?,
        };
        let facts = gguf_meta
            .as_ref()
            .map(gguf::Parsed::facts)
            .unwrap_or_default();
        Ok(Checkpoint {
            root: layout.root,
            files: layout.files,
            open,
            tensors,
            config,
            config_path,
            facts,
        })
    }

    /// The directory or file the user named, resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the file's own metadata says about the model, as (label, value) pairs for people
    /// (GGUF: name, size label, file type, architecture); empty for safetensors.
    pub fn facts(&self) -> &[(String, String)] {
        &self.facts
    }

    /// The files opened, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Every tensor, sorted naturally by name (layer 2 before layer 10).
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Index into [`Checkpoint::tensors`] of the tensor with this exact name.
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors
            .binary_search_by(|t| natural_cmp(&t.name, name))
            .ok()
    }

    /// The config.json beside the weights, when present.
    pub fn config(&self) -> Option<&ModelConfig> {
        self.config.as_ref()
    }

    /// Where the config.json was read from, when present.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// The stored bytes of a tensor of this checkpoint, read from its file (empty if `t` does
    /// not belong to this checkpoint); fails when the file changed since it was opened.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> Result<Vec<u8>, CheckpointError> {
        let Some(f) = self.open.get(t.file) else {
            return Ok(Vec::new());
        };
        f.read_checked(|read| {
            let mut buf = vec![0u8; t.bytes.len()];
            read(t.bytes.start as u64, &mut buf)?;
            Ok(buf)
        })
    }

    /// What file `file` (an index into [`Checkpoint::files`]) was when opened, and a hash
    /// (xxh3) of its header bytes: what a cache knows the file's contents by.
    pub fn file_stamp(&self, file: usize) -> Option<(Identity, u64)> {
        self.open.get(file).map(|f| (f.identity(), f.header_hash()))
    }

    /// Total size of the opened files in bytes (as they were when opened).
    pub fn total_bytes(&self) -> u64 {
        self.open.iter().map(OpenFile::len).sum()
    }

    /// The first file that changed on disk since the checkpoint was opened: rewritten or
    /// truncated in place, replaced by a new file, or deleted. One `fstat` and one `stat` per
    /// file; cheap enough to poll.
    pub fn changed(&self) -> Option<Change> {
        self.open.iter().find_map(OpenFile::change)
    }

    /// Decodes a block into an f32 matrix (NaN and inf pass through unchanged).
    pub fn decode_f32(&self, sel: &Selection) -> Result<Mat<f32>, CheckpointError> {
        let mut out = Mat::new();
        self.decode_f32_into(sel, &mut out)?;
        Ok(out)
    }

    /// Decodes a block into an f64 matrix.
    pub fn decode_f64(&self, sel: &Selection) -> Result<Mat<f64>, CheckpointError> {
        let mut out = Mat::new();
        self.decode_f64_into(sel, &mut out)?;
        Ok(out)
    }

    /// [`Checkpoint::decode_f32`] into `out`, reshaping it and reusing its memory when it is
    /// at least as large in both dimensions (saves the page faults of a fresh allocation).
    pub fn decode_f32_into(
        &self,
        sel: &Selection,
        out: &mut Mat<f32>,
    ) -> Result<(), CheckpointError> {
        self.decode_into(sel, out)
    }

    /// [`Checkpoint::decode_f64`] into `out`, reusing its memory like
    /// [`Checkpoint::decode_f32_into`].
    pub fn decode_f64_into(
        &self,
        sel: &Selection,
        out: &mut Mat<f64>,
    ) -> Result<(), CheckpointError> {
        self.decode_into(sel, out)
    }

    /// [`Checkpoint::decode_f32_into`] or [`Checkpoint::decode_f64_into`], by output type.
    pub(crate) fn decode_into<T: decode::Elem>(
        &self,
        sel: &Selection,
        out: &mut Mat<T>,
    ) -> Result<(), CheckpointError> {
        let c = self.check(sel)?;
        c.file.read_checked(|read| {
            decode::cut_from(
                c.kind,
                &mut |offset, buf| read(c.start + offset as u64, buf),
                c.ncols,
                &sel.rows,
                sel.cols.clone(),
                c.total_rows,
                sel.transpose,
                out,
            )
        })
    }

    /// Checks a selection against its tensor before any decoding.
    fn check(&self, sel: &Selection) -> Result<Checked<'_>, CheckpointError> {
        let t = self
            .tensors
            .get(sel.tensor)
            .ok_or_else(|| CheckpointError::NoSuchTensor {
                path: self.root.clone(),
                index: sel.tensor,
                count: self.tensors.len(),
            })?;
        let path = || self.files.get(t.file).cloned().unwrap_or_default();
        // A stacked tensor ([experts, out, in]) is cut as the matrix [experts·out, in].
        let (nrows, ncols) = match t.shape.as_slice() {
            [lead @ .., ncols] if !lead.is_empty() => (lead.iter().product::<usize>(), *ncols),
            _ => {
                return Err(CheckpointError::NotMatrix {
                    path: path(),
                    tensor: t.name.clone(),
                    shape: t.shape.clone(),
                });
            }
        };
        let kind = t
            .dtype
            .kind()
            .ok_or_else(|| CheckpointError::UnsupportedDtype {
                path: path(),
                tensor: t.name.clone(),
                dtype: t.dtype.name().to_owned(),
            })?;
        let bad = |problem: String| CheckpointError::BadSelection {
            path: path(),
            tensor: t.name.clone(),
            shape: t.shape.clone(),
            problem,
        };
        let within = |r: &Range<usize>, n: usize, what: &str| {
            if r.start > r.end {
                Err(bad(format!("{what} range {r:?} is reversed")))
            } else if r.end > n {
                Err(bad(format!("{what} range {r:?} exceeds {n} {what}s")))
            } else {
                Ok(())
            }
        };
        let mut total_rows = 0usize;
        for r in &sel.rows {
            within(r, nrows, "row")?;
            total_rows = total_rows
                .checked_add(r.len())
                .ok_or_else(|| bad("too many rows selected".into()))?;
        }
        within(&sel.cols, ncols, "column")?;
        let fits = total_rows
            .checked_mul(sel.cols.len())
            .and_then(|n| n.checked_mul(8))
            .is_some_and(|n| n <= isize::MAX as usize);
        if !fits {
            return Err(bad(format!(
                "{total_rows} × {} values do not fit in memory",
                sel.cols.len()
            )));
        }
        let file = self
            .open
            .get(t.file)
            .filter(|f| t.bytes.end as u64 <= f.len())
            .ok_or_else(|| bad("the tensor lies outside its file".into()))?;
        if Some(t.bytes.len()) != kind.row_bytes(ncols).and_then(|row| row.checked_mul(nrows)) {
            return Err(bad("stored bytes do not match the shape".into()));
        }
        Ok(Checked {
            kind,
            file,
            start: t.bytes.start as u64,
            ncols,
            total_rows,
        })
    }
}

struct Checked<'a> {
    kind: Kind,
    file: &'a OpenFile,
    /// Offset of the tensor's first byte in its file.
    start: u64,
    ncols: usize,
    total_rows: usize,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("root", &self.root)
            .field("files", &self.files)
            .field("tensors", &self.tensors.len())
            .field("config", &self.config)
            .finish()
    }
}

/// A config.json and its path, or nothing when there is none.
fn read_config(
    config_path: PathBuf,
) -> Result<(Option<ModelConfig>, Option<PathBuf>), CheckpointError> {
    match std::fs::read(&config_path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| CheckpointError::BadConfig {
                path: config_path.clone(),
                problem: format!("not UTF-8: {e}"),
            })?;
            Ok((Some(config::parse(&config_path, &text)?), Some(config_path)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((None, None)),
        Err(source) => Err(CheckpointError::Io {
            path: config_path,
            action: "read",
            source,
        }),
    }
}

/// True for a `.gguf` file name.
fn is_gguf_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// An open weights file, the tensors its header lists, and a GGUF file's metadata.
type Opened = (OpenFile, Vec<header::Entry>, Option<gguf::Parsed>);

/// Opens one weights file and reads its header: GGUF (by extension or magic) or safetensors.
fn open_file(path: &Path) -> Result<Opened, CheckpointError> {
    let mut file = OpenFile::open(path)?;
    let len = file.len();
    let mut magic = [0u8; 4];
    let gguf = is_gguf_name(path)
        || (len >= 4 && file.read_at(0, &mut magic).is_ok() && gguf::is_gguf(&magic));
    if gguf {
        let (parsed, header_hash) = read_gguf_header(path, &file)?;
        file.set_header_hash(header_hash);
        let entries = parsed.entries.clone();
        return Ok((file, entries, Some(parsed)));
    }
    if len < 8 {
        return Err(CheckpointError::ShortFile {
            path: path.to_path_buf(),
            len,
        });
    }
    let mut len8 = [0u8; 8];
    file.read_at(0, &mut len8)?;
    let header_len = u64::from_le_bytes(len8);
    let mut head = len8.to_vec();
    if header_len > header::MAX_HEADER && header_len <= len - 8 {
        return Err(CheckpointError::HeaderTooLarge {
            path: path.to_path_buf(),
            header_len,
            max: header::MAX_HEADER,
        });
    }
    if header_len <= len - 8 {
        head.resize(8 + header_len as usize, 0);
        file.read_at(8, &mut head[8..])?;
    }
    let entries = header::parse(path, addressable(path, len)?, &head)?;
    file.set_header_hash(xxhash_rust::xxh3::xxh3_64(&head));
    Ok((file, entries, None))
}

/// A file length as `usize`, or an error on a platform that cannot address it.
fn addressable(path: &Path, len: u64) -> Result<usize, CheckpointError> {
    usize::try_from(len).map_err(|_| CheckpointError::Io {
        path: path.to_path_buf(),
        action: "read",
        source: io::Error::other("the file is larger than this platform can address"),
    })
}

/// First read of a GGUF header; real headers (tokenizer vocabularies included) are a few MB.
const GGUF_FIRST_READ: usize = 1 << 20;

/// Reads a GGUF file's header (metadata and tensor infos, never the data) in growing chunks
/// from its start: each chunk is parsed, and when the parser runs past it, a chunk at least
/// twice as long and reaching what the parser needed is read, up to [`gguf::MAX_HEADER`].
/// Reads and parses a GGUF header; also returns a hash of the bytes it read.
fn read_gguf_header(path: &Path, file: &OpenFile) -> Result<(gguf::Parsed, u64), CheckpointError> {
    let len = addressable(path, file.len())?;
    let mut head = vec![0u8; len.min(GGUF_FIRST_READ)];
    file.read_at(0, &mut head)?;
    loop {
        match gguf::parse(path, len, &head)? {
            gguf::Step::Done(parsed) => return Ok((parsed, xxhash_rust::xxh3::xxh3_64(&head))),
            gguf::Step::NeedBytes(need) => {
                if need > gguf::MAX_HEADER {
                    return Err(CheckpointError::BadGguf {
                        path: path.to_path_buf(),
                        problem: format!(
                            "the header (metadata and tensor infos) runs past {} bytes, more \
                             than mpscope reads ({} bytes); the file is corrupt",
                            need,
                            gguf::MAX_HEADER
                        ),
                    });
                }
                let want = need
                    .max(head.len().saturating_mul(2))
                    .min(len)
                    .min(gguf::MAX_HEADER);
                let have = head.len();
                head.resize(want, 0);
                file.read_at(have as u64, &mut head[have..])?;
            }
        }
    }
}

/// Extensions of checkpoint formats other than safetensors, and their names.
fn foreign_format(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "bin" | "pt" | "pth" | "ckpt" => "PyTorch pickle",
        "ggml" | "ggjt" => "legacy GGML",
        "h5" | "hdf5" => "Keras/TensorFlow HDF5",
        "msgpack" => "Flax msgpack",
        "onnx" => "ONNX",
        "npz" | "npy" => "NumPy",
        _ => return None,
    })
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A single file the user named: weights, or a sharded index.
fn file_layout(path: &Path) -> Result<Layout, CheckpointError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    if name.as_deref().is_some_and(|n| n.ends_with(".json")) {
        return index_layout(path.to_path_buf(), path);
    }
    if let Some((prefix, 1, total)) = name.as_deref().and_then(split_part) {
        // Part 1 of a split GGUF names the whole model: open every part.
        let dir = parent_dir(path);
        let mut files = Vec::with_capacity(total);
        for k in 1..=total {
            let part = dir.join(format!("{prefix}-{k:05}-of-{total:05}.gguf"));
            if !part.is_file() {
                return Err(CheckpointError::MissingGgufPart {
                    path: path.to_path_buf(),
                    part,
                });
            }
            files.push(part);
        }
        return Ok(Layout {
            root: path.to_path_buf(),
            files,
            index: None,
            config_dir: dir,
        });
    }
    if let Some(format) = foreign_format(path) {
        return Err(CheckpointError::NotSafetensors {
            path: path.to_path_buf(),
            format,
        });
    }
    Ok(Layout {
        root: path.to_path_buf(),
        files: vec![path.to_path_buf()],
        index: None,
        config_dir: parent_dir(path),
    })
}

/// A model directory: model.safetensors, else an index, else every *.safetensors.
fn dir_layout(dir: &Path) -> Result<Layout, CheckpointError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(Layout {
            root: dir.to_path_buf(),
            files: vec![single],
            index: None,
            config_dir: dir.to_path_buf(),
        });
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return index_layout(dir.to_path_buf(), &index);
    }
    let mut names: Vec<String> = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| CheckpointError::Io {
        path: dir.to_path_buf(),
        action: "list",
        source,
    })?;
    for entry in rd {
        let entry = entry.map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            action: "list",
            source,
        })?;
        if entry.path().is_file()
            && let Some(n) = entry.file_name().to_str()
        {
            names.push(n.to_owned());
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    let indexes: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors.index.json"))
        .collect();
    match indexes.as_slice() {
        [] => {}
        [one] => return index_layout(dir.to_path_buf(), &dir.join(one)),
        many => {
            return Err(CheckpointError::AmbiguousIndex {
                path: dir.to_path_buf(),
                names: many
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let files: Vec<PathBuf> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors"))
        .map(|n| dir.join(n))
        .collect();
    let ggufs: Vec<&String> = names
        .iter()
        .filter(|n| is_gguf_name(Path::new(n.as_str())))
        .collect();
    if files.is_empty() && !ggufs.is_empty() {
        return gguf_dir_layout(dir, &ggufs);
    }
    if files.is_empty() {
        let foreign: Vec<&str> = names
            .iter()
            .filter(|n| foreign_format(Path::new(n.as_str())).is_some())
            .map(|s| s.as_str())
            .take(3)
            .collect();
        let hint = if !foreign.is_empty() {
            format!(
                "; found {}, which mpscope does not read (convert to safetensors first)",
                foreign.join(", ")
            )
        } else if names.is_empty() {
            "; the directory has no files".to_owned()
        } else {
            String::new()
        };
        return Err(CheckpointError::NoWeights {
            path: dir.to_path_buf(),
            hint,
        });
    }
    Ok(Layout {
        root: dir.to_path_buf(),
        files,
        index: None,
        config_dir: dir.to_path_buf(),
    })
}

/// A directory of GGUF files: one file, or the parts `NAME-0000k-of-0000N.gguf` of one split
/// model; anything else is ambiguous.
fn gguf_dir_layout(dir: &Path, names: &[&String]) -> Result<Layout, CheckpointError> {
    let one = |files: Vec<PathBuf>| Layout {
        root: dir.to_path_buf(),
        files,
        index: None,
        config_dir: dir.to_path_buf(),
    };
    if let [only] = names {
        return Ok(one(vec![dir.join(only.as_str())]));
    }
    let parts: Option<Vec<(&str, usize, usize)>> =
        names.iter().map(|n| split_part(n.as_str())).collect();
    if let Some(parts) = parts
        && let Some(&(prefix, _, total)) = parts.first()
        && total == parts.len()
        && parts
            .iter()
            .enumerate()
            .all(|(i, &(p, k, n))| p == prefix && n == total && k == i + 1)
    {
        return Ok(one(names.iter().map(|n| dir.join(n.as_str())).collect()));
    }
    Err(CheckpointError::SeveralGguf {
        path: dir.to_path_buf(),
        names: names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        first: names.first().map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// `(NAME, k, N)` of a split GGUF part `NAME-0000k-of-0000N.gguf` (llama.cpp's gguf-split).
fn split_part(name: &str) -> Option<(&str, usize, usize)> {
    let stem = name.strip_suffix(".gguf")?;
    let (left, total) = stem.rsplit_once("-of-")?;
    let (prefix, k) = left.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(k) || !digits(total) {
        return None;
    }
    Some((prefix, k.parse().ok()?, total.parse().ok()?))
}

/// A sharded index: every shard named in its weight_map, once, in natural order.
fn index_layout(root: PathBuf, index: &Path) -> Result<Layout, CheckpointError> {
    let bad = |problem: String| CheckpointError::BadIndex {
        path: index.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(index).map_err(|source| CheckpointError::Io {
        path: index.to_path_buf(),
        action: "read",
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Some(map) = value.get("weight_map").and_then(|m| m.as_object()) else {
        return Err(bad("no \"weight_map\" object".into()));
    };
    if map.is_empty() {
        return Err(bad("\"weight_map\" is empty".into()));
    }
    let dir = parent_dir(index);
    let mut shards: Vec<&str> = Vec::new();
    let mut entries = Vec::with_capacity(map.len());
    for (tensor, shard) in map {
        let Some(shard) = shard.as_str() else {
            return Err(bad(format!(
                "tensor `{tensor}` maps to {shard}, not a file name"
            )));
        };
        let plain = !shard.is_empty()
            && Path::new(shard)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(bad(format!(
                "shard {shard:?} of tensor `{tensor}` is not a file name beside the index"
            )));
        }
        shards.push(shard);
        entries.push((tensor.clone(), dir.join(shard)));
    }
    shards.sort_by(|a, b| natural_cmp(a, b));
    shards.dedup();
    let mut files = Vec::with_capacity(shards.len());
    for shard in shards {
        let path = dir.join(shard);
        if !path.is_file() {
            return Err(CheckpointError::MissingShard {
                index: index.to_path_buf(),
                shard: path,
            });
        }
        files.push(path);
    }
    Ok(Layout {
        root,
        files,
        index: Some((index.to_path_buf(), entries)),
        config_dir: dir,
    })
}
