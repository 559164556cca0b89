//! Opening checkpoints in every path form, decoding every dtype, and every bad input.

// `Selection::rows` is a list of ranges; a list holding one range is meant.
#![allow(clippy::single_range_in_vec_init)]

use std::path::{Path, PathBuf};

use half::{bf16, f16};
use mpscope::checkpoint::{Checkpoint, CheckpointError, Dtype, OpenOptions, Selection, TensorInfo};
use safetensors::tensor::TensorView;

type St = safetensors::Dtype;

/// Writes `tensors` (name, dtype, shape, raw little-endian bytes) with the safetensors writer.
fn write(path: &Path, tensors: &[(&str, St, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// A small f32 tensor whose value at (r, c) is r·100 + c.
fn f32_mat(rows: usize, cols: usize) -> (St, Vec<usize>, Vec<u8>) {
    let bytes = (0..rows * cols)
        .flat_map(|k| ((k / cols * 100 + k % cols) as f32).to_le_bytes())
        .collect();
    (St::F32, vec![rows, cols], bytes)
}

fn t(name: &str, (d, s, b): (St, Vec<usize>, Vec<u8>)) -> (&str, St, Vec<usize>, Vec<u8>) {
    (name, d, s, b)
}

/// Writes a file with a hand-made header and `data` bytes after it.
fn raw(path: &Path, header: &[u8], data: &[u8]) {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header);
    v.extend_from_slice(data);
    std::fs::write(path, v).unwrap();
}

fn open(p: &Path) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::open(p.to_str().unwrap())
}

/// Opens `p`, expecting an error whose message names `names` and contains every `words`.
fn open_err(p: &Path, names: &Path, words: &[&str]) -> String {
    let e = open(p).expect_err("expected an error").to_string();
    assert!(e.contains(&names.display().to_string()), "{e}");
    for w in words {
        assert!(e.contains(w), "`{w}` missing from: {e}");
    }
    assert!(!e.contains('\n'), "one paragraph: {e}");
    e
}

fn names(c: &Checkpoint) -> Vec<&str> {
    c.tensors().iter().map(|t| t.name.as_str()).collect()
}

fn whole(c: &Checkpoint, name: &str) -> Selection {
    let i = c.tensor_index(name).unwrap();
    let s = &c.tensors()[i].shape;
    Selection {
        tensor: i,
        rows: vec![0..s[0]],
        cols: 0..s[1],
        transpose: false,
    }
}

// ---------------------------------------------------------------- path forms

#[test]
fn single_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    write(
        &p,
        &[t("b.weight", f32_mat(3, 4)), t("a.weight", f32_mat(2, 2))],
    );
    let c = open(&p).unwrap();
    assert_eq!(c.root(), p);
    assert_eq!(c.files(), std::slice::from_ref(&p));
    assert_eq!(names(&c), ["a.weight", "b.weight"]);
    assert_eq!(c.total_bytes(), std::fs::metadata(&p).unwrap().len());
    assert!(c.config().is_none());
    // bytes are absolute within the file and match the safetensors crate's view.
    let file = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&file).unwrap();
    for info in c.tensors() {
        assert_eq!(
            &file[info.bytes.clone()],
            st.tensor(&info.name).unwrap().data()
        );
        assert_eq!(
            c.tensor_bytes(info).unwrap(),
            st.tensor(&info.name).unwrap().data()
        );
    }
    let b = &c.tensors()[1];
    assert_eq!(
        (b.dtype.clone(), b.shape.clone(), b.file, b.numel()),
        (Dtype::F32, vec![3, 4], 0, 12)
    );
    let m = c.decode_f32(&whole(&c, "b.weight")).unwrap();
    assert_eq!((m.nrows(), m.ncols()), (3, 4));
    assert_eq!(m[(2, 3)], 203.0);
}

#[test]
fn directory_with_model_safetensors_and_config() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("model.safetensors"),
        &[t("x", f32_mat(2, 3))],
    );
    // A stray second file is ignored when model.safetensors exists.
    write(
        &d.path().join("other.safetensors"),
        &[t("y", f32_mat(1, 1))],
    );
    std::fs::write(
        d.path().join("config.json"),
        r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
            "initializer_range":0.02}"#,
    )
    .unwrap();
    let c = open(d.path()).unwrap();
    assert_eq!(c.files(), [d.path().join("model.safetensors")]);
    assert_eq!(names(&c), ["x"]);
    let cfg = c.config().unwrap();
    assert_eq!(cfg.architecture.as_deref(), Some("LlamaForCausalLM"));
    assert_eq!(cfg.hidden_size, Some(64));
    assert_eq!(cfg.num_kv_heads, Some(2));
    assert_eq!(cfg.initializer_range, Some(0.02));
    assert_eq!(
        c.config_path(),
        Some(d.path().join("config.json").as_path())
    );
}

fn sharded(dir: &Path) {
    write(
        &dir.join("model-00001-of-00002.safetensors"),
        &[
            t("model.layers.0.w", f32_mat(2, 2)),
            t("model.layers.10.w", f32_mat(2, 2)),
        ],
    );
    write(
        &dir.join("model-00002-of-00002.safetensors"),
        &[
            t("model.layers.2.w", f32_mat(3, 2)),
            t("lm_head.weight", f32_mat(1, 2)),
        ],
    );
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"metadata":{"total_size":72},"weight_map":{
            "model.layers.0.w":"model-00001-of-00002.safetensors",
            "model.layers.10.w":"model-00001-of-00002.safetensors",
            "model.layers.2.w":"model-00002-of-00002.safetensors",
            "lm_head.weight":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), r#"{"n_embd":2,"n_layer":11}"#).unwrap();
}

#[test]
fn sharded_index_opens_each_shard_once() {
    let d = tempfile::tempdir().unwrap();
    sharded(d.path());
    let c = open(d.path()).unwrap();
    assert_eq!(
        c.files(),
        [
            d.path().join("model-00001-of-00002.safetensors"),
            d.path().join("model-00002-of-00002.safetensors")
        ]
    );
    assert_eq!(
        names(&c),
        [
            "lm_head.weight",
            "model.layers.0.w",
            "model.layers.2.w",
            "model.layers.10.w"
        ]
    );
    let i2 = c.tensor_index("model.layers.2.w").unwrap();
    assert_eq!(c.tensors()[i2].file, 1);
    assert_eq!(c.config().unwrap().num_layers, Some(11));
    let m = c.decode_f64(&whole(&c, "model.layers.2.w")).unwrap();
    assert_eq!(m[(2, 1)], 201.0);

    // Naming the index file itself works too.
    let via_index = open(&d.path().join("model.safetensors.index.json")).unwrap();
    assert_eq!(names(&via_index), names(&c));
    assert_eq!(
        via_index.root(),
        d.path().join("model.safetensors.index.json")
    );
}

#[test]
fn directory_of_several_files_without_index() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("part10.safetensors"),
        &[t("c", f32_mat(1, 1))],
    );
    write(
        &d.path().join("part2.safetensors"),
        &[t("b", f32_mat(1, 1))],
    );
    write(
        &d.path().join("part1.safetensors"),
        &[t("a", f32_mat(1, 1))],
    );
    std::fs::write(d.path().join("README.md"), "hi").unwrap();
    let c = open(d.path()).unwrap();
    let files: Vec<_> = c.files().iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(
        files,
        [
            "part1.safetensors",
            "part2.safetensors",
            "part10.safetensors"
        ]
    );
    assert_eq!(names(&c), ["a", "b", "c"]);
    assert_eq!(c.tensors()[2].file, 2);
}

/// Lays out `models--org--name` in a hub cache with the given snapshots.
fn cache_repo(cache: &Path, repo: &str, revs: &[&str], main: Option<&str>) -> PathBuf {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    for rev in revs {
        let snap = dir.join("snapshots").join(rev);
        std::fs::create_dir_all(&snap).unwrap();
        write(&snap.join("model.safetensors"), &[t(rev, f32_mat(1, 1))]);
        std::fs::write(snap.join("config.json"), r#"{"hidden_size":1}"#).unwrap();
    }
    if let Some(m) = main {
        std::fs::create_dir_all(dir.join("refs")).unwrap();
        std::fs::write(dir.join("refs").join("main"), format!("{m}\n")).unwrap();
    }
    dir
}

fn open_cached(spec: &str, cache: &Path) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::open_with(
        spec,
        &OpenOptions {
            hf_cache: Some(cache.to_path_buf()),
        },
    )
}

#[test]
fn hf_cache_repo_id_follows_refs_main() {
    let d = tempfile::tempdir().unwrap();
    let repo = "mpscope-test-org/Tiny-1B";
    let dir = cache_repo(d.path(), repo, &["aaa111", "bbb222"], Some("bbb222"));
    let c = open_cached(repo, d.path()).unwrap();
    assert_eq!(c.root(), dir.join("snapshots").join("bbb222"));
    assert_eq!(names(&c), ["bbb222"]);
    assert_eq!(c.config().unwrap().hidden_size, Some(1));

    // Without refs/main a single snapshot is used...
    let repo1 = "mpscope-test-org/One";
    cache_repo(d.path(), repo1, &["ccc333"], None);
    assert_eq!(names(&open_cached(repo1, d.path()).unwrap()), ["ccc333"]);

    // ...but several are ambiguous, and a dangling refs/main is an error.
    let repo2 = "mpscope-test-org/Two";
    let dir2 = cache_repo(d.path(), repo2, &["r1", "r2"], None);
    let e = open_cached(repo2, d.path()).unwrap_err().to_string();
    assert!(
        e.contains(&dir2.display().to_string()) && e.contains("2 snapshots"),
        "{e}"
    );
    let repo3 = "mpscope-test-org/Dangling";
    cache_repo(d.path(), repo3, &["r1"], Some("deadbeef"));
    let e = open_cached(repo3, d.path()).unwrap_err().to_string();
    assert!(
        e.contains("deadbeef") && e.contains("snapshot is missing"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn hf_cache_snapshot_files_may_be_symlinks_to_blobs() {
    // The real cache layout: snapshot entries are relative symlinks into blobs/.
    let d = tempfile::tempdir().unwrap();
    let repo_dir = d.path().join("models--org--Linked");
    let blobs = repo_dir.join("blobs");
    let snap = repo_dir.join("snapshots").join("abc123");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs").join("main"), "abc123").unwrap();
    write(&blobs.join("e3b0c442"), &[t("w", f32_mat(2, 2))]);
    std::fs::write(blobs.join("9f86d081"), r#"{"num_attention_heads":4}"#).unwrap();
    std::os::unix::fs::symlink("../../blobs/e3b0c442", snap.join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink("../../blobs/9f86d081", snap.join("config.json")).unwrap();
    let c = open_cached("org/Linked", d.path()).unwrap();
    assert_eq!(c.files(), [snap.join("model.safetensors")]);
    assert_eq!(c.config().unwrap().num_heads, Some(4));
    assert_eq!(c.decode_f32(&whole(&c, "w")).unwrap()[(1, 0)], 100.0);
}

#[test]
fn repo_id_not_in_cache_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let e = open_cached("mpscope-test-org/Absent-7B", d.path()).unwrap_err();
    assert!(matches!(e, CheckpointError::RepoNotCached { .. }));
    let m = e.to_string();
    let looked = d.path().join("models--mpscope-test-org--Absent-7B");
    assert!(m.starts_with("mpscope-test-org/Absent-7B:"), "{m}");
    assert!(m.contains(&looked.display().to_string()), "{m}");
    assert!(m.contains("never downloads"), "{m}");
}

#[test]
fn missing_path_and_empty_directory() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("nope.safetensors");
    let e = open(&p).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFound { .. }));
    open_err(&p, &p, &["no such file"]);

    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    open_err(&empty, &empty, &["no weights here", "no files"]);

    let torch = d.path().join("torch");
    std::fs::create_dir(&torch).unwrap();
    std::fs::write(torch.join("pytorch_model.bin"), b"PK").unwrap();
    open_err(&torch, &torch, &["pytorch_model.bin", "convert"]);
    open_err(
        &torch.join("pytorch_model.bin"),
        &torch.join("pytorch_model.bin"),
        &["PyTorch pickle"],
    );
}

// ---------------------------------------------------------------- dtypes

/// One tensor of `dtype` with `bytes`, 2 rows; returns the decoded f32 and f64 matrices.
fn decode_one(dtype: St, cols: usize, bytes: Vec<u8>) -> (faer::Mat<f32>, faer::Mat<f64>) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    let rows = bytes.len() / cols / (dtype.bitsize() / 8);
    write(&p, &[("w", dtype, vec![rows, cols], bytes)]);
    let c = open(&p).unwrap();
    let sel = whole(&c, "w");
    (c.decode_f32(&sel).unwrap(), c.decode_f64(&sel).unwrap())
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Values that exercise normals, subnormals, zeros, signs, infinities and NaN.
fn probe_values() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        0.1,
        1e-3,
        65504.0,
        6.0e-8,
        1e-40,
        3.0e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        std::f32::consts::PI,
        -2.5e-5,
        123.456,
    ];
    v.extend((0..16).map(|k| (k as f32 - 7.3) * 0.37));
    v
}

#[test]
fn f32_and_f64_decode_exactly() {
    let vals = probe_values();
    let (a, b) = decode_one(
        St::F32,
        8,
        vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    for (k, &v) in vals.iter().enumerate() {
        assert!(same(f64::from(a[(k / 8, k % 8)]), f64::from(v)), "f32 {v}");
        assert!(same(b[(k / 8, k % 8)], f64::from(v)), "f32→f64 {v}");
    }
    let vals64: Vec<f64> = vals.iter().map(|&v| f64::from(v) * (1.0 + 1e-12)).collect();
    let (a, b) = decode_one(
        St::F64,
        8,
        vals64.iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    for (k, &v) in vals64.iter().enumerate() {
        assert!(same(b[(k / 8, k % 8)], v), "f64 {v}");
        assert!(
            same(f64::from(a[(k / 8, k % 8)]), f64::from(v as f32)),
            "f64→f32 {v}"
        );
    }
}

#[test]
fn f16_and_bf16_decode_as_half_does() {
    let vals = probe_values();
    let h: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
    let (a, b) = decode_one(St::F16, 8, h.iter().flat_map(|v| v.to_le_bytes()).collect());
    for (k, x) in h.iter().enumerate() {
        assert!(
            same(f64::from(a[(k / 8, k % 8)]), f64::from(x.to_f32())),
            "f16 {x}"
        );
        assert!(same(b[(k / 8, k % 8)], x.to_f64()), "f16 {x}");
    }
    let h: Vec<bf16> = vals.iter().map(|&v| bf16::from_f32(v)).collect();
    let (a, b) = decode_one(
        St::BF16,
        8,
        h.iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    for (k, x) in h.iter().enumerate() {
        assert!(
            same(f64::from(a[(k / 8, k % 8)]), f64::from(x.to_f32())),
            "bf16 {x}"
        );
        assert!(same(b[(k / 8, k % 8)], x.to_f64()), "bf16 {x}");
    }
}

/// Reference FP8 decoding straight from the format definitions.
fn fp8_ref(b: u8, exp_bits: i32, man_bits: i32, fn_variant: bool) -> f64 {
    let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let bias = (1 << (exp_bits - 1)) - 1;
    let e = i32::from(b >> man_bits) & ((1 << exp_bits) - 1);
    let m = f64::from(b & ((1 << man_bits) - 1) as u8);
    let top = (1 << exp_bits) - 1;
    let frac = m / f64::from(1 << man_bits);
    if fn_variant && e == top && m == f64::from((1 << man_bits) - 1) {
        f64::NAN
    } else if !fn_variant && e == top {
        if m == 0.0 {
            s * f64::INFINITY
        } else {
            f64::NAN
        }
    } else if e == 0 {
        s * frac * 2f64.powi(1 - bias)
    } else {
        s * (1.0 + frac) * 2f64.powi(e - bias)
    }
}

#[test]
fn fp8_decode_every_byte() {
    let all: Vec<u8> = (0..=255).collect();
    for (dtype, e, m, fnv) in [(St::F8_E4M3, 4, 3, true), (St::F8_E5M2, 5, 2, false)] {
        let (a, b) = decode_one(dtype, 16, all.clone());
        for byte in 0..=255u8 {
            let (r, c) = (usize::from(byte) / 16, usize::from(byte) % 16);
            let want = fp8_ref(byte, e, m, fnv);
            assert!(
                same(b[(r, c)], want),
                "{dtype:?} {byte:#x}: {} vs {want}",
                b[(r, c)]
            );
            assert!(same(f64::from(a[(r, c)]), want), "{dtype:?} {byte:#x}");
        }
    }
    let (a, _) = decode_one(St::F8_E4M3, 4, vec![0x38, 0x7e, 0x01, 0x7f]);
    assert_eq!(
        [a[(0, 0)], a[(0, 1)], a[(0, 2)]],
        [1.0, 448.0, 2f32.powi(-9)]
    );
    assert!(a[(0, 3)].is_nan());
    let (a, _) = decode_one(St::F8_E5M2, 4, vec![0x3c, 0x7b, 0x7c, 0x01]);
    assert_eq!(
        [a[(0, 0)], a[(0, 1)], a[(0, 2)], a[(0, 3)]],
        [1.0, 57344.0, f32::INFINITY, 2f32.powi(-16)]
    );
}

#[test]
fn unaligned_data_decodes() {
    // Header of odd length: the tensor data starts at an odd file offset.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("odd.safetensors");
    let vals = [1.5f32, -2.0, 3.25, 0.5, -0.125, 7.0];
    let data: Vec<u8> = vals
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    let header = br#"{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}} "#;
    assert_eq!((8 + header.len()) % 2, 1);
    raw(&p, header, &data);
    let c = open(&p).unwrap();
    assert_eq!(c.tensors()[0].bytes.start % 2, 1);
    let m = c.decode_f32(&whole(&c, "w")).unwrap();
    assert_eq!(m[(1, 2)], 7.0);
    assert_eq!(m[(0, 1)], -2.0);
}

// ---------------------------------------------------------------- selections

#[test]
fn selection_rows_cols_and_transpose() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    let (rows, cols) = (40, 30);
    let vals: Vec<f32> = (0..rows * cols).map(|k| (k as f32) * 0.25 - 99.0).collect();
    let bf: Vec<bf16> = vals.iter().map(|&v| bf16::from_f32(v)).collect();
    write(
        &p,
        &[(
            "w",
            St::BF16,
            vec![rows, cols],
            bf.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )],
    );
    let c = open(&p).unwrap();
    let row_ranges = vec![30..40, 0..3, 17..29, 5..5];
    let picked: Vec<usize> = row_ranges.iter().flat_map(|r| r.clone()).collect();
    for transpose in [false, true] {
        let sel = Selection {
            tensor: 0,
            rows: row_ranges.clone(),
            cols: 7..26,
            transpose,
        };
        let a = c.decode_f32(&sel).unwrap();
        let b = c.decode_f64(&sel).unwrap();
        let shape = if transpose {
            (19, picked.len())
        } else {
            (picked.len(), 19)
        };
        assert_eq!((a.nrows(), a.ncols()), shape);
        assert_eq!((b.nrows(), b.ncols()), shape);
        for (i, &r) in picked.iter().enumerate() {
            for (j, col) in (7..26).enumerate() {
                let want = bf[r * cols + col].to_f32();
                let (x, y) = if transpose {
                    (a[(j, i)], b[(j, i)])
                } else {
                    (a[(i, j)], b[(i, j)])
                };
                assert_eq!(x, want);
                assert_eq!(y, f64::from(want));
            }
        }
    }
    // Decoding into a reused matrix gives the same values whether it shrinks or grows.
    let mut reuse = faer::Mat::<f32>::zeros(50, 50);
    for (rows, transpose) in [
        (vec![0..40], false),
        (vec![3..9, 1..2], true),
        (vec![0..40], true),
    ] {
        let sel = Selection {
            tensor: 0,
            rows,
            cols: 2..30,
            transpose,
        };
        c.decode_f32_into(&sel, &mut reuse).unwrap();
        assert!(reuse == c.decode_f32(&sel).unwrap());
        let mut r64 = faer::Mat::<f64>::new();
        c.decode_f64_into(&sel, &mut r64).unwrap();
        assert!(r64 == c.decode_f64(&sel).unwrap());
    }

    // Empty selections give empty matrices, not errors.
    let e = c
        .decode_f32(&Selection {
            tensor: 0,
            rows: vec![],
            cols: 0..0,
            transpose: false,
        })
        .unwrap();
    assert_eq!((e.nrows(), e.ncols()), (0, 0));
}

#[test]
fn bad_selections_are_errors_not_panics() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    write(
        &p,
        &[
            t("m", f32_mat(4, 5)),
            ("v", St::F32, vec![3], vec![0; 12]),
            ("i", St::I32, vec![2, 2], vec![0; 16]),
        ],
    );
    let c = open(&p).unwrap();
    let m = c.tensor_index("m").unwrap();
    let sel = |rows: Vec<std::ops::Range<usize>>, cols| Selection {
        tensor: m,
        rows,
        cols,
        transpose: false,
    };
    let msg = |s: &Selection| c.decode_f32(s).unwrap_err().to_string();
    let ps = p.display().to_string();
    let e = msg(&sel(vec![0..2, 3..5], 0..5));
    assert!(
        e.contains(&ps) && e.contains("`m`") && e.contains("row range 3..5 exceeds 4"),
        "{e}"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let e = msg(&sel(vec![3..1], 0..5));
    assert!(e.contains("reversed"), "{e}");
    let e = msg(&sel(vec![0..4], 2..6));
    assert!(e.contains("column range 2..6 exceeds 5"), "{e}");
    let e = c.decode_f64(&whole_1d(&c, "v")).unwrap_err().to_string();
    assert!(
        e.contains(&ps) && e.contains("`v`") && e.contains("2-D"),
        "{e}"
    );
    let e = c.decode_f32(&whole(&c, "i")).unwrap_err().to_string();
    assert!(
        e.contains(&ps) && e.contains("I32") && e.contains("does not decode"),
        "{e}"
    );
    let e = c.decode_f32(&sel_at(99)).unwrap_err().to_string();
    assert!(e.contains("#99") && e.contains("3 tensors"), "{e}");
    // A TensorInfo from elsewhere borrows nothing.
    let foreign = TensorInfo {
        file: 7,
        ..c.tensors()[0].clone()
    };
    assert!(c.tensor_bytes(&foreign).unwrap().is_empty());
}

fn whole_1d(c: &Checkpoint, name: &str) -> Selection {
    Selection {
        tensor: c.tensor_index(name).unwrap(),
        rows: vec![0..1],
        cols: 0..1,
        transpose: false,
    }
}

fn sel_at(tensor: usize) -> Selection {
    Selection {
        tensor,
        rows: vec![0..1],
        cols: 0..1,
        transpose: false,
    }
}

// ---------------------------------------------------------------- unsupported dtypes

#[test]
fn integer_and_other_dtypes_are_listed_as_unsupported() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.safetensors");
    write(
        &p,
        &[
            t("model.layers.0.q.weight", f32_mat(2, 2)),
            ("model.layers.0.q.qweight", St::I8, vec![2, 4], vec![1; 8]),
            ("mask", St::BOOL, vec![3], vec![1, 0, 1]),
            ("ids", St::I32, vec![2], vec![0; 8]),
            ("u", St::U8, vec![1], vec![5]),
            ("scales", St::F8_E8M0, vec![2], vec![127, 128]),
            ("packed", St::F4, vec![2, 2], vec![0x12, 0x34]),
        ],
    );
    let c = open(d.path()).unwrap();
    let dtype = |n: &str| c.tensors()[c.tensor_index(n).unwrap()].dtype.clone();
    for (n, want) in [
        ("model.layers.0.q.qweight", "I8"),
        ("mask", "BOOL"),
        ("ids", "I32"),
        ("u", "U8"),
        ("scales", "F8_E8M0"),
        ("packed", "F4"),
    ] {
        assert_eq!(dtype(n), Dtype::Unsupported(want.into()));
        assert!(!dtype(n).is_supported());
        assert_eq!(dtype(n).to_string(), want);
    }
    assert_eq!(dtype("model.layers.0.q.weight"), Dtype::F32);
    let packed = &c.tensors()[c.tensor_index("packed").unwrap()];
    assert_eq!(packed.bytes.len(), 2);
    let m = c.decode_f32(&whole(&c, "model.layers.0.q.weight")).unwrap();
    assert_eq!(m[(1, 1)], 101.0);
}

// ---------------------------------------------------------------- bad input

#[test]
fn empty_and_short_files() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("empty.safetensors");
    std::fs::write(&p, b"").unwrap();
    open_err(&p, &p, &["0 bytes", "too short"]);
    std::fs::write(&p, b"\x05\0\0\0\0").unwrap();
    open_err(&p, &p, &["5 bytes", "too short"]);
}

#[test]
fn header_length_past_end() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    let mut v = 1000u64.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    std::fs::write(&p, v).unwrap();
    open_err(&p, &p, &["header length 1000", "past the end", "10 bytes"]);
    std::fs::write(&p, u64::MAX.to_le_bytes()).unwrap();
    open_err(&p, &p, &["past the end"]);
}

#[test]
fn header_not_utf8_or_not_json() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    raw(&p, b"{\"\xff\xfe\":1}", &[]);
    open_err(&p, &p, &["not valid UTF-8"]);
    raw(&p, b"{\"w\": {\"dtype\": ", &[]);
    open_err(&p, &p, &["not valid JSON"]);
    raw(&p, b"[1, 2, 3]", &[]);
    open_err(&p, &p, &["not valid JSON", "object"]);
    raw(
        &p,
        br#"{"w": {"dtype": "F32", "shape": "2x2", "data_offsets": [0, 16]}}"#,
        &[0; 16],
    );
    open_err(&p, &p, &["`w`", "malformed"]);
}

#[test]
fn offsets_past_end_or_inconsistent() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    raw(
        &p,
        br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &[0; 12],
    );
    open_err(&p, &p, &["`w`", "[0, 16]", "past the end", "12 bytes"]);
    raw(
        &p,
        br#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#,
        &[0; 12],
    );
    open_err(&p, &p, &["`w`", "reversed"]);
    raw(
        &p,
        br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        &[0; 12],
    );
    open_err(&p, &p, &["`b`", "overlaps tensor `a`"]);
}

#[test]
fn shape_does_not_match_byte_length() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    raw(
        &p,
        br#"{"w":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    open_err(
        &p,
        &p,
        &["`w`", "BF16", "[3, 3]", "needs 18 bytes", "span 16 bytes"],
    );
}

#[test]
fn unknown_dtype_is_a_header_error() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    raw(
        &p,
        br#"{"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}}"#,
        &[0; 2],
    );
    let e = open_err(&p, &p, &["`w`", "unknown dtype `Q4_K`"]);
    assert!(e.contains("expected"), "{e}");
}

#[test]
fn index_naming_a_missing_shard() {
    let d = tempfile::tempdir().unwrap();
    sharded(d.path());
    std::fs::remove_file(d.path().join("model-00002-of-00002.safetensors")).unwrap();
    let index = d.path().join("model.safetensors.index.json");
    let e = open_err(
        d.path(),
        &index,
        &["model-00002-of-00002.safetensors", "does not exist"],
    );
    assert!(
        e.contains(
            &d.path()
                .join("model-00002-of-00002.safetensors")
                .display()
                .to_string()
        )
    );
}

#[test]
fn malformed_index_and_disagreeing_shards() {
    let d = tempfile::tempdir().unwrap();
    sharded(d.path());
    let index = d.path().join("model.safetensors.index.json");
    std::fs::write(&index, r#"{"weight_map": "#).unwrap();
    open_err(d.path(), &index, &["not a usable safetensors index"]);
    std::fs::write(&index, r#"{"metadata": {}}"#).unwrap();
    open_err(d.path(), &index, &["weight_map"]);
    std::fs::write(&index, r#"{"weight_map": {"a": "../evil.safetensors"}}"#).unwrap();
    open_err(d.path(), &index, &["not a file name beside the index"]);
    std::fs::write(
        &index,
        r#"{"weight_map": {"model.layers.2.w": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    open_err(d.path(), &index, &["`model.layers.2.w`", "no such tensor"]);
}

#[test]
fn duplicate_tensor_across_shards() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.safetensors"), &[t("x", f32_mat(1, 1))]);
    write(
        &d.path().join("b.safetensors"),
        &[t("x", f32_mat(1, 1)), t("y", f32_mat(1, 1))],
    );
    let e = open_err(
        d.path(),
        &d.path().join("b.safetensors"),
        &["`x`", "defined again"],
    );
    assert!(
        e.contains(&d.path().join("a.safetensors").display().to_string()),
        "{e}"
    );
}

#[test]
fn file_without_tensors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    raw(&p, br#"{"__metadata__":{"format":"pt"}}"#, &[]);
    open_err(&p, &p, &["no tensors"]);
}

#[test]
fn malformed_config_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("model.safetensors"),
        &[t("x", f32_mat(1, 1))],
    );
    let cfg = d.path().join("config.json");
    std::fs::write(&cfg, "{ not json").unwrap();
    open_err(d.path(), &cfg, &["config.json is malformed"]);
    std::fs::write(&cfg, r#"{"num_attention_heads": "32"}"#).unwrap();
    open_err(d.path(), &cfg, &["`num_attention_heads`", "integer"]);
}

#[test]
fn config_aliases_and_text_config() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("model.safetensors"),
        &[t("x", f32_mat(1, 1))],
    );
    let cfg = d.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","n_embd":768,"n_layer":12,
            "n_head":12,"n_inner":3072,"vocab_size":50257}"#,
    )
    .unwrap();
    let c = open(d.path()).unwrap();
    let k = c.config().unwrap();
    assert_eq!(
        (
            k.hidden_size,
            k.num_layers,
            k.num_heads,
            k.intermediate_size
        ),
        (Some(768), Some(12), Some(12), Some(3072))
    );
    std::fs::write(
        &cfg,
        r#"{"architectures":["Llama4ForConditionalGeneration"],"model_type":"llama4",
            "text_config":{"hidden_size":5120,"num_hidden_layers":48,"num_attention_heads":40,
            "num_key_value_heads":8,"head_dim":128,"intermediate_size":8192}}"#,
    )
    .unwrap();
    let c = open(d.path()).unwrap();
    let k = c.config().unwrap();
    assert_eq!(
        k.architecture.as_deref(),
        Some("Llama4ForConditionalGeneration")
    );
    assert_eq!(
        (
            k.hidden_size,
            k.num_layers,
            k.num_heads,
            k.num_kv_heads,
            k.head_dim
        ),
        (Some(5120), Some(48), Some(40), Some(8), Some(128))
    );
}

#[test]
fn checkpoint_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Checkpoint>();
}
