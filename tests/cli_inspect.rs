//! The real binary end to end: `mpscope synth` writes a checkpoint, `mpscope inspect` describes
//! it (summary, layers × projections table, `--tensors`, head overrides); bad synth specs exit 2.

mod common;
use common::mpscope;

use std::path::Path;

/// Runs `args`, asserts exit 0 and returns stdout.
fn ok(args: &[&str]) -> String {
    let out = mpscope(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
    stdout
}

fn has(out: &str, words: &[&str]) {
    for w in words {
        assert!(out.contains(w), "expected `{w}` in:\n{out}");
    }
}

/// The words of the line that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with `{prefix}` in:\n{out}"))
        .split_whitespace()
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn synth_then_inspect_a_sharded_gqa_llama() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("llama");
    let d = s(&dir);
    let synth = mpscope(&[
        "synth",
        d,
        "--family",
        "llama",
        "--layers",
        "4",
        "--hidden",
        "128",
        "--heads",
        "8",
        "--kv-heads",
        "2",
        "--shards",
        "2",
    ]);
    assert_eq!(synth.status.code(), Some(0), "{synth:?}");
    assert!(dir.join("model.safetensors.index.json").is_file());

    let out = ok(&["inspect", d]);
    has(
        &out,
        &[
            "family    llama (LlamaForCausalLM)",
            "layers    4",
            "hidden 128",
            "heads 8",
            "kv heads 2",
            "head_dim 16",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "bf16 ×",
            "lm_head.weight",
            "model.embed_tokens.weight",
        ],
    );
    assert_eq!(line(&out, "files")[1], "2", "{out}");
    // One table row for the four identical layers: q/o split in 8 heads, k/v in 2.
    assert_eq!(
        line(&out, "layer "),
        ["layer", "q", "k", "v", "o", "gate", "up", "down"]
    );
    assert_eq!(
        line(&out, "0-3 "),
        [
            "0-3", "128×128", "/8h", "32×128", "/2h", "32×128", "/2h", "128×128", "/8h", "384×128",
            "384×128", "128×384"
        ]
    );
    assert!(!out.contains("note:"), "{out}");

    // --tensors lists every tensor once, with dtype, shape and bytes.
    let listed = ok(&["inspect", d, "--tensors"]);
    assert!(
        listed.starts_with(&out),
        "--tensors keeps the summary first"
    );
    let list = &listed[out.len()..];
    let mut names = Vec::new();
    for l in list.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), 4, "{l}");
        assert_eq!(w[1], "bf16", "{l}");
        let numel: usize = w[2]
            .split('×')
            .map(|n| n.parse::<usize>().unwrap())
            .product();
        assert_eq!(w[3].parse::<usize>().unwrap(), 2 * numel, "{l}");
        names.push(w[0].to_owned());
    }
    // 4 layers × (2 norms + 7 projections) + embed_tokens + norm + lm_head.
    assert_eq!(names.len(), 4 * 9 + 3, "{list}");
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names);
    for l in 0..4 {
        for t in [
            "input_layernorm",
            "post_attention_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ] {
            let n = format!("model.layers.{l}.{t}.weight");
            assert!(names.contains(&n), "{n} not listed:\n{list}");
        }
    }
    has(
        list,
        &[
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
        ],
    );

    // --num-heads 4: the head dim follows from the q shape (128 / 4), kv heads from k (32 / 32).
    let fewer = ok(&["inspect", d, "--num-heads", "4"]);
    has(&fewer, &["heads 4", "head_dim 32", "kv heads 1"]);
    assert_eq!(
        line(&fewer, "0-3 "),
        [
            "0-3", "128×128", "/4h", "32×128", "/1h", "32×128", "/1h", "128×128", "/4h", "384×128",
            "384×128", "128×384"
        ]
    );
    // --head-dim 32 alone gives the same reading.
    let by_dim = ok(&["inspect", d, "--head-dim", "32"]);
    has(&by_dim, &["heads 4", "head_dim 32", "kv heads 1"]);
    // Overrides that contradict the shapes are a clear error, exit 2.
    let bad = mpscope(&["inspect", d, "--num-heads", "3"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    has(&err, &["q_proj", "3 heads"]);
}

#[test]
fn every_family_prints_its_name_and_heads() {
    let tmp = tempfile::tempdir().unwrap();
    for (family, arch, kv, projs) in [
        ("llama", "LlamaForCausalLM", "2", "q k v o gate up down"),
        ("bert", "BertModel", "4", "q k v o up down"),
        ("gpt2", "GPT2LMHeadModel", "4", "q k v o up down"),
        ("phi3", "Phi3ForCausalLM", "2", "q k v o gate up down"),
        ("neox", "GPTNeoXForCausalLM", "4", "q k v o up down"),
    ] {
        let dir = tmp.path().join(family);
        let mut args = vec![
            "synth",
            s(&dir),
            "--family",
            family,
            "--layers",
            "2",
            "--hidden",
            "64",
            "--heads",
            "4",
            "--dtype",
            "f16",
            "--vocab",
            "64",
        ];
        if kv != "4" {
            args.extend(["--kv-heads", kv]);
        }
        ok(&args);
        let out = ok(&["inspect", s(&dir)]);
        has(
            &out,
            &[
                &format!("family    {family} ({arch})"),
                "layers    2",
                "heads 4",
                &format!("kv heads {kv}"),
                "head_dim 16",
                "f16 ×",
            ],
        );
        let header = line(&out, "layer ").join(" ");
        assert_eq!(header, format!("layer {projs}"), "{family}");
        let row = line(&out, "0-1 ");
        assert_eq!(row[1..3], ["64×64", "/4h"], "{family} q: {row:?}");
        assert_eq!(
            row[3..5],
            [
                format!("{}×64", 16 * kv.parse::<usize>().unwrap()).as_str(),
                &format!("/{kv}h")
            ],
            "{family} k"
        );
    }
}

#[test]
fn synth_bad_spike_spec_or_unknown_preset_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never");
    let d = s(&dir);
    for (args, words) in [
        (
            vec!["synth", d, "--spikes", "zz:3"],
            vec!["zz:3", "spike spec", "not a projection"],
        ),
        (
            vec!["synth", d, "--spikes", "q:three"],
            vec!["q:three", "spike spec"],
        ),
        (
            vec!["synth", d, "--preset", "llama-9000"],
            vec!["unknown preset 'llama-9000'", "llama-3.2-1b"],
        ),
    ] {
        let out = mpscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        has(&err, &words);
        assert!(!dir.exists(), "{args:?} wrote {}", dir.display());
    }
    // A spike aimed at a layer the model does not have: the spec is invalid, not the syntax.
    let out = mpscope(&[
        "synth", d, "--layers", "2", "--hidden", "64", "--spikes", "L7.q:1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("mpscope: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
