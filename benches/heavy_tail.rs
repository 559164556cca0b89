//! Heavy-tail metrics' cost and a small model's full scan: `cargo bench --bench heavy_tail`.
//!
//! Measures in one run:
//! - the power-law fit (α and the norms) of 2048 values against the spectrum of the 2048²
//!   block they came from;
//! - every layer matrix (q, k, v, o, gate, up, down; no heads, no embeddings) of a
//!   SmolLM2-135M-shaped bf16 model (30 layers, hidden 576, 9 heads / 3 kv heads, MLP 1536),
//!   α included, on every core, and the share of it spent on α;
//! - the baselines on the same matrices and cores, from `tests/data/ww/ww_time.py`:
//!   WeightWatcher 0.7.7's default `analyze()` (when `MPSCOPE_WW_PYTHON` names a Python with
//!   weightwatcher) and numpy's `eigvalsh` of the f64 Gram matrices (`MPSCOPE_PYTHON`, or the
//!   WeightWatcher Python); skipped when absent.

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use faer::{Mat, Par};
use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::Checkpoint;
use mpscope::report;
use mpscope::rng::Rng;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{HeavyTail, Precision, SigmaMode, singular_values};

mod common;
use common::best_of;

const BIN: &str = env!("CARGO_BIN_EXE_mpscope");

fn alpha_cost() {
    let mut rng = Rng::new(1);
    let w = Mat::<f64>::from_fn(2048, 2048, |_, _| rng.normal());
    let (svd, values) = best_of(3, || {
        singular_values(w.as_ref(), Precision::Fast, Par::Seq).expect("values")
    });
    let (fit, tail) = best_of(20, || HeavyTail::new(&values, 2048));
    println!(
        "alpha fit of 2048 values: {:.3} ms (alpha {:.2}); the block's values on one thread: {:.3} s; fit adds {:.2}%",
        fit * 1e3,
        tail.alpha().unwrap_or(f64::NAN),
        svd,
        100.0 * fit / svd
    );
}

fn smol_dir() -> PathBuf {
    let dir = std::env::var_os("MPSCOPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("mpscope-bench-smollm2-135m");
    if !dir.join("config.json").is_file() {
        eprintln!("writing {} ...", dir.display());
        let st = Command::new(BIN)
            .arg("synth")
            .arg(&dir)
            .args([
                "--family",
                "llama",
                "--layers",
                "30",
                "--hidden",
                "576",
                "--heads",
                "9",
                "--kv-heads",
                "3",
                "--head-dim",
                "64",
                "--intermediate",
                "1536",
                "--vocab",
                "49152",
                "--dtype",
                "bf16",
            ])
            .status()
            .expect("run mpscope synth");
        assert!(st.success());
    }
    dir
}

/// Runs `ww_time.py` with `python` on `dir` and returns (WeightWatcher s, numpy s), each the
/// fastest of its runs.
fn baseline(python: &str, dir: &Path, skip_ww: bool) -> (Option<f64>, Option<f64>) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ww");
    let mut cmd = Command::new(python);
    cmd.arg(data.join("ww_time.py"))
        .arg(dir)
        .env("PYTHONPATH", data.join("torch_stub"));
    if skip_ww {
        // numpy alone is quick: best of three, like mpscope's side.
        cmd.args(["--skip-ww", "--repeat", "3"]);
    }
    let Ok(out) = cmd.output() else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // The fastest of the runs printed (one line per repeat).
    let secs = |needle: &str| {
        text.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split(": ").nth(1))
            .filter_map(|s| s.split_whitespace().next())
            .filter_map(|s| s.parse::<f64>().ok())
            .reduce(f64::min)
    };
    (secs("WW analyze()"), secs("numpy eigvalsh"))
}

fn smol_scan() {
    let dir = smol_dir();
    let ck = Arc::new(Checkpoint::open(&dir.to_string_lossy()).expect("open"));
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    let opts = ScanOptions {
        projs: "q,k,v,o,mlp".parse().expect("projections"),
        heads: false,
        ..ScanOptions::default()
    };
    let jobs = scan::plan(&an, &opts);
    let compute = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let (secs, results) = best_of(3, || {
        report::run(
            Arc::clone(&ck),
            jobs.clone(),
            compute.clone(),
            SigmaMode::Entry,
            0,
            |_| {},
        )
        .expect("scan")
    });
    assert_eq!(results.failed(), 0);
    let spectra: Vec<_> = results
        .entries
        .iter()
        .filter_map(|e| e.result.as_ref().ok().map(|a| a.spectrum.clone()))
        .collect();
    let (alpha_secs, _) = best_of(3, || {
        spectra
            .iter()
            .map(|s| HeavyTail::new(&s.values, s.q()).alpha().unwrap_or(0.0))
            .sum::<f64>()
    });
    println!(
        "SmolLM2-135M shape, {} layer matrices, alpha included: {secs:.3} s on every core; alpha itself {:.1} ms ({:.1}% of the scan, one thread)",
        jobs.len(),
        alpha_secs * 1e3,
        100.0 * alpha_secs / secs
    );
    let ww_python = std::env::var("MPSCOPE_WW_PYTHON").ok();
    let np_python = std::env::var("MPSCOPE_PYTHON").ok();
    let (ww, np) = match (&ww_python, &np_python) {
        (Some(py), _) => baseline(py, &dir, false),
        (None, Some(py)) => baseline(py, &dir, true),
        (None, None) => {
            println!("MPSCOPE_WW_PYTHON / MPSCOPE_PYTHON unset: baselines skipped");
            return;
        }
    };
    if let Some(ww) = ww {
        println!(
            "WeightWatcher default analyze(): {ww:.2} s; mpscope / WeightWatcher = {:.3}",
            secs / ww
        );
    }
    if let Some(np) = np {
        println!(
            "numpy eigvalsh of the f64 Gram matrices: {np:.2} s; mpscope / numpy = {:.3}",
            secs / np
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    alpha_cost();
    smol_scan();
}
