//! Work beyond one process: a plan split into cost-balanced shards, the identity of model and
//! plan that every shard report carries, the scheduler's environment, merging the parts, and
//! the cost estimate (`--plan`).
//!
//! Shards split the plan, not the model: the job list is deterministic, so shard i of N needs
//! nothing but its index; `merge` checks that the parts cover the plan exactly once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::report::JsonReport;
use crate::scan::{ComputeOptions, Job, ScanOptions};
use crate::spectrum::SigmaMode;

pub mod cost;
mod error;
pub mod estimate;
pub mod merge;

pub use error::ShardError;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

/// What `--shard` says: a fixed `i/N`, or `auto` (from the scheduler's environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// `i/N`.
    Fixed(ShardSpec),
    /// `auto`.
    Auto,
}

impl FromStr for ShardArg {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let bad = |why: &str| ShardError::Spec {
            given: s.to_string(),
            why: why.to_string(),
        };
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected i/N (e.g. 0/4) or auto"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("i is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad("i counts from 0 and must be below N"));
        }
        Ok(Self::Fixed(ShardSpec { index, count }))
    }
}

/// Resolves `--shard` against the environment `var` reads: a Slurm array
/// (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) or a Kubernetes
/// Indexed Job (JOB_COMPLETION_INDEX of `shards`, from `--shards`).
pub fn resolve(
    arg: ShardArg,
    shards: Option<usize>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<ShardSpec, ShardError> {
    let spec = match arg {
        ShardArg::Fixed(spec) => {
            if let Some(n) = shards.filter(|&n| n != spec.count) {
                return Err(ShardError::Spec {
                    given: format!("{}/{}", spec.index, spec.count),
                    why: format!("--shards {n} says otherwise"),
                });
            }
            return Ok(spec);
        }
        ShardArg::Auto => auto(shards, &var)?,
    };
    Ok(spec)
}

fn auto(
    shards: Option<usize>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<ShardSpec, ShardError> {
    let env = |m: String| ShardError::Environment(m);
    let number = |name: &str| -> Result<Option<usize>, ShardError> {
        match var(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| env(format!("{name}={v} is not a non-negative integer"))),
        }
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let min = number("SLURM_ARRAY_TASK_MIN")?.ok_or_else(|| {
            env("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN is not".into())
        })?;
        let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
            env("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into())
        })?;
        let index = id.checked_sub(min).ok_or_else(|| {
            env(format!(
                "SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"
            ))
        })?;
        if count == 0 || index >= count {
            return Err(env(format!(
                "array task {id} is index {index} of an array of {count} tasks starting at \
                 {min}: submit a contiguous array, e.g. --array=0-{}",
                count.max(1) - 1
            )));
        }
        if let Some(n) = shards.filter(|&n| n != count) {
            return Err(env(format!(
                "--shards {n} but the Slurm array has {count} tasks (SLURM_ARRAY_TASK_COUNT)"
            )));
        }
        return Ok(ShardSpec { index, count });
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = shards.ok_or_else(|| {
            env(format!(
                "JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job) needs --shards N, \
                 the Job's completions"
            ))
        })?;
        if count == 0 || index >= count {
            return Err(env(format!(
                "JOB_COMPLETION_INDEX={index} is not below --shards {count}"
            )));
        }
        return Ok(ShardSpec { index, count });
    }
    if var("SLURM_JOB_ID").is_some() {
        return Err(env(
            "a Slurm job but not an array task (no SLURM_ARRAY_TASK_ID): submit with \
             --array=0-(N-1)"
                .into(),
        ));
    }
    Err(env(
        "found neither a Slurm array task (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, \
         SLURM_ARRAY_TASK_COUNT) nor a Kubernetes Indexed Job (JOB_COMPLETION_INDEX); use \
         --shard i/N"
            .into(),
    ))
}

/// The shard of every job: longest job first onto the least-loaded shard (ties: the lower
/// job index, the lower shard), so every process computes the same split from the same costs.
pub fn assign(costs: &[u128], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&j| (Reverse(costs[j]), j));
    let mut loads: BinaryHeap<Reverse<(u128, usize)>> =
        (0..count).map(|s| Reverse((0, s))).collect();
    let mut shard_of = vec![0; costs.len()];
    for j in order {
        if let Some(Reverse((load, s))) = loads.pop() {
            shard_of[j] = s;
            loads.push(Reverse((load + costs[j], s)));
        }
    }
    shard_of
}

/// The total cost of each of `count` shards.
pub fn loads(costs: &[u128], count: usize) -> Vec<u128> {
    let mut loads = vec![0u128; count.max(1)];
    for (j, s) in assign(costs, count).into_iter().enumerate() {
        loads[s] += costs[j];
    }
    loads
}

/// Balance of a split: the largest shard's cost over the mean (1 is perfect).
pub fn balance(costs: &[u128], count: usize) -> f64 {
    let l = loads(costs, count);
    let max = l.iter().copied().max().unwrap_or(0) as f64;
    let mean = l.iter().sum::<u128>() as f64 / l.len() as f64;
    if mean > 0.0 { max / mean } else { 1.0 }
}

/// The jobs of `spec`'s shard, as indices into the plan, ascending.
pub fn share(jobs: &[Job], opts: &ComputeOptions, spec: ShardSpec) -> Vec<usize> {
    let costs: Vec<u128> = jobs.iter().map(|j| cost::flops(j, opts)).collect();
    assign(&costs, spec.count)
        .into_iter()
        .enumerate()
        .filter(|&(_, s)| s == spec.index)
        .map(|(j, _)| j)
        .collect()
}

/// 64-bit FNV-1a, continued from `h`.
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Bytes read from each end of every file for the model identity.
const IDENTITY_SPAN: u64 = 1 << 16;

/// The model's identity, the same on every machine that holds a copy of its files: each file's
/// name and size, its first and last 64 KiB (the header, and the last tensor's bytes), and
/// every tensor's name, dtype and shape. Modification times are left out: copies made on
/// each node differ in them and not in content.
pub fn model_identity(ck: &Checkpoint) -> Result<String, ShardError> {
    let mut h = FNV_START;
    for path in ck.files() {
        let read = |source| ShardError::Read {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(read)?;
        let size = f.metadata().map_err(read)?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        h = fnv(h, name.as_bytes());
        h = fnv(h, &size.to_le_bytes());
        let mut head = Vec::new();
        (&mut f)
            .take(IDENTITY_SPAN)
            .read_to_end(&mut head)
            .map_err(read)?;
        h = fnv(h, &head);
        if size > IDENTITY_SPAN {
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(size - IDENTITY_SPAN))
                .map_err(read)?;
            let mut tail = Vec::new();
            f.take(IDENTITY_SPAN).read_to_end(&mut tail).map_err(read)?;
            h = fnv(h, &tail);
        }
    }
    for t in ck.tensors() {
        h = fnv(
            h,
            format!("{}|{:?}|{:?};", t.name, t.dtype, t.shape).as_bytes(),
        );
    }
    Ok(format!("{h:016x}"))
}

/// Everything besides the job list that changes a report's numbers or rows, in one line
/// (parts must agree on it to merge).
pub fn options_label(
    scan: &ScanOptions,
    compute: &ComputeOptions,
    mode: SigmaMode,
    values: bool,
) -> String {
    let projs: Vec<String> = scan
        .projs
        .0
        .iter()
        .map(|g| format!("{g:?}").to_lowercase())
        .collect();
    let layers = match &scan.layers {
        None => "all".to_string(),
        Some(f) => {
            f.0.iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    format!(
        "sigma={mode} precision={:?} randomize={} values={values} proj={} layers={layers} \
         heads={} vectors={} embeddings={} init_range={}",
        compute.precision,
        compute.randomize,
        projs.join(","),
        scan.heads,
        scan.vectors_whole,
        scan.embeddings,
        compute
            .initializer_range
            .map(|r| r.to_string())
            .unwrap_or_else(|| "none".into()),
    )
    .to_lowercase()
}

/// The plan's identity: a hash of every job (tensor, block, shape, vectors, fan-in), the
/// options and the model.
pub fn plan_identity(model_id: &str, jobs: &[Job], options: &str) -> String {
    let mut h = fnv(FNV_START, model_id.as_bytes());
    h = fnv(h, options.as_bytes());
    for j in jobs {
        let line = format!(
            "{}|{}|{}x{}|{}|{};",
            j.block.tensor, j.block.name, j.block.rows, j.block.cols, j.vectors, j.fan_in
        );
        h = fnv(h, line.as_bytes());
    }
    format!("{h:016x}")
}

/// What a shard report adds to the report: which share of which plan of which model it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// This shard, 0-based.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
    /// The model's identity ([`model_identity`]).
    pub model_id: String,
    /// The plan's identity ([`plan_identity`]).
    pub plan_id: String,
    /// The options ([`options_label`]).
    pub options: String,
    /// Jobs in the whole plan.
    pub plan_jobs: usize,
    /// The plan's indices of this shard's jobs, in the order of `matrices`.
    pub jobs: Vec<usize>,
}

/// A shard report: the report of the shard's jobs followed by its [`ShardRecord`].
#[derive(Debug, Serialize)]
pub struct ShardReport<'a> {
    /// The report of this shard's blocks.
    #[serde(flatten)]
    pub report: &'a JsonReport,
    /// Which share it is.
    pub shard: &'a ShardRecord,
}

impl ShardReport<'_> {
    /// The shard report as pretty JSON ending in a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn shard_arg_parses_and_refuses() {
        assert_eq!(
            "2/4".parse::<ShardArg>().unwrap(),
            ShardArg::Fixed(ShardSpec { index: 2, count: 4 })
        );
        assert_eq!("auto".parse::<ShardArg>().unwrap(), ShardArg::Auto);
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<ShardArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slurm_array_index_counts_from_its_minimum() {
        let vars = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            resolve(ShardArg::Auto, None, &vars).unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        let e = resolve(ShardArg::Auto, Some(8), &vars).unwrap_err();
        assert!(e.to_string().contains("--shards 8"), "{e}");
        // A stepped array (0-6:2) has 4 tasks but ids up to 6.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let e = resolve(ShardArg::Auto, None, &stepped).unwrap_err();
        assert!(e.to_string().contains("contiguous"), "{e}");
        let partial = env(&[("SLURM_ARRAY_TASK_ID", "1")]);
        let e = resolve(ShardArg::Auto, None, &partial).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_MIN"), "{e}");
    }

    #[test]
    fn kubernetes_index_needs_the_shard_count() {
        let vars = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(
            resolve(ShardArg::Auto, Some(8), &vars).unwrap(),
            ShardSpec { index: 3, count: 8 }
        );
        let e = resolve(ShardArg::Auto, None, &vars).unwrap_err();
        assert!(e.to_string().contains("--shards N"), "{e}");
        let e = resolve(ShardArg::Auto, Some(3), &vars).unwrap_err();
        assert!(e.to_string().contains("not below"), "{e}");
    }

    #[test]
    fn no_scheduler_is_named() {
        let e = resolve(ShardArg::Auto, None, env(&[])).unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX"), "{e}");
        let e = resolve(ShardArg::Auto, None, env(&[("SLURM_JOB_ID", "12")])).unwrap_err();
        assert!(e.to_string().contains("--array"), "{e}");
    }

    #[test]
    fn split_covers_every_job_once_and_balances() {
        // Big jobs first onto the least-loaded shard: 10 9 8 | 7 ... splits evenly.
        let costs: Vec<u128> = (1..=40).map(|c| (c * c) as u128).collect();
        let shard_of = assign(&costs, 4);
        assert_eq!(shard_of.len(), costs.len());
        assert!(shard_of.iter().all(|&s| s < 4));
        let l = loads(&costs, 4);
        assert_eq!(l.iter().sum::<u128>(), costs.iter().sum::<u128>());
        assert!(balance(&costs, 4) < 1.01, "{l:?}");
        // Deterministic, and one shard takes everything.
        assert_eq!(assign(&costs, 4), shard_of);
        assert!(assign(&costs, 1).iter().all(|&s| s == 0));
        // More shards than jobs: the extra shards are empty, none doubles up.
        let few = assign(&[5, 3], 4);
        assert_eq!(few, vec![0, 1]);
    }
}
