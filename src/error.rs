//! The library's top-level error: one enum over every room's errors, with an exit status.

use crate::anatomy::AnatomyError;
use crate::checkpoint::CheckpointError;
use crate::compare::CompareError;
use crate::synth::SynthError;

/// Any error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checkpoint could not be found or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Tensor names, shapes and head counts do not fit together.
    #[error(transparent)]
    Anatomy(#[from] AnatomyError),
    /// Two sources could not be paired (or an adapter or its base could not be read).
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// A synthetic checkpoint could not be specified or written.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// Writing output failed.
    #[error("{path}: {source}")]
    Io {
        /// File being written or read.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The background worker could not run (e.g. its threads could not start).
    #[error(transparent)]
    Worker(#[from] crate::worker::StartError),
    /// A shard could not be chosen, or shard reports could not be merged.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// The spectrum cache could not be listed or cleared.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A JSON file given to the explorer is not a report it can open.
    #[error(transparent)]
    SavedReport(#[from] crate::saved_report::SavedReportError),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Process exit status for this error: 2 for bad input, 1 for failures while running.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { .. } | Error::Worker(_) => 1,
            Error::Cache(crate::cache::CacheError::Io { .. }) => 1,
            Error::Synth(SynthError::Io { .. } | SynthError::Safetensors { .. }) => 1,
            _ => 2,
        }
    }
}
