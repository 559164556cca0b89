//! The real binary in a pseudo-terminal: it opens a model, draws, answers keys, quits, and
//! leaves the terminal as it found it.

mod common;
use common::{synth, synth_llama};

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Session {
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    /// The session's own spectrum cache (never the user's), removed with it.
    _cache: tempfile::TempDir,
}

impl Session {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_mpscope"));
        cmd.args(args);
        cmd.env("TERM", "xterm");
        cmd.env("LANG", "C.UTF-8");
        let cache = tempfile::tempdir().expect("temp cache dir");
        cmd.env("MPSCOPE_CACHE_DIR", cache.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pty.slave.spawn_command(cmd).expect("spawn mpscope");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let writer = pty.master.take_writer().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::MIN.saturating_add(23),
            NonZeroU16::MIN.saturating_add(79),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (s2, r2) = (Arc::clone(&screen), Arc::clone(&raw));
        std::thread::spawn(move || {
            let _keep = pty.master;
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s2.lock().unwrap().process(&buf[..n]);
                r2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            screen,
            raw,
            writer,
            child,
            _cache: cache,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, what: &str) -> String {
        let t0 = Instant::now();
        loop {
            let c = self.contents();
            if c.contains(what) {
                return c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "'{what}' never appeared; screen:\n{c}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// [`Session::wait_for`], then the screen once two reads 150 ms apart agree: a read can
    /// land in the middle of a frame being written, and a block may still be arriving.
    fn settled(&self, what: &str) -> String {
        let mut last = self.wait_for(what);
        let t0 = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.contents();
            if now == last && now.contains(what) {
                return now;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the screen never settled; last:\n{now}"
            );
            last = now;
        }
    }

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// A left click (press and release, SGR encoding) `dx` cells right of the first `needle`
    /// on screen.
    fn click_on(&mut self, needle: &str, dx: usize) {
        let screen = self.contents();
        let (col, row) = screen
            .lines()
            .enumerate()
            .find_map(|(y, l)| l.find(needle).map(|x| (l[..x].chars().count(), y)))
            .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"));
        let (x, y) = (col + dx + 1, row + 1);
        self.send(&format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m"));
    }

    /// Quits with `q`, expecting status 0 and the terminal as it was: alternate screen left,
    /// cursor shown.
    fn quit_and_check_restored(&mut self) {
        self.send("q");
        assert_eq!(self.wait_exit(), 0);
        std::thread::sleep(Duration::from_millis(200));
        let parser = self.screen.lock().unwrap();
        assert!(
            !parser.screen().alternate_screen(),
            "left the alternate screen"
        );
        assert!(!parser.screen().hide_cursor(), "cursor shown again");
    }

    fn wait_exit(&mut self) -> u32 {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "mpscope did not exit"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

#[test]
fn opens_a_model_walks_it_quits_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L0.q:3x4");
    let mut s = Session::start(&[dir.path().to_str().unwrap()], &[]);
    let screen = s.wait_for("blocks in");
    assert!(
        screen.contains("L0 q · model.layers.0.self_attn.q_proj.weight"),
        "{screen}"
    );
    assert!(screen.contains("ks"), "{screen}");
    assert!(screen.contains('█'), "histogram drawn:\n{screen}");
    assert!(s.screen.lock().unwrap().screen().alternate_screen());
    s.send("j");
    s.wait_for("L1 q · model.layers.1");
    s.send("2");
    s.wait_for("heads of L1 q");
    // The mouse: a tab, then a row of the layer list.
    s.click_on("3 depth", 0);
    s.wait_for("depth profile");
    s.click_on("│   2 ", 1);
    s.wait_for("L2 q ·");
    s.click_on("1 spectrum", 0);
    s.wait_for("L2 q · model.layers.2");
    s.send("?");
    s.wait_for("Esc closes)");
    s.send("\x1b");
    std::thread::sleep(Duration::from_millis(200));
    s.quit_and_check_restored();
    let raw = s.raw.lock().unwrap();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).into_owned();
    assert!(
        tail.contains("\x1b[?1049l"),
        "leave-alternate-screen sent last: {tail:?}"
    );
}

#[test]
fn ranked_view_sorts_filters_and_opens_a_block_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let mut s = Session::start(&[dir.path().to_str().unwrap()], &[]);
    s.wait_for("blocks in");
    s.send("5");
    s.wait_for("ranked · 57 blocks by ks (highest first)");
    s.send("g");
    let screen = s.wait_for("│▶ 1 ");
    // The planted spikes put layer 1's k on top.
    let first = screen
        .lines()
        .find(|l| l.starts_with("│▶ 1 "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(first.contains("L1") && first.contains(" k "), "{first}");
    s.send("s");
    s.wait_for("by alpha (lowest first)");
    s.send("s");
    s.wait_for("by vector_p (lowest first)");
    s.send("s");
    s.wait_for("by edge_ratio (highest first)");
    s.send("/L2 v");
    let screen = s.wait_for("ranked · 3 blocks by edge_ratio");
    assert!(screen.contains("/ L2 v_"), "{screen}");
    s.send("\r");
    std::thread::sleep(Duration::from_millis(200));
    s.send("j");
    std::thread::sleep(Duration::from_millis(200));
    s.send("\r");
    let screen = s.wait_for("· model.layers.2.self_attn.v_proj.weight");
    assert!(screen.contains("edge"), "{screen}");
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

#[test]
fn ascii_and_no_color_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L0.q:3x4");
    let mut s = Session::start(
        &[dir.path().to_str().unwrap(), "--ascii"],
        &[("NO_COLOR", "1")],
    );
    let screen = s.wait_for("blocks in");
    assert!(screen.is_ascii(), "ASCII only:\n{screen}");
    let raw = s.raw.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&raw);
    // No colour set sequences (38;…/48;… or 3x/4x SGR) in what was drawn.
    for bad in ["\x1b[38;", "\x1b[48;", "\x1b[31m", "\x1b[36m", "\x1b[44m"] {
        assert!(
            !text.contains(bad),
            "colour sequence {bad:?} under NO_COLOR"
        );
    }
    s.send("q");
    assert_eq!(s.wait_exit(), 0);
}

#[test]
fn an_unopenable_model_prints_an_error_after_restoring_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.safetensors");
    std::fs::write(&bad, b"not a safetensors file at all").unwrap();
    let mut s = Session::start(&[bad.to_str().unwrap()], &[]);
    assert_eq!(s.wait_exit(), 2);
    std::thread::sleep(Duration::from_millis(200));
    let c = s.contents();
    assert!(
        c.contains("mpscope: error:") && c.contains("broken.safetensors"),
        "{c}"
    );
    assert!(!s.screen.lock().unwrap().screen().alternate_screen());
}

/// A small Llama in two shards (layers 0–1 in the first, 2 in the second), `extra` flags added.
fn two_shards(dir: &std::path::Path, extra: &[&str]) {
    let shape = ["--layers", "3", "--hidden", "128", "--heads", "4"];
    common::synth(
        dir,
        &[&shape[..], &["--kv-heads", "2", "--shards", "2"], extra].concat(),
    );
}

/// The screen without its footer and without compute times (which vary run to run).
fn numbers(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[..lines.len() - 1]
        .iter()
        .map(|l| l.split("time").next().unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_same_size_rewrite_is_offered_for_reopening_and_never_mixed_in() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    two_shards(a.path(), &["--spikes", "L2.q:3x4"]);
    two_shards(b.path(), &["--spikes", "L2.q:1x8", "--seed", "7"]);
    let shard = "model-00002-of-00002.safetensors";
    let new = std::fs::read(b.path().join(shard)).unwrap();
    let path = a.path().join(shard);
    assert_eq!(new.len() as u64, std::fs::metadata(&path).unwrap().len());

    let mut s = Session::start(&[a.path().to_str().unwrap()], &[]);
    s.wait_for("blocks in");
    s.send("gjj");
    let old = s.settled("L2 q · model.layers.2");
    common::rewrite_in_place(&path, &new);
    let offered = s.settled("o reopen · changed on disk: model-00002");
    // Until reopened, the numbers on screen are those of the version opened.
    assert_eq!(numbers(&offered), numbers(&old));
    s.send("o");
    s.wait_for("reopened");
    let reopened = s.settled("blocks in");
    assert!(reopened.contains("L2 q · model.layers.2"), "{reopened}");
    s.quit_and_check_restored();

    // Every number after reopening is the new checkpoint's: the same as a fresh explorer's.
    let mut fresh = Session::start(&[a.path().to_str().unwrap()], &[]);
    fresh.wait_for("blocks in");
    fresh.send("gjj");
    let want = fresh.settled("L2 q · model.layers.2");
    fresh.quit_and_check_restored();
    assert_eq!(numbers(&reopened), numbers(&want));
    assert_ne!(numbers(&reopened), numbers(&old));
}

#[test]
fn a_shard_truncated_under_the_explorer_is_noticed_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path(), &[]);
    let shard = dir.path().join("model-00002-of-00002.safetensors");
    let saved = std::fs::read(&shard).unwrap();
    let mut s = Session::start(&[dir.path().to_str().unwrap()], &[]);
    s.wait_for("L0 q · model.layers.0");
    // Truncated in place, as a trainer opening its checkpoint to save over it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(1024)
        .unwrap();
    let screen = s.wait_for("o reopen · changed on disk: model-00002");
    assert!(
        s.screen.lock().unwrap().screen().alternate_screen(),
        "{screen}"
    );
    // The save completes; one key opens the new checkpoint, keeping the focus.
    s.send("j");
    s.wait_for("L1 q · model.layers.1");
    std::fs::write(&shard, &saved).unwrap();
    s.send("o");
    s.wait_for("reopened");
    let screen = s.wait_for("blocks in");
    assert!(screen.contains("L1 q · model.layers.1"), "{screen}");
    assert!(!screen.contains("failed"), "{screen}");
    s.quit_and_check_restored();
}

#[test]
fn opens_a_report_with_no_weights_and_rescores_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    synth_llama(&model, "L0.q:3x4");
    let json = dir.path().join("r.json");
    let out = common::mpscope(&[
        "report",
        model.to_str().unwrap(),
        "--values",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    std::fs::remove_dir_all(&model).unwrap();
    let mut s = Session::start(&[json.to_str().unwrap()], &[]);
    let screen = s.wait_for("blocks in");
    assert!(screen.contains("a report of"), "{screen}");
    assert!(screen.contains("σ entry"), "{screen}");
    s.send("m");
    let screen = s.wait_for("σ fit");
    assert!(screen.contains("(fit)"), "{screen}");
    s.send("R");
    s.wait_for("the report holds no shuffled control");
    s.quit_and_check_restored();
}

#[test]
fn compare_mode_opens_other_vs_base_shows_the_change_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ft) = (dir.path().join("base"), dir.path().join("ft"));
    synth_llama(&base, "L0.q:3x4");
    synth(
        &ft,
        &[
            "--finetune-of",
            base.to_str().unwrap(),
            "--update",
            "L1.q:2@0.5",
        ],
    );
    let mut s = Session::start(
        &[ft.to_str().unwrap(), "--base", base.to_str().unwrap()],
        &[],
    );
    let screen = s.wait_for("blocks in");
    assert!(screen.contains(" vs "), "{screen}");
    assert!(screen.contains("q Δrel"), "{screen}");
    s.send("j");
    s.wait_for("Δrank    2");
    s.send("d");
    s.wait_for("ΔW of L1 q");
    s.quit_and_check_restored();
}

#[test]
fn compare_mode_with_a_base_of_another_shape_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    synth_llama(&a, "L0.q:3x4");
    synth(&b, &["--layers", "2", "--hidden", "64", "--heads", "2"]);
    let out = common::mpscope(&[a.to_str().unwrap(), "--base", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different shapes"), "{err}");
}
