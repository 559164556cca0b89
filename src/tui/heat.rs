//! A layers × heads grid of cells shaded by a score.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use super::theme::Theme;

/// Cells shaded by value in [0, 1] (`None` = not computed yet), one row per layer.
#[derive(Debug, Clone)]
pub struct Heatmap<'a> {
    /// `cells[layer][head]`, already normalised to [0, 1] (1 = farthest from MP).
    pub cells: &'a [Vec<Option<f64>>],
    /// Focused (layer, head) to outline.
    pub focus: Option<(usize, usize)>,
    /// First layer row shown (for scrolling).
    pub first_row: usize,
    /// Glyphs and styles.
    pub theme: Theme,
}

/// Width of one cell in columns for `heads` heads in `width` columns: the cells share the
/// width (at least one column each; the heads that do not fit are not drawn).
pub fn cell_width(heads: usize, width: u16) -> u16 {
    if heads == 0 {
        return 1;
    }
    (width as usize / heads).max(1) as u16
}

/// Columns of layer labels left of the cells.
const LABEL_W: u16 = 4;

impl Heatmap<'_> {
    /// Where each cell drawn in `area` lies: (layer, head, one-row rect).
    pub fn cell_areas(&self, area: Rect) -> Vec<(usize, usize, Rect)> {
        if area.width <= LABEL_W || area.height < 2 {
            return Vec::new();
        }
        let cw = cell_width(self.heads(), area.width - LABEL_W);
        let visible_heads = ((area.width - LABEL_W) / cw) as usize;
        let rows = (area.height - 1) as usize;
        let mut out = Vec::new();
        for (i, row) in self
            .cells
            .iter()
            .enumerate()
            .skip(self.first_row)
            .take(rows)
        {
            let y = area.y + 1 + (i - self.first_row) as u16;
            for h in 0..row.len().min(visible_heads) {
                out.push((i, h, Rect::new(area.x + LABEL_W + h as u16 * cw, y, cw, 1)));
            }
        }
        out
    }

    fn heads(&self) -> usize {
        self.cells.iter().map(|r| r.len()).max().unwrap_or(0)
    }
}

impl Widget for Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        if area.width <= LABEL_W || area.height < 2 {
            return;
        }
        let heads = self.heads();
        let cw = cell_width(heads, area.width - LABEL_W);
        let visible_heads = ((area.width - LABEL_W) / cw) as usize;
        // Header: head numbers, every head when its number and a space fit in a cell.
        let digits = heads.saturating_sub(1).to_string().len() as u16 + 1;
        let step = digits.div_ceil(cw).next_power_of_two() as usize;
        for h in (0..heads.min(visible_heads)).step_by(step) {
            let x = area.x + LABEL_W + h as u16 * cw;
            let s = h.to_string();
            if x + s.len() as u16 <= area.x + area.width {
                buf.set_string(x, area.y, &s, t.dim());
            }
        }
        let mut labelled = None;
        for (i, h, cell) in self.cell_areas(area) {
            if labelled != Some(i) {
                buf.set_string(area.x, cell.y, format!("{i:>3}"), t.dim());
                labelled = Some(i);
            }
            let (ch, style) = match self.cells[i][h] {
                Some(v) => (t.ramp(v), t.heat(v)),
                None => (if t.ascii { '?' } else { '·' }, t.dim()),
            };
            let focused = self.focus == Some((i, h));
            let style = if focused { t.selected() } else { style };
            // Wide cells keep a one-column gap, so that equal neighbours stay apart.
            let drawn = if cell.width >= 3 {
                cell.width - 1
            } else {
                cell.width
            };
            for k in 0..drawn {
                let glyph = if focused && k == 0 && cell.width >= 2 {
                    if t.ascii { '[' } else { '▶' }
                } else {
                    ch
                };
                buf[(cell.x + k, cell.y)].set_char(glyph).set_style(style);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_heatmap_uses_the_ramp_and_marks_focus() {
        let cells = vec![
            vec![Some(0.0), Some(1.0), None],
            vec![Some(0.5), Some(0.25), Some(0.9)],
        ];
        let area = Rect::new(0, 0, 10, 3);
        let mut buf = Buffer::empty(area);
        Heatmap {
            cells: &cells,
            focus: Some((1, 2)),
            first_row: 0,
            theme: Theme {
                color: false,
                ascii: true,
            },
        }
        .render(area, &mut buf);
        let line =
            |y: u16| -> String { (0..10).map(|x| buf[(x, y)].symbol().to_string()).collect() };
        assert_eq!(line(1), "  0   @@??");
        assert!(line(2).starts_with("  1 ++::[%"), "{}", line(2));
    }
}
