//! Full-model scan speed and memory: `cargo bench --bench scan`.
//!
//! Writes a Llama-3.2-1B-shaped bf16 checkpoint with `mpscope synth` into a temp dir (once;
//! `MPSCOPE_BENCH_DIR` overrides where), then measures in one run:
//! - the q/k/v scan (whole matrices and every head, head `vector_p` included) on every core,
//!   in a child process so its peak RSS is its own;
//! - numpy's fastest values-only method on the same blocks (`benches/numpy_scan.py`, skipped
//!   when numpy is absent; `MPSCOPE_PYTHON` picks the interpreter) and the ratio;
//! - how soon the focused block's spectrum arrives after the worker starts;
//! - one Llama-3.1-8B-shaped layer, to show how cost grows with size.

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::report;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::worker::Worker;

mod common;
use common::ensure;

fn qkv_options() -> ScanOptions {
    ScanOptions {
        projs: "q,k,v".parse().expect("projection list"),
        ..ScanOptions::default()
    }
}

fn open(dir: &Path) -> (Arc<Checkpoint>, Anatomy) {
    let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open checkpoint");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    (Arc::new(ck), an)
}

/// Peak resident set size of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The child: scan `projs` (whole matrices and heads) and print
/// "seconds<TAB>blocks<TAB>peak MiB".
fn child_scan(dir: &Path, projs: &str) {
    let (ck, an) = open(dir);
    let jobs = scan::plan(
        &an,
        &ScanOptions {
            projs: projs.parse().expect("projection list"),
            ..ScanOptions::default()
        },
    );
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let t0 = Instant::now();
    let r = report::run(ck, jobs, opts, SigmaMode::Entry, 0, |_| {}).expect("scan");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r.failed(), 0, "no block may fail");
    println!(
        "{secs:.6}\t{}\t{:.1}",
        r.entries.len(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

fn run_child(dir: &Path) -> (f64, usize, f64) {
    run_child_on(dir, "q,k,v")
}

fn run_child_on(dir: &Path, projs: &str) -> (f64, usize, f64) {
    let me = std::env::current_exe().expect("bench binary path");
    let out = Command::new(me)
        .arg("--child-scan")
        .arg(dir)
        .arg(projs)
        .output()
        .expect("run child scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = line.split('\t').collect();
    (
        f[0].parse().unwrap_or(f64::NAN),
        f[1].parse().unwrap_or(0),
        f[2].parse().unwrap_or(f64::NAN),
    )
}

fn numpy(dir: &Path, head_dim: usize) -> Option<(f64, usize)> {
    let python = std::env::var("MPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("numpy absent ({python}): baseline skipped");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/numpy_scan.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(dir)
        .arg(head_dim.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.trim().split('\t');
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Time from starting a worker until the focused block's result arrives.
fn first_spectrum(ck: &Arc<Checkpoint>, an: &Anatomy, focus: MatrixId) -> Duration {
    let jobs = scan::plan(an, &qkv_options());
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let (tx, rx) = mpsc::channel();

    let ck2 = Arc::clone(ck);
    let t0 = Instant::now();
    let w = Worker::start(
        jobs,
        |j: &scan::Job| j.block.id,
        Some(focus),
        0,
        move |j: &scan::Job| scan::compute(&ck2, j, &opts),
        move |o| {
            let _ = tx.send((o.id, Instant::now()));
        },
    )
    .expect("worker");
    let arrived = loop {
        let (id, at) = rx.recv().expect("outcome");
        if id == focus {
            break at - t0;
        }
    };
    w.cancel_all();
    arrived
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-scan") {
        let projs = args.get(i + 2).map_or("q,k,v", String::as_str);
        child_scan(Path::new(&args[i + 1]), projs);
        return;
    }
    let base = common::bench_dir();
    let l1b = common::llama_1b();
    // Page cache warm-up, so neither side pays the first read.
    let _ = run_child(&l1b);

    println!("\nLlama-3.2-1B shape, q/k/v whole + every head (head vector_p included), bf16");
    let (secs, blocks, rss) = run_child(&l1b);
    println!("  mpscope   {secs:8.2} s   {blocks} blocks   peak RSS {rss:.0} MiB");
    if let Some((np, np_blocks)) = numpy(&l1b, 64) {
        println!(
            "  numpy     {np:8.2} s   {np_blocks} blocks   (eigvalsh of the f64 Gram, values only)"
        );
        println!(
            "  ratio     {:8.2}   (mpscope / numpy; target <= 0.70)",
            secs / np
        );
    }

    let (ck, an) = open(&l1b);
    let head = MatrixId::whole(Some(8), Proj::Q).with_head(3);
    let whole = MatrixId { head: None, ..head };
    println!("\nfirst spectrum after the worker starts");
    for (label, id) in [
        ("L8 q h3 (64x2048)", head),
        ("L8 q whole (2048x2048)", whole),
    ] {
        let best = (0..3)
            .map(|_| first_spectrum(&ck, &an, id))
            .min()
            .unwrap_or_default();
        println!("  {label:<24} {:8.1} ms", best.as_secs_f64() * 1e3);
    }

    // Reading and decoding alone: the positioned reads' copy through a 1 MiB buffer, then
    // bf16 to f64. q/k/v heads are row slices (one read per 64 rows); o heads are column
    // slices (a read per 64 rows of 2048, or per row past a 4 KiB gap).
    println!("\nread + decode to f64 alone, one thread, whole matrices + every head");
    for projs in ["q,k,v", "o"] {
        let jobs = scan::plan(
            &an,
            &ScanOptions {
                projs: projs.parse().expect("projection list"),
                ..ScanOptions::default()
            },
        );
        let bytes: usize = jobs.iter().map(|j| j.block.rows * j.block.cols * 2).sum();
        let best = (0..3)
            .map(|_| {
                let t0 = Instant::now();
                let mut m = faer::Mat::<f64>::new();
                for j in &jobs {
                    ck.decode_f64_into(&j.block.selection, &mut m)
                        .expect("decode");
                }
                t0.elapsed()
            })
            .min()
            .unwrap_or_default();
        println!(
            "  {projs:<6} {:4} blocks, {:.2} GB of bf16: {:6.0} ms ({:.1} GB/s)",
            jobs.len(),
            bytes as f64 / 1e9,
            best.as_secs_f64() * 1e3,
            bytes as f64 / 1e9 / best.as_secs_f64(),
        );
    }

    let l8b = common::llama_8b_layer();
    let _ = run_child(&l8b);
    let (secs8, blocks8, rss8) = run_child(&l8b);
    println!("\nLlama-3.1-8B shape, one layer (q 4096x4096, k/v 1024x4096, heads of 128)");
    println!("  mpscope   {secs8:8.2} s   {blocks8} blocks   peak RSS {rss8:.0} MiB");
    println!("  32 layers ~ {:.0} s on this machine", secs8 * 32.0);
    if let Some((np8, _)) = numpy(&l8b, 128) {
        println!("  numpy     {np8:8.2} s   ratio {:.2}", secs8 / np8);
    }

    // The whole 8B attention, on request: it writes 2.6 GB and takes minutes.
    if std::env::var_os("MPSCOPE_BENCH_8B").is_none() {
        println!(
            "\n(MPSCOPE_BENCH_8B=1 adds the full Llama-3.1-8B q/k/v/o + heads scan: writes 2.6 GB)"
        );
        return;
    }
    let full = base.join("mpscope-bench-llama-3.1-8b-attention");
    ensure(
        &full,
        &[
            "--preset",
            "llama-3.1-8b",
            "--intermediate",
            "256",
            "--vocab",
            "1024",
            "--shards",
            "2",
        ],
    );
    let (secs, blocks, rss) = run_child_on(&full, "q,k,v,o");
    println!("\nLlama-3.1-8B shape, all 32 layers, q/k/v/o whole + every head (no cache)");
    println!(
        "  mpscope   {secs:8.1} s   {blocks} blocks   peak RSS {rss:.0} MiB   ({:.1} blocks/s)",
        blocks as f64 / secs
    );
}
