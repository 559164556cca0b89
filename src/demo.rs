//! Where the bundled demo checkpoint lives: in the source tree, or regenerated into a cache.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::synth;

/// The demo checkpoint's directory, writing it (deterministically, from the `demo` preset)
/// into the user's cache when the source tree is not at hand (e.g. after `cargo install`).
pub fn locate() -> Result<PathBuf, Error> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    if source.join("model.safetensors").is_file() {
        return Ok(source);
    }
    let cache = cache_dir()
        .ok_or_else(|| Error::Usage("cannot find a cache directory for the demo: set HOME or XDG_CACHE_HOME, or pass a checkpoint path".into()))?
        .join(format!("mpscope/demo-{}", env!("CARGO_PKG_VERSION")));
    if !cache.join("model.safetensors").is_file() {
        let spec = synth::preset("demo")
            .ok_or_else(|| Error::Usage("the demo preset is missing from this build".into()))?;
        synth::write(&cache, &spec)?;
    }
    Ok(cache)
}

fn cache_dir() -> Option<PathBuf> {
    let nonempty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(nonempty)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(nonempty)
                .map(|h| h.join(".cache"))
        })
}
