//! Family detection from config.json and from tensor names.

use std::fmt;

use super::Family;
use super::names::{self, NameParts, Role};
use crate::checkpoint::{Dtype, ModelConfig, TensorInfo};

/// Families with a naming table, in tie-break order (Llama before its superset Phi-3).
pub(crate) const KNOWN: [Family; 5] = [
    Family::Llama,
    Family::Phi3,
    Family::Bert,
    Family::Gpt2,
    Family::NeoX,
];

impl Family {
    /// Short lowercase label: "llama", "bert", "gpt2", "phi3", "neox" or "unknown".
    pub fn label(&self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Bert => "bert",
            Family::Gpt2 => "gpt2",
            Family::Phi3 => "phi3",
            Family::NeoX => "neox",
            Family::Unknown => "unknown",
        }
    }

    /// The family config.json names (`architectures[0]`, else `model_type`), if known.
    pub fn from_config(cfg: &ModelConfig) -> Option<Family> {
        [cfg.architecture.as_deref(), cfg.model_type.as_deref()]
            .into_iter()
            .flatten()
            .find_map(from_label)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

fn from_label(s: &str) -> Option<Family> {
    let s = s.to_ascii_lowercase().replace(['-', '_'], "");
    if s.contains("gptneox") || s.contains("pythia") {
        Some(Family::NeoX)
    } else if s.contains("gpt2") {
        Some(Family::Gpt2)
    } else if s.contains("phi3") {
        Some(Family::Phi3)
    } else if s.contains("bert") || s.contains("minilm") {
        Some(Family::Bert)
    } else if [
        "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "olmo",
    ]
    .iter()
    .any(|k| s.contains(k))
    {
        Some(Family::Llama)
    } else {
        None
    }
}

/// True when a tensor may carry a projection role: 2-D (3-D for stacked experts), decodable,
/// `.weight`, in a layer.
pub(crate) fn is_candidate(t: &TensorInfo, p: &NameParts) -> bool {
    matches!(t.shape.len(), 2 | 3)
        && !matches!(t.dtype, Dtype::Unsupported(_))
        && p.has_weight
        && p.layer.is_some()
}

/// The role of a candidate tensor in `family`, when its name has one and its rank fits it.
pub(crate) fn role_of(family: Family, t: &TensorInfo, p: &NameParts) -> Option<Role> {
    if !is_candidate(t, p) {
        return None;
    }
    names::role(family, &p.suffix).filter(|r| r.rank() == t.shape.len())
}

/// Picks the family whose naming table recognizes the most tensors; config.json breaks ties.
/// Returns the family and a note when config.json names a different family.
pub(crate) fn detect(
    tensors: &[TensorInfo],
    parts: &[NameParts],
    cfg: Option<&ModelConfig>,
) -> (Family, Option<String>) {
    let counts = KNOWN.map(|f| {
        tensors
            .iter()
            .zip(parts)
            .filter(|(t, p)| role_of(f, t, p).is_some())
            .count()
    });
    let from_cfg = cfg.and_then(Family::from_config);
    let best = counts.iter().copied().max().unwrap_or(0);
    if best == 0 {
        let note = from_cfg.map(|f| {
            format!(
                "config.json names a {f} model, but no tensor uses its naming: \
                 every matrix is listed as other"
            )
        });
        return (Family::Unknown, note);
    }
    let count_of = |f: Family| {
        KNOWN
            .iter()
            .position(|k| *k == f)
            .and_then(|i| counts.get(i).copied())
            .unwrap_or(0)
    };
    if let Some(f) = from_cfg
        && count_of(f) == best
    {
        return (f, None);
    }
    let family = KNOWN
        .into_iter()
        .find(|f| count_of(*f) == best)
        .unwrap_or(Family::Unknown);
    let note = from_cfg.map(|f| {
        format!("config.json names a {f} model, but the tensor names follow {family} naming: using {family}")
    });
    (family, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(arch: Option<&str>, model_type: Option<&str>) -> ModelConfig {
        ModelConfig {
            architecture: arch.map(str::to_string),
            model_type: model_type.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn config_labels() {
        let cases = [
            ("LlamaForCausalLM", Family::Llama),
            ("MistralForCausalLM", Family::Llama),
            ("Qwen2ForCausalLM", Family::Llama),
            ("Qwen3ForCausalLM", Family::Llama),
            ("Gemma3ForConditionalGeneration", Family::Llama),
            ("OlmoForCausalLM", Family::Llama),
            ("BertModel", Family::Bert),
            ("GPT2LMHeadModel", Family::Gpt2),
            ("Phi3ForCausalLM", Family::Phi3),
            ("GPTNeoXForCausalLM", Family::NeoX),
        ];
        for (arch, f) in cases {
            assert_eq!(
                Family::from_config(&cfg(Some(arch), None)),
                Some(f),
                "{arch}"
            );
        }
        assert_eq!(
            Family::from_config(&cfg(None, Some("gpt_neox"))),
            Some(Family::NeoX)
        );
        assert_eq!(
            Family::from_config(&cfg(Some("T5Model"), Some("phi3"))),
            Some(Family::Phi3)
        );
        assert_eq!(Family::from_config(&cfg(Some("T5Model"), Some("t5"))), None);
        assert_eq!(Family::Gpt2.to_string(), "gpt2");
    }

    fn t(name: &str, shape: &[usize]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            file: 0,
            bytes: 0..0,
        }
    }

    fn run(ts: &[TensorInfo], c: Option<&ModelConfig>) -> (Family, Option<String>) {
        let parts: Vec<_> = ts.iter().map(|t| names::parse(&t.name)).collect();
        detect(ts, &parts, c)
    }

    #[test]
    fn names_decide_and_config_breaks_ties() {
        let llama = [
            t("model.layers.0.self_attn.q_proj.weight", &[4, 4]),
            t("model.layers.0.self_attn.o_proj.weight", &[4, 4]),
        ];
        assert_eq!(run(&llama, None), (Family::Llama, None));
        // Phi-3 recognizes llama names too: a tie, broken by config.json.
        let phi = cfg(Some("Phi3ForCausalLM"), None);
        assert_eq!(run(&llama, Some(&phi)), (Family::Phi3, None));
        let fused = [
            t("model.layers.0.self_attn.qkv_proj.weight", &[12, 4]),
            t("model.layers.0.self_attn.o_proj.weight", &[4, 4]),
        ];
        assert_eq!(run(&fused, None).0, Family::Phi3);
        let gpt = [t("h.0.attn.c_attn.weight", &[4, 12])];
        let (f, note) = run(&gpt, Some(&cfg(Some("LlamaForCausalLM"), None)));
        assert_eq!(f, Family::Gpt2);
        assert!(note.unwrap().contains("llama"));
        let (f, note) = run(&[t("w", &[3, 3])], Some(&cfg(Some("BertModel"), None)));
        assert_eq!(f, Family::Unknown);
        assert!(note.unwrap().contains("bert"));
        assert_eq!(run(&[], None), (Family::Unknown, None));
    }

    #[test]
    fn unsupported_and_1d_do_not_count() {
        let mut q = t("model.layers.0.self_attn.q_proj.weight", &[4, 4]);
        q.dtype = Dtype::Unsupported("I8".into());
        let b = t("model.layers.0.self_attn.q_proj.bias", &[4]);
        assert_eq!(run(&[q, b], None).0, Family::Unknown);
    }
}
