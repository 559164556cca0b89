//! Synthetic checkpoints on disk: determinism, family naming and layouts, sharding, dtypes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use mpscope::synth::{self, SynthDtype, SynthFamily, SynthProj, SynthSpec};
use safetensors::SafeTensors;

fn small(family: SynthFamily) -> SynthSpec {
    let mut s = SynthSpec::new(family, 2, 64, 4);
    s.vocab = 50;
    s.positions = 16;
    s.seed = 7;
    if family.supports_gqa() {
        s.kv_heads = 2;
    }
    s
}

/// name → (dtype, shape) of every tensor in every `.safetensors` file of `dir`.
fn read_all(dir: &Path) -> BTreeMap<String, (safetensors::Dtype, Vec<usize>, String)> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            let bytes = fs::read(&p).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            for (name, view) in st.tensors() {
                let prev = out.insert(
                    name.clone(),
                    (view.dtype(), view.shape().to_vec(), file.clone()),
                );
                assert!(prev.is_none(), "{name} in two files");
            }
        }
    }
    out
}

fn tensor_bytes(dir: &Path, file: &str, name: &str) -> Vec<u8> {
    let bytes = fs::read(dir.join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name).unwrap().data().to_vec()
}

fn decode_bf16(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// The expected tensors of FAMILIES.md for `small(family)` (L = 2, hidden 64, H = 4, d = 16).
fn expected(family: SynthFamily) -> BTreeMap<String, Vec<usize>> {
    let s = small(family);
    let (h, v, p, i) = (64, 50, 16, s.intermediate());
    let kvd = s.kv_heads * 16;
    let mut m = BTreeMap::new();
    let mut add = |n: String, shape: &[usize]| {
        m.insert(n, shape.to_vec());
    };
    match family {
        SynthFamily::Mixtral => {
            add("model.embed_tokens.weight".into(), &[v, h]);
            for l in 0..2 {
                let pre = format!("model.layers.{l}.");
                add(format!("{pre}input_layernorm.weight"), &[h]);
                add(format!("{pre}post_attention_layernorm.weight"), &[h]);
                add(format!("{pre}self_attn.q_proj.weight"), &[h, h]);
                add(format!("{pre}self_attn.k_proj.weight"), &[kvd, h]);
                add(format!("{pre}self_attn.v_proj.weight"), &[kvd, h]);
                add(format!("{pre}self_attn.o_proj.weight"), &[h, h]);
                let moe = format!("{pre}block_sparse_moe.");
                add(format!("{moe}gate.weight"), &[s.experts, h]);
                for e in 0..s.experts {
                    add(format!("{moe}experts.{e}.w1.weight"), &[i, h]);
                    add(format!("{moe}experts.{e}.w2.weight"), &[h, i]);
                    add(format!("{moe}experts.{e}.w3.weight"), &[i, h]);
                }
            }
            add("model.norm.weight".into(), &[h]);
            add("lm_head.weight".into(), &[v, h]);
        }
        SynthFamily::Llama | SynthFamily::Phi3 => {
            add("model.embed_tokens.weight".into(), &[v, h]);
            for l in 0..2 {
                let pre = format!("model.layers.{l}.");
                add(format!("{pre}input_layernorm.weight"), &[h]);
                add(format!("{pre}post_attention_layernorm.weight"), &[h]);
                add(format!("{pre}self_attn.o_proj.weight"), &[h, h]);
                add(format!("{pre}mlp.down_proj.weight"), &[h, i]);
                if family == SynthFamily::Llama {
                    add(format!("{pre}self_attn.q_proj.weight"), &[h, h]);
                    add(format!("{pre}self_attn.k_proj.weight"), &[kvd, h]);
                    add(format!("{pre}self_attn.v_proj.weight"), &[kvd, h]);
                    add(format!("{pre}mlp.gate_proj.weight"), &[i, h]);
                    add(format!("{pre}mlp.up_proj.weight"), &[i, h]);
                } else {
                    add(format!("{pre}self_attn.qkv_proj.weight"), &[h + 2 * kvd, h]);
                    add(format!("{pre}mlp.gate_up_proj.weight"), &[2 * i, h]);
                }
            }
            add("model.norm.weight".into(), &[h]);
            add("lm_head.weight".into(), &[v, h]);
        }
        SynthFamily::Bert => {
            add("bert.embeddings.word_embeddings.weight".into(), &[v, h]);
            add("bert.embeddings.position_embeddings.weight".into(), &[p, h]);
            add(
                "bert.embeddings.token_type_embeddings.weight".into(),
                &[2, h],
            );
            add("bert.embeddings.LayerNorm.weight".into(), &[h]);
            add("bert.embeddings.LayerNorm.bias".into(), &[h]);
            for l in 0..2 {
                let pre = format!("bert.encoder.layer.{l}.");
                for n in [
                    "attention.self.query",
                    "attention.self.key",
                    "attention.self.value",
                    "attention.output.dense",
                ] {
                    add(format!("{pre}{n}.weight"), &[h, h]);
                    add(format!("{pre}{n}.bias"), &[h]);
                }
                for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                    add(format!("{pre}{n}.weight"), &[h]);
                    add(format!("{pre}{n}.bias"), &[h]);
                }
                add(format!("{pre}intermediate.dense.weight"), &[i, h]);
                add(format!("{pre}intermediate.dense.bias"), &[i]);
                add(format!("{pre}output.dense.weight"), &[h, i]);
                add(format!("{pre}output.dense.bias"), &[h]);
            }
            add("bert.pooler.dense.weight".into(), &[h, h]);
            add("bert.pooler.dense.bias".into(), &[h]);
        }
        SynthFamily::Gpt2 => {
            add("wte.weight".into(), &[v, h]);
            add("wpe.weight".into(), &[p, h]);
            for l in 0..2 {
                let pre = format!("h.{l}.");
                for n in ["ln_1", "ln_2"] {
                    add(format!("{pre}{n}.weight"), &[h]);
                    add(format!("{pre}{n}.bias"), &[h]);
                }
                add(format!("{pre}attn.c_attn.weight"), &[h, 3 * h]);
                add(format!("{pre}attn.c_attn.bias"), &[3 * h]);
                add(format!("{pre}attn.c_proj.weight"), &[h, h]);
                add(format!("{pre}attn.c_proj.bias"), &[h]);
                add(format!("{pre}mlp.c_fc.weight"), &[h, i]);
                add(format!("{pre}mlp.c_fc.bias"), &[i]);
                add(format!("{pre}mlp.c_proj.weight"), &[i, h]);
                add(format!("{pre}mlp.c_proj.bias"), &[h]);
            }
            add("ln_f.weight".into(), &[h]);
            add("ln_f.bias".into(), &[h]);
        }
        SynthFamily::Neox => {
            add("gpt_neox.embed_in.weight".into(), &[v, h]);
            for l in 0..2 {
                let pre = format!("gpt_neox.layers.{l}.");
                for n in ["input_layernorm", "post_attention_layernorm"] {
                    add(format!("{pre}{n}.weight"), &[h]);
                    add(format!("{pre}{n}.bias"), &[h]);
                }
                add(
                    format!("{pre}attention.query_key_value.weight"),
                    &[3 * h, h],
                );
                add(format!("{pre}attention.query_key_value.bias"), &[3 * h]);
                add(format!("{pre}attention.dense.weight"), &[h, h]);
                add(format!("{pre}attention.dense.bias"), &[h]);
                add(format!("{pre}mlp.dense_h_to_4h.weight"), &[i, h]);
                add(format!("{pre}mlp.dense_h_to_4h.bias"), &[i]);
                add(format!("{pre}mlp.dense_4h_to_h.weight"), &[h, i]);
                add(format!("{pre}mlp.dense_4h_to_h.bias"), &[h]);
            }
            add("gpt_neox.final_layer_norm.weight".into(), &[h]);
            add("gpt_neox.final_layer_norm.bias".into(), &[h]);
            add("embed_out.weight".into(), &[v, h]);
        }
    }
    m
}

#[test]
fn every_family_writes_its_exact_names_shapes_and_config() {
    for fam in SynthFamily::ALL {
        let dir = tempfile::tempdir().unwrap();
        let spec = small(fam);
        synth::write(dir.path(), &spec).unwrap();
        let got: BTreeMap<String, Vec<usize>> = read_all(dir.path())
            .into_iter()
            .map(|(n, (dt, shape, _))| {
                assert_eq!(dt, safetensors::Dtype::BF16, "{n}");
                (n, shape)
            })
            .collect();
        assert_eq!(got, expected(fam), "family {fam}");
        let shapes: BTreeMap<String, Vec<usize>> =
            synth::tensor_shapes(&spec).unwrap().into_iter().collect();
        assert_eq!(shapes, got);

        let cfg: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap())
                .unwrap();
        let (arch, mt) = match fam {
            SynthFamily::Llama => ("LlamaForCausalLM", "llama"),
            SynthFamily::Bert => ("BertModel", "bert"),
            SynthFamily::Gpt2 => ("GPT2LMHeadModel", "gpt2"),
            SynthFamily::Phi3 => ("Phi3ForCausalLM", "phi3"),
            SynthFamily::Neox => ("GPTNeoXForCausalLM", "gpt_neox"),
            SynthFamily::Mixtral => ("MixtralForCausalLM", "mixtral"),
        };
        if fam == SynthFamily::Mixtral {
            assert_eq!(
                (
                    cfg["num_local_experts"].as_u64(),
                    cfg["num_experts_per_tok"].as_u64()
                ),
                (Some(4), Some(2))
            );
        }
        assert_eq!(cfg["architectures"][0], arch);
        assert_eq!(cfg["model_type"], mt);
        assert_eq!(cfg["initializer_range"], 0.02);
        assert_eq!(cfg["head_dim"], 16);
        assert_eq!(cfg["num_key_value_heads"], spec.kv_heads);
        assert_eq!(cfg["torch_dtype"], "bfloat16");
        let (hk, lk, ak) = if fam == SynthFamily::Gpt2 {
            ("n_embd", "n_layer", "n_head")
        } else {
            ("hidden_size", "num_hidden_layers", "num_attention_heads")
        };
        assert_eq!(
            (cfg[hk].as_u64(), cfg[lk].as_u64(), cfg[ak].as_u64()),
            (Some(64), Some(2), Some(4))
        );
        if fam == SynthFamily::Gpt2 {
            assert!(cfg["n_inner"].is_null());
        }
        let truth: synth::Truth =
            serde_json::from_str(&fs::read_to_string(dir.path().join("truth.json")).unwrap())
                .unwrap();
        assert_eq!(truth.spec, spec);
        assert_eq!(truth, synth::truth(&spec).unwrap());
    }
}

fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_spec_same_bytes_whatever_the_threads_and_other_seed_differs() {
    let mut spec = small(SynthFamily::Phi3);
    spec.spikes = synth::parse_list("q:2,L1.k.h1:1x5").unwrap();
    spec.heavy_tail = synth::parse_list("L0.q").unwrap();
    spec.collapse = synth::parse_list("L0.o.h2:2").unwrap();
    spec.shards = 2;
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    synth::write(a.path(), &spec).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one.install(|| synth::write(b.path(), &spec)).unwrap();
    let (ba, bb) = (dir_bytes(a.path()), dir_bytes(b.path()));
    assert_eq!(ba.keys().collect::<Vec<_>>(), bb.keys().collect::<Vec<_>>());
    assert!(ba == bb, "two writes of the same spec differ");

    spec.seed += 1;
    synth::write(c.path(), &spec).unwrap();
    let bc = dir_bytes(c.path());
    for f in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert_ne!(ba[f], bc[f], "{f} did not change with the seed");
        assert_eq!(ba[f].len(), bc[f].len());
    }
}

#[test]
fn sharded_index_is_consistent_and_keeps_layers_whole() {
    let mut spec = small(SynthFamily::Llama);
    spec.layers = 5;
    spec.shards = 3;
    let dir = tempfile::tempdir().unwrap();
    let truth = synth::write(dir.path(), &spec).unwrap();
    assert_eq!(
        truth.files,
        vec![
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors"
        ]
    );
    let index: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let tensors = read_all(dir.path());
    assert_eq!(map.len(), tensors.len());
    let mut total = 0u64;
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for (name, (_, shape, file)) in &tensors {
        assert_eq!(map[name].as_str().unwrap(), file, "{name}");
        total += shape.iter().product::<usize>() as u64 * 2;
        *per_file.entry(file.clone()).or_default() += 1;
    }
    assert_eq!(per_file.len(), 3, "every shard holds tensors");
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(total));
    assert_eq!(truth.total_size, total);
    assert_eq!(synth::total_size(&spec).unwrap(), total);
    for l in 0..5 {
        let files: std::collections::BTreeSet<&String> = tensors
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("model.layers.{l}.")))
            .map(|(_, (_, _, f))| f)
            .collect();
        assert_eq!(files.len(), 1, "layer {l} split across shards");
    }
    // Rewriting the same directory unsharded removes the old shards and index.
    spec.shards = 1;
    synth::write(dir.path(), &spec).unwrap();
    let names: Vec<String> = dir_bytes(dir.path()).into_keys().collect();
    assert_eq!(
        names,
        vec!["config.json", "model.safetensors", "truth.json"]
    );
}

#[test]
fn stored_bytes_are_the_dtype_rounding_of_the_logical_matrices() {
    for dt in [SynthDtype::Bf16, SynthDtype::F16, SynthDtype::F32] {
        let mut spec = small(SynthFamily::Llama);
        spec.dtype = dt;
        spec.spikes = synth::parse_list("L1.k:2").unwrap();
        let dir = tempfile::tempdir().unwrap();
        synth::write(dir.path(), &spec).unwrap();
        for (proj, name) in [
            (SynthProj::K, "model.layers.1.self_attn.k_proj.weight"),
            (SynthProj::Down, "model.layers.0.mlp.down_proj.weight"),
        ] {
            let want = synth::logical_matrix(&spec, proj_layer(name), proj).unwrap();
            let bytes = tensor_bytes(dir.path(), "model.safetensors", name);
            let expect: Vec<u8> = want
                .data
                .iter()
                .flat_map(|&x| match dt {
                    SynthDtype::Bf16 => half::bf16::from_f32(x).to_le_bytes().to_vec(),
                    SynthDtype::F16 => half::f16::from_f32(x).to_le_bytes().to_vec(),
                    SynthDtype::F32 => x.to_le_bytes().to_vec(),
                })
                .collect();
            assert_eq!(bytes, expect, "{dt} {name}");
            // Values are already representable: rounding again changes nothing.
            assert!(want.data.iter().all(|&x| dt.round(x) == x));
        }
    }
}

fn proj_layer(name: &str) -> usize {
    name.split('.').nth(2).unwrap().parse().unwrap()
}

/// Rows of `m` stacked.
fn stack(ms: &[&synth::Matrix]) -> Vec<f32> {
    ms.iter().flat_map(|m| m.data.iter().copied()).collect()
}

#[test]
fn fused_and_transposed_layouts_hold_the_logical_matrices() {
    let l = 1;
    let qkv = |spec: &SynthSpec| {
        [SynthProj::Q, SynthProj::K, SynthProj::V]
            .map(|p| synth::logical_matrix(spec, l, p).unwrap())
    };
    // Phi-3: rows q, then k, then v; gate_up = gate rows then up rows.
    let spec = small(SynthFamily::Phi3);
    let dir = tempfile::tempdir().unwrap();
    synth::write(dir.path(), &spec).unwrap();
    let [q, k, v] = qkv(&spec);
    let got = decode_bf16(&tensor_bytes(
        dir.path(),
        "model.safetensors",
        "model.layers.1.self_attn.qkv_proj.weight",
    ));
    assert_eq!(got, stack(&[&q, &k, &v]));
    let gate = synth::logical_matrix(&spec, l, SynthProj::Gate).unwrap();
    let up = synth::logical_matrix(&spec, l, SynthProj::Up).unwrap();
    let got = decode_bf16(&tensor_bytes(
        dir.path(),
        "model.safetensors",
        "model.layers.1.mlp.gate_up_proj.weight",
    ));
    assert_eq!(got, stack(&[&gate, &up]));

    // GPT-2: c_attn stored [in, 3·out]; stored[j][c] = logical row c of [q;k;v], column j.
    let spec = small(SynthFamily::Gpt2);
    let dir = tempfile::tempdir().unwrap();
    synth::write(dir.path(), &spec).unwrap();
    let [q, k, v] = qkv(&spec);
    let fused = stack(&[&q, &k, &v]);
    let got = decode_bf16(&tensor_bytes(
        dir.path(),
        "model.safetensors",
        "h.1.attn.c_attn.weight",
    ));
    for j in 0..64 {
        for c in 0..192 {
            assert_eq!(got[j * 192 + c], fused[c * 64 + j]);
        }
    }
    let down = synth::logical_matrix(&spec, l, SynthProj::Down).unwrap(); // [64, 256]
    let got = decode_bf16(&tensor_bytes(
        dir.path(),
        "model.safetensors",
        "h.1.mlp.c_proj.weight",
    )); // [256, 64]
    for j in 0..256 {
        for c in 0..64 {
            assert_eq!(got[j * 64 + c], down.get(c, j));
        }
    }

    // NeoX: per head h, d rows of q_h, k_h, v_h.
    let spec = small(SynthFamily::Neox);
    let dir = tempfile::tempdir().unwrap();
    synth::write(dir.path(), &spec).unwrap();
    let [q, k, v] = qkv(&spec);
    let d = 16;
    let parts: Vec<&synth::Matrix> = vec![&q, &k, &v];
    let mut want = Vec::new();
    for h in 0..4 {
        for m in &parts {
            want.extend(m.block(h * d..(h + 1) * d, 0..64).data);
        }
    }
    let got = decode_bf16(&tensor_bytes(
        dir.path(),
        "model.safetensors",
        "gpt_neox.layers.1.attention.query_key_value.weight",
    ));
    assert_eq!(got, want);
    assert_eq!(
        synth::stored_tensor(&spec, "gpt_neox.layers.1.attention.query_key_value.weight")
            .unwrap()
            .data,
        want
    );
}

#[test]
fn bad_specs_are_clear_errors() {
    let mut s = small(SynthFamily::Gpt2);
    s.kv_heads = 2;
    let e = synth::write(Path::new("/nonexistent/never"), &s)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gpt2") && e.contains("grouped-query"), "{e}");

    let mut s = small(SynthFamily::Llama);
    s.heads = 5;
    s.kv_heads = 5;
    assert!(
        synth::truth(&s)
            .unwrap_err()
            .to_string()
            .contains("not a multiple of 5 heads")
    );

    let mut s = small(SynthFamily::Llama);
    s.spikes = synth::parse_list("L2.q:1").unwrap();
    let e = synth::truth(&s).unwrap_err().to_string();
    assert!(
        e.contains("L2.q") && e.contains("layer 2 does not exist"),
        "{e}"
    );

    s.spikes = synth::parse_list("k.h2:1").unwrap();
    let e = synth::truth(&s).unwrap_err().to_string();
    assert!(e.contains("head 2 does not exist"), "{e}");

    let mut s = small(SynthFamily::Bert);
    s.heavy_tail = synth::parse_list("gate").unwrap();
    assert!(
        synth::truth(&s)
            .unwrap_err()
            .to_string()
            .contains("no gate")
    );

    let mut s = small(SynthFamily::Llama);
    s.shards = 1000;
    assert!(synth::truth(&s).is_ok());
    let e = synth::write(tempfile::tempdir().unwrap().path(), &s)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1000 shards"), "{e}");

    let e = synth::logical_matrix(&small(SynthFamily::Gpt2), 0, SynthProj::Gate)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gate"), "{e}");
}
