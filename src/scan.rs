//! What to compute for a model: the job list (whole matrices and head blocks) and its filters.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::thread::LocalKey;

use faer::{Mat, MatRef, Par};

use crate::anatomy::{Anatomy, Block, MatrixId, Proj};
use crate::cache::{Key, ModelCache};
use crate::checkpoint::{Checkpoint, Dtype, Elem, Selection};
use crate::spectrum::preview::{PREVIEW_MIN, preview_values};
use crate::spectrum::{self, Analysis, AnalyzeOptions, Precision, SigmaMode, Spectrum, init_sigma};

/// A group of projections a user can select (`--proj q,k,v,o,mlp,other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjGroup {
    /// Query.
    Q,
    /// Key.
    K,
    /// Value.
    V,
    /// Attention output.
    O,
    /// Every feed-forward matrix: gate, up and down (dense or routed experts), the MoE
    /// router and the shared experts.
    Mlp,
    /// Routed experts' gate, up and down (`expert` set).
    Experts,
    /// The MoE routers (`router`, `shared_router`).
    Router,
    /// The shared experts' gate, up and down.
    Shared,
    /// Every other 2-D matrix (embeddings only with `--embeddings`).
    Other,
}

impl ProjGroup {
    /// The group a projection belongs to (the widest one: `mlp` for every feed-forward one).
    pub fn of(p: Proj) -> Self {
        match p {
            Proj::Q => Self::Q,
            Proj::K => Self::K,
            Proj::V => Self::V,
            Proj::O => Self::O,
            Proj::Gate
            | Proj::Up
            | Proj::Down
            | Proj::Router
            | Proj::SharedGate
            | Proj::SharedUp
            | Proj::SharedDown
            | Proj::SharedRouter => Self::Mlp,
            Proj::Other(_) => Self::Other,
        }
    }

    /// True when this group selects block `id` (groups overlap: `mlp` holds the other three
    /// feed-forward groups).
    pub fn covers(self, id: &MatrixId) -> bool {
        match self {
            Self::Experts => id.expert.is_some(),
            Self::Router => matches!(id.proj, Proj::Router | Proj::SharedRouter),
            Self::Shared => matches!(
                id.proj,
                Proj::SharedGate | Proj::SharedUp | Proj::SharedDown
            ),
            g => Self::of(id.proj) == g,
        }
    }
}

/// Which projection groups to include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjFilter(pub BTreeSet<ProjGroup>);

impl Default for ProjFilter {
    fn default() -> Self {
        use ProjGroup::*;
        Self([Q, K, V, O, Mlp, Other].into_iter().collect())
    }
}

impl ProjFilter {
    /// True when `p` is selected (as a dense projection: see [`ProjFilter::selects`]).
    pub fn contains(&self, p: Proj) -> bool {
        self.selects(&MatrixId::whole(Some(0), p))
    }

    /// True when some selected group covers block `id` (experts included).
    pub fn selects(&self, id: &MatrixId) -> bool {
        self.0.iter().any(|g| g.covers(id))
    }
}

impl FromStr for ProjFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = match part.to_ascii_lowercase().as_str() {
                "q" | "query" => ProjGroup::Q,
                "k" | "key" => ProjGroup::K,
                "v" | "value" => ProjGroup::V,
                "o" | "out" | "output" => ProjGroup::O,
                "mlp" | "ffn" => ProjGroup::Mlp,
                "experts" | "exps" => ProjGroup::Experts,
                "router" => ProjGroup::Router,
                "shared" => ProjGroup::Shared,
                "moe" => {
                    set.extend([ProjGroup::Experts, ProjGroup::Router, ProjGroup::Shared]);
                    continue;
                }
                "other" => ProjGroup::Other,
                "all" => return Ok(Self::default()),
                _ => {
                    return Err(format!(
                        "unknown projection '{part}': expected a comma list of q, k, v, o, mlp, \
                         experts, router, shared, moe, other"
                    ));
                }
            };
            set.insert(g);
        }
        if set.is_empty() {
            return Err("empty projection list: expected e.g. q,k,v".into());
        }
        Ok(Self(set))
    }
}

/// A set of layers, written like `0-3,10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFilter(pub Vec<(usize, usize)>);

impl LayerFilter {
    /// True when `layer` is in one of the ranges.
    pub fn contains(&self, layer: usize) -> bool {
        self.0.iter().any(|&(a, b)| a <= layer && layer <= b)
    }
}

impl FromStr for LayerFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |part: &str| format!("bad layer range '{part}': expected e.g. 0-3,10");
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let a: usize = a.parse().map_err(|_| bad(part))?;
            let b: usize = b.parse().map_err(|_| bad(part))?;
            if a > b {
                return Err(bad(part));
            }
            ranges.push((a, b));
        }
        if ranges.is_empty() {
            return Err("empty layer list: expected e.g. 0-3,10".into());
        }
        Ok(Self(ranges))
    }
}

/// Which blocks of a model to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Projection groups.
    pub projs: ProjFilter,
    /// Layers (`None` = all); matrices outside the layers are kept only without a filter.
    pub layers: Option<LayerFilter>,
    /// Include head blocks of q, k, v, o.
    pub heads: bool,
    /// Compute the singular-vector test for whole matrices too (heads always get it).
    pub vectors_whole: bool,
    /// Include embedding and LM-head matrices.
    pub embeddings: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            projs: ProjFilter::default(),
            layers: None,
            heads: true,
            vectors_whole: false,
            embeddings: false,
        }
    }
}

/// One block to compute, and whether it needs singular vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The block.
    pub block: Block,
    /// Compute the singular-vector test (`vector_p`).
    pub vectors: bool,
    /// Fan-in of the whole matrix the block comes from (for the `init` σ).
    pub fan_in: usize,
}

/// Rough relative cost of a job: p²·q for a p × q block (p ≤ q), three times that when its
/// singular vectors are tested too.
pub fn cost(job: &Job) -> u128 {
    let (r, c) = (job.block.rows as u128, job.block.cols as u128);
    let (p, q) = (r.min(c), r.max(c));
    p * p * q * if job.vectors { 3 } else { 1 }
}

/// Every job for a model: each selected whole matrix followed by its head blocks.
pub fn plan(an: &Anatomy, opts: &ScanOptions) -> Vec<Job> {
    let mut jobs = Vec::new();
    for whole in &an.matrices {
        if whole.embedding && !opts.embeddings {
            continue;
        }
        let wanted = opts.projs.selects(&whole.id) || (whole.embedding && opts.embeddings);
        if !wanted {
            continue;
        }
        match (&opts.layers, whole.id.layer) {
            (Some(f), Some(l)) if !f.contains(l) => continue,
            (Some(_), None) => continue,
            _ => {}
        }
        let fan_in = whole.cols;
        jobs.push(Job {
            block: whole.clone(),
            vectors: opts.vectors_whole,
            fan_in,
        });
        if opts.heads {
            jobs.extend(an.heads(whole).into_iter().map(|block| Job {
                block,
                vectors: true,
                fan_in,
            }));
        }
    }
    jobs
}

/// How every job is computed (shared by the explorer and the report).
#[derive(Debug, Clone)]
pub struct ComputeOptions {
    /// Accuracy of the singular values.
    pub precision: Precision,
    /// `initializer_range` from config.json, for the `init` σ.
    pub initializer_range: Option<f64>,
    /// Also compute the shuffled control of every block.
    pub randomize: bool,
    /// Where finished spectra are kept and looked up (`None`: always compute).
    pub cache: Option<ModelCache>,
}

/// The seed of a block's shuffled control: a hash of its tensor and block names, so the
/// control is the same on every run and differs between blocks.
pub fn shuffle_seed(block: &Block) -> u64 {
    crate::rng::fnv1a(&format!("{}#{}", block.tensor, block.name))
}

/// Largest block (in entries: 128 MiB as f64) decoded to f64 rather than f32.
const F64_DECODE_MAX: usize = 1 << 24;

/// Largest decoded block a worker thread keeps for the next one, in entries (32 MiB as f64).
const KEEP_DECODED_MAX: usize = 1 << 22;

/// The matrix a worker thread decodes blocks into, kept from one block to the next: a fresh
/// allocation of a few MiB pays a page fault and a zeroing per page (2–6% of a
/// SmolLM2-shaped scan's profile), and the allocator returns freed pages within milliseconds.
struct Decoded<T> {
    m: Mat<T>,
    /// Its reserved capacity is at least `square` × `square`, so that blocks of either
    /// orientation (gate 1536 × 576, down 576 × 1536) reuse it without a reallocation.
    square: usize,
}

impl<T> Decoded<T> {
    const EMPTY: Self = Self {
        m: Mat::new(),
        square: 0,
    };
}

thread_local! {
    static DECODED_F64: RefCell<Decoded<f64>> = const { RefCell::new(Decoded::EMPTY) };
    static DECODED_F32: RefCell<Decoded<f32>> = const { RefCell::new(Decoded::EMPTY) };
}

/// An element type blocks are decoded to, with its thread's kept matrix.
trait Kept: spectrum::Element + Elem {
    /// This thread's kept matrix of this type.
    fn cell() -> &'static LocalKey<RefCell<Decoded<Self>>>;
}

impl Kept for f32 {
    fn cell() -> &'static LocalKey<RefCell<Decoded<Self>>> {
        &DECODED_F32
    }
}

impl Kept for f64 {
    fn cell() -> &'static LocalKey<RefCell<Decoded<Self>>> {
        &DECODED_F64
    }
}

/// This thread's kept decode matrix of type `T`, with room for a rows × cols block in either
/// orientation when that fits [`KEEP_DECODED_MAX`]; an empty one for a bigger block.
fn take_decoded<T: Kept>(rows: usize, cols: usize) -> Decoded<T> {
    if rows * cols > KEEP_DECODED_MAX {
        // Too big to keep: a fresh matrix, and the kept one stays for the next block.
        return Decoded::EMPTY;
    }
    let mut d = T::cell()
        .with(|cell| {
            cell.try_borrow_mut()
                .map(|mut d| std::mem::replace(&mut *d, Decoded::EMPTY))
        })
        .unwrap_or(Decoded::EMPTY);
    let s = rows.max(cols);
    if d.square < s && s * s <= KEEP_DECODED_MAX {
        // Emptied first: reserving then copies nothing.
        d.m = Mat::new();
        d.m.reserve(s, s);
        d.square = s;
    }
    d
}

/// Keeps `d` for this thread's next block unless it holds more than [`KEEP_DECODED_MAX`].
fn keep_decoded<T: Kept>(d: Decoded<T>) {
    if d.m.nrows() * d.m.ncols() <= KEEP_DECODED_MAX {
        T::cell().with(|cell| {
            if let Ok(mut kept) = cell.try_borrow_mut() {
                *kept = d;
            }
        });
    }
}

/// The spectrum of `job`'s block cut by `sel` into this thread's kept `T` matrix (a fresh one
/// beyond [`KEEP_DECODED_MAX`]), viewed transposed when `flip`.
fn compute_kept<T: Kept>(
    ck: &Checkpoint,
    job: &Job,
    sel: &Selection,
    flip: bool,
    analyze: &AnalyzeOptions,
) -> Result<Spectrum, String> {
    let mut d = take_decoded::<T>(job.block.rows, job.block.cols);
    if let Err(e) = ck.decode_into(sel, &mut d.m) {
        keep_decoded(d);
        return Err(e.to_string());
    }
    let m = if flip {
        d.m.as_ref().transpose()
    } else {
        d.m.as_ref()
    };
    let spectrum = Spectrum::compute(m, analyze);
    keep_decoded(d);
    spectrum.map_err(|e| job_error(job, e))
}

/// True when [`compute`] decodes `job`'s block to f64 (always at [`Precision::Precise`], else
/// up to 2²⁴ entries); larger blocks are decoded to f32.
fn decodes_f64(job: &Job, opts: &ComputeOptions) -> bool {
    opts.precision == Precision::Precise || job.block.rows * job.block.cols <= F64_DECODE_MAX
}

/// True when `job`'s block may be decoded straight to f32 and still give the spectrum an f64
/// decode gives: the engine reads its entries as f32 anyway
/// ([`spectrum::reads_entries_as_f32`]), and its dtype's values are all f32 values (every
/// dtype but F64).
fn decodes_f32_exactly(ck: &Checkpoint, job: &Job, opts: &ComputeOptions) -> bool {
    let (rows, cols) = (job.block.rows, job.block.cols);
    !job.vectors
        && spectrum::reads_entries_as_f32(rows, cols, opts.precision)
        && ck
            .tensors()
            .get(job.block.selection.tensor)
            .is_some_and(|t| t.dtype != Dtype::F64)
}

/// The options [`compute`] gives the spectrum engine for `job`.
pub fn analyze_options(job: &Job, opts: &ComputeOptions) -> AnalyzeOptions {
    AnalyzeOptions {
        precision: opts.precision,
        par: Par::Seq,
        vector_p: job.vectors,
        sigma_mode: SigmaMode::Entry,
        initializer_range: opts.initializer_range,
        fan_in: Some(job.fan_in),
        shuffle_seed: opts.randomize.then(|| shuffle_seed(&job.block)),
    }
}

/// Decodes one block from the checkpoint and computes its spectrum.
pub fn compute(ck: &Checkpoint, job: &Job, opts: &ComputeOptions) -> Result<Spectrum, String> {
    let analyze = analyze_options(job, opts);
    // Blocks whose Gram matrix is formed from f32 entries anyway are decoded straight to f32,
    // which it multiplies where they lie. Other blocks up to F64_DECODE_MAX entries are
    // decoded to f64, which the Gram matrix (Fast) and the SVD (Precise) then read with no
    // converted copy; larger ones (embeddings, big MLPs) to f32, half the memory, which Fast
    // converts in chunks.
    let sel = &job.block.selection;
    if decodes_f32_exactly(ck, job, opts) {
        // Decoded transposed, each stored row into a contiguous column (no scatter), and
        // viewed back: the Gram matrix reads either layout.
        let cut = Selection {
            transpose: true,
            ..sel.clone()
        };
        compute_kept::<f32>(ck, job, &cut, !sel.transpose, &analyze)
    } else if decodes_f64(job, opts) {
        compute_kept::<f64>(ck, job, sel, false, &analyze)
    } else {
        compute_kept::<f32>(ck, job, sel, false, &analyze)
    }
}

/// An error of `job`'s computation, prefixed with the tensor and block it concerns.
fn job_error(job: &Job, e: impl std::fmt::Display) -> String {
    format!("{} ({}): {e}", job.block.tensor, job.block.name)
}

/// Computes one block's spectrum and scores it under `mode`, estimating every σ once so that a
/// later mode switch only rescores ([`Analysis::rescored`]). Runs on worker threads.
///
/// With a cache, a block stored under the same [`cache_key`] is read back instead (the same
/// analysis, bit for bit), and a computed one is stored.
pub fn analyze(
    ck: &Checkpoint,
    job: &Job,
    opts: &ComputeOptions,
    mode: SigmaMode,
) -> Result<Analysis, String> {
    analyze_decoded(ck, job, opts, mode, None)
}

/// [`analyze`], given the block already decoded to f64 (`decoded`) when the caller has it: used
/// instead of decoding it again wherever [`compute`] would decode to f64 or exactly to f32, so
/// the numbers are the same.
pub fn analyze_decoded(
    ck: &Checkpoint,
    job: &Job,
    opts: &ComputeOptions,
    mode: SigmaMode,
    decoded: Option<MatRef<'_, f64>>,
) -> Result<Analysis, String> {
    let slot = CacheSlot::of(ck, job, opts);
    if let Some(hit) = slot.as_ref().and_then(|s| s.get(job, opts, mode)) {
        return hit;
    }
    let spectrum = match decoded {
        Some(m) if decodes_f64(job, opts) => {
            Spectrum::compute(m, &analyze_options(job, opts)).map_err(|e| job_error(job, e))?
        }
        _ => compute(ck, job, opts)?,
    };
    let analysis = Analysis::new(spectrum, mode).map_err(|e| job_error(job, e))?;
    if let Some(s) = &slot {
        s.put(&analysis);
    }
    Ok(analysis)
}

/// A display-precision preview of `job`'s block ([`crate::spectrum::preview`]), scored under
/// `mode`, for the explorer to show while the exact values are computed; `None` when the block
/// is too small to need one (its short side is under [`PREVIEW_MIN`]) or its exact values are
/// in the cache. `par` is how many threads it may use. Never stored, never reported.
pub fn preview(
    ck: &Checkpoint,
    job: &Job,
    opts: &ComputeOptions,
    mode: SigmaMode,
    par: Par,
) -> Option<Result<Analysis, String>> {
    let (rows, cols) = (job.block.rows, job.block.cols);
    if rows.min(cols) < PREVIEW_MIN {
        return None;
    }
    if CacheSlot::of(ck, job, opts).is_some_and(|slot| slot.cache.contains(&slot.key)) {
        return None;
    }
    let start = std::time::Instant::now();
    let run = || -> Result<Analysis, String> {
        let m = ck
            .decode_f32(&job.block.selection)
            .map_err(|e| e.to_string())?;
        let values = preview_values(m.as_ref(), par).map_err(|e| job_error(job, e))?;
        let spectrum = Spectrum {
            values,
            rows,
            cols,
            precision: opts.precision,
            vector_p: None,
            init_sigma: init_sigma(job.fan_in, opts.initializer_range),
            shuffled: None,
            compute_time: start.elapsed(),
        };
        Analysis::new(spectrum, mode).map_err(|e| job_error(job, e))
    };
    Some(run())
}

/// Where one job's analysis is kept in the cache: the checkpoint's part of it and the job's
/// [`cache_key`]. Shared by [`analyze`] and the comparison, so that both find each other's
/// entries.
#[derive(Debug, Clone)]
pub struct CacheSlot<'a> {
    /// The checkpoint's part of the cache.
    pub cache: &'a ModelCache,
    /// The job's key.
    pub key: Key,
}

impl<'a> CacheSlot<'a> {
    /// The slot of `job` of `ck`, when `opts` has a cache and the file a stamp.
    pub fn of(ck: &Checkpoint, job: &Job, opts: &'a ComputeOptions) -> Option<Self> {
        let cache = opts.cache.as_ref()?;
        Some(Self {
            cache,
            key: cache_key(ck, job, opts)?,
        })
    }

    /// The stored analysis scored under `mode` (`None` on a miss or a stored block of another
    /// shape). The `init` σ is taken from `opts`: it comes from config.json, which may have
    /// changed beside the weights.
    pub fn get(
        &self,
        job: &Job,
        opts: &ComputeOptions,
        mode: SigmaMode,
    ) -> Option<Result<Analysis, String>> {
        let stored = self.cache.get(&self.key)?;
        if (stored.spectrum.rows, stored.spectrum.cols) != (job.block.rows, job.block.cols) {
            return None;
        }
        let (mut spectrum, mut sigmas) = (stored.spectrum, stored.sigmas);
        let init = init_sigma(job.fan_in, opts.initializer_range);
        (spectrum.init_sigma, sigmas.init) = (init, init);
        Some(Analysis::with_sigmas(spectrum, sigmas, mode).map_err(|e| job_error(job, e)))
    }

    /// Stores `analysis` (its spectrum and σ estimates).
    pub fn put(&self, analysis: &Analysis) {
        self.cache
            .put(&self.key, &analysis.spectrum, &analysis.sigmas);
    }
}

/// What a job's numbers depend on, as a cache key: the stamp of the file holding its tensor
/// (name, size, modification time, header hash), the tensor, the block's rows and columns, the
/// precision, whether `vector_p` and the shuffled control (with its seed) are computed. `None`
/// when the file has no modification time to tell versions apart.
pub fn cache_key(ck: &Checkpoint, job: &Job, opts: &ComputeOptions) -> Option<Key> {
    use std::fmt::Write as _;
    let sel = &job.block.selection;
    let t = ck.tensors().get(sel.tensor)?;
    let (id, header) = ck.file_stamp(t.file)?;
    let mtime = id
        .modified?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let file = ck.files().get(t.file)?.file_name()?.to_string_lossy();
    let mut k = format!(
        "file {file}\nsize {}\nmtime {mtime}\nheader {header:016x}\ntensor {}\nrows",
        id.len, t.name
    );
    for r in &sel.rows {
        let _ = write!(k, " {}..{}", r.start, r.end);
    }
    let _ = write!(
        k,
        "\ncols {}..{}\ntranspose {}\nprecision {:?}\nvectors {}\nshuffle {:?}\n",
        sel.cols.start,
        sel.cols.end,
        sel.transpose,
        opts.precision,
        job.vectors,
        opts.randomize.then(|| shuffle_seed(&job.block)),
    );
    Some(Key(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_reject_nonsense() {
        let f: ProjFilter = "q, k,mlp".parse().unwrap();
        assert!(f.contains(Proj::Q) && f.contains(Proj::Down) && !f.contains(Proj::V));
        assert!("q,z".parse::<ProjFilter>().unwrap_err().contains("'z'"));
        assert!("".parse::<ProjFilter>().is_err());
        let l: LayerFilter = "0-3,10".parse().unwrap();
        assert!(l.contains(0) && l.contains(3) && l.contains(10) && !l.contains(4));
        let expert = MatrixId::whole(Some(1), Proj::Up).with_expert(3);
        let router = MatrixId::whole(Some(1), Proj::Router);
        let shared = MatrixId::whole(Some(1), Proj::SharedDown);
        let dense = MatrixId::whole(Some(1), Proj::Up);
        let sel = |s: &str, id: &MatrixId| s.parse::<ProjFilter>().unwrap().selects(id);
        assert!(sel("mlp", &expert) && sel("mlp", &router) && sel("mlp", &shared));
        assert!(sel("experts", &expert) && !sel("experts", &dense) && !sel("experts", &router));
        assert!(sel("router", &router) && !sel("router", &shared));
        assert!(sel("shared", &shared) && !sel("shared", &expert));
        assert!(sel("moe", &expert) && sel("moe", &router) && !sel("moe", &dense));
        assert!(!sel("q,k,v", &expert));
        for bad in ["3-1", "a", "1-", ""] {
            assert!(bad.parse::<LayerFilter>().is_err(), "{bad}");
        }
    }
}
