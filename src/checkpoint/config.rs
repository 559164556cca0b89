//! Reading `config.json` into [`ModelConfig`], accepting the common key aliases.

use std::path::Path;

use serde_json::{Map, Value};

use super::{CheckpointError, ModelConfig};

const HIDDEN: &[&str] = &["hidden_size", "n_embd", "d_model", "dim"];
const LAYERS: &[&str] = &["num_hidden_layers", "n_layer", "n_layers", "num_layers"];
const HEADS: &[&str] = &["num_attention_heads", "n_head", "n_heads", "num_heads"];
const KV_HEADS: &[&str] = &[
    "num_key_value_heads",
    "num_kv_heads",
    "n_head_kv",
    "n_kv_heads",
    "multi_query_group_num",
];
const HEAD_DIM: &[&str] = &["head_dim", "kv_channels", "d_kv"];
const INTERMEDIATE: &[&str] = &[
    "intermediate_size",
    "n_inner",
    "ffn_dim",
    "d_ff",
    "ffn_hidden_size",
    "hidden_dim",
];
const VOCAB: &[&str] = &["vocab_size", "padded_vocab_size"];
const INIT: &[&str] = &["initializer_range", "init_std"];
const EXPERTS: &[&str] = &[
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
    "moe_num_experts",
];
const EXPERTS_USED: &[&str] = &["num_experts_per_tok", "moe_top_k"];
const SHARED_EXPERTS: &[&str] = &["n_shared_experts"];

/// Where to look for keys: the top level, then `text_config` (multimodal configs).
struct Scopes<'a> {
    top: &'a Map<String, Value>,
    text: Option<&'a Map<String, Value>>,
}

impl<'a> Scopes<'a> {
    /// The first present, non-null, scalar value among `keys`: every alias at the top level
    /// first, then in `text_config`. Arrays and objects (per-layer settings some families
    /// use) count as absent.
    fn find(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        [Some(self.top), self.text]
            .into_iter()
            .flatten()
            .find_map(|scope| {
                keys.iter().find_map(|&k| match scope.get(k) {
                    Some(v) if !(v.is_null() || v.is_array() || v.is_object()) => Some((k, v)),
                    _ => None,
                })
            })
    }
}

/// Parses the text of `config.json` at `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<ModelConfig, CheckpointError> {
    let bad = |problem: String| CheckpointError::BadConfig {
        path: path.to_path_buf(),
        problem,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Value::Object(top) = &root else {
        return Err(bad("the top level is not a JSON object".into()));
    };
    let s = Scopes {
        top,
        text: top.get("text_config").and_then(Value::as_object),
    };

    let int = |keys: &[&'static str]| -> Result<Option<usize>, CheckpointError> {
        let Some((k, v)) = s.find(keys) else {
            return Ok(None);
        };
        let n = v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53))
                .map(|f| f as u64)
        });
        n.and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("`{k}` is {v}, expected a non-negative integer")))
    };
    let float = |keys: &[&'static str]| -> Result<Option<f64>, CheckpointError> {
        let Some((k, v)) = s.find(keys) else {
            return Ok(None);
        };
        v.as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| bad(format!("`{k}` is {v}, expected a number")))
    };
    let string = |keys: &[&'static str]| -> Result<Option<String>, CheckpointError> {
        let Some((k, v)) = s.find(keys) else {
            return Ok(None);
        };
        v.as_str()
            .map(|x| Some(x.to_owned()))
            .ok_or_else(|| bad(format!("`{k}` is {v}, expected a string")))
    };

    let architecture = match top.get("architectures") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => match a.first() {
            None => None,
            Some(Value::String(x)) => Some(x.clone()),
            Some(v) => return Err(bad(format!("`architectures[0]` is {v}, expected a string"))),
        },
        Some(Value::String(x)) => Some(x.clone()),
        Some(v) => {
            return Err(bad(format!(
                "`architectures` is {v}, expected a list of class names"
            )));
        }
    };

    Ok(ModelConfig {
        architecture,
        model_type: string(&["model_type"])?,
        hidden_size: int(HIDDEN)?,
        num_layers: int(LAYERS)?,
        num_heads: int(HEADS)?,
        num_kv_heads: int(KV_HEADS)?,
        head_dim: int(HEAD_DIM)?,
        intermediate_size: int(INTERMEDIATE)?,
        vocab_size: int(VOCAB)?,
        initializer_range: float(INIT)?,
        num_experts: int(EXPERTS)?,
        experts_used: int(EXPERTS_USED)?,
        shared_experts: int(SHARED_EXPERTS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> ModelConfig {
        parse(Path::new("config.json"), s).unwrap()
    }

    #[test]
    fn llama_keys() {
        let c = cfg(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama",
            "hidden_size":2048,"num_hidden_layers":16,"num_attention_heads":32,
            "num_key_value_heads":8,"head_dim":64,"intermediate_size":8192,
            "vocab_size":128256,"initializer_range":0.02,"rope_scaling":{"factor":32.0}}"#,
        );
        assert_eq!(
            c,
            ModelConfig {
                architecture: Some("LlamaForCausalLM".into()),
                model_type: Some("llama".into()),
                hidden_size: Some(2048),
                num_layers: Some(16),
                num_heads: Some(32),
                num_kv_heads: Some(8),
                head_dim: Some(64),
                intermediate_size: Some(8192),
                vocab_size: Some(128256),
                initializer_range: Some(0.02),
                ..Default::default()
            }
        );
    }

    #[test]
    fn expert_counts() {
        let mixtral = cfg(
            r#"{"architectures":["MixtralForCausalLM"],"num_local_experts":8,
            "num_experts_per_tok":2}"#,
        );
        assert_eq!(
            (mixtral.num_experts, mixtral.experts_used),
            (Some(8), Some(2))
        );
        let qwen = cfg(
            r#"{"architectures":["Qwen2MoeForCausalLM"],"num_experts":60,
            "num_experts_per_tok":4,"shared_expert_intermediate_size":5632}"#,
        );
        assert_eq!((qwen.num_experts, qwen.shared_experts), (Some(60), None));
        let deepseek = cfg(
            r#"{"architectures":["DeepseekV3ForCausalLM"],"n_routed_experts":256,
            "n_shared_experts":1,"num_experts_per_tok":8}"#,
        );
        assert_eq!(
            (
                deepseek.num_experts,
                deepseek.experts_used,
                deepseek.shared_experts
            ),
            (Some(256), Some(8), Some(1))
        );
        let dense = cfg(r#"{"architectures":["LlamaForCausalLM"]}"#);
        assert_eq!(dense.num_experts, None);
    }

    #[test]
    fn gpt2_aliases_and_nulls() {
        let c = cfg(
            r#"{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","n_embd":768,
            "n_layer":12,"n_head":12,"n_inner":null,"vocab_size":50257,"initializer_range":0.02}"#,
        );
        assert_eq!(c.hidden_size, Some(768));
        assert_eq!(c.num_layers, Some(12));
        assert_eq!(c.num_heads, Some(12));
        assert_eq!(c.intermediate_size, None);
        assert_eq!(c.num_kv_heads, None);
    }

    #[test]
    fn text_config_fills_missing_top_level_keys() {
        let c = cfg(
            r#"{"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3",
            "initializer_range":0.01,
            "text_config":{"model_type":"gemma3_text","hidden_size":2560,"num_hidden_layers":34,
            "num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"initializer_range":0.02},
            "vision_config":{"hidden_size":1152}}"#,
        );
        assert_eq!(c.model_type.as_deref(), Some("gemma3"));
        assert_eq!(c.hidden_size, Some(2560));
        assert_eq!(c.num_layers, Some(34));
        assert_eq!(c.num_kv_heads, Some(4));
        assert_eq!(c.head_dim, Some(256));
        assert_eq!(c.initializer_range, Some(0.01));
    }

    #[test]
    fn per_layer_lists_count_as_absent() {
        let c =
            cfg(r#"{"model_type":"openelm","num_kv_heads":[3,3,4],"num_transformer_layers":16}"#);
        assert_eq!(c.num_kv_heads, None);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        let e = parse(Path::new("/m/config.json"), r#"{"hidden_size":"big"}"#).unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with("/m/config.json:") && m.contains("`hidden_size`"),
            "{m}"
        );
        let e = parse(Path::new("/m/config.json"), r#"{"num_attention_heads":-2}"#).unwrap_err();
        assert!(e.to_string().contains("`num_attention_heads`"));
        let e = parse(Path::new("/m/config.json"), "[1]").unwrap_err();
        assert!(e.to_string().contains("not a JSON object"));
        let e = parse(Path::new("/m/config.json"), "{\"a\":").unwrap_err();
        assert!(e.to_string().contains("malformed"));
    }
}
