//! Tensor-name parsing: layer stack, layer index, per-family projection suffixes.

use super::{Family, Proj};

/// Components that introduce a layer index (`layers.N`, `layer.N`, `h.N`, `blocks.N`).
const LAYER_WORDS: [&str; 4] = ["layers", "layer", "h", "blocks"];

/// Leading components dropped from display names of matrices outside the layers.
const DROPPED_PREFIXES: [&str; 5] = ["model", "language_model", "transformer", "bert", "gpt_neox"];

/// Last name components (before `.weight`) that mark an embedding or the LM head.
const EMBEDDINGS: [&str; 10] = [
    "embed_tokens",
    "lm_head",
    "wte",
    "wpe",
    "word_embeddings",
    "position_embeddings",
    "token_type_embeddings",
    "embed_in",
    "embed_out",
    "embed_positions",
];

/// Leaf names (last component) of buffers a model registers beside its weights.
const BUFFERS: [(&str, &str); 6] = [
    ("position_ids", "position ids"),
    ("token_type_ids", "token type ids"),
    ("inv_freq", "rotary frequencies"),
    ("num_batches_tracked", "a batch-norm counter"),
    ("masked_bias", "a masking constant"),
    ("_float_tensor", "a placeholder"),
];

/// What a buffer tensor is when its name says it is not a weight (position ids, rotary
/// frequencies, attention masks, counters), else `None`.
pub(crate) fn buffer_kind(parts: &NameParts, rank: usize) -> Option<&'static str> {
    if parts.has_weight {
        return None;
    }
    let leaf = parts.leaf.as_str();
    if let Some((_, what)) = BUFFERS.iter().find(|(n, _)| *n == leaf) {
        return Some(what);
    }
    // GPT-2's `attn.bias` and GPT-NeoX's `attention.bias` are [1, 1, n, n] causal masks.
    if leaf.ends_with("mask") || (leaf == "bias" && rank >= 3) {
        return Some("an attention mask");
    }
    None
}

/// A tensor name cut at its layer index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameParts {
    /// Everything up to and including the layer word, e.g. "model.layers"; `None` without one.
    pub stack: Option<String>,
    /// The layer index, when the name has a layer component.
    pub layer: Option<usize>,
    /// The components after the layer index (whole name without one), trailing `weight` removed.
    pub suffix: String,
    /// The name ends in `.weight`.
    pub has_weight: bool,
    /// The last component before `.weight`.
    pub leaf: String,
}

/// Cuts a tensor name into stack, layer index and suffix.
pub(crate) fn parse(name: &str) -> NameParts {
    let comps: Vec<&str> = name.split('.').collect();
    let has_weight = comps.len() > 1 && comps.last() == Some(&"weight");
    let body = if has_weight {
        &comps[..comps.len() - 1]
    } else {
        &comps[..]
    };
    let leaf = body.last().copied().unwrap_or_default().to_string();
    let pair = body.windows(2).position(|w| {
        LAYER_WORDS.contains(&w[0]) && !w[1].is_empty() && w[1].bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(i) = pair
        && let Some(layer) = body.get(i + 1).and_then(|s| s.parse::<usize>().ok())
    {
        return NameParts {
            stack: Some(body[..=i].join(".")),
            layer: Some(layer),
            suffix: body[i + 2..].join("."),
            has_weight,
            leaf,
        };
    }
    NameParts {
        stack: None,
        layer: None,
        suffix: body.join("."),
        has_weight,
        leaf,
    }
}

/// How a fused attention tensor packs q, k and v.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fused {
    /// GPT-2 `c_attn`: Conv1D [in, 3·out], q, k, v column blocks.
    Gpt2,
    /// Phi-3 `qkv_proj`: [(H + 2·KV)·d, hidden], q, k, v row blocks.
    Phi3,
    /// GPT-NeoX `query_key_value`: [3·H·d, hidden], rows interleaved per head.
    NeoX,
}

/// What a recognized layer tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// One projection; `transposed` for Conv1D tensors stored [in, out].
    Plain { proj: Proj, transposed: bool },
    /// Fused q, k, v.
    Qkv(Fused),
    /// Phi-3 `gate_up_proj`: gate rows then up rows.
    GateUp,
    /// One routed expert's gate, up or down matrix (Mixtral `experts.E.w1`, Qwen-MoE and
    /// DeepSeek `experts.E.gate_proj`).
    Expert { proj: Proj, expert: usize },
    /// Every routed expert of one projection in one 3-D tensor [experts, out, in] (GGUF
    /// `ffn_gate_exps`, named `mlp.experts.gate_proj` after the name map).
    Experts(Proj),
}

impl Role {
    /// The stored rank this role expects: 3 for stacked experts, 2 for everything else.
    pub(crate) fn rank(self) -> usize {
        if matches!(self, Role::Experts(_)) {
            3
        } else {
            2
        }
    }
}

const fn plain(proj: Proj) -> Option<Role> {
    Some(Role::Plain {
        proj,
        transposed: false,
    })
}

const fn conv1d(proj: Proj) -> Option<Role> {
    Some(Role::Plain {
        proj,
        transposed: true,
    })
}

/// The role of a layer tensor suffix (e.g. "self_attn.q_proj") in a family, if it has one.
pub(crate) fn role(family: Family, suffix: &str) -> Option<Role> {
    match family {
        Family::Llama => llama(suffix),
        Family::Phi3 => match suffix {
            "self_attn.qkv_proj" => Some(Role::Qkv(Fused::Phi3)),
            "mlp.gate_up_proj" => Some(Role::GateUp),
            _ => llama(suffix),
        },
        Family::Bert => match suffix {
            "attention.self.query" => plain(Proj::Q),
            "attention.self.key" => plain(Proj::K),
            "attention.self.value" => plain(Proj::V),
            "attention.output.dense" => plain(Proj::O),
            "intermediate.dense" => plain(Proj::Up),
            "output.dense" => plain(Proj::Down),
            _ => None,
        },
        Family::Gpt2 => match suffix {
            "attn.c_attn" => Some(Role::Qkv(Fused::Gpt2)),
            "attn.c_proj" => conv1d(Proj::O),
            "mlp.c_fc" => conv1d(Proj::Up),
            "mlp.c_proj" => conv1d(Proj::Down),
            _ => None,
        },
        Family::NeoX => match suffix {
            "attention.query_key_value" => Some(Role::Qkv(Fused::NeoX)),
            "attention.dense" => plain(Proj::O),
            "mlp.dense_h_to_4h" => plain(Proj::Up),
            "mlp.dense_4h_to_h" => plain(Proj::Down),
            _ => None,
        },
        Family::Unknown => None,
    }
}

fn llama(suffix: &str) -> Option<Role> {
    if let Some(role) = moe(suffix) {
        return Some(role);
    }
    match suffix {
        "self_attn.q_proj" => plain(Proj::Q),
        "self_attn.k_proj" => plain(Proj::K),
        "self_attn.v_proj" => plain(Proj::V),
        "self_attn.o_proj" => plain(Proj::O),
        "mlp.gate_proj" => plain(Proj::Gate),
        "mlp.up_proj" => plain(Proj::Up),
        "mlp.down_proj" => plain(Proj::Down),
        _ => None,
    }
}

/// Mixture-of-Experts names (Mixtral, PhiMoE, Qwen2/3-MoE, DeepSeek V2/V3, and GGUF's after
/// the name map): routers, routed experts, shared experts.
fn moe(suffix: &str) -> Option<Role> {
    let expert = |proj| {
        Some(Role::Plain {
            proj,
            transposed: false,
        })
    };
    match suffix {
        "block_sparse_moe.gate" | "mlp.gate" => return expert(Proj::Router),
        "mlp.shared_expert_gate" => return expert(Proj::SharedRouter),
        "mlp.experts.gate_proj" => return Some(Role::Experts(Proj::Gate)),
        "mlp.experts.up_proj" => return Some(Role::Experts(Proj::Up)),
        "mlp.experts.down_proj" => return Some(Role::Experts(Proj::Down)),
        _ => {}
    }
    for shared in ["mlp.shared_expert.", "mlp.shared_experts."] {
        if let Some(leaf) = suffix.strip_prefix(shared) {
            return match leaf {
                "gate_proj" => expert(Proj::SharedGate),
                "up_proj" => expert(Proj::SharedUp),
                "down_proj" => expert(Proj::SharedDown),
                _ => None,
            };
        }
    }
    let (index, leaf) = suffix
        .strip_prefix("block_sparse_moe.experts.")
        .or_else(|| suffix.strip_prefix("mlp.experts."))?
        .split_once('.')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let e: usize = index.parse().ok()?;
    let proj = match leaf {
        "w1" | "gate_proj" => Proj::Gate,
        "w3" | "up_proj" => Proj::Up,
        "w2" | "down_proj" => Proj::Down,
        _ => return None,
    };
    Some(Role::Expert { proj, expert: e })
}

/// True when the name's last component before `.weight` is an embedding or LM-head name.
pub(crate) fn is_embedding(parts: &NameParts) -> bool {
    EMBEDDINGS.contains(&parts.leaf.as_str())
}

/// Display name of a matrix outside the layers: the name without `.weight` and without
/// leading `model.` / `language_model.` / `transformer.` / `bert.` / `gpt_neox.`.
pub(crate) fn short_name(name: &str) -> String {
    let mut comps: Vec<&str> = name.split('.').collect();
    if comps.len() > 1 && comps.last() == Some(&"weight") {
        comps.pop();
    }
    let mut start = 0;
    while start + 1 < comps.len() && DROPPED_PREFIXES.contains(&comps[start]) {
        start += 1;
    }
    comps[start..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_layer_names() {
        let p = parse("model.language_model.layers.12.self_attn.q_proj.weight");
        assert_eq!(p.stack.as_deref(), Some("model.language_model.layers"));
        assert_eq!(p.layer, Some(12));
        assert_eq!(p.suffix, "self_attn.q_proj");
        assert!(p.has_weight);
        assert_eq!(p.leaf, "q_proj");

        let p = parse("h.3.attn.c_attn.weight");
        assert_eq!(
            (p.stack.as_deref(), p.layer, p.suffix.as_str()),
            (Some("h"), Some(3), "attn.c_attn")
        );

        let p = parse("bert.encoder.layer.0.attention.output.dense.bias");
        assert_eq!(p.stack.as_deref(), Some("bert.encoder.layer"));
        assert_eq!(p.suffix, "attention.output.dense.bias");
        assert!(!p.has_weight);
    }

    #[test]
    fn parse_without_layer() {
        let p = parse("model.embed_tokens.weight");
        assert_eq!((p.stack.as_deref(), p.layer), (None, None));
        assert_eq!(p.suffix, "model.embed_tokens");
        assert!(is_embedding(&p));
        // "+1" and "layers.x" are not layer indices; a bare "weight" is a name, not a suffix.
        assert_eq!(parse("layers.+1.w.weight").layer, None);
        assert_eq!(parse("blocks.x.weight").layer, None);
        let p = parse("weight");
        assert_eq!((p.suffix.as_str(), p.has_weight), ("weight", false));
        assert_eq!(parse("").leaf, "");
    }

    #[test]
    fn roles_per_family() {
        assert_eq!(role(Family::Llama, "self_attn.qkv_proj"), None);
        assert_eq!(
            role(Family::Phi3, "self_attn.qkv_proj"),
            Some(Role::Qkv(Fused::Phi3))
        );
        assert_eq!(role(Family::Phi3, "mlp.down_proj"), plain(Proj::Down));
        assert_eq!(role(Family::Gpt2, "mlp.c_proj"), conv1d(Proj::Down));
        assert_eq!(role(Family::Gpt2, "attn.c_proj"), conv1d(Proj::O));
        assert_eq!(role(Family::Bert, "output.dense"), plain(Proj::Down));
        assert_eq!(role(Family::NeoX, "attention.dense"), plain(Proj::O));
        assert_eq!(role(Family::Unknown, "self_attn.q_proj"), None);
    }

    #[test]
    fn moe_roles() {
        let ex = |proj, expert| Some(Role::Expert { proj, expert });
        // Mixtral: w1 = gate, w2 = down, w3 = up; the router is `block_sparse_moe.gate`.
        let mixtral = [
            ("block_sparse_moe.experts.0.w1", ex(Proj::Gate, 0)),
            ("block_sparse_moe.experts.7.w2", ex(Proj::Down, 7)),
            ("block_sparse_moe.experts.12.w3", ex(Proj::Up, 12)),
            ("block_sparse_moe.gate", plain(Proj::Router)),
            ("block_sparse_moe.experts.x.w1", None),
            ("block_sparse_moe.experts.1.w4", None),
        ];
        // Qwen2-MoE / Qwen3-MoE / DeepSeek: `mlp.experts.E.*_proj`, router `mlp.gate`.
        let qwen = [
            ("mlp.experts.3.gate_proj", ex(Proj::Gate, 3)),
            ("mlp.experts.59.up_proj", ex(Proj::Up, 59)),
            ("mlp.experts.0.down_proj", ex(Proj::Down, 0)),
            ("mlp.gate", plain(Proj::Router)),
            ("mlp.gate_proj", plain(Proj::Gate)),
            // Qwen2-MoE's one shared expert and its sigmoid gate.
            ("mlp.shared_expert.gate_proj", plain(Proj::SharedGate)),
            ("mlp.shared_expert.up_proj", plain(Proj::SharedUp)),
            ("mlp.shared_expert.down_proj", plain(Proj::SharedDown)),
            ("mlp.shared_expert_gate", plain(Proj::SharedRouter)),
            // DeepSeek's shared experts (one fused MLP of n_shared_experts · width).
            ("mlp.shared_experts.gate_proj", plain(Proj::SharedGate)),
            ("mlp.shared_experts.down_proj", plain(Proj::SharedDown)),
            ("mlp.shared_experts.w9", None),
            // GGUF `ffn_*_exps` after the name map: one 3-D tensor per projection.
            ("mlp.experts.gate_proj", Some(Role::Experts(Proj::Gate))),
            ("mlp.experts.up_proj", Some(Role::Experts(Proj::Up))),
            ("mlp.experts.down_proj", Some(Role::Experts(Proj::Down))),
        ];
        for (suffix, want) in mixtral.into_iter().chain(qwen) {
            assert_eq!(role(Family::Llama, suffix), want, "{suffix}");
            assert_eq!(role(Family::Phi3, suffix), want, "phi3 {suffix}");
        }
        assert_eq!(role(Family::Gpt2, "mlp.experts.0.gate_proj"), None);
        assert_eq!(Role::Experts(Proj::Up).rank(), 3);
        assert_eq!(ex(Proj::Up, 1).map(Role::rank), Some(2));
    }

    #[test]
    fn buffers_by_name() {
        let kind = |n: &str, rank| buffer_kind(&parse(n), rank);
        assert_eq!(kind("embeddings.position_ids", 2), Some("position ids"));
        assert_eq!(
            kind("model.layers.0.self_attn.rotary_emb.inv_freq", 1),
            Some("rotary frequencies")
        );
        assert_eq!(kind("h.0.attn.bias", 4), Some("an attention mask"));
        assert_eq!(kind("h.0.attn.masked_bias", 0), Some("a masking constant"));
        assert_eq!(
            kind("bn.num_batches_tracked", 0),
            Some("a batch-norm counter")
        );
        assert_eq!(kind("encoder.causal_mask", 2), Some("an attention mask"));
        // Weights and ordinary biases are not buffers.
        assert_eq!(kind("h.0.attn.c_attn.bias", 1), None);
        assert_eq!(kind("model.position_ids.weight", 2), None);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("model.embed_tokens.weight"), "embed_tokens");
        assert_eq!(short_name("lm_head.weight"), "lm_head");
        assert_eq!(
            short_name("bert.embeddings.word_embeddings.weight"),
            "embeddings.word_embeddings"
        );
        assert_eq!(short_name("transformer.wte.weight"), "wte");
        assert_eq!(short_name("model.weight"), "model");
        assert_eq!(short_name("model.language_model.x"), "x");
    }
}
