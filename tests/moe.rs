//! Mixture of Experts end to end, on files written by `mpscope synth --family mixtral`: the
//! safetensors (`block_sparse_moe.experts.E.w1/w2/w3`) and the GGUF (3-D `ffn_*_exps`) open,
//! every routed expert is its own block, each expert's spectrum through the real scan equals
//! the spectrum of the same expert matrix computed directly, and the report's JSON and CSV
//! carry the `expert` column.

mod common;
use common::{mpscope, synth_mixtral};

use std::collections::BTreeSet;

use mpscope::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use mpscope::checkpoint::{Checkpoint, Quant};
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{AnalyzeOptions, Spectrum};
use mpscope::synth::{self, GgufQuant, Matrix, SynthDtype, SynthFamily, SynthProj, SynthSpec};

/// 2 layers, hidden 64, 4 heads / 2 kv heads, 3 experts of width 96.
fn spec(dtype: SynthDtype) -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Mixtral, 2, 64, 4);
    s.kv_heads = 2;
    s.experts = 3;
    s.intermediate = Some(96);
    s.vocab = 64;
    s.dtype = dtype;
    s.seed = 5;
    s
}

fn proj_of(p: Proj) -> SynthProj {
    match p {
        Proj::Gate => SynthProj::Gate,
        Proj::Up => SynthProj::Up,
        Proj::Down => SynthProj::Down,
        p => panic!("{p} has no experts"),
    }
}

/// `m` stored as `quant` and read back (row by row, as llama.cpp quantizes rows).
fn through(quant: GgufQuant, m: &Matrix) -> Matrix {
    let mut data = Vec::with_capacity(m.data.len());
    for row in m.data.chunks_exact(m.cols) {
        if quant == GgufQuant::F16 {
            data.extend(row.iter().map(|&x| half::f16::from_f32(x).to_f32()));
            continue;
        }
        let mut bytes = Vec::new();
        quant.quantize(row, &mut bytes);
        let kind = Quant::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(quant.as_str()))
            .expect("a decodable quant");
        let mut back = vec![0f32; m.cols];
        kind.dequantize(&bytes, &mut back);
        data.extend(back);
    }
    Matrix { data, ..*m }
}

/// Scans every expert of the checkpoint in `dir` and compares each spectrum with the one of
/// `want(layer, proj, expert)` computed directly; returns the experts seen.
fn experts_match(dir: &std::path::Path, want: impl Fn(usize, SynthProj, usize) -> Matrix) -> usize {
    let ck = Checkpoint::open(dir.to_str().unwrap()).expect("open");
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).expect("anatomy");
    assert_eq!(an.num_experts, Some(3));
    assert_eq!(an.experts_used, Some(2));
    assert!(an.notes().is_empty(), "{:?}", an.notes());
    let opts = ScanOptions {
        projs: "experts".parse().unwrap(),
        ..Default::default()
    };
    let jobs = scan::plan(&an, &opts);
    let compute = ComputeOptions {
        precision: Default::default(),
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let mut seen = BTreeSet::new();
    for job in &jobs {
        let id = job.block.id;
        let (Some(layer), Some(e)) = (id.layer, id.expert) else {
            panic!("{} selected by `experts`", job.block.name);
        };
        assert!(an.heads(&job.block).is_empty());
        let got = scan::compute(&ck, job, &compute).expect("spectrum");
        let m = want(layer, proj_of(id.proj), e);
        let direct = Spectrum::compute(
            m.to_faer().as_ref(),
            &AnalyzeOptions {
                fan_in: Some(m.cols),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((job.block.rows, job.block.cols), (m.rows, m.cols));
        assert_eq!(got.values.len(), direct.values.len());
        for (a, b) in got.values.iter().zip(&direct.values) {
            assert!(
                (a - b).abs() <= 1e-12 * direct.values[0],
                "{}: {a} vs {b}",
                job.block.name
            );
        }
        assert!(seen.insert((layer, id.proj, e)), "{} twice", job.block.name);
    }
    assert_eq!(
        seen.len(),
        2 * 3 * 3,
        "2 layers × gate, up, down × 3 experts"
    );
    // Expert 1's matrices differ from expert 0's: the expert index is not decorative.
    let e0 = MatrixId::whole(Some(0), Proj::Up).with_expert(0);
    let e1 = e0.with_expert(1);
    let (b0, b1) = (an.block(e0).unwrap(), an.block(e1).unwrap());
    assert_ne!(
        ck.decode_f64(&b0.selection).unwrap(),
        ck.decode_f64(&b1.selection).unwrap()
    );
    seen.len()
}

#[test]
fn safetensors_experts_are_the_experts_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(SynthDtype::Bf16);
    synth::write(dir.path(), &spec).unwrap();
    experts_match(dir.path(), |l, p, e| {
        synth::expert_matrix(&spec, l, p, e).unwrap()
    });
}

#[test]
fn gguf_stacked_experts_are_the_experts_written_and_quantized() {
    for quant in [GgufQuant::F16, GgufQuant::Q8_0, GgufQuant::Q4_1] {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(SynthDtype::F16);
        synth::write_gguf(dir.path(), &spec, quant).unwrap();
        let ck = Checkpoint::open(dir.path().to_str().unwrap()).unwrap();
        let gate = &ck.tensors()[ck
            .tensor_index("model.layers.1.mlp.experts.gate_proj.weight")
            .unwrap()];
        assert_eq!(
            gate.shape,
            [3, 96, 64],
            "{quant}: one 3-D tensor per projection"
        );
        assert_eq!(gate.dtype.name().to_lowercase(), quant.as_str());
        assert!(
            ck.tensor_index("model.layers.0.mlp.gate.weight").is_some(),
            "router"
        );
        let cfg = ck.config().unwrap();
        assert_eq!((cfg.num_experts, cfg.experts_used), (Some(3), Some(2)));
        experts_match(dir.path(), |l, p, e| {
            through(quant, &synth::expert_matrix(&spec, l, p, e).unwrap())
        });
    }
}

/// The binary end to end: `synth --family mixtral`, then `report` as JSON and CSV with the
/// `expert` column (a number for routed experts, null or empty elsewhere), `--proj router`,
/// and `inspect` naming the expert count.
#[test]
fn report_has_an_expert_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    synth_mixtral(dir.path(), &[]);
    let out = mpscope(&["report", path, "--format", "json", "--proj", "o,moe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["model"]["experts"], 3);
    let rows = doc["matrices"].as_array().unwrap();
    let experts: Vec<(u64, &str, u64)> = rows
        .iter()
        .filter(|m| !m["expert"].is_null())
        .map(|m| {
            (
                m["layer"].as_u64().unwrap(),
                m["proj"].as_str().unwrap(),
                m["expert"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(experts.len(), 2 * 3 * 3);
    assert_eq!(
        experts[..4],
        [(0, "gate", 0), (0, "gate", 1), (0, "gate", 2), (0, "up", 0)]
    );
    let w3 = rows
        .iter()
        .find(|m| m["proj"] == "up" && m["expert"] == 2 && m["layer"] == 1)
        .unwrap();
    assert_eq!(
        w3["tensor"],
        "model.layers.1.block_sparse_moe.experts.2.w3.weight"
    );
    assert_eq!(
        (w3["rows"].as_u64(), w3["cols"].as_u64()),
        (Some(96), Some(64))
    );
    let others: BTreeSet<&str> = rows
        .iter()
        .filter(|m| m["expert"].is_null())
        .map(|m| m["proj"].as_str().unwrap())
        .collect();
    assert_eq!(others, BTreeSet::from(["o", "router"]));
    assert!(
        rows.iter()
            .all(|m| m.as_object().unwrap().contains_key("expert"))
    );

    let out = mpscope(&[
        "report",
        path,
        "--format",
        "csv",
        "--proj",
        "router,experts",
        "--layers",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..6],
        ["tensor", "layer", "proj", "head", "expert", "rows"]
    );
    let cells: Vec<Vec<&str>> = lines.map(|l| l.split(',').take(7).collect()).collect();
    assert_eq!(cells.len(), 3 * 3 + 1);
    assert_eq!(
        cells[0],
        [
            "model.layers.1.block_sparse_moe.experts.0.w1.weight",
            "1",
            "gate",
            "",
            "0",
            "96",
            "64"
        ]
    );
    assert_eq!(
        cells[9],
        [
            "model.layers.1.block_sparse_moe.gate.weight",
            "1",
            "router",
            "",
            "",
            "3",
            "64"
        ]
    );

    let out = mpscope(&[
        "report", path, "--format", "table", "--proj", "experts", "--layers", "0",
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("0      down e2  64x96")),
        "{table}"
    );

    // `--top` ranks experts with everything else.
    let out = mpscope(&[
        "report",
        path,
        "--format",
        "json",
        "--top",
        "4",
        "--proj",
        "experts,o",
        "--no-heads",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = doc["matrices"].as_array().unwrap();
    assert_eq!((doc["ranked_by"].as_str(), top.len()), (Some("ks"), 4));
    assert!(top.iter().any(|m| m["expert"].is_u64()), "{top:?}");
    let ks: Vec<f64> = top.iter().map(|m| m["ks"].as_f64().unwrap()).collect();
    assert!(ks.windows(2).all(|w| w[0] >= w[1]), "{ks:?}");

    let out = mpscope(&["inspect", path, "--ascii"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("experts   3 per layer, 2 per token"),
        "{text}"
    );
    assert!(text.contains("96x64 x3e"), "{text}");
}
