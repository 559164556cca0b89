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
