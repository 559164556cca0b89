//! Singular values against a stored LAPACK (numpy f64) reference, and vector p-values against
//! stored `scipy.stats.kstest` results. The reference file was written once by a numpy script
//! (see its "about" field); these tests need no Python.

use faer::{Mat, Par};
use mpscope::spectrum::{
    Method, Precision, gram_values_two_stage, kolmogorov_sf, ks_normal_statistic, singular_values,
    singular_values_with, vector_ks_p,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    matrices: Vec<MatrixCase>,
    kstest: Vec<KsCase>,
}

#[derive(Deserialize)]
struct MatrixCase {
    name: String,
    rows: usize,
    cols: usize,
    seed: u64,
    grade: usize,
    spike: f64,
    checksum: f64,
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct KsCase {
    n: usize,
    kind: String,
    statistic: f64,
    pvalue: f64,
    data: Vec<f64>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/spectrum_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The reference script's matrix: 24-bit hash entries in [−½, ½), rows scaled by
/// 2^−⌊grade·i/rows⌋, plus spike·s tᵀ with ±1 vectors. Every entry is exact in f32.
fn build(c: &MatrixCase) -> Mat<f32> {
    let sign = |salt: u64, i: usize| {
        if splitmix64(((c.seed * 7919 + salt) << 20) + i as u64) & 1 == 1 {
            1.0
        } else {
            -1.0
        }
    };
    Mat::from_fn(c.rows, c.cols, |i, j| {
        let k = splitmix64((c.seed << 32) + (i * c.cols + j) as u64) >> 40;
        let e = (k as f64 - (1u64 << 23) as f64) / (1u64 << 24) as f64;
        let g = 2f64.powi(-((c.grade * i / c.rows) as i32));
        let mut x = e * g;
        if c.spike != 0.0 {
            x += c.spike * sign(1, i) * sign(2, j);
        }
        assert_eq!(x as f32 as f64, x);
        x as f32
    })
}

/// (max |err|/ν₁, max rel err over ν ≥ 0.1ν₁, max rel err over ν ≥ 1e-3ν₁).
fn errors(got: &[f64], want: &[f64]) -> (f64, f64, f64) {
    assert_eq!(got.len(), want.len());
    let top = want[0];
    let (mut abs, mut r1, mut r3) = (0.0f64, 0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        abs = abs.max((g - w).abs() / top);
        if *w >= 0.1 * top {
            r1 = r1.max((g - w).abs() / w);
        }
        if *w >= 1e-3 * top {
            r3 = r3.max((g - w).abs() / w);
        }
    }
    (abs, r1, r3)
}

#[test]
fn singular_values_match_lapack() {
    let r = reference();
    assert!(r.matrices.len() >= 3);
    for case in &r.matrices {
        let m32 = build(case);
        let m64 = Mat::<f64>::from_fn(case.rows, case.cols, |i, j| m32[(i, j)] as f64);
        let sum: f64 = (0..case.rows)
            .flat_map(|i| (0..case.cols).map(move |j| (i, j)))
            .map(|(i, j)| m64[(i, j)])
            .sum();
        assert!(
            (sum - case.checksum).abs() < 1e-9,
            "{}: rebuilt matrix differs",
            case.name
        );
        for (label, fast, precise) in [
            (
                "f32",
                singular_values(m32.as_ref(), Precision::Fast, Par::Seq).unwrap(),
                singular_values(m32.as_ref(), Precision::Precise, Par::Seq).unwrap(),
            ),
            (
                "f64",
                singular_values(m64.as_ref(), Precision::Fast, Par::Seq).unwrap(),
                singular_values(m64.as_ref(), Precision::Precise, Par::Seq).unwrap(),
            ),
        ] {
            let (abs, r1, _) = errors(&fast, &case.values);
            assert!(
                abs <= 1e-3 && r1 <= 1e-5,
                "{} {label} fast: {abs:e} {r1:e}",
                case.name
            );
            let (abs, _, r3) = errors(&precise, &case.values);
            assert!(
                abs <= 1e-3 && r3 <= 1e-6,
                "{} {label} precise: {abs:e} {r3:e}",
                case.name
            );
        }
        // Transposing the block changes nothing.
        let t = singular_values(m32.as_ref().transpose(), Precision::Precise, Par::Seq).unwrap();
        assert!(errors(&t, &case.values).2 <= 1e-6);
    }
}

#[test]
fn every_method_meets_the_absolute_bound() {
    // The f32 methods are not the default; they still must not be wildly off.
    let r = reference();
    for case in &r.matrices {
        let m = build(case);
        for method in Method::ALL {
            let v = singular_values_with(m.as_ref(), method, Par::Seq).unwrap();
            let (abs, r1, _) = errors(&v, &case.values);
            assert!(
                abs <= 1e-3 && r1 <= 1e-4,
                "{} {method:?}: {abs:e} {r1:e}",
                case.name
            );
        }
    }
}

#[test]
fn vector_p_values_match_scipy_kstest() {
    let r = reference();
    assert!(r.kstest.len() >= 40);
    let mut worst = 0.0f64;
    for case in &r.kstest {
        assert_eq!(case.data.len(), case.n);
        let d = ks_normal_statistic(&case.data);
        assert!(
            (d - case.statistic).abs() < 1e-9,
            "n={} {}: D {d} vs {}",
            case.n,
            case.kind,
            case.statistic
        );
        let p = vector_ks_p(&case.data);
        assert_eq!(p, kolmogorov_sf(case.n, d));
        let err = (p - case.pvalue).abs();
        worst = worst.max(err);
        assert!(
            err < 0.01,
            "n={} {}: p {p} vs scipy {}",
            case.n,
            case.kind,
            case.pvalue
        );
    }
    // Much tighter than required, in practice.
    assert!(worst < 1e-3, "worst p-value error {worst}");
}

#[test]
fn two_stage_eigensolver_matches_lapack() {
    // The Fast path switches to the two-stage reduction only for large blocks; check it here on
    // the reference matrices directly, for several half-bandwidths (wider than, equal to and
    // narrower than the matrix), reducing in f64 and in f32 (as Fast does from p = 1024 on).
    let r = reference();
    for case in &r.matrices {
        let m = build(case);
        for band in [1, 3, 16, 32, 1000] {
            for f32_band in [false, true] {
                let v = gram_values_two_stage(m.as_ref(), band, f32_band, Par::Seq).unwrap();
                let (abs, r1, r3) = errors(&v, &case.values);
                assert!(
                    abs <= 1e-3 && r1 <= 1e-5,
                    "{} two-stage b={band} f32={f32_band}: {abs:e} {r1:e} {r3:e}",
                    case.name
                );
                if !f32_band {
                    // As accurate as the one-stage f64 Gram path (far inside the Fast bound).
                    assert!(r1 <= 1e-10, "{} b={band}: {r1:e}", case.name);
                }
            }
        }
    }
}
