//! Helpers shared by the benchmarks.
#![allow(dead_code)] // each bench uses its own subset

use std::path::Path;
use std::process::Command;

/// The `mpscope` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_mpscope");

/// Writes a synthetic checkpoint into `dir` with `mpscope synth` and `args`, unless one is
/// there already (benchmarks reuse it between runs).
pub fn ensure(dir: &Path, args: &[&str]) {
    if dir.join("config.json").is_file() {
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
