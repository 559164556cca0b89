//! Comparison speed and memory: `cargo bench --bench compare`.
//!
//! Writes (once, into `MPSCOPE_BENCH_DIR` or the temp dir) a checkpoint whose attention has the
//! Llama-3.2-1B shape (16 layers, q 2048², k/v 512×2048, 32/8 heads of 64; MLP and vocabulary
//! shrunk, they are not scanned), two fine-tuned copies of it made by `mpscope synth
//! --finetune-of` (six planted low-rank updates; a rank-8 update in every q, k and v) and a
//! rank-16 LoRA adapter on q/k/v/o of all 16 layers. Then, in one run:
//! - one q/k/v scan (whole + heads) of the base, and the compare scans of both copies against
//!   it, each in a child process so that its peak RSS is its own; ratios against the scan;
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

/// The child: one q/k/v scan of `dir`, or the comparison of `other` against it; prints
/// "seconds<TAB>blocks<TAB>peak MiB".
fn child(dir: &Path, other: Option<&Path>) {
    let t0;
    let blocks;
    match other {
        None => {
            let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open");
            let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
            let jobs = scan::plan(&an, &options("q,k,v"));
            t0 = Instant::now();
            let r = report::run(Arc::new(ck), jobs, COMPUTE, SigmaMode::Entry, 0, |_| {})
                .expect("scan");
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
            t0 = Instant::now();
            let r = compare_report::run_until(
                Arc::new(s),
                pairing,
                COMPUTE,
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
        "{:.6}\t{blocks}\t{:.1}",
        t0.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

fn run_child(dir: &Path, other: Option<&Path>) -> (f64, usize, f64) {
    let me = std::env::current_exe().expect("bench binary path");
    let mut cmd = Command::new(me);
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
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]), args.get(i + 2).map(Path::new));
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
    let _ = run_child(&base, None);

    println!("\nLlama-3.2-1B attention shape, q/k/v whole + every head, bf16, all cores");
    println!("(best of two runs each, scan and compares interleaved: the machine is shared)");
    let mut best = [f64::INFINITY; 3];
    let mut info = [(0usize, 0.0f64); 3];
    for _ in 0..2 {
        for (k, other) in [None, Some(&few), Some(&all)].into_iter().enumerate() {
            let (secs, n, rss) = run_child(&base, other.map(|p| p.as_path()));
            if secs < best[k] {
                best[k] = secs;
                info[k] = (n, rss);
            }
        }
    }
    println!(
        "  one scan                 {:7.2} s   {} blocks  peak RSS {:.0} MiB",
        best[0], info[0].0, info[0].1
    );
    for (k, label) in [(1, "compare, 6 updates  "), (2, "compare, all changed")] {
        println!(
            "  {label}     {:7.2} s   {} pairs   peak RSS {:.0} MiB   {:.2}x the scan",
            best[k],
            info[k].0,
            info[k].1,
            best[k] / best[0]
        );
    }
    println!("  (target: compare <= 2.2x one scan)");

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
