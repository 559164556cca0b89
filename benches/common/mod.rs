//! Helpers shared by the benchmarks.
#![allow(dead_code)] // each bench uses its own subset

use std::path::Path;
use std::process::Command;

/// The `mpscope` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_mpscope");

/// Writes a synthetic checkpoint (or a derived one: `--finetune-of`, `--lora-of`) into `dir`
/// with `mpscope synth` and `args`, unless one is there already (benchmarks reuse it between
/// runs; `truth.json` is written last, so a complete one has it).
pub fn ensure(dir: &Path, args: &[&str]) {
    if dir.join("truth.json").is_file() {
        return;
    }
    eprintln!("writing {} ...", dir.display());
    let st = Command::new(BIN)
        .arg("synth")
        .arg(dir)
        .args(args)
        .status()
        .expect("run mpscope synth");
    assert!(st.success());
}

/// Where benchmarks keep the checkpoints they write: `MPSCOPE_BENCH_DIR`, else the temp dir.
pub fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("MPSCOPE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The Llama-3.2-1B-shaped bf16 checkpoint (2.8 GB), written once.
pub fn llama_1b() -> std::path::PathBuf {
    let dir = bench_dir().join("mpscope-bench-llama-3.2-1b");
    ensure(&dir, &["--preset", "llama-3.2-1b"]);
    dir
}

/// One layer of the Llama-3.1-8B shape (q 4096², k/v 1024×4096), written once.
pub fn llama_8b_layer() -> std::path::PathBuf {
    let dir = bench_dir().join("mpscope-bench-llama-3.1-8b-1layer");
    ensure(
        &dir,
        &[
            "--preset",
            "llama-3.1-8b",
            "--layers",
            "1",
            "--vocab",
            "1024",
            "--shards",
            "1",
        ],
    );
    dir
}

/// Runs `f` `n` times (at least once); the best wall time in seconds and the last result.
pub fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n.max(1) {
        let t0 = std::time::Instant::now();
        let r = f();
        best = best.min(t0.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}
