//! The bundled demo tells the seed's story, measured through the real loader and scan: early
//! q and k far from MP (in the singular values and in the singular vectors), later layers on
//! MP, v and o closer than q and k, some heads piling up near zero, references on MP.

use std::collections::BTreeMap;
use std::path::Path;

use mpscope::anatomy::{Anatomy, Overrides, Proj};
use mpscope::checkpoint::Checkpoint;
use mpscope::scan::{ComputeOptions, ScanOptions};
use mpscope::spectrum::{Precision, SigmaMode};
use rayon::prelude::*;

struct Scored {
    layer: Option<usize>,
    proj: Proj,
    head: Option<usize>,
    tensor: String,
    ks: f64,
    above: usize,
    below: usize,
    vector_p: Option<f64>,
}

fn scan_demo() -> Vec<Scored> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let ck = Checkpoint::open(dir.to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let jobs = mpscope::scan::plan(&an, &ScanOptions::default());
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    jobs.par_iter()
        .map(|job| {
            let a = mpscope::scan::analyze(&ck, job, &opts, SigmaMode::Entry).unwrap();
            Scored {
                layer: job.block.id.layer,
                proj: job.block.id.proj,
                head: job.block.id.head,
                tensor: job.block.tensor.clone(),
                ks: a.scores.ks,
                above: a.scores.above,
                below: a.scores.below,
                vector_p: a.scores.vector_p,
            }
        })
        .collect()
}

/// Mean over the heads of (layer, proj) of ks and vector_p.
fn head_means(all: &[Scored]) -> BTreeMap<(usize, Proj), (f64, f64)> {
    let mut sums: BTreeMap<(usize, Proj), (f64, f64, usize)> = BTreeMap::new();
    for s in all.iter().filter(|s| s.head.is_some()) {
        let e = sums.entry((s.layer.unwrap(), s.proj)).or_default();
        e.0 += s.ks;
        e.1 += s.vector_p.expect("head blocks get the vector test");
        e.2 += 1;
    }
    sums.into_iter()
        .map(|(k, (ks, p, n))| (k, (ks / n as f64, p / n as f64)))
        .collect()
}

#[test]
fn demo_tells_the_story_in_every_score() {
    let all = scan_demo();
    let means = head_means(&all);
    let last = all.iter().filter_map(|s| s.layer).max().unwrap();
    assert_eq!(last, 7);
    let m = |l: usize, p: Proj| means[&(l, p)];

    for p in [Proj::Q, Proj::K] {
        let ((ks0, vp0), (ksl, vpl)) = (m(0, p), m(last, p));
        // Singular values: far from MP early, on MP late.
        assert!(ks0 > 3.0 * ksl, "{p:?}: layer 0 ks {ks0} vs last {ksl}");
        assert!(ks0 > 0.3, "{p:?}: layer 0 ks {ks0}");
        assert!(ksl < 0.06, "{p:?}: last layer ks {ksl}");
        // Singular vectors: localised early, Gaussian late.
        assert!(
            vp0 < 0.5 * vpl,
            "{p:?}: layer 0 vector_p {vp0} vs last {vpl}"
        );
        assert!(vp0 <= 0.2, "{p:?}: layer 0 vector_p {vp0}");
        assert!(vpl > 0.35, "{p:?}: last layer vector_p {vpl}");
        // Decay with depth: first three layers above the last three in ks, below in vector_p.
        let early = (0..3).map(|l| m(l, p)).collect::<Vec<_>>();
        let late = (last - 2..=last).map(|l| m(l, p)).collect::<Vec<_>>();
        let min_ks_early = early.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let max_ks_late = late.iter().map(|x| x.0).fold(0.0, f64::max);
        assert!(min_ks_early > max_ks_late, "{p:?}: {early:?} vs {late:?}");
        let max_vp_early = early.iter().map(|x| x.1).fold(0.0, f64::max);
        let min_vp_late = late.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        assert!(max_vp_early < min_vp_late, "{p:?}: {early:?} vs {late:?}");
    }

    // v and o closer to MP than q and k.
    let qk_ks = m(0, Proj::Q).0.min(m(0, Proj::K).0);
    let qk_vp = m(0, Proj::Q).1.max(m(0, Proj::K).1);
    for p in [Proj::V, Proj::O] {
        let (ks, vp) = m(0, p);
        assert!(ks < 0.5 * qk_ks, "{p:?}: layer 0 ks {ks} vs q/k {qk_ks}");
        assert!(vp > qk_vp, "{p:?}: layer 0 vector_p {vp} vs q/k {qk_vp}");
    }

    // A pile-up of small singular values in some heads: half a head's values below ν−.
    let piled: Vec<String> = all
        .iter()
        .filter(|s| s.head.is_some() && s.below >= 32)
        .map(|s| format!("L{} {:?} h{}", s.layer.unwrap(), s.proj, s.head.unwrap()))
        .collect();
    assert!(
        piled.len() >= 3,
        "heads with a pile-up near zero: {piled:?}"
    );

    // The three Kaiming-uniform references sit on MP.
    let refs: Vec<&Scored> = all
        .iter()
        .filter(|s| s.tensor.starts_with("reference.kaiming_"))
        .collect();
    assert_eq!(refs.len(), 3);
    for r in refs {
        assert!(
            matches!(r.proj, Proj::Other(_)) && r.layer.is_none(),
            "{}",
            r.tensor
        );
        assert!(r.ks < 0.03, "{}: ks {}", r.tensor, r.ks);
        assert_eq!(r.above, 0, "{}", r.tensor);
    }
}

/// Layer 0's q piles many singular values up near zero (collapsed heads) and carries strong
/// spikes; the `fit` σ must not slide towards zero with them (it once fell to 0.004 against
/// an entry σ of 0.065).
#[test]
fn fit_sigma_stays_near_the_entry_scale_on_a_collapsed_matrix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let ck = Checkpoint::open(dir.to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let q0 = an
        .matrices
        .iter()
        .find(|b| b.id.layer == Some(0) && b.id.proj == Proj::Q)
        .unwrap();
    let job = mpscope::scan::Job {
        block: q0.clone(),
        vectors: false,
        fan_in: q0.cols,
    };
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let a = mpscope::scan::analyze(&ck, &job, &opts, SigmaMode::Fit).unwrap();
    let (entry, fit) = (a.sigmas.entry, a.sigmas.fit);
    assert!(
        fit >= 0.5 * entry - 1e-12 && fit <= 1.25 * entry,
        "fit {fit} vs entry {entry}"
    );
}
