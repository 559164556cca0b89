//! Errors of pairing two sources and of reading a LoRA adapter.

use std::path::PathBuf;

use crate::anatomy::AnatomyError;
use crate::checkpoint::CheckpointError;

/// Anything that stops two sources from being compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// No block of one source pairs with a block of the same shape in the other.
    #[error(
        "nothing to compare: no block of {other} pairs with a block of the same shape in \
         {base}{detail}"
    )]
    NothingPairs {
        /// The base, as named.
        base: String,
        /// The other source, as named.
        other: String,
        /// The first shape mismatches, or why nothing paired by name or by (layer, projection).
        detail: String,
    },
    /// An adapter directory's `adapter_config.json` cannot be read or makes no sense.
    #[error("{path}: {problem}")]
    BadAdapter {
        /// The config or weights file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The adapter names no base, or its base cannot be opened.
    #[error("cannot find the base model of adapter {adapter}: {tried}; pass the base with --base")]
    BaseNotFound {
        /// The adapter directory.
        adapter: PathBuf,
        /// What was tried and why it failed.
        tried: String,
    },
    /// An adapter tensor does not fit the base block it modifies.
    #[error("{tensor}: {problem}")]
    AdapterShape {
        /// The adapter tensor.
        tensor: String,
        /// What does not fit.
        problem: String,
    },
    /// One of the two checkpoints cannot be opened.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// One of the two checkpoints' layouts makes no sense.
    #[error(transparent)]
    Anatomy(#[from] AnatomyError),
}
