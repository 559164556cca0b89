//! Why a cache entry is not used, and why a cache operation failed.

use std::path::PathBuf;

/// Why the bytes of an entry are not trusted (the block is then computed and written again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The bytes do not start like an entry.
    #[error("not a cache entry")]
    NotAnEntry,
    /// Written by another layout version.
    #[error("entry layout version {0}, not this build's")]
    Version(u32),
    /// The entry is shorter or longer than it says (an interrupted or damaged write).
    #[error("entry of {found} bytes, expected {expected}")]
    Length {
        /// Length the entry records.
        expected: u64,
        /// Length on disk.
        found: u64,
    },
    /// The checksum does not match the bytes.
    #[error("entry checksum mismatch")]
    Checksum,
    /// The entry is of another key (a hash collision of the file name).
    #[error("entry of another block or engine")]
    OtherKey,
    /// A field runs past the end, or a count contradicts the shape.
    #[error("entry fields inconsistent")]
    Truncated,
}

/// A cache command (`mpscope cache`) could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or removing in the cache directory failed.
    #[error("cache {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// `mpscope cache clear MODEL` named no cached model.
    #[error("no cached model matches '{0}'; `mpscope cache` lists them")]
    NoSuchModel(String),
    /// A size (`--cache-max`, `MPSCOPE_CACHE_MAX`) that does not parse.
    #[error("bad cache size '{0}': expected e.g. 500M, 2G or a number of bytes")]
    BadSize(String),
}
