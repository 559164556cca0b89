//! The `mpscope` command line: parses arguments and dispatches to the library.

/// mimalloc keeps freed pages for reuse; the system allocator unmaps every block-sized buffer
/// and faults it in again (measured: 512×2048 spectra 20 → 16 ms, 2048² 0.34 → 0.30 s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Args, Parser, Subcommand};
use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::cache::{self, Cache};
use mpscope::checkpoint::Checkpoint;
use mpscope::compare::{self, Sources};
use mpscope::rank::ScoreKind;
use mpscope::report::{self, Format};
use mpscope::saved_report::{self, SavedReport};
use mpscope::scan::{self, ComputeOptions, LayerFilter, ProjFilter, ScanOptions};
use mpscope::shard::{self, ShardArg, ShardRecord, ShardReport, estimate};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::synth::{
    self, CollapseSpec, ColumnScaleSpec, GgufQuant, HeavyTailSpec, SpikeSpec, SynthDtype,
    SynthFamily, SynthSpec, UpdateSpec,
};
use mpscope::tui::{self, theme::Theme};
use mpscope::{Error, compare_report, demo, inspect};

/// Explore where a transformer's weights have left random initialization.
#[derive(Parser, Debug)]
#[command(
    name = "mpscope",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "With no PATH, opens the bundled demo checkpoint."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoint to explore: a .safetensors or .gguf file, a model directory, an HF cache repo id, or ollama:NAME[:TAG]; or a REPORT.json written with `report --values`.
    path: Option<String>,
    /// Compare mode: explore PATH against this base checkpoint, block by block (a LoRA
    /// adapter directory's base defaults to its base_model_name_or_path).
    #[arg(long, value_name = "BASE")]
    base: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// Options that change how spectra are computed.
#[derive(Args, Debug, Clone, Default)]
struct ComputeArgs {
    /// Include embedding and LM-head matrices.
    #[arg(long)]
    embeddings: bool,
    /// f64 throughout (slower; every value >= 1e-3 nu_1 to 1e-6 relative).
    #[arg(long)]
    precise: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// Also compute the shuffled control of every block (entries permuted, seeded): rand_ks,
    /// rand_distance, traps. Doubles the work.
    #[arg(long)]
    randomize: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

impl ComputeArgs {
    fn options(&self, ck: &Checkpoint, cache: Option<&Arc<Cache>>) -> ComputeOptions {
        ComputeOptions {
            precision: if self.precise {
                Precision::Precise
            } else {
                Precision::Fast
            },
            initializer_range: ck.config().and_then(|c| c.initializer_range),
            randomize: self.randomize,
            cache: cache.map(|c| c.model(ck.root())),
        }
    }
}

/// Where finished spectra are kept.
#[derive(Args, Debug, Clone, Default)]
struct CacheArgs {
    /// Spectrum cache directory [default: $MPSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/mpscope,
    /// else ~/.cache/mpscope].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Neither read nor write the spectrum cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Size cap of the cache, least recently used entries removed first [default:
    /// $MPSCOPE_CACHE_MAX, else 2G].
    #[arg(long, value_name = "SIZE")]
    cache_max: Option<String>,
}

impl CacheArgs {
    /// The cache directory asked for, if any.
    fn dir(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(cache::default_dir)
    }

    /// The size cap asked for.
    fn cap(&self) -> Result<u64, Error> {
        let env = std::env::var("MPSCOPE_CACHE_MAX").ok();
        match self.cache_max.as_deref().or(env.as_deref()) {
            Some(s) => cache::parse_size(s).map_err(|e| Error::Usage(e.to_string())),
            None => Ok(cache::DEFAULT_CAP),
        }
    }

    /// The cache to compute through, unless `--no-cache` (or no directory is known); says on
    /// stderr, in one line, when it cannot be written.
    fn open(&self) -> Result<Option<Arc<Cache>>, Error> {
        if self.no_cache {
            return Ok(None);
        }
        let cap = self.cap()?;
        let Some(dir) = self.dir() else {
            return Ok(None);
        };
        let c = Cache::open(dir, cache::engine_version(), cap);
        if let Some(w) = c.warning() {
            eprintln!("mpscope: {w}");
        }
        Ok(Some(Arc::new(c)))
    }
}

/// After a run: keeps the cache under its cap and says what went wrong with it since
/// `warned` (the warning printed when it was opened).
fn close_cache(cache: Option<&Arc<Cache>>, warned: Option<String>) -> cache::Stats {
    let Some(c) = cache else {
        return cache::Stats::default();
    };
    if let Some(w) = c.warning().filter(|w| Some(w) != warned.as_ref()) {
        eprintln!("mpscope: {w}");
    }
    let stats = c.stats();
    if stats.damaged > 0 {
        eprintln!(
            "mpscope: {} damaged cache entries were computed again and rewritten",
            stats.damaged
        );
    }
    c.evict();
    stats
}

/// Says on stderr how many of `total` `what` were read from the cache, when any were.
fn say_hits(cache: Option<&Arc<Cache>>, hits: usize, total: usize, what: &str) {
    if let Some(c) = cache.filter(|_| hits > 0) {
        eprintln!(
            "mpscope: {hits} of {total} {what} read from the cache ({})",
            c.dir().display()
        );
    }
}

/// `mpscope cache`: list or clear.
#[derive(Args, Debug, Clone)]
struct CacheCommandArgs {
    #[command(subcommand)]
    action: Option<CacheAction>,
    /// Spectrum cache directory [default: $MPSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/mpscope,
    /// else ~/.cache/mpscope].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Size cap the listing compares with [default: $MPSCOPE_CACHE_MAX, else 2G].
    #[arg(long, value_name = "SIZE", global = true)]
    cache_max: Option<String>,
}

#[derive(Subcommand, Debug, Clone)]
enum CacheAction {
    /// Remove the cached spectra of MODEL (a path, or part of a name `mpscope cache` lists),
    /// or of every model.
    Clear {
        /// Model to forget (default: all).
        model: Option<String>,
    },
}

/// Options of `mpscope report`.
#[derive(Args, Debug, Clone)]
struct ReportArgs {
    /// Checkpoint: a .safetensors or .gguf file, a model directory, an HF cache repo id, or ollama:NAME[:TAG]; or a PEFT LoRA adapter directory.
    path: String,
    /// Compare PATH against this base checkpoint, block by block (an adapter's base defaults
    /// to its base_model_name_or_path).
    #[arg(long, value_name = "BASE")]
    base: Option<String>,
    /// Output format (default: table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Projection groups: q,k,v,o,mlp,experts,router,shared,moe,other (default all).
    #[arg(long, value_name = "LIST")]
    proj: Option<ProjFilter>,
    /// Layers, e.g. 0-3,10 (default all).
    #[arg(long, value_name = "RANGES")]
    layers: Option<LayerFilter>,
    /// Include head blocks of q, k, v, o (the default).
    #[arg(long, overrides_with = "no_heads")]
    heads: bool,
    /// Whole matrices only.
    #[arg(long, overrides_with = "heads")]
    no_heads: bool,
    /// Sigma mode of the MP law and the scores.
    #[arg(long, value_enum, default_value_t = SigmaArg::Entry)]
    sigma: SigmaArg,
    /// Compute vector_p for whole matrices too (heads always get it).
    #[arg(long)]
    vectors: bool,
    /// Include the singular values in JSON.
    #[arg(long)]
    values: bool,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Only the N strangest blocks by --score, strangest first (the explorer's ranked view).
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Score that --top ranks by: ks, alpha, vector_p, edge_ratio, above, below, outlier_mass.
    #[arg(long, value_enum, default_value_t = ScoreKind::Ks, value_name = "SCORE")]
    score: ScoreKind,
    /// Compute one cost-balanced share of the plan: i/N (0-based), or `auto` from a Slurm
    /// array or a Kubernetes Indexed Job. Writes a shard report (JSON) for `mpscope merge`.
    #[arg(long, value_name = "i/N|auto")]
    shard: Option<ShardArg>,
    /// Number of shards: N for `--shard auto` in a Kubernetes Indexed Job; with --plan, the
    /// shard count to estimate.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    shards: Option<u64>,
    /// Print the jobs, FLOPs and estimated time per projection group (and for N shards)
    /// without computing; a sub-second benchmark calibrates it.
    #[arg(long, conflicts_with = "shard")]
    plan: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compute: ComputeArgs,
}

impl ReportArgs {
    /// Which blocks the report computes.
    fn scan(&self) -> ScanOptions {
        ScanOptions {
            projs: self.proj.clone().unwrap_or_default(),
            layers: self.layers.clone(),
            heads: !self.no_heads,
            vectors_whole: self.vectors,
            embeddings: self.compute.embeddings,
        }
    }
}

/// File formats `mpscope synth` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SynthFormat {
    /// safetensors shards, config.json and truth.json.
    Safetensors,
    /// One GGUF v3 file, model.gguf, and truth.json.
    Gguf,
}

/// Sigma mode names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SigmaArg {
    /// RMS of the entries.
    Entry,
    /// Fitted to the bulk.
    Fit,
    /// From the initialization (config initializer_range, else nn.Linear's default).
    Init,
}

impl From<SigmaArg> for SigmaMode {
    fn from(s: SigmaArg) -> Self {
        match s {
            SigmaArg::Entry => SigmaMode::Entry,
            SigmaArg::Fit => SigmaMode::Fit,
            SigmaArg::Init => SigmaMode::Init,
        }
    }
}

/// Options every command that opens a model takes.
#[derive(Args, Debug, Clone, Default)]
struct ModelArgs {
    /// Attention heads (overrides config.json).
    #[arg(long, value_name = "N")]
    num_heads: Option<usize>,
    /// Key/value heads for GQA (overrides config.json).
    #[arg(long, value_name = "N")]
    num_kv_heads: Option<usize>,
    /// Head dimension (overrides config.json).
    #[arg(long, value_name = "N")]
    head_dim: Option<usize>,
    /// Draw with ASCII characters only.
    #[arg(long)]
    ascii: bool,
}

impl ModelArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            num_heads: self.num_heads,
            num_kv_heads: self.num_kv_heads,
            head_dim: self.head_dim,
        }
    }
}

/// Options of `mpscope synth`; each flag overrides the preset (or the plain defaults).
#[derive(Args, Debug, Clone)]
struct SynthArgs {
    /// Directory to write into (created if missing).
    out: PathBuf,
    /// Start from a preset: llama-3.2-1b, llama-3.1-8b or demo.
    #[arg(long)]
    preset: Option<String>,
    /// Naming and layout: llama, bert, gpt2, phi3, neox, mixtral (Mixture of Experts).
    #[arg(long)]
    family: Option<SynthFamily>,
    /// Routed experts per layer (mixtral; default 4).
    #[arg(long, value_name = "N")]
    experts: Option<usize>,
    /// Transformer layers.
    #[arg(long)]
    layers: Option<usize>,
    /// Hidden size.
    #[arg(long)]
    hidden: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    heads: Option<usize>,
    /// Key/value heads (GQA; llama and phi3 only).
    #[arg(long)]
    kv_heads: Option<usize>,
    /// Head dimension (default hidden / heads).
    #[arg(long, value_name = "N")]
    head_dim: Option<usize>,
    /// MLP width.
    #[arg(long)]
    intermediate: Option<usize>,
    /// Vocabulary size.
    #[arg(long)]
    vocab: Option<usize>,
    /// Stored dtype: bf16, f16, f32.
    #[arg(long)]
    dtype: Option<SynthDtype>,
    /// Number of safetensors shards.
    #[arg(long)]
    shards: Option<usize>,
    /// File format: safetensors (default) or gguf (one model.gguf; llama, phi3, mixtral).
    #[arg(long, value_enum, default_value_t = SynthFormat::Safetensors)]
    format: SynthFormat,
    /// Write only the headers: the weights are a hole (zeros, no disk space), enough for
    /// `inspect` and `report --plan` of a shape too large to generate (safetensors only).
    #[arg(long, conflicts_with = "format")]
    sparse: bool,
    /// GGUF storage of the matrices: q8_0, q4_0, q4_1, q5_0, q5_1 or f16 (vectors stay f32).
    #[arg(long, default_value = "q8_0", value_name = "TYPE")]
    quant: GgufQuant,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Planted rank-one spikes, e.g. `q:3`, `L0.q:5x4`, `L2.k.h3:1` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    spikes: Vec<SpikeSpec>,
    /// Heavy-tailed bulk, e.g. `q,k` or `L0-3.q:t3` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    heavy_tail: Vec<HeavyTailSpec>,
    /// Collapsed blocks (low rank plus small noise), e.g. `L1.q.h2:8@0.05`.
    #[arg(long, value_delimiter = ',')]
    collapse: Vec<CollapseSpec>,
    /// Outlier input features (log-normal column scales), e.g. `q`, `L0-1.k:1.5`, `L2.q.h3:0.5`.
    #[arg(long, value_delimiter = ',')]
    column_scale: Vec<ColumnScaleSpec>,
    /// Write a fine-tuned copy of BASE instead: every tensor byte-identical except the
    /// --update blocks (with --dtype: every tensor cast to it).
    #[arg(long, value_name = "BASE", conflicts_with_all = ["preset", "lora_of", "format"])]
    finetune_of: Option<String>,
    /// Low-rank updates of the fine-tuned copy: `L1.q.h3:2@0.5` = rank 2, singular values
    /// 0.5 × the block's largest (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "finetune_of")]
    update: Vec<UpdateSpec>,
    /// Write a PEFT LoRA adapter on BASE instead (adapter_config.json naming BASE,
    /// adapter_model.safetensors).
    #[arg(long, value_name = "BASE", conflicts_with_all = ["preset", "format"])]
    lora_of: Option<String>,
    /// LoRA rank r.
    #[arg(long, default_value_t = 8, requires = "lora_of")]
    rank: usize,
    /// LoRA alpha (default 2r).
    #[arg(long, requires = "lora_of")]
    alpha: Option<f64>,
    /// Projections the adapter targets in every layer.
    #[arg(
        long,
        default_value = "q,v",
        value_delimiter = ',',
        requires = "lora_of"
    )]
    targets: Vec<Proj>,
    /// Leave B at zero in this layer (an adapter that learned nothing there).
    #[arg(long, value_name = "LAYER", requires = "lora_of")]
    zero_b: Option<usize>,
}

impl SynthArgs {
    fn spec(&self) -> Result<SynthSpec, Error> {
        let mut spec = match &self.preset {
            Some(name) => synth::preset(name).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown preset '{name}': expected one of {}",
                    synth::PRESETS.join(", ")
                ))
            })?,
            None => SynthSpec::new(
                self.family.unwrap_or(SynthFamily::Llama),
                self.layers.unwrap_or(4),
                self.hidden.unwrap_or(256),
                self.heads.unwrap_or(4),
            ),
        };
        if let Some(f) = self.family {
            spec.family = f;
            if f.is_moe() && spec.experts == 0 {
                spec.experts = synth::DEFAULT_EXPERTS;
            }
        }
        if let Some(v) = self.experts {
            spec.experts = v;
        }
        if let Some(v) = self.layers {
            spec.layers = v;
        }
        if let Some(v) = self.hidden {
            spec.hidden = v;
        }
        if let Some(v) = self.heads {
            spec.heads = v;
            if self.kv_heads.is_none() && self.preset.is_none() {
                spec.kv_heads = v;
            }
        }
        if let Some(v) = self.kv_heads {
            spec.kv_heads = v;
        }
        if self.head_dim.is_some() {
            spec.head_dim = self.head_dim;
        }
        if self.intermediate.is_some() {
            spec.intermediate = self.intermediate;
        }
        if let Some(v) = self.vocab {
            spec.vocab = v;
        }
        if let Some(v) = self.dtype {
            spec.dtype = v;
        }
        if let Some(v) = self.shards {
            spec.shards = v;
        }
        if let Some(v) = self.seed {
            spec.seed = v;
        }
        spec.spikes.extend(self.spikes.iter().cloned());
        spec.heavy_tail.extend(self.heavy_tail.iter().cloned());
        spec.collapse.extend(self.collapse.iter().cloned());
        spec.column_scale.extend(self.column_scale.iter().cloned());
        Ok(spec)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute every spectrum and print the scores (table, CSV or JSON) for scripts.
    Report(Box<ReportArgs>),
    /// Write a deterministic synthetic checkpoint (Kaiming-uniform, optional planted structure).
    Synth(Box<SynthArgs>),
    /// Merge shard reports (`report --shard`) into the report one run writes, after checking
    /// that they cover one plan of one model exactly once.
    Merge {
        /// Shard reports (JSON), in any order.
        #[arg(required = true, value_name = "PART.json")]
        parts: Vec<PathBuf>,
        /// Write to FILE instead of standard output.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Output format: json (default) or csv.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// List the spectrum cache by model, with sizes; `cache clear [MODEL]` empties it.
    Cache(Box<CacheCommandArgs>),
    /// Print the model summary and its layers × projections table (reads headers only).
    Inspect {
        /// Checkpoint: a .safetensors or .gguf file, a model directory, an HF cache repo id, or ollama:NAME[:TAG].
        path: String,
        /// Also list every tensor with dtype, shape and bytes.
        #[arg(long)]
        tensors: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
}

fn open(path: &str, model: &ModelArgs) -> Result<(Checkpoint, Anatomy), Error> {
    let ck = Checkpoint::open(path)?;
    let an = Anatomy::from_checkpoint(&ck, &model.overrides())?;
    Ok((ck, an))
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Some(Command::Inspect {
            path,
            tensors,
            model,
        }) => {
            let (ck, an) = open(&path, &model)?;
            print!("{}", inspect::summary(&ck, &an, model.ascii));
            if tensors {
                println!();
                print!("{}", inspect::tensor_list(&ck, model.ascii));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Synth(args)) if args.finetune_of.is_some() || args.lora_of.is_some() => {
            synth_derived(&args)
        }
        Some(Command::Synth(args)) => {
            let spec = args.spec()?;
            let started = std::time::Instant::now();
            // What was planted is in OUT/truth.json; the summary line is enough here.
            let stored = match args.format {
                SynthFormat::Safetensors if args.sparse => {
                    synth::write_sparse(&args.out, &spec)?;
                    let size = synth::total_size(&spec).unwrap_or(0);
                    format!("{} as a hole, headers only", mpscope::units::bytes(size))
                }
                SynthFormat::Safetensors => {
                    synth::write(&args.out, &spec)?;
                    let size = synth::total_size(&spec).unwrap_or(0);
                    let s = if spec.shards == 1 { "" } else { "s" };
                    format!("{}, {} shard{s}", mpscope::units::bytes(size), spec.shards)
                }
                SynthFormat::Gguf => {
                    synth::write_gguf(&args.out, &spec, args.quant)?;
                    format!("model.gguf, {}", args.quant)
                }
            };
            let experts = match spec.experts {
                0 => String::new(),
                n => format!(", {n} experts"),
            };
            eprintln!(
                "wrote {} ({} {} layers, hidden {}, {} heads / {} kv{experts}, {stored}) in {:.1}s",
                args.out.display(),
                spec.family.as_str(),
                spec.layers,
                spec.hidden,
                spec.heads,
                spec.kv_heads,
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Report(args)) => report(&args),
        Some(Command::Merge {
            parts,
            output,
            format,
        }) => {
            let merged = shard::merge::merge(&parts)?;
            let failed = merged.matrices.iter().filter(|m| m.error.is_some()).count();
            let summary = format!(
                "merged {} shard reports of {}: {} blocks, {failed} failed",
                parts.len(),
                merged.model.path,
                merged.matrices.len(),
            );
            let text = match format {
                Format::Json => format!("{}\n", merged.to_json()),
                Format::Csv => report::records_to_csv(merged.matrices),
                Format::Table => {
                    return Err(Error::Usage(
                        "merge writes json or csv (the table needs the spectra themselves; \
                         try `--format csv`)"
                            .into(),
                    ));
                }
            };
            emit(output.as_deref(), &text)?;
            if let Some(path) = &output {
                eprintln!("mpscope: {summary} -> {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Cache(args)) => cache_command(&args),
        None => explore(cli.path, cli.base, &cli.model, &cli.compute),
    }
}

fn cache_command(args: &CacheCommandArgs) -> Result<ExitCode, Error> {
    let cache = CacheArgs {
        cache_dir: args.cache_dir.clone(),
        no_cache: false,
        cache_max: args.cache_max.clone(),
    };
    let dir = cache.dir().ok_or_else(|| {
        Error::Usage("no cache directory: set --cache-dir, MPSCOPE_CACHE_DIR or HOME".into())
    })?;
    match &args.action {
        None => {
            let models = cache::list(&dir)?;
            print!("{}", cache::listing(&dir, &models, cache.cap()?));
        }
        Some(CacheAction::Clear { model }) => {
            let removed = cache::clear(&dir, model.as_deref())?;
            let entries: usize = removed.iter().map(|m| m.entries).sum();
            let bytes: u64 = removed.iter().map(|m| m.bytes).sum();
            println!(
                "removed {} model{} ({entries} entries, {}) from {}",
                removed.len(),
                if removed.len() == 1 { "" } else { "s" },
                mpscope::units::bytes(bytes),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `synth OUT --finetune-of BASE` or `synth OUT --lora-of BASE`.
fn synth_derived(args: &SynthArgs) -> Result<ExitCode, Error> {
    let started = std::time::Instant::now();
    let seed = args.seed.unwrap_or(0);
    let (base, what) = if let Some(base) = &args.finetune_of {
        let t = synth::write_finetune(&args.out, base, &args.update, args.dtype, seed)?;
        let cast = t.cast.map(|c| format!(", cast to {c}")).unwrap_or_default();
        (
            base,
            format!("fine-tuned copy, {} updates{cast}", t.updates.len()),
        )
    } else if let Some(base) = &args.lora_of {
        let spec = synth::LoraSpec {
            rank: args.rank,
            alpha: args.alpha.unwrap_or(2.0 * args.rank as f64),
            targets: args.targets.clone(),
            zero_b: args.zero_b,
            seed,
        };
        let t = synth::write_lora(&args.out, base, &spec)?;
        let n = t.lora.map_or(0, |l| l.modules.len());
        (
            base,
            format!("LoRA adapter, rank {}, {n} modules", args.rank),
        )
    } else {
        return Err(Error::Usage("--finetune-of or --lora-of is needed".into()));
    };
    eprintln!(
        "wrote {} ({what} of {base}) in {:.1}s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, SIGTERM and SIGQUIT stop a report and write what finished (`"complete": false`):
/// the flag holds the signal caught, 0 until then.
fn stop_signals() -> Result<Arc<AtomicUsize>, Error> {
    let signal = Arc::new(AtomicUsize::new(0));
    for &sig in signal_hook::consts::TERM_SIGNALS {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize).map_err(
            |source| Error::Io {
                path: PathBuf::from("<signal handler>"),
                source,
            },
        )?;
    }
    Ok(signal)
}

/// The report's format: as asked, else a table on a terminal and JSON otherwise.
fn report_format(args: &ReportArgs) -> Format {
    args.format.unwrap_or(
        if args.output.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        },
    )
}

/// `mpscope report OTHER --base BASE` (or an adapter directory): the comparison.
fn compare_report(args: &ReportArgs) -> Result<ExitCode, Error> {
    if args.shard.is_some() || args.shards.is_some() || args.plan {
        return Err(Error::Usage(
            "--shard, --shards and --plan split one model's report; they do not go with --base \
             or an adapter"
                .into(),
        ));
    }
    if args.top.is_some() {
        return Err(Error::Usage(
            "--top ranks one model's blocks; with --base or an adapter, sort the JSON or CSV by \
             delta_rel instead"
                .into(),
        ));
    }
    let signal = stop_signals()?;
    let sources = Sources::open(&args.path, args.base.as_deref(), &args.model.overrides())?;
    let mode: SigmaMode = args.sigma.into();
    let scan = args.scan();
    let pairing = sources.pair(&scan)?;
    let cache = args.compute.cache.open()?;
    let warned = cache.as_ref().and_then(|c| c.warning());
    let compute = args.compute.options(&sources.base, cache.as_ref());
    let sources = Arc::new(sources);
    let results = compare_report::run_until(
        Arc::clone(&sources),
        pairing,
        compute,
        mode,
        args.compute.threads,
        mpscope::progress::stderr_bar(),
        &|| signal.load(Ordering::SeqCst) != 0,
    )
    .map_err(Error::Worker)?;
    let width = report::table_width(args.output.is_none() && std::io::stdout().is_terminal());
    let text = match report_format(args) {
        Format::Table => compare_report::to_table(&sources, &results, width),
        Format::Csv => compare_report::to_csv(&results),
        Format::Json => compare_report::to_json(&sources, mode, &results, args.values) + "\n",
    };
    emit(args.output.as_deref(), &text)?;
    let stats = close_cache(cache.as_ref(), warned);
    say_hits(
        cache.as_ref(),
        stats.hits,
        stats.hits + stats.misses,
        "spectra (base and other)",
    );
    let caught = signal.load(Ordering::SeqCst);
    if caught != 0 {
        eprintln!("mpscope: interrupted; the report holds the pairs that finished");
        return Ok(ExitCode::from(128 + caught as u8));
    }
    let failed = results.failed();
    if failed > 0 {
        eprintln!(
            "mpscope: {failed} of {} pairs failed (their `error` says why); the others are \
             reported",
            results.entries.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ReportArgs) -> Result<ExitCode, Error> {
    if args.base.is_some() || compare::is_adapter_dir(std::path::Path::new(&args.path)) {
        return compare_report(args);
    }
    let signal = stop_signals()?;
    let (ck, an) = open(&args.path, &args.model)?;
    let mode: SigmaMode = args.sigma.into();
    let scan = args.scan();
    let jobs = scan::plan(&an, &scan);
    let cache = args.compute.cache.open()?;
    let warned = cache.as_ref().and_then(|c| c.warning());
    let compute = args.compute.options(&ck, cache.as_ref());
    let model = report::ModelRecord::new(&args.path, &ck, &an);
    let shards = args.shards.map(|n| n as usize);
    if args.plan {
        return plan(args, &model, &jobs, &compute, shards);
    }
    let (jobs, shard) = match args.shard {
        Some(arg) => {
            let (jobs, record) = shard_of(args, &ck, jobs, &compute, mode, arg, shards)?;
            (jobs, Some(record))
        }
        None if shards.is_some() => {
            return Err(Error::Usage(
                "--shards goes with --shard auto or --plan".into(),
            ));
        }
        None => (jobs, None),
    };
    let ck = Arc::new(ck);
    let results = report::run_until(
        Arc::clone(&ck),
        jobs,
        compute,
        mode,
        args.compute.threads,
        mpscope::progress::stderr_bar(),
        &|| signal.load(Ordering::SeqCst) != 0,
    )
    .map_err(Error::Worker)?;
    let format = report_format(args);
    let ranked;
    let shown = match args.top {
        Some(n) => {
            ranked = report::top(&results, args.score, n);
            &ranked
        }
        None => &results,
    };
    let ranked_by = args.top.map(|_| args.score);
    let width = report::table_width(args.output.is_none() && std::io::stdout().is_terminal());
    let text = match format {
        _ if let Some(record) = &shard => {
            let doc = report::json_report(model, mode, shown, args.values, None);
            ShardReport {
                report: &doc,
                shard: record,
            }
            .to_json()
        }
        Format::Table if let Some(n) = args.top => {
            report::to_ranked_table(&model, mode, &results, args.score, n, width)
        }
        Format::Table => report::to_table(&model, mode, shown, width),
        Format::Csv => report::to_csv(shown),
        Format::Json => {
            let mut j = report::to_json(model, mode, shown, args.values, ranked_by);
            j.push('\n');
            j
        }
    };
    emit(args.output.as_deref(), &text)?;
    let failed = results.failed();
    let stats = close_cache(cache.as_ref(), warned);
    say_hits(cache.as_ref(), stats.hits, results.entries.len(), "blocks");
    if let Some(change) = ck.changed() {
        eprintln!("mpscope: {change}");
    }
    let caught = signal.load(Ordering::SeqCst);
    if caught != 0 {
        let done = results.entries.iter().filter(|e| e.result.is_ok()).count();
        eprintln!(
            "mpscope: interrupted; the report holds the {done} of {} blocks that finished",
            results.entries.len()
        );
        return Ok(ExitCode::from(128 + caught as u8));
    }
    if failed > 0 {
        eprintln!(
            "mpscope: {failed} of {} blocks failed (their `error` says why); the others are \
             reported",
            results.entries.len()
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes `text` to `output` (through a file renamed into place) or to standard output (a
/// closed pipe is not an error).
fn emit(output: Option<&std::path::Path>, text: &str) -> Result<(), Error> {
    match output {
        Some(path) => report::write_beside(path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
                    path: PathBuf::from("<stdout>"),
                    source: e,
                }),
                _ => Ok(()),
            }
        }
    }
}

/// `report --shard`: this process's share of the plan's jobs and the record that lets
/// `merge` check it.
fn shard_of(
    args: &ReportArgs,
    ck: &Checkpoint,
    jobs: Vec<scan::Job>,
    compute: &ComputeOptions,
    mode: SigmaMode,
    arg: ShardArg,
    shards: Option<usize>,
) -> Result<(Vec<scan::Job>, ShardRecord), Error> {
    if args.top.is_some() {
        return Err(Error::Usage(
            "--top ranks the whole model: rank the merged report instead of a shard".into(),
        ));
    }
    if args.format.is_some_and(|f| f != Format::Json) {
        return Err(Error::Usage(
            "a shard report is JSON (for `mpscope merge`); merge writes csv too".into(),
        ));
    }
    let spec = shard::resolve(arg, shards, |k| std::env::var(k).ok())?;
    let scan = args.scan();
    let model_id = shard::model_identity(ck)?;
    let options = shard::options_label(&scan, compute, mode, args.values);
    let plan_id = shard::plan_identity(&model_id, &jobs, &options);
    let mine = shard::share(&jobs, compute, spec);
    let record = ShardRecord {
        index: spec.index,
        count: spec.count,
        model_id,
        plan_id,
        options,
        plan_jobs: jobs.len(),
        jobs: mine.clone(),
    };
    let jobs = mine.into_iter().map(|j| jobs[j].clone()).collect();
    Ok((jobs, record))
}

/// `report --plan`: the cost of the plan on this machine, without computing it.
fn plan(
    args: &ReportArgs,
    model: &report::ModelRecord,
    jobs: &[scan::Job],
    compute: &ComputeOptions,
    shards: Option<usize>,
) -> Result<ExitCode, Error> {
    let rates = estimate::calibrate(compute).map_err(Error::Usage)?;
    let threads = match args.compute.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let ladder: Vec<usize> = match shards {
        Some(n) => vec![1, n],
        None => estimate::SHARD_LADDER.to_vec(),
    };
    let title = format!(
        "{} · {} · {} layers · {} jobs · {} precision",
        model.path,
        model.family,
        model.layers,
        jobs.len(),
        format!("{:?}", compute.precision).to_lowercase()
    );
    let text = estimate::render(&title, jobs, compute, &rates, threads, &ladder);
    emit(args.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

fn explore(
    path: Option<String>,
    base: Option<String>,
    model: &ModelArgs,
    compute: &ComputeArgs,
) -> Result<ExitCode, Error> {
    if let Some(p) = &path
        && (base.is_some() || compare::is_adapter_dir(std::path::Path::new(p)))
    {
        return explore_compare(p, base.as_deref(), model, compute);
    }
    if base.is_some() {
        return Err(Error::Usage(
            "--base needs the model to compare with it: mpscope OTHER --base BASE".into(),
        ));
    }
    let (spec, title) = match path {
        Some(p) => (p.clone(), p),
        None => {
            let dir = demo::locate()?;
            (dir.to_string_lossy().into_owned(), "demo".to_string())
        }
    };
    if saved_report::is_report_path(std::path::Path::new(&spec)) {
        return explore_report(&spec, model, compute);
    }
    let cache = compute.cache.open()?;
    let warned = cache.as_ref().and_then(|c| c.warning());
    let first = explorer_model(&spec, model, compute, cache.as_ref())?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "the explorer needs a terminal; for scripts use `mpscope report PATH`".into(),
        ));
    }
    let theme = Theme::from_env(model.ascii);
    let reopen = |randomize: bool| {
        let compute = ComputeArgs {
            randomize: compute.randomize || randomize,
            ..compute.clone()
        };
        explorer_model(&spec, model, &compute, cache.as_ref()).map_err(|e| e.to_string())
    };
    let ran = tui::run::run(&title, first, reopen, compute.threads, theme);
    close_cache(cache.as_ref(), warned);
    explorer_done(ran)
}

/// The explorer's outcome: a terminal error as an I/O error on `<terminal>`.
fn explorer_done(ran: std::io::Result<()>) -> Result<ExitCode, Error> {
    ran.map_err(|source| Error::Io {
        path: PathBuf::from("<terminal>"),
        source,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The explorer on a JSON report written with `--values` (no weights read).
fn explore_report(spec: &str, model: &ModelArgs, compute: &ComputeArgs) -> Result<ExitCode, Error> {
    let first = report_model(spec)?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "the explorer needs a terminal; the report itself is JSON".into(),
        ));
    }
    let reopen = |randomize: bool| {
        let m = report_model(spec).map_err(|e| e.to_string())?;
        if randomize && !m.randomized {
            return Err("the report holds no shuffled control: write it with \
                        `mpscope report MODEL --values --randomize`"
                .to_string());
        }
        Ok(m)
    };
    let theme = Theme::from_env(model.ascii);
    explorer_done(tui::run::run(spec, first, reopen, compute.threads, theme))
}

/// A report read back for the explorer: its blocks, analysed from the report's numbers, and
/// how to notice that the file was written again.
fn report_model(spec: &str) -> Result<tui::run::Model, Error> {
    let path = std::path::Path::new(spec);
    let saved = Arc::new(SavedReport::read(path)?);
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let opened = stamp(path);
    let watched = path.to_path_buf();
    let jobs = saved.jobs.clone();
    Ok(tui::run::Model {
        anatomy: saved.anatomy.clone(),
        jobs,
        randomized: saved.randomized,
        compute: Box::new(move |j| saved.analyze(j, SigmaMode::Entry).map(Into::into)),
        compare: false,
        preview: None,
        changed: Box::new(move || {
            (stamp(&watched) != opened).then(|| {
                let name = watched.file_name().unwrap_or_default().to_string_lossy();
                format!("{name} (written again)")
            })
        }),
    })
}

/// The explorer in compare mode: `other` (a checkpoint or a LoRA adapter) against `base`.
fn explore_compare(
    other: &str,
    base: Option<&str>,
    model: &ModelArgs,
    compute: &ComputeArgs,
) -> Result<ExitCode, Error> {
    if saved_report::is_report_path(std::path::Path::new(other)) {
        return Err(Error::Usage(
            "compare mode reads two checkpoints, not a saved report".into(),
        ));
    }
    let cache = compute.cache.open()?;
    let warned = cache.as_ref().and_then(|c| c.warning());
    let (first, title) = compare_model(other, base, model, compute, cache.as_ref())?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "the explorer needs a terminal; for scripts use `mpscope report {other} --base BASE`"
        )));
    }
    let theme = Theme::from_env(model.ascii);
    let reopen = |_randomize: bool| {
        compare_model(other, base, model, compute, cache.as_ref())
            .map(|(m, _)| m)
            .map_err(|e| e.to_string())
    };
    let ran = tui::run::run(&title, first, reopen, compute.threads, theme);
    close_cache(cache.as_ref(), warned);
    explorer_done(ran)
}

/// Opens both sides of a comparison for the explorer: the base's blocks, each computed as a
/// comparison (through `cache`, both sides), and the header's "OTHER vs BASE".
fn compare_model(
    other: &str,
    base: Option<&str>,
    model: &ModelArgs,
    compute: &ComputeArgs,
    cache: Option<&Arc<Cache>>,
) -> Result<(tui::run::Model, String), Error> {
    let sources = Sources::open(other, base, &model.overrides())?;
    let pairing = sources.pair(&ScanOptions {
        embeddings: compute.embeddings,
        ..ScanOptions::default()
    })?;
    let options = sources.options(
        ComputeArgs {
            randomize: false,
            ..compute.clone()
        }
        .options(&sources.base, cache),
    );
    let title = sources.title();
    let anatomy = sources.base_anatomy.clone();
    let jobs = pairing.jobs.iter().map(|p| p.base.clone()).collect();
    let pairs: HashMap<MatrixId, compare::PairJob> = pairing
        .jobs
        .into_iter()
        .map(|p| (p.base.block.id, p))
        .collect();
    let sources = Arc::new(sources);
    let watched = Arc::clone(&sources);
    Ok((
        tui::run::Model {
            anatomy,
            jobs,
            compute: Box::new(move |j| {
                let pair = pairs
                    .get(&j.block.id)
                    .ok_or_else(|| format!("{}: no pair", j.block.name))?;
                sources
                    .compare(pair, &options, SigmaMode::Entry)
                    .map(Into::into)
            }),
            changed: Box::new(move || {
                let other = match &watched.other {
                    compare::Other::Checkpoint { ck, .. } => ck.changed(),
                    compare::Other::Adapter(_) => None,
                };
                watched
                    .base
                    .changed()
                    .or(other)
                    .map(|c| format!("{} ({})", c.file_name(), c.what()))
            }),
            randomized: false,
            compare: true,
            preview: None,
        },
        title,
    ))
}

/// Opens the checkpoint at `spec` for the explorer: its blocks, how to compute them, and how
/// to notice that its files changed on disk.
fn explorer_model(
    spec: &str,
    model: &ModelArgs,
    compute: &ComputeArgs,
    cache: Option<&Arc<Cache>>,
) -> Result<tui::run::Model, Error> {
    let (ck, anatomy) = open(spec, model)?;
    let jobs = scan::plan(
        &anatomy,
        &ScanOptions {
            embeddings: compute.embeddings,
            ..ScanOptions::default()
        },
    );
    let options = compute.options(&ck, cache);
    let ck = Arc::new(ck);
    let watched = Arc::clone(&ck);
    let (for_preview, preview_options) = (Arc::clone(&ck), options.clone());
    Ok(tui::run::Model {
        anatomy,
        jobs,
        compute: Box::new(move |j| {
            scan::analyze(&ck, j, &options, SigmaMode::Entry).map(Into::into)
        }),
        preview: Some(Arc::new(move |j, par| {
            scan::preview(&for_preview, j, &preview_options, SigmaMode::Entry, par)
        })),
        compare: false,
        changed: Box::new(move || {
            watched
                .changed()
                .map(|c| format!("{} ({})", c.file_name(), c.what()))
        }),
        randomized: compute.randomize,
    })
}

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("mpscope: cannot install error reporting: {e}");
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mpscope: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
