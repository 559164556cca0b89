//! The cache directory as a whole: listing models, clearing them, evicting old entries.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{CacheError, EXT, SOURCE};

/// Temporary files older than this were left by a process that died mid-write.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// One model's part of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    /// Directory name (`<name>-<hash>`).
    pub name: String,
    /// The checkpoint path the entries were computed from (empty if unknown).
    pub source: String,
    /// Number of entries.
    pub entries: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// When an entry was last written or used.
    pub last_used: Option<SystemTime>,
}

/// One entry file.
struct EntryFile {
    path: PathBuf,
    len: u64,
    used: SystemTime,
}

/// Entry files of one model directory (temporary files left by dead writers are removed).
fn entries(dir: &Path) -> io::Result<Vec<EntryFile>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let Ok(md) = e.metadata() else { continue };
        let used = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            if used.elapsed().is_ok_and(|age| age > STALE_TMP) {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if md.is_file() && path.extension().is_some_and(|x| x == EXT) {
            out.push(EntryFile {
                path,
                len: md.len(),
                used,
            });
        }
    }
    Ok(out)
}

/// Model directories of the cache (none when it does not exist yet).
fn model_dirs(root: &Path) -> io::Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut dirs = Vec::new();
    for e in rd {
        let e = e?;
        if e.file_type()?.is_dir() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn usage(dir: &Path) -> io::Result<ModelUsage> {
    let files = entries(dir)?;
    Ok(ModelUsage {
        name: dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        source: fs::read_to_string(dir.join(SOURCE)).unwrap_or_default(),
        entries: files.len(),
        bytes: files.iter().map(|f| f.len).sum(),
        last_used: files.iter().map(|f| f.used).max(),
    })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every model in the cache at `root`, most recently used first.
pub fn list(root: &Path) -> Result<Vec<ModelUsage>, CacheError> {
    let mut out = Vec::new();
    for dir in model_dirs(root).map_err(io_err(root))? {
        out.push(usage(&dir).map_err(io_err(&dir))?);
    }
    out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// Removes the models `which` names (every model when `None`) and returns them. A model is
/// named by its directory name, by its checkpoint's path (as given or canonical), or by a
/// part of either; naming none is an error.
pub fn clear(root: &Path, which: Option<&str>) -> Result<Vec<ModelUsage>, CacheError> {
    let canonical = which
        .and_then(|w| fs::canonicalize(w).ok())
        .map(|p| p.to_string_lossy().into_owned());
    let mut removed = Vec::new();
    for m in list(root)? {
        let hit = match which {
            None => true,
            Some(w) => {
                canonical.as_deref() == Some(m.source.as_str())
                    || m.name.contains(w)
                    || m.source.contains(w)
            }
        };
        if hit {
            let dir = root.join(&m.name);
            fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
            removed.push(m);
        }
    }
    match which {
        Some(w) if removed.is_empty() => Err(CacheError::NoSuchModel(w.to_string())),
        _ => Ok(removed),
    }
}

/// Removes the least recently used entries of the whole cache until it holds at most 90% of
/// `cap` bytes, when it holds more than `cap`; model directories left empty go too. Returns
/// the number of entries removed. Errors (a file another process removed first) are skipped.
pub fn evict(root: &Path, cap: u64) -> usize {
    let Ok(dirs) = model_dirs(root) else { return 0 };
    let mut all: Vec<EntryFile> = dirs
        .iter()
        .filter_map(|d| entries(d).ok())
        .flatten()
        .collect();
    let mut total: u64 = all.iter().map(|f| f.len).sum();
    if total <= cap {
        return 0;
    }
    all.sort_by_key(|f| f.used);
    let target = cap / 10 * 9;
    let mut removed = 0;
    for f in all {
        if total <= target {
            break;
        }
        if fs::remove_file(&f.path).is_ok() {
            removed += 1;
        }
        total = total.saturating_sub(f.len);
    }
    for d in dirs {
        if entries(&d).is_ok_and(|e| e.is_empty()) {
            let _ = fs::remove_dir_all(&d);
        }
    }
    removed
}

/// `mpscope cache`: the cache's models, most recently used first, as aligned text.
pub fn listing(root: &Path, models: &[ModelUsage], cap: u64) -> String {
    use crate::units::bytes;
    use std::fmt::Write as _;
    let total: u64 = models.iter().map(|m| m.bytes).sum();
    let mut out = format!(
        "{} · {} model{} · {} of {} cap\n",
        root.display(),
        models.len(),
        if models.len() == 1 { "" } else { "s" },
        bytes(total),
        bytes(cap)
    );
    if models.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  {:>9}  model",
        "entries", "size", "used"
    );
    for m in models {
        let used = m
            .last_used
            .and_then(|t| t.elapsed().ok())
            .map_or_else(|| "-".into(), age);
        let what = if m.source.is_empty() {
            m.name.clone()
        } else {
            m.source.clone()
        };
        let _ = writeln!(
            out,
            "{:>8}  {:>10}  {:>9}  {what}",
            m.entries,
            bytes(m.bytes),
            used
        );
    }
    out
}

/// An age in one unit: "12 s ago", "5 min ago", "3 h ago", "9 d ago".
fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}
