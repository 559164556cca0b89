//! Shard balance and progress-bar cost: `cargo bench --bench shard`.
//!
//! - Balance: a Llama-3.1-70B-shaped checkpoint written as headers over a hole
//!   (`synth --sparse`, kilobytes on disk) and opened by the real loader; its plan (q, k, v, o,
//!   MLP, heads) split by the cost model into N = 4, 16, 64, 256 shards. Figure: the largest
//!   shard's modelled cost over the mean, against two baselines measured on the same plan:
//!   equal job counts in plan order (contiguous), and round-robin by job index. No spectra
//!   are computed.
//! - Progress: the cost of one progress callback of the hand-written bar and of indicatif's,
//!   100 000 updates each. Run it with stderr on a terminal to count the drawing (both draw at
//!   most 10 times a second); otherwise both only check and return.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::shard::{self, cost};
use mpscope::spectrum::Precision;
use mpscope::synth::{self, SynthFamily, SynthSpec};
use mpscope::worker::Progress;

/// Llama-3.1-70B: 80 layers, hidden 8192, 64 heads / 8 kv (head_dim 128), MLP 28672.
fn llama_70b() -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Llama, 80, 8192, 64);
    s.kv_heads = 8;
    s.intermediate = Some(28_672);
    s.vocab = 128_256;
    s.shards = 30;
    s
}

/// Largest over mean of the per-shard sums when job j goes to `shard_of(j)`.
fn ratio(costs: &[u128], n: usize, shard_of: impl Fn(usize) -> usize) -> f64 {
    let mut loads = vec![0u128; n];
    for (j, c) in costs.iter().enumerate() {
        loads[shard_of(j)] += c;
    }
    let max = *loads.iter().max().unwrap_or(&0) as f64;
    max / (loads.iter().sum::<u128>() as f64 / n as f64)
}

/// No split does better than this (largest over mean): the mean itself, the largest job, and
/// the two smallest of the N + 1 largest jobs, which some shard must hold together.
fn lower_bound(costs: &[u128], n: usize) -> f64 {
    let mut sorted = costs.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mean = costs.iter().sum::<u128>() as f64 / n as f64;
    let largest = sorted.first().copied().unwrap_or(0) as f64;
    let pair = match (sorted.get(n - 1), sorted.get(n)) {
        (Some(a), Some(b)) => (a + b) as f64,
        _ => 0.0,
    };
    largest.max(pair).max(mean) / mean
}

fn balance(label: &str, costs: &[u128]) {
    println!(
        "{label}: {} jobs, {:.0} TFLOP",
        costs.len(),
        costs.iter().sum::<u128>() as f64 / 1e12
    );
    println!("  N     cost model (LPT)  lower bound  contiguous  round-robin  split time");
    for n in [4usize, 16, 64, 256] {
        let t = Instant::now();
        let lpt = shard::balance(costs, n);
        let took = t.elapsed();
        let per = costs.len().div_ceil(n);
        let contiguous = ratio(costs, n, |j| j / per);
        let round_robin = ratio(costs, n, |j| j % n);
        println!(
            "  {n:<4}  {lpt:<16.4}  {:<11.4}  {contiguous:<10.3}  {round_robin:<11.3}  {:.1} ms",
            lower_bound(costs, n),
            took.as_secs_f64() * 1e3
        );
    }
}

fn progress_cost(label: &str, mut f: impl FnMut(&Progress)) {
    let total = 100_000;
    let t = Instant::now();
    for done in 0..=total {
        f(&Progress {
            done,
            failed: 0,
            total,
            elapsed: t.elapsed(),
            eta: Some(Duration::from_secs(10)),
        });
    }
    let per = t.elapsed().as_secs_f64() / (total + 1) as f64;
    println!("  {label:<12} {:.0} ns per update", per * 1e9);
}

fn main() {
    if std::env::args().any(|a| a == "--progress-only") {
        progress();
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    synth::write_sparse(dir.path(), &llama_70b()).expect("sparse 70B");
    let ck = Checkpoint::open(&dir.path().to_string_lossy()).expect("open");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    println!(
        "70B-shaped checkpoint: {} tensors, {:.0} GiB on paper, written and opened in {:.0} ms\n",
        ck.tensors().len(),
        ck.total_bytes() as f64 / (1u64 << 30) as f64,
        t.elapsed().as_secs_f64() * 1e3
    );
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    for (label, scan_opts) in [
        ("all projections, heads", ScanOptions::default()),
        (
            "q,k,v with heads",
            ScanOptions {
                projs: "q,k,v".parse().expect("projections"),
                ..ScanOptions::default()
            },
        ),
        (
            "all projections, whole matrices only",
            ScanOptions {
                heads: false,
                ..ScanOptions::default()
            },
        ),
    ] {
        let jobs = scan::plan(&an, &scan_opts);
        let costs: Vec<u128> = jobs.iter().map(|j| cost::flops(j, &opts)).collect();
        balance(label, &costs);
        println!();
    }
    progress();
}

fn progress() {
    let tty = std::io::stderr().is_terminal();
    println!(
        "progress callbacks (stderr {}a terminal):",
        if tty { "" } else { "not " }
    );
    progress_cost("hand-written", hand_written_bar());
    progress_cost("indicatif", mpscope::progress::stderr_bar());
}

/// A progress line for stderr: "[#####.....] 120/480  12.3s  ETA 30s".
fn progress_line(p: &Progress) -> String {
    let w = 30;
    let filled = (p.done * w).checked_div(p.total).unwrap_or(w);
    let bar: String = (0..w).map(|i| if i < filled { '#' } else { '.' }).collect();
    let eta = p
        .eta
        .map(|e| format!("  ETA {:.0}s", e.as_secs_f64().ceil()))
        .unwrap_or_default();
    format!(
        "[{bar}] {}/{}  {:.1}s{eta}",
        p.done,
        p.total,
        p.elapsed.as_secs_f64()
    )
}

/// The hand-written bar indicatif replaced (the baseline): a progress line on stderr when it
/// is a terminal.
fn hand_written_bar() -> impl FnMut(&Progress) {
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now() - Duration::from_secs(1);
    move |p: &Progress| {
        if !tty {
            return;
        }
        if last.elapsed() < Duration::from_millis(100) && !p.finished() {
            return;
        }
        last = std::time::Instant::now();
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{}\x1b[K", progress_line(p));
        if p.finished() {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = err.flush();
    }
}
