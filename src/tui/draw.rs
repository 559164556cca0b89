//! Drawing the explorer: header, layer list, the four views, footer and overlays.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block as Frame_, Borders, Clear, Paragraph};

use crate::anatomy::{MatrixId, Proj};
use crate::spectrum::{Analysis, HistogramRange, MpLaw, Unit, Warning, freedman_diaconis_bins};
use crate::units;

use super::app::{App, Overlay, ScoreKind, View};
use super::heat::Heatmap;
use super::hits::{Hits, Target};
use super::keys::{footer_hints, help_rows};
use super::lines::{Curve, LineChart, ticks};
use super::nav::Row;
use super::plot::{HistPlot, fmt_tick};
use super::theme::Theme;

/// Smallest terminal the explorer draws in.
pub const MIN_SIZE: (u16, u16) = (60, 16);
/// Width of the layer list.
const LIST_W: u16 = 19;

/// Draws the whole screen; returns where its clickable parts went.
pub fn draw(f: &mut Frame<'_>, app: &App, t: &Theme) -> Hits {
    let mut hits = Hits::default();
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "terminal too small: {}x{}, need at least {}x{} (q quits)",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        f.render_widget(Paragraph::new(msg).style(t.warn()), area);
        return hits;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, t, header, &mut hits);
    // The ranked list is the whole model already: it takes the full width.
    let main = if app.view == View::Ranked {
        body
    } else {
        let [list, main] =
            Layout::horizontal([Constraint::Length(LIST_W), Constraint::Min(0)]).areas(body);
        draw_layer_list(f, app, t, list, &mut hits);
        main
    };
    match app.view {
        View::Spectrum => draw_spectrum(f, app, t, main),
        View::Heads => draw_heads(f, app, t, main, &mut hits),
        View::Depth => draw_depth(f, app, t, main),
        View::Heatmap => draw_heatmap(f, app, t, main, &mut hits),
        View::Ranked => draw_ranked(f, app, t, main, &mut hits),
    }
    draw_footer(f, app, t, footer);
    match &app.overlay {
        // The filter is typed on the ranked view's own first line.
        Overlay::None | Overlay::Filter => {}
        // An overlay covers the screen: nothing under it takes clicks.
        Overlay::Help => {
            draw_help(f, app, t, area);
            hits = Hits::default();
        }
        Overlay::Search { query, selected } => {
            draw_search(f, app, t, area, query, *selected);
            hits = Hits::default();
        }
    }
    hits
}

/// Draws a bordered frame titled `title` and returns the area inside it.
fn framed(f: &mut Frame<'_>, title: &str, t: &Theme, area: Rect) -> Rect {
    let frame = bordered(Line::from(txt(title, t)), t);
    let inner = frame.inner(area);
    f.render_widget(frame, area);
    inner
}

/// Says, inside a view, that the focused projection has no head blocks.
fn no_heads(f: &mut Frame<'_>, t: &Theme, inner: Rect) {
    f.render_widget(
        Paragraph::new(txt(
            "no heads here (MLP, other, or head count unknown: pass --num-heads)",
            t,
        ))
        .style(t.dim())
        .wrap(ratatui::widgets::Wrap { trim: true }),
        inner,
    );
}

fn bordered<'a>(title: impl Into<Line<'a>>, t: &Theme) -> Frame_<'a> {
    Frame_::default()
        .borders(Borders::ALL)
        .border_set(t.border())
        .border_style(t.dim())
        .title(title)
}

/// Replaces non-ASCII characters when the theme is ASCII-only.
fn txt(s: &str, t: &Theme) -> String {
    if !t.ascii {
        return s.to_string();
    }
    s.replace('±', "+-")
        .replace('Δ', "d")
        .replace('α', "alpha")
        .replace('≥', ">=")
        .replace('≈', "~")
        .replace('→', "->")
        .chars()
        .map(|c| match c {
            '×' => 'x',
            '·' | '•' => '|',
            'ν' => 'v',
            'λ' => 'l',
            'σ' => 's',
            '−' | '–' | '—' => '-',
            '…' => '~',
            '²' => '2',
            '₁' => '1',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .collect()
}

fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else if w <= 1 {
        s.chars().take(w).collect()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(w - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("~{tail}")
    }
}

fn focus_name(app: &App) -> String {
    app.focus()
        .and_then(|id| app.blocks.get(&id))
        .map(|b| b.name.clone())
        .unwrap_or_else(|| "-".into())
}

fn draw_header(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, hits: &mut Hits) {
    let right = format!(
        "σ {} · {} axis ",
        app.sigma_mode,
        match app.unit {
            Unit::Singular => "ν",
            Unit::Eigen => "λ=ν²/q",
        }
    );
    let left = format!(" mpscope · {} · {} ", app.title, app.model_line);
    let w = area.width as usize;
    let left = truncate(&left, w.saturating_sub(right.chars().count() + 1));
    let pad = w.saturating_sub(left.chars().count() + right.chars().count());
    let line1 = Line::from(vec![
        Span::styled(txt(&left, t), t.title()),
        Span::raw(" ".repeat(pad)),
        Span::styled(txt(&right, t), t.dim()),
    ]);
    let mut tabs: Vec<Span> = vec![Span::raw(" ")];
    let mut x = area.x + 1;
    for v in View::ALL {
        let style = if v == app.view { t.selected() } else { t.dim() };
        let label = format!(" {} ", v.label());
        let w = label.chars().count() as u16;
        hits.add(
            Rect::new(x, area.y + 1, w, 1).intersection(area),
            Target::View(v),
        );
        x += w + 1;
        tabs.push(Span::styled(label, style));
        tabs.push(Span::raw(" "));
    }
    let focus = format!("  {} · score {}", focus_name(app), app.score_name());
    if (x - area.x) as usize + focus.chars().count() <= area.width as usize {
        tabs.push(Span::styled(txt(&focus, t), t.title()));
    }
    f.render_widget(Paragraph::new(vec![line1, Line::from(tabs)]), area);
}

/// Score glyph for the layer list: a bar by farness.
fn score_glyph(app: &App, t: &Theme, layer: usize, proj: Proj, max: f64) -> (char, Style) {
    match app.layer_score(layer, proj, app.score) {
        Some(v) => {
            let far = app.farness(v, max);
            let eighths = 1 + (far * 7.0).round() as usize;
            (t.bar(eighths), t.heat_text(far))
        }
        None => (if t.ascii { '?' } else { '·' }, t.dim()),
    }
}

fn draw_layer_list(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, hits: &mut Hits) {
    // The number column is the focused projection's score: say so under it.
    let cur = app
        .nav
        .projs()
        .get(app.nav.proj)
        .map(|(p, _)| p.proj_label())
        .unwrap_or("q");
    let label = format!(" {} {} {} ", t.edge_mark(), cur, app.score_short());
    let block = bordered(Line::from(txt(" layers q k v ", t)), t)
        .title_bottom(Line::from(txt(&label, t)).right_aligned());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    if h == 0 {
        return;
    }
    let first = app
        .nav
        .row
        .saturating_sub(h / 2)
        .min(app.nav.rows.len().saturating_sub(h));
    let max: Vec<f64> = [Proj::Q, Proj::K, Proj::V]
        .iter()
        .map(|p| app.max_score(Some(*p), app.score))
        .collect();
    let mut lines = Vec::new();
    for (i, row) in app.nav.rows.iter().enumerate().skip(first).take(h) {
        let selected = i == app.nav.row;
        let y = inner.y + (i - first) as u16;
        hits.add(Rect::new(inner.x, y, inner.width, 1), Target::Row(i));
        let mut spans: Vec<Span> = Vec::new();
        match row {
            Row::Layer { layer, projs } => {
                let label = format!("{layer:>4} ");
                let glyphs_x = inner.x + label.chars().count() as u16;
                spans.push(Span::raw(label));
                for (k, p) in [Proj::Q, Proj::K, Proj::V].iter().enumerate() {
                    if projs.iter().any(|(q, _)| q == p) {
                        let (c, s) = score_glyph(app, t, *layer, *p, max[k]);
                        spans.push(Span::styled(format!("{c} "), s));
                        hits.add(
                            Rect::new(glyphs_x + 2 * k as u16, y, 2, 1).intersection(inner),
                            Target::RowProj(i, *p),
                        );
                    } else {
                        spans.push(Span::raw("  "));
                    }
                }
                let cur = app
                    .nav
                    .projs()
                    .get(app.nav.proj)
                    .map(|(p, _)| *p)
                    .unwrap_or(Proj::Q);
                let v = app
                    .layer_score(*layer, cur, app.score)
                    .map(|v| format!("{:>6}", fmt_score(v)))
                    .unwrap_or_else(|| "      ".into());
                spans.push(Span::styled(v, t.dim()));
            }
            Row::Loose { name, .. } => {
                let short = name.strip_suffix(".weight").unwrap_or(name);
                spans.push(Span::raw(format!(
                    " {}",
                    truncate(short, inner.width as usize - 1)
                )));
            }
        }
        let mut line = Line::from(spans);
        if selected {
            line = line.style(t.selected());
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn fmt_score(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn status_text(app: &App, id: &MatrixId) -> Option<String> {
    match app.results.get(id) {
        None => Some(if app.blocks.contains_key(id) {
            "computing…".into()
        } else {
            "not computed in this scan".into()
        }),
        Some(Err(e)) => Some(format!("error: {e}")),
        Some(Ok(_)) => None,
    }
}

fn draw_spectrum(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let Some(id) = app.focus() else {
        f.render_widget(Paragraph::new("no matrices in this checkpoint"), area);
        return;
    };
    let block_info = app.blocks.get(&id);
    // The block's name always; the tensor's when it fits whole.
    let comparison = app.comparison(&id);
    let delta_view = app.delta_view && app.change.is_some();
    let what = if delta_view { "ΔW of " } else { "" };
    // A big block's display-precision preview, until its exact values arrive.
    let preview = app.preview(&id);
    let mark = if preview.is_some() {
        "≈ preview · "
    } else {
        ""
    };
    let title = block_info
        .map(|b| {
            let full = format!(" {mark}{what}{} · {} ", b.name, b.tensor);
            if full.chars().count() + 2 <= area.width as usize {
                full
            } else {
                format!(" {mark}{what}{} ", b.name)
            }
        })
        .unwrap_or_default();
    let frame = bordered(Line::from(txt(&title, t)), t);
    let inner = frame.inner(area);
    f.render_widget(frame, area);
    if let Some(msg) = status_text(app, &id).filter(|_| preview.is_none()) {
        let style = if msg.starts_with("error") {
            t.error()
        } else {
            t.dim()
        };
        f.render_widget(
            Paragraph::new(txt(&msg, t))
                .style(style)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let Some(other) = app.analysis(&id).or(preview) else {
        return;
    };
    // Compare mode: the other model's spectrum over the base's, or (`d`) ΔW's own.
    let a = match (delta_view, comparison) {
        (true, Some(c)) => match &c.delta.analysis {
            Some(d) => d,
            None => {
                let mut msg = "ΔW = 0: this block did not change".to_string();
                if let Some(note) = &c.delta.learned_nothing {
                    msg = format!("{msg} ({note})");
                }
                f.render_widget(
                    Paragraph::new(txt(&msg, t))
                        .style(t.dim())
                        .wrap(ratatui::widgets::Wrap { trim: true }),
                    inner,
                );
                return;
            }
        },
        _ => other,
    };
    let stats_w = 26u16.min(inner.width / 2);
    let [plot_area, stats_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(stats_w)]).areas(inner);
    let stats_area = stats_area.inner(ratatui::layout::Margin::new(1, 0));
    let mut stats = match preview {
        Some(_) => preview_stats(app, a, block_info, t),
        None => stats_lines(app, a, block_info, t),
    };
    if let Some(c) = comparison {
        change_stats(&mut stats, c);
    }
    // Keys as drawn (ASCII spells α out), so that the columns line up.
    for s in &mut stats {
        s.key = txt(&s.key, t);
    }
    let lines: Vec<Line> = fit_stats(stats, stats_area.width as usize, stats_area.height as usize)
        .into_iter()
        .map(|(k, v, warn)| {
            Line::from(vec![
                Span::styled(txt(&k, t), t.dim()),
                Span::styled(txt(&v, t), if warn { t.warn() } else { t.text() }),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), stats_area);
    if app.tail_view {
        draw_tail(f, a, t, plot_area);
        return;
    }
    // Auto: Freedman–Diaconis over the drawn range, at most one bin per column.
    let cols = plot_area.width.max(1) as usize;
    let range = spectrum_histogram(app, a, 1);
    let auto = freedman_diaconis_bins(&in_unit(a, app.unit), range.lo, range.hi, MIN_BINS, cols);
    app.shown_bins.set(auto);
    let bins = app.bins.unwrap_or(auto).clamp(1, cols * 4);
    let hist = spectrum_histogram(app, a, bins);
    let counts: Vec<f64> = hist.counts.iter().map(|&c| c as f64).collect();
    let marks: Vec<f64> = a
        .law
        .map(|l: MpLaw| {
            let (lo, hi) = l.edges_in(app.unit);
            vec![lo, hi]
        })
        .unwrap_or_default();
    let legend_h = 1u16;
    let [legend, plot_rect] =
        Layout::vertical([Constraint::Length(legend_h), Constraint::Min(0)]).areas(plot_area);
    // Legend items, each shown whole or not at all.
    let what = match app.unit {
        Unit::Singular => "singular values ν",
        Unit::Eigen => "λ = ν²/q",
    };
    let (sym, bins) = (unit_symbol(app.unit), hist.counts.len());
    let side = match (app.change.is_some(), delta_view) {
        (false, _) if preview.is_some() => "≈ ",
        (false, _) => "",
        (true, false) => "other ",
        (true, true) => "ΔW ",
    };
    let mut items = vec![
        (
            t.bar(8),
            t.bars(),
            vec![
                format!(" {side}{what} ({bins} bins)"),
                format!(" {side}{sym} ({bins} bins)"),
                format!(" {side}{sym}"),
            ],
        ),
        (t.curve(), t.mp(), vec![" MP".to_string()]),
        (t.edge_mark(), t.mp(), vec![format!(" edges {sym}±")]),
    ];
    let base_shown = comparison.filter(|_| !delta_view);
    if base_shown.is_some() {
        let glyph = if t.color {
            t.bar(8)
        } else if t.ascii {
            ':'
        } else {
            '░'
        };
        items.insert(1, (glyph, t.dim(), vec![" base".to_string()]));
    }
    // Each item's first label that leaves room for the items after it (their shortest).
    let shortest: Vec<usize> = items
        .iter()
        .map(|(_, _, ls)| {
            ls.iter()
                .map(|l| 1 + l.chars().count() + 2)
                .min()
                .unwrap_or(0)
        })
        .collect();
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, (glyph, style, labels)) in items.into_iter().enumerate() {
        let after: usize = shortest[i + 1..].iter().sum();
        let fits = |l: &String, extra: usize| {
            used + 1 + l.chars().count() + extra <= legend.width as usize
        };
        let Some(label) = labels
            .iter()
            .find(|l| fits(l, 2 + after))
            .or_else(|| labels.iter().find(|l| fits(l, 0)))
            .cloned()
        else {
            break;
        };
        used += 1 + label.chars().count() + 2;
        spans.push(Span::styled(glyph.to_string(), style));
        spans.push(Span::raw(txt(&format!("{label}  "), t)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), legend);
    // Another set of values counted in the same bins as the histogram.
    let same_bins = |values: &[f64]| -> Vec<f64> {
        let h = crate::spectrum::Histogram::with_limits(
            values,
            a.law.as_ref(),
            a.spectrum.q(),
            app.unit,
            hist.counts.len(),
            hist.lo,
            hist.hi,
        );
        h.counts.iter().map(|&c| c as f64).collect()
    };
    let shuffled: Vec<f64> = match (&a.spectrum.shuffled, app.show_shuffled) {
        (Some(sh), true) => same_bins(sh),
        _ => Vec::new(),
    };
    let behind: Vec<f64> = base_shown
        .map(|c| same_bins(&c.base.spectrum.values))
        .unwrap_or_default();
    f.render_widget(
        HistPlot {
            counts: &counts,
            curve: &hist.expected,
            overlay: &shuffled,
            behind: &behind,
            x_range: (hist.lo, hist.hi),
            marks: &marks,
            overflow: hist.beyond(),
            compact: false,
            theme: *t,
        },
        plot_rect,
    );
}

/// The ESD's tail on log-log axes: the empirical CCDF of λ = ν² (the share of eigenvalues at
/// or above each one), the fitted power law from xmin, and xmin marked — WeightWatcher's plot.
fn draw_tail(f: &mut Frame<'_>, a: &Analysis, t: &Theme, area: Rect) {
    use crate::spectrum::heavy_tail::EVALS_THRESH;
    let [legend, plot] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut evals: Vec<f64> = a
        .spectrum
        .values
        .iter()
        .map(|v| v * v)
        .filter(|&l| l > EVALS_THRESH)
        .collect();
    evals.sort_by(|x, y| y.total_cmp(x));
    let n = evals.len();
    let fit = a.heavy_tail.fit.as_ref();
    // The longest legend that fits, never a cut one.
    let texts: Vec<String> = match fit {
        Ok(fit) => {
            let (a, x) = (fit.alpha, fmt_tick(fit.xmin));
            vec![
                format!("CCDF of λ = ν², log-log · power law α {a:.2} from λ {x}"),
                format!("log-log CCDF · α {a:.2} from λ {x}"),
                format!("α {a:.2} from λ {x}"),
                format!("α {a:.2}"),
            ]
        }
        Err(why) => vec![
            format!("CCDF of λ = ν², log-log · no power-law fit: {why}"),
            "log-log CCDF · no power-law fit".into(),
            "no fit".into(),
        ],
    };
    let width = legend.width as usize;
    if let Some(text) = texts
        .iter()
        .map(|s| txt(s, t))
        .find(|s| s.chars().count() <= width)
    {
        f.render_widget(Paragraph::new(Span::styled(text, t.dim())), legend);
    }
    if n < 2 {
        return;
    }
    let empirical: Vec<(f64, f64)> = evals
        .iter()
        .enumerate()
        .map(|(i, l)| (l.log10(), ((i + 1) as f64 / n as f64).log10()))
        .collect();
    let (x_lo, x_hi) = (evals[n - 1].log10(), evals[0].log10());
    let y_lo = (1.0 / n as f64).log10();
    let mut curves = vec![Curve {
        marker: 'o',
        color: Color::Cyan,
        points: empirical,
        line: false,
    }];
    if let Ok(fit) = fit {
        let share = fit.n_tail as f64 / n as f64;
        let (a0, a1) = (fit.xmin.log10(), x_hi);
        let points = (0..=48)
            .map(|i| {
                let x = a0 + (a1 - a0) * i as f64 / 48.0;
                let y = share.log10() + (1.0 - fit.alpha) * (x - a0);
                (x, y)
            })
            .filter(|p| p.1 >= y_lo)
            .collect();
        curves.push(Curve {
            marker: '*',
            color: Color::Red,
            points,
            line: true,
        });
    }
    let pad = ((x_hi - x_lo) * 0.03).max(1e-3);
    let (x0, x1) = (x_lo - pad, x_hi + pad);
    f.render_widget(
        LineChart {
            curves: &curves,
            x_bounds: [x0, x1],
            y_bounds: [y_lo - 0.05, 0.05],
            x_labels: ticks(x0, x1, (plot.width as usize / 14).clamp(2, 4), |v| {
                fmt_tick(10f64.powf(v))
            }),
            y_labels: ticks(y_lo, 0.0, 3, |v| fmt_tick(10f64.powf(v))),
            guide: fit.ok().map(|fit| fit.xmin.log10()),
            theme: *t,
        },
        plot,
    );
}

/// Fewest bins the automatic choice gives.
const MIN_BINS: usize = 8;

/// The block's values on the axis in use (ν, or λ = ν²/q).
fn in_unit(a: &Analysis, unit: Unit) -> Vec<f64> {
    let q = a.spectrum.q().max(1) as f64;
    a.spectrum
        .values
        .iter()
        .map(|&nu| match unit {
            Unit::Singular => nu,
            Unit::Eigen => nu * nu / q,
        })
        .collect()
}

/// ν or λ, for labels that follow the axis.
fn unit_symbol(unit: Unit) -> &'static str {
    match unit {
        Unit::Singular => "ν",
        Unit::Eigen => "λ",
    }
}

/// One row of the stats panel: its key, its value as whole parts (never cut inside one),
/// whether it signals structure, and how much it matters (0 = kept longest).
struct Stat {
    key: String,
    parts: Vec<String>,
    warn: bool,
    keep: u8,
    /// A list (the top values): shows as many whole parts as fit on its row.
    list: bool,
}

/// A stats row that is not a list.
fn stat(key: &str, parts: &[String], warn: bool, keep: u8) -> Stat {
    Stat {
        key: key.to_string(),
        parts: parts.to_vec(),
        warn,
        keep,
        list: false,
    }
}

/// Lays the stats out in `width` × `height`: a row fits beside its key, or goes under it
/// (split at its parts), a list shows the parts that fit; when the rows still do not fit, the
/// least important go whole. Returns (key column, value, warn) per line.
fn fit_stats(stats: Vec<Stat>, width: usize, height: usize) -> Vec<(String, String, bool)> {
    let key_w = stats
        .iter()
        .map(|s| s.key.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let len = |s: &str| s.chars().count();
    let layout = |s: &Stat| -> Vec<(String, String, bool)> {
        let joined = s.parts.join(" ");
        if key_w + len(&joined) <= width {
            return vec![(format!("{:<key_w$}", s.key), joined, s.warn)];
        }
        if s.list {
            let mut shown = Vec::new();
            for p in &s.parts {
                let next = shown.iter().map(|x: &&String| len(x) + 1).sum::<usize>() + len(p);
                if key_w + next > width {
                    break;
                }
                shown.push(p);
            }
            if !shown.is_empty() {
                let v: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
                return vec![(format!("{:<key_w$}", s.key), v.join(" "), s.warn)];
            }
        }
        // Stacked: the key, then the parts on lines of their own, indented by one.
        let mut out = vec![(s.key.clone(), String::new(), false)];
        let mut line = String::new();
        for p in &s.parts {
            if !line.is_empty() && 1 + len(&line) + 1 + len(p) > width {
                out.push((" ".into(), std::mem::take(&mut line), s.warn));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(p);
        }
        if !line.is_empty() {
            out.push((" ".into(), line, s.warn));
        }
        out
    };
    let mut kept: Vec<bool> = vec![true; stats.len()];
    let total = |kept: &[bool]| -> usize {
        stats
            .iter()
            .zip(kept)
            .filter(|(_, k)| **k)
            .map(|(s, _)| layout(s).len())
            .sum()
    };
    let mut by_keep: Vec<usize> = (0..stats.len()).collect();
    by_keep.sort_by_key(|&i| std::cmp::Reverse(stats[i].keep));
    for i in by_keep {
        if total(&kept) <= height {
            break;
        }
        kept[i] = false;
    }
    stats
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .flat_map(|(s, _)| layout(s))
        .collect()
}

/// The histogram of the spectrum view: every value, or the MP bulk with some headroom
/// (values beyond are counted at the right edge).
fn spectrum_histogram(app: &App, a: &Analysis, bins: usize) -> crate::spectrum::Histogram {
    let s = &a.spectrum;
    let Some(law) = a.law.filter(|_| !app.full_range) else {
        return s.histogram(a.sigma.value, app.unit, bins, HistogramRange::Full);
    };
    let to_unit = |nu: f64| match app.unit {
        Unit::Singular => nu,
        Unit::Eigen => nu * nu / s.q() as f64,
    };
    let (lo_edge, hi_edge) = law.edges_in(app.unit);
    let top = to_unit(s.top());
    let bottom = to_unit(s.values.last().copied().unwrap_or(0.0));
    let hi = (top * 1.02).min(hi_edge * 1.35).max(hi_edge * 1.05);
    let lo = if lo_edge > 0.25 * hi_edge {
        (bottom.min(lo_edge) * 0.95).max(0.0)
    } else {
        0.0
    };
    crate::spectrum::Histogram::with_limits(&s.values, Some(&law), s.q(), app.unit, bins, lo, hi)
}

/// The change's rows of the stats panel in compare mode, first (they matter most there).
fn change_stats(v: &mut Vec<Stat>, c: &crate::compare::Comparison) {
    let stat = |key: &str, value: String, warn: bool, keep: u8| Stat {
        key: key.to_string(),
        parts: vec![value],
        warn,
        keep,
        list: false,
    };
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:+.3}"));
    let d = &c.delta;
    let mut rows = vec![
        stat("Δrel", format!("{:.4}", d.rel), d.rel > 0.0, 0),
        stat("Δrank", d.rank.to_string(), d.rank > 0, 0),
        stat(
            "Δks",
            d.ks().map_or("-".into(), |k| format!("{k:.4}")),
            d.ks().is_some_and(|k| k > 0.05),
            1,
        ),
        stat("ks sh", opt(c.ks_shift()), false, 2),
        stat("α sh", opt(c.alpha_shift()), false, 2),
        stat(
            "overlap",
            c.subspace_overlap.map_or("-".into(), |o| format!("{o:.3}")),
            c.subspace_overlap.is_some_and(|o| o < 0.9),
            3,
        ),
    ];
    if let Some(note) = &d.learned_nothing {
        rows.insert(
            0,
            Stat {
                parts: note.split(' ').map(str::to_string).collect(),
                ..stat("note", String::new(), true, 0)
            },
        );
    }
    v.splice(0..0, rows);
}

/// The stats beside a preview: what it is, the block, σ and the edges (the scores wait for
/// the exact values).
fn preview_stats(
    app: &App,
    a: &Analysis,
    block: Option<&crate::anatomy::Block>,
    t: &Theme,
) -> Vec<Stat> {
    let mut v = block_stats(app, a, block, t);
    let top = a.spectrum.values.first().copied().unwrap_or(0.0);
    v.insert(
        0,
        stat("preview", &["display".into(), "precision".into()], false, 0),
    );
    v.push(stat("ν₁", &[format!("≈ {top:.4}")], false, 6));
    v.push(stat("exact", &["computing…".into()], false, 1));
    v
}

/// The block's own stats: shape and dtype, σ and its mode, the MP edges.
fn block_stats(
    app: &App,
    a: &Analysis,
    block: Option<&crate::anatomy::Block>,
    t: &Theme,
) -> Vec<Stat> {
    let mut v = Vec::new();
    let shape = units::shape(&[a.spectrum.rows, a.spectrum.cols], t.ascii);
    let dtype = block
        .map(|b| crate::inspect::dtype_label(&b.dtype))
        .unwrap_or_default();
    v.push(stat("shape", &[shape, dtype], false, 8));
    let fit_failed = app.sigma_mode == crate::spectrum::SigmaMode::Fit && a.sigmas.fit_failed;
    let mode = if fit_failed {
        "fit failed: entry".to_string()
    } else {
        app.sigma_mode.to_string()
    };
    v.push(stat(
        "σ",
        &[format!("{:.4}", a.sigma.value), format!("({mode})")],
        fit_failed,
        4,
    ));
    let sym = unit_symbol(app.unit);
    if let Some(l) = a.law {
        let (lo, hi) = l.edges_in(app.unit);
        v.push(stat(
            &format!("{sym}− {sym}+"),
            &[fmt_tick(lo), fmt_tick(hi)],
            false,
            5,
        ));
    }
    v
}

/// The stats panel's rows of a finished block, in display order: [`block_stats`], then every
/// score.
fn stats_lines(
    app: &App,
    a: &Analysis,
    block: Option<&crate::anatomy::Block>,
    t: &Theme,
) -> Vec<Stat> {
    let s = &a.scores;
    let sym = unit_symbol(app.unit);
    let mut v = block_stats(app, a, block, t);
    if s.empty {
        v.push(stat(
            "scores",
            &["empty".into(), "block".into(), "(all zeros)".into()],
            true,
            0,
        ));
        return v;
    }
    v.push(stat("ks", &[format!("{:.4}", s.ks)], s.ks > 0.05, 0));
    v.push(stat("above", &[s.above.to_string()], s.above > 0, 1));
    v.push(stat("below", &[s.below.to_string()], s.below > 0, 2));
    v.push(stat(
        "edge",
        &[format!("{:.3}", s.edge_ratio)],
        s.edge_ratio > 1.1,
        3,
    ));
    v.push(stat(
        "outlier",
        &[format!("{:.4}", s.outlier_mass)],
        s.outlier_mass > 0.01,
        7,
    ));
    v.push(stat(
        "st.rank",
        &[format!("{:.1}", s.stable_rank)],
        false,
        10,
    ));
    match &a.heavy_tail.fit {
        Ok(fit) => {
            let warning = a.heavy_tail.warning();
            let verdict = match warning {
                Some(Warning::OverTrained) => Some("over".to_string()),
                Some(Warning::UnderTrained) => Some("under".to_string()),
                None => None,
            };
            let mut parts = vec![format!("{:.2}", fit.alpha)];
            parts.extend(verdict);
            v.push(stat("α", &parts, warning.is_some(), 3));
            v.push(stat(
                "tail",
                &[fit.n_tail.to_string(), "≥ λ".into(), fmt_tick(fit.xmin)],
                false,
                10,
            ));
        }
        Err(_) => v.push(stat("α", &["-".into(), "(no fit)".into()], false, 3)),
    }
    if let Some(c) = a.control {
        v.push(stat("rand ks", &[format!("{:.4}", c.rand_ks)], false, 7));
        v.push(stat("traps", &[c.traps.to_string()], c.traps > 0, 7));
    }
    v.push(stat(
        "vector_p",
        &[s.vector_p
            .map(|p| format!("{p:.3}"))
            .unwrap_or_else(|| "-".into())],
        s.vector_p.is_some_and(|p| p < 0.2),
        6,
    ));
    let top: Vec<String> = in_unit(a, app.unit)
        .iter()
        .take(5)
        .map(|x| fmt_tick(*x))
        .collect();
    v.push(Stat {
        list: true,
        ..stat(&format!("top {sym}"), &top, false, 9)
    });
    // A spectrum read from a report has no compute time.
    let time = a.spectrum.compute_time;
    v.push(stat(
        "time",
        &[if time.is_zero() {
            "-".into()
        } else {
            format!("{:.1} ms", time.as_secs_f64() * 1e3)
        }],
        false,
        11,
    ));
    v
}

fn draw_heads(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, hits: &mut Hits) {
    let Some(focus) = app.focus() else { return };
    let axis = app.nav.axis();
    let heads = app.nav.head_count();
    let proj = focus.proj;
    let (noun, prefix) = axis.map_or(("heads", "h"), |a| (a.noun(), a.prefix()));
    let title = format!(
        " {noun} of {} · {} (Enter opens) ",
        focus_name_whole(app, focus),
        app.score_name()
    );
    let inner = framed(f, &title, t, area);
    let Some(axis) = axis.filter(|_| heads > 0) else {
        no_heads(f, t, inner);
        return;
    };
    let ids: Vec<MatrixId> = (0..heads).map(|h| axis.member(focus, h)).collect();
    // One x range for every head, so they compare at a glance: every value with `r`, else
    // the MP bulk with some headroom (values beyond are counted in each cell's corner).
    let mut hi = 0.0f64;
    for id in &ids {
        if let Some(a) = app.analysis(id) {
            let top = a.spectrum.top();
            let edge = a.law.map(|l| l.upper_edge()).unwrap_or(0.0);
            let q = a.spectrum.q() as f64;
            let x = if app.full_range || edge <= 0.0 {
                top.max(edge)
            } else {
                (top * 1.02).min(edge * 1.35).max(edge * 1.05)
            };
            hi = hi.max(match app.unit {
                Unit::Singular => x,
                Unit::Eigen => x * x / q,
            });
        }
    }
    let hi = if hi > 0.0 { hi * 1.02 } else { 1.0 };
    let (cols, cell_w, cell_h) = grid_shape(heads, inner.width, inner.height);
    let rows_visible = (inner.height / cell_h).max(1) as usize;
    let focus_head = axis.index(&focus);
    let focus_row = focus_head.unwrap_or(0) / cols;
    let first_row = focus_row.saturating_sub(rows_visible.saturating_sub(1));
    let max = app.max_score(Some(proj), app.score);
    for (h, id) in ids.iter().enumerate() {
        let (r, c) = (h / cols, h % cols);
        if r < first_row || r >= first_row + rows_visible {
            continue;
        }
        let x = inner.x + c as u16 * cell_w;
        let y = inner.y + (r - first_row) as u16 * cell_h;
        let cell = Rect::new(
            x,
            y,
            cell_w.saturating_sub(1),
            cell_h.min(inner.bottom() - y),
        );
        hits.add(cell, Target::Block(*id));
        let focused = focus_head == Some(h);
        let score = app.score_of(id, app.score);
        let label = format!(
            "{prefix}{h:<3}{}",
            score.map(fmt_score).unwrap_or_else(|| "…".into())
        );
        let style = if focused {
            t.selected()
        } else {
            score
                .map(|v| {
                    let far = app.farness(v, max);
                    if far > 0.66 { t.warn() } else { t.text() }
                })
                .unwrap_or(t.dim())
        };
        f.render_widget(
            Paragraph::new(txt(&truncate(&label, cell.width as usize), t)).style(style),
            Rect::new(cell.x, cell.y, cell.width, 1),
        );
        let plot = Rect::new(
            cell.x,
            cell.y + 1,
            cell.width,
            cell.height.saturating_sub(1),
        );
        match app.results.get(id) {
            Some(Ok(a)) => {
                let law = a.law;
                let bins = freedman_diaconis_bins(
                    &in_unit(a, app.unit),
                    0.0,
                    hi,
                    MIN_BINS / 2,
                    plot.width.max(1) as usize,
                );
                let hist = crate::spectrum::Histogram::with_limits(
                    &a.spectrum.values,
                    law.as_ref(),
                    a.spectrum.q(),
                    app.unit,
                    bins,
                    0.0,
                    hi,
                );
                let counts: Vec<f64> = hist.counts.iter().map(|&c| c as f64).collect();
                f.render_widget(
                    HistPlot {
                        counts: &counts,
                        curve: &hist.expected,
                        overlay: &[],
                        behind: &[],
                        x_range: (hist.lo, hist.hi),
                        marks: &[],
                        overflow: hist.beyond(),
                        compact: true,
                        theme: *t,
                    },
                    plot,
                );
            }
            Some(Err(_)) => f.render_widget(Paragraph::new("error").style(t.error()), plot),
            None => f.render_widget(Paragraph::new(txt("…", t)).style(t.dim()), plot),
        }
    }
}

/// Columns, cell width and cell height for `heads` small multiples in a `w` × `h` area: every
/// head on screen when they fit at 12×5 or more, cells about 2.5 times wider than tall (as a
/// terminal cell is about twice as tall as wide); otherwise 14-wide cells, scrolled to focus.
pub fn grid_shape(heads: usize, w: u16, h: u16) -> (usize, u16, u16) {
    let mut best: Option<(f64, usize, u16, u16)> = None;
    for cols in 1..=heads.max(1) {
        let rows = heads.max(1).div_ceil(cols) as u16;
        let (cw, ch) = (w / cols as u16, h / rows);
        if cw < 12 || ch < 5 {
            continue;
        }
        let ch = ch.min(cw);
        let badness = ((cw as f64 / ch as f64) / 2.5).ln().abs();
        if best.is_none_or(|b| badness < b.0) {
            best = Some((badness, cols, cw, ch));
        }
    }
    match best {
        Some((_, cols, cw, ch)) => (cols, cw, ch),
        None => {
            let cw = 14u16.max(w / 8).min(w.max(1));
            (((w / cw).max(1)) as usize, cw, 5)
        }
    }
}

/// The name of the matrix whose heads (or experts) the grid shows: "L3 q", or "L3 gate" for
/// routed experts (there is no block of all experts).
fn focus_name_whole(app: &App, id: MatrixId) -> String {
    if id.expert.is_some() {
        return match id.layer {
            Some(l) => format!("L{l} {}", id.proj),
            None => id.proj.to_string(),
        };
    }
    app.blocks
        .get(&MatrixId { head: None, ..id })
        .map(|b| b.name.clone())
        .unwrap_or_else(|| "-".into())
}

fn draw_depth(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let kind = app.score;
    // In compare mode every score below is the change score (see `App::score_of`).
    let compare = app.change.is_some();
    let title = format!(
        " depth profile · mean head {} per layer (s: score) ",
        app.score_name()
    );
    let inner = framed(f, &title, t, area);
    let n = layer_count(app);
    let colors = [Color::Cyan, Color::Yellow, Color::Magenta, Color::Green];
    // q, k and v, plus the focused projection when it is another one (o, an MLP, the routed
    // experts: the mean over them), drawn with its label's first letter.
    let mut lines = vec![(Proj::Q, 'q'), (Proj::K, 'k'), (Proj::V, 'v')];
    let extra = app
        .focus()
        .filter(|id| id.layer.is_some() && !matches!(id.proj, Proj::Q | Proj::K | Proj::V))
        .map(|id| id.proj);
    if let Some(p) = extra {
        lines.push((p, p.proj_label().chars().next().unwrap_or('*')));
    }
    let curves: Vec<Curve> = lines
        .iter()
        .zip(colors)
        .map(|((p, m), color)| Curve {
            marker: *m,
            color,
            points: (0..n)
                .filter_map(|l| {
                    app.mean_head_score(l, *p, kind)
                        .or_else(|| app.layer_score(l, *p, kind))
                        .filter(|v| v.is_finite())
                        .map(|v| (l as f64, v))
                })
                .collect(),
            line: true,
        })
        .collect();
    let [legend, plot] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let mut spans = vec![Span::raw(" ")];
    for (c, (p, _)) in curves.iter().zip(&lines) {
        let style = if t.color {
            Style::default().fg(c.color)
        } else {
            t.text()
        };
        // The extra curve says which projection it is: "g=gate".
        let name = if Some(*p) == extra {
            format!("{}={p}", c.marker)
        } else {
            c.marker.to_string()
        };
        let label = if t.ascii || !t.color {
            format!("{name}  ")
        } else {
            format!("⣀⣀ {name}  ")
        };
        spans.push(Span::styled(label, style));
    }
    spans.push(Span::styled(
        match kind {
            _ if compare => "unchanged = 0",
            ScoreKind::VectorP => "random ~ 0.5, learned -> 0",
            ScoreKind::Ks => "random ~ 0, learned -> 1",
            ScoreKind::Alpha => "random > 6, learned 2-6",
            _ => "",
        },
        t.dim(),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), legend);
    let values = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
    let (lo, hi) = match kind {
        ScoreKind::VectorP if !compare => (0.0, 1.0),
        _ => values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        }),
    };
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (
            (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
            hi + pad,
        )
    } else if lo.is_finite() {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    } else {
        (0.0, 1.0)
    };
    // Ticks on whole layers: k intervals of `step` layers, the axis ending at k·step.
    let last = n.saturating_sub(1).max(1);
    let k_max = (plot.width as usize / 10).clamp(1, 6).min(last);
    let (k, step) = (k_max.min(3)..=k_max)
        .map(|k| (k, last.div_ceil(k)))
        .min_by_key(|&(k, step)| (step * k - last, std::cmp::Reverse(k)))
        .unwrap_or((1, last));
    let end = (step * k) as f64;
    f.render_widget(
        LineChart {
            curves: &curves,
            x_bounds: [0.0, end],
            y_bounds: [lo, hi],
            x_labels: ticks(0.0, end, k + 1, |v| format!("L{}", v.round())),
            y_labels: ticks(lo, hi, 3, fmt_tick),
            guide: app.focus().and_then(|id| id.layer).map(|l| l as f64),
            theme: *t,
        },
        plot,
    );
}

/// Number of layer rows to plot (last layer index + 1).
fn layer_count(app: &App) -> usize {
    app.nav
        .rows
        .iter()
        .filter_map(|r| match r {
            Row::Layer { layer, .. } => Some(*layer + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn draw_heatmap(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, hits: &mut Hits) {
    let Some(focus) = app.focus() else { return };
    let proj = focus.proj;
    let axis = app.nav.axis_of(proj);
    let heads = axis.map_or(0, |a| a.len());
    let title = format!(
        " heatmap · layers x {} of {proj} · {} ",
        axis.map_or("heads", |a| a.noun()),
        app.score_name()
    );
    let inner = framed(f, &title, t, area);
    let Some(axis) = axis.filter(|_| heads > 0) else {
        no_heads(f, t, inner);
        return;
    };
    let n = layer_count(app);
    let max = app.max_score(Some(proj), app.score);
    let cells: Vec<Vec<Option<f64>>> = (0..n)
        .map(|l| {
            app.members(l, proj)
                .iter()
                .map(|id| app.score_of(id, app.score).map(|v| app.farness(v, max)))
                .collect()
        })
        .collect();
    let [legend, map] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let ramp: Vec<Span> = (0..10)
        .map(|i| {
            let v = i as f64 / 9.0;
            Span::styled(t.ramp(v).to_string(), t.heat(v))
        })
        .collect();
    let (close, far) = app.ramp_ends(max);
    let mut spans = vec![Span::styled(
        txt(
            &format!(
                " {} {} {} ",
                app.score_name(),
                if app.change.is_some() {
                    "unchanged"
                } else {
                    "close to MP"
                },
                fmt_score(close)
            ),
            t,
        ),
        t.dim(),
    )];
    spans.extend(ramp);
    spans.push(Span::styled(
        txt(
            &format!(
                " {} {}",
                fmt_score(far),
                if app.change.is_some() {
                    "changed"
                } else {
                    "far"
                }
            ),
            t,
        ),
        t.dim(),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), legend);
    let rows = map.height.saturating_sub(1) as usize;
    let layer = focus.layer.unwrap_or(0);
    let first_row = layer
        .saturating_sub(rows.saturating_sub(1) / 2)
        .min(n.saturating_sub(rows));
    let focus_col = axis.index(&focus).unwrap_or(0);
    let heatmap = Heatmap {
        first_col: super::heat::first_col(heads, map.width, focus_col),
        cells: &cells,
        focus: focus
            .layer
            .map(|l| (l, axis.index(&focus).unwrap_or(usize::MAX))),
        first_row,
        theme: *t,
    };
    for (layer, head, cell) in heatmap.cell_areas(map) {
        hits.add(
            cell,
            Target::Block(axis.member(MatrixId::whole(Some(layer), proj), head)),
        );
    }
    f.render_widget(heatmap, map);
}

fn draw_footer(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let p = app.progress;
    let right = if p.finished() {
        format!(
            " {} blocks in {:.1}s{} ",
            p.total,
            p.elapsed.as_secs_f64(),
            if p.failed > 0 {
                format!(", {} failed", p.failed)
            } else {
                String::new()
            }
        )
    } else {
        let eta = p
            .eta
            .map(|e| format!(" ETA {:.0}s", e.as_secs_f64().ceil()))
            .unwrap_or_default();
        format!(" {}/{}{} ", p.done, p.total, eta)
    };
    let gauge_w = if p.finished() { 0 } else { 10usize };
    let w = area.width as usize;
    let room = w.saturating_sub(right.len() + gauge_w + 1);
    // The key first: a narrow footer cuts the end of the line.
    let stale = app
        .stale
        .as_ref()
        .map(|what| format!("o reopen · changed on disk: {what}"));
    let left = app
        .message
        .clone()
        .or(stale)
        .unwrap_or_else(|| footer_hints(room));
    let left: String = left.chars().take(room).collect();
    let mut spans = vec![Span::styled(
        txt(&left, t),
        if app.message.is_some() || app.stale.is_some() {
            t.warn()
        } else {
            t.dim()
        },
    )];
    let pad = w.saturating_sub(left.chars().count() + right.len() + gauge_w);
    spans.push(Span::raw(" ".repeat(pad)));
    if gauge_w > 0 {
        let filled = (p.done * gauge_w).checked_div(p.total).unwrap_or(gauge_w);
        let (on, off) = if t.ascii { ('#', '.') } else { ('█', '░') };
        let bar: String = (0..gauge_w)
            .map(|i| if i < filled { on } else { off })
            .collect();
        spans.push(Span::styled(bar, t.bars()));
    }
    spans.push(Span::styled(right, t.dim()));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn draw_help(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let rows = help_rows();
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines: Vec<Line> = rows
        .into_iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}"), t.title()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " Far from MP = learned structure; on the curve = like its random init.",
        t.dim(),
    )));
    // Too tall for the terminal: j/k scroll it, and the title says so.
    let room = area.height.saturating_sub(2) as usize;
    let scroll = app.help_scroll.min(lines.len().saturating_sub(room));
    let title = if lines.len() > room {
        " keys (j/k scroll, Esc closes) "
    } else {
        " keys (Esc closes) "
    };
    let h = lines.len().min(room) as u16 + 2;
    let rect = centered(area, 76, h);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(bordered(Line::from(title), t)),
        rect,
    );
}

fn draw_search(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, query: &str, selected: usize) {
    let found = app.search(query);
    let h = (area.height - 4).min(found.len() as u16 + 3).max(4);
    let rect = centered(area, area.width.saturating_sub(8).min(90), h);
    f.render_widget(Clear, rect);
    let block = bordered(Line::from(" jump to tensor (Enter jumps, Esc cancels) "), t);
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let mut lines = vec![Line::from(vec![
        Span::styled("/ ", t.title()),
        Span::raw(query.to_string()),
        Span::styled("_", t.dim()),
    ])];
    let room = inner.height.saturating_sub(1) as usize;
    let sel = selected.min(found.len().saturating_sub(1));
    let first = sel.saturating_sub(room.saturating_sub(1));
    for (i, (name, _)) in found.iter().enumerate().skip(first).take(room) {
        let style = if i == sel { t.selected() } else { t.text() };
        lines.push(Line::from(Span::styled(
            truncate(name, inner.width as usize),
            style,
        )));
    }
    if found.is_empty() {
        lines.push(Line::from(Span::styled("no match", t.dim())));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// The ranked view: every computed block in one list, strangest first, with a spark of its
/// histogram; the focused block is the cursor.
fn draw_ranked(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect, hits: &mut Hits) {
    let rows = app.ranked();
    let order = if app.low_is_far() {
        "lowest first"
    } else {
        "highest first"
    };
    let n = rows.len();
    let score = app.score_name();
    let title = [
        format!(" ranked · {n} blocks by {score} ({order}) · / filter · Enter opens "),
        format!(" ranked · {n} blocks by {score} ({order}) "),
        format!(" {n} by {score} "),
    ]
    .into_iter()
    .find(|s| s.chars().count() + 2 <= area.width as usize)
    .unwrap_or_default();
    let inner = framed(f, &title, t, area);
    let typing = app.overlay == Overlay::Filter;
    let table_area = if typing || !app.filter.is_empty() {
        let [line, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let mut spans = vec![Span::styled("/ ", t.title()), Span::raw(app.filter.clone())];
        if typing {
            spans.push(Span::styled("_", t.dim()));
            let used = app.filter.chars().count() + 3;
            if let Some(hint) = [
                "  q L3 h7 whole, or part of a name · Enter keeps, Esc clears",
                "  q L3 h7 · Enter keeps, Esc clears",
            ]
            .into_iter()
            .find(|h| used + h.chars().count() <= line.width as usize)
            {
                spans.push(Span::styled(txt(hint, t), t.dim()));
            }
        }
        f.render_widget(Paragraph::new(Line::from(spans)), line);
        rest
    } else {
        inner
    };
    if rows.is_empty() {
        let msg = if !app.filter.is_empty() {
            format!("no computed block matches '{}'", app.filter)
        } else {
            format!(
                "computing… {} of {} blocks done",
                app.progress.done, app.progress.total
            )
        };
        f.render_widget(Paragraph::new(txt(&msg, t)).style(t.dim()), table_area);
        return;
    }
    let cursor = app.ranked_index(&rows);
    let visible = table_area.height.saturating_sub(1) as usize;
    let first = cursor
        .unwrap_or(0)
        .saturating_sub(visible.saturating_sub(1) / 2)
        .min(rows.len().saturating_sub(visible));
    let rank_w = rows.len().to_string().len().max(1) as u16;
    let names: Vec<String> = rows
        .iter()
        .skip(first)
        .take(visible)
        .map(|(id, _)| proj_cell(app, *id))
        .collect();
    let marker_w = 2;
    let fixed = marker_w + rank_w + 1 + 5 + 1 + 4 + 1 + 9 + 1 + 7 + 1;
    let name_w = names
        .iter()
        .map(|n| n.chars().count() as u16)
        .max()
        .unwrap_or(4)
        .clamp(4, 26)
        .min(table_area.width.saturating_sub(fixed + 8).max(4));
    let spark_w = table_area.width.saturating_sub(fixed + name_w + 1).min(32);
    let max = app.max_score(None, app.score);
    let body: Vec<ratatui::widgets::Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .zip(names)
        .map(|((i, (id, v)), name)| {
            let y = table_area.y + 1 + (i - first) as u16;
            hits.add(
                Rect::new(table_area.x, y, table_area.width, 1),
                Target::Block(*id),
            );
            let name = truncate(&name, name_w as usize);
            ranked_row(app, t, i, *id, *v, max, spark_w as usize, name)
        })
        .collect();
    let header = ratatui::widgets::Row::new(vec![
        "#".to_string(),
        "layer".into(),
        "proj".into(),
        "head".into(),
        "shape".into(),
        txt(app.score_short(), t),
        if spark_w >= 8 {
            "histogram".into()
        } else {
            String::new()
        },
    ])
    .style(t.dim());
    let widths = [
        Constraint::Length(rank_w),
        Constraint::Length(5),
        Constraint::Length(name_w),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(spark_w),
    ];
    let table = ratatui::widgets::Table::new(body, widths)
        .header(header)
        .row_highlight_style(t.selected())
        .highlight_symbol(if t.ascii { "> " } else { "▶ " })
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    let mut state = ratatui::widgets::TableState::new()
        .with_offset(0)
        .with_selected(cursor.map(|c| c - first));
    f.render_stateful_widget(table, table_area, &mut state);
}

/// The projection cell of a ranked row: q, k, … or, outside the layers, the tensor's name.
fn proj_cell(app: &App, id: MatrixId) -> String {
    match (id.layer, app.blocks.get(&id)) {
        (None, Some(b)) => b.tensor.trim_end_matches(".weight").to_string(),
        _ => id.proj.proj_label().to_string(),
    }
}

/// One row of the ranked table.
#[allow(clippy::too_many_arguments)]
fn ranked_row(
    app: &App,
    t: &Theme,
    i: usize,
    id: MatrixId,
    v: Option<f64>,
    max: f64,
    spark_w: usize,
    proj: String,
) -> ratatui::widgets::Row<'static> {
    let block = app.blocks.get(&id);
    let layer = id
        .layer
        .map(|l| format!("L{l}"))
        .unwrap_or_else(|| "-".into());
    let head = match (id.head, id.expert) {
        (Some(h), _) => format!("h{h}"),
        (None, Some(e)) => format!("e{e}"),
        (None, None) => "-".into(),
    };
    let shape = block
        .map(|b| units::shape(&[b.rows, b.cols], t.ascii))
        .unwrap_or_default();
    let a = app.analysis(&id);
    let (score, style) = match (v, a) {
        (Some(v), _) => (fmt_score(v), t.heat_text(app.farness(v, max))),
        (None, None) => ("error".into(), t.error()),
        (None, Some(_)) => ("-".into(), t.dim()),
    };
    let spark = a.map(|a| spark(a, app, t, spark_w)).unwrap_or_default();
    ratatui::widgets::Row::new(vec![
        ratatui::widgets::Cell::from(format!("{}", i + 1)).style(t.dim()),
        layer.into(),
        proj.into(),
        head.into(),
        shape.into(),
        ratatui::widgets::Cell::from(score).style(style),
        ratatui::widgets::Cell::from(spark).style(t.bars()),
    ])
}

/// A one-line histogram of every value, `w` columns wide, in bar glyphs (Freedman–Diaconis
/// bins, each drawn over the columns it spans).
fn spark(a: &Analysis, app: &App, t: &Theme, w: usize) -> String {
    if w == 0 {
        return String::new();
    }
    let probe = a
        .spectrum
        .histogram(a.sigma.value, app.unit, 1, HistogramRange::Full);
    let bins = freedman_diaconis_bins(&in_unit(a, app.unit), probe.lo, probe.hi, MIN_BINS, w);
    let h = a
        .spectrum
        .histogram(a.sigma.value, app.unit, bins, HistogramRange::Full);
    let top = h.counts.iter().copied().max().unwrap_or(0).max(1);
    (0..w)
        .map(|c| t.bar((h.counts[c * bins / w] * 8).div_ceil(top)))
        .collect()
}
