//! A report written with `--values` opens in the explorer with no weights: every view, σ
//! mode and score draws the same screen as the checkpoint it came from (TestBackend), and
//! files that are not such a report are refused with exit status 2.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{mpscope, synth_llama};
use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::report::{self, ModelRecord};
use mpscope::saved_report::SavedReport;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::tui::app::{App, ScoreKind, View};
use mpscope::tui::keys::{Action, action};
use mpscope::tui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn screen(app: &App, w: u16, h: u16) -> String {
    common::screen(app, Theme::PLAIN, w, h).join("\n")
}

fn key(c: char) -> Action {
    action(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)).unwrap()
}

/// The explorer on `dir`'s checkpoint with every block computed (compute times zeroed: a
/// report has none), and the JSON report of the same run written with `--values` to `json`.
fn computed_and_saved(dir: &Path, json: &Path, randomize: bool) -> App {
    let ck = Checkpoint::open(dir.to_str().unwrap()).unwrap();
    let mut an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let jobs = scan::plan(&an, &ScanOptions::default());
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: ck.config().and_then(|c| c.initializer_range),
        randomize,
        cache: None,
    };
    let model = ModelRecord::new(dir.to_str().unwrap(), &ck, &an);
    let ck = Arc::new(ck);
    let r = report::run(ck, jobs.clone(), opts, SigmaMode::Fit, 2, |_| {}).unwrap();
    let json_text = report::to_json(model, SigmaMode::Fit, &r, true, None);
    std::fs::write(json, json_text).unwrap();
    // The report holds the planned blocks only (no embeddings): so does this explorer.
    an.matrices
        .retain(|m| jobs.iter().any(|j| j.block.id == m.id));
    let mut app = App::new(
        "model".into(),
        &an,
        jobs.iter().map(|j| j.block.clone()).collect(),
    );
    for e in r.entries {
        let result = e.result.map(|mut a| {
            a.spectrum.compute_time = Default::default();
            a
        });
        app.add_result(e.block.id, result);
    }
    app.progress.done = jobs.len();
    app.randomized = randomize;
    app
}

/// The explorer on the report alone, as `mpscope FILE.json` opens it.
fn opened(json: &Path) -> App {
    let saved = SavedReport::read(json).unwrap();
    let mut app = App::new(
        "model".into(),
        &saved.anatomy,
        saved.jobs.iter().map(|j| j.block.clone()).collect(),
    );
    for j in &saved.jobs {
        app.add_result(j.block.id, saved.analyze(j, SigmaMode::Entry));
    }
    app.progress.done = saved.jobs.len();
    app.randomized = saved.randomized;
    app
}

#[test]
fn a_report_draws_every_view_mode_and_score_as_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    synth_llama(&model, "L0.q:4x4,L1.k:2");
    let json = dir.path().join("r.json");
    let mut fresh = computed_and_saved(&model, &json, true);
    let mut saved = opened(&json);
    assert_eq!(
        saved.message.as_deref(),
        Some(format!("a report of {}", model.display()).as_str())
    );
    fresh.message = None;
    saved.message = None;
    let mut compared = 0;
    let same = |fresh: &App, saved: &App, what: &str| {
        for (w, h) in [(80, 24), (140, 40)] {
            let (a, b) = (screen(fresh, w, h), screen(saved, w, h));
            assert_eq!(a, b, "{what} at {w}x{h}");
        }
    };
    // Into a head, with the shuffled control drawn over the bars.
    for app in [&mut fresh, &mut saved] {
        app.handle(key('j'));
        app.handle(key('l'));
        app.handle(key('R'));
    }
    for mode in SigmaMode::ALL {
        assert_eq!((fresh.sigma_mode, saved.sigma_mode), (mode, mode));
        for view in View::ALL {
            for app in [&mut fresh, &mut saved] {
                app.view = view;
            }
            for _ in ScoreKind::ALL {
                same(
                    &fresh,
                    &saved,
                    &format!("{mode} {view:?} {:?}", fresh.score),
                );
                compared += 1;
                fresh.handle(key('s'));
                saved.handle(key('s'));
            }
        }
        fresh.view = View::Spectrum;
        saved.view = View::Spectrum;
        fresh.handle(key('t'));
        saved.handle(key('t'));
        same(&fresh, &saved, &format!("{mode} tail"));
        fresh.handle(key('t'));
        saved.handle(key('t'));
        fresh.handle(key('m'));
        saved.handle(key('m'));
    }
    assert_eq!(compared, 3 * View::ALL.len() * ScoreKind::ALL.len());
    // Literal lines: the opened report's first screen, spectrum of layer 1's q head 0.
    let lines = screen(&saved, 80, 24);
    assert!(
        lines.contains("L1 q h0 · model.layers.1.self_attn.q_proj.weight"),
        "{lines}"
    );
    assert!(lines.contains(" time     -  "), "{lines}");
}

#[test]
fn files_that_are_not_a_report_with_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    synth_llama(&model, "L0.q:3");
    let d = |name: &str| dir.path().join(name);
    let no_values = d("scores.json");
    let out = mpscope(&[
        "report",
        model.to_str().unwrap(),
        "-o",
        no_values.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    std::fs::write(d("config.json"), r#"{"hidden_size": 64}"#).unwrap();
    std::fs::write(d("broken.json"), "{\"model\": ").unwrap();
    let cases = [
        (
            "scores.json",
            "holds no singular values (it was written without --values)",
        ),
        ("config.json", "is not an mpscope report (no \"model\")"),
        ("broken.json", "is not an mpscope report (not JSON: EOF"),
    ];
    for (name, says) in cases {
        let out = mpscope(&[d(name).to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.starts_with("mpscope: error: "), "{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let err = String::from_utf8_lossy(&mpscope(&[no_values.to_str().unwrap()]).stderr).into_owned();
    assert!(
        err.contains(&format!("mpscope report {} --values -o", model.display())),
        "{err}"
    );
    // A report with values passes every check; only the missing terminal stops it here.
    let with = d("values.json");
    let out = mpscope(&[
        "report",
        model.to_str().unwrap(),
        "--values",
        "-o",
        with.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = mpscope(&[with.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the explorer needs a terminal"));
}

#[test]
fn a_top_report_lists_the_matrices_of_its_heads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    synth_llama(&model, "L1.q.h2:3");
    let json = dir.path().join("top.json");
    let m = model.to_str().unwrap();
    let out = mpscope(&[
        "report",
        m,
        "--values",
        "--top",
        "3",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let saved = SavedReport::read(&json).unwrap();
    let heads: Vec<_> = saved
        .jobs
        .iter()
        .filter(|j| j.block.id.head.is_some())
        .collect();
    assert_eq!(heads.len(), 3);
    for h in heads {
        assert!(saved.analyze(h, SigmaMode::Fit).is_ok());
        let whole = saved
            .anatomy
            .matrix(h.block.id)
            .unwrap_or_else(|| panic!("{} has no matrix", h.block.name));
        let job = saved.jobs.iter().find(|j| j.block.id == whole.id).unwrap();
        let err = saved.analyze(job, SigmaMode::Entry).unwrap_err();
        assert_eq!(err, "not in this report (a --top report)");
        assert_eq!(
            format!("{} h{}", whole.name, h.block.id.head.unwrap()),
            h.block.name
        );
    }
}

/// A `--values` report of a Mixtral opens with its experts: the expert axis, the model line's
/// expert count, and every view of an expert's matrix as the checkpoint draws it.
#[test]
fn a_moe_report_opens_with_its_experts() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("moe");
    common::synth_mixtral(&model, &[]);
    let json = dir.path().join("r.json");
    let mut fresh = computed_and_saved(&model, &json, false);
    let mut saved = opened(&json);
    let report = SavedReport::read(&json).unwrap();
    assert_eq!(report.anatomy.num_experts, Some(3));
    assert_eq!(report.anatomy.experts_of(1, Proj::Down), 3);
    assert_eq!(fresh.model_line, saved.model_line);
    assert!(
        saved.model_line.ends_with("· 3 experts"),
        "{}",
        saved.model_line
    );
    fresh.message = None;
    saved.message = None;
    // q, k, v, o, then gate: expert 0; `l` walks to expert 1.
    for app in [&mut fresh, &mut saved] {
        for _ in 0..4 {
            app.handle(action(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)).unwrap());
        }
        app.handle(key('l'));
    }
    let gate = MatrixId::whole(Some(0), Proj::Gate).with_expert(1);
    assert_eq!(saved.focus(), Some(gate));
    assert_eq!(fresh.focus(), Some(gate));
    for view in View::ALL {
        fresh.view = view;
        saved.view = view;
        for (w, h) in [(80, 24), (140, 40)] {
            assert_eq!(
                screen(&fresh, w, h),
                screen(&saved, w, h),
                "{view:?} at {w}x{h}"
            );
        }
    }
    saved.view = View::Spectrum;
    let lines = screen(&saved, 80, 24);
    assert!(lines.contains("L0 gate e1"), "{lines}");
}
