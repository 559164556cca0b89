//! Helpers shared by the tests that run the real `mpscope` binary.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` (HF cache pinned to a path that does not exist).
pub fn mpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args(args)
        .env("HF_HUB_CACHE", "/nonexistent-mpscope-cache")
        .output()
        .expect("run mpscope")
}

/// Writes a small Llama into `dir` with `mpscope synth`: 3 layers, hidden 128, 4 heads /
/// 2 kv heads (head_dim 32), MLP 384, with `spikes` planted.
pub fn synth_llama(dir: &Path, spikes: &str) {
    let out = mpscope(&[
        "synth",
        dir.to_str().unwrap(),
        "--layers",
        "3",
        "--hidden",
        "128",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--spikes",
        spikes,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
