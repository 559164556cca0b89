//! The explorer's compare mode on TestBackend: a synthetic fine-tune (`synth --finetune-of`,
//! written by the real binary) against its base, every pair compared by the real engine and
//! handed to the app as the worker hands it.

mod common;

use std::path::Path;

use common::{screen, synth, synth_llama_with};
use mpscope::anatomy::Overrides;
use mpscope::compare::Sources;
use mpscope::scan::{ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::tui::app::App;
use mpscope::tui::keys::{Action, action};
use mpscope::tui::run::Computed;
use mpscope::tui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A 3-layer Llama base and a fine-tune of it with a rank-2 update in L1 q head 3 and a
/// rank-1 update in L2 v, compared block by block into a compare-mode app.
fn compare_app(dir: &Path) -> App {
    let (base, ft) = (dir.join("base"), dir.join("ft"));
    synth_llama_with(&base, &[]);
    synth(
        &ft,
        &[
            "--finetune-of",
            base.to_str().unwrap(),
            "--update",
            "L1.q.h3:2@0.5,L2.v:1@0.6",
        ],
    );
    let sources = Sources::open(
        ft.to_str().unwrap(),
        Some(base.to_str().unwrap()),
        &Overrides::default(),
    )
    .unwrap();
    let pairing = sources.pair(&ScanOptions::default()).unwrap();
    let opts = sources.options(ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    });
    let title = sources.title().replace(&format!("{}/", dir.display()), "");
    let mut app = App::new(
        title,
        &sources.base_anatomy,
        pairing.jobs.iter().map(|p| p.base.block.clone()).collect(),
    );
    app.enter_compare();
    app.progress.total = pairing.jobs.len();
    app.progress.done = pairing.jobs.len();
    for p in &pairing.jobs {
        let done: Computed = sources.compare(p, &opts, SigmaMode::Entry).unwrap().into();
        app.add_comparison(p.base.block.id, *done.comparison.unwrap());
        app.add_result(p.base.block.id, Ok(done.analysis));
    }
    app
}

fn key(c: char) -> Action {
    action(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)).unwrap()
}

const UNICODE: Theme = Theme::UNICODE;

#[test]
fn header_says_other_vs_base_and_the_layer_list_shows_the_planted_layers() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = compare_app(dir.path());
    let lines = screen(&app, UNICODE, 80, 24);
    let all = lines.join("\n");
    assert!(
        lines[0].starts_with(" mpscope · ft vs base · llama · 3 layers"),
        "{all}"
    );
    let wide = screen(&app, UNICODE, 120, 30);
    assert!(wide[1].contains("L0 q · score delta_rel"), "{}", wide[1]);
    // delta_rel of q per layer: only L1 q changed (its head 3); the glyphs of q, k and v
    // are full for L2 v and lowest wherever nothing changed.
    assert!(lines[3].starts_with("│   0 ▁ ▁ ▁  0.000│"), "{all}");
    assert!(lines[4].starts_with("│   1 ▅ ▁ ▁  0.09"), "{all}");
    assert!(lines[5].starts_with("│   2 ▁ ▁ █  0.000│"), "{all}");
    assert!(lines[22].contains("▲ q Δrel"), "{all}");
    // `s` cycles to delta_rank: L1 q's update has rank 2.
    app.handle(key('s'));
    let lines = screen(&app, UNICODE, 80, 24);
    assert!(lines[22].contains("▲ q Δrank"), "{}", lines.join("\n"));
    assert!(lines[4].starts_with("│   1 █ ▁ ▁  2.000"), "{}", lines[4]);
    let wide = screen(&app, UNICODE, 120, 30);
    assert!(wide[1].contains("score delta_rank"), "{}", wide[1]);
    // The ranked view lists the planted blocks first, largest change first.
    app.handle(Action::View(5));
    let lines = screen(&app, UNICODE, 100, 30);
    let all = lines.join("\n");
    for (row, start) in [
        (4, "│  1  L1    q    -    128×128   2.000"),
        (5, "│  2  L1    q    h3   32×128    2.000"),
        (6, "│  3  L2    v    -    64×128    1.000"),
        (7, "│  4  L2    v    h0   32×128    1.000"),
        (8, "│  5  L2    v    h1   32×128    1.000"),
    ] {
        assert!(lines[row].starts_with(start), "{all}");
    }
    // Then the unchanged blocks, in plan order (the cursor stays on the focused L0 q).
    assert!(
        lines[9].starts_with("│▶ 6  L0    q    -    128×128   0.000"),
        "{all}"
    );
}

#[test]
fn spectrum_overlays_base_and_other_and_d_shows_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = compare_app(dir.path());
    app.handle(key('j'));
    let lines = screen(&app, UNICODE, 80, 24);
    let all = lines.join("\n");
    assert!(
        lines[2].contains(" L1 q · model.layers.1.self_attn.q_proj.weight "),
        "{all}"
    );
    assert!(
        lines[3].contains("█ other ν (") && lines[3].contains("█ base  • MP"),
        "{all}"
    );
    assert!(lines[3].contains("Δrel     0.0899"), "{all}");
    assert!(lines[4].ends_with("Δrank    2               │"), "{all}");
    assert!(lines[5].contains("Δks      0.96"), "{all}");
    // `d`: ΔW's own spectrum, a rank-2 update: two values above its MP bulk.
    app.handle(key('d'));
    let lines = screen(&app, UNICODE, 80, 24);
    let all = lines.join("\n");
    assert!(lines[2].contains(" ΔW of L1 q · model.layers.1"), "{all}");
    assert!(lines[3].contains("█ ΔW ν"), "{all}");
    assert!(lines.iter().any(|l| l.contains("above    2 ")), "{all}");
    assert!(lines.iter().any(|l| l.contains("st.rank  2.0 ")), "{all}");
    assert!(
        lines[23].starts_with("spectrum of the change dW = other - base"),
        "{all}"
    );
    // An untouched block has no ΔW spectrum, and says so.
    app.handle(key('k'));
    let lines = screen(&app, UNICODE, 80, 24).join("\n");
    assert!(
        lines.contains("ΔW = 0: this block did not change"),
        "{lines}"
    );
    // `d` again: both models' spectra.
    app.handle(key('d'));
    let lines = screen(&app, UNICODE, 80, 24);
    assert!(lines[3].contains("█ base"), "{}", lines.join("\n"));
}

#[test]
fn ascii_and_no_color_draw_compare_mode_in_plain_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = compare_app(dir.path());
    app.handle(key('j'));
    app.handle(key('j'));
    app.handle(Action::ProjNext);
    for theme in [Theme::ASCII, Theme::PLAIN] {
        for view in 1..=5 {
            app.handle(Action::View(view));
            let lines = screen(&app, theme, 80, 24);
            if theme.ascii {
                assert!(lines.iter().all(|l| l.is_ascii()), "{}", lines.join("\n"));
            }
        }
        app.handle(Action::View(1));
        app.handle(key('r'));
        let lines = screen(&app, theme, 80, 24).join("\n");
        // The base's bars show as a shade behind the other's where the update moved values.
        let shade = if theme.ascii { "base" } else { "░ base" };
        assert!(lines.contains(shade), "{lines}");
        app.handle(key('r'));
    }
}

#[test]
fn sigma_modes_rescore_both_sides_and_export_and_shuffled_say_what_they_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = compare_app(dir.path());
    app.export_dir = dir.path().to_path_buf();
    app.handle(key('j'));
    let id = app.focus().unwrap();
    let before = app.comparison(&id).unwrap().delta.rel;
    app.handle(key('m'));
    let c = app.comparison(&id).unwrap();
    assert_eq!(c.base.sigma.mode, app.sigma_mode);
    assert_eq!(c.other.sigma.mode, app.sigma_mode);
    assert_eq!(c.delta.rel, before, "delta_rel does not depend on σ");
    app.handle(key('R'));
    assert_eq!(
        app.message.as_deref(),
        Some("no shuffled control in compare mode")
    );
    app.handle(key('e'));
    let msg = app.message.clone().unwrap();
    assert!(msg.starts_with("exported to "), "{msg}");
    // Both sides and the change, in the report's field names.
    let text = std::fs::read_to_string(msg.trim_start_matches("exported to ")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = app.comparison(&id).unwrap();
    assert_eq!(doc["compare"]["delta_rel"].as_f64(), Some(c.delta.rel));
    assert_eq!(
        doc["compare"]["delta_rank"].as_u64(),
        Some(c.delta.rank as u64)
    );
    assert_eq!(
        doc["compare"]["base"]["singular_values"]
            .as_array()
            .map(Vec::len),
        Some(c.base.spectrum.values.len())
    );
    assert_eq!(doc["compare"]["base"]["tensor"], doc["tensor"]);
    assert_eq!(doc["sigma_mode"], doc["compare"]["base"]["sigma_mode"]);
}
