//! Writing a plan to disk: safetensors shards through the safetensors crate (each tensor's
//! bytes produced lazily when the writer asks for them), the shard index, config.json and
//! truth.json.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::error::SynthError;
use super::layout::Plan;
use super::spec::{SynthFamily, SynthSpec};
use super::truth::Truth;

/// Generator name recorded in truth.json.
const GENERATOR: &str = "mpscope synth v1";

/// A stored tensor whose bytes are generated when the writer reads them.
struct Lazy<'a> {
    plan: &'a Plan,
    idx: usize,
}

impl safetensors::View for Lazy<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.plan.spec.dtype.safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.plan.stored[self.idx].shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.plan.render(self.idx))
    }
    fn data_len(&self) -> usize {
        self.plan.bytes_of(self.idx)
    }
}

/// File names of the weight shards.
pub(crate) fn shard_files(shards: usize) -> Vec<String> {
    if shards <= 1 {
        vec!["model.safetensors".to_string()]
    } else {
        (1..=shards)
            .map(|k| format!("model-{k:05}-of-{shards:05}.safetensors"))
            .collect()
    }
}

/// What was planted, for a plan whose files are named `files`.
pub(crate) fn truth_of(plan: &Plan) -> Truth {
    let spec = &plan.spec;
    Truth {
        generator: GENERATOR.to_string(),
        spec: spec.clone(),
        head_dim: spec.head_dim(),
        intermediate: spec.intermediate(),
        files: shard_files(spec.shards),
        total_size: plan.total_bytes(),
        matrices: plan
            .logicals
            .iter()
            .filter_map(|l| l.truth.clone())
            .collect(),
    }
}

/// Writes every file of the plan into `out_dir` and returns what was planted; `sparse` writes
/// only the headers and leaves the data a hole (all zeros, no disk space).
pub(crate) fn write_plan(out_dir: &Path, plan: &Plan, sparse: bool) -> Result<Truth, SynthError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    let assign = plan.shard_assignment()?;
    let files = shard_files(plan.spec.shards);
    fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    remove_stale(out_dir, &files)?;
    let mut weight_map = BTreeMap::new();
    for (k, file) in files.iter().enumerate() {
        let path = out_dir.join(file);
        let tensors: Vec<(String, Lazy)> = plan
            .stored
            .iter()
            .enumerate()
            .filter(|(i, _)| assign[*i] == k)
            .map(|(idx, st)| {
                weight_map.insert(st.name.clone(), file.clone());
                (st.name.clone(), Lazy { plan, idx })
            })
            .collect();
        if sparse {
            write_sparse(&path, plan, &tensors)?;
            continue;
        }
        // One metadata entry only: the crate keeps it in a HashMap, so more would make the
        // header order (and the file bytes) vary from run to run.
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize_to_file(tensors, Some(meta), &path)
            .map_err(|source| SynthError::Safetensors { path, source })?;
    }
    if files.len() > 1 {
        let index = json!({
            "metadata": { "total_size": plan.total_bytes() },
            "weight_map": weight_map,
        });
        write_json(&out_dir.join("model.safetensors.index.json"), &index)?;
    }
    write_json(&out_dir.join("config.json"), &config_json(&plan.spec))?;
    let truth = truth_of(plan);
    write_json(&out_dir.join("truth.json"), &truth)?;
    Ok(truth)
}

/// A safetensors file of `tensors` whose data is a hole: the header, then the file extended to
/// its full length without writing (a 70B model's shape costs a few kilobytes of disk).
fn write_sparse(path: &Path, plan: &Plan, tensors: &[(String, Lazy)]) -> Result<(), SynthError> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({ "format": "pt" }));
    let mut offset = 0usize;
    let dtype = format!("{:?}", plan.spec.dtype.safetensors());
    for (name, t) in tensors {
        let len = plan.bytes_of(t.idx);
        header.insert(
            name.clone(),
            json!({
                "dtype": dtype,
                "shape": plan.stored[t.idx].shape,
                "data_offsets": [offset, offset + len],
            }),
        );
        offset += len;
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let io = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    fs::write(path, &bytes).map_err(io)?;
    let file = fs::File::options().write(true).open(path).map_err(io)?;
    file.set_len(bytes.len() as u64 + offset as u64).map_err(io)
}

/// Removes weight files of an earlier run that the new one does not overwrite (an old index or
/// shards of another count would otherwise be read together with the new files).
pub(crate) fn remove_stale(dir: &Path, keep: &[String]) -> Result<(), SynthError> {
    let entries = fs::read_dir(dir).map_err(|source| SynthError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == "model.safetensors"
            || name == "model.gguf"
            || name == "model.safetensors.index.json"
            || is_shard_name(&name);
        if ours && !keep.contains(&name) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| SynthError::Io { path, source })?;
        }
    }
    Ok(())
}

/// `model-NNNNN-of-NNNNN.safetensors`.
fn is_shard_name(name: &str) -> bool {
    let Some(mid) = name
        .strip_prefix("model-")
        .and_then(|s| s.strip_suffix(".safetensors"))
    else {
        return false;
    };
    match mid.split_once("-of-") {
        Some((a, b)) => {
            a.len() == 5
                && b.len() == 5
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    fs::write(path, text).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The family's config.json (real key names; head_dim and num_key_value_heads always given).
pub(crate) fn config_json(spec: &SynthSpec) -> Value {
    let (h, l, a, kv, d) = (
        spec.hidden,
        spec.layers,
        spec.heads,
        spec.kv_heads,
        spec.head_dim(),
    );
    let (i, v, p) = (spec.intermediate(), spec.vocab, spec.positions);
    let dtype = spec.dtype.torch_name();
    // Keys every family writes under the same name; the rest are the family's own.
    let mut config = json!({
        "num_key_value_heads": kv,
        "head_dim": d,
        "vocab_size": v,
        "initializer_range": 0.02,
        "torch_dtype": dtype,
    });
    // The Hugging Face names that every family but GPT-2 uses for its shape.
    let hf_shape = json!({
        "hidden_size": h,
        "intermediate_size": i,
        "num_hidden_layers": l,
        "num_attention_heads": a,
        "max_position_embeddings": p,
    });
    let own = match spec.family {
        SynthFamily::Llama => json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "attention_bias": false,
            "tie_word_embeddings": false,
        }),
        SynthFamily::Mixtral => json!({
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "num_local_experts": spec.experts,
            "num_experts_per_tok": spec.experts_used(),
            "router_aux_loss_coef": 0.02,
            "tie_word_embeddings": false,
        }),
        SynthFamily::Phi3 => json!({
            "architectures": ["Phi3ForCausalLM"],
            "model_type": "phi3",
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": false,
        }),
        SynthFamily::Bert => json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "type_vocab_size": 2,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
        }),
        SynthFamily::Gpt2 => json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "n_embd": h,
            "n_layer": l,
            "n_head": a,
            "n_inner": if i == 4 * h { Value::Null } else { json!(i) },
            "n_positions": p,
            "n_ctx": p,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5,
        }),
        SynthFamily::Neox => json!({
            "architectures": ["GPTNeoXForCausalLM"],
            "model_type": "gpt_neox",
            "hidden_act": "gelu",
            "rotary_pct": 0.25,
            "layer_norm_eps": 1e-5,
            "use_parallel_residual": true,
            "tie_word_embeddings": false,
        }),
    };
    let parts = if spec.family == SynthFamily::Gpt2 {
        vec![own]
    } else {
        vec![hf_shape, own]
    };
    if let Value::Object(map) = &mut config {
        for part in parts {
            if let Value::Object(extra) = part {
                map.extend(extra);
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert_eq!(shard_files(1), vec!["model.safetensors"]);
        assert_eq!(shard_files(2)[1], "model-00002-of-00002.safetensors");
        assert!(is_shard_name("model-00001-of-00004.safetensors"));
        assert!(!is_shard_name("model-1-of-4.safetensors"));
        assert!(!is_shard_name("other.safetensors"));
    }
}
