//! Colours and glyphs: full colour, `NO_COLOR` (modifiers only) and ASCII-only drawing.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

/// How the screen is drawn: with or without colour, with Unicode or ASCII glyphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Use colours (false under `NO_COLOR`).
    pub color: bool,
    /// Draw with ASCII characters only.
    pub ascii: bool,
}

/// Eighth-block glyphs for bar tops, from empty to full.
const BARS_UNICODE: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// ASCII stand-ins for bar tops (coarser: quarters).
const BARS_ASCII: [char; 9] = [' ', ' ', '.', '.', ':', ':', '|', '|', '#'];
/// Heat ramp in ASCII, from cold to hot.
const RAMP_ASCII: [char; 10] = [' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];
/// Heat ramp in Unicode shading, from cold to hot.
const RAMP_UNICODE: [char; 5] = [' ', '░', '▒', '▓', '█'];

impl Theme {
    /// Colour and Unicode glyphs.
    pub const UNICODE: Self = Self {
        color: true,
        ascii: false,
    };
    /// Unicode glyphs without colour (`NO_COLOR`).
    pub const PLAIN: Self = Self {
        color: false,
        ascii: false,
    };
    /// ASCII glyphs without colour.
    pub const ASCII: Self = Self {
        color: false,
        ascii: true,
    };

    /// The theme the environment asks for: `NO_COLOR` set ⇒ no colour; a non-UTF-8 locale or
    /// `force_ascii` ⇒ ASCII.
    pub fn from_env(force_ascii: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !no_color,
            ascii: force_ascii || !locale_is_utf8(),
        }
    }

    /// Border glyphs.
    pub fn border(&self) -> border::Set<'static> {
        if self.ascii {
            border::Set {
                top_left: "+",
                top_right: "+",
                bottom_left: "+",
                bottom_right: "+",
                vertical_left: "|",
                vertical_right: "|",
                horizontal_top: "-",
                horizontal_bottom: "-",
            }
        } else {
            border::ROUNDED
        }
    }

    /// Glyph for a bar cell filled `eighths`/8 from the bottom (0..=8).
    pub fn bar(&self, eighths: usize) -> char {
        let i = eighths.min(8);
        if self.ascii {
            BARS_ASCII[i]
        } else {
            BARS_UNICODE[i]
        }
    }

    /// Glyph for a heat value in [0, 1] (used with or without colour).
    pub fn ramp(&self, t: f64) -> char {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ramp: &[char] = if self.ascii {
            &RAMP_ASCII
        } else {
            &RAMP_UNICODE
        };
        let i = (t * (ramp.len() - 1) as f64).round() as usize;
        ramp[i.min(ramp.len() - 1)]
    }

    /// Glyph for a point of the MP curve.
    pub fn curve(&self) -> char {
        if self.ascii { '*' } else { '•' }
    }

    /// Glyph marking an MP edge on the axis.
    pub fn edge_mark(&self) -> char {
        if self.ascii { '^' } else { '▲' }
    }

    /// Horizontal rule glyph.
    pub fn rule(&self) -> char {
        if self.ascii { '-' } else { '─' }
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::default()
    }

    /// Dimmed secondary text.
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    /// Titles and the focused item.
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// The selected row or cell.
    pub fn selected(&self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    /// Histogram bars.
    pub fn bars(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        }
    }

    /// The MP curve.
    pub fn mp(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// Warnings and values far from MP.
    pub fn warn(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// Errors.
    pub fn error(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Red)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// Text drawn in the heat colour of t in [0, 1] (plain when colour is off).
    pub fn heat_text(&self, t: f64) -> Style {
        match self.heat(t).bg {
            Some(c) => Style::default().fg(c),
            None => Style::default(),
        }
    }

    /// A heat cell for value t in [0, 1]: colour ramp, or plain when colour is off.
    pub fn heat(&self, t: f64) -> Style {
        if !self.color {
            return Style::default();
        }
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Dark blue (close to MP) to yellow-red (far from MP).
        let (r, g, b) = if t < 0.5 {
            let u = t / 0.5;
            (
                lerp(20.0, 200.0, u),
                lerp(40.0, 180.0, u),
                lerp(90.0, 40.0, u),
            )
        } else {
            let u = (t - 0.5) / 0.5;
            (
                lerp(200.0, 230.0, u),
                lerp(180.0, 50.0, u),
                lerp(40.0, 30.0, u),
            )
        };
        Style::default().bg(Color::Rgb(r, g, b)).fg(Color::Black)
    }
}

fn lerp(a: f64, b: f64, t: f64) -> u8 {
    (a + (b - a) * t).round().clamp(0.0, 255.0) as u8
}

/// True when LC_ALL / LC_CTYPE / LANG name a UTF-8 locale (the first one set decides).
pub fn locale_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Some(v) = std::env::var_os(var) {
            let v = v.to_string_lossy().to_lowercase();
            if !v.is_empty() {
                return v.contains("utf-8") || v.contains("utf8");
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_glyphs_are_ascii() {
        let t = Theme {
            color: false,
            ascii: true,
        };
        for i in 0..=8 {
            assert!(t.bar(i).is_ascii());
        }
        for k in 0..=20 {
            assert!(t.ramp(k as f64 / 20.0).is_ascii());
        }
        assert!(t.curve().is_ascii() && t.edge_mark().is_ascii() && t.rule().is_ascii());
        let b = t.border();
        assert!(
            [b.top_left, b.horizontal_top, b.vertical_left]
                .iter()
                .all(|s| s.is_ascii())
        );
        assert_eq!(t.ramp(0.0), ' ');
        assert_eq!(t.ramp(1.0), '@');
        assert_eq!(t.ramp(f64::NAN), ' ');
    }

    #[test]
    fn no_color_styles_carry_no_colour() {
        let t = Theme {
            color: false,
            ascii: false,
        };
        for s in [
            t.dim(),
            t.selected(),
            t.bars(),
            t.mp(),
            t.warn(),
            t.error(),
            t.heat(0.7),
        ] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
    }
}
