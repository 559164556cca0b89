//! The explorer on a Mixture-of-Experts model (synthetic Mixtral, real spectra, TestBackend):
//! the heads axis doubles as the expert axis, so the grid shows every expert of the focused
//! projection, the heatmap layers × experts, and h / l walk the experts.

use std::path::Path;

use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::synth::{self, SynthFamily, SynthSpec};
use mpscope::tui::app::{App, View};
use mpscope::tui::draw::draw;
use mpscope::tui::hits::{Hits, Target};
use mpscope::tui::keys::{Action, action};
use mpscope::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A 2-layer Mixtral (hidden 64, 4 heads / 2 kv, 4 experts of width 96) with every block
/// computed.
fn mixtral_app(dir: &Path) -> App {
    let mut spec = SynthSpec::new(SynthFamily::Mixtral, 2, 64, 4);
    spec.kv_heads = 2;
    spec.intermediate = Some(96);
    spec.vocab = 64;
    spec.seed = 3;
    synth::write(dir, &spec).unwrap();
    let ck = Checkpoint::open(dir.to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let jobs = scan::plan(&an, &ScanOptions::default());
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let mut app = App::new(
        "mixtral".into(),
        &an,
        jobs.iter().map(|j| j.block.clone()).collect(),
    );
    app.progress.total = jobs.len();
    app.progress.done = jobs.len();
    for j in &jobs {
        app.add_result(j.block.id, scan::analyze(&ck, j, &opts, SigmaMode::Entry));
    }
    app
}

/// The screen's lines (ASCII, no colour) and its clickable areas.
fn frame(app: &App, w: u16, h: u16) -> (Vec<String>, Hits) {
    let theme = Theme::ASCII;
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hits = Hits::default();
    term.draw(|f| hits = draw(f, app, &theme)).unwrap();
    let buf = term.backend().buffer().clone();
    let lines = (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect();
    (lines, hits)
}

fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    frame(app, w, h).0
}

fn press(app: &mut App, code: KeyCode) {
    let a: Action = action(KeyEvent::new(code, KeyModifiers::NONE)).unwrap();
    app.handle(a);
}

#[test]
fn expert_grid_heatmap_depth_and_ranked_views() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = mixtral_app(dir.path());
    assert!(
        app.model_line.ends_with("4 heads / 2 kv · 4 experts"),
        "{}",
        app.model_line
    );
    // q, k, v, o, then gate: its first position is expert 0 (no matrix of all experts), and
    // h / l wrap over the experts only.
    for _ in 0..4 {
        press(&mut app, KeyCode::Tab);
    }
    let gate = MatrixId::whole(Some(0), Proj::Gate);
    assert_eq!(app.focus(), Some(gate.with_expert(0)));
    press(&mut app, KeyCode::Char('h'));
    assert_eq!(app.focus(), Some(gate.with_expert(3)));
    press(&mut app, KeyCode::Char('l'));
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(app.focus(), Some(gate.with_expert(1)));

    // The grid: every expert of L0 gate with its score, e1 in focus.
    press(&mut app, KeyCode::Char('2'));
    assert_eq!(app.view, View::Heads);
    let s = screen(&app, 80, 24);
    let all = s.join("\n");
    assert_eq!(
        s[1],
        "  1 spectrum   2 heads   3 depth   4 heatmap   5 ranked    L0 gate e1 | score ks"
    );
    assert_eq!(
        s[2], "+ layers q k v ---++ experts of L0 gate | ks (Enter opens) --------------------+",
        "{all}"
    );
    assert_eq!(
        s[3], "|   0 . : :  0.035||e0  0.039          e1  0.034          e2  0.037            |",
        "{all}"
    );
    assert!(
        s[12].starts_with("|                 ||e3  0.031   "),
        "{all}"
    );
    // Enter opens the focused expert's spectrum.
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Spectrum);
    assert!(screen(&app, 80, 24)[1].ends_with("L0 gate e1 | score ks"));

    // The heatmap: layers × experts, the focused cell marked.
    press(&mut app, KeyCode::Char('4'));
    let (s, hits) = frame(&app, 80, 24);
    let all = s.join("\n");
    assert_eq!(
        s[2], "+ layers q k v ---++ heatmap | layers x experts of gate | ks ------------------+",
        "{all}"
    );
    assert_eq!(
        s[4], "|   1 . : |  0.033||    0            1            2            3               |",
        "{all}"
    );
    assert!(
        s[5].starts_with("| lm_head         ||  0 @@@@@@@@@@@@ [%%%%%%%%%%% "),
        "{all}"
    );
    assert!(
        s[6].starts_with("| ~el.embed_tokens||  1 ############ "),
        "{all}"
    );
    // A click on layer 1's expert 2 focuses that expert.
    let (x, y) = (21 + 2 * 13 + 3, 6);
    let target = hits.at(x, y).expect("a heatmap cell");
    let l1e2 = MatrixId::whole(Some(1), Proj::Gate).with_expert(2);
    assert_eq!(target, Target::Block(l1e2));
    app.click(target);
    assert_eq!(app.focus(), Some(l1e2));

    // The depth view adds the focused projection, the mean over its experts.
    press(&mut app, KeyCode::Char('3'));
    let s = screen(&app, 80, 24);
    assert_eq!(
        s[3],
        "|   0 . : :  0.035|| q  k  v  g=gate  random ~ 0, learned -> 1                 |",
        "{}",
        s.join("\n")
    );

    // The ranked view lists experts with their index in the head column.
    press(&mut app, KeyCode::Char('5'));
    let s = screen(&app, 80, 24);
    assert!(
        s.iter().any(|l| l.contains(" L1    gate e2   96x64 ")),
        "{}",
        s.join("\n")
    );
}
