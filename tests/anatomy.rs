//! Anatomy of every family from tensor lists built with the real naming and stored layouts.
//!
//! Each stored tensor is filled from logical matrices the way FAMILIES.md packs them (Conv1D
//! transposes, fused q/k/v blocks, NeoX per-head interleave); every block's selection is then
//! cut from the stored values and compared entry by entry with the logical matrix it names.

// `Selection::rows` is a list of stored row ranges; a list of one range is the common case.
#![allow(clippy::single_range_in_vec_init)]

use mpscope::anatomy::{Anatomy, AnatomyError, Block, Family, MatrixId, Overrides, Proj};
use mpscope::checkpoint::{Dtype, ModelConfig, Selection, TensorInfo};

/// The logical entry (r, c) of projection `p` in layer `l`: unique per (l, p, r, c).
fn v(l: usize, p: Proj, r: usize, c: usize) -> f64 {
    let pi = match p {
        Proj::Q => 0,
        Proj::K => 1,
        Proj::V => 2,
        Proj::O => 3,
        Proj::Gate => 4,
        Proj::Up => 5,
        Proj::Down => 6,
        Proj::Other(i) => 7 + i as usize,
        // Mixture-of-Experts projections have their own tests (tests/anatomy_moe.rs).
        _ => 99,
    };
    (((l * 10 + pi) * 1000 + r) * 1000 + c) as f64
}

type Fill = Box<dyn Fn(usize, usize) -> f64>;

/// A tensor list plus a function giving each stored tensor's entries.
#[derive(Default)]
struct Model {
    tensors: Vec<TensorInfo>,
    fills: Vec<Fill>,
}

impl Model {
    fn add(&mut self, name: &str, shape: &[usize], fill: impl Fn(usize, usize) -> f64 + 'static) {
        self.tensors.push(TensorInfo {
            name: name.to_string(),
            dtype: Dtype::BF16,
            shape: shape.to_vec(),
            file: 0,
            bytes: 0..0,
        });
        self.fills.push(Box::new(fill));
    }

    /// A stored [out, in] projection equal to its logical matrix.
    fn plain(&mut self, name: &str, shape: [usize; 2], l: usize, p: Proj) {
        self.add(name, &shape, move |r, c| v(l, p, r, c));
    }

    /// A Conv1D tensor stored [in, out], the transpose of its logical matrix.
    fn conv1d(&mut self, name: &str, logical: [usize; 2], l: usize, p: Proj) {
        self.add(name, &[logical[1], logical[0]], move |r, c| v(l, p, c, r));
    }

    fn vector(&mut self, name: &str, n: usize) {
        self.add(name, &[n], |_, _| 0.0);
    }

    fn other(&mut self, name: &str, shape: [usize; 2]) {
        self.add(name, &shape, |r, c| -((r * 1000 + c) as f64));
    }

    fn anatomy(&self, cfg: Option<&ModelConfig>, ov: &Overrides) -> Result<Anatomy, AnatomyError> {
        Anatomy::from_parts(&self.tensors, cfg, ov)
    }

    /// Cuts a selection from the stored values, in logical orientation.
    fn cut(&self, sel: &Selection) -> Vec<Vec<f64>> {
        let fill = &self.fills[sel.tensor];
        let shape = &self.tensors[sel.tensor].shape;
        let mut m = Vec::new();
        for range in &sel.rows {
            for r in range.clone() {
                assert!(
                    r < shape[0] && sel.cols.end <= shape[1],
                    "{sel:?} outside {shape:?}"
                );
                m.push(sel.cols.clone().map(|c| fill(r, c)).collect::<Vec<_>>());
            }
        }
        if sel.transpose {
            let cols = m.first().map_or(0, Vec::len);
            (0..cols)
                .map(|c| m.iter().map(|row| row[c]).collect())
                .collect()
        } else {
            m
        }
    }

    /// Every block of the anatomy cuts out exactly the logical matrix (or head) it names.
    fn check_all(&self, a: &Anatomy) {
        let d = a.head_dim.unwrap_or(0);
        for b in a.all_blocks() {
            let m = self.cut(&b.selection);
            assert_eq!(m.len(), b.rows, "{}: rows", b.name);
            assert!(m.iter().all(|r| r.len() == b.cols), "{}: cols", b.name);
            assert_eq!(self.tensors[b.selection.tensor].name, b.tensor);
            let Some(l) = b.id.layer.filter(|_| !b.id.proj.is_other()) else {
                // others: the stored tensor as is
                let shape = &self.tensors[b.selection.tensor].shape;
                assert_eq!(b.selection.rows, vec![0..shape[0]], "{}", b.name);
                assert_eq!(b.selection.cols, 0..shape[1], "{}", b.name);
                assert!(!b.selection.transpose && b.id.head.is_none());
                continue;
            };
            let (ro, co) = match (b.id.head, b.id.proj) {
                (None, _) => (0, 0),
                (Some(h), Proj::O) => (0, h * d),
                (Some(h), _) => (h * d, 0),
            };
            for (i, row) in m.iter().enumerate() {
                for (j, x) in row.iter().enumerate() {
                    assert_eq!(
                        *x,
                        v(l, b.id.proj, i + ro, j + co),
                        "{} at ({i}, {j})",
                        b.name
                    );
                }
            }
        }
    }
}

fn config(arch: &str, model_type: &str) -> ModelConfig {
    ModelConfig {
        architecture: Some(arch.into()),
        model_type: Some(model_type.into()),
        ..Default::default()
    }
}

fn id(layer: usize, proj: Proj, head: Option<usize>) -> MatrixId {
    MatrixId {
        layer: Some(layer),
        proj,
        head,
        expert: None,
    }
}

fn names(blocks: &[Block]) -> Vec<&str> {
    blocks.iter().map(|b| b.name.as_str()).collect()
}

/// Llama-style layers: hidden 8, H·d rows of q, KV·d rows of k/v, intermediate 12.
fn llama(prefix: &str, layers: usize, h: usize, kv: usize, d: usize, qwen_bias: bool) -> Model {
    let hidden = 8;
    let mut m = Model::default();
    m.other(&format!("{prefix}embed_tokens.weight"), [10, hidden]);
    for l in 0..layers {
        let p = format!("{prefix}layers.{l}.");
        m.vector(&format!("{p}input_layernorm.weight"), hidden);
        m.plain(
            &format!("{p}self_attn.q_proj.weight"),
            [h * d, hidden],
            l,
            Proj::Q,
        );
        m.plain(
            &format!("{p}self_attn.k_proj.weight"),
            [kv * d, hidden],
            l,
            Proj::K,
        );
        m.plain(
            &format!("{p}self_attn.v_proj.weight"),
            [kv * d, hidden],
            l,
            Proj::V,
        );
        if qwen_bias {
            m.vector(&format!("{p}self_attn.q_proj.bias"), h * d);
            m.vector(&format!("{p}self_attn.k_proj.bias"), kv * d);
            m.vector(&format!("{p}self_attn.v_proj.bias"), kv * d);
            m.vector(&format!("{p}self_attn.q_norm.weight"), d);
        }
        m.plain(
            &format!("{p}self_attn.o_proj.weight"),
            [hidden, h * d],
            l,
            Proj::O,
        );
        m.vector(&format!("{p}post_attention_layernorm.weight"), hidden);
        m.plain(
            &format!("{p}mlp.gate_proj.weight"),
            [12, hidden],
            l,
            Proj::Gate,
        );
        m.plain(&format!("{p}mlp.up_proj.weight"), [12, hidden], l, Proj::Up);
        m.plain(
            &format!("{p}mlp.down_proj.weight"),
            [hidden, 12],
            l,
            Proj::Down,
        );
    }
    m.vector(&format!("{prefix}norm.weight"), hidden);
    m.other("lm_head.weight", [10, hidden]);
    m
}

fn llama_config(h: usize, kv: Option<usize>, d: Option<usize>) -> ModelConfig {
    ModelConfig {
        hidden_size: Some(8),
        num_layers: Some(2),
        num_heads: Some(h),
        num_kv_heads: kv,
        head_dim: d,
        intermediate_size: Some(12),
        vocab_size: Some(10),
        initializer_range: Some(0.02),
        ..config("LlamaForCausalLM", "llama")
    }
}

#[test]
fn llama_gqa_layout_and_heads() {
    let m = llama("model.", 2, 4, 2, 2, false);
    let a = m
        .anatomy(Some(&llama_config(4, Some(2), None)), &Overrides::default())
        .unwrap();
    assert_eq!(a.family, Family::Llama);
    assert_eq!(
        (
            a.num_layers,
            a.num_heads,
            a.num_kv_heads,
            a.head_dim,
            a.hidden
        ),
        (2, Some(4), Some(2), Some(2), Some(8))
    );
    assert!(a.notes().is_empty(), "{:?}", a.notes());
    assert_eq!(
        names(&a.matrices),
        [
            "L0 q",
            "L0 k",
            "L0 v",
            "L0 o",
            "L0 gate",
            "L0 up",
            "L0 down",
            "L1 q",
            "L1 k",
            "L1 v",
            "L1 o",
            "L1 gate",
            "L1 up",
            "L1 down",
            "embed_tokens",
            "lm_head"
        ]
    );
    let emb: Vec<_> = a.matrices.iter().filter(|b| b.embedding).collect();
    assert_eq!(emb.len(), 2);
    assert_eq!(
        (emb[0].id.proj, emb[1].id.proj, emb[0].id.layer),
        (Proj::Other(0), Proj::Other(1), None)
    );

    let q = a.matrix(id(1, Proj::Q, None)).unwrap();
    assert_eq!(
        (q.rows, q.cols, q.tensor.as_str()),
        (8, 8, "model.layers.1.self_attn.q_proj.weight")
    );
    assert_eq!(q.dtype, Dtype::BF16);
    let qh = a.heads(q);
    assert_eq!(names(&qh), ["L1 q h0", "L1 q h1", "L1 q h2", "L1 q h3"]);
    assert_eq!(qh[2].selection.rows, vec![4..6]);
    assert_eq!(
        (qh[2].selection.cols.clone(), qh[2].selection.transpose),
        (0..8, false)
    );
    assert_eq!((qh[2].rows, qh[2].cols), (2, 8));
    let k = a.matrix(id(1, Proj::K, None)).unwrap();
    assert_eq!((k.rows, k.cols), (4, 8));
    assert_eq!(a.heads(k).len(), 2);
    let o = a.matrix(id(0, Proj::O, Some(3))).unwrap();
    assert_eq!(o.id.head, None, "matrix() returns the whole");
    let oh = a.heads(o);
    assert_eq!(
        (oh[3].selection.rows.clone(), oh[3].selection.cols.clone()),
        (vec![0..8], 6..8)
    );
    assert_eq!(
        (oh[3].rows, oh[3].cols, oh[3].name.as_str()),
        (8, 2, "L0 o h3")
    );
    assert!(a.heads(a.matrix(id(0, Proj::Up, None)).unwrap()).is_empty());

    assert_eq!(a.heads_of(Proj::Q), Some(4));
    assert_eq!(a.heads_of(Proj::V), Some(2));
    assert_eq!(a.heads_of(Proj::Down), None);
    assert_eq!(a.projections(), Proj::NAMED.to_vec());
    assert_eq!(a.layer_matrices(1).count(), 7);
    assert_eq!(a.outside_layers().count(), 2);
    // 16 wholes + per layer 4 q + 2 k + 2 v + 4 o heads
    assert_eq!(a.all_blocks().len(), 16 + 2 * 12);
    assert_eq!(a.block(id(1, Proj::K, Some(1))).unwrap().name, "L1 k h1");
    assert_eq!(a.block(id(1, Proj::K, Some(2))), None);
    assert_eq!(a.block(id(5, Proj::K, None)), None);
    m.check_all(&a);
}

#[test]
fn qwen_biases_and_norms_are_ignored() {
    let m = llama("model.", 2, 4, 2, 2, true);
    let cfg = ModelConfig {
        architecture: Some("Qwen3ForCausalLM".into()),
        model_type: Some("qwen3".into()),
        ..llama_config(4, Some(2), Some(2))
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::Llama);
    assert_eq!(
        a.matrices.len(),
        16,
        "1-D biases and q_norm are not matrices"
    );
    m.check_all(&a);
}

#[test]
fn gemma_head_dim_times_heads_differs_from_hidden() {
    // hidden 8, 4 heads of dim 4: q is 16 × 8, o is 8 × 16.
    let m = llama("model.", 2, 4, 1, 4, false);
    let cfg = ModelConfig {
        architecture: Some("Gemma3ForCausalLM".into()),
        model_type: Some("gemma3_text".into()),
        ..llama_config(4, Some(1), Some(4))
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(
        (a.num_heads, a.num_kv_heads, a.head_dim, a.hidden),
        (Some(4), Some(1), Some(4), Some(8))
    );
    let q = a.matrix(id(0, Proj::Q, None)).unwrap();
    assert_eq!((q.rows, q.cols), (16, 8));
    let oh = a.heads(a.matrix(id(0, Proj::O, None)).unwrap());
    assert_eq!(oh.len(), 4);
    assert_eq!(
        (oh[1].rows, oh[1].cols, oh[1].selection.cols.clone()),
        (8, 4, 4..8)
    );
    m.check_all(&a);

    // Without an explicit head_dim, d comes from q rows / heads (not hidden / heads).
    let cfg = ModelConfig {
        head_dim: None,
        ..cfg
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(a.head_dim, Some(4));
    m.check_all(&a);
}

#[test]
fn prefixes_do_not_matter() {
    for prefix in [
        "model.",
        "language_model.model.",
        "model.language_model.",
        "",
        "transformer.",
    ] {
        let m = llama(prefix, 2, 4, 2, 2, false);
        let a = m
            .anatomy(
                None,
                &Overrides {
                    num_heads: Some(4),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(a.family, Family::Llama, "{prefix}");
        assert_eq!(a.num_layers, 2, "{prefix}");
        assert_eq!(
            (a.num_heads, a.num_kv_heads, a.head_dim),
            (Some(4), Some(2), Some(2))
        );
        assert_eq!(a.matrices[0].name, "L0 q", "{prefix}");
        assert_eq!(a.matrices[14].name, "embed_tokens", "{prefix}");
        assert!(a.matrices[14].embedding);
        m.check_all(&a);
    }
}

#[test]
fn layers_in_natural_order() {
    let mut m = Model::default();
    let mut ls: Vec<usize> = (0..12).collect();
    ls.sort_by_key(|l| l.to_string()); // 0, 1, 10, 11, 2, ...
    for l in ls {
        m.plain(
            &format!("model.layers.{l}.self_attn.q_proj.weight"),
            [8, 8],
            l,
            Proj::Q,
        );
    }
    let a = m.anatomy(None, &Overrides::default()).unwrap();
    assert_eq!(a.num_layers, 12);
    let layers: Vec<_> = a.matrices.iter().map(|b| b.id.layer.unwrap()).collect();
    assert_eq!(layers, (0..12).collect::<Vec<_>>());
    assert_eq!(a.matrices[10].name, "L10 q");
}

#[test]
fn no_config_no_heads_but_a_note() {
    let m = llama("model.", 2, 4, 2, 2, false);
    let a = m.anatomy(None, &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::Llama);
    assert_eq!(
        (a.num_heads, a.num_kv_heads, a.head_dim),
        (None, None, None)
    );
    assert_eq!(a.hidden, Some(8), "hidden is read from q's columns");
    assert_eq!(a.heads_of(Proj::Q), None);
    assert!(a.heads(a.matrix(id(0, Proj::Q, None)).unwrap()).is_empty());
    assert_eq!(a.all_blocks().len(), a.matrices.len());
    let note = a.notes().join("\n");
    assert!(note.contains("--num-heads"), "{note}");
    assert!(note.contains("2x fewer rows"), "{note}");
    m.check_all(&a);
}

#[test]
fn overrides_fill_in_and_win() {
    let m = llama("model.", 1, 4, 2, 2, false);
    let hd = Overrides {
        head_dim: Some(2),
        ..Default::default()
    };
    let a = m.anatomy(None, &hd).unwrap();
    assert_eq!(
        (a.num_heads, a.num_kv_heads, a.head_dim),
        (Some(4), Some(2), Some(2))
    );
    assert!(a.notes().is_empty(), "{:?}", a.notes());
    m.check_all(&a);

    // 2 heads of dim 4 and 1 kv head: a valid (if wrong) reading; the flags win over config.
    let ov = Overrides {
        num_heads: Some(2),
        num_kv_heads: Some(1),
        head_dim: None,
    };
    let a = m
        .anatomy(Some(&llama_config(4, Some(2), None)), &ov)
        .unwrap();
    assert_eq!(
        (a.num_heads, a.num_kv_heads, a.head_dim),
        (Some(2), Some(1), Some(4))
    );
    m.check_all(&a);
}

#[test]
fn bad_head_counts_are_errors_naming_the_tensor() {
    let m = llama("model.", 1, 4, 2, 2, false);
    let three = Overrides {
        num_heads: Some(3),
        ..Default::default()
    };
    let e = m.anatomy(None, &three).unwrap_err();
    assert!(matches!(e, AnatomyError::Indivisible { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("model.layers.0.self_attn.q_proj.weight") && msg.contains("3 heads"),
        "{msg}"
    );

    // kv heads given that do not fit k: HeadSplit on k_proj.
    let ov = Overrides {
        num_heads: Some(4),
        num_kv_heads: Some(4),
        head_dim: None,
    };
    let e = m.anatomy(None, &ov).unwrap_err();
    match &e {
        AnatomyError::HeadSplit {
            tensor,
            shape,
            heads,
            head_dim,
        } => {
            assert_eq!(tensor, "model.layers.0.self_attn.k_proj.weight");
            assert_eq!((shape.clone(), *heads, *head_dim), (vec![4, 8], 4, 2));
        }
        other => panic!("unexpected {other}"),
    }

    // config head_dim that does not fit q.
    let e = m
        .anatomy(
            Some(&llama_config(4, Some(2), Some(3))),
            &Overrides::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("q_proj"), "{e}");

    let zero = Overrides {
        head_dim: Some(0),
        ..Default::default()
    };
    assert!(
        m.anatomy(None, &zero)
            .unwrap_err()
            .to_string()
            .contains("--head-dim is 0")
    );
    let ov = Overrides {
        num_heads: Some(2),
        num_kv_heads: Some(4),
        head_dim: None,
    };
    assert!(matches!(
        m.anatomy(None, &ov),
        Err(AnatomyError::InvalidHeads { .. })
    ));
}

fn bert(prefix: &str, layers: usize) -> Model {
    let hidden = 8;
    let mut m = Model::default();
    m.other(
        &format!("{prefix}embeddings.word_embeddings.weight"),
        [10, hidden],
    );
    m.other(
        &format!("{prefix}embeddings.position_embeddings.weight"),
        [6, hidden],
    );
    m.other(
        &format!("{prefix}embeddings.token_type_embeddings.weight"),
        [2, hidden],
    );
    m.vector(&format!("{prefix}embeddings.LayerNorm.weight"), hidden);
    m.vector(&format!("{prefix}embeddings.LayerNorm.bias"), hidden);
    for l in 0..layers {
        let p = format!("{prefix}encoder.layer.{l}.");
        for (n, proj) in [("query", Proj::Q), ("key", Proj::K), ("value", Proj::V)] {
            m.plain(
                &format!("{p}attention.self.{n}.weight"),
                [hidden, hidden],
                l,
                proj,
            );
            m.vector(&format!("{p}attention.self.{n}.bias"), hidden);
        }
        m.plain(
            &format!("{p}attention.output.dense.weight"),
            [hidden, hidden],
            l,
            Proj::O,
        );
        m.vector(&format!("{p}attention.output.LayerNorm.weight"), hidden);
        m.plain(
            &format!("{p}intermediate.dense.weight"),
            [16, hidden],
            l,
            Proj::Up,
        );
        m.plain(
            &format!("{p}output.dense.weight"),
            [hidden, 16],
            l,
            Proj::Down,
        );
        m.vector(&format!("{p}output.LayerNorm.bias"), hidden);
    }
    m.other(&format!("{prefix}pooler.dense.weight"), [hidden, hidden]);
    m
}

#[test]
fn bert_with_and_without_prefix() {
    for prefix in ["bert.", ""] {
        let m = bert(prefix, 2);
        let cfg = ModelConfig {
            hidden_size: Some(8),
            num_heads: Some(2),
            ..config("BertModel", "bert")
        };
        let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
        assert_eq!(a.family, Family::Bert);
        assert_eq!(
            (a.num_layers, a.num_heads, a.num_kv_heads, a.head_dim),
            (2, Some(2), Some(2), Some(4))
        );
        assert_eq!(
            names(&a.matrices),
            [
                "L0 q",
                "L0 k",
                "L0 v",
                "L0 o",
                "L0 up",
                "L0 down",
                "L1 q",
                "L1 k",
                "L1 v",
                "L1 o",
                "L1 up",
                "L1 down",
                "embeddings.word_embeddings",
                "embeddings.position_embeddings",
                "embeddings.token_type_embeddings",
                "pooler.dense"
            ],
            "{prefix}"
        );
        let flags: Vec<bool> = a.outside_layers().map(|b| b.embedding).collect();
        assert_eq!(flags, [true, true, true, false]);
        assert_eq!(
            a.projections(),
            [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Up, Proj::Down]
        );
        let pooler = a.outside_layers().last().unwrap();
        assert_eq!(pooler.id.proj, Proj::Other(3));
        m.check_all(&a);
    }
}

fn gpt2(prefix: &str, layers: usize, hidden: usize) -> Model {
    let mut m = Model::default();
    m.other(&format!("{prefix}wte.weight"), [10, hidden]);
    m.other(&format!("{prefix}wpe.weight"), [6, hidden]);
    for l in 0..layers {
        let p = format!("{prefix}h.{l}.");
        m.vector(&format!("{p}ln_1.weight"), hidden);
        // Conv1D [in, 3·out]: stored column j is logical row j % hidden of q, k or v.
        m.add(
            &format!("{p}attn.c_attn.weight"),
            &[hidden, 3 * hidden],
            move |r, c| {
                let proj = [Proj::Q, Proj::K, Proj::V][c / hidden];
                v(l, proj, c % hidden, r)
            },
        );
        m.vector(&format!("{p}attn.c_attn.bias"), 3 * hidden);
        m.conv1d(
            &format!("{p}attn.c_proj.weight"),
            [hidden, hidden],
            l,
            Proj::O,
        );
        m.conv1d(
            &format!("{p}mlp.c_fc.weight"),
            [4 * hidden, hidden],
            l,
            Proj::Up,
        );
        m.conv1d(
            &format!("{p}mlp.c_proj.weight"),
            [hidden, 4 * hidden],
            l,
            Proj::Down,
        );
    }
    m.vector(&format!("{prefix}ln_f.weight"), hidden);
    m
}

#[test]
fn gpt2_with_and_without_transformer_prefix() {
    for prefix in ["", "transformer."] {
        let m = gpt2(prefix, 2, 8);
        let cfg = ModelConfig {
            hidden_size: Some(8),
            num_heads: Some(4),
            ..config("GPT2LMHeadModel", "gpt2")
        };
        let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
        assert_eq!(a.family, Family::Gpt2);
        assert_eq!(
            (a.num_layers, a.num_heads, a.num_kv_heads, a.head_dim),
            (2, Some(4), Some(4), Some(2))
        );
        assert_eq!(
            names(&a.matrices),
            [
                "L0 q", "L0 k", "L0 v", "L0 o", "L0 up", "L0 down", "L1 q", "L1 k", "L1 v", "L1 o",
                "L1 up", "L1 down", "wte", "wpe"
            ],
            "{prefix}"
        );
        let k = a.matrix(id(1, Proj::K, None)).unwrap();
        assert_eq!(k.tensor, format!("{prefix}h.1.attn.c_attn.weight"));
        assert_eq!(
            (
                k.selection.rows.clone(),
                k.selection.cols.clone(),
                k.selection.transpose
            ),
            (vec![0..8], 8..16, true)
        );
        let kh = a.heads(k);
        assert_eq!(
            (kh[3].selection.rows.clone(), kh[3].selection.cols.clone()),
            (vec![0..8], 14..16)
        );
        assert_eq!((kh[3].rows, kh[3].cols), (2, 8));
        let o = a.matrix(id(0, Proj::O, None)).unwrap();
        assert!(o.selection.transpose);
        let oh = a.heads(o);
        assert_eq!(
            (oh[1].selection.rows.clone(), oh[1].selection.cols.clone()),
            (vec![2..4], 0..8)
        );
        assert_eq!((oh[1].rows, oh[1].cols), (8, 2));
        let up = a.matrix(id(0, Proj::Up, None)).unwrap();
        assert_eq!((up.rows, up.cols, up.selection.transpose), (32, 8, true));
        assert!(a.outside_layers().all(|b| b.embedding));
        m.check_all(&a);
    }
}

#[test]
fn gpt2_fused_size_mismatch_is_an_error() {
    let mut m = Model::default();
    m.add("h.0.attn.c_attn.weight", &[8, 20], |_, _| 0.0);
    let e = m.anatomy(None, &Overrides::default()).unwrap_err();
    assert!(matches!(e, AnatomyError::FusedSplit { .. }));
    assert!(e.to_string().contains("h.0.attn.c_attn.weight"), "{e}");
    // 3·hidden columns but not the config's hidden size
    let mut m = Model::default();
    m.add("h.0.attn.c_attn.weight", &[8, 24], |_, _| 0.0);
    let cfg = ModelConfig {
        hidden_size: Some(16),
        ..config("GPT2LMHeadModel", "gpt2")
    };
    let e = m.anatomy(Some(&cfg), &Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("3·16"), "{e}");
}

fn phi3(layers: usize, h: usize, kv: usize, d: usize) -> Model {
    let hidden = 8;
    let inter = 12;
    let (q, k) = (h * d, kv * d);
    let mut m = Model::default();
    m.other("model.embed_tokens.weight", [10, hidden]);
    for l in 0..layers {
        let p = format!("model.layers.{l}.");
        m.add(
            &format!("{p}self_attn.qkv_proj.weight"),
            &[q + 2 * k, hidden],
            move |r, c| {
                if r < q {
                    v(l, Proj::Q, r, c)
                } else if r < q + k {
                    v(l, Proj::K, r - q, c)
                } else {
                    v(l, Proj::V, r - q - k, c)
                }
            },
        );
        m.plain(
            &format!("{p}self_attn.o_proj.weight"),
            [hidden, q],
            l,
            Proj::O,
        );
        m.add(
            &format!("{p}mlp.gate_up_proj.weight"),
            &[2 * inter, hidden],
            move |r, c| {
                if r < inter {
                    v(l, Proj::Gate, r, c)
                } else {
                    v(l, Proj::Up, r - inter, c)
                }
            },
        );
        m.plain(
            &format!("{p}mlp.down_proj.weight"),
            [hidden, inter],
            l,
            Proj::Down,
        );
    }
    m.other("lm_head.weight", [10, hidden]);
    m
}

#[test]
fn phi3_fused_qkv_and_gate_up() {
    let m = phi3(2, 4, 2, 2);
    let cfg = ModelConfig {
        hidden_size: Some(8),
        num_heads: Some(4),
        num_kv_heads: Some(2),
        intermediate_size: Some(12),
        ..config("Phi3ForCausalLM", "phi3")
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::Phi3);
    assert_eq!(
        names(&a.matrices)[..7],
        [
            "L0 q", "L0 k", "L0 v", "L0 o", "L0 gate", "L0 up", "L0 down"
        ]
    );
    let sel = |p| a.matrix(id(1, p, None)).unwrap().selection.rows.clone();
    assert_eq!(
        (sel(Proj::Q), sel(Proj::K), sel(Proj::V)),
        (vec![0..8], vec![8..12], vec![12..16])
    );
    assert_eq!(
        (sel(Proj::Gate), sel(Proj::Up)),
        (vec![0..12], vec![12..24])
    );
    let vh = a.heads(a.matrix(id(1, Proj::V, None)).unwrap());
    assert_eq!(vh[1].selection.rows, vec![14..16]);
    m.check_all(&a);

    // Without config: q rows come from o_proj's columns, heads stay unknown.
    let a = m.anatomy(None, &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::Phi3);
    assert_eq!(a.head_dim, None);
    assert_eq!(
        a.matrix(id(0, Proj::K, None)).unwrap().selection.rows,
        vec![8..12]
    );
    m.check_all(&a);
    // ... and --head-dim alone is enough.
    let a = m
        .anatomy(
            None,
            &Overrides {
                head_dim: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((a.num_heads, a.num_kv_heads), (Some(4), Some(2)));
    m.check_all(&a);
}

#[test]
fn phi3_fused_size_mismatch_is_an_error() {
    let m = phi3(1, 4, 2, 2);
    let cfg = ModelConfig {
        num_heads: Some(4),
        num_kv_heads: Some(4),
        head_dim: Some(2),
        ..config("Phi3ForCausalLM", "phi3")
    };
    let e = m.anatomy(Some(&cfg), &Overrides::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("model.layers.0.self_attn.qkv_proj.weight") && msg.contains("(4 + 2·4)·2"),
        "{msg}"
    );
    let cfg = ModelConfig {
        intermediate_size: Some(10),
        ..config("Phi3ForCausalLM", "phi3")
    };
    let e = m.anatomy(Some(&cfg), &Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("gate_up_proj"), "{e}");
}

fn neox(layers: usize, h: usize, d: usize) -> Model {
    let hidden = h * d;
    let mut m = Model::default();
    m.other("gpt_neox.embed_in.weight", [10, hidden]);
    for l in 0..layers {
        let p = format!("gpt_neox.layers.{l}.");
        m.vector(&format!("{p}input_layernorm.weight"), hidden);
        m.vector(&format!("{p}input_layernorm.bias"), hidden);
        // row head·3d + t·d + i is row head·d + i of q (t = 0), k (1) or v (2)
        m.add(
            &format!("{p}attention.query_key_value.weight"),
            &[3 * hidden, hidden],
            move |r, c| {
                let (head, t, i) = (r / (3 * d), (r % (3 * d)) / d, r % d);
                v(l, [Proj::Q, Proj::K, Proj::V][t], head * d + i, c)
            },
        );
        m.vector(&format!("{p}attention.query_key_value.bias"), 3 * hidden);
        m.plain(
            &format!("{p}attention.dense.weight"),
            [hidden, hidden],
            l,
            Proj::O,
        );
        m.plain(
            &format!("{p}mlp.dense_h_to_4h.weight"),
            [4 * hidden, hidden],
            l,
            Proj::Up,
        );
        m.plain(
            &format!("{p}mlp.dense_4h_to_h.weight"),
            [hidden, 4 * hidden],
            l,
            Proj::Down,
        );
    }
    m.vector("gpt_neox.final_layer_norm.weight", hidden);
    m.other("embed_out.weight", [10, hidden]);
    m
}

#[test]
fn neox_interleaved_heads() {
    let m = neox(2, 3, 2);
    let cfg = ModelConfig {
        hidden_size: Some(6),
        num_heads: Some(3),
        ..config("GPTNeoXForCausalLM", "gpt_neox")
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::NeoX);
    assert_eq!(
        names(&a.matrices),
        [
            "L0 q",
            "L0 k",
            "L0 v",
            "L0 o",
            "L0 up",
            "L0 down",
            "L1 q",
            "L1 k",
            "L1 v",
            "L1 o",
            "L1 up",
            "L1 down",
            "embed_in",
            "embed_out"
        ]
    );
    let k = a.matrix(id(0, Proj::K, None)).unwrap();
    assert_eq!(k.selection.rows, vec![2..4, 8..10, 14..16]);
    assert_eq!((k.rows, k.cols), (6, 6));
    let kh = a.heads(k);
    assert_eq!(kh[1].selection.rows, vec![8..10]);
    let vh = a.heads(a.matrix(id(1, Proj::V, None)).unwrap());
    assert_eq!(vh[2].selection.rows, vec![16..18]);
    assert!(a.outside_layers().all(|b| b.embedding));
    m.check_all(&a);
}

#[test]
fn neox_without_heads_keeps_the_fused_tensor_whole() {
    let m = neox(1, 3, 2);
    let a = m.anatomy(None, &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::NeoX);
    assert_eq!(
        names(&a.matrices),
        [
            "L0 o",
            "L0 up",
            "L0 down",
            "L0 attention.query_key_value",
            "embed_in",
            "embed_out"
        ]
    );
    assert!(
        a.notes()
            .iter()
            .any(|n| n.contains("query_key_value") && n.contains("--num-heads")),
        "{:?}",
        a.notes()
    );
    m.check_all(&a);
    // GQA has no interleaved NeoX layout
    let ov = Overrides {
        num_heads: Some(3),
        num_kv_heads: Some(1),
        head_dim: None,
    };
    assert!(matches!(
        m.anatomy(None, &ov),
        Err(AnatomyError::FusedSplit { .. } | AnatomyError::Indivisible { .. })
    ));
}

#[test]
fn others_kept_and_odd_dims_ignored() {
    let mut m = llama("model.", 1, 2, 2, 4, false);
    m.other("model.layers.0.mlp.router.weight", [4, 8]);
    m.other("model.layers.0.self_attn.q_proj.lora_A", [2, 8]);
    m.add("model.layers.0.mlp.experts", &[2, 3, 4], |_, _| 0.0);
    m.add("rope.inv_freq", &[4], |_, _| 0.0);
    m.add("scalar", &[], |_, _| 0.0);
    m.other("projector.weight", [8, 8]);
    let a = m
        .anatomy(
            None,
            &Overrides {
                num_heads: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        names(&a.matrices),
        [
            "L0 q",
            "L0 k",
            "L0 v",
            "L0 o",
            "L0 gate",
            "L0 up",
            "L0 down",
            "L0 mlp.router",
            "L0 self_attn.q_proj.lora_A",
            "embed_tokens",
            "lm_head",
            "projector"
        ]
    );
    let ids: Vec<_> = a
        .matrices
        .iter()
        .filter(|b| b.id.proj.is_other())
        .map(|b| b.id.proj)
        .collect();
    // numbered in checkpoint order: embed_tokens 0, lm_head 1, router 2, lora 3, projector 4
    assert_eq!(
        ids,
        [
            Proj::Other(2),
            Proj::Other(3),
            Proj::Other(0),
            Proj::Other(1),
            Proj::Other(4)
        ]
    );
    assert_eq!(a.layer_matrices(0).count(), 9);
    assert!(!a.projections().iter().any(Proj::is_other));
    m.check_all(&a);
}

#[test]
fn second_layer_stack_and_unsupported_dtypes_become_other() {
    let mut m = llama("language_model.model.", 1, 2, 2, 4, false);
    m.plain(
        "vision_tower.encoder.layers.0.self_attn.q_proj.weight",
        [8, 8],
        0,
        Proj::Q,
    );
    m.plain(
        "vision_tower.encoder.layers.1.self_attn.q_proj.weight",
        [8, 8],
        1,
        Proj::Q,
    );
    let a = m.anatomy(None, &Overrides::default()).unwrap();
    assert_eq!(a.num_layers, 1);
    let vision: Vec<_> = a
        .matrices
        .iter()
        .filter(|b| b.tensor.starts_with("vision"))
        .collect();
    assert_eq!(vision.len(), 2);
    assert!(
        vision
            .iter()
            .all(|b| b.id.layer.is_none() && b.id.proj.is_other())
    );
    assert_eq!(
        vision[0].name,
        "vision_tower.encoder.layers.0.self_attn.q_proj"
    );
    assert!(
        a.notes()
            .iter()
            .any(|n| n.contains("language_model.model.layers")),
        "{:?}",
        a.notes()
    );

    let mut m = llama("model.", 1, 2, 2, 4, false);
    let q = m
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    q.dtype = Dtype::Unsupported("I8".into());
    let a = m
        .anatomy(
            None,
            &Overrides {
                num_heads: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(a.matrix(id(0, Proj::Q, None)).is_none());
    assert!(
        !a.matrices.iter().any(|b| b.tensor.contains("q_proj")),
        "an I8 tensor is packed data, never a matrix"
    );
    assert_eq!(a.skipped.len(), 1);
    assert_eq!(
        a.skipped[0].tensor,
        "model.layers.0.self_attn.q_proj.weight"
    );
    assert!(a.skipped[0].reason.contains("i8 tensor"), "{:?}", a.skipped);
}

#[test]
fn buffers_of_every_family_are_skipped_never_matrices() {
    // The buffers real checkpoints carry beside their weights, as each family names them.
    let mut m = llama("model.", 1, 2, 2, 4, false);
    let mut add = |name: &str, dtype: Dtype, shape: &[usize]| {
        m.add(name, shape, |_, _| 0.0);
        if let Some(t) = m.tensors.last_mut() {
            t.dtype = dtype;
        }
    };
    let i64 = || Dtype::Unsupported("I64".into());
    let boolean = || Dtype::Unsupported("BOOL".into());
    add("bert.embeddings.position_ids", i64(), &[1, 512]);
    add("bert.embeddings.token_type_ids", i64(), &[1, 512]);
    add(
        "model.layers.0.self_attn.rotary_emb.inv_freq",
        Dtype::F32,
        &[2],
    );
    add("h.0.attn.bias", Dtype::F32, &[1, 1, 8, 8]);
    add("h.0.attn.masked_bias", Dtype::F32, &[]);
    add("gpt_neox.layers.0.attention.bias", boolean(), &[1, 1, 8, 8]);
    add("encoder.attention_mask", Dtype::F32, &[8, 8]);
    add("bn.num_batches_tracked", i64(), &[]);
    add(
        "model.layers.0.mlp.qweight",
        Dtype::Unsupported("I32".into()),
        &[1, 12],
    );
    let a = m
        .anatomy(
            None,
            &Overrides {
                num_heads: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let skipped: Vec<(&str, &str)> = a
        .skipped
        .iter()
        .map(|s| (s.tensor.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "bert.embeddings.position_ids",
                "i64 tensor: a buffer or packed data, not a weight"
            ),
            (
                "bert.embeddings.token_type_ids",
                "i64 tensor: a buffer or packed data, not a weight"
            ),
            (
                "model.layers.0.self_attn.rotary_emb.inv_freq",
                "rotary frequencies, not a weight"
            ),
            ("h.0.attn.bias", "an attention mask, not a weight"),
            ("h.0.attn.masked_bias", "a masking constant, not a weight"),
            (
                "gpt_neox.layers.0.attention.bias",
                "bool tensor: a buffer or packed data, not a weight"
            ),
            ("encoder.attention_mask", "an attention mask, not a weight"),
            (
                "bn.num_batches_tracked",
                "i64 tensor: a buffer or packed data, not a weight"
            ),
            (
                "model.layers.0.mlp.qweight",
                "i32 tensor: a buffer or packed data, not a weight"
            ),
        ]
    );
    assert!(
        a.matrices
            .iter()
            .all(|b| b.dtype.is_supported() && !a.skipped.iter().any(|s| s.tensor == b.tensor)),
        "{:?}",
        names(&a.matrices)
    );
    m.check_all(&a);
}

#[test]
fn unknown_family_lists_every_matrix() {
    let mut m = Model::default();
    m.other("encoder.blocks.0.attn.wq.weight", [4, 4]);
    m.other("encoder.blocks.1.attn.wq.weight", [4, 4]);
    m.other("head.weight", [2, 4]);
    m.vector("head.bias", 2);
    let cfg = ModelConfig {
        num_heads: Some(2),
        ..config("T5Model", "t5")
    };
    let a = m.anatomy(Some(&cfg), &Overrides::default()).unwrap();
    assert_eq!(a.family, Family::Unknown);
    assert_eq!(a.num_layers, 2);
    assert_eq!(names(&a.matrices), ["L0 attn.wq", "L1 attn.wq", "head"]);
    assert_eq!(a.num_heads, Some(2));
    assert!(a.projections().is_empty());
    assert!(a.notes().is_empty(), "{:?}", a.notes());
    m.check_all(&a);
    let empty = Anatomy::from_parts(&[], None, &Overrides::default()).unwrap();
    assert_eq!(
        (empty.family, empty.num_layers, empty.matrices.len()),
        (Family::Unknown, 0, 0)
    );
}
