//! Heavy-tail metrics and the shuffled control on matrices with known structure, through the
//! real engine (and, for checkpoints, the real loader and the binary).

mod common;

use faer::Mat;
use mpscope::rng::Rng;
use mpscope::spectrum::{AnalyzeOptions, Warning, analyze};

fn gaussian(rows: usize, cols: usize, sigma: f64, seed: u64) -> Mat<f64> {
    let mut rng = Rng::new(seed);
    Mat::from_fn(rows, cols, |_, _| sigma * rng.normal())
}

/// An m × n matrix U diag(ν) Vᵀ with random orthonormal U, V and the given singular values.
fn with_singular_values(m: usize, n: usize, nu: &[f64], seed: u64) -> Mat<f64> {
    let p = nu.len();
    let u = gaussian(m, p, 1.0, seed).qr().compute_thin_Q();
    let v = gaussian(n, p, 1.0, seed + 1).qr().compute_thin_Q();
    let mut us = u.clone();
    for j in 0..p {
        for i in 0..m {
            us[(i, j)] *= nu[j];
        }
    }
    &us * v.transpose()
}

/// λ = ν² drawn from a Pareto law of exponent α (density ∝ λ^{−α} on λ ≥ 1).
fn pareto_values(p: usize, alpha: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<f64> = (0..p)
        .map(|_| (1.0 - rng.uniform()).powf(-1.0 / (alpha - 1.0)).sqrt())
        .collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v
}

/// Matrices whose ESD is Pareto-tailed with a known α give that α back within 15% (the MLE's
/// own spread at these sizes is ~5–10%), through the real SVD.
#[test]
fn prescribed_pareto_spectra_recover_their_alpha() {
    for (alpha, seed) in [(2.0, 1), (3.0, 2), (4.0, 3)] {
        let nu = pareto_values(500, alpha, seed);
        let w = with_singular_values(500, 800, &nu, 10 + seed);
        let a = analyze(w.as_ref(), &AnalyzeOptions::default()).unwrap();
        let fit = a.heavy_tail.fit.clone().unwrap();
        assert!(
            (fit.alpha / alpha - 1.0).abs() < 0.15,
            "planted α {alpha}: fitted {} (xmin {}, tail {})",
            fit.alpha,
            fit.xmin,
            fit.n_tail
        );
        assert!(fit.d < 0.1, "D {}", fit.d);
    }
}

/// Random (Kaiming-like) blocks have no power-law tail: α comes out large, under-trained.
#[test]
fn random_blocks_are_under_trained() {
    let mut alphas = Vec::new();
    for (rows, cols, seed) in [
        (512, 2048, 1),
        (1024, 1024, 2),
        (768, 3072, 3),
        (512, 512, 4),
    ] {
        let w = gaussian(rows, cols, 0.02, seed);
        let a = analyze(w.as_ref(), &AnalyzeOptions::default()).unwrap();
        let alpha = a.heavy_tail.alpha().unwrap();
        assert!(alpha > 4.0, "{rows}×{cols}: α {alpha}");
        alphas.push((alpha, a.heavy_tail.warning()));
    }
    let under = alphas
        .iter()
        .filter(|a| a.1 == Some(Warning::UnderTrained))
        .count();
    assert!(under >= 3, "{alphas:?}");
}

/// A Student-t(3) bulk is heavy-tailed: α well inside WeightWatcher's 2–6 range and far below
/// the α of a Gaussian block of the same shape.
#[test]
fn student_t_bulk_is_heavy_tailed() {
    let mut rng = Rng::new(7);
    let t = Mat::from_fn(512, 1024, |_, _| rng.student_t(3));
    let g = gaussian(512, 1024, 1.0, 8);
    let at = analyze(t.as_ref(), &AnalyzeOptions::default()).unwrap();
    let ag = analyze(g.as_ref(), &AnalyzeOptions::default()).unwrap();
    let (a_t, a_g) = (
        at.heavy_tail.alpha().unwrap(),
        ag.heavy_tail.alpha().unwrap(),
    );
    assert!((2.0..6.0).contains(&a_t), "t(3): α {a_t}");
    assert!(a_t < a_g - 1.0, "t(3) α {a_t} vs Gaussian α {a_g}");
}

/// The shuffled control: a random block keeps ks ≈ rand_ks and has no traps; planted spikes
/// vanish when the entries are shuffled; the control is the same on every run.
#[test]
fn shuffled_control_keeps_noise_and_loses_spikes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    let p = path.to_str().unwrap();
    common::synth(
        &path,
        &[
            "--layers",
            "2",
            "--hidden",
            "256",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--intermediate",
            "512",
            "--spikes",
            "L0.q:3x4",
            "--seed",
            "3",
        ],
    );
    let run = || {
        let out = common::mpscope(&["report", p, "--randomize", "--no-heads", "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(
        a["matrices"], b["matrices"],
        "the control must be deterministic"
    );
    for m in a["matrices"].as_array().unwrap() {
        let name = m["tensor"].as_str().unwrap();
        let (ks, rand_ks) = (m["ks"].as_f64().unwrap(), m["rand_ks"].as_f64().unwrap());
        assert_eq!(m["traps"], 0, "{name}");
        assert!(rand_ks < 0.03, "{name}: rand_ks {rand_ks}");
        if name.contains("layers.0.self_attn.q_proj") {
            assert_eq!(m["above"], 3, "{name}");
            assert!(m["rand_distance"].as_f64().unwrap() > 0.05, "{name}");
        } else {
            assert_eq!(m["above"], 0, "{name}");
            assert!(
                (ks - rand_ks).abs() < 0.02,
                "{name}: ks {ks} vs rand_ks {rand_ks}"
            );
            assert!(m["rand_distance"].as_f64().unwrap() < 0.03, "{name}");
        }
    }
}
