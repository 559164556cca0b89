//! `mpscope synth --format gguf`: quantizers byte-identical to gguf-py's, every stored tensor
//! read back through the real GGUF loader equal to the synthetic values quantized, and planted
//! structure still visible in a quantized file.

// `Selection::rows` is a list of stored row ranges; a list of one range is the common case.
#![allow(clippy::single_range_in_vec_init)]

mod common;
use common::mpscope;

use std::path::Path;

use mpscope::checkpoint::{Checkpoint, Quant, Selection, gguf_name};
use mpscope::synth::{self, GgufQuant, SynthFamily, SynthSpec};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn quantizers_write_the_bytes_gguf_py_writes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf_quants.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for name in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"] {
        let case = &v[name];
        let input: Vec<f32> = hex(case["input"].as_str().unwrap())
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let q: GgufQuant = name.parse().unwrap();
        let mut ours = Vec::new();
        q.quantize(&input, &mut ours);
        assert_eq!(ours, hex(case["blocks"].as_str().unwrap()), "{name}");
    }
}

/// Every quantization: the file opens, every tensor has the synthetic model's shape, and each
/// matrix decodes to exactly the synthetic values quantized and dequantized.
#[test]
fn every_quant_reads_back_as_the_synthetic_values_quantized() {
    let mut spec = SynthSpec::new(SynthFamily::Llama, 2, 64, 4);
    spec.kv_heads = 2;
    spec.vocab = 96;
    for q in ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "f16"] {
        let quant: GgufQuant = q.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        synth::write_gguf(dir.path(), &spec, quant).unwrap();
        let ck = Checkpoint::open(dir.path().to_str().unwrap()).unwrap();
        let shapes = synth::tensor_shapes(&spec).unwrap();
        assert_eq!(ck.tensors().len(), shapes.len(), "{q}");
        let cfg = ck.config().unwrap();
        assert_eq!(
            (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim),
            (Some(4), Some(2), Some(16))
        );
        for (name, shape) in shapes {
            let i = ck
                .tensor_index(&name)
                .unwrap_or_else(|| panic!("{q}: {name}"));
            let t = &ck.tensors()[i];
            assert_eq!(t.shape, shape, "{q}: {name}");
            assert!(gguf_name("llama", &name) != name || name.starts_with("reference"));
            let &[rows, cols] = shape.as_slice() else {
                assert_eq!(t.dtype.name(), "F32");
                continue;
            };
            let stored = synth::stored_tensor(&spec, &name).unwrap().data;
            let want: Vec<f32> = if q == "f16" {
                stored
                    .iter()
                    .map(|&x| half::f16::from_f32(x).to_f32())
                    .collect()
            } else {
                let kind = Quant::ALL
                    .into_iter()
                    .find(|k| k.name().eq_ignore_ascii_case(q))
                    .unwrap();
                assert_eq!(t.dtype.name(), kind.name());
                let mut bytes = Vec::new();
                quant.quantize(&stored, &mut bytes);
                let mut back = vec![0f32; stored.len()];
                kind.dequantize(&bytes, &mut back);
                back
            };
            let sel = Selection {
                tensor: i,
                rows: vec![0..rows],
                cols: 0..cols,
                transpose: false,
            };
            let m = ck.decode_f32(&sel).unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        m[(r, c)].to_bits(),
                        want[r * cols + c].to_bits(),
                        "{q} {name}"
                    );
                }
            }
        }
    }
}

#[test]
fn cli_writes_a_gguf_whose_planted_spikes_survive_q4_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = mpscope(&[
        "synth",
        d,
        "--format",
        "gguf",
        "--quant",
        "q4_0",
        "--layers",
        "2",
        "--hidden",
        "128",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--spikes",
        "L0.q:3",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("model.gguf, q4_0"), "{err}");
    let out = mpscope(&["report", d, "--format", "json", "--proj", "q", "--no-heads"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mats = v["matrices"].as_array().unwrap();
    assert_eq!(mats.len(), 2);
    assert!(mats.iter().all(|m| m["dtype"] == "q4_0"), "{mats:?}");
    assert_eq!(mats[0]["above"], 3, "the 3 spikes planted in L0 q");
    assert_eq!(mats[1]["above"], 0);

    let out = mpscope(&["synth", d, "--format", "gguf", "--family", "bert"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
    let out = mpscope(&["synth", d, "--format", "gguf", "--quant", "q3_k"]);
    assert_eq!(out.status.code(), Some(2));
}

/// GPT-2 and GPT-NeoX as llama.cpp's converter writes them (Conv1D transposed back, NeoX's
/// interleaved q/k/v reordered, both fused as `attn_qkv` row blocks, no kv head count or head
/// size in the metadata): every whole matrix and every head decodes to exactly the logical
/// matrix the generator wrote (f16 weights in an f16 file: no rounding anywhere).
#[test]
fn gpt2_and_gptneox_gguf_naming_maps_onto_q_k_v_o_and_heads() {
    use mpscope::anatomy::{Anatomy, Overrides, Proj};
    use mpscope::synth::{SynthDtype, SynthProj};
    for family in [SynthFamily::Gpt2, SynthFamily::Neox] {
        let mut spec = SynthSpec::new(family, 2, 64, 4);
        spec.dtype = SynthDtype::F16;
        spec.vocab = 64;
        let dir = tempfile::tempdir().unwrap();
        synth::write_gguf(dir.path(), &spec, GgufQuant::F16).unwrap();
        let ck = Checkpoint::open(dir.path().to_str().unwrap()).unwrap();
        let names: Vec<&str> = ck.tensors().iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.contains(&"model.layers.1.self_attn.qkv_proj.weight"),
            "{names:?}"
        );
        let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
        assert_eq!(
            (an.num_heads, an.num_kv_heads, an.head_dim),
            (Some(4), Some(4), Some(16))
        );
        assert!(an.notes().is_empty(), "{family}: {:?}", an.notes());
        let mut checked = 0;
        for whole in an.matrices.iter().filter(|b| b.id.layer.is_some()) {
            let layer = whole.id.layer.unwrap();
            let proj = match whole.id.proj {
                Proj::Q => SynthProj::Q,
                Proj::K => SynthProj::K,
                Proj::V => SynthProj::V,
                Proj::O => SynthProj::O,
                Proj::Up => SynthProj::Up,
                Proj::Down => SynthProj::Down,
                p => panic!("{family}: unexpected {p} in {}", whole.tensor),
            };
            let want = synth::logical_matrix(&spec, layer, proj).unwrap();
            let mut blocks = vec![(whole.clone(), want.clone())];
            for (h, head) in an.heads(whole).into_iter().enumerate() {
                let part = match proj {
                    SynthProj::O => want.block(0..want.rows, h * 16..(h + 1) * 16),
                    _ => want.block(h * 16..(h + 1) * 16, 0..want.cols),
                };
                blocks.push((head, part));
            }
            for (b, m) in blocks {
                let got = ck.decode_f32(&b.selection).unwrap();
                assert_eq!(
                    (got.nrows(), got.ncols()),
                    (m.rows, m.cols),
                    "{family} {}",
                    b.name
                );
                for r in 0..m.rows {
                    for c in 0..m.cols {
                        assert_eq!(got[(r, c)], m.get(r, c), "{family} {} ({r}, {c})", b.name);
                    }
                }
                checked += 1;
            }
        }
        // 2 layers × (q, k, v, o with 4 heads each, up, down).
        assert_eq!(checked, 2 * (4 * 5 + 2), "{family}");
    }
}
