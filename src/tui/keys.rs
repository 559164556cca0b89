//! Key presses to actions: what a vim, less or htop user would guess.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Next layer (down the list).
    LayerDown,
    /// Previous layer.
    LayerUp,
    /// Next head (position 0 is the whole matrix).
    HeadRight,
    /// Previous head.
    HeadLeft,
    /// Next projection.
    ProjNext,
    /// Previous projection.
    ProjPrev,
    /// First layer.
    First,
    /// Last layer.
    Last,
    /// Ten layers down.
    PageDown,
    /// Ten layers up.
    PageUp,
    /// Switch to view 1–4.
    View(u8),
    /// Next view.
    ViewNext,
    /// Open the focused head (or matrix) in the spectrum view.
    Zoom,
    /// Cycle the score shown in grid, heatmap and profile.
    CycleScore,
    /// Cycle the σ mode (entry, fit, init).
    CycleSigma,
    /// Toggle the ν / λ = ν²/q axis.
    ToggleAxis,
    /// Toggle the histogram range: the MP bulk (outliers counted) or every value.
    ToggleRange,
    /// Toggle the log-log view of the ESD's tail with its power-law fit.
    ToggleTail,
    /// Toggle the shuffled control's histogram over the spectrum.
    ToggleShuffled,
    /// More histogram bins.
    MoreBins,
    /// Fewer histogram bins.
    FewerBins,
    /// Start typing a tensor name to jump to.
    Search,
    /// Export the focused spectrum as JSON.
    Export,
    /// Open the checkpoint again from disk (after it changed), keeping the focus.
    Reopen,
    /// Show or hide the help overlay.
    Help,
    /// Close an overlay, or quit when none is open.
    Back,
    /// Quit.
    Quit,
}

/// The action a key press asks for in normal mode, if any.
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('d') if ctrl => Action::PageDown,
        KeyCode::Char('u') if ctrl => Action::PageUp,
        KeyCode::Char('j') | KeyCode::Down => Action::LayerDown,
        KeyCode::Char('k') | KeyCode::Up => Action::LayerUp,
        KeyCode::Char('l') | KeyCode::Right => Action::HeadRight,
        KeyCode::Char('h') | KeyCode::Left => Action::HeadLeft,
        KeyCode::Tab => Action::ProjNext,
        KeyCode::BackTab => Action::ProjPrev,
        KeyCode::Char('g') | KeyCode::Home => Action::First,
        KeyCode::Char('G') | KeyCode::End => Action::Last,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Char(c @ '1'..='4') => Action::View(c as u8 - b'0'),
        KeyCode::Char('v') => Action::ViewNext,
        KeyCode::Enter => Action::Zoom,
        KeyCode::Char('s') => Action::CycleScore,
        KeyCode::Char('m') => Action::CycleSigma,
        KeyCode::Char('x') => Action::ToggleAxis,
        KeyCode::Char('r') => Action::ToggleRange,
        KeyCode::Char('t') => Action::ToggleTail,
        KeyCode::Char('R') => Action::ToggleShuffled,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::MoreBins,
        KeyCode::Char('-') | KeyCode::Char('_') => Action::FewerBins,
        KeyCode::Char('/') => Action::Search,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('o') => Action::Reopen,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

/// Every key binding as (keys, what it does), for the help overlay and README.
pub const BINDINGS: &[(&str, &str)] = &[
    ("j k  Down Up", "next / previous layer"),
    ("h l  Left Right", "previous / next head (0 = whole matrix)"),
    (
        "Tab  Shift-Tab",
        "next / previous projection (q k v o, then MLP)",
    ),
    ("g G  Home End", "first / last layer"),
    ("PgUp PgDn", "ten layers up / down"),
    (
        "1 2 3 4  v",
        "spectrum / heads / depth / heatmap view; v cycles",
    ),
    ("Enter", "open the focused head in the spectrum view"),
    ("s", "cycle the score shown (ks, alpha, vector_p, ...)"),
    ("m", "cycle sigma mode: entry, fit, init"),
    ("x", "toggle axis: nu or lambda = nu^2/q"),
    ("r", "histogram range: the MP bulk, or every value"),
    (
        "t",
        "ESD tail on log-log axes with its power-law fit (alpha)",
    ),
    ("R", "overlay the shuffled control (computes it first)"),
    ("+ -", "more / fewer histogram bins"),
    ("/", "jump to a tensor by name"),
    ("e", "export the focused spectrum as JSON"),
    ("o", "reopen the checkpoint from disk, keeping the focus"),
    ("click", "tab, layer, q/k/v glyph, head or heatmap cell"),
    (
        "click it again",
        "open the clicked head in the spectrum view",
    ),
    ("?", "this help"),
    ("Esc  q", "close overlay / quit"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> Option<Action> {
        action(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn vim_and_arrow_keys_agree() {
        assert_eq!(press(KeyCode::Char('j')), press(KeyCode::Down));
        assert_eq!(press(KeyCode::Char('k')), press(KeyCode::Up));
        assert_eq!(press(KeyCode::Char('h')), press(KeyCode::Left));
        assert_eq!(press(KeyCode::Char('l')), press(KeyCode::Right));
        assert_eq!(press(KeyCode::Char('3')), Some(Action::View(3)));
        assert_eq!(press(KeyCode::Char('5')), None);
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }
}
