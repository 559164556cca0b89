//! The event loop: one channel for key input, resizes, ticks and worker results.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEventKind, MouseButton, MouseEventKind,
};

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
    /// A block finished.
    Result(Box<Outcome<Analysis>>),
}

/// How often the screen refreshes while the worker runs (for the gauge and ETA).
const TICK: Duration = Duration::from_millis(200);

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

/// Runs the explorer until the user quits. The worker computes `jobs` with `compute`.
pub fn run<F>(
    mut app: App,
    jobs: Vec<Job>,
    threads: usize,
    compute: F,
    theme: Theme,
) -> std::io::Result<()>
where
    F: Fn(&Job) -> Result<Analysis, String> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel::<Event>();
    let sink_tx = tx.clone();
    let worker = Worker::start(
        jobs,
        |j: &Job| j.block.id,
        app.focus(),
        threads,
        compute,
        move |o| {
            let _ = sink_tx.send(Event::Result(Box::new(o)));
        },
    )
    .map_err(std::io::Error::other)?;
    let mut guard = TerminalGuard::enter()?;
    spawn_input(tx);
    let worker = Arc::new(worker);
    let result = event_loop(&mut guard.terminal, &mut app, &rx, &worker, &theme);
    drop(guard);
    worker.cancel_all();
    result
}

fn event_loop(
    term: &mut Term,
    app: &mut App,
    rx: &Receiver<Event>,
    worker: &Worker,
    theme: &Theme,
) -> std::io::Result<()> {
    let mut dirty = true;
    let mut hits = Hits::default();
    loop {
        app.progress = worker.progress();
        if dirty {
            term.draw(|f| hits = draw(f, app, theme))?;
            dirty = false;
        }
        let running = !app.progress.finished();
        let first = if running {
            match rx.recv_timeout(TICK) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => {
                    dirty = true;
                    None
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            match rx.recv() {
                Ok(ev) => Some(ev),
                Err(_) => return Ok(()),
            }
        };
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
            match ev {
                Event::Result(o) => {
                    app.add_result(o.id, o.result);
                    dirty = true;
                }
                Event::InputError(e) => {
                    return Err(std::io::Error::other(format!(
                        "reading terminal input: {e}"
                    )));
                }
                Event::Term(TermEvent::Resize(..)) => dirty = true,
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
                    if follow(worker, effect) {
                        return Ok(());
                    }
                    dirty = true;
                }
                Event::Term(TermEvent::Key(key)) => {
                    if key.kind == KeyEventKind::Release {
                        continue;
                    }
                    dirty = true;
                    if matches!(app.overlay, Overlay::Search { .. }) {
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
                    if let Some(a) = action(key)
                        && apply(app, worker, a)
                    {
                        return Ok(());
                    }
                }
                Event::Term(_) => {}
            }
        }
    }
}

/// Applies an action; true when the user quits.
fn apply(app: &mut App, worker: &Worker, a: Action) -> bool {
    follow(worker, app.handle(a))
}

/// Carries out what an action or click asks of the loop; true when the user quits.
fn follow(worker: &Worker, effect: Effect) -> bool {
    match effect {
        Effect::Quit => true,
        Effect::Refocus(id) => {
            worker.refocus(id);
            false
        }
        Effect::None => false,
    }
}
