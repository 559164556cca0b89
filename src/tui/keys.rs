//! Every key binding in one table ([`BINDINGS`]): the key matcher, the `?` overlay, the footer
//! hints and the README's key table are all derived from it (as gitui does with its key config).
//!
//! A binding is one row of the help: the keys (each with the action it asks for), the help
//! text, and optionally a short footer hint with a priority (lower = shown first when the
//! footer is narrow). A new key is one more row here and one more [`Action`] arm in the app.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Next layer (down the list), or the next row of the ranked list.
    LayerDown,
    /// Previous layer, or the previous row of the ranked list.
    LayerUp,
    /// Next head (position 0 is the whole matrix).
    HeadRight,
    /// Previous head.
    HeadLeft,
    /// Next projection.
    ProjNext,
    /// Previous projection.
    ProjPrev,
    /// First layer (first ranked row).
    First,
    /// Last layer (last ranked row).
    Last,
    /// Ten layers (rows) down.
    PageDown,
    /// Ten layers (rows) up.
    PageUp,
    /// Switch to view 1–5.
    View(u8),
    /// Next view.
    ViewNext,
    /// Open the focused head (or the selected ranked block) in the spectrum view.
    Zoom,
    /// Cycle the score shown in grid, heatmap, profile and ranking.
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
    /// Compare mode: toggle ΔW's own spectrum in the spectrum view.
    ToggleDelta,
    /// More histogram bins.
    MoreBins,
    /// Fewer histogram bins.
    FewerBins,
    /// Start typing a tensor name to jump to (in the ranked view: a filter).
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

/// One key: a key code, with or without Ctrl, shown in the help or a hidden alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key code.
    pub code: KeyCode,
    /// Ctrl held.
    pub ctrl: bool,
    /// Listed in the help (false for aliases such as `=` for `+`).
    pub shown: bool,
}

/// A plain character key.
const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
        shown: true,
    }
}

/// A named key (arrows, Enter, …).
const fn code(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: false,
        shown: true,
    }
}

/// Ctrl plus a character.
const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
        shown: true,
    }
}

/// The same key, not listed in the help.
const fn alias(k: Key) -> Key {
    Key { shown: false, ..k }
}

impl Key {
    /// How the help writes this key.
    pub fn name(&self) -> String {
        let base = match self.code {
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "Up".into(),
            KeyCode::Down => "Down".into(),
            KeyCode::Left => "Left".into(),
            KeyCode::Right => "Right".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    fn matches(&self, ev: &KeyEvent) -> bool {
        self.code == ev.code && self.ctrl == ev.modifiers.contains(KeyModifiers::CONTROL)
    }
}

/// A short footer hint: shown when the footer has room, most important (lowest) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// Lower is more important; 0 is always shown.
    pub priority: u8,
    /// What the footer says, e.g. `j/k layer`.
    pub text: &'static str,
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys of this row, each with the action it asks for.
    pub keys: &'static [(Key, Action)],
    /// What the row does, for the help overlay and README.
    pub help: &'static str,
    /// The footer hint, if this row earns one.
    pub hint: Option<Hint>,
}

impl Binding {
    /// The keys as the help lists them, e.g. `j k Down Up`.
    pub fn label(&self) -> String {
        self.keys
            .iter()
            .filter(|(k, _)| k.shown)
            .map(|(k, _)| k.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const fn hint(priority: u8, text: &'static str) -> Option<Hint> {
    Some(Hint { priority, text })
}

use Action as A;

/// Every key binding, in help order.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[
            (ch('j'), A::LayerDown),
            (ch('k'), A::LayerUp),
            (code(KeyCode::Down), A::LayerDown),
            (code(KeyCode::Up), A::LayerUp),
        ],
        help: "next / previous layer (ranked view: row)",
        hint: hint(1, "j/k layer"),
    },
    Binding {
        keys: &[
            (ch('h'), A::HeadLeft),
            (ch('l'), A::HeadRight),
            (code(KeyCode::Left), A::HeadLeft),
            (code(KeyCode::Right), A::HeadRight),
        ],
        help: "previous / next head (0 = whole matrix) or expert",
        hint: hint(3, "h/l head"),
    },
    Binding {
        keys: &[
            (code(KeyCode::Tab), A::ProjNext),
            (code(KeyCode::BackTab), A::ProjPrev),
        ],
        help: "next / previous projection (q k v o, then MLP)",
        hint: hint(4, "Tab proj"),
    },
    Binding {
        keys: &[
            (ch('g'), A::First),
            (ch('G'), A::Last),
            (code(KeyCode::Home), A::First),
            (code(KeyCode::End), A::Last),
        ],
        help: "first / last layer",
        hint: None,
    },
    Binding {
        keys: &[
            (code(KeyCode::PageUp), A::PageUp),
            (code(KeyCode::PageDown), A::PageDown),
            (alias(ctrl('u')), A::PageUp),
            (alias(ctrl('d')), A::PageDown),
        ],
        help: "ten layers up / down",
        hint: None,
    },
    Binding {
        keys: &[
            (ch('1'), A::View(1)),
            (ch('2'), A::View(2)),
            (ch('3'), A::View(3)),
            (ch('4'), A::View(4)),
            (ch('5'), A::View(5)),
            (ch('v'), A::ViewNext),
        ],
        help: "view: spectrum heads depth heatmap ranked; v cycles",
        hint: hint(1, "1-5 view"),
    },
    Binding {
        keys: &[(code(KeyCode::Enter), A::Zoom)],
        help: "open the focused head or ranked row in the spectrum view",
        hint: hint(5, "Enter open"),
    },
    Binding {
        keys: &[(ch('s'), A::CycleScore)],
        help: "cycle the score shown (ks, alpha, ... or delta_rel, ...)",
        hint: hint(3, "s score"),
    },
    Binding {
        keys: &[(ch('m'), A::CycleSigma)],
        help: "cycle sigma mode: entry, fit, init",
        hint: hint(6, "m sigma"),
    },
    Binding {
        keys: &[(ch('x'), A::ToggleAxis)],
        help: "toggle axis: nu or lambda = nu^2/q",
        hint: hint(8, "x axis"),
    },
    Binding {
        keys: &[(ch('r'), A::ToggleRange)],
        help: "histogram range: the MP bulk, or every value",
        hint: None,
    },
    Binding {
        keys: &[(ch('t'), A::ToggleTail)],
        help: "ESD tail on log-log axes with its power-law fit (alpha)",
        hint: hint(9, "t tail"),
    },
    Binding {
        keys: &[(ch('R'), A::ToggleShuffled)],
        help: "overlay the shuffled control (computes it first)",
        hint: None,
    },
    Binding {
        keys: &[(ch('d'), A::ToggleDelta)],
        help: "compare mode: the change dW's own spectrum and MP law",
        hint: None,
    },
    Binding {
        keys: &[
            (ch('+'), A::MoreBins),
            (ch('-'), A::FewerBins),
            (alias(ch('=')), A::MoreBins),
            (alias(ch('_')), A::FewerBins),
        ],
        help: "more / fewer histogram bins",
        hint: None,
    },
    Binding {
        keys: &[(ch('/'), A::Search)],
        help: "jump to a tensor by name (ranked view: filter rows)",
        hint: hint(7, "/ find"),
    },
    Binding {
        keys: &[(ch('e'), A::Export)],
        help: "export the focused spectrum as JSON (report schema)",
        hint: None,
    },
    Binding {
        keys: &[(ch('o'), A::Reopen)],
        help: "reopen the checkpoint from disk, keeping the focus",
        hint: None,
    },
    Binding {
        keys: &[(ch('?'), A::Help), (alias(code(KeyCode::F(1))), A::Help)],
        help: "this help",
        hint: hint(0, "? help"),
    },
    Binding {
        keys: &[
            (code(KeyCode::Esc), A::Back),
            (ch('q'), A::Quit),
            (alias(ctrl('c')), A::Quit),
        ],
        help: "close overlay / quit",
        hint: hint(2, "q quit"),
    },
];

/// Mouse actions, listed after the keys in the help and README.
pub const MOUSE: &[(&str, &str)] = &[
    (
        "click",
        "tab, layer, q/k/v glyph, head, heatmap cell, ranked row",
    ),
    (
        "click it again",
        "open the clicked head in the spectrum view",
    ),
    ("wheel", "next / previous layer"),
];

/// The action a key press asks for in normal mode, if any.
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    BINDINGS
        .iter()
        .flat_map(|b| b.keys.iter())
        .find(|(k, _)| k.matches(&key))
        .map(|(_, a)| *a)
}

/// The help's rows: (keys, what they do) for every binding, then the mouse.
pub fn help_rows() -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .map(|b| (b.label(), b.help))
        .chain(MOUSE.iter().map(|(k, h)| (k.to_string(), *h)))
        .collect()
}

/// Footer hints that fit in `width` columns: the most important first, shown in table order,
/// two spaces apart; `? help` is always among them.
pub fn footer_hints(width: usize) -> String {
    let mut hints: Vec<(usize, Hint)> = BINDINGS
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.hint.map(|h| (i, h)))
        .collect();
    hints.sort_by_key(|(i, h)| (h.priority, *i));
    let mut chosen: Vec<(usize, Hint)> = Vec::new();
    let mut used = 0;
    for (i, h) in hints {
        let w = h.text.chars().count() + if chosen.is_empty() { 0 } else { 2 };
        if used + w <= width || h.priority == 0 {
            used += w;
            chosen.push((i, h));
        }
    }
    // `? help` goes last, where people look for it.
    chosen.sort_by_key(|(i, h)| (h.priority == 0, *i));
    chosen
        .iter()
        .map(|(_, h)| h.text)
        .collect::<Vec<_>>()
        .join("  ")
}

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
        assert_eq!(press(KeyCode::Char('5')), Some(Action::View(5)));
        assert_eq!(press(KeyCode::Char('6')), None);
        assert_eq!(press(KeyCode::Char('=')), Some(Action::MoreBins));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Some(Action::PageDown)
        );
        // Shift is part of the character (G), not a modifier the table asks for.
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Last)
        );
    }

    #[test]
    fn no_key_is_bound_twice() {
        let keys: Vec<Key> = BINDINGS
            .iter()
            .flat_map(|b| b.keys.iter().map(|(k, _)| *k))
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert!(
                    !(a.code == b.code && a.ctrl == b.ctrl),
                    "{} bound twice",
                    a.name()
                );
            }
        }
    }

    #[test]
    fn labels_list_the_shown_keys() {
        assert_eq!(BINDINGS[0].label(), "j k Down Up");
        assert_eq!(BINDINGS[4].label(), "PgUp PgDn");
        let plus = BINDINGS.iter().find(|b| b.help.contains("bins")).unwrap();
        assert_eq!(plus.label(), "+ -");
    }

    #[test]
    fn footer_keeps_the_important_hints_and_help_at_every_width() {
        let wide = footer_hints(200);
        assert_eq!(
            wide,
            "j/k layer  h/l head  Tab proj  1-5 view  Enter open  s score  m sigma  x axis  \
             t tail  / find  q quit  ? help"
        );
        for w in [20, 30, 40, 50, 60] {
            let f = footer_hints(w);
            assert!(f.chars().count() <= w, "{w}: {f}");
            assert!(f.ends_with("? help"), "{w}: {f}");
            assert!(f.contains("j/k layer"), "{w}: {f}");
        }
        assert_eq!(footer_hints(40), "j/k layer  1-5 view  q quit  ? help");
        // Too narrow for anything else: help alone.
        assert_eq!(footer_hints(6), "? help");
    }
}
