//! `mpscope report`: all three formats parsed back, filters, exit statuses, and results equal
//! to direct engine calls.

mod common;
use common::{mpscope, synth_llama};

use std::sync::Arc;

use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::Checkpoint;
use mpscope::report;
use mpscope::scan::{self, ComputeOptions, ScanOptions};
use mpscope::spectrum::{AnalyzeOptions, Precision, SigmaMode, Spectrum};

#[test]
fn json_has_the_documented_schema_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let out = mpscope(&[
        "report",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
        "--values",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["model"];
    assert_eq!(m["family"], "llama");
    assert_eq!(m["layers"], 3);
    assert_eq!(m["heads"], 4);
    assert_eq!(m["kv_heads"], 2);
    assert_eq!(m["head_dim"], 32);
    assert!(m["dtypes"]["bf16"].as_u64().unwrap() > 0);
    assert_eq!(v["sigma_mode"], "entry");
    let mats = v["matrices"].as_array().unwrap();
    // Per layer: q, k, v, o, gate, up, down wholes + 4 + 2 + 2 + 4 heads = 19; no embeddings.
    assert_eq!(mats.len(), 3 * 19);
    let keys = [
        "tensor",
        "layer",
        "proj",
        "head",
        "rows",
        "cols",
        "dtype",
        "sigma",
        "mp_min",
        "mp_max",
        "ks",
        "above",
        "below",
        "edge_ratio",
        "outlier_mass",
        "stable_rank",
        "vector_p",
        "singular_values",
        "error",
    ];
    for mat in mats {
        for k in keys {
            assert!(mat.get(k).is_some(), "{k} missing in {mat}");
        }
        assert!(mat["error"].is_null());
        let vals = mat["singular_values"].as_array().unwrap();
        let p = mat["rows"]
            .as_u64()
            .unwrap()
            .min(mat["cols"].as_u64().unwrap());
        assert_eq!(vals.len() as u64, p);
        let head = &mat["head"];
        // vector_p is computed for heads, not for wholes by default.
        assert_eq!(head.is_null(), mat["vector_p"].is_null(), "{mat}");
    }
    let heads = mats.iter().filter(|m| !m["head"].is_null()).count();
    assert_eq!(heads, 3 * 12);
    // The same parser reads a report matrix and the explorer's `e` export; with the values
    // come σ of every mode (what the explorer needs to reopen the report), and no shuffled
    // values without --randomize.
    let recs: Vec<report::MatrixRecord> = serde_json::from_value(v["matrices"].clone()).unwrap();
    assert!(
        recs.iter().all(|r| r.sigmas.is_some()
            && r.singular_values.is_some()
            && r.shuffled_values.is_none())
    );
    let k1 = mats
        .iter()
        .find(|m| m["layer"] == 1 && m["proj"] == "k" && m["head"].is_null())
        .unwrap();
    assert_eq!(k1["above"], 2, "two planted spikes in L1 k: {k1}");
    assert_eq!(k1["tensor"], "model.layers.1.self_attn.k_proj.weight");
}

/// Position of a CSV column.
fn col(name: &str) -> usize {
    report::CSV_COLUMNS.iter().position(|c| *c == name).unwrap()
}

#[test]
fn csv_has_the_same_columns_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let p = dir.path().to_str().unwrap();
    let out = mpscope(&[
        "report",
        p,
        "--format",
        "csv",
        "--proj",
        "q,k",
        "--layers",
        "0,2",
        "--no-heads",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, report::CSV_COLUMNS);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows.len(),
        4,
        "q and k of layers 0 and 2, whole only:\n{text}"
    );
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert!(r[1] == "0" || r[1] == "2");
        assert!(r[2] == "q" || r[2] == "k");
        assert_eq!(r[3], "", "whole matrices have no head");
        // By name: columns were added before `ks` (sigma_fit_failed), which shifted it.
        let ks_col = header.iter().position(|h| *h == "ks").unwrap();
        let ks: f64 = r[ks_col].parse().unwrap();
        assert!((0.0..=1.0).contains(&ks));
    }
    let out = mpscope(&[
        "report",
        p,
        "--format",
        "csv",
        "--proj",
        "v",
        "--sigma",
        "fit",
        "--vectors",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3 * 3, "v whole + 2 heads per layer");
    assert!(
        rows.iter()
            .all(|r| !r.split(',').nth(col("vector_p")).unwrap().is_empty()),
        "vector_p everywhere with --vectors"
    );
}

#[test]
fn table_summarises_heads_and_depth_and_writes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let file = dir.path().join("out.txt");
    let out = mpscope(&[
        "report",
        dir.path().to_str().unwrap(),
        "--format",
        "table",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("heads: mean ks / worst ks"), "{text}");
    assert!(text.contains("4: "), "q rows summarise 4 heads:\n{text}");
    assert!(text.contains("per layer, mean over heads"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("layer  q ks")), "{text}");
}

#[test]
fn bad_input_exits_2_and_failed_blocks_exit_1_with_the_rest_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = mpscope(&["report", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = mpscope(&["report", dir.path().to_str().unwrap(), "--layers", "3-1"]);
    assert_eq!(out.status.code(), Some(2));

    // A checkpoint with one NaN in layer 0's q.
    let f = dir.path().join("nan.safetensors");
    let n = 16 * 16;
    let mut q: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 500.0)
        .collect();
    q[5] = f32::NAN;
    let k: Vec<f32> = (0..n)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 500.0)
        .collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let header = format!(
        r#"{{"model.layers.0.self_attn.q_proj.weight":{{"dtype":"F32","shape":[16,16],"data_offsets":[0,{a}]}},"model.layers.0.self_attn.k_proj.weight":{{"dtype":"F32","shape":[16,16],"data_offsets":[{a},{b}]}}}}"#,
        a = n * 4,
        b = n * 8
    );
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend(bytes(&q));
    file.extend(bytes(&k));
    std::fs::write(&f, file).unwrap();
    let out = mpscope(&["report", f.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mats = v["matrices"].as_array().unwrap();
    assert_eq!(mats.len(), 2);
    let err = mats[0]["error"].as_str().unwrap();
    assert!(
        err.contains("q_proj") && err.to_lowercase().contains("non-finite"),
        "{err}"
    );
    assert!(mats[0]["ks"].is_null());
    assert!(mats[1]["error"].is_null() && mats[1]["ks"].is_number());
}

#[test]
fn report_results_equal_direct_engine_calls() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let ck = Checkpoint::open(dir.path().to_str().unwrap()).unwrap();
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default()).unwrap();
    let jobs = scan::plan(&an, &ScanOptions::default());
    let opts = ComputeOptions {
        precision: Precision::Fast,
        initializer_range: None,
        randomize: false,
        cache: None,
    };
    let ck = Arc::new(ck);
    let r = report::run(
        Arc::clone(&ck),
        jobs.clone(),
        opts,
        SigmaMode::Entry,
        2,
        |_| {},
    )
    .unwrap();
    assert_eq!(r.entries.len(), jobs.len());
    for (job, e) in jobs.iter().zip(&r.entries) {
        assert_eq!(job.block, e.block);
        let m = ck.decode_f32(&job.block.selection).unwrap();
        let direct = Spectrum::compute(
            m.as_ref(),
            &AnalyzeOptions {
                vector_p: job.vectors,
                fan_in: Some(job.fan_in),
                ..AnalyzeOptions::default()
            },
        )
        .unwrap();
        let got = &e.result.as_ref().unwrap().spectrum;
        assert_eq!(got.values, direct.values, "{}", job.block.name);
        assert_eq!(got.vector_p, direct.vector_p, "{}", job.block.name);
    }
}

/// Runs `mpscope report` on `dir` with `$COLUMNS` set to `columns`.
fn report_at(columns: &str, dir: &std::path::Path, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpscope"))
        .arg("report")
        .arg(dir)
        .args(extra)
        .env("COLUMNS", columns)
        .arg("--no-cache")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn table_fits_the_width_it_is_given_and_keeps_every_column_when_wide() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let wide = report_at("200", dir.path(), &["--format", "table"]);
    let header = wide.lines().find(|l| l.starts_with("layer  proj")).unwrap();
    for col in [
        "dtype",
        "sigma",
        "s.rank",
        "vec_p",
        "alpha",
        "warning",
        "heads: mean ks / worst ks",
    ] {
        assert!(header.contains(col), "{header}");
    }
    // Kaiming blocks of this size mostly come out under-trained (α > 6).
    assert!(wide.contains(" under "), "{wide}");
    assert!(wide.chars().filter(|c| *c == '\n').count() > 20);
    assert!(wide.lines().all(|l| !l.starts_with("  heads")), "{wide}");
    for columns in ["80", "60"] {
        let text = report_at(columns, dir.path(), &["--format", "table"]);
        let limit: usize = columns.parse().unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= limit, "{columns}: {line}\n{text}");
        }
        // Nothing lost that matters: ks on every matrix row, the heads on lines of their own.
        let header = text.lines().find(|l| l.starts_with("layer  proj")).unwrap();
        assert!(
            header.contains("ks") && header.contains("alpha") && !header.contains("dtype"),
            "{header}"
        );
        assert!(text.contains("  heads 2: "), "{text}");
        assert!(text.contains("per layer, mean over heads"), "{text}");
    }
    // Unset or unusable $COLUMNS and no terminal: 80.
    let text = report_at("", dir.path(), &["--format", "table"]);
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    // CSV keeps every column whatever the width.
    let csv = report_at("40", dir.path(), &["--format", "csv"]);
    assert_eq!(csv.lines().next().unwrap(), report::CSV_COLUMNS.join(","));
}

#[test]
fn top_ranks_the_strangest_blocks_in_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "L1.k:2x5");
    let json = report_at("80", dir.path(), &["--format", "json", "--top", "5"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ranked_by"], "ks");
    let mats = v["matrices"].as_array().unwrap();
    assert_eq!(mats.len(), 5);
    let ks: Vec<f64> = mats.iter().map(|m| m["ks"].as_f64().unwrap()).collect();
    assert!(ks.windows(2).all(|w| w[0] >= w[1]), "{ks:?}");
    // The planted spikes in L1 k make its blocks the strangest three.
    for m in &mats[..3] {
        assert_eq!(
            (m["layer"].as_u64(), m["proj"].as_str()),
            (Some(1), Some("k"))
        );
    }
    let csv = report_at("80", dir.path(), &["--format", "csv", "--top", "5"]);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].starts_with("model.layers.1.self_attn.k_proj.weight,1,k,"));
    // vector_p: lowest first, only blocks that have it (heads).
    let json = report_at(
        "80",
        dir.path(),
        &["--format", "json", "--top", "4", "--score", "vector_p"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let vp: Vec<f64> = v["matrices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["vector_p"].as_f64().unwrap())
        .collect();
    assert_eq!(vp.len(), 4);
    assert!(vp.windows(2).all(|w| w[0] <= w[1]), "{vp:?}");
    let table = report_at("60", dir.path(), &["--format", "table", "--top", "3"]);
    assert!(
        table.contains("the 3 strangest blocks by ks (highest first)"),
        "{table}"
    );
    assert!(
        table.contains("57 blocks in"),
        "the title counts every block: {table}"
    );
    let first = table.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(first.contains(" k ") && first.contains("32x128"), "{first}");
    assert!(table.lines().all(|l| l.chars().count() <= 60), "{table}");
}

#[test]
fn integer_buffers_are_skipped_and_a_healthy_checkpoint_exits_0() {
    // A synthetic BERT plus the int64 `embeddings.position_ids` buffer every real BERT
    // checkpoint stores (all-MiniLM-L6-v2 exited 1 on it: "1 failed").
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = mpscope(&[
        "synth", d, "--family", "bert", "--layers", "2", "--hidden", "64", "--heads", "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<u8> = (0..512i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    views.push((
        "bert.embeddings.position_ids".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1, 512], &ids).unwrap(),
    ));
    let with_buffer = safetensors::serialize(views, None).unwrap();
    std::fs::write(&file, with_buffer).unwrap();

    let out = mpscope(&["inspect", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("; 1 skipped)"), "{text}");
    let skipped = text
        .split("skipped (never analysed)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no skipped section:\n{text}"));
    assert!(
        skipped.starts_with("  bert.embeddings.position_ids  ")
            && skipped
                .lines()
                .next()
                .unwrap()
                .ends_with("1×512  i64 tensor: a buffer or packed data, not a weight"),
        "{text}"
    );

    let out = mpscope(&["report", d, "--format", "csv", "--embeddings"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{csv}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!csv.contains("position_ids"), "{csv}");
    assert!(
        csv.contains("bert.embeddings.position_embeddings.weight"),
        "{csv}"
    );
}

/// `-o` naming a pipe (or `/dev/null`) writes into it; a report must never rename a file over
/// a device or a FIFO (as root, `-o /dev/null` once replaced /dev/null with a regular file).
#[test]
fn output_to_a_fifo_writes_into_it_and_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    common::synth_llama(&dir.path().join("m"), "L0.q:2");
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo on this system
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let m = dir.path().join("m");
    let out = common::mpscope(&["report", m.to_str().unwrap(), "-o", fifo.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = reader.join().unwrap();
    assert!(
        json.starts_with('{') && json.contains("\"matrices\""),
        "{json}"
    );
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}
