//! Errors from computing and scoring spectra.

/// Why a block's spectrum could not be computed or scored.
///
/// The spectrum module knows blocks, not tensor names: the caller (worker, report) wraps these
/// with the tensor and head they came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpectrumError {
    /// The block holds NaN or infinite entries.
    #[error(
        "the {rows}×{cols} block has {count} non-finite entries (NaN or ±infinity) out of \
         {total}; its singular values are undefined, so the block was not analysed"
    )]
    NonFinite {
        /// How many entries are NaN or infinite.
        count: usize,
        /// Total number of entries.
        total: usize,
        /// Rows of the block.
        rows: usize,
        /// Columns of the block.
        cols: usize,
    },
    /// The block has no entries at all.
    #[error("the {rows}×{cols} block has no entries, so it has no singular values")]
    NoEntries {
        /// Rows of the block.
        rows: usize,
        /// Columns of the block.
        cols: usize,
    },
    /// The eigenvalue or SVD iteration did not converge.
    #[error(
        "the {method} of the {rows}×{cols} block did not converge (faer reached its iteration \
         limit); the block's values are probably extreme or degenerate"
    )]
    NoConvergence {
        /// Which decomposition failed.
        method: &'static str,
        /// Rows of the block.
        rows: usize,
        /// Columns of the block.
        cols: usize,
    },
    /// A scale σ that is not a positive finite number was given for the MP law.
    #[error(
        "the Marchenko–Pastur scale σ = {sigma} is not a positive finite number, so the \
         {rows}×{cols} block cannot be compared with the law"
    )]
    InvalidSigma {
        /// The σ given.
        sigma: f64,
        /// Rows of the block.
        rows: usize,
        /// Columns of the block.
        cols: usize,
    },
}
