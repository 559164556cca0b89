//! Blocks whose Gram matrix the Fast engine forms from f32 products (short side 160 to 1023)
//! are decoded straight to f32, transposed, and multiplied where they lie. Their spectra must
//! be those of the f64 decode bit for bit: the same numbers whether a block comes from a scan,
//! from a comparison (which decodes f64 for ΔW) or from the cache either filled.

mod common;

use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{self, ComputeOptions};
use mpscope::spectrum::{Precision, Spectrum, reads_entries_as_f32};

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every block of the checkpoint written with `args`, with and without the shuffled control:
/// the scan's spectrum equals the f64 decode's. Returns how many blocks took the f32 path.
fn check(args: &[&str]) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let shape = [
        "--family",
        "llama",
        "--layers",
        "1",
        "--hidden",
        "192",
        "--heads",
        "3",
        "--kv-heads",
        "1",
        "--head-dim",
        "64",
        "--intermediate",
        "512",
        "--vocab",
        "64",
    ];
    common::synth(dir.path(), &[&shape[..], args].concat());
    let ck = Checkpoint::open(&dir.path().to_string_lossy()).expect("open");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    let jobs = scan::plan(&an, &Default::default());
    let mut f32_blocks = 0;
    for randomize in [false, true] {
        let opts = ComputeOptions {
            precision: Precision::Fast,
            initializer_range: None,
            randomize,
            cache: None,
        };
        for job in &jobs {
            let scanned = scan::compute(&ck, job, &opts).expect("scan");
            let m = ck.decode_f64(&job.block.selection).expect("decode");
            let direct =
                Spectrum::compute(m.as_ref(), &scan::analyze_options(job, &opts)).expect("direct");
            let what = format!("{args:?} {} randomize {randomize}", job.block.name);
            assert_eq!(
                (scanned.rows, scanned.cols),
                (direct.rows, direct.cols),
                "{what}"
            );
            assert_eq!(bits(&scanned.values), bits(&direct.values), "{what}");
            assert_eq!(
                scanned.shuffled.as_deref().map(bits),
                direct.shuffled.as_deref().map(bits),
                "{what}"
            );
            if !randomize && reads_entries_as_f32(job.block.rows, job.block.cols, opts.precision) {
                f32_blocks += 1;
            }
        }
    }
    f32_blocks
}

#[test]
fn f32_decoded_blocks_equal_the_f64_decode_bit_for_bit() {
    // q, o, gate, up and down (192 × 192, 512 × 192, 192 × 512) take the f32 path; k, v and
    // the 64-row heads do not, and are checked all the same.
    for args in [
        &["--dtype", "bf16"][..],
        &["--dtype", "f16"],
        &["--dtype", "f32"],
        &["--format", "gguf", "--quant", "q4_1"],
    ] {
        assert_eq!(check(args), 5, "{args:?}");
    }
}
