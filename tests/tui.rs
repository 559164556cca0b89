//! The explorer drawn on ratatui's TestBackend from a real synthetic checkpoint with real
//! spectra, driven by the same actions the keys produce.

mod common;

use std::path::Path;

use common::screen;

use mpscope::anatomy::{MatrixId, Proj};
use mpscope::scan::{self, ComputeOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::tui::app::{App, Outcome, ScoreKind, SearchKey, View};
use mpscope::tui::draw::draw;
use mpscope::tui::hits::{Hits, Target};
use mpscope::tui::keys::{Action, action};
use mpscope::tui::plot::fmt_tick;
use mpscope::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A 3-layer llama with spikes planted in layer 0 q, and every block's real analysis (in
/// plan order), not yet given to the app; with the shuffled control when `randomize` is set.
fn fresh_app(dir: &Path, randomize: bool) -> (App, Vec<(MatrixId, Outcome)>) {
    let (ck, an, jobs) = common::synth_planned(dir, (3, 128, 4), 7, "L0.q:4x4");
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize,
        cache: None,
    };
    let mut app = App::new(
        "tiny".into(),
        &an,
        jobs.iter().map(|j| j.block.clone()).collect(),
    );
    app.progress.total = jobs.len();
    app.randomized = randomize;
    let results = jobs
        .iter()
        .map(|j| (j.block.id, scan::analyze(&ck, j, &opts, SigmaMode::Entry)))
        .collect();
    (app, results)
}

/// The same with every spectrum computed.
fn app_for(dir: &Path) -> App {
    app_with(dir, false)
}

/// [`app_for`], with the shuffled control computed when `randomize` is set.
fn app_with(dir: &Path, randomize: bool) -> App {
    let (mut app, results) = fresh_app(dir, randomize);
    app.progress.done = results.len();
    for (id, r) in results {
        app.add_result(id, r);
    }
    app
}

/// The screen's lines and its clickable areas.
fn frame(app: &App, w: u16, h: u16) -> (Vec<String>, Hits) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hits = Hits::default();
    term.draw(|f| hits = draw(f, app, &UNICODE)).unwrap();
    let buf = term.backend().buffer().clone();
    let lines = (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect();
    (lines, hits)
}

/// Column and row of the first `needle` on screen (in cells).
fn find(lines: &[String], needle: &str) -> (u16, u16) {
    lines
        .iter()
        .enumerate()
        .find_map(|(y, l)| {
            l.find(needle)
                .map(|x| (l[..x].chars().count() as u16, y as u16))
        })
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", lines.join("\n")))
}

fn has_colour(app: &App, theme: Theme, w: u16, h: u16) -> bool {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| {
        draw(f, app, &theme);
    })
    .unwrap();
    let buf = term.backend().buffer();
    buf.content()
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
}

const UNICODE: Theme = Theme::UNICODE;
const ASCII: Theme = Theme::ASCII;

fn key(c: char) -> Action {
    action(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)).unwrap()
}

/// Presses `s` until the score is `kind`.
fn score_by(app: &mut App, kind: ScoreKind) {
    for _ in 0..ScoreKind::ALL.len() {
        if app.score == kind {
            return;
        }
        app.handle(key('s'));
    }
    panic!("s never reached {kind:?}");
}

fn text(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn spectrum_view_shows_histogram_edges_and_every_score() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(dir.path());
    for (w, h) in [(80, 24), (120, 40)] {
        let s = screen(&app, UNICODE, w, h);
        let all = text(&s);
        assert!(
            s[0].contains("mpscope · tiny · llama · 3 layers · 4 heads / 2 kv"),
            "{all}"
        );
        assert!(
            all.contains("L0 q · model.layers.0.self_attn.q_proj.weight"),
            "{all}"
        );
        for label in [
            "shape",
            "σ",
            "ν− ν+",
            "ks",
            "above",
            "edge",
            "outlier",
            "st.rank",
            "vector_p",
            "top ν",
            "time",
        ] {
            assert!(all.contains(label), "{label} missing at {w}x{h}:\n{all}");
        }
        assert!(all.contains("128×128 bf16"), "{all}");
        assert!(all.contains('█'), "histogram bars");
        assert!(all.contains('•'), "MP curve");
        assert!(all.contains('▲'), "MP edge marks");
        // Four planted spikes stand above the bulk.
        let above = s.iter().find(|l| l.contains("above")).unwrap();
        assert!(above.contains("above    4"), "{above}");
        // Layer list: every layer.
        for l in 0..3 {
            assert!(
                s.iter().any(|line| line.starts_with(&format!("│   {l} "))),
                "{all}"
            );
        }
        assert!(
            s[h as usize - 1].contains("blocks in"),
            "{}",
            s[h as usize - 1]
        );
    }
}

#[test]
fn moving_across_layers_heads_and_projections_changes_title_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    let before = screen(&app, UNICODE, 80, 24);
    app.handle(key('j'));
    let s = screen(&app, UNICODE, 80, 24);
    assert!(text(&s).contains("L1 q · model.layers.1.self_attn.q_proj.weight"));
    let ks = |s: &[String]| s.iter().find(|l| l.contains("ks  ")).cloned().unwrap();
    assert_ne!(
        ks(&before),
        ks(&s),
        "ks differs between a spiked and a plain layer"
    );
    app.handle(key('l'));
    app.handle(key('l'));
    let s = screen(&app, UNICODE, 80, 24);
    assert!(text(&s).contains("L1 q h1"), "{}", text(&s));
    assert!(text(&s).contains("32×128"), "a q head is head_dim × hidden");
    let tab = action(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)).unwrap();
    app.handle(tab);
    let s = screen(&app, UNICODE, 80, 24);
    assert!(text(&s).contains("L1 k h1"), "{}", text(&s));
    app.handle(key('G'));
    assert!(
        app.focus().unwrap().layer.is_none(),
        "G goes to the last row"
    );
    app.handle(key('g'));
    assert_eq!(app.focus().unwrap().layer, Some(0));
}

#[test]
fn heads_grid_highlights_the_focused_head_and_enter_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('2'));
    assert_eq!(app.view, View::Heads);
    app.handle(key('l'));
    app.handle(key('l'));
    app.handle(key('l'));
    for (w, h) in [(80, 24), (120, 40)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| {
            draw(f, &app, &UNICODE);
        })
        .unwrap();
        let buf = term.backend().buffer().clone();
        let lines: Vec<String> = (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect();
        let all = text(&lines);
        assert!(all.contains("heads of L0 q"), "{all}");
        for hd in 0..4 {
            assert!(
                all.contains(&format!("h{hd} ")),
                "head {hd} at {w}x{h}:\n{all}"
            );
        }
        // The label of head 2 is drawn in the selected style, the others not.
        let find = |label: &str| {
            lines
                .iter()
                .enumerate()
                .skip(3)
                .find_map(|(y, l)| l.find(label).map(|x| (y, l[..x].chars().count())))
                .unwrap()
        };
        let (y, x) = find("h2 ");
        let sel = buf[(x as u16, y as u16)].bg;
        let (y0, x0) = find("h0 ");
        assert_ne!(
            sel,
            buf[(x0 as u16, y0 as u16)].bg,
            "focused head stands out"
        );
    }
    let enter = action(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)).unwrap();
    app.handle(enter);
    assert_eq!(app.view, View::Spectrum);
    assert!(text(&screen(&app, UNICODE, 80, 24)).contains("L0 q h2"));
}

#[test]
fn depth_profile_and_heatmap_draw_at_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('3'));
    for (w, h) in [(80, 24), (120, 40)] {
        let all = text(&screen(&app, UNICODE, w, h));
        assert!(
            all.contains("depth profile · mean head ks per layer"),
            "{all}"
        );
        assert!(all.contains('q') && all.contains('k') && all.contains('v'));
    }
    app.handle(key('s'));
    assert!(text(&screen(&app, UNICODE, 80, 24)).contains("mean head alpha"));
    app.handle(key('s'));
    assert!(text(&screen(&app, UNICODE, 80, 24)).contains("mean head vector_p"));
    app.handle(key('4'));
    for (w, h) in [(80, 24), (120, 40)] {
        let s = screen(&app, UNICODE, w, h);
        let all = text(&s);
        assert!(
            all.contains("heatmap · layers x heads of q · vector_p"),
            "{all}"
        );
        assert!(s.iter().any(|l| l.contains("│  0 ")), "{all}");
        assert!(s.iter().any(|l| l.contains("│  2 ")), "{all}");
    }
}

#[test]
fn help_opens_with_question_mark_and_esc_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('?'));
    // Taller than 24 rows: it scrolls with j/k down to the mouse rows and the footnote.
    let all = text(&screen(&app, UNICODE, 80, 24));
    assert!(all.contains("keys (j/k scroll, Esc closes)"), "{all}");
    assert!(all.contains("next / previous layer"));
    assert!(!all.contains("wheel"), "{all}");
    for _ in 0..10 {
        app.handle(key('j'));
    }
    let all = text(&screen(&app, UNICODE, 80, 24));
    assert!(
        all.contains("wheel           next / previous layer"),
        "{all}"
    );
    assert!(all.contains("Far from MP = learned structure"), "{all}");
    assert!(!all.contains("j k Down Up"), "{all}");
    // Tall enough, it shows whole.
    let all = text(&screen(&app, UNICODE, 80, 40));
    assert!(all.contains("keys (Esc closes)"), "{all}");
    assert!(
        all.contains("j k Down Up") && all.contains("wheel"),
        "{all}"
    );
    let esc = action(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)).unwrap();
    assert_eq!(app.handle(esc), mpscope::tui::app::Effect::None);
    assert!(!text(&screen(&app, UNICODE, 80, 24)).contains("Esc closes)"));
    assert_eq!(
        app.handle(esc),
        mpscope::tui::app::Effect::Quit,
        "Esc with no overlay quits"
    );
}

#[test]
fn ascii_mode_draws_only_ascii_and_no_color_draws_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    for view in ['1', '2', '3', '4', '5', '?'] {
        app.handle(key(view));
        for (w, h) in [(80, 24), (120, 40)] {
            let s = screen(&app, ASCII, w, h);
            for line in &s {
                assert!(line.is_ascii(), "view {view} at {w}x{h}: {line}");
            }
            assert!(
                !has_colour(&app, ASCII, w, h),
                "view {view}: colour under NO_COLOR"
            );
        }
        if view == '?' {
            app.handle(key('?'));
        }
    }
    assert!(
        has_colour(&app, UNICODE, 80, 24),
        "colour theme does colour"
    );
}

#[test]
fn tiny_terminal_says_so_instead_of_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(dir.path());
    let s = screen(&app, UNICODE, 40, 10);
    assert!(s[0].starts_with("terminal too small: 40x10"), "{:?}", s);
}

#[test]
fn sigma_mode_rescored_without_recomputing_and_search_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    let id = app.focus().unwrap();
    let entry = app.analysis(&id).unwrap().clone();
    app.handle(key('m'));
    let fit = app.analysis(&id).unwrap();
    assert_eq!(fit.spectrum.values, entry.spectrum.values);
    assert_ne!(fit.sigma.value, entry.sigma.value);
    assert!(text(&screen(&app, UNICODE, 80, 24)).contains("σ fit"));

    app.handle(key('/'));
    for c in "layers.2.self_attn.v".chars() {
        app.search_input(SearchKey::Char(c));
    }
    let effect = app.search_input(SearchKey::Enter);
    let target = MatrixId::whole(Some(2), Proj::V);
    assert_eq!(effect, mpscope::tui::app::Effect::Refocus(target));
    assert_eq!(app.focus(), Some(target));

    app.export_dir = dir.path().to_path_buf();
    app.handle(key('e'));
    let msg = app.message.clone().unwrap();
    assert!(msg.starts_with("exported to "), "{msg}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(msg.trim_start_matches("exported to ")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["tensor"], "model.layers.2.self_attn.v_proj.weight");
    // v is kv_heads · head_dim = 64 rows by 128 columns: 64 singular values.
    assert_eq!(json["singular_values"].as_array().unwrap().len(), 64);
    // One schema: a report matrix object (flat, the same keys) plus σ mode, σ of every mode
    // and the values, read by the report's own parser.
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected: Vec<&str> = mpscope::report::CSV_COLUMNS.to_vec();
    expected.extend(["sigma_mode", "sigmas", "singular_values"]);
    let (mut k, mut e) = (keys.clone(), expected.clone());
    k.sort();
    e.sort();
    assert_eq!(k, e);
    let rec: mpscope::report::MatrixRecord = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(
        (rec.layer, rec.proj.as_str(), rec.head),
        (Some(2), "v", None)
    );
    assert_eq!(rec.sigma_mode, Some(SigmaMode::Fit));
    let a = app.analysis(&target).unwrap();
    assert_eq!(rec.sigma, Some(a.sigma.value));
    assert_eq!(rec.sigmas.unwrap().entry, a.sigmas.entry);
    assert_eq!(rec.ks, Some(a.scores.ks));
    assert_eq!(rec.mp_max, a.law.map(|l| l.upper_edge()));
}

#[test]
fn heads_grid_shape_shows_every_head_when_it_can_and_scrolls_otherwise() {
    use mpscope::tui::draw::grid_shape;
    // 6 heads in the 80x24 main area: all on screen, cells wider than tall.
    let (cols, w, h) = grid_shape(6, 59, 19);
    assert!(6usize.div_ceil(cols) as u16 * h <= 19);
    assert!(cols as u16 * w <= 59 && w >= 12 && h >= 5 && w > h);
    // 32 heads cannot fit at 12x5 in 59x19: fixed cells, scrolled to the focus.
    let (cols, w, h) = grid_shape(32, 59, 19);
    assert_eq!((w, h), (14, 5));
    assert_eq!(cols, 4);
    // A wide terminal fits 32 heads at once.
    let (cols, w, h) = grid_shape(32, 160, 41);
    assert!(32usize.div_ceil(cols) as u16 * h <= 41 && cols as u16 * w <= 160);
}

#[test]
fn mouse_clicks_land_on_what_is_drawn_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    let id = |layer, proj, head| MatrixId {
        layer: Some(layer),
        proj,
        head,
        expert: None,
    };
    for (w, h) in [(80, 24), (132, 40)] {
        app.click(Target::View(View::Spectrum));
        app.nav.select(id(0, Proj::Q, None));
        // A tab switches the view.
        let (lines, hits) = frame(&app, w, h);
        let (x, y) = find(&lines, "2 heads");
        assert_eq!(hits.at(x, y), Some(Target::View(View::Heads)));
        app.click(Target::View(View::Heads));
        assert_eq!(app.view, View::Heads);
        // A layer row moves there; the k glyph in it focuses layer 1's k.
        let (lines, hits) = frame(&app, w, h);
        let (_, y) = find(&lines, "│   1 ");
        let row = match hits.at(3, y) {
            Some(Target::Row(r)) => r,
            other => panic!("layer row 1 at {w}x{h}: {other:?}"),
        };
        app.click(Target::Row(row));
        assert_eq!(app.focus(), Some(id(1, Proj::Q, None)));
        let k = hits.at(1 + 5 + 2, y).expect("the k glyph");
        assert_eq!(k, Target::RowProj(row, Proj::K));
        assert!(
            matches!(app.click(k), mpscope::tui::app::Effect::Refocus(f) if f == id(1, Proj::K, None))
        );
        // Back on q, a head's cell focuses the head; clicking it again opens it.
        app.click(Target::RowProj(row, Proj::Q));
        let (lines, hits) = frame(&app, w, h);
        let (x, y) = find(&lines, "h3 ");
        let head = hits.at(x, y).expect("head 3's cell");
        assert_eq!(head, Target::Block(id(1, Proj::Q, Some(3))));
        app.click(head);
        assert_eq!(
            (app.view, app.focus()),
            (View::Heads, Some(id(1, Proj::Q, Some(3))))
        );
        app.click(head);
        assert_eq!(app.view, View::Spectrum);
        assert!(text(&frame(&app, w, h).0).contains("L1 q h3"));
        // A heatmap cell focuses that layer and head.
        app.click(Target::View(View::Heatmap));
        let (_, hits) = frame(&app, w, h);
        let cell = Target::Block(id(2, Proj::Q, Some(1)));
        let area = hits.area_of(cell).expect("heatmap cell L2 h1");
        assert_eq!(hits.at(area.x, area.y), Some(cell));
        app.click(cell);
        assert_eq!(app.focus(), Some(id(2, Proj::Q, Some(1))));
        let (lines, _) = frame(&app, w, h);
        assert!(text(&lines).contains("L2 q h1"), "{}", text(&lines));
    }
    // Under an overlay nothing takes clicks.
    let (lines, _) = frame(&app, 80, 24);
    let (x, y) = find(&lines, "2 heads");
    app.handle(key('?'));
    let (_, hits) = frame(&app, 80, 24);
    assert_eq!(hits.at(x, y), None);
}

/// α in the stats, the log-log tail view (`t`) and the shuffled control's overlay (`R`).
#[test]
fn tail_view_and_shuffled_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with(dir.path(), true);
    let all = text(&screen(&app, UNICODE, 100, 30));
    assert!(
        all.contains("α ") && all.contains("tail ") && all.contains("rand ks"),
        "{all}"
    );
    app.handle(key('t'));
    let lines = screen(&app, UNICODE, 100, 30);
    let all = text(&lines);
    // The longest legend that fits the plot beside the stats.
    assert!(all.contains("log-log CCDF · α "), "{all}");
    let wide = text(&screen(&app, UNICODE, 160, 30));
    assert!(
        wide.contains("CCDF of λ = ν², log-log · power law α"),
        "{wide}"
    );
    assert!(
        all.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
        "braille curves: {all}"
    );
    let ascii = text(&screen(&app, ASCII, 80, 24));
    assert!(ascii.is_ascii() && ascii.contains("alpha"), "{ascii}");
    app.handle(key('t'));
    assert!(!text(&screen(&app, UNICODE, 100, 30)).contains("CCDF"));
    assert!(!text(&screen(&app, UNICODE, 100, 30)).contains('◦'));
    app.handle(key('R'));
    assert!(
        text(&screen(&app, UNICODE, 100, 30)).contains('◦'),
        "shuffled overlay"
    );
}

/// Without `--randomize` there is nothing to overlay yet: `R` asks the loop to compute every
/// block again with its shuffled control, and says so.
#[test]
fn shuffled_overlay_without_randomize_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    assert_eq!(app.handle(key('R')), mpscope::tui::app::Effect::Randomize);
    let all = text(&screen(&app, UNICODE, 100, 30));
    assert!(
        all.contains("computing every block's shuffled control"),
        "{all}"
    );
    // A fresh app for the randomized worker keeps the overlay on.
    let fresh = app_with(dir.path(), true).carrying(&app);
    assert!(fresh.show_shuffled && fresh.randomized);
    assert!(text(&screen(&fresh, UNICODE, 100, 30)).contains('◦'));
}

#[test]
fn a_changed_checkpoint_is_named_in_the_footer_with_the_reopen_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('j'));
    app.stale = Some("model.safetensors (size 1.40 GiB → 1.00 MiB)".into());
    let lines = screen(&app, UNICODE, 100, 24);
    assert_eq!(
        lines[23],
        "o reopen · changed on disk: model.safetensors (size 1.40 GiB → 1.00 MiB)          57 blocks in 0.0s "
    );
    let ascii = screen(&app, ASCII, 100, 24);
    assert!(
        ascii[23].starts_with(
            "o reopen | changed on disk: model.safetensors (size 1.40 GiB -> 1.00 MiB)  "
        ),
        "{}",
        ascii[23]
    );
    // A fresh opening keeps the view and the focus; the notice goes with the old one.
    app.handle(key('2'));
    let fresh = app_for(dir.path()).carrying(&app);
    assert_eq!((fresh.view, fresh.focus()), (View::Heads, app.focus()));
    assert_eq!(fresh.stale, None);
    assert_eq!(app.handle(key('o')), mpscope::tui::app::Effect::Reopen);
}

#[test]
fn readme_key_table_is_the_key_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table: Vec<String> = readme
        .lines()
        .skip_while(|l| *l != "| keys | action |")
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = mpscope::tui::keys::help_rows()
        .iter()
        .map(|(k, what)| format!("| `{k}` | {what} |"))
        .collect();
    assert_eq!(
        table,
        expected,
        "README's key table differs from tui::keys; it should read:\n{}",
        expected.join("\n")
    );
}

/// The ranked table's rows on screen: (cursor here, layer, proj, head, score cell).
fn ranked_rows(lines: &[String]) -> Vec<(bool, String, String, String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let inner = l.strip_prefix('│').or_else(|| l.strip_prefix('|'))?;
            let cursor = inner.starts_with('▶') || inner.starts_with('>');
            let mut w = inner.trim_start_matches(['▶', '>']).split_whitespace();
            w.next()?.parse::<usize>().ok()?;
            let (layer, proj, head, _shape, score) =
                (w.next()?, w.next()?, w.next()?, w.next()?, w.next()?);
            Some((
                cursor,
                layer.to_string(),
                proj.to_string(),
                head.to_string(),
                score.trim_end_matches(['│', '|']).to_string(),
            ))
        })
        .collect()
}

#[test]
fn ranked_view_lists_every_block_strangest_first_and_s_resorts() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('5'));
    assert_eq!(app.view, View::Ranked);
    // 3 layers × (7 wholes + 4 + 2 + 2 + 4 heads).
    assert_eq!(app.ranked().len(), 57);
    app.handle(key('g'));
    let s = screen(&app, UNICODE, 100, 30);
    let all = text(&s);
    assert!(
        all.contains("ranked · 57 blocks by ks (highest first)"),
        "{all}"
    );
    let rows = ranked_rows(&s);
    assert_eq!(rows.len(), 30 - 6, "{all}");
    assert!(rows[0].0, "the cursor is on the first row after g:\n{all}");
    let ks: Vec<f64> = rows.iter().map(|r| r.4.parse().unwrap()).collect();
    assert!(ks.windows(2).all(|w| w[0] >= w[1]), "{ks:?}");
    // The four planted spikes make layer 0's q the strangest whole q.
    let first_q = rows.iter().find(|r| r.2 == "q" && r.3 == "-").unwrap();
    assert_eq!(first_q.1, "L0", "{all}");
    // vector_p: lowest first; whole matrices (no vectors computed) at the end.
    score_by(&mut app, ScoreKind::VectorP);
    let ranked = app.ranked();
    let vp: Vec<f64> = ranked.iter().filter_map(|r| r.1).collect();
    assert_eq!(vp.len(), 3 * 12, "every head has vector_p");
    assert!(vp.windows(2).all(|w| w[0] <= w[1]), "{vp:?}");
    assert!(
        ranked[36..]
            .iter()
            .all(|r| r.0.head.is_none() && r.1.is_none())
    );
    let all = text(&screen(&app, UNICODE, 100, 30));
    assert!(all.contains("by vector_p (lowest first)"), "{all}");
}

#[test]
fn ranked_filter_narrows_the_rows_and_enter_opens_the_selected_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('5'));
    app.handle(key('/'));
    assert_eq!(app.overlay, mpscope::tui::app::Overlay::Filter);
    for c in "L2 k".chars() {
        app.search_input(SearchKey::Char(c));
    }
    let s = screen(&app, UNICODE, 80, 24);
    let rows = ranked_rows(&s);
    assert_eq!(
        rows.len(),
        3,
        "L2 k: the whole matrix and 2 heads\n{}",
        text(&s)
    );
    assert!(rows.iter().all(|r| r.1 == "L2" && r.2 == "k"));
    assert!(text(&s).contains("/ L2 k_"), "{}", text(&s));
    app.search_input(SearchKey::Enter);
    assert_eq!(app.overlay, mpscope::tui::app::Overlay::None);
    // The cursor went to the first match; j moves it down one.
    app.handle(key('j'));
    let target = app.ranked()[1].0;
    assert_eq!(app.focus(), Some(target));
    let s = screen(&app, UNICODE, 80, 24);
    assert!(ranked_rows(&s)[1].0, "{}", text(&s));
    let enter = action(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)).unwrap();
    app.handle(enter);
    assert_eq!(app.view, View::Spectrum);
    assert_eq!(app.focus(), Some(target));
    let name = app.blocks[&target].name.clone();
    assert!(text(&screen(&app, UNICODE, 80, 24)).contains(&format!("{name} · ")));
    // The filter is kept across views; / edits it, Esc clears it.
    app.handle(key('5'));
    assert_eq!(app.ranked().len(), 3);
    app.handle(key('/'));
    app.search_input(SearchKey::Cancel);
    assert_eq!(app.ranked().len(), 57);
    app.handle(key('/'));
    for c in "h3".chars() {
        app.search_input(SearchKey::Char(c));
    }
    let rows = ranked_rows(&screen(&app, UNICODE, 80, 24));
    // Head 3 exists for q and o (4 heads), not for k and v (2 kv heads).
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r.3 == "h3" && (r.2 == "q" || r.2 == "o"))
    );
    app.search_input(SearchKey::Cancel);
    assert!(app.filter.is_empty());
    assert_eq!(app.ranked().len(), 57);
}

#[test]
fn ranked_view_fills_in_live_and_keeps_the_cursor_on_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, results) = fresh_app(dir.path(), false);
    app.handle(key('5'));
    let s = screen(&app, UNICODE, 80, 24);
    assert!(
        text(&s).contains("computing… 0 of 57 blocks done"),
        "{}",
        text(&s)
    );
    // Layers 2 and 1 arrive first (the spiked layer 0 last).
    let (late, early): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|(id, _)| id.layer == Some(0));
    for (id, r) in early {
        app.add_result(id, r);
    }
    app.handle(key('g'));
    app.handle(key('j'));
    let cursor = app.focus().unwrap();
    let before = ranked_rows(&screen(&app, UNICODE, 80, 24));
    assert!(before[1].0, "cursor on the second row");
    for (id, r) in late {
        app.add_result(id, r);
    }
    assert_eq!(app.focus(), Some(cursor), "the cursor stays on its block");
    let ranked = app.ranked();
    let at = ranked.iter().position(|r| r.0 == cursor).unwrap();
    assert!(at > 1, "layer 0's blocks rank above it now");
    let after = ranked_rows(&screen(&app, UNICODE, 80, 24));
    let row = after.iter().find(|r| r.0).expect("cursor row drawn");
    let b = &app.blocks[&cursor];
    assert_eq!(row.1, format!("L{}", b.id.layer.unwrap()));
    assert_eq!(row.2, b.id.proj.proj_label());
}

#[test]
fn every_label_follows_the_lambda_axis() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('x'));
    let s = screen(&app, UNICODE, 140, 40);
    let all = text(&s);
    for label in ["λ = ν²/q (", "edges λ±", "λ− λ+", "top λ"] {
        assert!(all.contains(label), "{label}:\n{all}");
    }
    for stale in ["edges ν±", "ν− ν+", "top ν", "singular values ν"] {
        assert!(!all.contains(stale), "{stale}:\n{all}");
    }
    // The numbers are λ = ν²/q: the upper edge and the largest value.
    let a = app.analysis(&app.focus().unwrap()).unwrap();
    let (_, hi) = a.law.unwrap().edges_in(mpscope::spectrum::Unit::Eigen);
    let top = a.spectrum.top().powi(2) / a.spectrum.q() as f64;
    let edges = s.iter().find(|l| l.contains("λ− λ+")).unwrap();
    assert!(edges.contains(&fmt_tick(hi)), "{edges}");
    let tops = s.iter().find(|l| l.contains("top λ")).unwrap();
    assert!(tops.contains(&fmt_tick(top)), "{tops}");
}

#[test]
fn stats_values_are_whole_or_absent_down_to_60x16() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    for (moves, unit) in [("", 'ν'), ("l", 'ν'), ("x", 'λ'), ("ll", 'λ')] {
        for c in moves.chars() {
            app.handle(key(c));
        }
        let a = app.analysis(&app.focus().unwrap()).unwrap().clone();
        let u = if unit == 'ν' {
            mpscope::spectrum::Unit::Singular
        } else {
            mpscope::spectrum::Unit::Eigen
        };
        let (lo, hi) = a.law.unwrap().edges_in(u);
        let expected = [
            ("ks", format!("{:.4}", a.scores.ks)),
            ("σ", format!("{:.4} ({})", a.sigma.value, a.sigma.mode)),
            ("above", a.scores.above.to_string()),
            ("below", a.scores.below.to_string()),
            ("edge", format!("{:.3}", a.scores.edge_ratio)),
            ("outlier", format!("{:.4}", a.scores.outlier_mass)),
            (
                &format!("{unit}− {unit}+"),
                format!("{} {}", fmt_tick(lo), fmt_tick(hi)),
            ),
        ];
        for (w, h) in [(60, 16), (64, 18), (80, 24)] {
            let s = screen(&app, UNICODE, w, h);
            // The stats panel is the right part of the spectrum frame; a stacked value sits
            // on the line under its key.
            let panel: Vec<String> = s
                .iter()
                .map(|l| {
                    let c: Vec<char> = l.chars().collect();
                    // As drawn: min(26, half the frame's inside) plus the right border.
                    let stats_w = 26.min((w as usize - 19 - 2) / 2) + 1;
                    c[c.len() - stats_w..].iter().collect()
                })
                .collect();
            let joined = panel.join("\n");
            let mut shown = 0;
            for (k, v) in &expected {
                // Below the header and the frame's top border.
                let Some(y) = panel.iter().skip(3).position(|l| {
                    l.trim_start_matches(['│', ' '])
                        .starts_with(&format!("{k} "))
                        || l.trim_matches(['│', ' ']) == *k
                }) else {
                    continue;
                };
                let y = y + 3;
                shown += 1;
                let here = format!(
                    "{}\n{}",
                    panel[y],
                    panel.get(y + 1).cloned().unwrap_or_default()
                );
                assert!(
                    here.contains(v.as_str()),
                    "{k} at {w}x{h} ({moves}): {v:?} not whole in\n{joined}"
                );
            }
            assert!(shown >= 5, "{w}x{h}: the important rows stay:\n{joined}");
            // ks, above and below outrank the rest.
            for k in ["ks ", "above ", "below "] {
                assert!(joined.contains(k), "{k} at {w}x{h}:\n{joined}");
            }
        }
    }
}

#[test]
fn heatmap_cells_stretch_and_the_legend_gives_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    app.handle(key('4'));
    let id = |l, h| Target::Block(MatrixId::whole(Some(l), Proj::Q).with_head(h));
    for (w, h) in [(80, 24), (120, 30)] {
        let (lines, hits) = frame(&app, w, h);
        // Main area: w − 19 (layer list) − 2 (border) − 4 (layer labels), shared by 4 heads.
        let share = (w - 19 - 2 - 4) / 4;
        for head in 0..4 {
            let cell = hits.area_of(id(1, head)).unwrap();
            assert_eq!(cell.width, share, "{w}x{h}");
        }
        assert!(share > 4, "wider than the old fixed 4 columns");
        let max = app.max_score(Some(Proj::Q), ScoreKind::Ks);
        let all = text(&lines);
        assert!(all.contains("ks close to MP 0.000 "), "{all}");
        assert!(all.contains(&format!("{max:.3} far")), "{all}");
    }
    // vector_p: close to MP is 0.5, far is 0.
    score_by(&mut app, ScoreKind::VectorP);
    let all = text(&frame(&app, 100, 30).0);
    assert!(all.contains("vector_p close to MP 0.500"), "{all}");
    assert!(all.contains(" 0.000 far"), "{all}");
}

#[test]
fn default_bins_follow_the_number_of_values_and_plus_minus_override() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    let bins = |app: &App| -> usize {
        let all = text(&screen(app, UNICODE, 100, 30));
        let at = all.find(" bins)").unwrap_or_else(|| panic!("{all}"));
        let open = all[..at].rfind('(').unwrap();
        all[open + 1..at].parse().unwrap()
    };
    // A whole 128×128 q has 128 values, a head of it 32: fewer values, fewer bins.
    let whole = bins(&app);
    app.handle(key('l'));
    let head = bins(&app);
    assert!(head < whole, "head {head} vs whole {whole}");
    assert!(
        (8..=12).contains(&head),
        "32 values: about n^(1/3) bins per range, got {head}"
    );
    // + and - start from what is shown.
    app.handle(key('+'));
    assert_eq!(bins(&app), head + (head / 4).max(1));
    app.handle(key('-'));
    app.handle(key('-'));
    assert!(bins(&app) < head);
}

#[test]
fn footer_and_layer_list_say_what_they_show_at_every_width() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_for(dir.path());
    for (w, h) in [(60, 16), (80, 24), (120, 30)] {
        let s = screen(&app, UNICODE, w, h);
        let footer = &s[h as usize - 1];
        assert!(
            footer.contains("q quit") && footer.contains("? help"),
            "{footer}"
        );
        assert!(footer.contains("blocks in"), "{footer}");
        assert!(
            footer.find("q quit") < footer.find("? help"),
            "help comes last: {footer}"
        );
        // The list's number column is the focused projection's score, named under it.
        assert!(
            s[h as usize - 2].contains("▲ q ks ╯"),
            "{}",
            s[h as usize - 2]
        );
    }
    let tab = action(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)).unwrap();
    app.handle(tab);
    score_by(&mut app, ScoreKind::VectorP);
    let s = screen(&app, UNICODE, 80, 24);
    assert!(s[22].contains("▲ k vec_p ╯"), "{}", s[22]);
}
