//! Running a whole job list to the end (headless: the report), biggest jobs first.

use std::sync::mpsc;
use std::time::Duration;

use super::{Progress, StartError, Worker};
use crate::anatomy::MatrixId;

/// The results of a batch, in the order of the jobs given.
#[derive(Debug)]
pub struct Batch<R> {
    /// One result per job ("not computed" when the run was interrupted first).
    pub results: Vec<Result<R, String>>,
    /// Time the run took.
    pub elapsed: Duration,
    /// False when `stop` ended the run early.
    pub complete: bool,
}

/// Computes every job on `threads` threads (0 = one per core), the costliest first so that
/// small ones fill the threads at the end; calls `progress` now and then, and stops early,
/// keeping what finished, once `stop` says so (checked every 100 ms).
pub fn run_batch<J, R>(
    jobs: Vec<J>,
    key: impl Fn(&J) -> MatrixId,
    cost: impl Fn(&J) -> u128,
    threads: usize,
    compute: impl Fn(&J) -> Result<R, String> + Send + Sync + 'static,
    mut progress: impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Batch<R>, StartError>
where
    J: Send + Sync + 'static,
    R: Send + 'static,
{
    let n = jobs.len();
    let mut by_cost: Vec<(usize, J)> = jobs.into_iter().enumerate().collect();
    by_cost.sort_by_key(|(_, j)| std::cmp::Reverse(cost(j)));
    let (order, jobs): (Vec<usize>, Vec<J>) = by_cost.into_iter().unzip();
    let (tx, rx) = mpsc::channel();
    let worker = Worker::start(jobs, key, None, threads, compute, move |o| {
        let _ = tx.send(o);
    })?;
    let mut slots: Vec<Option<Result<R, String>>> = (0..n).map(|_| None).collect();
    let mut received = 0;
    let mut complete = true;
    while received < n {
        if stop() {
            worker.cancel_all();
            complete = false;
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(o) => {
                slots[order[o.index]] = Some(o.result);
                received += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        progress(&worker.progress());
    }
    if complete {
        worker.wait();
    }
    let elapsed = worker.progress().elapsed;
    let missing = if complete {
        "not computed"
    } else {
        "not computed: interrupted"
    };
    Ok(Batch {
        results: slots
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing.into())))
            .collect(),
        elapsed,
        complete,
    })
}
