//! Comparing checkpoints through the real binary: planted fine-tune updates, a bf16 round
//! trip, a GGUF quantization, LoRA adapters (factored spectra, zero B, missing base) and models
//! that do not fit together.

mod common;

use std::path::Path;

use common::{mpscope, synth, synth_llama_with, synth_mixtral};
use faer::Mat;
use mpscope::checkpoint::{Checkpoint, Selection};
use serde_json::Value;

/// `mpscope report ARGS --format json`, which must succeed.
fn report_json(args: &[&str]) -> Value {
    let out = mpscope(&[&["report"], args, &["--format", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// "L1 q h3" of a compare record.
fn name(b: &Value) -> String {
    let mut n = format!("L{} {}", b["layer"], b["proj"].as_str().unwrap());
    if let Some(h) = b["head"].as_u64() {
        n.push_str(&format!(" h{h}"));
    }
    n
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn planted_updates_rank_first_with_their_rank_and_the_rest_is_exactly_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ft) = (dir.path().join("base"), dir.path().join("ft"));
    synth_llama_with(&base, &[]);
    synth(
        &ft,
        &[
            "--finetune-of",
            s(&base),
            "--update",
            "L1.q.h3:2@0.5,L2.v:1@0.6",
        ],
    );
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("truth.json")).unwrap()).unwrap();
    let j = report_json(&[s(&ft), "--base", s(&base)]);
    let mut blocks: Vec<&Value> = j["blocks"].as_array().unwrap().iter().collect();
    assert_eq!(
        blocks.len(),
        21 + 3 * (4 + 2 + 2 + 4),
        "7 matrices and 12 heads per layer"
    );
    blocks.sort_by(|a, b| f(&b["delta_rel"]).total_cmp(&f(&a["delta_rel"])));
    // The rank-2 update lives in head 3 of L1 q; the rank-1 update spans both heads of L2 v.
    let planted = [
        ("L1 q h3", 2),
        ("L1 q", 2),
        ("L2 v", 1),
        ("L2 v h0", 1),
        ("L2 v h1", 1),
    ];
    let mut first: Vec<String> = blocks[..5].iter().map(|b| name(b)).collect();
    first.sort();
    let mut want: Vec<String> = planted.iter().map(|p| p.0.to_string()).collect();
    want.sort();
    assert_eq!(first, want);
    for (block, rank) in planted {
        let b = blocks.iter().find(|b| name(b) == block).unwrap();
        assert_eq!(b["delta_rank"], rank, "{block}: {b}");
        assert!(
            f(&b["delta_ks"]) > 0.5,
            "{block}: a low-rank update is far from MP"
        );
        assert_eq!(b["unchanged"], false);
    }
    // Every singular value of an update is strength × the base block's ν₁ (before bf16).
    for u in truth["updates"].as_array().unwrap() {
        let block = u["block"].as_str().unwrap();
        let b = blocks.iter().find(|b| name(b) == block).unwrap();
        let top = f(&b["delta_top"][0]);
        let want = f(&u["singular_value"]);
        assert!((top - want).abs() < 0.01 * want, "{block}: {top} vs {want}");
    }
    for b in &blocks[5..] {
        assert_eq!(f(&b["delta_rel"]), 0.0, "{}", name(b));
        assert_eq!(b["delta_rank"], 0);
        assert_eq!(b["unchanged"], true);
        assert_eq!(b["subspace_overlap"], 1.0);
        assert!(b["delta_ks"].is_null());
    }
    assert!(j["pairing"]["unpaired_base"].as_array().unwrap().is_empty());
    assert!(
        j["pairing"]["shape_mismatches"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_f32_model_against_its_bf16_round_trip_is_mp_like_noise_of_full_rank() {
    let dir = tempfile::tempdir().unwrap();
    let (base, rt) = (dir.path().join("f32"), dir.path().join("bf16"));
    synth_llama_with(&base, &["--dtype", "f32"]);
    synth(&rt, &["--finetune-of", s(&base), "--dtype", "bf16"]);
    let j = report_json(&[s(&rt), "--base", s(&base), "--proj", "q,k,v,o"]);
    let blocks = j["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    for b in blocks {
        let p = b["rows"].as_u64().unwrap().min(b["cols"].as_u64().unwrap()) as f64;
        let rank = b["delta_rank"].as_u64().unwrap() as f64;
        assert!(rank >= 0.95 * p, "{}: rank {rank} of {p}", name(b));
        // Rounding noise: about 2⁻⁸ of the weights, spread over every direction.
        let rel = f(&b["delta_rel"]);
        assert!(rel > 5e-4 && rel < 4e-3, "{}: delta_rel {rel}", name(b));
        let ks = f(&b["delta_ks"]);
        let limit = if b["head"].is_null() { 0.05 } else { 0.12 };
        assert!(ks < limit, "{}: delta_ks {ks}", name(b));
        assert_eq!(b["base_dtype"], "f32");
        assert_eq!(b["other_dtype"], "bf16");
    }
}

#[test]
fn a_gguf_quantization_pairs_with_its_safetensors_original() {
    let dir = tempfile::tempdir().unwrap();
    let (st, gg) = (dir.path().join("st"), dir.path().join("gguf"));
    synth_llama_with(&st, &["--dtype", "f32"]);
    synth_llama_with(
        &gg,
        &["--dtype", "f32", "--format", "gguf", "--quant", "q8_0"],
    );
    let j = report_json(&[s(&gg), "--base", s(&st), "--proj", "q,k,v,o"]);
    assert!(
        j["pairing"]["unpaired_base"].as_array().unwrap().is_empty(),
        "{}",
        j["pairing"]
    );
    let blocks = j["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3 * (4 + 12));
    for b in blocks {
        let rel = f(&b["delta_rel"]);
        assert!(
            rel > 0.0 && rel < 0.02,
            "{}: q8_0 moves weights by under 2%: {rel}",
            name(b)
        );
    }
}

/// A Mixtral's routed experts pair by (layer, projection, expert): the GGUF stacks them in one
/// `ffn_*_exps` tensor per projection, the safetensors keep one tensor per expert, so only the
/// expert index can pair them. Pairing expert e with another expert would move the weights by
/// ~140%, not by q8_0's rounding.
#[test]
fn mixtral_experts_pair_by_layer_projection_and_expert() {
    let dir = tempfile::tempdir().unwrap();
    let (st, gg) = (dir.path().join("st"), dir.path().join("gguf"));
    synth_mixtral(&st, &["--dtype", "f32"]);
    synth_mixtral(
        &gg,
        &["--dtype", "f32", "--format", "gguf", "--quant", "q8_0"],
    );
    let j = report_json(&[s(&gg), "--base", s(&st), "--proj", "experts"]);
    assert!(
        j["pairing"]["unpaired_base"].as_array().unwrap().is_empty()
            && j["pairing"]["unpaired_other"]
                .as_array()
                .unwrap()
                .is_empty(),
        "{}",
        j["pairing"]
    );
    let blocks = j["blocks"].as_array().unwrap();
    let mut seen: Vec<(u64, String, u64)> = blocks
        .iter()
        .map(|b| {
            let rel = f(&b["delta_rel"]);
            assert!(
                rel > 0.0 && rel < 0.02,
                "{} e{}: {rel}",
                name(b),
                b["expert"]
            );
            let e = b["expert"].as_u64().expect("an expert index");
            (b["layer"].as_u64().unwrap(), b["proj"].to_string(), e)
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        2 * 3 * 3,
        "2 layers × gate, up, down × 3 experts"
    );
    let csv = mpscope(&[
        "report",
        s(&gg),
        "--base",
        s(&st),
        "--proj",
        "experts",
        "--format",
        "csv",
    ]);
    let text = String::from_utf8(csv.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("tensor,other_tensor,layer,proj,head,expert,rows,"),
        "{header}"
    );
}

/// Shards and plans split one model's report: with `--base` they are a usage error, not
/// silently ignored.
#[test]
fn shard_and_plan_do_not_go_with_a_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    synth_llama_with(&base, &[]);
    for extra in [&["--shard", "0/2"][..], &["--plan"], &["--shards", "4"]] {
        let out = mpscope(&[&["report", s(&base), "--base", s(&base)], extra].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("do not go with --base"), "{extra:?}: {err}");
    }
}

#[test]
fn models_of_different_shapes_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    synth_llama_with(&a, &[]);
    synth(
        &b,
        &[
            "--layers",
            "3",
            "--hidden",
            "64",
            "--heads",
            "4",
            "--kv-heads",
            "2",
        ],
    );
    let out = mpscope(&["report", s(&b), "--base", s(&a), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different shapes"), "{err}");
    assert!(
        err.contains("L0 q is 128x128 in the base and 64x64 in the other"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// Singular values of s·B·A for one adapter module, by a dense SVD of the product.
#[allow(clippy::single_range_in_vec_init)]
fn dense_lora_values(
    adapter: &Path,
    module: &str,
    rows: std::ops::Range<usize>,
    scale: f64,
) -> Vec<f64> {
    let ck = Checkpoint::open(s(&adapter.join("adapter_model.safetensors"))).unwrap();
    let idx = |f: &str| {
        ck.tensor_index(&format!("base_model.model.{module}.lora_{f}.weight"))
            .unwrap()
    };
    let whole = |t: usize| {
        let shape = &ck.tensors()[t].shape;
        ck.decode_f64(&Selection {
            tensor: t,
            rows: vec![0..shape[0]],
            cols: 0..shape[1],
            transpose: false,
        })
        .unwrap()
    };
    let (a, b) = (whole(idx("A")), whole(idx("B")));
    let b: Mat<f64> = b.subrows(rows.start, rows.len()).to_owned();
    let dense = (&b * &a) * faer::Scale(scale);
    dense.singular_values().unwrap()
}

#[test]
fn lora_spectra_are_exact_and_a_zero_b_layer_is_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let (base, lora) = (dir.path().join("base"), dir.path().join("lora"));
    synth_llama_with(&base, &[]);
    synth(
        &lora,
        &[
            "--lora-of",
            s(&base),
            "--rank",
            "4",
            "--targets",
            "q,v",
            "--zero-b",
            "1",
        ],
    );
    let j = report_json(&[s(&lora), "--values"]);
    assert_eq!(j["other"]["adapter"]["r"], 4);
    let blocks = j["blocks"].as_array().unwrap();
    assert_eq!(
        blocks.len(),
        3 * (1 + 4 + 1 + 2),
        "q and v of 3 layers, with heads"
    );
    for b in blocks {
        if b["layer"] == 1 {
            assert_eq!(b["unchanged"], true, "{}", name(b));
            assert_eq!(f(&b["delta_rel"]), 0.0);
            let note = b["note"].as_str().unwrap();
            assert!(
                note.contains("learned nothing") && note.contains("lora_B"),
                "{note}"
            );
        } else {
            assert_eq!(b["delta_rank"], 4, "{}", name(b));
            assert_eq!(b["delta_method"], "factored");
            assert!(b["note"].is_null());
        }
    }
    // s = lora_alpha / r = 8 / 4; the factored values equal a dense SVD of s·B·A.
    for (block, rows) in [("L0 q", 0..128), ("L0 q h2", 64..96), ("L2 v h1", 32..64)] {
        let b = blocks.iter().find(|b| name(b) == block).unwrap();
        let module = format!(
            "model.layers.{}.self_attn.{}_proj",
            b["layer"],
            b["proj"].as_str().unwrap()
        );
        let want = dense_lora_values(&lora, &module, rows, 2.0);
        let got: Vec<f64> = b["delta_singular_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want).take(4) {
            assert!((g - w).abs() <= 1e-10 * w, "{block}: {g} vs {w}");
        }
        assert!(got[4..].iter().all(|&v| v == 0.0));
    }
    let table = mpscope(&["report", s(&lora), "--format", "table"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("learned nothing: lora_B = 0"), "{text}");
}

#[test]
fn an_adapter_whose_base_is_missing_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (base, lora) = (dir.path().join("base"), dir.path().join("lora"));
    synth_llama_with(&base, &[]);
    synth(
        &lora,
        &["--lora-of", s(&base), "--rank", "2", "--targets", "q"],
    );
    let cfg = lora.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    for (named, expect) in [
        ("/nonexistent/llama", "/nonexistent/llama"),
        ("someorg/missing-model", "models--someorg--missing-model"),
    ] {
        v["base_model_name_or_path"] = Value::from(named);
        std::fs::write(&cfg, v.to_string()).unwrap();
        let out = mpscope(&["report", s(&lora), "--format", "json"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot find the base model of adapter"),
            "{err}"
        );
        assert!(err.contains(expect), "{err}");
        assert!(err.contains("--base"), "{err}");
    }
    // --base overrides what the adapter names.
    let j = report_json(&[s(&lora), "--base", s(&base)]);
    assert_eq!(j["blocks"].as_array().unwrap().len(), 3 * 5);
}

/// A factor's shape and row-major f32 values.
type Factor = (Vec<usize>, Vec<f32>);

/// Writes a PEFT adapter by hand: `modules` maps a module name to its (A, B).
fn write_adapter(dir: &Path, config: Value, modules: &[(&str, Factor, Factor)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned = Vec::new();
    for (m, (sa, a), (sb, b)) in modules {
        owned.push((
            format!("base_model.model.{m}.lora_A.weight"),
            sa.clone(),
            bytes(a),
        ));
        owned.push((
            format!("base_model.model.{m}.lora_B.weight"),
            sb.clone(),
            bytes(b),
        ));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("adapter_model.safetensors")).unwrap();
}

/// GPT-2 stores c_attn as [in, 3·out] (Conv1D): with fan_in_fan_out the stored ΔW is (B·A)ᵀ,
/// and the q block (stored columns 0..h, transposed) is s·B[0..h]·A.
#[test]
fn a_fan_in_fan_out_adapter_on_gpt2s_fused_c_attn_splits_like_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let (base, lora) = (dir.path().join("gpt2"), dir.path().join("lora"));
    synth(
        &base,
        &[
            "--family", "gpt2", "--layers", "2", "--hidden", "64", "--heads", "4",
        ],
    );
    let (h, r) = (64usize, 3usize);
    let mut rng = mpscope::rng::Rng::new(7);
    let a: Vec<f32> = (0..r * h).map(|_| rng.normal() as f32).collect();
    let b: Vec<f32> = (0..3 * h * r).map(|_| rng.normal() as f32).collect();
    write_adapter(
        &lora,
        serde_json::json!({"peft_type": "LORA", "r": r, "lora_alpha": 6, "fan_in_fan_out": true,
            "target_modules": ["c_attn"], "base_model_name_or_path": s(&base)}),
        &[(
            "h.0.attn.c_attn",
            (vec![r, h], a.clone()),
            (vec![3 * h, r], b.clone()),
        )],
    );
    let j = report_json(&[s(&lora), "--values", "--no-heads"]);
    let blocks = j["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3, "q, k and v of layer 0: {j}");
    let am = Mat::<f64>::from_fn(r, h, |i, k| a[i * h + k] as f64);
    for (i, proj) in ["q", "k", "v"].iter().enumerate() {
        let bm = Mat::<f64>::from_fn(h, r, |row, k| b[(i * h + row) * r + k] as f64);
        let want = ((&bm * &am) * faer::Scale(2.0)).singular_values().unwrap();
        let got = blocks.iter().find(|x| x["proj"] == *proj).unwrap();
        assert_eq!(got["delta_rank"], 3);
        let got: Vec<f64> = got["delta_singular_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        for (g, w) in got.iter().zip(&want).take(r) {
            assert!((g - w).abs() <= 1e-10 * w, "{proj}: {g} vs {w}");
        }
    }
}

#[test]
fn an_adapter_finds_its_base_in_the_hf_cache_by_repo_id() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let snap = cache.join("models--acme--tiny-llama/snapshots/0123abcd");
    synth_llama_with(&snap, &[]);
    std::fs::create_dir_all(cache.join("models--acme--tiny-llama/refs")).unwrap();
    std::fs::write(cache.join("models--acme--tiny-llama/refs/main"), "0123abcd").unwrap();
    let lora = dir.path().join("lora");
    synth(
        &lora,
        &["--lora-of", s(&snap), "--rank", "2", "--targets", "v"],
    );
    let cfg = lora.join("adapter_config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["base_model_name_or_path"] = Value::from("acme/tiny-llama");
    std::fs::write(&cfg, v.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args(["report", s(&lora), "--format", "json", "--no-cache"])
        .env("HF_HUB_CACHE", &cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["base"]["path"], "acme/tiny-llama");
    assert_eq!(
        j["blocks"].as_array().unwrap().len(),
        3 * 3,
        "v and its 2 heads in 3 layers"
    );
}
