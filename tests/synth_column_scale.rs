//! Outlier input features (`ColumnScaleSpec`): grammar, what is planted, truth, determinism.

use mpscope::spectrum::{AnalyzeOptions, analyze};
use mpscope::synth::{
    self, ColumnScaleSpec, Matrix, Span, SynthFamily, SynthProj, SynthSpec, Target, parse_list,
};

fn spec() -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Llama, 2, 256, 4);
    s.vocab = 16;
    s.intermediate = Some(128);
    s.seed = 11;
    s
}

/// Root mean square of each column of `m`.
fn column_rms(m: &Matrix) -> Vec<f64> {
    (0..m.cols)
        .map(|c| {
            let ss: f64 = (0..m.rows).map(|r| (m.get(r, c) as f64).powi(2)).sum();
            (ss / m.rows as f64).sqrt()
        })
        .collect()
}

fn spread(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(0.0, f64::max);
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    max / min
}

fn rms(m: &Matrix) -> f64 {
    (m.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / m.data.len() as f64).sqrt()
}

fn vector_p(m: &Matrix) -> f64 {
    let opts = AnalyzeOptions {
        vector_p: true,
        ..AnalyzeOptions::default()
    };
    analyze(m.to_faer().as_ref(), &opts)
        .unwrap()
        .scores
        .vector_p
        .unwrap()
}

/// (Σv²)² / Σv⁴ / n: about 1/3 for a Gaussian vector, small for a localised one.
fn participation(v: &[f64]) -> f64 {
    let (s2, s4) = v
        .iter()
        .fold((0.0, 0.0), |(a, b), x| (a + x * x, b + x.powi(4)));
    s2 * s2 / s4 / v.len() as f64
}

#[test]
fn column_scale_specs_parse_and_round_trip() {
    let c: ColumnScaleSpec = "q".parse().unwrap();
    assert_eq!((c.target, c.tau), (Target::all(SynthProj::Q), 1.0));
    let c: ColumnScaleSpec = "L0-1.k:1.5".parse().unwrap();
    assert_eq!(c.target.layers, Some(Span { first: 0, last: 1 }));
    assert_eq!(
        (c.target.proj, c.target.heads, c.tau),
        (SynthProj::K, None, 1.5)
    );
    let c: ColumnScaleSpec = "L2.q.h3:0.5".parse().unwrap();
    assert_eq!((c.target, c.tau), (Target::head(2, SynthProj::Q, 3), 0.5));
    assert_eq!(c.to_string().parse::<ColumnScaleSpec>().unwrap(), c);
    assert_eq!(
        parse_list::<ColumnScaleSpec>("q:0.8, L1.o").unwrap().len(),
        2
    );
    for (bad, says) in [
        ("q:0", "τ `0`"),
        ("q:-1", "τ `-1`"),
        ("q:big", "τ `big`"),
        ("q:9", "(0, 4]"),
        ("gate.h0:1", "no heads"),
        ("z:1", "not a projection"),
        ("", "empty"),
    ] {
        let e = bad.parse::<ColumnScaleSpec>().unwrap_err().to_string();
        assert!(e.contains("column-scale spec"), "{bad}: {e}");
        assert!(e.contains(says), "{bad}: {e}");
        assert!(e.contains("grammar"), "{bad}: {e}");
    }
    assert!(parse_list::<ColumnScaleSpec>("q,,k").is_err());
}

#[test]
fn targets_outside_the_model_are_rejected() {
    for bad in ["L2.q", "L0.k.h4", "L0.gate.h0"] {
        let mut s = spec();
        s.column_scale = match parse_list(bad) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let e = synth::truth(&s).unwrap_err().to_string();
        assert!(e.contains(bad.split(':').next().unwrap()), "{bad}: {e}");
    }
}

#[test]
fn whole_matrix_scales_columns_keep_sigma_and_break_gaussian_vectors() {
    let mut s = spec();
    s.column_scale = parse_list("L0.q:1").unwrap();
    let truth = synth::truth(&s).unwrap();
    let t = truth.matrix(0, SynthProj::Q).unwrap();
    let cs = t.column_scale.as_ref().expect("recorded in truth");
    assert_eq!(cs.tau, 1.0);
    assert!(cs.min < 0.3 && cs.max > 3.0, "{cs:?}");
    assert!(cs.participation < 0.4, "{cs:?}");
    assert!(
        truth
            .matrix(1, SynthProj::Q)
            .unwrap()
            .column_scale
            .is_none()
    );
    assert!(
        truth
            .matrix(0, SynthProj::K)
            .unwrap()
            .column_scale
            .is_none()
    );

    let q0 = synth::logical_matrix(&s, 0, SynthProj::Q).unwrap();
    let q1 = synth::logical_matrix(&s, 1, SynthProj::Q).unwrap();
    // Columns carry very different energy; the whole keeps the Kaiming σ.
    assert!(spread(&column_rms(&q0)) > 10.0);
    assert!(spread(&column_rms(&q1)) < 1.5);
    assert!((rms(&q0) / t.sigma - 1.0).abs() < 0.1, "{}", rms(&q0));
    // Column RMS follows the recorded extremes.
    let crms = column_rms(&q0);
    let top = crms.iter().copied().fold(0.0, f64::max) / t.sigma;
    assert!((top / cs.max - 1.0).abs() < 0.15, "{top} vs {}", cs.max);

    // Right singular vectors localise: the head vector test rejects, the plain one does not.
    let p_scaled = vector_p(&q0.block(0..64, 0..256));
    let p_plain = vector_p(&q1.block(0..64, 0..256));
    assert!(p_scaled < 0.1, "{p_scaled}");
    assert!(p_plain > 0.3, "{p_plain}");
}

#[test]
fn head_targets_scale_only_their_block() {
    let mut s = spec();
    s.column_scale = parse_list("L1.k.h2:1.2,L0.o.h1:1").unwrap();
    let truth = synth::truth(&s).unwrap();

    let t = truth.matrix(1, SynthProj::K).unwrap();
    assert!(t.column_scale.is_none());
    assert_eq!(t.heads.len(), 1);
    assert_eq!(t.heads[0].head, 2);
    assert_eq!(t.heads[0].column_scale.as_ref().unwrap().tau, 1.2);
    let k = synth::logical_matrix(&s, 1, SynthProj::K).unwrap();
    for h in 0..4 {
        let sp = spread(&column_rms(&k.block(h * 64..(h + 1) * 64, 0..256)));
        if h == 2 {
            assert!(sp > 10.0, "head {h}: {sp}");
        } else {
            assert!(sp < 2.5, "head {h}: {sp}");
        }
    }

    // o: head 1 is columns 64..128.
    let o = synth::logical_matrix(&s, 0, SynthProj::O).unwrap();
    let crms = column_rms(&o);
    assert!(spread(&crms[64..128]) > 5.0);
    assert!(spread(&crms[..64]) < 1.5 && spread(&crms[128..]) < 1.5);
}

#[test]
fn spikes_in_a_scaled_block_are_localised() {
    let mut plain = spec();
    plain.spikes = parse_list("L0.q:1x8").unwrap();
    let mut scaled = plain.clone();
    scaled.column_scale = parse_list("L0.q:1.2").unwrap();
    let top_v = |s: &SynthSpec| {
        let m = synth::logical_matrix(s, 0, SynthProj::Q).unwrap().to_faer();
        let svd = m.thin_svd().unwrap();
        (0..m.ncols())
            .map(|j| svd.V()[(j, 0)])
            .collect::<Vec<f64>>()
    };
    let (pp, ps) = (
        participation(&top_v(&plain)),
        participation(&top_v(&scaled)),
    );
    assert!(pp > 0.25, "{pp}");
    assert!(ps < 0.5 * pp, "{ps} vs {pp}");
    // The spike still stands out where the truth says.
    let t = synth::truth(&scaled).unwrap();
    let sp = &t.matrix(0, SynthProj::Q).unwrap().spikes[0];
    let sv = synth::logical_matrix(&scaled, 0, SynthProj::Q)
        .unwrap()
        .to_faer()
        .singular_values()
        .unwrap();
    assert!(
        (sv[0] / sp.expected_sv - 1.0).abs() < 0.15,
        "{} vs {}",
        sv[0],
        sp.expected_sv
    );
}

#[test]
fn deterministic_and_thread_count_independent() {
    let mut s = spec();
    s.column_scale = parse_list("q:0.8,L1.k.h0:1.5,o:0.5").unwrap();
    s.spikes = parse_list("L0.q:2x5,L1.k.h0:1x4").unwrap();
    let names: Vec<String> = synth::tensor_shapes(&s)
        .unwrap()
        .into_iter()
        .filter(|(_, shape)| shape.len() == 2)
        .map(|(n, _)| n)
        .collect();
    let render = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            names
                .iter()
                .map(|n| synth::stored_tensor(&s, n).unwrap().data)
                .collect::<Vec<_>>()
        })
    };
    let one = render(1);
    assert_eq!(one, render(2));
    assert_eq!(one, render(3));
    let mut other = s.clone();
    other.seed += 1;
    let q = names
        .iter()
        .position(|n| n.ends_with("0.self_attn.q_proj.weight"))
        .unwrap();
    assert_ne!(
        synth::stored_tensor(&other, &names[q]).unwrap().data,
        one[q]
    );
}

#[test]
fn written_truth_records_column_scales_and_omits_them_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let plain = spec();
    synth::write(dir.path(), &plain).unwrap();
    let text = std::fs::read_to_string(dir.path().join("truth.json")).unwrap();
    assert!(
        !text.contains("column_scale"),
        "plain specs keep their truth.json"
    );

    let mut s = spec();
    s.column_scale = parse_list("L0.q:0.7").unwrap();
    let written = synth::write(dir.path(), &s).unwrap();
    let text = std::fs::read_to_string(dir.path().join("truth.json")).unwrap();
    let back: synth::Truth = serde_json::from_str(&text).unwrap();
    assert_eq!(back, written);
    assert_eq!(back.spec.column_scale, s.column_scale);
    assert_eq!(
        back.matrix(0, SynthProj::Q)
            .unwrap()
            .column_scale
            .as_ref()
            .unwrap()
            .tau,
        0.7
    );
}
