//! Errors from finding and reading checkpoints.

/// Something wrong with the checkpoint the user named; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// What the user named.
        path: std::path::PathBuf,
    },
}
