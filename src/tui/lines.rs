//! Score-versus-layer lines: one marker letter per series, drawn cell by cell.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;

use super::plot::fmt_tick;
use super::theme::Theme;

/// One line of the depth profile: a marker and a value per layer (`None` = not computed).
#[derive(Debug, Clone)]
pub struct Series {
    /// Marker character (e.g. 'q').
    pub marker: char,
    /// Colour when colour is on.
    pub color: Color,
    /// Value per layer.
    pub values: Vec<Option<f64>>,
}

/// Several series across layers, y range fitted to the data, the focused layer marked.
#[derive(Debug, Clone)]
pub struct LinePlot<'a> {
    /// The lines.
    pub series: &'a [Series],
    /// Layer to mark with a vertical guide.
    pub focus: Option<usize>,
    /// Fixed y range, or fitted when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Glyphs and styles.
    pub theme: Theme,
}

impl Widget for LinePlot<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let label_w = 8u16;
        if area.width < label_w + 4 || area.height < 4 {
            return;
        }
        let n = self
            .series
            .iter()
            .map(|s| s.values.len())
            .max()
            .unwrap_or(0);
        if n == 0 {
            return;
        }
        let (lo, hi) = self.y_range.unwrap_or_else(|| {
            let vals = self
                .series
                .iter()
                .flat_map(|s| s.values.iter().flatten())
                .filter(|v| v.is_finite());
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &v in vals {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if !lo.is_finite() {
                (0.0, 1.0)
            } else if hi - lo < 1e-9 {
                (lo - 0.5, hi + 0.5)
            } else {
                let pad = (hi - lo) * 0.05;
                (lo - pad, hi + pad)
            }
        });
        let plot = Rect::new(
            area.x + label_w,
            area.y,
            area.width - label_w,
            area.height - 1,
        );
        let col = |layer: usize| -> u16 {
            if n <= 1 {
                plot.width / 2
            } else {
                ((layer as f64 / (n - 1) as f64) * (plot.width - 1) as f64).round() as u16
            }
        };
        let row = |v: f64| -> u16 {
            let f = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
            let r = (f * (plot.height - 1) as f64).round() as u16;
            plot.height - 1 - r
        };
        // Y labels: top, middle, bottom.
        for (v, r) in [
            (hi, 0),
            ((lo + hi) / 2.0, (plot.height - 1) / 2),
            (lo, plot.height - 1),
        ] {
            let s = fmt_tick(v);
            let s: String = s.chars().take(label_w as usize - 1).collect();
            buf.set_string(area.x, plot.y + r, &s, t.dim());
        }
        if let Some(f) = self.focus.filter(|f| *f < n) {
            let c = plot.x + col(f);
            for r in 0..plot.height {
                buf[(c, plot.y + r)]
                    .set_char(if t.ascii { ':' } else { '┆' })
                    .set_style(t.dim());
            }
        }
        // X axis: layer numbers at both ends and the focus.
        let axis_y = plot.y + plot.height;
        buf.set_string(plot.x, axis_y, "0", t.dim());
        let last = format!("{}", n - 1);
        if plot.width as usize > last.len() + 2 {
            buf.set_string(
                plot.x + plot.width - last.len() as u16,
                axis_y,
                &last,
                t.dim(),
            );
        }
        for s in self.series {
            let style = if t.color {
                Style::default().fg(s.color)
            } else {
                Style::default()
            };
            let pts: Vec<(u16, u16)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (col(i), row(v))))
                .collect();
            // Thin connecting dots between consecutive points.
            for w in pts.windows(2) {
                let ((c0, r0), (c1, r1)) = (w[0], w[1]);
                for c in c0 + 1..c1 {
                    let f = (c - c0) as f64 / (c1 - c0) as f64;
                    let r = (r0 as f64 + (r1 as f64 - r0 as f64) * f).round() as u16;
                    let cell = &mut buf[(plot.x + c, plot.y + r)];
                    if cell.symbol() == " " {
                        cell.set_char('.').set_style(style);
                    }
                }
            }
            for (c, r) in pts {
                buf[(plot.x + c, plot.y + r)]
                    .set_char(s.marker)
                    .set_style(style);
            }
        }
    }
}
