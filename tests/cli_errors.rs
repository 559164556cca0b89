//! The binary on bad input: a one-paragraph message naming the file and problem, exit 2.

mod common;
use common::mpscope;

use std::path::Path;

/// A safetensors file from a header JSON and data bytes.
fn raw(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

fn assert_bad_input(args: &[&str], words: &[&str]) {
    let out = mpscope(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("mpscope: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: expected '{w}' in: {err}");
    }
}

#[test]
fn every_malformed_checkpoint_is_a_clear_error_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();

    assert_bad_input(
        &["inspect", &p("missing.safetensors")],
        &["missing.safetensors"],
    );

    std::fs::create_dir(d.join("empty")).unwrap();
    assert_bad_input(&["inspect", &p("empty")], &["empty"]);

    std::fs::write(d.join("zero.safetensors"), b"").unwrap();
    assert_bad_input(&["inspect", &p("zero.safetensors")], &["zero.safetensors"]);

    std::fs::write(d.join("short.safetensors"), b"abc").unwrap();
    assert_bad_input(
        &["inspect", &p("short.safetensors")],
        &["short.safetensors"],
    );

    let mut long = 1_000_000u64.to_le_bytes().to_vec();
    long.extend_from_slice(b"{}");
    std::fs::write(d.join("long.safetensors"), long).unwrap();
    assert_bad_input(
        &["inspect", &p("long.safetensors")],
        &["long.safetensors", "header"],
    );

    raw(&d.join("notjson.safetensors"), "this is not json", &[]);
    assert_bad_input(
        &["inspect", &p("notjson.safetensors")],
        &["notjson.safetensors"],
    );

    raw(
        &d.join("offsets.safetensors"),
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &[0u8; 8],
    );
    assert_bad_input(
        &["inspect", &p("offsets.safetensors")],
        &["offsets.safetensors", "w"],
    );

    raw(
        &d.join("shape.safetensors"),
        r#"{"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}}"#,
        &[0u8; 16],
    );
    assert_bad_input(
        &["inspect", &p("shape.safetensors")],
        &["shape.safetensors", "w"],
    );

    raw(
        &d.join("dtype.safetensors"),
        r#"{"w":{"dtype":"Q7","shape":[2,2],"data_offsets":[0,4]}}"#,
        &[0u8; 4],
    );
    assert_bad_input(
        &["inspect", &p("dtype.safetensors")],
        &["dtype.safetensors", "Q7"],
    );

    std::fs::create_dir(d.join("sharded")).unwrap();
    std::fs::write(
        d.join("sharded/model.safetensors.index.json"),
        r#"{"metadata":{},"weight_map":{"w":"model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    assert_bad_input(
        &["inspect", &p("sharded")],
        &[
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
        ],
    );

    assert_bad_input(
        &["inspect", "nobody-has/this-model"],
        &["nobody-has/this-model"],
    );
}

#[test]
fn bad_overrides_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.safetensors");
    raw(
        &f,
        r#"{"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[6,6],"data_offsets":[0,144]}}"#,
        &[0u8; 144],
    );
    let out = mpscope(&["inspect", f.to_str().unwrap(), "--num-heads", "4"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mpscope(&["inspect", f.to_str().unwrap(), "--num-heads", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = mpscope(&["inspect", f.to_str().unwrap(), "--num-heads", "3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heads 3"), "{text}");
}
