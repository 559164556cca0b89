//! Helpers shared by the tests that run the real `mpscope` binary.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` (HF cache pinned to a path that does not exist; a spectrum
/// cache of its own, removed afterwards, so no test reads or fills the user's).
pub fn mpscope(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().expect("temp cache dir");
    Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args(args)
        .env("HF_HUB_CACHE", "/nonexistent-mpscope-cache")
        .env("MPSCOPE_CACHE_DIR", cache.path())
        .output()
        .expect("run mpscope")
}

/// Runs the binary with `args` and spectrum cache `cache` (kept between runs).
pub fn mpscope_cached(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args(args)
        .env("HF_HUB_CACHE", "/nonexistent-mpscope-cache")
        .env("MPSCOPE_CACHE_DIR", cache)
        .output()
        .expect("run mpscope")
}

/// Writes a synthetic checkpoint into `dir` with `mpscope synth` and `args`.
pub fn synth(dir: &Path, args: &[&str]) {
    let out = mpscope(&[&["synth", dir.to_str().unwrap()], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a small Llama into `dir` with `mpscope synth`: 3 layers, hidden 128, 4 heads /
/// 2 kv heads (head_dim 32), MLP 384, with `spikes` planted.
pub fn synth_llama(dir: &Path, spikes: &str) {
    synth_llama_with(dir, &["--spikes", spikes]);
}

/// [`synth_llama`]'s shape with other `synth` flags (e.g. `--seed`).
pub fn synth_llama_with(dir: &Path, args: &[&str]) {
    let shape = [
        "--layers",
        "3",
        "--hidden",
        "128",
        "--heads",
        "4",
        "--kv-heads",
        "2",
    ];
    synth(dir, &[&shape[..], args].concat());
}

/// Writes a small Mixtral into `dir` with `mpscope synth`: 2 layers, hidden 64, 4 heads / 2 kv
/// heads, 3 routed experts with MLP 96, vocab 64, plus `args` (e.g. `--format gguf`).
pub fn synth_mixtral(dir: &Path, args: &[&str]) {
    let shape = [
        "--family",
        "mixtral",
        "--experts",
        "3",
        "--layers",
        "2",
        "--hidden",
        "64",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--intermediate",
        "96",
        "--vocab",
        "64",
    ];
    synth(dir, &[&shape[..], args].concat());
}

/// Saves `bytes` over the file at `path` in place (same inode), as a trainer does, and dates
/// it two seconds later: the kernel stamps mtime with a coarse clock, and a real save comes
/// long after mpscope opened the file.
pub fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let later = file.metadata().unwrap().modified().unwrap() + std::time::Duration::from_secs(2);
    file.set_modified(later).unwrap();
}

/// The explorer drawn once on a `w` × `h` TestBackend: its lines.
pub fn screen(
    app: &mpscope::tui::app::App,
    theme: mpscope::tui::theme::Theme,
    w: u16,
    h: u16,
) -> Vec<String> {
    let mut term =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| {
        mpscope::tui::draw::draw(f, app, &theme);
    })
    .expect("draw");
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

/// Writes a llama of `layers` × `hidden` with `heads` (kv heads = heads / 2) and the `spikes`
/// list into `dir`, then opens it: the checkpoint, its anatomy and every block's job.
pub fn synth_planned(
    dir: &Path,
    (layers, hidden, heads): (usize, usize, usize),
    seed: u64,
    spikes: &str,
) -> (
    mpscope::checkpoint::Checkpoint,
    mpscope::anatomy::Anatomy,
    Vec<mpscope::scan::Job>,
) {
    use mpscope::synth::{self, SynthFamily, SynthSpec};
    let mut spec = SynthSpec::new(SynthFamily::Llama, layers, hidden, heads);
    spec.kv_heads = heads / 2;
    spec.seed = seed;
    spec.spikes = synth::parse_list(spikes).expect("spike list");
    synth::write(dir, &spec).expect("synth");
    let ck = mpscope::checkpoint::Checkpoint::open(&dir.to_string_lossy()).expect("open");
    let an = mpscope::anatomy::Anatomy::from_checkpoint(&ck, &Default::default()).expect("anatomy");
    let jobs = mpscope::scan::plan(&an, &Default::default());
    (ck, an, jobs)
}
