//! Values-only spectra of the Llama-3.2-1B attention shapes (f32 decoded from bf16), every
//! computation method's time and accuracy, and numpy's fastest method on the same shapes.
//!
//! `cargo bench --bench spectrum`. Python is `$MPSCOPE_PYTHON` or `python3`; when numpy does not
//! import, the baseline is skipped. `MPSCOPE_BENCH_QUICK=1` runs one repetition of everything;
//! `MPSCOPE_BENCH_PARTS=1` adds the Gram / eigensolver split for 2048×2048.

/// The allocator the `mpscope` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Command;
use std::time::{Duration, Instant};

use faer::{Mat, MatRef, Par};
use half::bf16;
use mpscope::rng::Rng;
use mpscope::spectrum::{
    Method, Precision, singular_values, singular_values_with, values_and_right_vectors,
};
use rayon::prelude::*;

/// A row-major bf16 tensor of Kaiming-uniform entries, as a checkpoint stores it.
fn bf16_tensor(rows: usize, cols: usize, seed: u64) -> Vec<bf16> {
    let mut rng = Rng::new(seed);
    let bound = 1.0 / (cols as f64).sqrt();
    (0..rows * cols)
        .map(|_| bf16::from_f64(rng.uniform_sym(bound)))
        .collect()
}

/// Decodes rows `r0..r0+rows` of a row-major bf16 tensor into a column-major f32 matrix.
fn decode(t: &[bf16], cols: usize, r0: usize, rows: usize) -> Mat<f32> {
    Mat::from_fn(rows, cols, |i, j| t[(r0 + i) * cols + j].to_f32())
}

fn best(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.4}", d.as_secs_f64())
}

/// Accuracy of `got` against the reference `want` (both descending).
fn accuracy(got: &[f64], want: &[f64]) -> (f64, f64, f64) {
    let top = want[0];
    let mut abs = 0.0f64;
    let mut rel_01 = 0.0f64;
    let mut rel_001 = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        abs = abs.max((g - w).abs() / top);
        let rel = (g - w).abs() / w;
        if *w >= 0.1 * top {
            rel_01 = rel_01.max(rel);
        }
        if *w >= 1e-3 * top {
            rel_001 = rel_001.max(rel);
        }
    }
    (abs, rel_01, rel_001)
}

struct Row {
    shape: &'static str,
    what: String,
    seconds: f64,
}

fn main() {
    let quick = std::env::var("MPSCOPE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let reps = |n: usize| if quick { 1 } else { n };
    let threads = rayon::current_num_threads();
    println!("mpscope spectrum bench: f32 from bf16, rayon threads = {threads}\n");

    let q = bf16_tensor(2048, 2048, 1);
    let kv = bf16_tensor(512, 2048, 2);
    let t = Instant::now();
    let q32 = decode(&q, 2048, 0, 2048);
    let decode_q = t.elapsed();
    let kv32 = decode(&kv, 2048, 0, 512);
    let heads_src = bf16_tensor(48 * 64, 2048, 3);
    let heads: Vec<Mat<f32>> = (0..48)
        .map(|h| decode(&heads_src, 2048, h * 64, 64))
        .collect();
    println!("decode bf16 → f32 of 2048×2048: {} s\n", secs(decode_q));

    // 1. Every method, its time and accuracy against the f64 bidiagonal SVD.
    println!("method comparison (Par::Seq; error vs faer f64 SVD; abs in units of ν₁)");
    println!(
        "{:<14} {:<18} {:>9} {:>10} {:>10} {:>10}",
        "shape", "method", "seconds", "abs/ν₁", "rel≥0.1ν₁", "rel≥1e-3ν₁"
    );
    let cases: [(&str, MatRef<'_, f32>, usize); 3] = [
        ("2048x2048", q32.as_ref(), 2),
        ("512x2048", kv32.as_ref(), 5),
        ("64x2048", heads[0].as_ref(), 20),
    ];
    for (name, m, n) in cases {
        if std::env::var("MPSCOPE_BENCH_SKIP_METHODS").is_ok() {
            continue;
        }
        let reference = singular_values_with(m, Method::SvdF64, Par::Seq).unwrap();
        for method in Method::ALL {
            let mut v = Vec::new();
            let d = best(reps(n), || {
                v = singular_values_with(m, method, Par::Seq).unwrap()
            });
            let (abs, r1, r3) = accuracy(&v, &reference);
            println!(
                "{:<14} {:<18} {:>9} {:>10.1e} {:>10.1e} {:>10.1e}",
                name,
                method.name(),
                secs(d),
                abs,
                r1,
                r3
            );
        }
        let d = best(reps(n), || {
            values_and_right_vectors(m, Par::Seq, |_, _| {}).unwrap();
        });
        println!("{:<14} {:<18} {:>9}", name, "gram-f64+vectors", secs(d));
    }
    println!();

    // 1b. Where the Gram path spends its time (2048×2048, f64).
    if std::env::var("MPSCOPE_BENCH_PARTS").is_ok_and(|v| v == "1") {
        use faer::linalg::matmul::triangular::BlockStructure;
        let a = Mat::<f64>::from_fn(2048, 2048, |i, j| q32[(i, j)] as f64);
        let mut g = Mat::<f64>::zeros(2048, 2048);
        for par in [Par::Seq, Par::rayon(0)] {
            let tri = best(reps(2), || {
                faer::linalg::matmul::triangular::matmul(
                    g.as_mut(),
                    BlockStructure::TriangularLower,
                    faer::Accum::Replace,
                    a.as_ref(),
                    BlockStructure::Rectangular,
                    a.transpose(),
                    BlockStructure::Rectangular,
                    1.0,
                    par,
                )
            });
            let full = best(reps(2), || {
                faer::linalg::matmul::matmul(
                    g.as_mut(),
                    faer::Accum::Replace,
                    a.as_ref(),
                    a.transpose(),
                    1.0,
                    par,
                )
            });
            faer::set_global_parallelism(par);
            let evd = best(reps(2), || {
                g.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
            });
            let g32 = Mat::<f32>::from_fn(2048, 2048, |i, j| g[(i, j)] as f32);
            let evd32 = best(reps(2), || {
                g32.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
            });
            println!(
                "parts {par:?}: gram lower {} s, gram full {} s, evd f64 {} s, evd f32 {} s",
                secs(tri),
                secs(full),
                secs(evd),
                secs(evd32)
            );
        }
        faer::set_global_parallelism(Par::rayon(0));
        println!();
    }

    // 1a. Interleaved A/B of the eigensolvers on 2048×2048 (MPSCOPE_BENCH_AB=1).
    if std::env::var("MPSCOPE_BENCH_AB").is_ok_and(|v| v == "1") {
        let mut t = [Duration::MAX; 3];
        for _ in 0..4 {
            t[0] = t[0].min(best(1, || {
                singular_values_with(q32.as_ref(), Method::GramF64OneStage, Par::Seq).unwrap();
            }));
            t[1] = t[1].min(best(1, || {
                mpscope::spectrum::gram_values_two_stage(q32.as_ref(), 16, false, Par::Seq)
                    .unwrap();
            }));
            t[2] = t[2].min(best(1, || {
                mpscope::spectrum::gram_values_two_stage(q32.as_ref(), 32, false, Par::Seq)
                    .unwrap();
            }));
        }
        println!(
            "A/B 2048x2048 Seq: one-stage {} s, two-stage b=16 {} s, b=32 {} s\n",
            secs(t[0]),
            secs(t[1]),
            secs(t[2])
        );
    }

    // 1b'. Two-stage half-bandwidth sweep (MPSCOPE_BENCH_BANDS=1).
    if std::env::var("MPSCOPE_BENCH_BANDS").is_ok_and(|v| v == "1") {
        for (name, m) in [("2048x2048", q32.as_ref()), ("512x2048", kv32.as_ref())] {
            for band in [8, 16, 24, 32, 48, 64] {
                for par in [Par::Seq, Par::rayon(0)] {
                    let d = best(reps(3), || {
                        mpscope::spectrum::gram_values_two_stage(m, band, false, par).unwrap();
                    });
                    println!("two-stage {name} b={band} {par:?}: {} s", secs(d));
                }
            }
        }
        println!();
    }

    // 1c. The vector test's parts: one KS p-value of a 2048-entry vector.
    {
        let mut rng = Rng::new(9);
        let v: Vec<f64> = (0..2048).map(|_| rng.normal() / 2048f64.sqrt()).collect();
        let d = best(reps(5), || {
            for _ in 0..100 {
                std::hint::black_box(mpscope::spectrum::vector_ks_p(std::hint::black_box(&v)));
            }
        });
        let ds = best(reps(5), || {
            for _ in 0..100 {
                std::hint::black_box(mpscope::spectrum::ks_normal_statistic(
                    std::hint::black_box(&v),
                ));
            }
        });
        let dk = best(reps(5), || {
            for i in 0..100 {
                std::hint::black_box(mpscope::spectrum::kolmogorov_sf(
                    2048,
                    std::hint::black_box(0.01 + i as f64 * 1e-4),
                ));
            }
        });
        let dv = best(reps(5), || {
            values_and_right_vectors(heads[0].as_ref(), Par::Seq, |_, _| {}).unwrap();
        });
        println!(
            "vector_ks_p(2048 entries): {:.1} µs (statistic {:.1} µs, kolmogorov_sf {:.1} µs); \
             64x2048 values + right vectors: {:.3} ms\n",
            d.as_secs_f64() * 1e4,
            ds.as_secs_f64() * 1e4,
            dk.as_secs_f64() * 1e4,
            dv.as_secs_f64() * 1e3
        );
    }

    // 2. The default (Precision::Fast) as the worker runs it.
    let fast = |m: MatRef<'_, f32>, par: Par| {
        singular_values(m, Precision::Fast, par).unwrap();
    };
    let mut rows = vec![
        Row {
            shape: "2048x2048",
            what: "fast, Par::Seq".into(),
            seconds: best(reps(3), || fast(q32.as_ref(), Par::Seq)).as_secs_f64(),
        },
        Row {
            shape: "2048x2048",
            what: format!("fast, Par::rayon({threads})"),
            seconds: best(reps(3), || fast(q32.as_ref(), Par::rayon(0))).as_secs_f64(),
        },
        Row {
            shape: "512x2048",
            what: "fast, Par::Seq".into(),
            seconds: best(reps(30), || fast(kv32.as_ref(), Par::Seq)).as_secs_f64(),
        },
        Row {
            shape: "512x2048",
            what: format!("fast, Par::rayon({threads})"),
            seconds: best(reps(30), || fast(kv32.as_ref(), Par::rayon(0))).as_secs_f64(),
        },
        Row {
            shape: "48x64x2048",
            what: "fast, sequential blocks".into(),
            seconds: best(reps(10), || {
                heads.iter().for_each(|h| fast(h.as_ref(), Par::Seq))
            })
            .as_secs_f64(),
        },
        Row {
            shape: "48x64x2048",
            what: "fast, rayon over blocks".into(),
            seconds: best(reps(10), || {
                heads.par_iter().for_each(|h| fast(h.as_ref(), Par::Seq))
            })
            .as_secs_f64(),
        },
        Row {
            shape: "48x64x2048",
            what: "fast+vector_p, rayon over blocks".into(),
            seconds: best(reps(10), || {
                heads.par_iter().for_each(|h| {
                    let mut sum = 0.0;
                    values_and_right_vectors(h.as_ref(), Par::Seq, |_, v| {
                        sum += mpscope::spectrum::vector_ks_p(v)
                    })
                    .unwrap();
                })
            })
            .as_secs_f64(),
        },
        Row {
            shape: "48x64x2048",
            what: "decode bf16 + fast, rayon".into(),
            seconds: best(reps(10), || {
                (0..48).into_par_iter().for_each(|h| {
                    let m = decode(&heads_src, 2048, h * 64, 64);
                    fast(m.as_ref(), Par::Seq);
                })
            })
            .as_secs_f64(),
        },
    ];
    println!(
        "mpscope values-only (Precision::Fast = {})",
        Precision::Fast.method().name()
    );
    for r in &rows {
        println!("{:<14} {:<34} {:>9.4} s", r.shape, r.what, r.seconds);
    }
    println!();

    // 3. numpy on the same shapes, same run.
    let python = std::env::var("MPSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/numpy_baseline.py");
    let numpy_ok = Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !numpy_ok {
        println!("numpy absent, skipped (set MPSCOPE_PYTHON to a python with numpy)");
        return;
    }
    let out = match Command::new(&python)
        .arg(script)
        .arg(if quick { "1" } else { "0" })
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            println!(
                "numpy baseline failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            println!("numpy baseline could not run: {e}");
            return;
        }
    };
    let mut numpy: Vec<Row> = Vec::new();
    for line in out.lines() {
        let mut f = line.split('\t');
        if let (Some(shape), Some(what), Some(s)) = (f.next(), f.next(), f.next())
            && let Ok(seconds) = s.trim().parse::<f64>()
        {
            let shape = ["2048x2048", "512x2048", "48x64x2048"]
                .into_iter()
                .find(|&k| k == shape)
                .unwrap_or("?");
            numpy.push(Row {
                shape,
                what: what.to_string(),
                seconds,
            });
        } else if !line.trim().is_empty() {
            println!("{line}");
        }
    }
    println!("numpy (same run)");
    for r in &numpy {
        println!("{:<14} {:<34} {:>9.4} s", r.shape, r.what, r.seconds);
    }
    println!();
    println!("ratio mpscope best / numpy fastest (below 1 = faster than numpy)");
    rows.retain(|r| !r.what.contains("vector_p") && !r.what.contains("decode"));
    for shape in ["2048x2048", "512x2048", "48x64x2048"] {
        let ours = rows
            .iter()
            .filter(|r| r.shape == shape)
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let theirs = numpy
            .iter()
            .filter(|r| r.shape == shape)
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds));
        if let (Some(o), Some(t)) = (ours, theirs) {
            println!(
                "{:<14} {:>9.4} s ({}) vs {:>9.4} s ({}): {:.2}",
                shape,
                o.seconds,
                o.what,
                t.seconds,
                t.what,
                o.seconds / t.seconds
            );
        }
    }
}
