//! Line and point charts (the depth profile, the log-log tail view) on ratatui's `Chart`.
//!
//! With colour and Unicode the curves are braille lines in their own colours. Without colour,
//! or in ASCII mode, braille lines could not be told apart, so every curve is drawn as dot
//! markers that are then replaced by the curve's own letter (q, k, v, ...); in ASCII mode the
//! axes' box-drawing characters become `|`, `-` and `+`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

use super::theme::Theme;

/// One curve: its points, how it is drawn, and its letter when drawn without colour.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Letter standing for the curve in ASCII / no-colour mode (e.g. 'q').
    pub marker: char,
    /// Colour when colour is on (also tells the curves apart internally).
    pub color: Color,
    /// Points (x, y), finite.
    pub points: Vec<(f64, f64)>,
    /// Joined by a line (else scattered points).
    pub line: bool,
}

/// Curves over shared axes, with tick labels and an optional vertical guide.
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    /// The curves, drawn in order (later over earlier).
    pub curves: &'a [Curve],
    /// x range.
    pub x_bounds: [f64; 2],
    /// y range.
    pub y_bounds: [f64; 2],
    /// Tick labels under the x axis, spread evenly.
    pub x_labels: Vec<String>,
    /// Tick labels beside the y axis, bottom to top.
    pub y_labels: Vec<String>,
    /// An x position to mark with a vertical guide (the focused layer, xmin).
    pub guide: Option<f64>,
    /// Glyphs and styles.
    pub theme: Theme,
}

/// Colour the guide is drawn in before letters replace the dots.
const GUIDE: Color = Color::DarkGray;

impl Widget for LineChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        if area.width < 12 || area.height < 4 {
            return;
        }
        let letters = t.ascii || !t.color;
        let guide_points: Vec<(f64, f64)> = self
            .guide
            .filter(|g| g.is_finite())
            .map(|g| {
                let [lo, hi] = self.y_bounds;
                (0..=16)
                    .map(|i| (g, lo + (hi - lo) * i as f64 / 16.0))
                    .collect()
            })
            .unwrap_or_default();
        let mut datasets = vec![
            Dataset::default()
                .marker(if letters {
                    Marker::Dot
                } else {
                    Marker::Braille
                })
                .graph_type(GraphType::Scatter)
                .style(Style::default().fg(GUIDE))
                .data(&guide_points),
        ];
        for c in self.curves {
            let graph = if c.line && !letters {
                GraphType::Line
            } else {
                GraphType::Scatter
            };
            datasets.push(
                Dataset::default()
                    .marker(if letters {
                        Marker::Dot
                    } else {
                        Marker::Braille
                    })
                    .graph_type(graph)
                    .style(Style::default().fg(c.color))
                    .data(&c.points),
            );
        }
        let labels = |v: &[String]| -> Vec<Span<'static>> {
            v.iter().map(|s| Span::styled(s.clone(), t.dim())).collect()
        };
        let axis_style = t.dim();
        let chart = Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .bounds(self.x_bounds)
                    .labels(labels(&self.x_labels))
                    .style(axis_style),
            )
            .y_axis(
                Axis::default()
                    .bounds(self.y_bounds)
                    .labels(labels(&self.y_labels))
                    .style(axis_style),
            )
            .legend_position(None);
        chart.render(area, buf);
        if letters {
            for y in area.top()..area.bottom() {
                for x in area.left()..area.right() {
                    let cell = &mut buf[(x, y)];
                    if cell.symbol() != "•" {
                        continue;
                    }
                    let fg = cell.fg;
                    let ch = if fg == GUIDE {
                        if t.ascii { ':' } else { '┊' }
                    } else {
                        match self.curves.iter().rev().find(|c| c.color == fg) {
                            Some(c) => c.marker,
                            None => continue,
                        }
                    };
                    cell.set_char(ch);
                    if !t.color {
                        cell.set_style(if fg == GUIDE { t.dim() } else { t.text() });
                    }
                }
            }
        }
        if !t.color {
            // Colours were only a way to tell the curves apart.
            for y in area.top()..area.bottom() {
                for x in area.left()..area.right() {
                    let cell = &mut buf[(x, y)];
                    cell.fg = Color::Reset;
                }
            }
        }
        if t.ascii {
            for y in area.top()..area.bottom() {
                for x in area.left()..area.right() {
                    let cell = &mut buf[(x, y)];
                    let ch = match cell.symbol() {
                        "│" | "┊" => '|',
                        "─" => '-',
                        "└" | "┌" | "┐" | "┘" | "┼" => '+',
                        s if s.is_ascii() => continue,
                        _ => '*',
                    };
                    cell.set_char(ch);
                }
            }
        }
    }
}

/// Evenly spaced tick labels between `lo` and `hi` (`n` ≥ 2 of them), formatted by `fmt`.
pub fn ticks(lo: f64, hi: f64, n: usize, fmt: impl Fn(f64) -> String) -> Vec<String> {
    let n = n.max(2);
    (0..n)
        .map(|i| fmt(lo + (hi - lo) * i as f64 / (n - 1) as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(chart: LineChart<'_>, w: u16, h: u16) -> Vec<String> {
        let area = Rect::new(0, 0, w, h);
        let mut buf = Buffer::empty(area);
        chart.render(area, &mut buf);
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect()
    }

    const COLOUR: Theme = Theme {
        color: true,
        ascii: false,
    };

    fn chart(curves: &[Curve], theme: Theme) -> LineChart<'_> {
        LineChart {
            curves,
            x_bounds: [0.0, 10.0],
            y_bounds: [0.0, 1.0],
            x_labels: ticks(0.0, 10.0, 3, |v| format!("{v:.0}")),
            y_labels: ticks(0.0, 1.0, 2, |v| format!("{v:.1}")),
            guide: Some(5.0),
            theme,
        }
    }

    fn curves() -> Vec<Curve> {
        let up: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64, i as f64 / 10.0)).collect();
        let down: Vec<(f64, f64)> = (0..=10)
            .map(|i| (i as f64, 1.0 - i as f64 / 10.0))
            .collect();
        vec![
            Curve {
                marker: 'q',
                color: Color::Cyan,
                points: up,
                line: true,
            },
            Curve {
                marker: 'k',
                color: Color::Yellow,
                points: down,
                line: true,
            },
        ]
    }

    #[test]
    fn ascii_mode_draws_letters_and_ascii_axes_only() {
        let c = curves();
        let lines = render(
            chart(
                &c,
                Theme {
                    color: false,
                    ascii: true,
                },
            ),
            40,
            12,
        );
        let all = lines.join("\n");
        assert!(all.is_ascii(), "{all}");
        assert!(all.contains('q') && all.contains('k'), "{all}");
        assert!(all.contains(':'), "the guide: {all}");
        assert!(lines.iter().any(|l| l.contains('|')), "{all}");
        assert!(lines.last().unwrap().contains("10"), "{all}");
    }

    #[test]
    fn colour_mode_draws_braille_lines() {
        let c = curves();
        let lines = render(chart(&c, COLOUR), 40, 12);
        let all = lines.join("\n");
        assert!(
            all.chars()
                .any(|ch| ('\u{2800}'..='\u{28ff}').contains(&ch)),
            "{all}"
        );
    }

    #[test]
    fn tiny_areas_draw_nothing() {
        let c = curves();
        let lines = render(chart(&c, COLOUR), 8, 3);
        assert!(lines.iter().all(|l| l.trim().is_empty()));
    }
}
