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
    /// First head (or expert) column shown, when they do not all fit (for scrolling).
    pub first_col: usize,
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

/// How many of `heads` cells fit in a heatmap `width` columns wide (labels included).
pub fn visible_heads(heads: usize, width: u16) -> usize {
    let w = width.saturating_sub(LABEL_W);
    (w / cell_width(heads, w)) as usize
}

/// The first column to show so that column `focus` of `heads` is on screen in `width`
/// columns: 0 while it fits, else the focus is the last column shown.
pub fn first_col(heads: usize, width: u16, focus: usize) -> usize {
    let visible = visible_heads(heads, width).max(1);
    (focus + 1)
        .saturating_sub(visible)
        .min(heads.saturating_sub(visible))
}

impl Heatmap<'_> {
    /// Where each cell drawn in `area` lies: (layer, head, one-row rect).
    pub fn cell_areas(&self, area: Rect) -> Vec<(usize, usize, Rect)> {
        if area.width <= LABEL_W || area.height < 2 {
            return Vec::new();
        }
        let cw = cell_width(self.heads(), area.width - LABEL_W);
        let visible = visible_heads(self.heads(), area.width);
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
            for h in self.first_col..row.len().min(self.first_col + visible) {
                let x = area.x + LABEL_W + (h - self.first_col) as u16 * cw;
                out.push((i, h, Rect::new(x, y, cw, 1)));
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
        let visible = visible_heads(heads, area.width);
        // Header: head numbers, every head when its number and a space fit in a cell.
        let digits = heads.saturating_sub(1).to_string().len() as u16 + 1;
        let step = digits.div_ceil(cw).next_power_of_two() as usize;
        let shown = self.first_col..heads.min(self.first_col + visible);
        for h in shown.clone().filter(|h| h % step == 0) {
            let x = area.x + LABEL_W + (h - self.first_col) as u16 * cw;
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
            first_col: 0,
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

    #[test]
    fn columns_scroll_to_keep_the_focus_on_screen() {
        // 12 columns of 1 in a 10-wide map (6 cells after the labels).
        assert_eq!(visible_heads(12, 10), 6);
        assert_eq!(first_col(12, 10, 3), 0);
        assert_eq!(first_col(12, 10, 6), 1);
        assert_eq!(first_col(12, 10, 11), 6);
        assert_eq!(first_col(4, 80, 3), 0);
        let cells = vec![(0..12).map(|h| Some(h as f64 / 11.0)).collect::<Vec<_>>()];
        let area = Rect::new(0, 0, 10, 2);
        let mut buf = Buffer::empty(area);
        let map = Heatmap {
            cells: &cells,
            focus: Some((0, 9)),
            first_row: 0,
            first_col: first_col(12, 10, 9),
            theme: Theme {
                color: false,
                ascii: true,
            },
        };
        let areas = map.cell_areas(area);
        assert_eq!(areas.first().map(|a| a.1), Some(4));
        assert_eq!(areas.last().map(|a| (a.1, a.2.x)), Some((9, 9)));
        map.render(area, &mut buf);
        let line =
            |y: u16| -> String { (0..10).map(|x| buf[(x, y)].symbol().to_string()).collect() };
        assert_eq!(line(0), "    4   8 ");
        assert_eq!(line(1), "  0 -=+*##");
    }
}
