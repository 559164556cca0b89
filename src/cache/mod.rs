//! The spectrum cache: finished spectra kept on disk by (file identity, tensor, block,
//! precision, engine version), each entry trusted only when its length and checksum are right.
//!
//! The cache stores values, not pictures: a block's singular values, its σ estimates,
//! `vector_p` and its shuffled control's values (what cannot be recomputed from the values),
//! so that everything a view or a score needs is recomputed from them exactly as from a fresh
//! spectrum. It knows nothing of views or math: callers give a [`Key`] (text naming
//! everything the numbers depend on) and get back what they stored.
//!
//! On disk: `DIR/<model>-<hash>/` per checkpoint (named after its path, with a `source` file
//! holding that path), one file per block named by the hash of its key (`<16 hex>.mps`, see
//! [`entry`]). Writes go to a temporary file renamed over the entry, so concurrent processes
//! never see half an entry; a damaged entry reads as a miss and is written again. A cache
//! directory that cannot be written only costs speed: the first failure becomes a one-line
//! [`Cache::warning`] and writing stops. The directory is kept under a size cap by removing
//! the least recently used entries ([`Cache::evict`]).
//!
//! One file per block, measured on the 8B shape (`cargo bench --bench cache`, two busy
//! cores): its 2688 q/k/v/o blocks and heads (5.9 MiB) are read in 31 ms (11 µs an entry) and
//! read, rescored and α-fitted on the worker pool in 150 ms, so a pack file would buy nothing
//! worth its locking. A second `report` of the 1B shape's q/k/v/o takes 0.2% of the first.

pub mod entry;
mod error;
mod store;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use xxhash_rust::xxh3::xxh3_64;

pub use entry::Stored;
pub use error::{CacheError, EntryError};
pub use store::{ModelUsage, clear, list, listing};

use crate::spectrum::{Sigmas, Spectrum};

/// Default size cap: 2 GiB (an 8B model's q/k/v/o spectra with every head take 5.9 MiB).
pub const DEFAULT_CAP: u64 = 2 << 30;

/// Extension of entry files.
const EXT: &str = "mps";

/// Name of the file in a model directory that holds the checkpoint's path.
const SOURCE: &str = "source";

/// An entry is marked used again on a hit only when its last use is older than this (one
/// metadata write per entry per hour at most).
const TOUCH_AFTER: Duration = Duration::from_secs(3600);

/// The cache directory the environment asks for: `MPSCOPE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/mpscope`, else `~/.cache/mpscope`; `None` without any of them.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("MPSCOPE_CACHE_DIR") {
        return Some(dir);
    }
    if let Some(xdg) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join("mpscope"));
    }
    var("HOME").map(|h| h.join(".cache").join("mpscope"))
}

/// A size such as `500M`, `2G`, `1.5GiB` or `1048576` (bytes), binary multiples.
pub fn parse_size(s: &str) -> Result<u64, CacheError> {
    let bad = || CacheError::BadSize(s.to_string());
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let digits = upper.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = upper[digits.len()..]
        .trim_end_matches("IB")
        .trim_end_matches('B');
    let mult: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let n: f64 = digits.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

/// What this build's numbers depend on: the crate version and the identity (size and
/// modification time) of the running executable, so that a rebuilt or upgraded mpscope never
/// reads numbers an older one computed.
pub fn engine_version() -> String {
    let exe = std::env::current_exe()
        .and_then(fs::metadata)
        .ok()
        .map(|md| {
            let t = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!(" exe {:x}-{t:x}", md.len())
        })
        .unwrap_or_default();
    format!("mpscope {}{exe}", env!("CARGO_PKG_VERSION"))
}

/// Everything one block's numbers depend on, as text (the cache adds its engine version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub String);

/// How the cache was used by this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries read back and used.
    pub hits: usize,
    /// Blocks not in the cache (damaged entries included).
    pub misses: usize,
    /// Entries found damaged (truncated, corrupt, another layout), recomputed and rewritten.
    pub damaged: usize,
    /// Entries written.
    pub written: usize,
}

/// A cache directory: where entries are read and written, under a size cap.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    engine: String,
    cap: u64,
    writable: AtomicBool,
    warning: Mutex<Option<String>>,
    prepared: Mutex<HashSet<PathBuf>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
    damaged: AtomicUsize,
    written: AtomicUsize,
    seq: AtomicU64,
}

impl Cache {
    /// The cache in `dir` for numbers of engine `engine`, kept under `cap` bytes. Creates the
    /// directory; when it cannot be written, entries already there are still read and
    /// [`Cache::warning`] says why nothing is kept.
    pub fn open(dir: PathBuf, engine: String, cap: u64) -> Self {
        let cache = Self {
            dir,
            engine,
            cap,
            writable: AtomicBool::new(true),
            warning: Mutex::new(None),
            prepared: Mutex::new(HashSet::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            damaged: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
        };
        let probe = cache.dir.join(format!(".probe.{}", std::process::id()));
        let ok = fs::create_dir_all(&cache.dir)
            .and_then(|()| fs::write(&probe, b"mpscope"))
            .and_then(|()| fs::remove_file(&probe));
        if let Err(e) = ok {
            cache.fail(&e);
        }
        cache
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine version entries are written and read under.
    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// Why nothing is being written, if writing failed (one line, for stderr or a footer).
    pub fn warning(&self) -> Option<String> {
        self.warning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hits, misses, damaged entries and writes so far.
    pub fn stats(&self) -> Stats {
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            damaged: self.damaged.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
        }
    }

    /// The part of the cache holding one checkpoint's entries (`root` as the checkpoint was
    /// opened; resolved to its canonical path once here).
    pub fn model(self: &Arc<Self>, root: &Path) -> ModelCache {
        let source = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let text = source.to_string_lossy();
        let name = format!("{}-{:016x}", slug(&source), xxh3_64(text.as_bytes()));
        ModelCache {
            cache: Arc::clone(self),
            dir: self.dir.join(name),
            source,
        }
    }

    /// Records the first write failure as the warning and stops writing.
    fn fail(&self, e: &io::Error) {
        self.writable.store(false, Ordering::SeqCst);
        let mut w = self.warning.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(format!(
                "cache {} is not writable ({e}); spectra are computed but not kept",
                self.dir.display()
            ));
        }
    }

    /// Removes the least recently used entries until the cache is under its cap (to 90% of
    /// it), when this process wrote anything; returns how many entries went.
    pub fn evict(&self) -> usize {
        if self.written.load(Ordering::Relaxed) == 0 || !self.writable.load(Ordering::SeqCst) {
            return 0;
        }
        store::evict(&self.dir, self.cap)
    }
}

/// One checkpoint's entries in a [`Cache`].
#[derive(Debug, Clone)]
pub struct ModelCache {
    cache: Arc<Cache>,
    dir: PathBuf,
    source: PathBuf,
}

impl ModelCache {
    /// The cache this belongs to.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The part of the same cache holding another checkpoint's entries (see [`Cache::model`]).
    pub fn sibling(&self, root: &Path) -> ModelCache {
        self.cache.model(root)
    }

    /// The full key of an entry: the engine version, then the caller's key.
    fn full_key(&self, key: &Key) -> String {
        format!("engine {}\n{}", self.cache.engine, key.0)
    }

    fn path(&self, full_key: &str) -> PathBuf {
        self.dir
            .join(format!("{:016x}.{EXT}", xxh3_64(full_key.as_bytes())))
    }

    /// True when an entry exists under `key` (not checked for damage, not counted as a hit).
    pub fn contains(&self, key: &Key) -> bool {
        self.path(&self.full_key(key)).is_file()
    }

    /// The spectrum and σ estimates stored under `key`, when a whole, undamaged entry exists.
    pub fn get(&self, key: &Key) -> Option<Stored> {
        let c = &self.cache;
        let full = self.full_key(key);
        let path = self.path(&full);
        let found = fs::File::open(&path).and_then(|mut f| {
            let md = f.metadata()?;
            let mut bytes = Vec::with_capacity(md.len() as usize);
            io::Read::read_to_end(&mut f, &mut bytes)?;
            Ok((f, md, bytes))
        });
        let Ok((file, md, bytes)) = found else {
            c.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        match entry::decode(&bytes, &full) {
            Ok(stored) => {
                c.hits.fetch_add(1, Ordering::Relaxed);
                let now = SystemTime::now();
                let stale = md
                    .modified()
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > TOUCH_AFTER);
                if stale && c.writable.load(Ordering::Relaxed) {
                    // The entry's modification time is its last use (for eviction).
                    let _ = file.set_modified(now);
                }
                Some(stored)
            }
            Err(_) => {
                c.misses.fetch_add(1, Ordering::Relaxed);
                c.damaged.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores `spectrum` and `sigmas` under `key` (through a temporary file renamed over the
    /// entry). Failures only stop the cache from writing, with a warning.
    pub fn put(&self, key: &Key, spectrum: &Spectrum, sigmas: &Sigmas) {
        let c = &self.cache;
        if !c.writable.load(Ordering::Relaxed) {
            return;
        }
        let full = self.full_key(key);
        let bytes = entry::encode(&full, spectrum, sigmas);
        let path = self.path(&full);
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into()),
            std::process::id(),
            c.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || {
            self.prepare()
                .and_then(|()| fs::write(&tmp, &bytes))
                .and_then(|()| fs::rename(&tmp, &path))
        };
        let written = match write() {
            // The model's directory was removed meanwhile (evicted, or `mpscope cache clear`):
            // make it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.cache
                    .prepared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.dir);
                write()
            }
            other => other,
        };
        match written {
            Ok(()) => {
                c.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                c.fail(&e);
            }
        }
    }

    /// Creates the model directory and its `source` file, once per process.
    fn prepare(&self) -> io::Result<()> {
        let mut done = self
            .cache
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if done.contains(&self.dir) {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        let source = self.dir.join(SOURCE);
        if !source.is_file() {
            let tmp = self
                .dir
                .join(format!(".{SOURCE}.{}.tmp", std::process::id()));
            fs::write(&tmp, self.source.to_string_lossy().as_bytes())?;
            fs::rename(&tmp, &source)?;
        }
        done.insert(self.dir.clone());
        Ok(())
    }
}

/// A short readable name for a checkpoint path: `org--name` for a Hugging Face cache
/// snapshot, else the file stem or directory name; only `[A-Za-z0-9._-]`, at most 48 chars.
fn slug(path: &Path) -> String {
    let hf = path.components().rev().find_map(|c| {
        c.as_os_str()
            .to_str()
            .and_then(|s| s.strip_prefix("models--"))
            .map(str::to_string)
    });
    let name = hf.unwrap_or_else(|| {
        let stem = if path.is_dir() {
            path.file_name()
        } else {
            path.file_stem()
        };
        stem.map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
    });
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if clean.is_empty() {
        "model".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("64kb").unwrap(), 64 << 10);
        for bad in ["", "G", "12Q", "-1M", "1..2G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_name_the_model() {
        let hf = Path::new("/h/hub/models--meta-llama--Llama-3.2-1B/snapshots/abc123");
        assert_eq!(slug(hf), "meta-llama--Llama-3.2-1B");
        assert_eq!(slug(Path::new("/x/y/model.safetensors")), "model");
        assert_eq!(slug(Path::new("/x/my model!.gguf")), "my_model_");
    }
}
