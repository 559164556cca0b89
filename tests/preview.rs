//! The first view of a big block: a display-precision preview from the real loader, shown by
//! the explorer until the exact values replace it.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::screen;

use mpscope::anatomy::{Anatomy, MatrixId, Proj};
use mpscope::cache::{self, Cache};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{self, ComputeOptions, Job};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::tui::app::App;
use mpscope::tui::theme::Theme;

use faer::Par;

const UNICODE: Theme = Theme::UNICODE;
const ASCII: Theme = Theme::ASCII;

/// One llama layer of hidden 1024 (q 1024², k/v 512×1024) with two spikes planted in q.
fn model(dir: &Path) -> (Checkpoint, Anatomy, Vec<Job>) {
    common::synth_planned(dir, (1, 1024, 8), 3, "L0.q:2x6")
}

fn options(cache: Option<cache::ModelCache>) -> ComputeOptions {
    ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache,
    }
}

fn job(jobs: &[Job], id: MatrixId) -> &Job {
    jobs.iter().find(|j| j.block.id == id).unwrap()
}

#[test]
fn big_blocks_preview_close_to_their_exact_values_and_small_or_cached_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, _, jobs) = model(dir.path());
    let q = MatrixId::whole(Some(0), Proj::Q);
    let opts = options(None);
    let preview = scan::preview(&ck, job(&jobs, q), &opts, SigmaMode::Entry, Par::rayon(2))
        .expect("a 1024² block has a preview")
        .unwrap();
    let exact = scan::analyze(&ck, job(&jobs, q), &opts, SigmaMode::Entry).unwrap();
    let (a, e) = (&preview.spectrum.values, &exact.spectrum.values);
    assert_eq!(a.len(), e.len());
    // The two planted spikes to display precision (the top one to many digits).
    assert!((a[0] - e[0]).abs() / e[0] < 1e-3, "{} vs {}", a[0], e[0]);
    assert!((a[1] - e[1]).abs() / e[1] < 1e-2, "{} vs {}", a[1], e[1]);
    // Every value within a few percent of the spectrum's range.
    let worst = a
        .iter()
        .zip(e)
        .map(|(x, y)| (x - y).abs() / e[0])
        .fold(0.0, f64::max);
    assert!(
        worst < 0.05,
        "worst value off by {worst} of ν₁: {:?} vs {:?}",
        &a[..6],
        &e[..6]
    );
    assert!((preview.sigma.value - exact.sigma.value).abs() / exact.sigma.value < 0.02);

    // k (256 rows) is small: its exact values come at once.
    let k = MatrixId::whole(Some(0), Proj::K);
    assert!(scan::preview(&ck, job(&jobs, k), &opts, SigmaMode::Entry, Par::Seq).is_none());

    // A cached block needs no preview either.
    let store = Arc::new(Cache::open(
        dir.path().join("cache"),
        "engine".into(),
        cache::DEFAULT_CAP,
    ));
    let cached = options(Some(store.model(ck.root())));
    let job_q = job(&jobs, q);
    assert!(scan::preview(&ck, job_q, &cached, SigmaMode::Entry, Par::Seq).is_some());
    scan::analyze(&ck, job_q, &cached, SigmaMode::Entry).unwrap();
    assert!(scan::preview(&ck, job_q, &cached, SigmaMode::Entry, Par::Seq).is_none());
}

#[test]
fn the_spectrum_view_marks_a_preview_until_the_exact_values_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, an, jobs) = model(dir.path());
    let q = MatrixId::whole(Some(0), Proj::Q);
    let opts = options(None);
    let mut app = App::new(
        "tiny".into(),
        &an,
        jobs.iter().map(|j| j.block.clone()).collect(),
    );
    assert_eq!(app.focus(), Some(q));
    let before = screen(&app, UNICODE, 100, 30).join("\n");
    assert!(before.contains("computing…"), "{before}");

    let preview = scan::preview(&ck, job(&jobs, q), &opts, SigmaMode::Entry, Par::Seq)
        .unwrap()
        .unwrap();
    app.add_preview(q, preview);
    let lines = screen(&app, UNICODE, 100, 30);
    let shown = lines.join("\n");
    assert!(shown.contains("≈ preview · L0 q"), "{shown}");
    assert!(
        shown.contains("display") && shown.contains("precision"),
        "{shown}"
    );
    assert!(shown.contains("exact   computing…"), "{shown}");
    assert!(shown.contains("≈ singular values ν"), "{shown}");
    assert!(shown.contains('█'), "the histogram is drawn:\n{shown}");
    // No score is shown for a preview, and the layer list does not use it.
    assert!(
        !shown.contains("above") && !shown.contains("st.rank"),
        "{shown}"
    );
    assert_eq!(app.analysis(&q), None);
    // ASCII at 80×24: the marks spelled out.
    let ascii = screen(&app, ASCII, 80, 24).join("\n");
    assert!(ascii.contains("~ preview | L0 q"), "{ascii}");
    assert!(ascii.is_ascii(), "{ascii}");

    // The exact result replaces it.
    let exact = scan::analyze(&ck, job(&jobs, q), &opts, SigmaMode::Entry);
    app.add_result(q, exact);
    let after = screen(&app, UNICODE, 100, 30).join("\n");
    assert!(!after.contains("preview"), "{after}");
    assert!(
        after.contains("above") && after.contains("st.rank"),
        "{after}"
    );
}
