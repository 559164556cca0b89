//! GGUF files: every block type bit-exact against gguf-py, a gguf-py-written model through the
//! real loader and binary, and every malformed file the reader must refuse with exit 2.
//!
//! Reference data: tests/data/make_gguf_reference.py (gguf-py 0.19.0).

// `Selection::rows` is a list of stored row ranges; a list of one range is the common case.
#![allow(clippy::single_range_in_vec_init)]

mod common;
use common::mpscope;

use std::path::{Path, PathBuf};

use mpscope::checkpoint::{Checkpoint, Dtype, Quant, Selection};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn quant(name: &str) -> Quant {
    *Quant::ALL.iter().find(|q| q.name() == name).unwrap()
}

#[test]
fn every_block_type_is_bit_exact_against_gguf_py() {
    let text = std::fs::read_to_string(data("gguf_quants.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let types = v.as_object().unwrap();
    assert_eq!(types.len(), 10, "every type gguf-py decodes (all but Q8_K)");
    for (name, case) in types {
        let q = quant(name);
        let blocks = hex(case["blocks"].as_str().unwrap());
        let want = f32s(&hex(case["values"].as_str().unwrap()));
        assert_eq!(
            blocks.len() / q.block_bytes() * q.block_values(),
            want.len()
        );
        let mut got = vec![f32::NAN; want.len()];
        q.dequantize(&blocks, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name} value {i}: {g} vs {w}");
        }
    }
}

/// The Hugging Face name mpscope gives each GGUF tensor of tests/data/tiny.gguf.
fn hf(gguf: &str) -> String {
    let map = [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("attn_norm", "input_layernorm"),
    ];
    let stem = gguf.strip_suffix(".weight").unwrap();
    let (prefix, part) = match stem.strip_prefix("blk.") {
        Some(rest) => {
            let (l, p) = rest.split_once('.').unwrap();
            (format!("model.layers.{l}."), p)
        }
        None => (String::new(), stem),
    };
    let mapped = map.iter().find(|(g, _)| *g == part).map_or(part, |m| m.1);
    format!("{prefix}{mapped}.weight")
}

#[test]
fn a_gguf_py_file_decodes_to_gguf_py_values() {
    let path = data("tiny.gguf");
    let ck = Checkpoint::open(path.to_str().unwrap()).unwrap();
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("tiny_gguf.json")).unwrap()).unwrap();
    let values = f32s(&std::fs::read(data("tiny_gguf_values.bin")).unwrap());
    assert_eq!(ck.tensors().len(), index.as_object().unwrap().len());
    let facts: Vec<(&str, &str)> = ck
        .facts()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        facts,
        [
            ("name", "tiny test model"),
            ("size label", "20K"),
            ("file type", "Q8_0"),
            ("architecture", "llama")
        ]
    );
    let cfg = ck.config().unwrap();
    assert_eq!(
        (
            cfg.hidden_size,
            cfg.num_layers,
            cfg.num_heads,
            cfg.num_kv_heads
        ),
        (Some(32), Some(2), Some(2), Some(1))
    );
    assert_eq!(cfg.intermediate_size, Some(64));
    let mut decoded = 0;
    for (gguf_name, t) in index.as_object().unwrap() {
        let name = hf(gguf_name);
        let i = ck
            .tensor_index(&name)
            .unwrap_or_else(|| panic!("{gguf_name} → {name} missing"));
        let info = &ck.tensors()[i];
        let dims: Vec<usize> = t["ggml_dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        // GGUF lists dims fastest first; mpscope's shape is row-major [out, in].
        let rev: Vec<usize> = dims.iter().rev().copied().collect();
        assert_eq!(info.shape, rev, "{name}");
        assert_eq!(info.dtype.name(), t["type"].as_str().unwrap(), "{name}");
        let &[rows, cols] = info.shape.as_slice() else {
            continue;
        };
        let start = t["offset"].as_u64().unwrap() as usize;
        let want = &values[start..start + rows * cols];
        let sel = Selection {
            tensor: i,
            rows: vec![0..rows],
            cols: 0..cols,
            transpose: false,
        };
        let m = ck.decode_f32(&sel).unwrap();
        let m64 = ck.decode_f64(&sel).unwrap();
        for r in 0..rows {
            for c in 0..cols {
                let w = want[r * cols + c];
                assert_eq!(m[(r, c)].to_bits(), w.to_bits(), "{name} ({r}, {c})");
                assert_eq!(m64[(r, c)], f64::from(w), "{name} ({r}, {c})");
            }
        }
        // A column range that starts and ends inside blocks, transposed, rows in two runs.
        let (c0, c1) = (3, cols - 5);
        let sel = Selection {
            tensor: i,
            rows: vec![1..2, 0..1],
            cols: c0..c1,
            transpose: true,
        };
        let part = ck.decode_f32(&sel).unwrap();
        for (j, r) in [1, 0].into_iter().enumerate() {
            for c in c0..c1 {
                assert_eq!(part[(c - c0, j)].to_bits(), want[r * cols + c].to_bits());
            }
        }
        decoded += 1;
    }
    assert_eq!(decoded, 18);
}

#[test]
fn inspect_and_report_show_quant_types_and_the_files_metadata() {
    let path = data("tiny.gguf");
    let p = path.to_str().unwrap();
    let out = mpscope(&["inspect", p, "--tensors"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("gguf      tiny test model · 20K · Q8_0 · llama"),
        "{text}"
    );
    assert!(
        text.contains("q4_k ×1, q5_0 ×1, q5_1 ×1, q6_k ×1, q8_0 ×9"),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("model.layers.0.self_attn.k_proj.weight") && l.contains(" q4_0 ")
        ),
        "{text}"
    );
    let out = mpscope(&["report", p, "--format", "json", "--embeddings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mats = v["matrices"].as_array().unwrap();
    let dtype = |tensor: &str| {
        mats.iter()
            .find(|m| m["tensor"] == tensor && m["head"].is_null())
            .map(|m| m["dtype"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        dtype("model.layers.0.self_attn.v_proj.weight").as_deref(),
        Some("q4_1")
    );
    assert_eq!(dtype("lm_head.weight").as_deref(), Some("q8_0"));
    assert_eq!(
        dtype("model.layers.1.ffn_k6.weight").as_deref(),
        Some("q6_k")
    );
    assert!(mats.iter().all(|m| m["error"].is_null()), "{mats:?}");
    assert_eq!(v["model"]["family"], "llama");
    assert_eq!(v["model"]["heads"], 2);
}

// ---------------------------------------------------------------- bad input

/// A hand-assembled GGUF, to be broken one field at a time.
struct Gguf {
    version: u32,
    meta: Vec<u8>,
    n_meta: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Gguf {
    /// Two F32 tensors `a` [2, 32] and `b` [32] with `general.architecture = llama`.
    fn valid() -> Self {
        let mut g = Gguf {
            version: 3,
            meta: Vec::new(),
            n_meta: 0,
            infos: Vec::new(),
            n_tensors: 0,
            data: vec![0; 64 * 4 + 32 * 4],
        };
        g.kv_str("general.architecture", "llama");
        g.tensor("a", &[32, 2], 0, 0);
        g.tensor("b", &[32], 0, 256);
        g
    }

    fn kv_str(&mut self, key: &str, value: &str) {
        string(&mut self.meta, key);
        self.meta.extend(8u32.to_le_bytes());
        string(&mut self.meta, value);
        self.n_meta += 1;
    }

    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) {
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_meta.to_le_bytes());
        out.extend(&self.meta);
        out.extend(&self.infos);
        out.resize(out.len().div_ceil(32) * 32, 0);
        out.extend(&self.data);
        out
    }

    /// Offset of the tensor infos in the file.
    fn infos_at(&self) -> usize {
        24 + self.meta.len()
    }
}

/// Writes `bytes` as a .gguf, runs `inspect`, and checks exit 2 with the file and `words`.
fn refused(bytes: &[u8], words: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.gguf");
    std::fs::write(&f, bytes).unwrap();
    let out = mpscope(&["inspect", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{words:?}: {err}");
    assert!(err.contains("bad.gguf"), "{err}");
    for w in words {
        assert!(err.contains(w), "expected `{w}` in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_valid_baseline_opens() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ok.gguf");
    std::fs::write(&f, Gguf::valid().bytes()).unwrap();
    let ck = Checkpoint::open(f.to_str().unwrap()).unwrap();
    assert_eq!(ck.tensors().len(), 2);
    assert_eq!(ck.tensors()[0].shape, [2, 32]);
    assert_eq!(ck.tensors()[0].dtype, Dtype::F32);
}

/// A header of several MiB (a long chat template, as real tokenizers make them) is read in
/// growing chunks past the first 1 MiB read; the data after it lands where the header says,
/// with or without the `.gguf` extension (found by its magic).
#[test]
fn a_header_larger_than_the_first_read_opens_by_extension_or_magic() {
    let mut g = Gguf::valid();
    g.kv_str("tokenizer.chat_template", &"{% x %}".repeat(500_000));
    g.kv_str("general.name", "long header");
    g.data = (0..96).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let bytes = g.bytes();
    assert!(g.infos_at() > 3 << 20);
    let dir = tempfile::tempdir().unwrap();
    for name in ["long.gguf", "long-weights"] {
        let f = dir.path().join(name);
        std::fs::write(&f, &bytes).unwrap();
        let ck = Checkpoint::open(f.to_str().unwrap()).unwrap();
        assert!(ck.facts().contains(&("name".into(), "long header".into())));
        let a = ck
            .decode_f32(&Selection {
                tensor: ck.tensor_index("a").unwrap(),
                rows: vec![0..2],
                cols: 0..32,
                transpose: false,
            })
            .unwrap();
        assert_eq!(
            (a[(0, 0)], a[(0, 31)], a[(1, 0)]),
            (0.0, 31.0, 32.0),
            "{name}"
        );
    }
    // Cut inside the long string: refused, naming it.
    refused(&bytes[..2 << 20], &["truncated", "tokenizer.chat_template"]);
}

#[test]
fn bad_magic_version_and_empty_file() {
    refused(b"", &["empty"]);
    let mut b = Gguf::valid().bytes();
    b[..4].copy_from_slice(b"GGUG");
    refused(&b, &["bad magic"]);
    for (v, word) in [
        (1, "version 1"),
        (4, "version 4"),
        (3u32.swap_bytes(), "big-endian"),
    ] {
        let mut g = Gguf::valid();
        g.version = v;
        refused(&g.bytes(), &["unsupported version", word]);
    }
}

#[test]
fn truncated_header_metadata_infos_and_data() {
    let g = Gguf::valid();
    let b = g.bytes();
    refused(&b[..6], &["truncated", "the version"]);
    refused(&b[..10], &["truncated", "the tensor count"]);
    refused(&b[..20], &["truncated", "the tensor count is 2"]);
    refused(&b[..30], &["truncated", "the tensor count is 2"]);
    let mut long = Gguf::valid();
    long.kv_str("general.name", &"x".repeat(300));
    let lb = long.bytes();
    refused(
        &lb[..long.infos_at() - 50],
        &["truncated", "the length of metadata `general.name` is 300"],
    );
    refused(&lb[..long.infos_at() + 4], &["truncated", "tensor 0"]);
    refused(&lb[..long.infos_at() + 30], &["truncated", "tensor `a`"]);
    refused(
        &b[..b.len() - 1],
        &["`b`", "runs past the end", "truncated"],
    );
}

#[test]
fn bad_offsets_types_dims_and_names() {
    let with = |f: &dyn Fn(&mut Gguf)| {
        let mut g = Gguf::valid();
        g.infos.clear();
        g.n_tensors = 0;
        f(&mut g);
        g.bytes()
    };
    refused(
        &with(&|g| g.tensor("a", &[32, 2], 0, 4096)),
        &["`a`", "runs past the end"],
    );
    refused(
        &with(&|g| g.tensor("a", &[32, 2], 0, 8)),
        &["`a`", "offset 8", "not a multiple of the alignment 32"],
    );
    refused(
        &with(&|g| g.tensor("a", &[32, 2], 99, 0)),
        &["`a`", "unknown type id 99"],
    );
    refused(
        &with(&|g| g.tensor("a", &[1, 1, 1, 1, 1], 0, 0)),
        &["`a`", "5 dimensions"],
    );
    refused(
        &with(&|g| g.tensor("a", &[u64::MAX / 2, 4], 0, 0)),
        &["`a`", "overflow"],
    );
    refused(
        &with(&|g| {
            g.tensor("a", &[32], 0, 0);
            g.tensor("a", &[32], 0, 128);
        }),
        &["`a`", "defined twice"],
    );
    refused(
        &with(&|g| g.tensor("a", &[33, 2], 8, 0)),
        &["`a`", "not a whole number of Q8_0 blocks"],
    );
}

#[test]
fn wrong_metadata_types_and_impossible_counts() {
    let mut g = Gguf::valid();
    g.kv_str("general.alignment", "32");
    refused(&g.bytes(), &["general.alignment", "power of two"]);
    let mut g = Gguf::valid();
    string(&mut g.meta, "general.name");
    g.meta.extend(4u32.to_le_bytes());
    g.meta.extend(7u32.to_le_bytes());
    g.n_meta += 1;
    refused(&g.bytes(), &["general.name", "expected a string"]);
    let mut g = Gguf::valid();
    string(&mut g.meta, "x");
    g.meta.extend(77u32.to_le_bytes());
    g.n_meta += 1;
    refused(&g.bytes(), &["`x`", "unknown value type 77"]);
    let mut g = Gguf::valid();
    g.n_tensors = 1 << 40;
    refused(&g.bytes(), &["tensor count", "more than", "could hold"]);
    let mut g = Gguf::valid();
    g.n_meta = u64::MAX;
    refused(&g.bytes(), &["metadata count", "could hold"]);
    let mut g = Gguf::valid();
    string(&mut g.meta, "tokens");
    g.meta.extend(9u32.to_le_bytes());
    g.meta.extend(8u32.to_le_bytes());
    g.meta.extend((1u64 << 50).to_le_bytes());
    g.n_meta += 1;
    refused(&g.bytes(), &["`tokens`", "could hold"]);
}

// ---------------------------------------------------------------- files in a directory

/// A one-tensor GGUF whose tensor is named `name`.
fn one_tensor(name: &str) -> Vec<u8> {
    let mut g = Gguf::valid();
    g.infos.clear();
    g.n_tensors = 0;
    g.tensor(name, &[32, 2], 0, 0);
    g.bytes()
}

#[test]
fn a_directory_opens_its_gguf_and_split_parts_open_as_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("model-Q8_0.gguf"), one_tensor("blk.0.attn_q.weight")).unwrap();
    let ck = Checkpoint::open(d.to_str().unwrap()).unwrap();
    assert_eq!(
        ck.tensors()[0].name,
        "model.layers.0.self_attn.q_proj.weight"
    );

    // A second, unrelated file: which one is meant is the user's call.
    std::fs::write(d.join("other.gguf"), one_tensor("blk.0.attn_k.weight")).unwrap();
    let out = mpscope(&["inspect", d.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("several GGUF files (model-Q8_0.gguf, other.gguf)")
            && err.contains("name the one to open"),
        "{err}"
    );

    // Split parts: the directory, or part 1 by name, opens every part as one model.
    let split = tempfile::tempdir().unwrap();
    let s = split.path();
    for (k, t) in [(1, "blk.0.attn_q.weight"), (2, "blk.1.attn_q.weight")] {
        std::fs::write(s.join(format!("m-{k:05}-of-00002.gguf")), one_tensor(t)).unwrap();
    }
    for path in [s.to_path_buf(), s.join("m-00001-of-00002.gguf")] {
        let ck = Checkpoint::open(path.to_str().unwrap()).unwrap();
        assert_eq!(ck.files().len(), 2);
        let names: Vec<&str> = ck.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.1.self_attn.q_proj.weight"
            ]
        );
    }
    std::fs::remove_file(s.join("m-00002-of-00002.gguf")).unwrap();
    let out = mpscope(&["inspect", s.join("m-00001-of-00002.gguf").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("m-00002-of-00002.gguf") && err.contains("does not exist"),
        "{err}"
    );
}

// ---------------------------------------------------------------- the Ollama store

fn ollama(store: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .args(args)
        .env("OLLAMA_MODELS", store)
        .env("MPSCOPE_CACHE_DIR", store.join("mpscope-cache"))
        .output()
        .unwrap()
}

#[test]
fn ollama_names_resolve_through_manifest_and_blob_offline() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    let digest = "0123abcd".repeat(8);
    std::fs::create_dir_all(s.join("blobs")).unwrap();
    std::fs::copy(data("tiny.gguf"), s.join(format!("blobs/sha256-{digest}"))).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:ff"},
            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{digest}")},
        ]
    });
    for (model, tag) in [
        ("library/tiny", "latest"),
        ("library/tiny", "q8"),
        ("me/tiny", "latest"),
    ] {
        let dir = s.join("manifests/registry.ollama.ai").join(model);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(tag), manifest.to_string()).unwrap();
    }
    for spec in ["ollama:tiny", "ollama:tiny:q8", "ollama:me/tiny"] {
        let out = ollama(s, &["inspect", spec]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("gguf      tiny test model"), "{text}");
    }
    let out = ollama(s, &["inspect", "ollama:absent:7b"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let looked = s.join("manifests/registry.ollama.ai/library/absent/7b");
    assert!(
        err.contains("ollama:absent:7b") && err.contains(&looked.display().to_string()),
        "{err}"
    );
    std::fs::remove_file(s.join(format!("blobs/sha256-{digest}"))).unwrap();
    let out = ollama(s, &["inspect", "ollama:tiny"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("does not exist") && err.contains("sha256-0123abcd"),
        "{err}"
    );
    let out = ollama(s, &["inspect", "ollama:../x"]);
    assert_eq!(out.status.code(), Some(2));
}
