//! Resolving a Hugging Face repo id in the local hub cache, offline.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::CheckpointError;

/// The hub cache directory the `huggingface_hub` library would use, from the given values of
/// `$HF_HUB_CACHE`, `$HF_HOME`, `$XDG_CACHE_HOME` and the home directory: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
/// Empty values count as unset; a leading `~/` is expanded. `None` when nothing is known.
pub fn hf_cache_root(
    hub_cache: Option<OsString>,
    hf_home: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|s| !s.is_empty());
    let expand = |v: OsString| -> PathBuf {
        let p = PathBuf::from(v);
        match (p.strip_prefix("~"), &home) {
            (Ok(rest), Some(h)) => h.join(rest),
            _ => p,
        }
    };
    if let Some(v) = set(hub_cache) {
        return Some(expand(v));
    }
    if let Some(v) = set(hf_home) {
        return Some(expand(v).join("hub"));
    }
    if let Some(v) = set(xdg_cache_home) {
        return Some(expand(v).join("huggingface").join("hub"));
    }
    home.map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// [`hf_cache_root`] from this process's environment (`HUGGINGFACE_HUB_CACHE` is honoured as
/// the legacy name of `HF_HUB_CACHE`).
pub fn hf_cache_from_env() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|s| !s.is_empty());
    hf_cache_root(
        var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")),
        var("HF_HOME"),
        var("XDG_CACHE_HOME"),
        std::env::home_dir(),
    )
}

/// Whether `spec` has the shape of a hub repo id, `org/name`.
pub fn looks_like_repo_id(spec: &str) -> bool {
    let part = |s: &str| {
        s.len() <= 96
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.contains("..")
    };
    match spec.split_once('/') {
        Some((org, name)) => part(org) && part(name),
        None => false,
    }
}

/// The snapshot directory of cached repo `repo` under hub cache `cache`.
pub(crate) fn resolve(repo: &str, cache: Option<&Path>) -> Result<PathBuf, CheckpointError> {
    let Some(cache) = cache else {
        return Err(CheckpointError::RepoNotCached {
            repo: repo.to_owned(),
            looked: "nowhere: HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and the home directory are \
                     all unset"
                .to_owned(),
        });
    };
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !dir.is_dir() {
        return Err(CheckpointError::RepoNotCached {
            repo: repo.to_owned(),
            looked: dir.display().to_string(),
        });
    }
    let snapshots = dir.join("snapshots");
    let bad = |path: PathBuf, problem: String| CheckpointError::BadSnapshot { path, problem };
    let refs_main = dir.join("refs").join("main");
    match std::fs::read_to_string(&refs_main) {
        Ok(rev) => {
            let rev = rev.trim();
            let plain = !rev.is_empty()
                && rev
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !rev.contains("..");
            if !plain {
                return Err(bad(
                    refs_main,
                    format!("refs/main holds {rev:?}, not a revision"),
                ));
            }
            let snap = snapshots.join(rev);
            if snap.is_dir() {
                Ok(snap)
            } else {
                Err(bad(
                    snap,
                    format!("refs/main points to revision {rev}, but its snapshot is missing"),
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut found = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&snapshots) {
                for entry in rd.flatten() {
                    if entry.path().is_dir() {
                        found.push(entry.path());
                    }
                }
            }
            match found.len() {
                1 => Ok(found.remove(0)),
                0 => Err(bad(dir, "no refs/main and no snapshots".to_owned())),
                n => Err(bad(
                    dir,
                    format!("no refs/main and {n} snapshots, so which one is current is unknown"),
                )),
            }
        }
        Err(source) => Err(CheckpointError::Io {
            path: refs_main,
            action: "read",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn cache_root_precedence() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            hf_cache_root(os("/c"), os("/h"), os("/x"), home.clone()),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            hf_cache_root(None, os("/h"), os("/x"), home.clone()),
            Some(PathBuf::from("/h/hub"))
        );
        assert_eq!(
            hf_cache_root(os(""), os(""), os("/x"), home.clone()),
            Some(PathBuf::from("/x/huggingface/hub"))
        );
        assert_eq!(
            hf_cache_root(None, None, None, home.clone()),
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );
        assert_eq!(
            hf_cache_root(None, os("~/hf"), None, home),
            Some(PathBuf::from("/home/u/hf/hub"))
        );
        assert_eq!(hf_cache_root(None, None, None, None), None);
    }

    #[test]
    fn repo_id_shape() {
        assert!(looks_like_repo_id("meta-llama/Llama-3.2-1B"));
        assert!(looks_like_repo_id("Qwen/Qwen2.5-0.5B_x"));
        assert!(!looks_like_repo_id("gpt2"));
        assert!(!looks_like_repo_id("/abs/path"));
        assert!(!looks_like_repo_id("./a"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("a/.."));
        assert!(!looks_like_repo_id("a/b..c"));
        assert!(!looks_like_repo_id("a/"));
        assert!(!looks_like_repo_id("a b/c"));
    }
}
