//! The explorer's state and how actions change it; drawing and I/O live elsewhere.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;

use crate::anatomy::{Anatomy, Block, MatrixId, Proj};
use crate::compare::{ChangeKind, Comparison};
use crate::spectrum::{Analysis, SigmaMode, Unit};
use crate::worker::Progress;

pub use crate::rank::ScoreKind;
use crate::rank::{Filter, rank};

use super::hits::Target;
use super::keys::Action;
use super::nav::{Nav, Row};

/// The five views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One spectrum large, with every score.
    Spectrum,
    /// Every head of the focused projection as small histograms.
    Heads,
    /// A score per layer for q, k and v.
    Depth,
    /// Layers × heads of the focused projection, shaded by a score.
    Heatmap,
    /// Every computed block, strangest first by the current score.
    Ranked,
}

impl View {
    /// Number key and name, for the tab bar.
    pub fn label(self) -> &'static str {
        match self {
            View::Spectrum => "1 spectrum",
            View::Heads => "2 heads",
            View::Depth => "3 depth",
            View::Heatmap => "4 heatmap",
            View::Ranked => "5 ranked",
        }
    }

    /// All views in key order.
    pub const ALL: [View; 5] = [
        View::Spectrum,
        View::Heads,
        View::Depth,
        View::Heatmap,
        View::Ranked,
    ];
}

/// What happens on top of the current view.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Nothing.
    None,
    /// The key list.
    Help,
    /// Typing the ranked view's filter (kept in [`App::filter`]).
    Filter,
    /// Typing a tensor name to jump to.
    Search {
        /// What was typed.
        query: String,
        /// Selected match.
        selected: usize,
    },
}

/// What the event loop must do after an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing beyond redrawing.
    None,
    /// Tell the worker the focus moved.
    Refocus(MatrixId),
    /// Open the checkpoint again from disk, keeping the focus.
    Reopen,
    /// Compute every block again with its shuffled control, keeping the focus.
    Randomize,
    /// Leave the program.
    Quit,
}

/// One block's outcome: its analysis under the current σ mode, or why it failed.
pub type Outcome = Result<Analysis, String>;

/// Everything the screen shows.
pub struct App {
    /// Model title for the header (path or repo id).
    pub title: String,
    /// Family and sizes, one line.
    pub model_line: String,
    /// Where the user is.
    pub nav: Nav,
    /// Every block the worker computes, by id (for shapes, names and dtypes).
    pub blocks: HashMap<MatrixId, Block>,
    /// Results so far.
    pub results: HashMap<MatrixId, Outcome>,
    /// The current view.
    pub view: View,
    /// The score shown in grid, heatmap, profile and layer list.
    pub score: ScoreKind,
    /// σ mode for laws and scores.
    pub sigma_mode: SigmaMode,
    /// ν or λ axis.
    pub unit: Unit,
    /// Histogram bins in the spectrum view (`None` = one per column).
    pub bins: Option<usize>,
    /// Draw every value (true) or zoom on the MP bulk and count outliers at the edge.
    pub full_range: bool,
    /// The spectrum view shows the ESD's tail on log-log axes with its power-law fit.
    pub tail_view: bool,
    /// Overlay the shuffled control's histogram on the spectrum view.
    pub show_shuffled: bool,
    /// Overlay on top of the view.
    pub overlay: Overlay,
    /// Worker progress.
    pub progress: Progress,
    /// A one-line message for the footer (export done, no match, …).
    pub message: Option<String>,
    /// Where exports are written.
    pub export_dir: PathBuf,
    /// Set when a file of the checkpoint changed on disk since it was opened: which file and
    /// how, for the footer (the numbers shown are from the version opened).
    pub stale: Option<String>,
    /// The worker computes the shuffled control of every block (`--randomize`, or `R`).
    pub randomized: bool,
    /// The ranked view's filter, as typed (see [`Filter`]).
    pub filter: String,
    /// Histogram bins the spectrum view last drew (where `+`/`-` start from).
    pub shown_bins: Cell<usize>,
    /// Compare mode: the change score shown instead of [`App::score`] (`None` in single mode).
    pub change: Option<ChangeKind>,
    /// Compare mode: every finished comparison, by block (its other side is in `results`).
    pub comparisons: HashMap<MatrixId, Comparison>,
    /// Display-precision previews of big blocks, shown by the spectrum view until the exact
    /// result arrives (never scored elsewhere, never exported).
    pub previews: HashMap<MatrixId, Analysis>,
    /// Compare mode: the spectrum view shows ΔW's own spectrum instead of the two models'.
    pub delta_view: bool,
    /// First row of the help overlay shown, when it does not fit the terminal.
    pub help_scroll: usize,
}

impl App {
    /// A fresh explorer for a model whose blocks are about to be computed.
    pub fn new(title: String, anatomy: &Anatomy, blocks: Vec<Block>) -> Self {
        let heads = anatomy
            .num_heads
            .map(|h| h.to_string())
            .unwrap_or_else(|| "?".into());
        let kv = anatomy
            .num_kv_heads
            .map(|h| h.to_string())
            .unwrap_or_else(|| "?".into());
        let mut model_line = format!(
            "{} · {} layers · {} heads / {} kv",
            anatomy.family.label(),
            anatomy.num_layers,
            heads,
            kv
        );
        if let Some(n) = anatomy.num_experts {
            model_line.push_str(&format!(" · {n} experts"));
        }
        let total = blocks.len();
        Self {
            title,
            model_line,
            nav: Nav::new(anatomy),
            blocks: blocks.into_iter().map(|b| (b.id, b)).collect(),
            results: HashMap::new(),
            view: View::Spectrum,
            score: ScoreKind::Ks,
            sigma_mode: SigmaMode::Entry,
            unit: Unit::Singular,
            bins: None,
            full_range: false,
            tail_view: false,
            show_shuffled: false,
            overlay: Overlay::None,
            progress: Progress {
                done: 0,
                failed: 0,
                total,
                elapsed: Default::default(),
                eta: None,
            },
            // The anatomy's first caveat (e.g. head count unknown) greets the user.
            message: anatomy.notes().first().cloned(),
            export_dir: PathBuf::from("."),
            stale: None,
            randomized: false,
            filter: String::new(),
            shown_bins: Cell::new(40),
            change: None,
            comparisons: HashMap::new(),
            previews: HashMap::new(),
            delta_view: false,
            help_scroll: 0,
        }
    }

    /// Switches to compare mode: change scores, both spectra, ΔW on `d`.
    pub fn enter_compare(&mut self) {
        self.change = Some(ChangeKind::DeltaRel);
    }

    /// Stores a finished comparison (its analyses rescored if the σ mode changed while it
    /// ran); its other side goes in through [`App::add_result`].
    pub fn add_comparison(&mut self, id: MatrixId, mut c: Comparison) {
        if let Err(e) = rescore_comparison(&mut c, self.sigma_mode) {
            self.results.insert(id, Err(e));
            return;
        }
        self.comparisons.insert(id, c);
    }

    /// The comparison of `id`, in compare mode once computed.
    pub fn comparison(&self, id: &MatrixId) -> Option<&Comparison> {
        self.comparisons.get(id)
    }

    /// The name of the score shown (a change score in compare mode).
    pub fn score_name(&self) -> &'static str {
        self.change.map_or(self.score.name(), |c| c.name())
    }

    /// The shown score's short name, for narrow labels.
    pub fn score_short(&self) -> &'static str {
        self.change.map_or(self.score.short(), |c| c.short())
    }

    /// Farness 0..=1 of a value of the shown score against the largest seen.
    pub fn farness(&self, v: f64, max: f64) -> f64 {
        match self.change {
            Some(c) => c.farness(v, max),
            None => self.score.farness(v, max),
        }
    }

    /// The shown score's values at the close and far ends of the shading ramp.
    pub fn ramp_ends(&self, max: f64) -> (f64, f64) {
        match self.change {
            Some(_) => (0.0, max),
            None => self.score.ramp_ends(max),
        }
    }

    /// True when low values of the shown score are the strange ones.
    pub fn low_is_far(&self) -> bool {
        self.change.is_none() && self.score.low_is_far()
    }

    /// This fresh app (of a reopened checkpoint) with `old`'s view, score, σ mode, axis,
    /// bins, range and focus, where the focused block still exists.
    pub fn carrying(mut self, old: &App) -> Self {
        self.view = old.view;
        self.score = old.score;
        self.sigma_mode = old.sigma_mode;
        self.unit = old.unit;
        self.bins = old.bins;
        self.full_range = old.full_range;
        self.tail_view = old.tail_view;
        self.show_shuffled = old.show_shuffled;
        if self.change.is_some() {
            self.change = old.change.or(self.change);
            self.delta_view = old.delta_view;
        }
        self.export_dir = old.export_dir.clone();
        if let Some(id) = old.focus() {
            self.nav.select(id);
        }
        self
    }

    /// Stores a finished analysis (rescored if the σ mode changed while it ran) or its error.
    pub fn add_result(&mut self, id: MatrixId, result: Result<Analysis, String>) {
        let mode = self.sigma_mode;
        let outcome = result.and_then(|a| {
            if a.sigma.mode == mode {
                Ok(a)
            } else {
                a.rescored(mode).map_err(|e| e.to_string())
            }
        });
        self.results.insert(id, outcome);
    }

    /// Stores a block's preview (rescored to the current σ mode; a failure to rescore drops it:
    /// the exact result will follow).
    pub fn add_preview(&mut self, id: MatrixId, a: Analysis) {
        let a = match a.sigma.mode == self.sigma_mode {
            true => Some(a),
            false => a.rescored(self.sigma_mode).ok(),
        };
        if let Some(a) = a {
            self.previews.insert(id, a);
        }
    }

    /// The preview of `id`, while its exact result has not arrived.
    pub fn preview(&self, id: &MatrixId) -> Option<&Analysis> {
        match self.results.contains_key(id) {
            true => None,
            false => self.previews.get(id),
        }
    }

    /// The focused block's id.
    pub fn focus(&self) -> Option<MatrixId> {
        self.nav.focus()
    }

    /// The analysis of `id`, when done and successful.
    pub fn analysis(&self, id: &MatrixId) -> Option<&Analysis> {
        self.results.get(id).and_then(|r| r.as_ref().ok())
    }

    /// Score `kind` of block `id`, when available.
    /// In compare mode the change score shown, whatever `kind`.
    pub fn score_of(&self, id: &MatrixId, kind: ScoreKind) -> Option<f64> {
        if let Some(c) = self.change {
            return self.comparison(id).and_then(|cmp| c.value(cmp));
        }
        self.analysis(id).and_then(|a| kind.value(a))
    }

    /// The score of a projection in a layer: the whole matrix's, or the mean over its heads
    /// for `vector_p` (computed for heads) and when the whole matrix has none (routed
    /// experts: the mean over the experts).
    pub fn layer_score(&self, layer: usize, proj: Proj, kind: ScoreKind) -> Option<f64> {
        let whole = MatrixId::whole(Some(layer), proj);
        if (self.change.is_some() || kind != ScoreKind::VectorP)
            && let Some(v) = self.score_of(&whole, kind)
        {
            return Some(v);
        }
        self.mean_head_score(layer, proj, kind)
    }

    /// Mean of `kind` over the computed heads (or routed experts) of a projection in a layer.
    pub fn mean_head_score(&self, layer: usize, proj: Proj, kind: ScoreKind) -> Option<f64> {
        let vals: Vec<f64> = self
            .members(layer, proj)
            .iter()
            .filter_map(|id| self.score_of(id, kind))
            .collect();
        (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    }

    /// The heads (or routed experts) of a projection in a layer, as the grid and heatmap
    /// show them.
    pub fn members(&self, layer: usize, proj: Proj) -> Vec<MatrixId> {
        let Some(axis) = self.nav.axis_of(proj) else {
            return Vec::new();
        };
        let whole = MatrixId::whole(Some(layer), proj);
        (0..axis.len()).map(|i| axis.member(whole, i)).collect()
    }

    /// Number of heads (or routed experts) of a projection in this model (0 when it has
    /// none).
    pub fn head_count(&self, proj: Proj) -> usize {
        self.nav.axis_of(proj).map_or(0, |a| a.len())
    }

    /// Largest value of `kind` over every computed block of `proj` (for shading).
    /// In compare mode: the largest magnitude of the change score shown.
    pub fn max_score(&self, proj: Option<Proj>, kind: ScoreKind) -> f64 {
        if let Some(c) = self.change {
            return self
                .comparisons
                .iter()
                .filter(|(id, _)| proj.is_none_or(|p| id.proj == p))
                .filter_map(|(_, cmp)| c.value(cmp))
                .fold(0.0, |m, v| m.max(v.abs()));
        }
        self.results
            .iter()
            .filter(|(id, _)| proj.is_none_or(|p| id.proj == p))
            .filter_map(|(_, r)| r.as_ref().ok().and_then(|a| kind.value(a)))
            .fold(0.0, f64::max)
    }

    /// Re-scores every result under a new σ mode (spectra are kept, not recomputed).
    pub fn set_sigma_mode(&mut self, mode: SigmaMode) {
        self.sigma_mode = mode;
        let mut failed = Vec::new();
        for (id, c) in self.comparisons.iter_mut() {
            if let Err(e) = rescore_comparison(c, mode) {
                failed.push((*id, e));
            }
        }
        for (id, e) in failed {
            self.comparisons.remove(&id);
            self.results.insert(id, Err(e));
        }
        for r in self.results.values_mut() {
            if let Ok(a) = r {
                match a.rescored(mode) {
                    Ok(new) => *a = new,
                    Err(e) => *r = Err(e.to_string()),
                }
            }
        }
        self.previews = std::mem::take(&mut self.previews)
            .into_iter()
            .filter_map(|(id, a)| Some((id, a.rescored(mode).ok()?)))
            .collect();
    }

    /// Tensor names and ids matching a search query (case-insensitive substring).
    pub fn search(&self, query: &str) -> Vec<(String, MatrixId)> {
        let q = query.to_lowercase();
        let mut found: Vec<(String, MatrixId)> = self
            .blocks
            .values()
            .filter(|b| b.id.head.is_none())
            .filter(|b| {
                q.is_empty()
                    || b.tensor.to_lowercase().contains(&q)
                    || b.name.to_lowercase().contains(&q)
            })
            .map(|b| (b.tensor.clone(), b.id))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        found
    }

    /// Applies an action; says what the event loop must do next.
    pub fn handle(&mut self, action: Action) -> Effect {
        let before = self.focus();
        self.message = None;
        match action {
            Action::Quit => return Effect::Quit,
            Action::Back => {
                if self.overlay != Overlay::None {
                    self.overlay = Overlay::None;
                } else {
                    return Effect::Quit;
                }
            }
            // The help scrolls when it does not fit (the drawing clamps the row).
            Action::LayerDown | Action::PageDown if self.overlay == Overlay::Help => {
                self.help_scroll = self.help_scroll.saturating_add(1);
            }
            Action::LayerUp | Action::PageUp if self.overlay == Overlay::Help => {
                self.help_scroll = self.help_scroll.saturating_sub(1);
            }
            Action::Help => {
                self.help_scroll = 0;
                self.overlay = if self.overlay == Overlay::Help {
                    Overlay::None
                } else {
                    Overlay::Help
                };
            }
            Action::LayerDown if self.view == View::Ranked => self.move_ranked(1),
            Action::LayerUp if self.view == View::Ranked => self.move_ranked(-1),
            Action::PageDown if self.view == View::Ranked => self.move_ranked(10),
            Action::PageUp if self.view == View::Ranked => self.move_ranked(-10),
            Action::First if self.view == View::Ranked => self.move_ranked(isize::MIN),
            Action::Last if self.view == View::Ranked => self.move_ranked(isize::MAX),
            Action::LayerDown => self.nav.move_row(1),
            Action::LayerUp => self.nav.move_row(-1),
            Action::PageDown => self.nav.move_row(10),
            Action::PageUp => self.nav.move_row(-10),
            Action::First => self.nav.set_row(0),
            Action::Last => self.nav.set_row(usize::MAX),
            Action::HeadRight => self.nav.move_head(1),
            Action::HeadLeft => self.nav.move_head(-1),
            Action::ProjNext => self.nav.move_proj(1),
            Action::ProjPrev => self.nav.move_proj(-1),
            Action::View(n) => {
                if let Some(v) = View::ALL.get((n as usize).wrapping_sub(1)) {
                    self.set_view(*v);
                }
            }
            Action::ViewNext => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                self.set_view(View::ALL[(i + 1) % View::ALL.len()]);
            }
            Action::Zoom => {
                self.view = View::Spectrum;
            }
            Action::CycleScore => match self.change {
                Some(c) => self.change = Some(c.next()),
                None => self.score = self.score.next(),
            },
            Action::ToggleDelta if self.change.is_none() => {
                self.message = Some(
                    "d shows the change's spectrum in compare mode: mpscope OTHER --base BASE"
                        .into(),
                );
            }
            Action::ToggleDelta => {
                self.delta_view = !self.delta_view;
                self.view = View::Spectrum;
                self.message = Some(
                    if self.delta_view {
                        "spectrum of the change dW = other - base"
                    } else {
                        "spectra of both models (base dim)"
                    }
                    .into(),
                );
            }
            Action::ToggleShuffled if self.change.is_some() => {
                self.message = Some("no shuffled control in compare mode".into());
            }
            Action::CycleSigma => {
                let next = self.sigma_mode.next();
                self.set_sigma_mode(next);
                self.message = Some(format!("sigma mode: {next}"));
            }
            Action::ToggleAxis => {
                self.unit = match self.unit {
                    Unit::Singular => Unit::Eigen,
                    Unit::Eigen => Unit::Singular,
                };
            }
            Action::ToggleRange => self.full_range = !self.full_range,
            Action::ToggleTail => {
                self.tail_view = !self.tail_view;
                self.view = View::Spectrum;
            }
            Action::ToggleShuffled => {
                self.show_shuffled = !self.show_shuffled;
                self.view = View::Spectrum;
                if self.show_shuffled && !self.randomized {
                    self.message =
                        Some("computing every block's shuffled control, this one first".into());
                    return Effect::Randomize;
                }
                self.message = Some(
                    if self.show_shuffled {
                        "shuffled control shown"
                    } else {
                        "shuffled control hidden"
                    }
                    .into(),
                );
            }
            Action::MoreBins => {
                let b = self.bins.unwrap_or(self.shown_bins.get());
                self.bins = Some((b + (b / 4).max(1)).clamp(4, 400));
            }
            Action::FewerBins => {
                let b = self.bins.unwrap_or(self.shown_bins.get());
                self.bins = Some((b - b / 5).clamp(4, 400));
            }
            Action::Search if self.view == View::Ranked => self.overlay = Overlay::Filter,
            Action::Search => {
                self.overlay = Overlay::Search {
                    query: String::new(),
                    selected: 0,
                };
            }
            Action::Reopen => return Effect::Reopen,
            Action::Export => {
                self.message = Some(match self.export() {
                    Ok(path) => format!("exported to {}", path.display()),
                    Err(e) => format!("export failed: {e}"),
                });
            }
        }
        self.refocus_since(before)
    }

    /// Applies a mouse click on `target`: a tab switches view, a list row or glyph moves there,
    /// a head or heatmap cell focuses that block, and a click on the focused one opens it.
    pub fn click(&mut self, target: Target) -> Effect {
        let before = self.focus();
        self.message = None;
        match target {
            Target::View(v) => self.set_view(v),
            Target::Row(r) => self.nav.move_row(r as isize - self.nav.row as isize),
            Target::RowProj(r, proj) => match self.nav.rows.get(r) {
                Some(Row::Layer { layer, .. }) => {
                    self.nav.select(MatrixId::whole(Some(*layer), proj));
                }
                _ => self.nav.set_row(r),
            },
            Target::Block(id) if before == Some(id) => self.view = View::Spectrum,
            Target::Block(id) => {
                self.nav.select(id);
            }
        }
        self.refocus_since(before)
    }

    /// Switches view; the ranked view puts its cursor on its first row when the focus is not
    /// among its rows.
    fn set_view(&mut self, v: View) {
        self.view = v;
        if v == View::Ranked {
            self.cursor_into_ranking();
        }
    }

    /// Focuses the first ranked row when the focus is not one of the rows.
    fn cursor_into_ranking(&mut self) {
        let rows = self.ranked();
        if let Some((first, _)) = rows.first()
            && self.ranked_index(&rows).is_none()
        {
            self.nav.select(*first);
        }
    }

    /// Every computed block that passes the filter, strangest first by the current score,
    /// with its score (`None` last: failed, or no such score for that block).
    pub fn ranked(&self) -> Vec<(MatrixId, Option<f64>)> {
        let filter = Filter::new(&self.filter);
        let items = self
            .blocks
            .values()
            .filter(|b| filter.matches(b))
            .filter_map(|b| match self.results.get(&b.id) {
                Some(Ok(_)) if self.change.is_some() => Some((b, None)),
                Some(Ok(a)) => Some((b, Some(a))),
                Some(Err(_)) => Some((b, None)),
                None => None,
            });
        if self.change.is_some() {
            // Largest change first (shifts by magnitude), then plan order.
            let mut rows: Vec<(MatrixId, Option<f64>)> = items
                .map(|(b, _)| (b.id, self.score_of(&b.id, self.score)))
                .collect();
            rows.sort_by(|(ia, a), (ib, b)| {
                let mag = |v: &Option<f64>| v.map_or(f64::NEG_INFINITY, f64::abs);
                mag(b).total_cmp(&mag(a)).then_with(|| {
                    (ia.layer.is_none(), ia.layer, *ia).cmp(&(ib.layer.is_none(), ib.layer, *ib))
                })
            });
            return rows;
        }
        rank(items, self.score)
            .into_iter()
            .map(|(b, v)| (b.id, v))
            .collect()
    }

    /// Position of the focused block among ranked `rows` (the ranked view's cursor).
    pub fn ranked_index(&self, rows: &[(MatrixId, Option<f64>)]) -> Option<usize> {
        let focus = self.focus()?;
        rows.iter().position(|(id, _)| *id == focus)
    }

    /// Moves the ranked cursor `delta` rows (clamped; from the top when it is on no row).
    fn move_ranked(&mut self, delta: isize) {
        let rows = self.ranked();
        if rows.is_empty() {
            return;
        }
        let i = match self.ranked_index(&rows) {
            Some(i) => (i as isize)
                .saturating_add(delta)
                .clamp(0, rows.len() as isize - 1),
            None if delta == isize::MAX => rows.len() as isize - 1,
            None => 0,
        };
        self.nav.select(rows[i as usize].0);
    }

    /// `Refocus` when the focus moved away from `before`.
    fn refocus_since(&self, before: Option<MatrixId>) -> Effect {
        let after = self.focus();
        match after {
            Some(id) if after != before => Effect::Refocus(id),
            _ => Effect::None,
        }
    }

    /// Types a character into the ranked view's filter: the rows follow each key; Enter keeps
    /// the filter, Esc clears it, Up/Down move the cursor.
    fn filter_input(&mut self, key: SearchKey) -> Effect {
        let before = self.focus();
        match key {
            SearchKey::Char(c) => self.filter.push(c),
            SearchKey::Backspace => {
                self.filter.pop();
            }
            SearchKey::Down => self.move_ranked(1),
            SearchKey::Up => self.move_ranked(-1),
            SearchKey::Enter => self.overlay = Overlay::None,
            SearchKey::Cancel => {
                self.filter.clear();
                self.overlay = Overlay::None;
            }
        }
        self.cursor_into_ranking();
        self.refocus_since(before)
    }

    /// Types a character into the search overlay (or moves the selection / jumps on Enter),
    /// or into the ranked view's filter.
    pub fn search_input(&mut self, key: SearchKey) -> Effect {
        if self.overlay == Overlay::Filter {
            return self.filter_input(key);
        }
        let Overlay::Search { query, selected } = &mut self.overlay else {
            return Effect::None;
        };
        match key {
            SearchKey::Char(c) => {
                query.push(c);
                *selected = 0;
            }
            SearchKey::Backspace => {
                query.pop();
                *selected = 0;
            }
            SearchKey::Down => *selected += 1,
            SearchKey::Up => *selected = selected.saturating_sub(1),
            SearchKey::Cancel => self.overlay = Overlay::None,
            SearchKey::Enter => {
                let (q, sel) = (query.clone(), *selected);
                let found = self.search(&q);
                self.overlay = Overlay::None;
                match found.get(sel.min(found.len().saturating_sub(1))) {
                    Some((name, id)) => {
                        let before = self.focus();
                        self.nav.select(*id);
                        self.message = Some(format!("jumped to {name}"));
                        if self.focus() != before
                            && let Some(f) = self.focus()
                        {
                            return Effect::Refocus(f);
                        }
                    }
                    None => self.message = Some(format!("no tensor matches '{q}'")),
                }
            }
        }
        Effect::None
    }

    /// Writes the focused spectrum as JSON, a report matrix object plus the σ mode, σ of every
    /// mode and the singular values ([`crate::report::MatrixRecord::export`]); returns the file.
    pub fn export(&self) -> Result<PathBuf, String> {
        let id = self.focus().ok_or("nothing in focus")?;
        let a = self
            .analysis(&id)
            .ok_or("the focused spectrum is not computed yet")?;
        let block = self.blocks.get(&id).ok_or("unknown block")?;
        let stem: String = block
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = self.export_dir.join(format!("mpscope-{stem}.json"));
        let doc = crate::report::MatrixRecord::export(block, a);
        let mut doc = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
        // Compare mode: the record is the other side's; the base's and the change go beside it.
        if let (Some(c), Some(obj)) = (self.comparison(&id), doc.as_object_mut()) {
            let d = &c.delta;
            let compare = serde_json::json!({
                "base": crate::report::MatrixRecord::export(block, &c.base),
                "delta_rel": d.rel,
                "delta_rank": d.rank,
                "delta_rank_tol": d.rank_tol,
                "delta_stable_rank": d.stable_rank(),
                "delta_ks": d.ks(),
                "delta_top": d.top(3),
                "subspace_overlap": c.subspace_overlap,
                "ks_shift": c.ks_shift(),
                "alpha_shift": c.alpha_shift(),
                "unchanged": d.is_zero(),
                "note": d.learned_nothing,
                "delta_singular_values": d.values(),
            });
            obj.insert("compare".into(), compare);
        }
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Rescores both sides of a comparison and ΔW's own analysis under `mode`.
fn rescore_comparison(c: &mut Comparison, mode: SigmaMode) -> Result<(), String> {
    let again = |a: &mut Analysis| -> Result<(), String> {
        if a.sigma.mode != mode {
            *a = a.rescored(mode).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    again(&mut c.base)?;
    again(&mut c.other)?;
    if let Some(d) = &mut c.delta.analysis {
        again(d)?;
    }
    Ok(())
}

/// Keys the search overlay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKey {
    /// A typed character.
    Char(char),
    /// Delete the last character.
    Backspace,
    /// Next match.
    Down,
    /// Previous match.
    Up,
    /// Jump to the selected match.
    Enter,
    /// Close without jumping.
    Cancel,
}
