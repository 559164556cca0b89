//! GGUF speed: `cargo bench --bench gguf`.
//!
//! Prints, in one run:
//! - dequantization throughput of every block type on one core (values decoded per second
//!   from random blocks with finite scales);
//! - opening a Llama-3.2-1B-shaped q8_0 GGUF (headers only, as `inspect` does);
//! - `report --proj q,k,v` with heads on that GGUF and on the same model in bf16 safetensors,
//!   alternated, and the ratio.
//!
//! Both 1B files are written with `mpscope synth` into a temp dir (once; `MPSCOPE_BENCH_DIR`
//! overrides where): ~2.5 GB of safetensors and ~1.3 GB of GGUF.

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::{Checkpoint, Quant};
use mpscope::report;
use mpscope::rng::Rng;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use mpscope::synth::{self, GgufQuant};

/// Random blocks of `q` whose scale fields hold finite f16 (f32 for Q8_K) values.
fn random_blocks(q: Quant, n: usize, rng: &mut Rng) -> Vec<u8> {
    let size = q.block_bytes();
    let mut out: Vec<u8> = (0..n * size).map(|_| rng.next_u64() as u8).collect();
    let scales: &[usize] = match q {
        Quant::Q4_0 | Quant::Q5_0 | Quant::Q8_0 => &[0],
        Quant::Q4_1 | Quant::Q5_1 | Quant::Q4K | Quant::Q5K => &[0, 2],
        Quant::Q2K => &[80, 82],
        Quant::Q3K => &[108],
        Quant::Q6K => &[208],
        Quant::Q8K => &[],
    };
    for b in out.chunks_exact_mut(size) {
        for &o in scales {
            let v = half::f16::from_f32((rng.uniform() as f32 - 0.5) * 0.02);
            b[o..o + 2].copy_from_slice(&v.to_le_bytes());
        }
        if q == Quant::Q8K {
            b[..4].copy_from_slice(&0.01f32.to_le_bytes());
        }
    }
    out
}

fn dequant_throughput() {
    println!("dequantization, one core (best of 5 over 4 Mi values):");
    let mut rng = Rng::new(1);
    let n_values = 1 << 22;
    let mut out = vec![0f32; n_values];
    for q in Quant::ALL {
        let blocks = random_blocks(q, n_values / q.block_values(), &mut rng);
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            q.dequantize(&blocks, &mut out);
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(&out);
        }
        println!(
            "  {:5}  {:7.0} M values/s  {:6.2} GB/s read",
            q.name(),
            n_values as f64 / best / 1e6,
            blocks.len() as f64 / best / 1e9
        );
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("MPSCOPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mpscope-bench-gguf"))
}

/// Writes the 1B preset as bf16 safetensors and q8_0 GGUF, unless already there.
fn models() -> (PathBuf, PathBuf) {
    let root = bench_dir();
    let (st, gg) = (root.join("st"), root.join("gguf"));
    let spec = synth::preset("llama-3.2-1b").expect("preset");
    if !st.join("truth.json").is_file() {
        let t = Instant::now();
        synth::write(&st, &spec).expect("write safetensors");
        println!(
            "wrote {} in {:.0} s",
            st.display(),
            t.elapsed().as_secs_f64()
        );
    }
    if !gg.join("truth.json").is_file() {
        let t = Instant::now();
        synth::write_gguf(&gg, &spec, GgufQuant::Q8_0).expect("write gguf");
        println!(
            "wrote {} in {:.0} s",
            gg.display(),
            t.elapsed().as_secs_f64()
        );
    }
    (st, gg)
}

fn open(dir: &Path) -> (Arc<Checkpoint>, Anatomy) {
    let ck = Checkpoint::open(&dir.to_string_lossy()).expect("open checkpoint");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    (Arc::new(ck), an)
}

/// The checkpoint at `dir` and the jobs of `report --proj q,k,v` with heads.
fn qkv_jobs(dir: &Path) -> (Arc<Checkpoint>, Vec<scan::Job>) {
    let (ck, an) = open(dir);
    let jobs = scan::plan(
        &an,
        &ScanOptions {
            projs: "q,k,v".parse().expect("projection list"),
            ..ScanOptions::default()
        },
    );
    (ck, jobs)
}

/// Seconds for `report --proj q,k,v` with heads, on every core.
fn scan(dir: &Path) -> (f64, usize) {
    let (ck, jobs) = qkv_jobs(dir);
    let n = jobs.len();
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let t = Instant::now();
    let r = report::run(ck, jobs, opts, SigmaMode::Entry, 0, |_| {}).expect("scan");
    assert_eq!(r.failed(), 0);
    (t.elapsed().as_secs_f64(), n)
}

/// Seconds to decode every q/k/v block of the scan to f64 on one core (the part of the scan
/// that depends on the file format; the spectra are the same work for both).
fn decode_all(dir: &Path) -> f64 {
    let (ck, jobs) = qkv_jobs(dir);
    let mut m = faer::Mat::<f64>::new();
    let t = Instant::now();
    for j in &jobs {
        ck.decode_f64_into(&j.block.selection, &mut m)
            .expect("decode");
        std::hint::black_box(&m);
    }
    t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    dequant_throughput();
    let (st, gg) = models();
    let size = |d: &Path| {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let mut best_open = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let (ck, an) = open(&gg);
        best_open = best_open.min(t.elapsed().as_secs_f64());
        std::hint::black_box((ck.tensors().len(), an.matrices.len()));
    }
    println!(
        "open + anatomy of the {:.2} GB q8_0 GGUF (what `inspect` reads): {:.1} ms",
        size(&gg) as f64 / 1e9,
        best_open * 1e3
    );
    let (mut d_st, mut d_gg) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        d_st = d_st.min(decode_all(&st));
        d_gg = d_gg.min(decode_all(&gg));
    }
    println!(
        "decoding every q/k/v block of that scan, one core (best of 3): bf16 {d_st:.2} s, \
         q8_0 {d_gg:.2} s"
    );
    let (mut t_st, mut t_gg) = (f64::INFINITY, f64::INFINITY);
    let mut blocks = 0;
    for _ in 0..3 {
        let (t, n) = scan(&st);
        t_st = t_st.min(t);
        let (t, m) = scan(&gg);
        t_gg = t_gg.min(t);
        assert_eq!(n, m, "the same blocks");
        blocks = n;
    }
    println!(
        "report --proj q,k,v with heads ({blocks} blocks, best of 3): bf16 safetensors {t_st:.2} s, \
         q8_0 GGUF {t_gg:.2} s, ratio {:.2}",
        t_gg / t_st
    );
}
