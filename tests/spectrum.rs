//! The spectral engine's must-holds on random, spiked, heavy-tailed and known blocks.

use faer::{Mat, Par};
use mpscope::rng::Rng;
use mpscope::spectrum::{
    AnalyzeOptions, Histogram, HistogramRange, MpLaw, Precision, SigmaMode, SpectrumError, Unit,
    analyze, score, singular_values,
};

/// Kaiming-uniform rows × cols block (PyTorch `nn.Linear` default, σ = 1/√(3·cols)).
fn kaiming(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
    let mut rng = Rng::new(seed);
    let bound = 1.0 / (cols as f64).sqrt();
    Mat::from_fn(rows, cols, |_, _| rng.uniform_sym(bound) as f32)
}

fn gaussian(rows: usize, cols: usize, sigma: f64, seed: u64) -> Mat<f64> {
    let mut rng = Rng::new(seed);
    Mat::from_fn(rows, cols, |_, _| sigma * rng.normal())
}

fn unit_vectors(len: usize, k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    // Gram–Schmidt on Gaussian vectors: k orthonormal directions.
    let mut out: Vec<Vec<f64>> = Vec::new();
    while out.len() < k {
        let mut v: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
        for u in &out {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        out.push(v);
    }
    out
}

#[test]
fn mp_density_mass_and_second_moment() {
    // Square and 1:48 (a 64 × 3072 head-like block), by the public API.
    for (rows, cols) in [(512, 512), (64, 3072)] {
        let law = MpLaw::new(0.02, rows, cols).unwrap();
        let (lo, hi) = (law.lower_edge(), law.upper_edge());
        let n = 400_000;
        let h = (hi - lo) / n as f64;
        let (mut m0, mut m2) = (0.0, 0.0);
        for i in 0..n {
            let nu = lo + (i as f64 + 0.5) * h;
            m0 += law.density(nu) * h;
            m2 += law.density(nu) * nu * nu * h;
        }
        assert!((m0 - 1.0).abs() < 1e-6, "{rows}×{cols}: ∫g = {m0}");
        let q = rows.max(cols) as f64;
        assert!(
            (m2 / (q * 0.02 * 0.02) - 1.0).abs() < 1e-6,
            "{rows}×{cols}: ∫ν²g = {m2}"
        );
        // The CDF agrees with the midpoint integral at the middle of the support.
        let mid = (lo + hi) / 2.0;
        let k = ((mid - lo) / h) as usize;
        let partial: f64 = (0..k)
            .map(|i| law.density(lo + (i as f64 + 0.5) * h) * h)
            .sum();
        assert!((law.cdf(lo + k as f64 * h) - partial).abs() < 1e-6);
    }
}

#[test]
fn kaiming_blocks_sit_on_the_mp_law() {
    let opts = AnalyzeOptions {
        vector_p: true,
        ..AnalyzeOptions::default()
    };
    for (rows, cols) in [(128, 3072), (256, 512), (512, 512)] {
        let a = analyze(kaiming(rows, cols, 42).as_ref(), &opts).unwrap();
        let s = a.scores;
        assert!(s.ks < 0.03, "{rows}×{cols}: ks {}", s.ks);
        assert_eq!((s.above, s.below), (0, 0), "{rows}×{cols}");
        let vp = s.vector_p.unwrap();
        assert!((0.35..=0.65).contains(&vp), "{rows}×{cols}: vector_p {vp}");
        // entry σ is the RMS of the entries; init σ is Kaiming's.
        assert!((a.sigmas.entry / a.sigmas.init - 1.0).abs() < 0.01);
        assert_eq!(a.sigma.mode, SigmaMode::Entry);
        assert!((a.sigmas.fit / a.sigmas.entry - 1.0).abs() < 0.02);
    }
}

#[test]
fn kaiming_blocks_rarely_cross_the_edge_over_20_seeds() {
    for (rows, cols) in [(128, 3072), (256, 512), (512, 512)] {
        let mut crossings = 0;
        let mut worst_ks = 0.0f64;
        for seed in 0..20 {
            let m = kaiming(rows, cols, 1000 + seed);
            let v = singular_values(m.as_ref(), Precision::Fast, Par::Seq).unwrap();
            let sigma = mpscope::spectrum::entry_sigma(&v, rows, cols);
            let s = score(&v, rows, cols, sigma).unwrap();
            crossings += usize::from(s.above > 0);
            worst_ks = worst_ks.max(s.ks);
            assert_eq!(s.below, 0);
        }
        assert!(
            crossings <= 1,
            "{rows}×{cols}: above > 0 in {crossings} of 20 seeds"
        );
        assert!(worst_ks < 0.03, "{rows}×{cols}: worst ks {worst_ks}");
    }
}

#[test]
fn planted_spikes_are_found_and_fit_sigma_ignores_them() {
    let (rows, cols, sigma) = (512, 2048, 0.05);
    let theta = 3.0 * sigma * ((rows * cols) as f64).powf(0.25);
    for k in [1, 3, 5] {
        let mut w = gaussian(rows, cols, sigma, 7 + k as u64);
        let mut rng = Rng::new(100 + k as u64);
        let us = unit_vectors(rows, k, &mut rng);
        let vs = unit_vectors(cols, k, &mut rng);
        for (u, v) in us.iter().zip(&vs) {
            for j in 0..cols {
                for i in 0..rows {
                    w[(i, j)] += theta * u[i] * v[j];
                }
            }
        }
        let a = analyze(w.as_ref(), &AnalyzeOptions::default()).unwrap();
        assert_eq!(a.scores.above, k, "k = {k}: entry σ");
        assert!(
            a.scores.edge_ratio > 1.2,
            "k = {k}: edge ratio {}",
            a.scores.edge_ratio
        );
        assert!(a.scores.outlier_mass > 0.0);
        let fit = a.spectrum.sigma(SigmaMode::Fit).value;
        assert!(
            (fit / sigma - 1.0).abs() < 0.02,
            "k = {k}: fit σ {fit} vs {sigma}"
        );
        let refit = a.rescored(SigmaMode::Fit).unwrap();
        assert_eq!(refit.scores.above, k, "k = {k}: fit σ");
        assert_eq!(refit.sigma.mode, SigmaMode::Fit);
    }
}

#[test]
fn heavy_tails_score_worse_than_gaussian() {
    let (rows, cols, sigma) = (512, 2048, 0.05);
    let g = gaussian(rows, cols, sigma, 11);
    let mut rng = Rng::new(12);
    // Student-t(3) has variance 3: rescale to σ.
    let t = Mat::<f64>::from_fn(rows, cols, |_, _| sigma * rng.student_t(3) / 3f64.sqrt());
    let opts = AnalyzeOptions::default();
    let kg = analyze(g.as_ref(), &opts).unwrap().scores.ks;
    let kt = analyze(t.as_ref(), &opts).unwrap().scores.ks;
    assert!(kg < 0.03, "gaussian ks {kg}");
    assert!(
        kt > 2.0 * kg && kt > kg + 0.02,
        "student-t ks {kt} vs gaussian {kg}"
    );
}

#[test]
fn known_spectra() {
    // Diagonal: |d| sorted.
    let d = [0.5, -3.0, 2.0, 0.0, 1.25];
    let m = Mat::<f64>::from_fn(5, 9, |i, j| if i == j { d[i] } else { 0.0 });
    for p in [Precision::Fast, Precision::Precise] {
        let v = singular_values(m.as_ref(), p, Par::Seq).unwrap();
        for (a, b) in v.iter().zip([3.0, 2.0, 1.25, 0.5, 0.0]) {
            assert!((a - b).abs() < 1e-7, "{p:?}: {v:?}");
        }
    }
    // Orthogonal (normalised Sylvester–Hadamard, 256 × 256) and orthonormal rows (64 × 256).
    let h = Mat::<f32>::from_fn(256, 256, |i, j| {
        if (i & j).count_ones() % 2 == 0 {
            1.0 / 16.0
        } else {
            -1.0 / 16.0
        }
    });
    for block in [
        h.as_ref(),
        h.as_ref().subrows(0, 64),
        h.as_ref().subrows(0, 64).transpose(),
    ] {
        for p in [Precision::Fast, Precision::Precise] {
            let v = singular_values(block, p, Par::Seq).unwrap();
            assert!(v.iter().all(|x| (x - 1.0).abs() < 1e-6), "{p:?}");
        }
    }
    let a = analyze(h.as_ref(), &AnalyzeOptions::default()).unwrap();
    assert!((a.scores.stable_rank - 256.0).abs() < 1e-3);
    // Rank 5: five values, the rest (numerically) zero.
    let mut rng = Rng::new(5);
    let b = Mat::<f64>::from_fn(100, 5, |_, _| rng.normal());
    let c = Mat::<f64>::from_fn(5, 80, |_, _| rng.normal());
    let r = &b * &c;
    let fast = singular_values(r.as_ref(), Precision::Fast, Par::Seq).unwrap();
    let precise = singular_values(r.as_ref(), Precision::Precise, Par::Seq).unwrap();
    assert!(
        precise[4] > 1.0 && precise[5] < 1e-12 * precise[0],
        "{precise:?}"
    );
    for (f, p) in fast.iter().zip(&precise) {
        assert!((f - p).abs() < 1e-3 * precise[0]);
    }
    let a = analyze(
        r.as_ref(),
        &AnalyzeOptions {
            vector_p: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(a.scores.ks.is_finite() && a.scores.vector_p.is_some_and(f64::is_finite));
    assert!((a.scores.stable_rank - 5.0).abs() < 4.0);
}

#[test]
fn all_zero_block_is_empty_not_nan() {
    let z = Mat::<f32>::zeros(64, 2048);
    let opts = AnalyzeOptions {
        vector_p: true,
        ..Default::default()
    };
    let a = analyze(z.as_ref(), &opts).unwrap();
    assert!(a.spectrum.values.iter().all(|&v| v == 0.0));
    assert!(a.scores.empty && a.law.is_none() && a.scores.vector_p.is_none());
    for mode in SigmaMode::ALL {
        let r = a.rescored(mode).unwrap();
        assert!(r.scores.empty);
    }
    let json = serde_json::to_string(&a).unwrap();
    assert!(
        !json.contains("NaN") && !json.contains("\"ks\":null"),
        "{json}"
    );
    let h = a
        .spectrum
        .histogram(a.sigma.value, Unit::Singular, 20, HistogramRange::Full);
    assert_eq!(h.counts.iter().sum::<usize>(), 64);
}

#[test]
fn non_finite_entries_are_counted() {
    let mut m = kaiming(8, 16, 1);
    m[(0, 0)] = f32::NAN;
    m[(3, 5)] = f32::NEG_INFINITY;
    m[(7, 15)] = f32::INFINITY;
    let err = analyze(m.as_ref(), &AnalyzeOptions::default()).unwrap_err();
    assert!(
        matches!(err, SpectrumError::NonFinite { count: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("3 non-finite entries"), "{err}");
}

#[test]
fn shapes_from_one_by_one_to_very_tall() {
    let one = Mat::<f32>::from_fn(1, 1, |_, _| -0.25);
    let a = analyze(one.as_ref(), &AnalyzeOptions::default()).unwrap();
    assert_eq!(a.spectrum.values, vec![0.25]);
    assert!(a.scores.ks.is_finite());
    // A very tall block (embedding-like aspect, small): the short side is used.
    let tall = kaiming(20_000, 8, 3);
    let fast = singular_values(tall.as_ref(), Precision::Fast, Par::Seq).unwrap();
    let precise = singular_values(tall.as_ref(), Precision::Precise, Par::Seq).unwrap();
    assert_eq!(fast.len(), 8);
    for (f, p) in fast.iter().zip(&precise) {
        assert!((f / p - 1.0).abs() < 1e-9);
    }
}

#[test]
fn histogram_of_a_random_block_follows_the_law() {
    let m = kaiming(256, 1024, 9);
    let a = analyze(m.as_ref(), &AnalyzeOptions::default()).unwrap();
    for unit in [Unit::Singular, Unit::Eigen] {
        let h: Histogram = a
            .spectrum
            .histogram(a.sigma.value, unit, 30, HistogramRange::Full);
        assert_eq!(h.counts.iter().sum::<usize>() + h.beyond(), 256);
        let total: f64 = h.expected.iter().sum();
        assert!((total - 256.0).abs() < 1e-6);
        // Counts track the expectation bin by bin (within a few values).
        for (c, e) in h.counts.iter().zip(&h.expected) {
            assert!((*c as f64 - e).abs() < 4.0, "{unit:?}: {c} vs {e}");
        }
    }
}

#[test]
fn fast_meets_its_bound_where_the_band_reduction_runs_in_f32() {
    // From p = 1024 on, Fast rounds the f64 Gram matrix to f32 for the band reduction. A square
    // block is the hardest case (its smallest values reach 0). Bounds: every value within
    // 1e-3·ν₁ of the f64 SVD, every value ≥ 0.1·ν₁ within 1e-5 relative.
    let m = kaiming(1024, 1024, 77);
    let fast = singular_values(m.as_ref(), Precision::Fast, Par::Seq).unwrap();
    let precise = singular_values(m.as_ref(), Precision::Precise, Par::Seq).unwrap();
    let top = precise[0];
    let mut worst_abs = 0.0f64;
    let mut worst_rel = 0.0f64;
    for (f, p) in fast.iter().zip(&precise) {
        worst_abs = worst_abs.max((f - p).abs() / top);
        if *p >= 0.1 * top {
            worst_rel = worst_rel.max((f - p).abs() / p);
        }
    }
    assert!(worst_abs <= 1e-3, "abs {worst_abs:e}");
    assert!(worst_rel <= 1e-5, "rel {worst_rel:e}");
    // The f32 reduction is not exact: the test would not notice a silent f64 fallback
    // otherwise (measured ~1e-6 here; f64 gives ~1e-14).
    assert!(worst_rel > 1e-12, "rel {worst_rel:e}");
}

#[test]
fn extreme_scales_survive_the_f32_band_reduction() {
    // Fast rounds the Gram matrix to f32 from p = 512 on. Entries of 1e25 would overflow f32
    // there (Gram entries ~1e53) and entries of 1e-25 would underflow; both must come out as
    // accurate as at scale 1.
    let base = kaiming(520, 600, 9);
    let reference = singular_values(base.as_ref(), Precision::Precise, Par::Seq).unwrap();
    for scale in [1e-25f64, 1.0, 1e25] {
        let m = Mat::<f64>::from_fn(520, 600, |i, j| base[(i, j)] as f64 * scale);
        let fast = singular_values(m.as_ref(), Precision::Fast, Par::Seq).unwrap();
        assert_eq!(fast.len(), 520);
        let top = reference[0];
        for (f, r) in fast.iter().zip(&reference) {
            let f = f / scale;
            assert!(f.is_finite(), "scale {scale}: {f}");
            assert!((f - r).abs() <= 1e-3 * top, "scale {scale}: {f} vs {r}");
            if *r >= 0.1 * top {
                assert!((f - r).abs() <= 1e-5 * r, "scale {scale}: {f} vs {r}");
            }
        }
    }
}
