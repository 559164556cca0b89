//! Errors from finding and reading checkpoints.

use std::path::PathBuf;

/// Something wrong with the checkpoint the user named; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The path does not exist.
    #[error(
        "{path}: no such file or directory; expected a .safetensors or .gguf file, a model directory, \
         a model.safetensors.index.json, or a Hugging Face repo id such as org/name"
    )]
    NotFound {
        /// What the user named.
        path: PathBuf,
    },

    /// An operating-system error while reading a file or directory.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done ("open", "read", "list").
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A directory without any safetensors weights.
    #[error(
        "{path}: no weights here; expected model.safetensors, a \
         *.safetensors.index.json index, *.safetensors files, or a .gguf file{hint}"
    )]
    NoWeights {
        /// The directory.
        path: PathBuf,
        /// Extra advice (what was found instead), empty or starting with "; ".
        hint: String,
    },

    /// A GGUF file that cannot be read: bad magic or version, truncated, or inconsistent.
    #[error("{path}: not a readable GGUF file: {problem}")]
    BadGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        problem: String,
    },

    /// An `ollama:NAME[:TAG]` that cannot be found in the local Ollama store.
    #[error("ollama:{model}: {problem}")]
    OllamaModel {
        /// The model as given, without `ollama:`.
        model: String,
        /// What is missing, naming the paths looked at.
        problem: String,
    },

    /// A part of a split GGUF model that is not beside the others.
    #[error(
        "{path}: part {part} of this split GGUF model does not exist; expected every part beside the first"
    )]
    MissingGgufPart {
        /// The first part.
        path: PathBuf,
        /// The missing part.
        part: PathBuf,
    },

    /// A directory with several GGUF files that are not the parts of one split model.
    #[error("{path}: several GGUF files ({names}); name the one to open, e.g. {path}/{first}")]
    SeveralGguf {
        /// The directory.
        path: PathBuf,
        /// The files found, comma separated.
        names: String,
        /// The first of them.
        first: String,
    },

    /// A file in another checkpoint format (PyTorch pickle, GGUF, ...).
    #[error(
        "{path}: this looks like a {format} file, which mpscope does not read; expected \
         safetensors (convert it, e.g. with transformers' save_pretrained(safe_serialization=True))"
    )]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// The format its extension names.
        format: &'static str,
    },

    /// A directory with several index files and no `model.safetensors.index.json`.
    #[error("{path}: several safetensors index files ({names}); name the one to open")]
    AmbiguousIndex {
        /// The directory.
        path: PathBuf,
        /// The index files found, comma separated.
        names: String,
    },

    /// A file shorter than the 8-byte header length.
    #[error(
        "{path}: file is {len} bytes, too short for safetensors; expected an 8-byte header \
         length followed by a JSON header and the tensor data"
    )]
    ShortFile {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },

    /// The header length runs past the end of the file.
    #[error(
        "{path}: header length {header_len} runs past the end of the file ({file_len} bytes); \
         the file is truncated or is not safetensors"
    )]
    HeaderPastEnd {
        /// The file.
        path: PathBuf,
        /// Header length as stored in the first 8 bytes.
        header_len: u64,
        /// File length in bytes.
        file_len: u64,
    },

    /// The header bytes are not UTF-8.
    #[error("{path}: header is not valid UTF-8 ({source}); expected a UTF-8 JSON object")]
    HeaderNotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where decoding failed.
        source: std::str::Utf8Error,
    },

    /// The header is not a JSON object of tensor entries.
    #[error(
        "{path}: header is not valid JSON ({source}); expected an object mapping tensor names \
         to {{\"dtype\", \"shape\", \"data_offsets\"}}"
    )]
    HeaderNotJson {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },

    /// A header entry is malformed (missing field, wrong type, shape overflow, ...).
    #[error(
        "{path}: tensor `{tensor}` has a malformed header entry ({problem}); expected \
         {{\"dtype\": \"F32\", \"shape\": [rows, cols], \"data_offsets\": [begin, end]}}"
    )]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        problem: String,
    },

    /// A dtype string that safetensors itself does not know.
    #[error(
        "{path}: tensor `{tensor}` has unknown dtype `{dtype}`; expected a safetensors dtype \
         such as F32, F16, BF16, F8_E4M3, I8 or BOOL"
    )]
    UnknownDtype {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The dtype string as stored.
        dtype: String,
    },

    /// Data offsets beyond the end of the data section.
    #[error(
        "{path}: tensor `{tensor}` has data offsets [{begin}, {end}] past the end of the data \
         ({data_len} bytes after the header); the file is truncated or its header is wrong"
    )]
    OffsetsPastEnd {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Start offset as stored.
        begin: usize,
        /// End offset as stored.
        end: usize,
        /// Bytes available after the header.
        data_len: usize,
    },

    /// Data offsets with begin after end.
    #[error(
        "{path}: tensor `{tensor}` has reversed data offsets [{begin}, {end}]; expected \
         begin <= end"
    )]
    OffsetsReversed {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Start offset as stored.
        begin: usize,
        /// End offset as stored.
        end: usize,
    },

    /// Two tensors claim overlapping bytes.
    #[error(
        "{path}: tensor `{tensor}` (data offsets [{begin}, {end}]) overlaps tensor `{other}`; \
         expected every tensor in its own byte range"
    )]
    OffsetsOverlap {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Start offset as stored.
        begin: usize,
        /// End offset as stored.
        end: usize,
        /// The tensor it overlaps.
        other: String,
    },

    /// Shape × dtype size differs from the byte length.
    #[error(
        "{path}: tensor `{tensor}` is {dtype} with shape {shape:?}, which needs {expected} \
         bytes, but its data offsets span {actual} bytes"
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The dtype as stored.
        dtype: String,
        /// The shape as stored.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes the offsets span.
        actual: usize,
    },

    /// The same tensor name twice (in one file or across shards).
    #[error(
        "{second}: tensor `{tensor}` is defined again (first in {first}); expected each tensor \
         name once across the checkpoint"
    )]
    DuplicateTensor {
        /// The tensor name.
        tensor: String,
        /// The file holding the first definition.
        first: PathBuf,
        /// The file holding the second definition.
        second: PathBuf,
    },

    /// A sharded index that cannot be used.
    #[error(
        "{path}: not a usable safetensors index ({problem}); expected a JSON object whose \
         \"weight_map\" maps tensor names to shard files beside the index"
    )]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A shard named in the index does not exist.
    #[error(
        "{index}: shard {shard} named in weight_map does not exist; expected every shard in \
         the index's directory"
    )]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The missing shard's path.
        shard: PathBuf,
    },

    /// The index places a tensor in a shard that does not hold it.
    #[error(
        "{index}: weight_map puts tensor `{tensor}` in {shard}, but that file has no such \
         tensor; the index and its shards disagree"
    )]
    ShardLacksTensor {
        /// The index file.
        index: PathBuf,
        /// The shard's path.
        shard: PathBuf,
        /// The tensor name.
        tensor: String,
    },

    /// `config.json` is present but unreadable as a model config.
    #[error(
        "{path}: config.json is malformed ({problem}); expected a JSON object as written by \
         transformers (or remove it and pass --num-heads/--num-kv-heads/--head-dim)"
    )]
    BadConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A repo id that is neither a local path nor in the Hugging Face cache.
    #[error(
        "{repo}: no such file or directory, and not a model in the Hugging Face cache (looked \
         for {looked}); mpscope never downloads: fetch it first (e.g. `hf download {repo}`) \
         or pass a local path"
    )]
    RepoNotCached {
        /// The repo id as given.
        repo: String,
        /// Where it looked.
        looked: String,
    },

    /// A cached repo whose snapshot cannot be chosen or is missing.
    #[error(
        "{path}: {problem}; expected refs/main naming a revision under snapshots/ (re-download \
         the model or pass the snapshot directory)"
    )]
    BadSnapshot {
        /// The cache directory of the repo (or the snapshot).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// The checkpoint holds no tensors at all.
    #[error("{path}: contains no tensors; expected at least one weight matrix")]
    NoTensors {
        /// The root the user named.
        path: PathBuf,
    },

    /// A selection names a tensor index that does not exist.
    #[error("{path}: selection names tensor #{index}, but the checkpoint has {count} tensors")]
    NoSuchTensor {
        /// The checkpoint root.
        path: PathBuf,
        /// The index asked for.
        index: usize,
        /// How many tensors exist.
        count: usize,
    },

    /// A tensor asked to decode as a matrix is not 2-D.
    #[error("{path}: tensor `{tensor}` has shape {shape:?}; expected a 2-D matrix to decode")]
    NotMatrix {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// A tensor whose dtype cannot be decoded.
    #[error(
        "{path}: tensor `{tensor}` has dtype {dtype}, which mpscope does not decode; expected \
         F64, F32, F16, BF16, F8_E4M3 or F8_E5M2"
    )]
    UnsupportedDtype {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The dtype as stored.
        dtype: String,
    },

    /// A selection outside the tensor.
    #[error("{path}: selection of tensor `{tensor}` with shape {shape:?} is invalid: {problem}")]
    BadSelection {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What is wrong.
        problem: String,
    },

    /// A file changed on disk (truncated, rewritten, replaced) after it was opened.
    #[error("{0}")]
    Changed(super::Change),

    /// A header length beyond what any real checkpoint uses.
    #[error(
        "{path}: header length {header_len} is larger than safetensors allows ({max} bytes); \
         the file is not safetensors or its first 8 bytes are damaged"
    )]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// Header length as stored in the first 8 bytes.
        header_len: u64,
        /// The largest header accepted.
        max: u64,
    },
}
