//! A comparison goes through the spectrum cache: each side under the key a single scan of its
//! checkpoint uses, so a scan of the base makes the comparison compute only the other side and
//! ΔW, a comparison makes a later scan of the other model a hit, and every number read back is
//! the number a cold comparison computes, bit for bit.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{mpscope_cached, synth, synth_llama_with};
use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::cache::{self, Cache};
use mpscope::checkpoint::Checkpoint;
use mpscope::compare::{Comparison, OtherBlock, PairJob, Sources};
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Analysis, Precision, SigmaMode};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small base and a fine-tuned copy with updates in a whole matrix and in single heads.
fn base_and_finetune(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (base, ft) = (dir.join("base"), dir.join("ft"));
    synth_llama_with(&base, &["--spikes", "L0.q:3,L2.v:2"]);
    synth(
        &ft,
        &[
            "--finetune-of",
            s(&base),
            "--update",
            "L0.q:2@0.5,L1.k.h1:1@0.6,L2.o.h2:2@0.4",
        ],
    );
    (base, ft)
}

/// `a` without its compute time (the one field a hit keeps from the run that stored it).
fn timeless(a: &Analysis) -> Analysis {
    let mut a = a.clone();
    a.spectrum.compute_time = Duration::ZERO;
    a
}

/// Every number of a comparison, compute times left out.
fn numbers(c: &Comparison) -> Comparison {
    let mut c = c.clone();
    c.base = timeless(&c.base);
    c.other = timeless(&c.other);
    if let Some(d) = c.delta.analysis.as_mut() {
        *d = timeless(d);
    }
    c
}

/// The options `mpscope report` gives a scan of `ck` (its config's initializer range).
fn compute(ck: &Checkpoint, randomize: bool, cache: Option<cache::ModelCache>) -> ComputeOptions {
    ComputeOptions {
        precision: Precision::Fast,
        initializer_range: ck.config().and_then(|c| c.initializer_range),
        randomize,
        cache,
    }
}

/// Every pair of `sources` compared through `opts`.
fn compare_all(sources: &Sources, pairs: &[PairJob], opts: ComputeOptions) -> Vec<Comparison> {
    let opts = sources.options(opts);
    pairs
        .iter()
        .map(|p| numbers(&sources.compare(p, &opts, SigmaMode::Entry).unwrap()))
        .collect()
}

#[test]
fn cached_sides_give_the_cold_comparisons_numbers_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ft) = base_and_finetune(dir.path());
    let sources = Sources::open(s(&ft), Some(s(&base)), &Overrides::default()).unwrap();
    let scan_opts = ScanOptions {
        vectors_whole: true,
        ..ScanOptions::default()
    };
    let pairs = sources.pair(&scan_opts).unwrap().jobs;
    let changed = |cs: &[Comparison]| cs.iter().filter(|c| !c.delta.is_zero()).count();
    for randomize in [false, true] {
        let cold = compare_all(&sources, &pairs, compute(&sources.base, randomize, None));
        assert!(changed(&cold) >= 3 && changed(&cold) < cold.len());
        assert!(cold.iter().all(|c| c.subspace_overlap.is_some()));

        let c = Arc::new(Cache::open(
            dir.path().join(format!("cache-{randomize}")),
            "test".into(),
            cache::DEFAULT_CAP,
        ));
        // The base scanned first, as a user opens it before comparing.
        let base_cache = c.model(sources.base.root());
        let base_opts = compute(&sources.base, randomize, Some(base_cache));
        for p in &pairs {
            scan::analyze(&sources.base, &p.base, &base_opts, SigmaMode::Entry).unwrap();
        }
        let scanned = c.stats();
        assert_eq!(scanned.written, pairs.len());

        // Then the comparison: every base side is a hit; the other sides are computed.
        let warm = compare_all(&sources, &pairs, base_opts.clone());
        let after = c.stats();
        assert_eq!(
            after.hits - scanned.hits,
            pairs.len(),
            "every base side a hit"
        );
        assert_eq!(after.misses - scanned.misses, changed(&cold));
        // The other side of every pair is stored, unchanged ones too.
        assert_eq!(after.written - scanned.written, pairs.len());
        assert_eq!(warm, cold, "randomize {randomize}");

        // A second comparison reads both sides back.
        let again = compare_all(&sources, &pairs, base_opts.clone());
        let last = c.stats();
        assert_eq!(last.hits - after.hits, pairs.len() + changed(&cold));
        assert_eq!(last.misses, after.misses);
        assert_eq!(again, cold);

        // A single scan of the other checkpoint finds what the comparison stored.
        let ck = Checkpoint::open(s(&ft)).unwrap();
        let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
        let other_opts = compute(&ck, randomize, Some(c.model(ck.root())));
        let jobs = scan::plan(&an, &scan_opts);
        assert_eq!(jobs.len(), pairs.len());
        for (job, (pair, want)) in jobs.iter().zip(pairs.iter().zip(&cold)) {
            let OtherBlock::Dense(o) = &pair.other else {
                panic!("a dense pair")
            };
            assert_eq!(&job.block, o);
            let got = scan::analyze(&ck, job, &other_opts, SigmaMode::Entry).unwrap();
            assert_eq!(timeless(&got), want.other, "{}", job.block.name);
        }
        assert_eq!(
            c.stats().misses,
            last.misses,
            "the other's scan is all hits"
        );
    }
}

#[test]
fn a_lora_adapter_caches_its_base_side_only() {
    let dir = tempfile::tempdir().unwrap();
    let (base, lora) = (dir.path().join("base"), dir.path().join("lora"));
    synth_llama_with(&base, &[]);
    synth(
        &lora,
        &["--lora-of", s(&base), "--rank", "4", "--targets", "q,v"],
    );
    let sources = Sources::open(s(&lora), None, &Overrides::default()).unwrap();
    let pairs = sources.pair(&ScanOptions::default()).unwrap().jobs;
    let cold = compare_all(&sources, &pairs, compute(&sources.base, false, None));
    let c = Arc::new(Cache::open(
        dir.path().join("cache"),
        "test".into(),
        cache::DEFAULT_CAP,
    ));
    let opts = compute(&sources.base, false, Some(c.model(sources.base.root())));
    assert_eq!(compare_all(&sources, &pairs, opts.clone()), cold);
    assert_eq!(c.stats().written, pairs.len(), "base sides only");
    assert_eq!(compare_all(&sources, &pairs, opts), cold);
    assert_eq!(c.stats().hits, pairs.len());
    let models = cache::list(c.dir()).unwrap();
    assert_eq!(models.len(), 1, "{models:?}");
}

#[test]
fn a_report_of_the_base_makes_the_comparison_a_partial_hit_and_fills_the_other_side() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ft) = base_and_finetune(dir.path());
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| {
        let out = mpscope_cached(&cache, args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let compare = [
        "report",
        s(&ft),
        "--base",
        s(&base),
        "--format",
        "json",
        "--values",
    ];
    let (cold, _) = run(&[&compare[..], &["--no-cache"]].concat());
    let (_, err) = run(&["report", s(&base), "--format", "json"]);
    assert!(!err.contains("from the cache"), "{err}");
    // 57 pairs (3 layers × (4 matrices + 12 heads + 3 MLP)); the base side of each is a hit.
    let pairs = 3 * (4 + 12 + 3);
    let (first, err) = run(&compare);
    assert!(
        err.contains(&format!("{pairs} of ")) && err.contains("spectra (base and other)"),
        "{err}"
    );
    assert_eq!(first, cold);
    // Both sides are cached now: only the changed blocks have a second spectrum to read.
    let (second, err) = run(&compare);
    assert_eq!(second, cold);
    let line = err
        .lines()
        .find(|l| l.contains("read from the cache"))
        .unwrap();
    let (hits, total) = line
        .trim_start_matches("mpscope: ")
        .split_once(" of ")
        .map(|(h, rest)| (h.to_owned(), rest.split(' ').next().unwrap().to_owned()))
        .unwrap();
    assert_eq!(hits, total, "{line}");
    // The other model's single report reads every block back.
    let (_, err) = run(&["report", s(&ft), "--format", "json"]);
    assert!(
        err.contains(&format!("{pairs} of {pairs} blocks read from the cache")),
        "{err}"
    );
    // `mpscope cache` lists both models; --cache-dir is honoured by the comparison too.
    let listing = text(&mpscope_cached(&cache, &["cache"]).stdout);
    assert!(
        listing.contains("base") && listing.contains("ft"),
        "{listing}"
    );
    let elsewhere = dir.path().join("elsewhere");
    let (third, _) = run(&[&compare[..], &["--cache-dir", s(&elsewhere)]].concat());
    assert_eq!(third, cold);
    assert_eq!(cache::list(&elsewhere).unwrap().len(), 2);
}
