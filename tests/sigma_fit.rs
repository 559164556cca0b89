//! The `fit` σ on planted structure: it finds the planted bulk σ, or says it failed — never a
//! silent fallback to the `entry` σ.

use mpscope::spectrum::{entry_sigma, fit_sigma_checked};
use mpscope::synth::{self, SynthFamily, SynthProj, SynthSpec};

fn spec() -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Llama, 2, 256, 4);
    s.vocab = 16;
    s.intermediate = Some(128);
    s.seed = 5;
    s
}

fn svals(m: &synth::Matrix) -> Vec<f64> {
    m.to_faer().singular_values().unwrap()
}

/// A collapsed head (rank 4 plus noise of relative size ε) has 60 of its 64 values piled far
/// below the entry-σ bulk: the fit must find the noise's σ = αε, within 10%.
#[test]
fn collapsed_head_fits_the_noise_bulk() {
    for eps in [0.05, 0.2, 0.5] {
        let mut s = spec();
        s.collapse = synth::parse_list(&format!("L0.v.h1:4@{eps}")).unwrap();
        let truth = synth::truth(&s).unwrap();
        let c = truth.matrix(0, SynthProj::V).unwrap().heads[0]
            .collapse
            .clone()
            .unwrap();
        let v = synth::logical_matrix(&s, 0, SynthProj::V).unwrap();
        let sv = svals(&v.block(64..128, 0..256));
        let fit = fit_sigma_checked(&sv, 64, 256);
        let noise = c.alpha * c.eps;
        assert!(!fit.failed, "ε {eps}: fit failed");
        assert!(
            (fit.sigma / noise - 1.0).abs() < 0.1,
            "ε {eps}: fit σ {} vs planted noise σ {noise} (entry {})",
            fit.sigma,
            entry_sigma(&sv, 64, 256)
        );
        assert!(fit.kept >= 56, "ε {eps}: bulk of {} values", fit.kept);
    }
}

/// Spiked heads and plain heads: the fit ignores the spikes and recovers the bulk σ within 5%.
#[test]
fn spiked_and_plain_heads_fit_the_planted_sigma() {
    let mut s = spec();
    s.spikes = synth::parse_list("L1.k.h1:3x4,L1.q.h2:8x3").unwrap();
    let truth = synth::truth(&s).unwrap();
    for (proj, rows) in [(SynthProj::Q, 256), (SynthProj::K, 128)] {
        let m = synth::logical_matrix(&s, 1, proj).unwrap();
        let t = truth.matrix(1, proj).unwrap();
        let heads = rows / 64;
        for h in 0..heads {
            let sv = svals(&m.block(h * 64..(h + 1) * 64, 0..256));
            let fit = fit_sigma_checked(&sv, 64, 256);
            assert!(!fit.failed, "{proj:?} h{h}: fit failed");
            assert!(
                (fit.sigma / t.sigma - 1.0).abs() < 0.05,
                "{proj:?} h{h}: fit σ {} vs planted {}",
                fit.sigma,
                t.sigma
            );
        }
    }
}

/// Values with no MP-shaped part at all (a geometric ladder) cannot be fitted: the fit says
/// so and reports the entry σ.
#[test]
fn a_spectrum_without_a_bulk_is_flagged() {
    let sv: Vec<f64> = (0..64).map(|i| 10.0 * 0.8f64.powi(i)).collect();
    let fit = fit_sigma_checked(&sv, 64, 256);
    assert!(fit.failed, "{fit:?}");
    assert_eq!(fit.sigma, entry_sigma(&sv, 64, 256));
    assert_eq!(fit.kept, 0);
}
