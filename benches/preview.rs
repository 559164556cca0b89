//! The first view of a big block: `cargo bench --bench preview`.
//!
//! Uses the checkpoints `cargo bench --bench scan` writes (Llama-3.2-1B shape, and one layer of
//! the Llama-3.1-8B shape; written here when absent) and measures, for layer 0's whole q
//! (2048² and 4096²), best of five:
//! - the explorer's first histogram: read + decode to f32, the display-precision preview
//!   (`spectrum::preview`, on every core), its analysis (σ estimates, MP law) and the
//!   histogram at 80 columns' worth of bins, as `scan::preview` and the spectrum view do;
//! - the exact values as the explorer computes a block (one thread), and on every core;
//! - how close the preview is: the largest gap between the two value distributions (KS), and
//!   the share of a 60-bin histogram that differs (half the L1 distance of the bin counts).

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::best_of;

use std::path::Path;

use faer::Par;
use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan;
use mpscope::spectrum::{
    Histogram, HistogramRange, Precision, SigmaMode, Unit, preview, singular_values,
};

fn measure(dir: &Path, label: &str) {
    let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open checkpoint");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    let id = MatrixId::whole(Some(0), Proj::Q);
    let jobs = scan::plan(&an, &scan::ScanOptions::default());
    let job = jobs.iter().find(|j| j.block.id == id).expect("layer 0 q");
    let sel = &job.block.selection;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let par = Par::rayon(cores);
    let opts = scan::ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let (first, approx) = best_of(5, || {
        let a = scan::preview(&ck, job, &opts, SigmaMode::Entry, par)
            .expect("a big block has a preview")
            .expect("preview");
        let h = Histogram::new(
            &a.spectrum.values,
            a.spectrum.rows,
            a.spectrum.cols,
            a.sigma.value,
            Unit::Singular,
            78,
            HistogramRange::Full,
        );
        assert!(h.counts.iter().sum::<usize>() > 0);
        a.spectrum.values
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
    let gap = preview::Agreement::new(&exact, &approx, 60);
    println!(
        "  preview vs exact: KS {:.4}, 60-bin histogram {:.2}% differs, nu1 {:.2e} relative",
        gap.ks,
        100.0 * gap.histogram,
        (approx[0] - exact[0]).abs() / exact[0]
    );
}

fn main() {
    let (l1b, l8b) = (common::llama_1b(), common::llama_8b_layer());
    println!("first view of a whole q block (targets: 2048² < 100 ms, 4096² < 400 ms)");
    measure(&l1b, "Llama-3.2-1B shape");
    measure(&l8b, "Llama-3.1-8B shape");
}
