//! The first view of a big block: `cargo bench --bench preview`.
//!
//! Uses the checkpoints `cargo bench --bench scan` writes (Llama-3.2-1B shape, and one layer of
//! the Llama-3.1-8B shape; written here when absent) and measures, for layer 0's whole q
//! (2048² and 4096²), best of five:
//! - the explorer's first histogram: read + decode to f32, the display-precision preview
//!   (`spectrum::preview`, on every core), σ and the histogram at 80 columns' worth of bins;
//! - the exact values as the explorer computes a block (one thread), and on every core;
//! - how close the preview is: the largest gap between the two value distributions (KS), and
//!   the share of a 60-bin histogram that differs (half the L1 distance of the bin counts).

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use faer::Par;
use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan;
use mpscope::spectrum::{Histogram, HistogramRange, Precision, Unit, preview, singular_values};

use common::ensure;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t0 = Instant::now();
        let r = f();
        best = best.min(t0.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

/// Largest gap between the empirical CDFs of two value sets.
fn ks_between(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Share of a `bins`-bin histogram (over the exact values' range) that differs.
fn hist_diff(exact: &[f64], approx: &[f64], bins: usize) -> f64 {
    let top = exact.iter().copied().fold(0.0, f64::max) * 1.02;
    let count = |v: &[f64]| {
        let mut c = vec![0f64; bins];
        for &x in v {
            let k = ((x / top * bins as f64) as usize).min(bins - 1);
            c[k] += 1.0 / v.len() as f64;
        }
        c
    };
    let (a, b) = (count(exact), count(approx));
    0.5 * a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

fn measure(dir: &Path, label: &str) {
    let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open checkpoint");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    let id = MatrixId::whole(Some(0), Proj::Q);
    let jobs = scan::plan(&an, &scan::ScanOptions::default());
    let job = jobs.iter().find(|j| j.block.id == id).expect("layer 0 q");
    let sel = &job.block.selection;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let par = Par::rayon(cores);
    let (first, approx) = best_of(5, || {
        let m = ck.decode_f32(sel).expect("decode");
        let values = preview::preview_values(m.as_ref(), par).expect("preview");
        let sigma = (m.squared_norm_l2() as f64 / (m.nrows() * m.ncols()) as f64).sqrt();
        let h = Histogram::new(
            &values,
            m.nrows(),
            m.ncols(),
            sigma,
            Unit::Singular,
            78,
            HistogramRange::Full,
        );
        assert!(h.counts.iter().sum::<usize>() > 0);
        values
    });
    let (decode, m) = best_of(5, || ck.decode_f32(sel).expect("decode"));
    let (alone, _) = best_of(5, || {
        preview::preview_values(m.as_ref(), par).expect("preview")
    });
    let (alone_one, _) = best_of(3, || {
        preview::preview_values(m.as_ref(), Par::Seq).expect("preview")
    });
    drop(m);
    let (exact_one, exact) = best_of(2, || {
        let m = ck.decode_f64(sel).expect("decode");
        singular_values(m.as_ref(), Precision::Fast, Par::Seq).expect("exact")
    });
    let (exact_all, _) = best_of(2, || {
        let m = ck.decode_f64(sel).expect("decode");
        singular_values(m.as_ref(), Precision::Fast, par).expect("exact")
    });
    println!(
        "\n{label}: layer 0 q, {}x{}",
        job.block.rows, job.block.cols
    );
    println!(
        "  first histogram (preview, {cores} cores)   {:8.1} ms",
        first * 1e3
    );
    println!(
        "    of which read + decode to f32 {:6.1} ms, preview {:6.1} ms (one thread: {:.1} ms)",
        decode * 1e3,
        alone * 1e3,
        alone_one * 1e3
    );
    println!(
        "  exact values, one thread (today's view) {:8.1} ms   ({:.1}x the preview)",
        exact_one * 1e3,
        exact_one / first
    );
    println!(
        "  exact values, {cores} cores                  {:8.1} ms",
        exact_all * 1e3
    );
    println!(
        "  preview vs exact: KS {:.4}, 60-bin histogram {:.2}% differs, nu1 {:.2e} relative",
        ks_between(&approx, &exact),
        100.0 * hist_diff(&exact, &approx, 60),
        (approx[0] - exact[0]).abs() / exact[0]
    );
}

fn main() {
    let base = std::env::var_os("MPSCOPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let l1b = base.join("mpscope-bench-llama-3.2-1b");
    ensure(&l1b, &["--preset", "llama-3.2-1b"]);
    let l8b = base.join("mpscope-bench-llama-3.1-8b-1layer");
    ensure(
        &l8b,
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
    println!("first view of a whole q block (targets: 2048² < 100 ms, 4096² < 400 ms)");
    measure(&l1b, "Llama-3.2-1B shape");
    measure(&l8b, "Llama-3.1-8B shape");
}
