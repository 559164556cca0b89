//! The event loop: one channel for key input, resizes, ticks and worker results.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEventKind, MouseButton, MouseEventKind,
};

use crate::anatomy::Anatomy;
use crate::compare::Comparison;
use crate::scan::Job;
use crate::spectrum::Analysis;
use crate::worker::{Outcome, Worker};

use super::app::{App, Effect, Overlay, SearchKey};
use super::draw::draw;
use super::hits::Hits;
use super::keys::{Action, action};
use super::terminal::{Term, TerminalGuard};
use super::theme::Theme;

/// Everything the loop reacts to.
pub enum Event {
    /// A key, mouse or resize event from the terminal.
    Term(TermEvent),
    /// The terminal input could not be read.
    InputError(String),
    /// A block finished, computed by the worker of this generation (one per opening).
    Result(u64, Box<Outcome<Computed>>),
}

/// How often the screen refreshes while the worker runs (for the gauge and ETA).
const TICK: Duration = Duration::from_millis(200);

/// How often the checkpoint's files are looked at for changes on disk (two `stat`s a file).
const POLL: Duration = Duration::from_secs(1);

/// What the worker computed for one block: the analysis shown, and in compare mode the
/// comparison it came from (the analysis is then the other model's side).
pub struct Computed {
    /// The block's analysis (in compare mode: the other model's).
    pub analysis: Analysis,
    /// Both sides and ΔW, in compare mode.
    pub comparison: Option<Box<Comparison>>,
}

impl From<Analysis> for Computed {
    fn from(analysis: Analysis) -> Self {
        Self {
            analysis,
            comparison: None,
        }
    }
}

impl From<Comparison> for Computed {
    fn from(c: Comparison) -> Self {
        Self {
            analysis: c.other.clone(),
            comparison: Some(Box::new(c)),
        }
    }
}

/// A block's computation, run on worker threads.
pub type Compute = Box<dyn Fn(&Job) -> Result<Computed, String> + Send + Sync>;

/// Which file changed on disk since the model was opened and how, in a few words, if one did.
pub type Changed = Box<dyn Fn() -> Option<String> + Send>;

/// One opened checkpoint as the explorer runs it; opened again from disk on reopen.
pub struct Model {
    /// Layers, projections and heads.
    pub anatomy: Anatomy,
    /// Every block to compute.
    pub jobs: Vec<Job>,
    /// Computes one job.
    pub compute: Compute,
    /// Polled while the explorer runs; `Some` once a file changed on disk.
    pub changed: Changed,
    /// The jobs compute the shuffled control too.
    pub randomized: bool,
    /// Compare mode: the jobs compute a comparison each.
    pub compare: bool,
}

/// The app and worker of one opening of the checkpoint.
struct Session {
    app: App,
    worker: Worker,
    generation: u64,
    changed: Changed,
    polled: Instant,
}

impl Session {
    /// A fresh app for `model` (carrying `old`'s view and focus when reopening) and its
    /// worker, whose results are tagged `generation`.
    fn start(
        title: &str,
        model: Model,
        old: Option<&App>,
        threads: usize,
        tx: &Sender<Event>,
        generation: u64,
    ) -> std::io::Result<Self> {
        let Model {
            anatomy,
            jobs,
            compute,
            changed,
            randomized,
            compare,
        } = model;
        let blocks = jobs.iter().map(|j| j.block.clone()).collect();
        let mut app = App::new(title.to_owned(), &anatomy, blocks);
        if compare {
            app.enter_compare();
        }
        if let Some(old) = old {
            app = app.carrying(old);
        }
        app.randomized = randomized;
        let sink_tx = tx.clone();
        let worker = Worker::start(
            jobs,
            |j: &Job| j.block.id,
            app.focus(),
            threads,
            compute,
            move |o| {
                let _ = sink_tx.send(Event::Result(generation, Box::new(o)));
            },
        )
        .map_err(std::io::Error::other)?;
        Ok(Self {
            app,
            worker,
            generation,
            changed,
            polled: Instant::now(),
        })
    }

    /// Looks at the files now; true when a change was newly noticed.
    fn poll(&mut self) -> bool {
        self.polled = Instant::now();
        if self.app.stale.is_some() {
            return false;
        }
        self.app.stale = (self.changed)();
        self.app.stale.is_some()
    }
}

/// Starts the input thread, feeding terminal events into `tx`.
fn spawn_input(tx: Sender<Event>) {
    let fallback = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("mpscope-input".into())
        .spawn(move || {
            loop {
                match event::read() {
                    Ok(ev) => {
                        if tx.send(Event::Term(ev)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::InputError(e.to_string()));
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        let _ = fallback.send(Event::InputError(format!(
            "cannot start the input thread: {e}"
        )));
    }
}

/// Runs the explorer on `model` until the user quits; `reopen` opens the checkpoint again
/// from disk when the user asks (after it changed, or to add the shuffled control: its
/// argument says whether the jobs compute it).
pub fn run(
    title: &str,
    model: Model,
    mut reopen: impl FnMut(bool) -> Result<Model, String>,
    threads: usize,
    theme: Theme,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<Event>();
    let mut session = Session::start(title, model, None, threads, &tx, 0)?;
    let mut guard = TerminalGuard::enter()?;
    spawn_input(tx.clone());
    let mut reopen = |old: &Session, randomize: bool| -> Result<Session, String> {
        let model = reopen(randomize || old.app.randomized)?;
        Session::start(
            title,
            model,
            Some(&old.app),
            threads,
            &tx,
            old.generation + 1,
        )
        .map_err(|e| e.to_string())
    };
    let result = event_loop(&mut guard.terminal, &mut session, &rx, &mut reopen, &theme);
    drop(guard);
    session.worker.cancel_all();
    result
}

fn event_loop(
    term: &mut Term,
    session: &mut Session,
    rx: &Receiver<Event>,
    reopen: &mut dyn FnMut(&Session, bool) -> Result<Session, String>,
    theme: &Theme,
) -> std::io::Result<()> {
    let mut dirty = true;
    let mut hits = Hits::default();
    loop {
        session.app.progress = session.worker.progress();
        if dirty {
            term.draw(|f| hits = draw(f, &session.app, theme))?;
            dirty = false;
        }
        // Idle, the loop still wakes every POLL to look at the files (no redraw unless
        // something changed).
        let running = !session.app.progress.finished();
        let first = match rx.recv_timeout(if running { TICK } else { POLL }) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => {
                dirty |= running;
                None
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        if session.polled.elapsed() >= POLL {
            dirty |= session.poll();
        }
        let Some(first) = first else { continue };
        // Handle everything already waiting before drawing once.
        let mut pending = vec![first];
        while let Ok(ev) = rx.try_recv() {
            pending.push(ev);
            if pending.len() > 512 {
                break;
            }
        }
        for ev in pending {
            let app = &mut session.app;
            let worker = &session.worker;
            let flow = match ev {
                // Results of an earlier opening are never mixed with this one's.
                Event::Result(generation, _) if generation != session.generation => continue,
                Event::Result(_, o) => {
                    let failed = o.result.is_err();
                    let result = o.result.map(|c| {
                        if let Some(cmp) = c.comparison {
                            app.add_comparison(o.id, *cmp);
                        }
                        c.analysis
                    });
                    app.add_result(o.id, result);
                    if failed {
                        // A block may have failed because its file changed: say so now.
                        session.poll();
                    }
                    dirty = true;
                    continue;
                }
                Event::InputError(e) => {
                    return Err(std::io::Error::other(format!(
                        "reading terminal input: {e}"
                    )));
                }
                Event::Term(TermEvent::Resize(..)) => {
                    dirty = true;
                    continue;
                }
                Event::Term(TermEvent::Mouse(m)) => {
                    let effect = match m.kind {
                        MouseEventKind::ScrollDown => app.handle(Action::LayerDown),
                        MouseEventKind::ScrollUp => app.handle(Action::LayerUp),
                        MouseEventKind::Down(MouseButton::Left) => match hits.at(m.column, m.row) {
                            Some(target) => app.click(target),
                            None => continue,
                        },
                        _ => continue,
                    };
                    dirty = true;
                    follow(worker, effect)
                }
                Event::Term(TermEvent::Key(key)) => {
                    if key.kind == KeyEventKind::Release {
                        continue;
                    }
                    dirty = true;
                    if matches!(app.overlay, Overlay::Search { .. } | Overlay::Filter) {
                        let sk = match key.code {
                            KeyCode::Char(c)
                                if !key
                                    .modifiers
                                    .contains(ratatui::crossterm::event::KeyModifiers::CONTROL) =>
                            {
                                Some(SearchKey::Char(c))
                            }
                            KeyCode::Backspace => Some(SearchKey::Backspace),
                            KeyCode::Down | KeyCode::Tab => Some(SearchKey::Down),
                            KeyCode::Up | KeyCode::BackTab => Some(SearchKey::Up),
                            KeyCode::Enter => Some(SearchKey::Enter),
                            KeyCode::Esc => Some(SearchKey::Cancel),
                            _ => None,
                        };
                        if let Some(sk) = sk
                            && let Effect::Refocus(id) = app.search_input(sk)
                        {
                            worker.refocus(id);
                        }
                        continue;
                    }
                    match action(key) {
                        Some(a) => follow(worker, app.handle(a)),
                        None => continue,
                    }
                }
                Event::Term(_) => continue,
            };
            match flow {
                Flow::Quit => return Ok(()),
                Flow::Reopen { randomize } => match reopen(session, randomize) {
                    Ok(fresh) => {
                        let old = std::mem::replace(session, fresh);
                        old.worker.cancel_all();
                        session.app.message = Some(if randomize {
                            "computing every block's shuffled control, this one first".into()
                        } else {
                            format!("reopened {}", session.app.title)
                        });
                    }
                    Err(e) => session.app.message = Some(format!("reopen failed: {e}")),
                },
                Flow::Continue => {}
            }
        }
    }
}

/// What the loop does after an action or click.
enum Flow {
    Continue,
    Quit,
    /// Open the checkpoint again; with `randomize`, computing the shuffled control too.
    Reopen {
        randomize: bool,
    },
}

/// Carries out what an action or click asks of the worker; says what the loop does next.
fn follow(worker: &Worker, effect: Effect) -> Flow {
    match effect {
        Effect::Quit => Flow::Quit,
        Effect::Reopen => Flow::Reopen { randomize: false },
        Effect::Randomize => Flow::Reopen { randomize: true },
        Effect::Refocus(id) => {
            worker.refocus(id);
            Flow::Continue
        }
        Effect::None => Flow::Continue,
    }
}
