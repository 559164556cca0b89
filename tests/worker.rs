//! The background worker: order, refocus, cancellation, failures and progress.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpscope::anatomy::{MatrixId, Proj};
use mpscope::worker::{Outcome, Worker};

fn id(layer: usize, proj: Proj, head: Option<usize>) -> MatrixId {
    MatrixId {
        layer: Some(layer),
        proj,
        head,
        expert: None,
    }
}

/// A small model's worth of ids: 3 layers × (q, k) × (whole + 2 heads).
fn ids() -> Vec<MatrixId> {
    let mut v = Vec::new();
    for l in 0..3 {
        for p in [Proj::Q, Proj::K] {
            v.push(id(l, p, None));
            v.push(id(l, p, Some(0)));
            v.push(id(l, p, Some(1)));
        }
    }
    v
}

fn collect(rx: &mpsc::Receiver<Outcome<usize>>, n: usize) -> Vec<Outcome<usize>> {
    (0..n)
        .map(|_| rx.recv_timeout(Duration::from_secs(20)).expect("outcome"))
        .collect()
}

#[test]
fn one_thread_runs_focus_then_its_projection_then_layer_then_rest() {
    let jobs = ids();
    let focus = id(1, Proj::K, Some(1));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let w = Worker::start(
        jobs.clone(),
        |j| *j,
        Some(focus),
        1,
        |j: &MatrixId| Ok(j.layer.unwrap_or(0)),
        move |o| tx.lock().unwrap().send(o).unwrap(),
    )
    .unwrap();
    let order: Vec<MatrixId> = collect(&rx, jobs.len()).into_iter().map(|o| o.id).collect();
    w.wait();
    assert_eq!(order[0], focus);
    assert!(
        order[1..3]
            .iter()
            .all(|m| m.layer == Some(1) && m.proj == Proj::K)
    );
    assert!(
        order[3..6]
            .iter()
            .all(|m| m.layer == Some(1) && m.proj == Proj::Q)
    );
    let rest: Vec<usize> = order[6..].iter().map(|m| m.layer.unwrap()).collect();
    assert!(
        rest.windows(2).all(|w| w[0] <= w[1]),
        "layer order: {rest:?}"
    );
    let p = w.progress();
    assert_eq!((p.done, p.failed, p.total), (jobs.len(), 0, jobs.len()));
    assert!(p.finished());
}

#[test]
fn refocus_reorders_pending_work_without_losing_any() {
    let jobs = ids();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate = Mutex::new(gate_rx);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let first = jobs[0];
    let w = Worker::start(
        jobs.clone(),
        |j| *j,
        None,
        1,
        move |j: &MatrixId| {
            if *j == first {
                // Hold the only thread until the test has refocused.
                gate.lock().unwrap().recv().unwrap();
            }
            Ok(0usize)
        },
        move |o| tx.lock().unwrap().send(o).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let target = id(2, Proj::Q, Some(1));
    w.refocus(target);
    gate_tx.send(()).unwrap();
    let order: Vec<MatrixId> = collect(&rx, jobs.len()).into_iter().map(|o| o.id).collect();
    assert_eq!(order[0], first);
    assert_eq!(order[1], target);
    assert!(
        order[2..4]
            .iter()
            .all(|m| m.layer == Some(2) && m.proj == Proj::Q)
    );
    let mut sorted = order.clone();
    sorted.sort();
    let mut expect = jobs.clone();
    expect.sort();
    assert_eq!(sorted, expect, "every job ran exactly once");
}

#[test]
fn cancelled_jobs_never_run_and_progress_counts_them_out() {
    let jobs = ids();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate = Mutex::new(gate_rx);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let ran2 = Arc::clone(&ran);
    let first = jobs[0];
    let w = Worker::start(
        jobs.clone(),
        |j| *j,
        None,
        1,
        move |j: &MatrixId| {
            if *j == first {
                gate.lock().unwrap().recv().unwrap();
            }
            ran2.lock().unwrap().push(*j);
            Ok(0usize)
        },
        |_| {},
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let n = w.cancel(|m| m.head.is_some());
    assert_eq!(n, 12, "all 12 head jobs were pending");
    gate_tx.send(()).unwrap();
    w.wait();
    let ran = ran.lock().unwrap();
    assert_eq!(ran.len(), 6);
    assert!(ran.iter().all(|m| m.head.is_none()));
    let p = w.progress();
    assert_eq!((p.done, p.total), (6, 6));
    assert!(p.finished());
}

#[test]
fn a_panicking_job_is_an_error_result_and_the_rest_still_run() {
    let jobs = ids();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let bad = id(1, Proj::Q, Some(0));
    let w = Worker::start(
        jobs.clone(),
        |j| *j,
        None,
        2,
        move |j: &MatrixId| {
            if *j == bad {
                panic!("deliberate failure in {j:?}");
            }
            Ok(1usize)
        },
        move |o| tx.lock().unwrap().send(o).unwrap(),
    )
    .unwrap();
    let all = collect(&rx, jobs.len());
    w.wait();
    let failed: Vec<&Outcome<usize>> = all.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, bad);
    let msg = failed[0].result.as_ref().unwrap_err();
    assert!(msg.contains("deliberate failure"), "{msg}");
    assert_eq!(w.progress().failed, 1);
    assert_eq!(
        all.iter().filter(|o| o.result.is_ok()).count(),
        jobs.len() - 1
    );
}

#[test]
fn dropping_the_worker_stops_it_and_an_empty_job_list_is_finished() {
    let w = Worker::start(
        Vec::<MatrixId>::new(),
        |j| *j,
        None,
        1,
        |_: &MatrixId| Ok(()),
        |_| {},
    )
    .unwrap();
    w.wait();
    assert!(w.progress().finished());
    drop(w);
    let slow = Worker::start(
        ids(),
        |j| *j,
        None,
        1,
        |_: &MatrixId| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    drop(slow);
}

#[test]
fn a_held_worker_takes_no_job_until_released() {
    let ids = ids();
    let n = ids.len();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let w = Worker::start_with(
        ids,
        |id: &MatrixId| *id,
        None,
        2,
        true,
        |id: &MatrixId| Ok(id.layer.unwrap_or(0)),
        move |o| {
            let _ = tx.lock().unwrap().send(o);
        },
    )
    .unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    assert_eq!(w.progress().done, 0);
    w.release();
    w.release(); // a second release is harmless
    w.wait();
    assert_eq!(collect(&rx, n).len(), n);
}
