//! A checkpoint that changes on disk while mpscope reads it: the blocks of the changed file
//! fail with a clear error, the others are computed and reported, and nothing crashes. And a
//! report stopped by a signal still writes the blocks it finished.
#![allow(clippy::single_range_in_vec_init)] // one row range is the whole matrix

mod common;
use common::{rewrite_in_place, synth};

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpscope::checkpoint::{Checkpoint, Selection};

/// A 6-layer Llama (hidden 1024, 16 heads / 8 kv) in two shards: layers 0–2 in the first,
/// 3–5 in the second; `extra` flags added.
fn two_shards(dir: &Path, extra: &[&str]) {
    let shape = [
        "--layers",
        "6",
        "--hidden",
        "1024",
        "--heads",
        "16",
        "--kv-heads",
        "8",
    ];
    let rest = ["--intermediate", "1024", "--vocab", "1000", "--shards", "2"];
    synth(dir, &[&shape[..], &rest, extra].concat());
}

const SHARD2: &str = "model-00002-of-00002.safetensors";

/// Threads of a running process (Linux).
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Starts `mpscope report DIR args… -o DIR/out.json` on one worker thread and returns once
/// that thread runs: the checkpoint is open (headers read) and signal handlers are in place.
fn start_report(dir: &Path, args: &[&str]) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args([
            "report",
            dir.to_str().unwrap(),
            "--threads",
            "1",
            "--no-cache",
        ])
        .args(args)
        .arg("-o")
        .arg(dir.join("out.json"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while threads(child.id()) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the worker never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child
}

#[test]
fn report_keeps_finished_blocks_when_a_shard_is_truncated_under_it() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path(), &[]);
    let out = dir.path().join("out.json");
    // One worker thread, whole q matrices only: the report computes them biggest first, all
    // of one size, so in layer order: the first shard's three layers (~0.3 s of CPU) come
    // before any block of the second. Truncated as soon as the worker starts.
    let child = start_report(dir.path(), &["--proj", "q", "--no-heads"]);
    let shard = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(SHARD2))
        .unwrap();
    shard.set_len(1 << 20).unwrap();
    let result = child.wait_with_output().unwrap();

    assert_eq!(
        result.status.signal(),
        None,
        "killed by a signal: {result:?}"
    );
    assert_eq!(result.status.code(), Some(1), "{result:?}");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(&format!(
            "{SHARD2} changed on disk since it was opened (size 37.97 MiB → 1.00 MiB); reopen it"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("blocks failed"), "{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = report["matrices"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let mut failed = 0;
    for m in rows {
        let layer = m["layer"].as_u64().unwrap();
        if layer < 3 {
            // The untouched shard: every block computed.
            assert!(m["error"].is_null() && m["ks"].as_f64().is_some(), "{m}");
        } else if let Some(e) = m["error"].as_str() {
            // The truncated shard: failed with the reason, no numbers.
            assert!(e.contains("changed on disk") && m["ks"].is_null(), "{m}");
            failed += 1;
        }
    }
    assert!(
        failed > 0,
        "no block of the truncated shard failed: {report}"
    );
}

#[test]
fn an_interrupted_report_writes_what_finished_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path(), &[]);
    let out = dir.path().join("out.json");
    // Every projection and head on one thread: many seconds of work.
    let child = start_report(dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let result = child.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(130), "{result:?}");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("mpscope: interrupted; the report holds the"),
        "{stderr}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["complete"], false);
    let rows = report["matrices"].as_array().unwrap();
    let missing = rows
        .iter()
        .filter(|m| m["error"] == "not computed: interrupted")
        .count();
    let done = rows.iter().filter(|m| m["ks"].is_f64()).count();
    assert!(missing > 0, "{report}");
    assert_eq!(done + missing, rows.len(), "{report}");
}

/// The shard file holding tensor `name`, from the index.
fn shard_with(dir: &Path, name: &str) -> std::path::PathBuf {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    dir.join(index["weight_map"][name].as_str().unwrap())
}

#[test]
fn a_same_size_rewrite_is_noticed_and_never_mixed_in() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    two_shards(a.path(), &[]);
    // Same shapes, other seed: a shard of exactly the same size with other contents.
    two_shards(b.path(), &["--seed", "99"]);
    let name = "model.layers.4.self_attn.q_proj.weight";
    let path = shard_with(a.path(), name);
    let new = std::fs::read(shard_with(b.path(), name)).unwrap();
    assert_eq!(new.len() as u64, std::fs::metadata(&path).unwrap().len());

    let ck = Checkpoint::open(a.path().to_str().unwrap()).unwrap();
    let t = ck.tensor_index(name).unwrap();
    let sel = Selection {
        tensor: t,
        rows: vec![0..1024],
        cols: 0..1024,
        transpose: false,
    };
    let before = ck.decode_f32(&sel).unwrap();
    assert!(ck.changed().is_none());

    rewrite_in_place(&path, &new);
    let change = ck.changed().expect("the rewrite is noticed");
    assert_eq!(change.what(), "rewritten with the same size");
    let err = ck.decode_f32(&sel).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "changed on disk since it was opened (rewritten with the same size); reopen it"
        ),
        "{err}"
    );
    // Blocks of the other shard go on, from the version that was opened.
    let other = ck
        .tensor_index("model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert!(
        ck.decode_f32(&Selection {
            tensor: other,
            ..sel.clone()
        })
        .is_ok()
    );

    // Reopened, every number comes from the new contents.
    let fresh = Checkpoint::open(a.path().to_str().unwrap()).unwrap();
    let after = fresh.decode_f32(&sel).unwrap();
    let theirs = Checkpoint::open(b.path().to_str().unwrap())
        .unwrap()
        .decode_f32(&sel)
        .unwrap();
    assert!(after == theirs && after != before);
}

/// A small q4_0 GGUF Llama (`model.gguf`) written by `mpscope synth`, with `extra` flags.
fn gguf(dir: &Path, extra: &[&str]) -> std::path::PathBuf {
    let shape = [
        "--format",
        "gguf",
        "--quant",
        "q4_0",
        "--layers",
        "2",
        "--hidden",
        "256",
        "--heads",
        "4",
        "--kv-heads",
        "2",
    ];
    synth(dir, &[&shape[..], extra].concat());
    dir.join("model.gguf")
}

#[test]
fn a_gguf_changed_on_disk_fails_its_blocks_like_safetensors() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let path = gguf(a.path(), &[]);
    let new = std::fs::read(gguf(b.path(), &["--seed", "99"])).unwrap();
    assert_eq!(new.len() as u64, std::fs::metadata(&path).unwrap().len());

    let ck = Checkpoint::open(path.to_str().unwrap()).unwrap();
    let t = ck
        .tensor_index("model.layers.1.self_attn.q_proj.weight")
        .unwrap();
    // Columns 40..200 start and end inside q4_0 blocks of 32: whole blocks are read.
    let sel = Selection {
        tensor: t,
        rows: vec![64..128],
        cols: 40..200,
        transpose: false,
    };
    let before = ck.decode_f32(&sel).unwrap();
    let whole = ck
        .decode_f32(&Selection {
            rows: vec![0..256],
            cols: 0..256,
            ..sel.clone()
        })
        .unwrap();
    assert_eq!(before, whole.subrows(64, 64).subcols(40, 160).to_owned());

    rewrite_in_place(&path, &new);
    assert_eq!(
        ck.changed().expect("the rewrite is noticed").what(),
        "rewritten with the same size"
    );
    let err = ck.decode_f32(&sel).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "model.gguf changed on disk since it was opened (rewritten with the same size); \
             reopen it"
        ),
        "{err}"
    );

    // Truncated under a fresh open: the error names the sizes; the new contents, reopened,
    // decode to other values.
    let ck = Checkpoint::open(path.to_str().unwrap()).unwrap();
    assert_ne!(ck.decode_f32(&sel).unwrap(), before);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4096).unwrap();
    let err = ck.decode_f32(&sel).unwrap_err().to_string();
    assert!(err.contains("model.gguf changed on disk"), "{err}");
    assert!(err.contains(" → 4.00 KiB); reopen it"), "{err}");
}
