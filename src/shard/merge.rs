//! `mpscope merge`: shard reports checked against each other (one model, one plan, one option
//! set, every shard once, every job once) and joined into the report one run writes.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ShardError, ShardRecord};
use crate::report::{JsonReport, MatrixRecord, ModelRecord};
use crate::spectrum::SigmaMode;

/// A shard report as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// The model, as the shard described it.
    pub model: ModelRecord,
    /// σ mode of the scores.
    pub sigma_mode: SigmaMode,
    /// False when the shard's run was interrupted.
    pub complete: bool,
    /// The shard's blocks, in the order of `shard.jobs`.
    pub matrices: Vec<MatrixRecord>,
    /// Which share of which plan this is (absent in a whole report).
    pub shard: Option<ShardRecord>,
}

/// Reads one shard report, checking that it is one and that it is consistent in itself.
pub fn read_part(path: &Path) -> Result<(Part, ShardRecord), ShardError> {
    let not = |why: String| ShardError::NotAPart {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ShardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut part: Part = serde_json::from_str(&text).map_err(|e| not(e.to_string()))?;
    let shard = part.shard.take().ok_or_else(|| {
        not(
            "it has no `shard` record (a whole report? shards come from `report --shard i/N`)"
                .into(),
        )
    })?;
    if shard.jobs.len() != part.matrices.len() {
        return Err(not(format!(
            "it lists {} jobs but holds {} matrices",
            shard.jobs.len(),
            part.matrices.len()
        )));
    }
    if shard.count == 0 || shard.index >= shard.count {
        return Err(not(format!(
            "shard {}/{} is out of range",
            shard.index, shard.count
        )));
    }
    if let Some(j) = shard.jobs.iter().find(|&&j| j >= shard.plan_jobs) {
        return Err(not(format!(
            "job {j} is beyond the plan's {} jobs",
            shard.plan_jobs
        )));
    }
    Ok((part, shard))
}

/// Merges the shard reports at `paths` into the report a single run of the same plan writes:
/// the same rows in the same order with the same values. The model's `path` is the first
/// part's. A part whose run was interrupted is refused: its missing blocks are a gap.
pub fn merge(paths: &[PathBuf]) -> Result<JsonReport, ShardError> {
    let parts = paths
        .iter()
        .map(|p| read_part(p).map(|(part, shard)| (p.as_path(), part, shard)))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((first_path, first, first_shard)) = parts.first() else {
        return Err(ShardError::NoParts);
    };
    for (path, part, shard) in &parts[1..] {
        let mixed = |what: &'static str, a: String, b: String| ShardError::Mixed {
            a: first_path.to_path_buf(),
            b: path.to_path_buf(),
            what,
            first: a,
            second: b,
        };
        if shard.model_id != first_shard.model_id {
            return Err(mixed(
                "models",
                format!("{} (id {})", first.model.path, first_shard.model_id),
                format!("{} (id {})", part.model.path, shard.model_id),
            ));
        }
        if shard.options != first_shard.options || part.sigma_mode != first.sigma_mode {
            return Err(mixed(
                "option sets",
                first_shard.options.clone(),
                shard.options.clone(),
            ));
        }
        if shard.plan_id != first_shard.plan_id || shard.plan_jobs != first_shard.plan_jobs {
            return Err(mixed(
                "plans",
                format!("{} ({} jobs)", first_shard.plan_id, first_shard.plan_jobs),
                format!("{} ({} jobs)", shard.plan_id, shard.plan_jobs),
            ));
        }
        if shard.count != first_shard.count {
            return Err(mixed(
                "shard counts",
                format!("{}/{}", first_shard.index, first_shard.count),
                format!("{}/{}", shard.index, shard.count),
            ));
        }
    }
    let count = first_shard.count;
    if let Some((path, _, shard)) = parts.iter().find(|(_, p, _)| !p.complete) {
        return Err(ShardError::Incomplete {
            path: path.to_path_buf(),
            index: shard.index,
            count,
        });
    }
    let mut by_index: Vec<Option<&Path>> = vec![None; count];
    for (path, _, shard) in &parts {
        if let Some(other) = by_index[shard.index] {
            return Err(ShardError::Overlap {
                a: other.to_path_buf(),
                b: path.to_path_buf(),
                what: format!("both are shard {}/{count}", shard.index),
            });
        }
        by_index[shard.index] = Some(path);
    }
    let total = first_shard.plan_jobs;
    let mut slots: Vec<Option<(&Path, &MatrixRecord)>> = vec![None; total];
    for (path, part, shard) in &parts {
        for (&j, m) in shard.jobs.iter().zip(&part.matrices) {
            if let Some((other, _)) = slots[j] {
                return Err(ShardError::Overlap {
                    a: other.to_path_buf(),
                    b: path.to_path_buf(),
                    what: format!("both hold job {j} ({} {:?})", m.tensor, m.head),
                });
            }
            slots[j] = Some((path, m));
        }
    }
    let missing: Vec<usize> = (0..count).filter(|&i| by_index[i].is_none()).collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing {
            missing,
            count,
            covered: slots.iter().filter(|s| s.is_some()).count(),
            total,
        });
    }
    let matrices = slots
        .into_iter()
        .enumerate()
        .map(|(job, s)| s.map(|(_, m)| m.clone()).ok_or(ShardError::Gap { job }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JsonReport {
        model: first.model.clone(),
        sigma_mode: first.sigma_mode,
        complete: true,
        ranked_by: None,
        matrices,
    })
}
