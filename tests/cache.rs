//! The spectrum cache through the real binary: a second report reads every block back and
//! writes the same bytes; damaged entries are recomputed; a changed file misses; two
//! processes fill one cache at once; a cache that cannot be written only warns.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::{mpscope, mpscope_cached, rewrite_in_place, synth_llama};
use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::cache::{self, Cache};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `mpscope report DIR --format json` plus `extra`, through cache `cache`; must succeed.
fn report(cache: &Path, dir: &Path, extra: &[&str]) -> (String, String) {
    let out = mpscope_cached(
        cache,
        &[
            &["report", dir.to_str().unwrap(), "--format", "json"],
            extra,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// Every entry file of the cache.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for model in fs::read_dir(cache).unwrap() {
        let model = model.unwrap().path();
        if !model.is_dir() {
            continue;
        }
        for e in fs::read_dir(&model).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "mps") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A 3-layer llama: 3 × (4 attention matrices with 4 + 2 + 2 + 4 heads, 3 MLP) blocks.
const BLOCKS: usize = 3 * (4 + 12 + 3);

/// A temp dir holding a small llama with `spikes` planted (`m`), and where its cache goes.
fn setup(spikes: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (cache, model) = (dir.path().join("cache"), dir.path().join("m"));
    synth_llama(&model, spikes);
    (dir, cache, model)
}

#[test]
fn a_second_report_reads_every_block_back_and_writes_the_same_bytes() {
    let (dir, cache, model) = setup("L0.q:3");
    for extra in [
        &["--values"][..],
        &["--sigma", "fit", "--randomize", "--values"],
    ] {
        let (first, err1) = report(&cache, &model, extra);
        assert!(!err1.contains("from the cache"), "{err1}");
        let (second, err2) = report(&cache, &model, extra);
        assert!(
            err2.contains(&format!("{BLOCKS} of {BLOCKS} blocks read from the cache")),
            "{err2}"
        );
        assert_eq!(first, second, "{extra:?}");
        let (uncached, _) = report(&cache, &model, &[extra, &["--no-cache"]].concat());
        assert_eq!(first, uncached, "{extra:?}");
    }
    // Shuffled control or not, the two option sets are separate entries.
    assert_eq!(entries(&cache).len(), 2 * BLOCKS);
    let csv = |c: &Path| {
        let out = mpscope_cached(c, &["report", model.to_str().unwrap(), "--format", "csv"]);
        text(&out.stdout)
    };
    assert_eq!(csv(&cache), csv(&dir.path().join("other-cache")));
}

#[test]
fn damaged_entries_are_recomputed_and_rewritten() {
    let (_dir, cache, model) = setup("L1.k:2");
    let (first, _) = report(&cache, &model, &["--values"]);
    let files = entries(&cache);
    assert_eq!(files.len(), BLOCKS);
    let whole: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    // Truncated (an interrupted copy), a flipped bit, an empty file.
    fs::write(&files[0], &whole[0][..whole[0].len() / 2]).unwrap();
    let mut flipped = whole[1].clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x04;
    fs::write(&files[1], flipped).unwrap();
    fs::write(&files[2], b"").unwrap();
    let (second, err) = report(&cache, &model, &["--values"]);
    assert_eq!(first, second);
    assert!(
        err.contains("3 damaged cache entries were computed again and rewritten"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} of {BLOCKS} blocks", BLOCKS - 3)),
        "{err}"
    );
    // Rewritten whole (only the compute time and the checksum differ).
    for (f, bytes) in files.iter().zip(&whole).take(3) {
        let now = fs::read(f).unwrap();
        assert_eq!(now.len(), bytes.len(), "{}", f.display());
        let differ = now.iter().zip(bytes).filter(|(a, b)| a != b).count();
        assert!(differ <= 16, "{differ} bytes differ in {}", f.display());
    }
    let (_, err) = report(&cache, &model, &["--values"]);
    assert!(
        err.contains(&format!("{BLOCKS} of {BLOCKS} blocks")),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
}

#[test]
fn a_changed_file_misses_the_cache() {
    let (dir, cache, model) = setup("L0.q:3");
    let (before, _) = report(&cache, &model, &[]);
    // Same shapes, so the same size and header; other weights, saved over the file in place.
    let other = dir.path().join("other");
    synth_llama(&other, "L2.v:4");
    let weights = model.join("model.safetensors");
    let new_bytes = fs::read(other.join("model.safetensors")).unwrap();
    assert_eq!(
        new_bytes.len() as u64,
        fs::metadata(&weights).unwrap().len()
    );
    rewrite_in_place(&weights, &new_bytes);
    let (after, err) = report(&cache, &model, &[]);
    assert!(!err.contains("from the cache"), "{err}");
    assert_ne!(before, after);
    let (fresh, _) = report(&cache, &model, &["--no-cache"]);
    assert_eq!(after, fresh);
    // Both versions' entries are kept (the old ones age out by LRU).
    assert_eq!(entries(&cache).len(), 2 * BLOCKS);
}

#[test]
fn two_processes_fill_one_cache_at_once() {
    let (dir, cache, model) = setup("L0.q:3,L1.k:2");
    let start = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_mpscope"))
            .args([
                "report",
                model.to_str().unwrap(),
                "--values",
                "--threads",
                "2",
            ])
            .args(["--format", "json", "-o"])
            .arg(dir.path().join(out))
            .env("MPSCOPE_CACHE_DIR", &cache)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("a.json"), start("b.json"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let a = fs::read(dir.path().join("a.json")).unwrap();
    assert_eq!(a, fs::read(dir.path().join("b.json")).unwrap());
    // No temporary file left, every entry whole: a third run reads them all.
    let leftovers: Vec<_> = fs::read_dir(entries(&cache)[0].parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (third, err) = report(&cache, &model, &["--values"]);
    assert!(
        err.contains(&format!("{BLOCKS} of {BLOCKS} blocks")),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
    assert_eq!(third.as_bytes(), a.as_slice());
}

#[test]
fn a_cache_that_cannot_be_written_only_warns() {
    let (dir, _, model) = setup("L0.q:3");
    // A directory under a plain file can never be made, not even by root.
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"x").unwrap();
    let cache = blocker.join("cache");
    let out = mpscope_cached(
        &cache,
        &["report", model.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("cache")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].starts_with("mpscope: cache ")
            && warnings[0].contains("is not writable")
            && warnings[0].ends_with("spectra are computed but not kept"),
        "{err}"
    );
    let plain = mpscope(&["report", model.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.stdout, plain.stdout);

    // A filled cache made read-only still serves its entries (where permissions bind: not
    // for root).
    let ro = dir.path().join("ro");
    report(&ro, &model, &[]);
    let set_mode = |mode| {
        use std::os::unix::fs::PermissionsExt;
        for d in fs::read_dir(&ro).unwrap() {
            fs::set_permissions(d.unwrap().path(), fs::Permissions::from_mode(mode)).unwrap();
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(0o555);
    let binding = fs::write(ro.join("probe"), b"x").is_err();
    if binding {
        let (_, err) = report(&ro, &model, &[]);
        assert!(
            err.contains(&format!("{BLOCKS} of {BLOCKS} blocks")),
            "{err}"
        );
        assert_eq!(err.matches("not writable").count(), 1, "{err}");
    }
    set_mode(0o755);
}

#[test]
fn the_cache_command_lists_and_clears_models() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("alpha"), dir.path().join("beta"));
    synth_llama(&a, "L0.q:3");
    synth_llama(&b, "L0.q:3");
    report(&cache, &a, &[]);
    report(&cache, &b, &["--no-heads"]);
    let list = |args: &[&str]| -> Output { mpscope_cached(&cache, &[&["cache"], args].concat()) };
    let out = text(&list(&[]).stdout);
    assert!(out.contains("2 models"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{out}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(line("alpha"), BLOCKS.to_string());
    assert_eq!(line("beta"), (3 * 7).to_string());
    let cleared = list(&["clear", "beta"]);
    assert!(cleared.status.success());
    assert!(text(&cleared.stdout).starts_with("removed 1 model (21 entries"));
    let out = text(&list(&[]).stdout);
    assert!(out.contains("1 model") && !out.contains("beta"), "{out}");
    let none = list(&["clear", "gamma"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("no cached model matches 'gamma'"));
    assert!(list(&["clear"]).status.success());
    assert!(text(&list(&[]).stdout).contains("0 models"));
    assert_eq!(
        mpscope_cached(&cache, &["cache", "--cache-max", "lots"])
            .status
            .code(),
        Some(2)
    );
}

/// The library's cache: opened by hand on one checkpoint.
fn analyses(cache: &Arc<Cache>, ck: &Checkpoint, an: &Anatomy) -> Vec<String> {
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: Some(cache.model(ck.root())),
    };
    scan::plan(an, &ScanOptions::default())
        .iter()
        .map(|j| format!("{:?}", scan::analyze(ck, j, &opts, SigmaMode::Fit).unwrap()))
        .collect()
}

#[test]
fn another_engine_misses_and_the_cap_evicts_the_least_recently_used() {
    let (dir, _, model) = setup("L0.q:3");
    let ck = Checkpoint::open(model.to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let root = dir.path().join("cache");
    let one = Arc::new(Cache::open(
        root.clone(),
        "engine 1".into(),
        cache::DEFAULT_CAP,
    ));
    let first = analyses(&one, &ck, &an);
    assert_eq!(one.stats().written, BLOCKS);
    let again = analyses(&one, &ck, &an);
    assert_eq!(first, again);
    assert_eq!(one.stats().hits, BLOCKS);
    let two = Arc::new(Cache::open(
        root.clone(),
        "engine 2".into(),
        cache::DEFAULT_CAP,
    ));
    analyses(&two, &ck, &an);
    assert_eq!((two.stats().hits, two.stats().written), (0, BLOCKS));

    // Age engine 1's entries, then cap the cache at what engine 2's take: engine 1's go.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let files = entries(&root);
    let (mut aged, mut kept) = (Vec::new(), 0u64);
    for f in &files {
        let bytes = fs::read(f).unwrap();
        if String::from_utf8_lossy(&bytes).contains("engine engine 1") {
            fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(old)
                .unwrap();
            aged.push(f.clone());
        } else {
            kept += bytes.len() as u64;
        }
    }
    assert_eq!(aged.len(), BLOCKS);
    // A cap whose 90% holds engine 2's entries exactly: one more entry written by engine 3
    // sends every aged entry out, then the oldest of engine 2's, never the newest.
    let cap = kept * 10 / 9 + 1;
    let reader = Arc::new(Cache::open(root.clone(), "engine 2".into(), cap));
    analyses(&reader, &ck, &an);
    assert_eq!(reader.stats().hits, BLOCKS);
    assert_eq!(
        reader.evict(),
        0,
        "nothing written by this process: no walk"
    );
    let writer = Arc::new(Cache::open(root.clone(), "engine 3".into(), cap));
    let job = &scan::plan(&an, &ScanOptions::default())[0];
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: Some(writer.model(ck.root())),
    };
    scan::analyze(&ck, job, &opts, SigmaMode::Entry).unwrap();
    let newest = entries(&root)
        .into_iter()
        .find(|f| !files.contains(f))
        .unwrap();
    let removed = writer.evict();
    assert!(removed > BLOCKS, "{removed}");
    assert!(aged.iter().all(|f| !f.exists()));
    assert!(newest.exists());
    let left: u64 = entries(&root)
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert!(left <= cap / 10 * 9, "{left} > 90% of {cap}");
}

/// The experts of a GGUF `ffn_*_exps` tensor share its file and name: each is its own row
/// range, so each has its own key and entry, and a second report reads every expert back with
/// the same bytes (a key without the rows would hand expert 0's values to all of them).
#[test]
fn experts_of_one_stacked_gguf_tensor_are_entries_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, model) = (dir.path().join("cache"), dir.path().join("moe"));
    common::synth_mixtral(&model, &["--format", "gguf", "--quant", "f16"]);
    let ck = Checkpoint::open(model.to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let scan_opts = ScanOptions {
        projs: "experts".parse().unwrap(),
        ..ScanOptions::default()
    };
    let jobs = scan::plan(&an, &scan_opts);
    assert_eq!(
        jobs.len(),
        2 * 3 * 3,
        "2 layers × gate, up, down × 3 experts"
    );
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let mut keys: Vec<String> = jobs
        .iter()
        .map(|j| {
            assert!(j.block.id.expert.is_some(), "{}", j.block.name);
            scan::cache_key(&ck, j, &opts).expect("a key").0
        })
        .collect();
    let tensors: std::collections::BTreeSet<&str> =
        jobs.iter().map(|j| j.block.tensor.as_str()).collect();
    assert_eq!(
        tensors.len(),
        2 * 3,
        "one stacked tensor per layer and projection"
    );
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), jobs.len(), "every expert has a key of its own");
    let args = ["--proj", "experts", "--values"];
    let (first, _) = report(&cache, &model, &args);
    assert_eq!(entries(&cache).len(), jobs.len());
    let (second, err) = report(&cache, &model, &args);
    assert!(err.contains("18 of 18 blocks read from the cache"), "{err}");
    assert_eq!(first, second);
}
