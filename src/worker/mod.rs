//! Background computation of spectra: a priority queue drained by a rayon pool.
//!
//! The worker knows jobs only by their [`MatrixId`] (for ordering) and runs a caller-given
//! function on each; results stream to a caller-given sink as soon as each job is done.
//! It knows nothing of drawing.

mod batch;
mod queue;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::anatomy::MatrixId;

pub use batch::{Batch, run_batch};
pub use queue::{Pending, tier};

/// Name given to the worker's threads (the TUI's panic hook recognises them).
pub const THREAD_NAME: &str = "mpscope-worker";

/// One finished job, sent to the sink.
#[derive(Debug, Clone)]
pub struct Outcome<R> {
    /// Index of the job in the list the worker was started with.
    pub index: usize,
    /// The job's block.
    pub id: MatrixId,
    /// The result, or a one-line reason it failed (a panic inside the job included).
    pub result: Result<R, String>,
    /// Wall time the job took.
    pub elapsed: Duration,
}

/// How far the worker has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Jobs finished (successfully or not).
    pub done: usize,
    /// Jobs that ended in an error.
    pub failed: usize,
    /// Jobs in all, less the cancelled ones.
    pub total: usize,
    /// Time since the worker started (frozen once everything is done).
    pub elapsed: Duration,
    /// Estimated time left, once at least one job finished.
    pub eta: Option<Duration>,
}

impl Progress {
    /// True once every job that was not cancelled has finished.
    pub fn finished(&self) -> bool {
        self.done >= self.total
    }
}

struct State {
    pending: Pending,
    /// Threads wait without taking jobs until [`Worker::release`].
    held: bool,
    focus: Option<MatrixId>,
    running: usize,
    shutdown: bool,
    finished_at: Option<Instant>,
}

struct Shared {
    ids: Vec<MatrixId>,
    state: Mutex<State>,
    wake: Condvar,
    idle: Condvar,
    done: AtomicUsize,
    failed: AtomicUsize,
    cancelled: AtomicUsize,
    stop: AtomicBool,
    start: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a job panicked while we held it, which never happens
        // (jobs run unlocked); recover the state either way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker's threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start worker threads: {0}")]
pub struct StartError(#[from] rayon::ThreadPoolBuildError);

/// Runs jobs in the background, most relevant first, and reports each as it finishes.
pub struct Worker {
    shared: Arc<Shared>,
    _pool: rayon::ThreadPool,
}

impl Worker {
    /// Starts `threads` workers (0 = one per core) over `jobs`, calling `compute` on each and
    /// `sink` with every outcome.
    pub fn start<J, R, F, S>(
        jobs: Vec<J>,
        key: impl Fn(&J) -> MatrixId,
        focus: Option<MatrixId>,
        threads: usize,
        compute: F,
        sink: S,
    ) -> Result<Self, StartError>
    where
        J: Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(&J) -> Result<R, String> + Send + Sync + 'static,
        S: Fn(Outcome<R>) + Send + Sync + 'static,
    {
        Self::start_with(jobs, key, focus, threads, false, compute, sink)
    }

    /// Lets held threads take jobs (see [`Worker::start_with`]); does nothing otherwise.
    pub fn release(&self) {
        let mut st = self.shared.lock();
        if st.held {
            st.held = false;
            drop(st);
            self.shared.wake.notify_all();
        }
    }

    /// As [`Worker::start`]; when `held`, its threads take no job until [`Worker::release`]
    /// (so that something else, such as a preview of the focused block, has every core first).
    pub fn start_with<J, R, F, S>(
        jobs: Vec<J>,
        key: impl Fn(&J) -> MatrixId,
        focus: Option<MatrixId>,
        threads: usize,
        held: bool,
        compute: F,
        sink: S,
    ) -> Result<Self, StartError>
    where
        J: Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(&J) -> Result<R, String> + Send + Sync + 'static,
        S: Fn(Outcome<R>) + Send + Sync + 'static,
    {
        let ids: Vec<MatrixId> = jobs.iter().map(&key).collect();
        let pending = Pending::all(ids.len(), &ids, focus.as_ref());
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let empty = jobs.is_empty();
        let shared = Arc::new(Shared {
            ids,
            state: Mutex::new(State {
                pending,
                held,
                focus,
                running: 0,
                shutdown: false,
                finished_at: if empty { Some(Instant::now()) } else { None },
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            start: Instant::now(),
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("{THREAD_NAME}-{i}"))
            .build()?;
        let jobs = Arc::new(jobs);
        let compute = Arc::new(compute);
        let sink = Arc::new(sink);
        for _ in 0..threads {
            let (shared, jobs, compute, sink) = (
                Arc::clone(&shared),
                Arc::clone(&jobs),
                Arc::clone(&compute),
                Arc::clone(&sink),
            );
            pool.spawn(move || run_loop(&shared, &jobs, &*compute, &*sink));
        }
        Ok(Self {
            shared,
            _pool: pool,
        })
    }

    /// Moves `id` (then its layer and projection) to the front of what is pending.
    pub fn refocus(&self, id: MatrixId) {
        let mut st = self.shared.lock();
        if st.focus == Some(id) {
            return;
        }
        st.focus = Some(id);
        let State { pending, focus, .. } = &mut *st;
        pending.reorder(&self.shared.ids, focus.as_ref());
    }

    /// Drops every pending job whose block `which` selects; running jobs finish.
    pub fn cancel(&self, which: impl Fn(&MatrixId) -> bool) -> usize {
        let mut st = self.shared.lock();
        let ids = &self.shared.ids;
        let n = st.pending.cancel(|i| which(&ids[i]));
        self.shared.cancelled.fetch_add(n, Ordering::SeqCst);
        self.mark_if_finished(&mut st);
        n
    }

    /// Drops everything pending; the worker ends once running jobs finish.
    pub fn cancel_all(&self) -> usize {
        self.cancel(|_| true)
    }

    fn mark_if_finished(&self, st: &mut State) {
        if st.pending.is_empty() && st.running == 0 && st.finished_at.is_none() {
            st.finished_at = Some(Instant::now());
            self.shared.idle.notify_all();
        }
    }

    /// Done, failed, total, elapsed and ETA right now.
    pub fn progress(&self) -> Progress {
        let st = self.shared.lock();
        let done = self.shared.done.load(Ordering::SeqCst);
        let failed = self.shared.failed.load(Ordering::SeqCst);
        let total = self.shared.ids.len() - self.shared.cancelled.load(Ordering::SeqCst);
        let elapsed = match st.finished_at {
            Some(t) => t.duration_since(self.shared.start),
            None => self.shared.start.elapsed(),
        };
        let eta = (done > 0 && done < total)
            .then(|| elapsed.mul_f64((total - done) as f64 / done as f64));
        Progress {
            done,
            failed,
            total,
            elapsed,
            eta,
        }
    }

    /// Blocks until every job that was not cancelled has finished.
    pub fn wait(&self) {
        let mut st = self.shared.lock();
        while !(st.pending.is_empty() && st.running == 0) {
            st = self.shared.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut st = self.shared.lock();
        st.shutdown = true;
        let n = st.pending.cancel(|_| true);
        self.shared.cancelled.fetch_add(n, Ordering::SeqCst);
        drop(st);
        self.shared.wake.notify_all();
    }
}

fn run_loop<J, R>(
    shared: &Shared,
    jobs: &[J],
    compute: &(dyn Fn(&J) -> Result<R, String> + Send + Sync),
    sink: &(dyn Fn(Outcome<R>) + Send + Sync),
) {
    loop {
        let index = {
            let mut st = shared.lock();
            loop {
                if st.shutdown {
                    return;
                }
                if st.held {
                    st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                if let Some(i) = st.pending.pop() {
                    st.running += 1;
                    break i;
                }
                if st.running == 0 {
                    // Nothing left to do: wake waiters and park until shutdown.
                    if st.finished_at.is_none() {
                        st.finished_at = Some(Instant::now());
                    }
                    shared.idle.notify_all();
                }
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let t0 = Instant::now();
        let result = match catch_unwind(AssertUnwindSafe(|| compute(&jobs[index]))) {
            Ok(r) => r,
            Err(payload) => Err(format!("internal error: {}", panic_message(&*payload))),
        };
        let elapsed = t0.elapsed();
        if result.is_err() {
            shared.failed.fetch_add(1, Ordering::SeqCst);
        }
        shared.done.fetch_add(1, Ordering::SeqCst);
        if !shared.stop.load(Ordering::SeqCst) {
            sink(Outcome {
                index,
                id: shared.ids[index],
                result,
                elapsed,
            });
        }
        let mut st = shared.lock();
        st.running -= 1;
        if st.pending.is_empty() && st.running == 0 {
            if st.finished_at.is_none() {
                st.finished_at = Some(Instant::now());
            }
            shared.idle.notify_all();
        }
    }
}

/// The text of a panic payload, when it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".to_string()
    }
}
