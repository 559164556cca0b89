//! What the generator plants, checked with faer's singular values.

use mpscope::synth::{self, Bulk, Matrix, SynthFamily, SynthProj, SynthSpec};

fn svals(m: &Matrix) -> Vec<f64> {
    m.to_faer().singular_values().unwrap()
}

/// MP upper and lower edges σ(√q ± √p).
fn edges(sigma: f64, m: usize, n: usize) -> (f64, f64) {
    let (p, q) = (m.min(n) as f64, m.max(n) as f64);
    (sigma * (q.sqrt() - p.sqrt()), sigma * (q.sqrt() + p.sqrt()))
}

fn spec() -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Llama, 2, 256, 4);
    s.vocab = 16;
    s.intermediate = Some(128);
    s.seed = 11;
    s
}

#[test]
fn kaiming_bound_and_rms() {
    let s = spec();
    let truth = synth::truth(&s).unwrap();
    for (proj, fan_in) in [(SynthProj::Q, 256usize), (SynthProj::Down, 128)] {
        let m = synth::logical_matrix(&s, 1, proj).unwrap();
        let t = truth.matrix(1, proj).unwrap();
        let bound = (3.0 / fan_in as f64).sqrt();
        assert_eq!(t.bulk, Bulk::KaimingUniform);
        assert!((t.bound.unwrap() - bound).abs() < 1e-12);
        assert!((t.sigma - 1.0 / (fan_in as f64).sqrt()).abs() < 1e-12);
        // bf16 rounding may move a value by half an ulp (2^-9 relative) past the bound.
        let max = m.data.iter().fold(0f32, |a, x| a.max(x.abs())) as f64;
        assert!(max <= bound * (1.0 + 1.0 / 256.0), "{max} > {bound}");
        assert!(max > 0.99 * bound, "{max} never near {bound}");
        let rms =
            (m.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / m.data.len() as f64).sqrt();
        assert!(
            (rms * (fan_in as f64).sqrt() - 1.0).abs() < 0.02,
            "rms {rms}"
        );
        let mean = m.data.iter().map(|&x| x as f64).sum::<f64>() / m.data.len() as f64;
        assert!(mean.abs() < 0.01 * t.sigma * 10.0);
    }
}

#[test]
fn planted_spikes_stand_out_and_plain_blocks_do_not() {
    let mut s = spec();
    s.spikes = synth::parse_list("L0.q:3x4,L1.k.h2:1x5").unwrap();
    let truth = synth::truth(&s).unwrap();

    let t = truth.matrix(0, SynthProj::Q).unwrap();
    assert_eq!(t.spikes.len(), 3);
    let sv = svals(&synth::logical_matrix(&s, 0, SynthProj::Q).unwrap());
    let (_, hi) = edges(t.sigma, 256, 256);
    for (k, sp) in t.spikes.iter().enumerate() {
        assert!((sp.bbp - t.sigma * 256f64.sqrt()).abs() < 1e-9);
        assert!(sv[k] > 1.3 * hi, "spike {k}: {} vs edge {hi}", sv[k]);
        assert!(
            (sv[k] / sp.expected_sv - 1.0).abs() < 0.06,
            "{} vs expected {}",
            sv[k],
            sp.expected_sv
        );
    }
    assert!(sv[3] < 1.04 * hi, "4th value {} above edge {hi}", sv[3]);

    // Unplanted whole matrix: on the MP bulk.
    let sv = svals(&synth::logical_matrix(&s, 1, SynthProj::Q).unwrap());
    assert!(sv[0] < 1.04 * hi && sv[0] > 0.95 * hi, "{} vs {hi}", sv[0]);

    // Head spike: only in head 2's rows of layer 1 k.
    let t = truth.matrix(1, SynthProj::K).unwrap();
    assert!(t.spikes.is_empty());
    assert_eq!(t.heads.len(), 1);
    assert_eq!(
        (t.heads[0].head, t.heads[0].rows, t.heads[0].cols),
        (2, 64, 256)
    );
    let k = synth::logical_matrix(&s, 1, SynthProj::K).unwrap();
    let (_, hhi) = edges(t.sigma, 64, 256);
    let h2 = svals(&k.block(128..192, 0..256));
    assert!(
        h2[0] > 1.5 * hhi && h2[1] < 1.05 * hhi,
        "{:?} vs {hhi}",
        &h2[..2]
    );
    assert!((h2[0] / t.heads[0].spikes[0].expected_sv - 1.0).abs() < 0.08);
    for h in [0, 1, 3] {
        let sv = svals(&k.block(h * 64..(h + 1) * 64, 0..256));
        assert!(sv[0] < 1.05 * hhi, "head {h}: {} vs {hhi}", sv[0]);
    }
}

#[test]
fn collapsed_heads_pile_up_near_zero() {
    let mut s = spec();
    s.collapse = synth::parse_list("L0.v.h1:4,L0.o.h3").unwrap();
    let truth = synth::truth(&s).unwrap();

    let v = synth::logical_matrix(&s, 0, SynthProj::V).unwrap();
    let t = truth.matrix(0, SynthProj::V).unwrap();
    let c = t.heads[0].collapse.as_ref().unwrap();
    assert_eq!((t.heads[0].head, c.rank), (1, 4));
    let (lo, hi) = edges(t.sigma, 64, 256);
    let sv = svals(&v.block(64..128, 0..256));
    assert!(sv[3] > hi, "low-rank part should stand out: {:?}", &sv[..5]);
    let small = sv.iter().filter(|&&x| x < 0.5 * lo).count();
    assert_eq!(small, 60, "{sv:?}");
    assert!(sv[4] <= 1.3 * c.noise_edges[1] && sv[63] >= 0.5 * c.noise_edges[0]);
    // Entry σ is kept.
    let blk = v.block(64..128, 0..256);
    let rms =
        (blk.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / blk.data.len() as f64).sqrt();
    assert!((rms / t.sigma - 1.0).abs() < 0.25, "{rms} vs {}", t.sigma);
    // Neighbouring head untouched.
    let sv0 = svals(&v.block(0..64, 0..256));
    assert!(sv0[63] > 0.9 * lo);

    // o: head 3 is columns 192..256; default rank min(256, 64)/8 = 8.
    let o = synth::logical_matrix(&s, 0, SynthProj::O).unwrap();
    let t = truth.matrix(0, SynthProj::O).unwrap();
    assert_eq!(t.heads[0].collapse.as_ref().unwrap().rank, 8);
    let (lo, _) = edges(t.sigma, 256, 64);
    let sv = svals(&o.block(0..256, 192..256));
    assert_eq!(sv.iter().filter(|&&x| x < 0.5 * lo).count(), 56);
    let sv = svals(&o.block(0..256, 0..64));
    assert!(sv[63] > 0.9 * lo);
}

#[test]
fn heavy_tails_keep_sigma_and_grow_tails() {
    let mut s = spec();
    s.heavy_tail = synth::parse_list("L1.q:t3,L1.k.h1:t4").unwrap();
    let truth = synth::truth(&s).unwrap();
    let q = synth::logical_matrix(&s, 1, SynthProj::Q).unwrap();
    let t = truth.matrix(1, SynthProj::Q).unwrap();
    assert_eq!(t.bulk, Bulk::StudentT { dof: 3 });
    let x: Vec<f64> = q.data.iter().map(|&v| v as f64).collect();
    let m2 = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let m4 = x.iter().map(|v| v.powi(4)).sum::<f64>() / x.len() as f64;
    assert!(
        (m2.sqrt() / t.sigma - 1.0).abs() < 0.1,
        "rms {} vs σ {}",
        m2.sqrt(),
        t.sigma
    );
    assert!(m4 / (m2 * m2) > 5.0, "kurtosis {}", m4 / (m2 * m2));
    let k = synth::logical_matrix(&s, 1, SynthProj::K).unwrap();
    let kt = truth.matrix(1, SynthProj::K).unwrap();
    assert_eq!(kt.heads[0].bulk, Bulk::StudentT { dof: 4 });
    let max_h1 = k
        .block(64..128, 0..256)
        .data
        .iter()
        .fold(0f32, |a, v| a.max(v.abs())) as f64;
    let max_h0 = k
        .block(0..64, 0..256)
        .data
        .iter()
        .fold(0f32, |a, v| a.max(v.abs())) as f64;
    assert!(max_h1 > 5.0 * kt.sigma && max_h0 <= 3f64.sqrt() * kt.sigma * 1.004);
}

#[test]
fn demo_fits_and_tells_the_story() {
    let s = synth::preset("demo").unwrap();
    let size = synth::total_size(&s).unwrap();
    assert!(size < 10_000_000, "demo is {size} bytes");
    let truth = synth::truth(&s).unwrap();
    let d = truth.head_dim;
    // Mean over heads of ν₁ / ν+ for a q or k matrix of a layer.
    let head_edge_ratio = |layer: usize, proj: SynthProj| {
        let m = synth::logical_matrix(&s, layer, proj).unwrap();
        let t = truth.matrix(layer, proj).unwrap();
        let (_, hi) = edges(t.sigma, d, m.cols);
        let n = m.rows / d;
        (0..n)
            .map(|h| svals(&m.block(h * d..(h + 1) * d, 0..m.cols))[0] / hi)
            .sum::<f64>()
            / n as f64
    };
    let (q0, q7) = (
        head_edge_ratio(0, SynthProj::Q),
        head_edge_ratio(7, SynthProj::Q),
    );
    let v0 = head_edge_ratio(0, SynthProj::V);
    assert!(
        q0 > 1.5 && q7 < 1.06 && v0 < q0,
        "q0 {q0}, q7 {q7}, v0 {v0}"
    );
    for (m, n) in [(128, 3072), (256, 512), (512, 512)] {
        let name = format!("reference.kaiming_{m}x{n}.weight");
        let t = truth.named(&name).unwrap();
        assert!((t.bound.unwrap() - (3.0 / n as f64).sqrt()).abs() < 1e-12);
        let st = synth::stored_tensor(&s, &name).unwrap();
        assert_eq!(st.shape, vec![m, n]);
        let sv = svals(&Matrix {
            rows: m,
            cols: n,
            data: st.data,
        });
        let (lo, hi) = edges(t.sigma, m, n);
        assert!(
            sv[0] < 1.03 * hi && sv[0] > 0.97 * hi,
            "{name}: {} vs {hi}",
            sv[0]
        );
        if m < n {
            assert!(sv[m - 1] > 0.9 * lo);
        }
    }
}
