//! Resolving `ollama:NAME[:TAG]` in Ollama's local model store, offline.
//!
//! Ollama keeps a manifest per model and tag under
//! `manifests/registry.ollama.ai/library/NAME/TAG` (`NAMESPACE/NAME` for other namespaces),
//! whose layer of media type `application/vnd.ollama.image.model` names the GGUF weights by
//! digest, stored as `blobs/sha256-<hex>`.

use std::path::{Component, Path, PathBuf};

use super::CheckpointError;

/// The prefix that names an Ollama model.
pub(crate) const PREFIX: &str = "ollama:";

/// Media type of the weights layer in a manifest.
const MODEL_LAYER: &str = "application/vnd.ollama.image.model";

/// Ollama's store: `$OLLAMA_MODELS`, else `~/.ollama/models`.
pub fn ollama_models_from_env() -> Option<PathBuf> {
    match std::env::var_os("OLLAMA_MODELS").filter(|v| !v.is_empty()) {
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::home_dir().map(|h| h.join(".ollama").join("models")),
    }
}

/// The GGUF blob of `model` (`NAME[:TAG]`, tag `latest` by default) in the store at `root`.
pub(crate) fn resolve(model: &str, root: Option<&Path>) -> Result<PathBuf, CheckpointError> {
    let (name, tag) = model.rsplit_once(':').unwrap_or((model, "latest"));
    let bad = |problem: String| CheckpointError::OllamaModel {
        model: model.to_owned(),
        problem,
    };
    let plain = |s: &str| {
        !s.is_empty()
            && Path::new(s)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
    };
    if !plain(name) || !plain(tag) || tag.contains('/') || name.split('/').count() > 2 {
        return Err(bad(
            "expected ollama:NAME or ollama:NAME:TAG, e.g. ollama:llama3.2:1b".into(),
        ));
    }
    let Some(root) = root else {
        return Err(bad(
            "no Ollama store: set OLLAMA_MODELS (no home directory to find ~/.ollama/models)"
                .into(),
        ));
    };
    let namespaced = if name.contains('/') {
        name.to_owned()
    } else {
        format!("library/{name}")
    };
    let manifest = root
        .join("manifests")
        .join("registry.ollama.ai")
        .join(&namespaced)
        .join(tag);
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        bad(format!(
            "no manifest at {} ({e}); store {} (set OLLAMA_MODELS to use another)",
            manifest.display(),
            root.display()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("manifest {} is not JSON: {e}", manifest.display())))?;
    let digest = value["layers"]
        .as_array()
        .and_then(|layers| {
            layers
                .iter()
                .find(|l| l["mediaType"] == MODEL_LAYER)
                .and_then(|l| l["digest"].as_str())
        })
        .ok_or_else(|| {
            bad(format!(
                "manifest {} has no layer of media type {MODEL_LAYER}",
                manifest.display()
            ))
        })?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            bad(format!(
                "manifest {} names the digest {digest:?}; expected sha256:<hex>",
                manifest.display()
            ))
        })?;
    let blob = root.join("blobs").join(format!("sha256-{hex}"));
    if !blob.is_file() {
        return Err(bad(format!(
            "manifest {} names blob {}, which does not exist",
            manifest.display(),
            blob.display()
        )));
    }
    Ok(blob)
}
