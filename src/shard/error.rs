//! Errors of sharding, of the scheduler's environment and of merging parts.

use std::path::PathBuf;

/// Why a shard could not be chosen or parts could not be merged (all are bad input: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is neither `i/N` nor `auto`, or i is not below N.
    #[error("bad --shard '{given}': {why}")]
    Spec {
        /// What the user wrote.
        given: String,
        /// What is wrong with it.
        why: String,
    },
    /// `--shard auto` found no scheduler, or its variables do not fit together.
    #[error("--shard auto: {0}")]
    Environment(String),
    /// A part could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The part.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A part is not an mpscope shard report.
    #[error("{}: not an mpscope shard report: {why}", path.display())]
    NotAPart {
        /// The part.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Two parts disagree on the model, the plan or the options.
    #[error("{} and {} come from different {what}: {first} vs {second}", a.display(), b.display())]
    Mixed {
        /// The first part.
        a: PathBuf,
        /// The part that differs.
        b: PathBuf,
        /// What differs ("models", "plans", "option sets", "shard counts").
        what: &'static str,
        /// The first part's value.
        first: String,
        /// The other part's value.
        second: String,
    },
    /// Two parts claim the same shard, or the same job.
    #[error("{} and {} overlap: {what}", a.display(), b.display())]
    Overlap {
        /// One part.
        a: PathBuf,
        /// The other.
        b: PathBuf,
        /// Where they overlap.
        what: String,
    },
    /// Shards of the plan are missing.
    #[error("missing {}: the parts given cover {covered} of {total} jobs", missing_list(.missing, *.count))]
    Missing {
        /// Indices of the missing shards.
        missing: Vec<usize>,
        /// Shard count.
        count: usize,
        /// Jobs the parts cover.
        covered: usize,
        /// Jobs of the plan.
        total: usize,
    },
    /// The parts hold every shard but still leave jobs out (parts edited by hand).
    #[error("job {job} of the plan is in no part")]
    Gap {
        /// The first job left out.
        job: usize,
    },
    /// A part's run was interrupted before all its jobs were computed.
    #[error(
        "{} is incomplete (its run was interrupted): rerun shard {index}/{count} and merge again",
        path.display()
    )]
    Incomplete {
        /// The part.
        path: PathBuf,
        /// Its shard index.
        index: usize,
        /// The shard count.
        count: usize,
    },
    /// No parts were given.
    #[error("merge needs at least one part")]
    NoParts,
}

fn missing_list(missing: &[usize], count: usize) -> String {
    let names: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
    let s = if missing.len() == 1 { "" } else { "s" };
    format!("shard{s} {}", names.join(", "))
}
