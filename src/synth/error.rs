//! Errors of the synthetic generator.

use std::path::PathBuf;

/// Anything that stops a synthetic checkpoint from being specified or written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A command-line spec string (spike, heavy-tail, collapse, family, dtype…) does not parse.
    #[error("cannot parse {what} `{input}`: {reason}")]
    Parse {
        /// What was being parsed, e.g. "spike spec".
        what: &'static str,
        /// The offending input.
        input: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The spec is inconsistent (sizes that do not divide, targets that do not exist, …).
    #[error("invalid synthetic model spec: {0}")]
    Spec(String),
    /// A projection or tensor asked for does not exist in this model.
    #[error("no such matrix in the synthetic model: {0}")]
    NoSuchMatrix(String),
    /// The checkpoint a derived checkpoint starts from cannot be read or changed as asked.
    #[error("base checkpoint: {0}")]
    Base(String),
    /// Creating a directory or writing a JSON file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File or directory being written.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The safetensors writer failed.
    #[error("cannot write safetensors file {path}: {source}")]
    Safetensors {
        /// Shard being written.
        path: PathBuf,
        /// Underlying error.
        source: safetensors::SafeTensorError,
    },
    /// Serialising a JSON file failed.
    #[error("cannot serialise {path}: {source}")]
    Json {
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
}

impl SynthError {
    /// A parse error for `what` on `input`.
    pub(crate) fn parse(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        SynthError::Parse {
            what,
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}
