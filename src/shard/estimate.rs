//! `report --plan`: jobs, FLOPs and estimated time per projection group, without computing.
//!
//! The cost model ([`super::cost`]) gives each job's FLOPs; a micro-benchmark of the real
//! kernels on random blocks turns FLOPs into seconds on this machine. The rate grows with the
//! block (a 1024² block runs several times more FLOP/s than a 128 × 512 one: gemm-shaped work
//! and the two-stage reduction from p = 512 on), so it is measured at several short sides p —
//! values at p = 128, 512 and 1024, values plus vectors at p = 64 and 128 — and interpolated in
//! log p (the largest measured rate beyond), timed by the thread's CPU clock so that other
//! processes on a busy machine do not slow the estimate. The whole measurement takes a few
//! tenths of a second of CPU. Jobs run one per thread, so a process's wall time is about max(Σ t / threads,
//! longest t); with N shards, the slowest shard's.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use faer::{Mat, Par};

use super::cost;
use crate::rng::Rng;
use crate::scan::{ComputeOptions, Job, ProjGroup};
use crate::spectrum::{AnalyzeOptions, SigmaMode, Spectrum};

/// Measured floating-point rates of one thread on this machine, by the block's short side.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// (p, FLOP/s) of values-only jobs (whole matrices), p ascending.
    pub values: Vec<(usize, f64)>,
    /// (p, FLOP/s) of jobs with the singular-vector test (head blocks), p ascending.
    pub vectors: Vec<(usize, f64)>,
    /// How long the measurement took.
    pub took: Duration,
}

impl Rates {
    /// The rate of a job with short side `p`: interpolated in log p between the measured
    /// points, the nearest measured one outside them.
    pub fn at(points: &[(usize, f64)], p: usize) -> f64 {
        let Some(&(p0, r0)) = points.first() else {
            return 1e9;
        };
        if p <= p0 {
            return r0;
        }
        for w in points.windows(2) {
            let ((a, ra), (b, rb)) = (w[0], w[1]);
            if p <= b {
                let t = ((p as f64).ln() - (a as f64).ln()) / ((b as f64).ln() - (a as f64).ln());
                return ra + t * (rb - ra);
            }
        }
        points.last().map_or(r0, |&(_, r)| r)
    }
}

/// Shapes of the calibration blocks: (rows, cols, vectors), short side ascending per kind.
const CALIBRATION: [(usize, usize, bool); 5] = [
    (128, 512, false),
    (512, 1024, false),
    (1024, 1024, false),
    (64, 1024, true),
    (128, 2048, true),
];

/// Measures [`Rates`] by computing random blocks with the real kernels (best of three, of two
/// for the largest).
pub fn calibrate(opts: &ComputeOptions) -> Result<Rates, String> {
    let start = Instant::now();
    let mut rates = Rates {
        values: Vec::new(),
        vectors: Vec::new(),
        took: Duration::ZERO,
    };
    for (k, &(rows, cols, vectors)) in CALIBRATION.iter().enumerate() {
        let mut rng = Rng::new(0x5eed + k as u64);
        let m = Mat::<f64>::from_fn(rows, cols, |_, _| rng.uniform_sym(1.0));
        let analyze = AnalyzeOptions {
            precision: opts.precision,
            par: Par::Seq,
            vector_p: vectors,
            sigma_mode: SigmaMode::Entry,
            initializer_range: None,
            fan_in: Some(cols),
            shuffle_seed: opts.randomize.then_some(1),
        };
        let mut best = f64::INFINITY;
        for _ in 0..if rows * cols > 1 << 19 { 2 } else { 3 } {
            // The thread's CPU time, not the wall clock: on a shared machine the wall clock
            // measures the neighbours' load, which a cluster node does not share.
            let t = cpu_time::ThreadTime::now();
            Spectrum::compute(m.as_ref(), &analyze).map_err(|e| e.to_string())?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let rate = cost::shape_flops(rows, cols, vectors, opts) as f64 / best.max(1e-9);
        let kind = if vectors {
            &mut rates.vectors
        } else {
            &mut rates.values
        };
        kind.push((rows.min(cols), rate));
    }
    rates.took = start.elapsed();
    Ok(rates)
}

/// Estimated seconds of one job on one thread.
pub fn job_seconds(job: &Job, opts: &ComputeOptions, rates: &Rates) -> f64 {
    let points = if job.vectors {
        &rates.vectors
    } else {
        &rates.values
    };
    let p = job.block.rows.min(job.block.cols);
    cost::flops(job, opts) as f64 / Rates::at(points, p)
}

/// Wall time of jobs taking `secs` each on `threads` threads: the work spread evenly, but
/// never less than the longest job.
pub fn wall(secs: &[f64], threads: usize) -> f64 {
    let sum: f64 = secs.iter().sum();
    let longest = secs.iter().copied().fold(0.0, f64::max);
    (sum / threads.max(1) as f64).max(longest)
}

/// The wall time of the slowest of `count` shards and the balance of the split (largest
/// shard's FLOPs over the mean), each shard on `threads` threads.
pub fn shard_wall(
    jobs: &[Job],
    opts: &ComputeOptions,
    rates: &Rates,
    count: usize,
    threads: usize,
) -> (f64, f64) {
    let costs: Vec<u128> = jobs.iter().map(|j| cost::flops(j, opts)).collect();
    let shard_of = super::assign(&costs, count);
    let mut per_shard: Vec<Vec<f64>> = vec![Vec::new(); count.max(1)];
    for (j, s) in shard_of.into_iter().enumerate() {
        per_shard[s].push(job_seconds(&jobs[j], opts, rates));
    }
    let slowest = per_shard
        .iter()
        .map(|s| wall(s, threads))
        .fold(0.0, f64::max);
    (slowest, super::balance(&costs, count))
}

/// A duration for people: "850 ms", "42 s", "12 min 5 s", "3 h 20 min", "2 d 4 h".
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else if s < 86400.0 {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else {
        format!(
            "{} d {} h",
            (s / 86400.0) as u64,
            ((s % 86400.0) / 3600.0) as u64
        )
    }
}

/// Shard counts the plan shows when `--shards` names none.
pub const SHARD_LADDER: [usize; 5] = [1, 4, 16, 64, 256];

/// The plan as text: per projection group the jobs, GFLOPs and time on one thread; the wall
/// time on `threads` threads; and for each of `shards` the slowest shard's wall time.
pub fn render(
    title: &str,
    jobs: &[Job],
    opts: &ComputeOptions,
    rates: &Rates,
    threads: usize,
    shards: &[usize],
) -> String {
    let mut groups: Vec<(ProjGroup, usize, u128, f64)> = Vec::new();
    let mut secs = Vec::with_capacity(jobs.len());
    for j in jobs {
        let g = ProjGroup::of(j.block.id.proj);
        let t = job_seconds(j, opts, rates);
        secs.push(t);
        let f = cost::flops(j, opts);
        match groups.iter_mut().find(|r| r.0 == g) {
            Some(r) => {
                r.1 += 1;
                r.2 += f;
                r.3 += t;
            }
            None => groups.push((g, 1, f, t)),
        }
    }
    groups.sort_by_key(|r| r.0);
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let list = |points: &[(usize, f64)]| -> String {
        let cells: Vec<String> = points
            .iter()
            .map(|(p, r)| format!("{:.1} at p={p}", r / 1e9))
            .collect();
        cells.join(", ")
    };
    let _ = writeln!(
        out,
        "calibrated in {:.2} s, GFLOP/s per thread: values {}; values and vectors {}\n",
        rates.took.as_secs_f64(),
        list(&rates.values),
        list(&rates.vectors)
    );
    let mut rows = vec![vec![
        "group".to_string(),
        "jobs".into(),
        "GFLOP".into(),
        "1 thread".into(),
        format!("{threads} threads"),
    ]];
    let label = |g: ProjGroup| format!("{g:?}").to_lowercase();
    for (g, n, f, t) in &groups {
        rows.push(vec![
            label(*g),
            n.to_string(),
            format!("{:.1}", *f as f64 / 1e9),
            human(*t),
            human(t / threads.max(1) as f64),
        ]);
    }
    let total_flops: u128 = groups.iter().map(|r| r.2).sum();
    rows.push(vec![
        "all".into(),
        jobs.len().to_string(),
        format!("{:.1}", total_flops as f64 / 1e9),
        human(secs.iter().sum()),
        human(wall(&secs, threads)),
    ]);
    out.push_str(&columns(&rows));
    let _ = writeln!(
        out,
        "\nshards, each on a machine like this one ({threads} threads):\n"
    );
    let mut rows = vec![vec![
        "shards".to_string(),
        "wall time".into(),
        "largest/mean".into(),
    ]];
    for &n in shards {
        let (t, b) = shard_wall(jobs, opts, rates, n, threads);
        rows.push(vec![n.to_string(), human(t), format!("{b:.3}")]);
    }
    out.push_str(&columns(&rows));
    out
}

/// Rows as left-aligned columns, two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_is_never_below_the_longest_job() {
        assert_eq!(wall(&[1.0, 1.0, 1.0, 1.0], 2), 2.0);
        assert_eq!(wall(&[10.0, 1.0], 4), 10.0);
        assert_eq!(wall(&[], 2), 0.0);
    }

    #[test]
    fn rates_interpolate_in_log_p_and_hold_outside() {
        let points = [(128, 4.0), (512, 8.0), (1024, 16.0)];
        assert_eq!(Rates::at(&points, 64), 4.0);
        assert_eq!(Rates::at(&points, 256), 6.0);
        assert_eq!(Rates::at(&points, 512), 8.0);
        assert_eq!(Rates::at(&points, 8192), 16.0);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(0.25), "250 ms");
        assert_eq!(human(42.0), "42.0 s");
        assert_eq!(human(725.0), "12 min 5 s");
        assert_eq!(human(12_000.0), "3 h 20 min");
        assert_eq!(human(187_200.0), "2 d 4 h");
    }
}
