//! Mixture-of-Experts anatomy from tensor lists with the real naming of Mixtral, Qwen2-MoE,
//! Qwen3-MoE, DeepSeek V2/V3 and GGUF (after its name map): every routed expert is a whole
//! matrix with an expert index, routers and shared experts have their own projections, and each
//! block's selection cuts exactly its expert out of the stored tensor (a 3-D GGUF stack too).

// `Selection::rows` is a list of stored row ranges; a list of one range is the common case.
#![allow(clippy::single_range_in_vec_init)]

use mpscope::anatomy::{Anatomy, Block, MatrixId, Overrides, Proj};
use mpscope::checkpoint::{Dtype, ModelConfig, TensorInfo};

/// What a stored tensor holds: (layer, proj, expert) of every row block of `rows` rows.
#[derive(Clone, Copy)]
struct Holds {
    layer: usize,
    proj: Proj,
    /// The first expert stored (a 3-D stack holds experts first.. in order), `None` for dense.
    expert: Option<usize>,
    /// Rows of one matrix.
    rows: usize,
}

/// Entry (r, c) of (layer, proj, expert): unique, so a wrong cut cannot go unnoticed.
fn value(l: usize, p: Proj, e: Option<usize>, r: usize, c: usize) -> f64 {
    let e = e.map_or(0, |e| e + 1);
    (((((l * 20 + p.index()) * 100 + e) * 1000) + r) * 1000 + c) as f64
}

trait AsIndex {
    fn index(self) -> usize;
}

impl AsIndex for Proj {
    fn index(self) -> usize {
        Proj::NAMED
            .into_iter()
            .chain(Proj::MOE)
            .position(|q| q == self)
            .unwrap_or(19)
    }
}

#[derive(Default)]
struct Model {
    tensors: Vec<TensorInfo>,
    holds: Vec<Option<Holds>>,
}

impl Model {
    fn add(&mut self, name: &str, shape: &[usize], holds: Option<Holds>) {
        self.tensors.push(TensorInfo {
            name: name.into(),
            dtype: Dtype::BF16,
            shape: shape.to_vec(),
            file: 0,
            bytes: 0..0,
        });
        self.holds.push(holds);
    }

    fn matrix(&mut self, name: &str, shape: [usize; 2], l: usize, p: Proj, e: Option<usize>) {
        let holds = Holds {
            layer: l,
            proj: p,
            expert: e,
            rows: shape[0],
        };
        self.add(name, &shape, Some(holds));
    }

    /// Llama attention (q, k, v, o of 8 × 8, 2 heads of 4) in layer `l`.
    fn attention(&mut self, prefix: &str, l: usize) {
        for (p, n) in [
            (Proj::Q, "q"),
            (Proj::K, "k"),
            (Proj::V, "v"),
            (Proj::O, "o"),
        ] {
            self.matrix(
                &format!("{prefix}self_attn.{n}_proj.weight"),
                [8, 8],
                l,
                p,
                None,
            );
        }
        self.add(&format!("{prefix}input_layernorm.weight"), &[8], None);
    }

    /// Routed experts 0..n of layer `l`: `{prefix}E.{leaf}.weight` for the gate, up and down
    /// leaves given, [width, 8] and [8, width].
    fn experts(&mut self, prefix: &str, l: usize, n: usize, width: usize, leaves: [&str; 3]) {
        for e in 0..n {
            for (proj, leaf) in [Proj::Gate, Proj::Up, Proj::Down].into_iter().zip(leaves) {
                let shape = if proj == Proj::Down {
                    [8, width]
                } else {
                    [width, 8]
                };
                self.matrix(
                    &format!("{prefix}{e}.{leaf}.weight"),
                    shape,
                    l,
                    proj,
                    Some(e),
                );
            }
        }
    }

    /// A router [n, 8] of layer `l`.
    fn router(&mut self, name: &str, l: usize, n: usize) {
        self.matrix(name, [n, 8], l, Proj::Router, None);
    }

    /// A shared expert of layer `l`: `{prefix}{gate,up,down}_proj.weight`.
    fn shared(&mut self, prefix: &str, l: usize, width: usize) {
        for (proj, n) in [
            (Proj::SharedGate, "gate"),
            (Proj::SharedUp, "up"),
            (Proj::SharedDown, "down"),
        ] {
            let shape = if n == "down" { [8, width] } else { [width, 8] };
            self.matrix(&format!("{prefix}{n}_proj.weight"), shape, l, proj, None);
        }
    }

    fn anatomy(&self, cfg: Option<&ModelConfig>) -> Anatomy {
        Anatomy::from_parts(&self.tensors, cfg, &Overrides::default()).expect("anatomy")
    }

    /// Every block cuts out exactly the matrix its id names.
    fn check_all(&self, a: &Anatomy) {
        for b in a.all_blocks() {
            let Some(h) = self.holds[b.selection.tensor] else {
                assert!(b.id.proj.is_other(), "{}", b.name);
                continue;
            };
            if b.id.head.is_some() {
                continue;
            }
            assert_eq!(
                (b.id.layer, b.id.proj),
                (Some(h.layer), h.proj),
                "{}",
                b.name
            );
            let cols = *self.tensors[b.selection.tensor].shape.last().unwrap();
            assert_eq!((b.rows, b.cols), (h.rows, cols), "{}", b.name);
            let mut r = 0;
            for range in &b.selection.rows {
                for stored in range.clone() {
                    // A stacked tensor's row `stored` is row stored % rows of its expert.
                    let e = h.expert.map(|first| first + stored / h.rows);
                    assert_eq!(e, b.id.expert, "{} row {r}", b.name);
                    for c in b.selection.cols.clone() {
                        let want = value(h.layer, h.proj, b.id.expert, r, c);
                        assert_eq!(value(h.layer, h.proj, e, stored % h.rows, c), want);
                    }
                    r += 1;
                }
            }
            assert_eq!(r, b.rows, "{}", b.name);
        }
    }
}

fn ids(a: &Anatomy, layer: usize) -> Vec<(Proj, Option<usize>)> {
    a.layer_matrices(layer)
        .map(|b| (b.id.proj, b.id.expert))
        .collect()
}

fn names(a: &Anatomy, layer: usize) -> Vec<String> {
    a.layer_matrices(layer).map(|b| b.name.clone()).collect()
}

fn cfg(arch: &str) -> ModelConfig {
    ModelConfig {
        architecture: Some(arch.into()),
        hidden_size: Some(8),
        num_heads: Some(2),
        ..Default::default()
    }
}

#[test]
fn mixtral_experts_w1_w2_w3_and_router() {
    let mut m = Model::default();
    for l in 0..2 {
        let p = format!("model.layers.{l}.");
        m.attention(&p, l);
        m.router(&format!("{p}block_sparse_moe.gate.weight"), l, 3);
        m.experts(
            &format!("{p}block_sparse_moe.experts."),
            l,
            3,
            12,
            ["w1", "w3", "w2"],
        );
    }
    let config = ModelConfig {
        num_experts: Some(3),
        experts_used: Some(2),
        ..cfg("MixtralForCausalLM")
    };
    let a = m.anatomy(Some(&config));
    m.check_all(&a);
    assert_eq!(
        (a.num_experts, a.experts_used, a.shared_experts),
        (Some(3), Some(2), None)
    );
    assert!(a.has_experts() && a.notes().is_empty(), "{:?}", a.notes());
    let mut want = vec![
        (Proj::Q, None),
        (Proj::K, None),
        (Proj::V, None),
        (Proj::O, None),
    ];
    for p in [Proj::Gate, Proj::Up, Proj::Down] {
        want.extend((0..3).map(|e| (p, Some(e))));
    }
    want.push((Proj::Router, None));
    assert_eq!(ids(&a, 1), want);
    assert_eq!(
        names(&a, 1)[4..7],
        ["L1 gate e0", "L1 gate e1", "L1 gate e2"]
    );
    assert_eq!(a.experts_of(1, Proj::Down), 3);
    // Experts have no heads; the block with an expert's id is that expert's matrix.
    let e2 = MatrixId::whole(Some(0), Proj::Up).with_expert(2);
    let b = a.block(e2).expect("expert block");
    assert_eq!(
        b.tensor,
        "model.layers.0.block_sparse_moe.experts.2.w3.weight"
    );
    assert!(a.heads(&b).is_empty());
    assert_eq!(a.matrix(MatrixId::whole(Some(0), Proj::Up)), None);
    // More experts in the config than in the names is worth a note.
    let more = ModelConfig {
        num_experts: Some(8),
        ..config
    };
    let a = m.anatomy(Some(&more));
    assert!(a.notes()[0].contains("8 experts"), "{:?}", a.notes());
}

/// Qwen2-MoE: routed experts, a router, one shared expert and its sigmoid gate; Qwen3-MoE is
/// the same without the shared expert.
#[test]
fn qwen_moe_experts_router_shared_expert() {
    for shared in [true, false] {
        let mut m = Model::default();
        let p = "model.layers.0.";
        m.attention(p, 0);
        m.router(&format!("{p}mlp.gate.weight"), 0, 4);
        let leaves = ["gate_proj", "up_proj", "down_proj"];
        m.experts(&format!("{p}mlp.experts."), 0, 4, 6, leaves);
        if shared {
            m.shared(&format!("{p}mlp.shared_expert."), 0, 16);
            let g = format!("{p}mlp.shared_expert_gate.weight");
            m.matrix(&g, [1, 8], 0, Proj::SharedRouter, None);
        }
        let arch = if shared {
            "Qwen2MoeForCausalLM"
        } else {
            "Qwen3MoeForCausalLM"
        };
        let a = m.anatomy(Some(&cfg(arch)));
        m.check_all(&a);
        assert_eq!(a.num_experts, Some(4));
        assert_eq!(a.shared_experts, shared.then_some(1));
        let tail: Vec<String> = names(&a, 0).split_off(16);
        if shared {
            assert_eq!(
                tail,
                [
                    "L0 router",
                    "L0 shared_gate",
                    "L0 shared_up",
                    "L0 shared_down",
                    "L0 shared_router"
                ]
            );
        } else {
            assert_eq!(tail, ["L0 router"]);
        }
        assert!(a.projections().ends_with(if shared {
            &Proj::MOE[..]
        } else {
            &Proj::MOE[..1]
        }));
    }
}

/// DeepSeek V2/V3: dense first layer(s), then routed experts, a router and `shared_experts`
/// (n_shared_experts fused into one MLP); MLA attention matrices are listed as other.
#[test]
fn deepseek_dense_then_moe_with_shared_experts() {
    let mut m = Model::default();
    for l in 0..2 {
        let p = format!("model.layers.{l}.");
        m.attention(&p, l);
        m.add(
            &format!("{p}self_attn.kv_a_proj_with_mqa.weight"),
            &[5, 8],
            None,
        );
        if l == 0 {
            m.matrix(
                &format!("{p}mlp.gate_proj.weight"),
                [20, 8],
                0,
                Proj::Gate,
                None,
            );
            m.matrix(
                &format!("{p}mlp.up_proj.weight"),
                [20, 8],
                0,
                Proj::Up,
                None,
            );
            m.matrix(
                &format!("{p}mlp.down_proj.weight"),
                [8, 20],
                0,
                Proj::Down,
                None,
            );
            continue;
        }
        m.router(&format!("{p}mlp.gate.weight"), l, 2);
        m.add(&format!("{p}mlp.gate.e_score_correction_bias"), &[2], None);
        let leaves = ["gate_proj", "up_proj", "down_proj"];
        m.experts(&format!("{p}mlp.experts."), l, 2, 4, leaves);
        m.shared(&format!("{p}mlp.shared_experts."), l, 8);
    }
    let config = ModelConfig {
        num_experts: Some(2),
        experts_used: Some(1),
        shared_experts: Some(2),
        ..cfg("DeepseekV3ForCausalLM")
    };
    let a = m.anatomy(Some(&config));
    m.check_all(&a);
    assert_eq!(
        (a.num_experts, a.experts_used, a.shared_experts),
        (Some(2), Some(1), Some(2))
    );
    let dense: Vec<_> = ids(&a, 0).into_iter().filter(|(p, _)| p.is_mlp()).collect();
    assert_eq!(
        dense,
        [(Proj::Gate, None), (Proj::Up, None), (Proj::Down, None)]
    );
    assert_eq!(a.experts_of(0, Proj::Gate), 0);
    assert_eq!(a.experts_of(1, Proj::Gate), 2);
    let moe: Vec<Proj> = ids(&a, 1)
        .into_iter()
        .filter(|(p, _)| p.is_moe())
        .map(|x| x.0)
        .collect();
    assert_eq!(
        moe,
        [
            Proj::Router,
            Proj::SharedGate,
            Proj::SharedUp,
            Proj::SharedDown
        ]
    );
    assert!(
        ids(&a, 1).iter().any(|(p, _)| p.is_other()),
        "MLA kv_a is other"
    );
}

/// GGUF after the name map: `ffn_{gate,up,down}_exps` are 3-D [experts, out, in] tensors named
/// `mlp.experts.*_proj`, cut by position into one matrix per expert; `ffn_gate_inp` is the
/// router, `ffn_*_shexp` the shared expert.
#[test]
fn gguf_stacked_experts_are_cut_by_position() {
    let mut m = Model::default();
    let p = "model.layers.0.";
    m.attention(p, 0);
    m.router(&format!("{p}mlp.gate.weight"), 0, 4);
    for (proj, n, out, inp) in [
        (Proj::Gate, "gate", 6, 8),
        (Proj::Up, "up", 6, 8),
        (Proj::Down, "down", 8, 6),
    ] {
        let holds = Holds {
            layer: 0,
            proj,
            expert: Some(0),
            rows: out,
        };
        m.add(
            &format!("{p}mlp.experts.{n}_proj.weight"),
            &[4, out, inp],
            Some(holds),
        );
    }
    m.shared(&format!("{p}mlp.shared_expert."), 0, 10);
    m.add(&format!("{p}mlp.shared_expert_gate.weight"), &[8], None);
    // A 3-D tensor under a dense name is no matrix.
    m.add(&format!("{p}mlp.up_proj.weight"), &[2, 3, 8], None);
    let a = m.anatomy(Some(&cfg("llama")));
    m.check_all(&a);
    assert_eq!(a.num_experts, Some(4));
    let down3 = a
        .block(MatrixId::whole(Some(0), Proj::Down).with_expert(3))
        .expect("expert 3 of down");
    assert_eq!(down3.selection.rows, vec![24..32]);
    assert_eq!(down3.selection.cols, 0..6);
    assert_eq!((down3.rows, down3.cols), (8, 6));
    assert_eq!(down3.name, "L0 down e3");
    let layer: Vec<&Block> = a.layer_matrices(0).collect();
    assert_eq!(layer.len(), 4 + 3 * 4 + 1 + 3);
}
