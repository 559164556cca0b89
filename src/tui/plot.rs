//! A histogram with a curve laid over it, drawn cell by cell (Unicode eighth blocks or ASCII).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use super::theme::Theme;

/// A histogram of counts with an expected-count curve over it and marked x positions.
#[derive(Debug, Clone)]
pub struct HistPlot<'a> {
    /// Observed count per bin (left to right).
    pub counts: &'a [f64],
    /// Expected count per bin under the law (any length; sampled per column).
    pub curve: &'a [f64],
    /// A second histogram drawn as markers over the bars (the shuffled control), or empty.
    pub overlay: &'a [f64],
    /// A second histogram drawn as dim bars behind the bars (the base model in compare mode),
    /// or empty; same bins as `counts`.
    pub behind: &'a [f64],
    /// The x value at the left and right edge of the drawn range.
    pub x_range: (f64, f64),
    /// X positions to mark under the axis (the MP edges).
    pub marks: &'a [f64],
    /// Values beyond the drawn range, counted at the right edge.
    pub overflow: usize,
    /// Without axis rows (for small multiples).
    pub compact: bool,
    /// Glyphs and styles.
    pub theme: Theme,
}

impl HistPlot<'_> {
    /// Column of x within a plot `width` wide, if x is in range.
    fn column(&self, x: f64, width: u16) -> Option<u16> {
        let (lo, hi) = self.x_range;
        if !(x.is_finite() && hi > lo) || x < lo || x > hi {
            return None;
        }
        let c = ((x - lo) / (hi - lo) * width as f64).floor() as i64;
        Some(c.clamp(0, width as i64 - 1) as u16)
    }
}

/// The top of the y axis: the tallest bar, unless one or two bars (a pile-up at zero, say)
/// tower over everything else, in which case the scale follows the rest and the MP curve and
/// the towering bars are drawn clipped.
fn y_scale(counts: &[f64], curve: &[f64]) -> f64 {
    let finite = |v: &&f64| v.is_finite() && **v >= 0.0;
    let mut sorted: Vec<f64> = counts.iter().filter(finite).copied().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let curve_max = curve.iter().filter(finite).fold(0.0f64, |m, v| m.max(*v));
    let top = sorted.first().copied().unwrap_or(0.0);
    let third = sorted.get(2).copied().unwrap_or(0.0);
    let rest = third.max(curve_max * 1.2);
    let y = if top > 3.0 * rest && rest > 0.0 {
        rest
    } else {
        top.max(curve_max)
    };
    y.max(1e-12) * 1.05
}

/// Value of `series` at column `c` of `width`, sampling proportionally.
fn sample(series: &[f64], c: u16, width: u16) -> f64 {
    if series.is_empty() || width == 0 {
        return 0.0;
    }
    let i = (c as usize * series.len()) / width as usize;
    series[i.min(series.len() - 1)]
}

impl Widget for HistPlot<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let axis_rows = if self.compact { 0 } else { 2 };
        if area.width < 4 || area.height <= axis_rows {
            return;
        }
        let (plot_w, plot_h) = (area.width, area.height - axis_rows);
        let t = self.theme;
        let finite = |v: &f64| v.is_finite() && *v >= 0.0;
        // The scale fits both histograms when one is drawn behind the other.
        let tallest: Vec<f64> = if self.behind.len() == self.counts.len() {
            self.counts
                .iter()
                .zip(self.behind)
                .map(|(a, b)| a.max(*b))
                .collect()
        } else {
            self.counts.to_vec()
        };
        let ymax = y_scale(&tallest, self.curve);
        for c in 0..plot_w {
            let x = area.x + c;
            let back = sample(self.behind, c, plot_w);
            if finite(&back) && back > 0.0 {
                let eighths = (back / ymax * plot_h as f64 * 8.0).round() as usize;
                for r in 0..plot_h {
                    let y = area.y + plot_h - 1 - r;
                    let filled = eighths.saturating_sub(r as usize * 8).min(8);
                    // Without colour, a shade tells the dim bars from the bright ones.
                    let glyph = match (t.color, t.ascii) {
                        (true, _) => t.bar(filled),
                        (false, false) if filled >= 4 => '░',
                        (false, true) if filled >= 4 => ':',
                        _ => continue,
                    };
                    if filled > 0 {
                        buf[(x, y)].set_char(glyph).set_style(t.dim());
                    }
                }
            }
            let count = sample(self.counts, c, plot_w);
            let eighths = if finite(&count) {
                (count / ymax * plot_h as f64 * 8.0).round() as usize
            } else {
                0
            };
            for r in 0..plot_h {
                let y = area.y + plot_h - 1 - r;
                let filled = eighths.saturating_sub(r as usize * 8).min(8);
                if filled > 0 {
                    buf[(x, y)].set_char(t.bar(filled)).set_style(t.bars());
                }
            }
            if eighths > plot_h as usize * 8 {
                // A bar taller than the scale: mark it as clipped.
                buf[(x, area.y)]
                    .set_char(if t.ascii { '^' } else { '↑' })
                    .set_style(t.warn());
            }
            let other = sample(self.overlay, c, plot_w);
            if !self.overlay.is_empty() && finite(&other) && other > 0.0 {
                let level = (other / ymax * plot_h as f64).round() as u16;
                let r = level.clamp(1, plot_h) - 1;
                let y = area.y + plot_h - 1 - r;
                buf[(x, y)]
                    .set_char(if t.ascii { 'o' } else { '◦' })
                    .set_style(t.warn());
            }
            let expected = sample(self.curve, c, plot_w);
            if finite(&expected) && expected > 0.0 {
                let level = (expected / ymax * plot_h as f64).floor() as u16;
                let r = level.min(plot_h - 1);
                let y = area.y + plot_h - 1 - r;
                buf[(x, y)].set_char(t.curve()).set_style(t.mp());
            }
        }
        if self.overflow > 0 {
            let label = format!("+{}>", self.overflow);
            let w = label.len() as u16;
            if w < plot_w {
                buf.set_string(area.x + plot_w - w, area.y, &label, t.warn());
            }
        }
        if self.compact {
            return;
        }
        let axis_y = area.y + plot_h;
        for c in 0..plot_w {
            buf[(area.x + c, axis_y)]
                .set_char(t.rule())
                .set_style(t.dim());
        }
        for &m in self.marks {
            if let Some(c) = self.column(m, plot_w) {
                buf[(area.x + c, axis_y)]
                    .set_char(t.edge_mark())
                    .set_style(t.mp());
            }
        }
        let (lo, hi) = self.x_range;
        let left = fmt_tick(lo);
        let right = fmt_tick(hi);
        let label_y = axis_y + 1;
        buf.set_string(area.x, label_y, &left, t.dim());
        if (left.len() + right.len() + 1) as u16 <= plot_w {
            buf.set_string(
                area.x + plot_w - right.len() as u16,
                label_y,
                &right,
                t.dim(),
            );
        }
        let mid = fmt_tick((lo + hi) / 2.0);
        let mid_x = plot_w / 2 - (mid.len() as u16 / 2).min(plot_w / 2);
        if (left.len() as u16) + 1 < mid_x
            && mid_x + (mid.len() as u16) + 1 + (right.len() as u16) < plot_w
        {
            buf.set_string(area.x + mid_x, label_y, &mid, t.dim());
        }
    }
}

/// A compact tick label: 3 significant digits, scientific for very large or small values.
pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e4).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(plot: HistPlot<'_>, w: u16, h: u16) -> Vec<String> {
        let area = Rect::new(0, 0, w, h);
        let mut buf = Buffer::empty(area);
        plot.render(area, &mut buf);
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect()
    }

    #[test]
    fn bars_rise_with_counts_and_curve_and_marks_show() {
        let counts = [0.0, 1.0, 2.0, 4.0, 8.0, 4.0, 2.0, 1.0];
        let curve = [0.0, 1.0, 3.0, 5.0, 6.0, 5.0, 3.0, 1.0];
        let theme = Theme {
            color: false,
            ascii: true,
        };
        let lines = render(
            HistPlot {
                counts: &counts,
                curve: &curve,
                overlay: &[],
                behind: &[],
                x_range: (0.0, 8.0),
                marks: &[1.0, 7.5],
                overflow: 2,
                compact: false,
                theme,
            },
            8,
            6,
        );
        // Tallest bar in column 4 reaches the top plot row.
        assert!(
            matches!(lines[0].chars().nth(4), Some('|' | '#')),
            "{lines:?}"
        );
        assert_eq!(lines[3].chars().nth(4), Some('#'));
        // The curve shows in column 3, bars absent in column 0.
        assert!(lines.iter().take(4).any(|l| l.chars().nth(3) == Some('*')));
        assert!(lines.iter().take(4).all(|l| l.starts_with(' ')));
        // Axis with the two edge marks, then tick labels.
        assert_eq!(lines[4], "-^-----^");
        assert!(lines[5].starts_with('0') && lines[5].ends_with("8.00"));
        assert!(lines.iter().all(|l| l.is_ascii()));
    }

    #[test]
    fn empty_or_tiny_areas_draw_nothing_and_do_not_panic() {
        let theme = Theme {
            color: true,
            ascii: false,
        };
        let plot = HistPlot {
            counts: &[],
            curve: &[f64::NAN],
            overlay: &[f64::NAN],
            behind: &[f64::NAN],
            x_range: (0.0, 0.0),
            marks: &[f64::INFINITY],
            overflow: 0,
            compact: false,
            theme,
        };
        let lines = render(plot.clone(), 3, 2);
        assert!(lines.iter().all(|l| l.trim().is_empty()));
        let lines = render(plot, 10, 4);
        assert_eq!(lines[2].chars().count(), 10);
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(1.2345), "1.23");
        assert_eq!(fmt_tick(0.01234), "0.012");
        assert_eq!(fmt_tick(123.4), "123");
        assert_eq!(fmt_tick(12345.0), "1.23e4");
    }
}
