//! Comparison speed and memory: `cargo bench --bench compare`.
//!
//! Writes (once, into `MPSCOPE_BENCH_DIR` or the temp dir) a checkpoint whose attention has the
//! Llama-3.2-1B shape (16 layers, q 2048², k/v 512×2048, 32/8 heads of 64; MLP and vocabulary
//! shrunk, they are not scanned), two fine-tuned copies of it made by `mpscope synth
//! --finetune-of` (six planted low-rank updates; a rank-8 update in every q, k and v) and a
//! rank-16 LoRA adapter on q/k/v/o of all 16 layers. Then, in one run:
//! - one q/k/v scan (whole + heads) of the base, and the compare scans of both copies against
//!   it, each in a child process so that its peak RSS is its own, all without a spectrum
//!   cache (cold); ratios against the scan;
//! - the compare with every q/k/v changed after a scan of the base, as users run it: a scan
//!   child fills a fresh spectrum cache, then a compare child reads the base's spectra from it
//!   (only the compare is timed); its ratio against the cold scan;
//! - every ΔW spectrum of the adapter, heads included, in factored form on one thread.

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::cache::{self, Cache};
use mpscope::checkpoint::Checkpoint;
use mpscope::compare::{Other, OtherBlock, Sources, lora};
use mpscope::compare_report;
use mpscope::report;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};

use common::ensure;

fn options(projs: &str) -> ScanOptions {
    ScanOptions {
        projs: projs.parse().expect("projection list"),
        ..ScanOptions::default()
    }
}

const COMPUTE: ComputeOptions = ComputeOptions {
    precision: Precision::Fast,
    initializer_range: None,
    randomize: false,
    cache: None,
};

/// Peak resident set size of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The options of a child: [`COMPUTE`], through the spectrum cache in `cache` when given.
fn compute(ck: &Checkpoint, cache: Option<&Path>) -> ComputeOptions {
    let cache = cache.map(|dir| {
        Arc::new(Cache::open(
            dir.to_path_buf(),
            cache::engine_version(),
            cache::DEFAULT_CAP,
        ))
        .model(ck.root())
    });
    ComputeOptions { cache, ..COMPUTE }
}

/// The child: one q/k/v scan of `dir`, or the comparison of `other` against it, through the
/// spectrum cache in `cache` when given; prints "seconds<TAB>blocks<TAB>peak MiB<TAB>CPU
/// seconds" (the CPU time of every thread: less sensitive than wall time to a busy machine).
fn child(dir: &Path, other: Option<&Path>, cache: Option<&Path>) {
    let t0: (Instant, cpu_time::ProcessTime);
    let blocks;
    match other {
        None => {
            let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open");
            let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
            let jobs = scan::plan(&an, &options("q,k,v"));
            let opts = compute(&ck, cache);
            t0 = (Instant::now(), cpu_time::ProcessTime::now());
            let r =
                report::run(Arc::new(ck), jobs, opts, SigmaMode::Entry, 0, |_| {}).expect("scan");
            assert_eq!(r.failed(), 0);
            blocks = r.entries.len();
        }
        Some(other) => {
            let s = Sources::open(
                &other.to_string_lossy(),
                Some(&dir.to_string_lossy()),
                &Overrides::default(),
            )
            .expect("open both");
            let pairing = s.pair(&options("q,k,v")).expect("pair");
            let opts = compute(&s.base, cache);
            t0 = (Instant::now(), cpu_time::ProcessTime::now());
            let r = compare_report::run_until(
                Arc::new(s),
                pairing,
                opts,
                SigmaMode::Entry,
                0,
                |_| {},
                &|| false,
            )
            .expect("compare");
            assert_eq!(r.failed(), 0);
            blocks = r.entries.len();
        }
    }
    println!(
        "{:.6}\t{blocks}\t{:.1}\t{:.6}",
        t0.0.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN),
        t0.1.elapsed().as_secs_f64()
    );
}

/// A child's wall seconds, blocks, peak RSS (MiB) and CPU seconds.
fn run_child(dir: &Path, other: Option<&Path>, cache: Option<&Path>) -> (f64, usize, f64, f64) {
    let me = std::env::current_exe().expect("bench binary path");
    let mut cmd = Command::new(me);
    if let Some(c) = cache {
        cmd.arg("--cache").arg(c);
    }
    cmd.arg("--child").arg(dir);
    if let Some(o) = other {
        cmd.arg(o);
    }
    let out = cmd.output().expect("run child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split('\t')
        .collect();
    (
        f[0].parse().unwrap_or(f64::NAN),
        f[1].parse().unwrap_or(0),
        f[2].parse().unwrap_or(f64::NAN),
        f[3].parse().unwrap_or(f64::NAN),
    )
}

/// The 1-minute load average (Linux), as text.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let cache = args
            .iter()
            .position(|a| a == "--cache")
            .map(|c| Path::new(&args[c + 1]));
        child(
            Path::new(&args[i + 1]),
            args.get(i + 2).map(Path::new),
            cache,
        );
        return;
    }
    let root = std::env::var_os("MPSCOPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("mpscope-bench-compare");
    let base = root.join("base");
    let (few, all, adapter) = (
        root.join("ft-few"),
        root.join("ft-all"),
        root.join("lora16"),
    );
    let s = |p: &Path| p.to_string_lossy().into_owned();
    ensure(
        &base,
        &[
            "--preset",
            "llama-3.2-1b",
            "--intermediate",
            "256",
            "--vocab",
            "1024",
        ],
    );
    ensure(
        &few,
        &[
            "--finetune-of",
            &s(&base),
            "--update",
            "L0.q:4@0.3,L3.k:2@0.5,L5.v.h2:1@0.4,L8.q.h7:2@0.5,L12.v:8@0.2,L15.q:1@0.6",
        ],
    );
    let every: Vec<String> = (0..16)
        .flat_map(|l| ["q", "k", "v"].map(|p| format!("L{l}.{p}:8@0.1")))
        .collect();
    ensure(
        &all,
        &["--finetune-of", &s(&base), "--update", &every.join(",")],
    );
    ensure(
        &adapter,
        &[
            "--lora-of",
            &s(&base),
            "--rank",
            "16",
            "--targets",
            "q,k,v,o",
        ],
    );
    // Page cache warm-up.
    let _ = run_child(&base, None, None);

    println!("\nLlama-3.2-1B attention shape, q/k/v whole + every head, bf16, all cores");
    println!(
        "(best of two runs each, scan and compares interleaved: the machine is shared; CPU is \
         the time of all threads, steadier than wall time on a busy machine)"
    );
    println!("(load average at the start: {})", load_average());
    let mut best = [f64::INFINITY; 5];
    let mut best_cpu = [f64::INFINITY; 5];
    let mut info = [(0usize, 0.0f64); 5];
    for _ in 0..2 {
        let fresh = tempfile::tempdir().expect("temp cache dir");
        let cache = Some(fresh.path());
        let runs = [
            (&base, None, None),
            (&base, Some(&few), None),
            (&base, Some(&all), None),
            // The base scanned into a fresh cache, then the compare reading it.
            (&base, None, cache),
            (&base, Some(&all), cache),
        ];
        for (k, (dir, other, cache)) in runs.into_iter().enumerate() {
            let (secs, n, rss, cpu) = run_child(dir, other.map(|p| p.as_path()), cache);
            best_cpu[k] = best_cpu[k].min(cpu);
            if secs < best[k] {
                best[k] = secs;
                info[k] = (n, rss);
            }
        }
    }
    println!("(load average at the end: {})", load_average());
    let row = |k: usize, label: &str, what: &str| {
        println!(
            "  {label} {:6.2} s {:5.2}x the scan   {} {what}  peak RSS {:4.0} MiB   CPU {:6.2} s \
             {:5.2}x",
            best[k],
            best[k] / best[0],
            info[k].0,
            info[k].1,
            best_cpu[k],
            best_cpu[k] / best_cpu[0]
        );
    };
    println!("  no spectrum cache (cold):");
    row(0, "  one scan                   ", "blocks");
    row(1, "  compare, 6 updates         ", "pairs ");
    row(2, "  compare, all changed       ", "pairs ");
    println!("  base scanned before, into a fresh cache dir (warm for the base only):");
    row(3, "  the scan filling the cache ", "blocks");
    row(4, "  compare, all changed       ", "pairs ");
    println!(
        "  (target: compare <= 2.2x one scan; cold, a changed block needs three spectra: base, \
         other and ΔW)"
    );

    println!(
        "\nrank-16 LoRA on q/k/v/o of 16 layers: every ΔW spectrum, heads included, one thread"
    );
    let src = Sources::open(&s(&adapter), None, &Overrides::default()).expect("open adapter");
    let pairing = src.pair(&options("q,k,v,o")).expect("pair");
    let Other::Adapter(a) = &src.other else {
        panic!("an adapter")
    };
    let t0 = Instant::now();
    let mut values = 0;
    for job in &pairing.jobs {
        let OtherBlock::Lora(lb) = &job.other else {
            continue;
        };
        let f = lb.factors(&a.weights).expect("factors");
        values += lora::factored_values(f.x.as_ref(), f.y.as_ref(), lb.module.scale)
            .expect("values")
            .len();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "  {} blocks ({} values) in {secs:.3} s   (target: under 1 s)",
        pairing.jobs.len(),
        values
    );
}
