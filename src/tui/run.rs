//! The event loop: one channel for key input, resizes, ticks and worker results.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use faer::Par;

use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEventKind, MouseButton, MouseEventKind,
};

use crate::anatomy::{Anatomy, MatrixId};
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
    /// A preview thread of this generation ended: the block's display-precision analysis, or
    /// `None` when it needed none (or failed: the exact computation will say why).
    Preview(u64, MatrixId, Option<Box<Analysis>>),
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

/// A block's display-precision preview (`None` when the block needs none), on the threads of
/// the given [`Par`]; run off the worker, for the focused block only.
pub type Preview = Arc<dyn Fn(&Job, Par) -> Option<Result<Analysis, String>> + Send + Sync>;

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
    /// Previews of big blocks, shown until their exact values arrive (`None`: no previews).
    pub preview: Option<Preview>,
}

/// The app and worker of one opening of the checkpoint.
struct Session {
    app: App,
    worker: Worker,
    generation: u64,
    changed: Changed,
    polled: Instant,
    /// The jobs by block, for previews.
    jobs: HashMap<MatrixId, Job>,
    preview: Option<Preview>,
    /// A preview thread is running (one at a time).
    previewing: Arc<AtomicBool>,
    tx: Sender<Event>,
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
            preview,
        } = model;
        let blocks = jobs.iter().map(|j| j.block.clone()).collect();
        let by_id: HashMap<MatrixId, Job> = match preview {
            Some(_) => jobs.iter().map(|j| (j.block.id, j.clone())).collect(),
            None => HashMap::new(),
        };
        let mut app = App::new(title.to_owned(), &anatomy, blocks);
        if compare {
            app.enter_compare();
        }
        if let Some(old) = old {
            app = app.carrying(old);
        }
        app.randomized = randomized;
        let sink_tx = tx.clone();
        // With previews, the worker waits while the focused block's preview has every core.
        let held = preview.is_some() && app.focus().is_some_and(|f| by_id.contains_key(&f));
        let worker = Worker::start_with(
            jobs,
            |j: &Job| j.block.id,
            app.focus(),
            threads,
            held,
            compute,
            move |o| {
                let _ = sink_tx.send(Event::Result(generation, Box::new(o)));
            },
        )
        .map_err(std::io::Error::other)?;
        let mut session = Self {
            app,
            worker,
            generation,
            changed,
            polled: Instant::now(),
            jobs: by_id,
            preview,
            previewing: Arc::new(AtomicBool::new(false)),
            tx: tx.clone(),
        };
        let cores = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let focus = session.app.focus();
        if !focus.is_some_and(|f| session.start_preview(f, Par::rayon(cores))) {
            session.worker.release();
        }
        Ok(session)
    }

    /// Starts a preview of `id` on its own thread when the model has previews, the block has
    /// neither a result nor a preview yet, and no other preview runs; true if one started.
    fn start_preview(&mut self, id: MatrixId, par: Par) -> bool {
        let (Some(preview), Some(job)) = (&self.preview, self.jobs.get(&id)) else {
            return false;
        };
        if self.app.results.contains_key(&id)
            || self.app.previews.contains_key(&id)
            || self.previewing.swap(true, Ordering::SeqCst)
        {
            return false;
        }
        let (preview, job, tx) = (Arc::clone(preview), job.clone(), self.tx.clone());
        let (busy, generation) = (Arc::clone(&self.previewing), self.generation);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-preview", crate::worker::THREAD_NAME))
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| preview(&job, par)));
                let analysis = match result {
                    Ok(Some(Ok(a))) => Some(Box::new(a)),
                    _ => None,
                };
                busy.store(false, Ordering::SeqCst);
                let _ = tx.send(Event::Preview(generation, job.block.id, analysis));
            });
        if spawned.is_err() {
            self.previewing.store(false, Ordering::SeqCst);
        }
        spawned.is_ok()
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
                Event::Preview(generation, ..) if generation != session.generation => continue,
                Event::Preview(_, id, analysis) => {
                    worker.release();
                    if let Some(a) = analysis {
                        app.add_preview(id, *a);
                        dirty = true;
                    }
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
                        match sk.map(|sk| app.search_input(sk)) {
                            Some(Effect::Refocus(id)) => follow(worker, Effect::Refocus(id)),
                            _ => continue,
                        }
                    } else {
                        match action(key) {
                            Some(a) => follow(worker, app.handle(a)),
                            None => continue,
                        }
                    }
                }
                Event::Term(_) => continue,
            };
            match flow {
                Flow::Quit => return Ok(()),
                Flow::Focus(id) => {
                    // The worker's threads are busy: the preview gets one of its own.
                    session.start_preview(id, Par::Seq);
                }
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
    /// The focus moved to this block.
    Focus(MatrixId),
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
            Flow::Focus(id)
        }
        Effect::None => Flow::Continue,
    }
}
