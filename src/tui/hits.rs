//! Where the clickable things of the last frame were drawn, so a mouse click can find what it
//! landed on.

use ratatui::layout::{Position, Rect};

use crate::anatomy::{MatrixId, Proj};

use super::app::View;

/// Something a click can land on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A view's tab.
    View(View),
    /// A row of the layer list (an index into the navigation rows).
    Row(usize),
    /// A projection's glyph in a layer row of the list.
    RowProj(usize, Proj),
    /// A block drawn on its own: a head's cell in the grid, a heatmap cell.
    Block(MatrixId),
}

/// The clickable areas of one frame; an area added later lies on top.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hits {
    areas: Vec<(Rect, Target)>,
}

impl Hits {
    /// Records that `target` was drawn in `area`.
    pub fn add(&mut self, area: Rect, target: Target) {
        if !area.is_empty() {
            self.areas.push((area, target));
        }
    }

    /// What lies at terminal cell (`column`, `row`), topmost first.
    pub fn at(&self, column: u16, row: u16) -> Option<Target> {
        self.areas
            .iter()
            .rev()
            .find(|(area, _)| area.contains(Position::new(column, row)))
            .map(|(_, target)| *target)
    }

    /// Where `target` was drawn, if it was (the first area recorded for it).
    pub fn area_of(&self, target: Target) -> Option<Rect> {
        self.areas
            .iter()
            .find(|(_, t)| *t == target)
            .map(|(area, _)| *area)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topmost_area_wins_and_empty_areas_are_ignored() {
        let mut hits = Hits::default();
        hits.add(Rect::new(0, 0, 10, 1), Target::Row(3));
        hits.add(Rect::new(4, 0, 2, 1), Target::RowProj(3, Proj::K));
        hits.add(Rect::new(0, 5, 0, 3), Target::View(View::Heads));
        assert_eq!(hits.at(1, 0), Some(Target::Row(3)));
        assert_eq!(hits.at(5, 0), Some(Target::RowProj(3, Proj::K)));
        assert_eq!(hits.at(10, 0), None);
        assert_eq!(hits.at(0, 5), None);
        assert_eq!(hits.area_of(Target::Row(3)), Some(Rect::new(0, 0, 10, 1)));
    }
}
