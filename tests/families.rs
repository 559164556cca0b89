//! End to end: synthetic checkpoints of every family and dtype, written by `synth`, opened by
//! `checkpoint` and laid out by `anatomy`; every whole matrix and every head block decodes to
//! exactly the slice of the logical matrix the generator wrote. Also the path forms: sharded
//! index, HF cache repo id (symlinked blobs), several files without an index.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use mpscope::anatomy::{Anatomy, Block, Family, Overrides, Proj};
use mpscope::checkpoint::{Checkpoint, OpenOptions};
use mpscope::synth::{self, Matrix, SynthDtype, SynthFamily, SynthProj, SynthSpec};

const DTYPES: [SynthDtype; 3] = [SynthDtype::Bf16, SynthDtype::F16, SynthDtype::F32];

/// A tiny model: 2 layers, hidden 64, 4 heads of 16 (2 kv heads where the family has GQA).
fn tiny(family: SynthFamily, dtype: SynthDtype) -> SynthSpec {
    let mut s = SynthSpec::new(family, 2, 64, 4);
    s.vocab = 50;
    s.positions = 16;
    s.dtype = dtype;
    s.seed = 11;
    if family.supports_gqa() {
        s.kv_heads = 2;
    }
    s
}

fn family_of(f: SynthFamily) -> Family {
    match f {
        SynthFamily::Llama => Family::Llama,
        SynthFamily::Bert => Family::Bert,
        SynthFamily::Gpt2 => Family::Gpt2,
        SynthFamily::Phi3 => Family::Phi3,
        SynthFamily::Neox => Family::NeoX,
        SynthFamily::Mixtral => Family::Llama,
    }
}

fn synth_proj(p: Proj) -> SynthProj {
    match p {
        Proj::Q => SynthProj::Q,
        Proj::K => SynthProj::K,
        Proj::V => SynthProj::V,
        Proj::O => SynthProj::O,
        Proj::Gate => SynthProj::Gate,
        Proj::Up => SynthProj::Up,
        Proj::Down => SynthProj::Down,
        p => panic!("unexpected {p} matrix inside a dense layer (tests/moe.rs has experts)"),
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn open(p: &Path) -> Checkpoint {
    Checkpoint::open(&path_str(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn anatomy(ck: &Checkpoint) -> Anatomy {
    Anatomy::from_checkpoint(ck, &Overrides::default()).unwrap()
}

/// Asserts that `block` decodes (f32 and f64) to exactly `want`, bit for bit.
fn assert_block(ck: &Checkpoint, block: &Block, want: &Matrix, ctx: &str) {
    let what = format!("{ctx}: {} ({})", block.name, block.tensor);
    assert_eq!((block.rows, block.cols), (want.rows, want.cols), "{what}");
    let m32 = ck.decode_f32(&block.selection).unwrap();
    let m64 = ck.decode_f64(&block.selection).unwrap();
    assert_eq!((m32.nrows(), m32.ncols()), (want.rows, want.cols), "{what}");
    assert_eq!((m64.nrows(), m64.ncols()), (want.rows, want.cols), "{what}");
    for r in 0..want.rows {
        for c in 0..want.cols {
            let w = want.get(r, c);
            assert!(w.is_finite(), "{what}: reference ({r}, {c}) = {w}");
            let (a, b) = (m32[(r, c)], m64[(r, c)]);
            assert!(
                a.to_bits() == w.to_bits() && b.to_bits() == f64::from(w).to_bits(),
                "{what}: ({r}, {c}) decodes to {a:e} / {b:e}, written {w:e}"
            );
        }
    }
}

/// Checks the anatomy's counts and every block against what `spec` wrote; returns the number
/// of blocks checked.
fn check_model(ck: &Checkpoint, an: &Anatomy, spec: &SynthSpec, ctx: &str) -> usize {
    let d = spec.head_dim();
    assert_eq!(an.family, family_of(spec.family), "{ctx}");
    assert_eq!(an.num_layers, spec.layers, "{ctx}");
    assert_eq!(an.num_heads, Some(spec.heads), "{ctx}");
    assert_eq!(an.num_kv_heads, Some(spec.kv_heads), "{ctx}");
    assert_eq!(an.head_dim, Some(d), "{ctx}");
    assert_eq!(an.hidden, Some(spec.hidden), "{ctx}");
    assert!(an.notes().is_empty(), "{ctx}: {:?}", an.notes());

    let mut logical: BTreeMap<(usize, SynthProj), Matrix> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut checked = 0;
    for whole in an.matrices.iter() {
        assert_eq!(whole.id.head, None, "{ctx}: {}", whole.name);
        assert_eq!(whole.dtype.name(), spec.dtype.as_str().to_uppercase());
        let Some(layer) = whole.id.layer else {
            // Outside the stack: embeddings (and BERT's pooler), stored untransposed.
            let stored = synth::stored_tensor(spec, &whole.tensor).unwrap();
            let want = Matrix {
                rows: stored.shape[0],
                cols: stored.shape[1],
                data: stored.data,
            };
            assert_block(ck, whole, &want, ctx);
            assert!(an.heads(whole).is_empty(), "{ctx}: {}", whole.name);
            checked += 1;
            continue;
        };
        let proj = synth_proj(whole.id.proj);
        assert!(seen.insert((layer, proj)), "{ctx}: {} twice", whole.name);
        let want = logical
            .entry((layer, proj))
            .or_insert_with(|| synth::logical_matrix(spec, layer, proj).unwrap());
        assert_eq!((want.rows, want.cols), spec.proj_shape(proj), "{ctx}");
        assert_block(ck, whole, want, ctx);
        checked += 1;

        let heads = an.heads(whole);
        let expected_heads = spec.proj_heads(proj).unwrap_or(0);
        assert_eq!(
            heads.len(),
            expected_heads,
            "{ctx}: heads of {}",
            whole.name
        );
        assert_eq!(
            an.heads_of(whole.id.proj),
            spec.proj_heads(proj),
            "{ctx}: {}",
            whole.name
        );
        for (h, block) in heads.iter().enumerate() {
            assert_eq!(block.id.layer, Some(layer), "{ctx}");
            assert_eq!(block.id.proj, whole.id.proj, "{ctx}");
            assert_eq!(block.id.head, Some(h), "{ctx}: {}", block.name);
            assert_eq!(block.tensor, whole.tensor, "{ctx}");
            assert_eq!(an.block(block.id).as_ref(), Some(block), "{ctx}");
            let slice = match proj {
                SynthProj::O => want.block(0..want.rows, h * d..(h + 1) * d),
                _ => want.block(h * d..(h + 1) * d, 0..want.cols),
            };
            assert_block(ck, block, &slice, ctx);
            checked += 1;
        }
    }
    let expected: BTreeSet<(usize, SynthProj)> = (0..spec.layers)
        .flat_map(|l| spec.projections().into_iter().map(move |p| (l, p)))
        .collect();
    assert_eq!(seen, expected, "{ctx}: layer matrices");
    checked
}

fn family_end_to_end(family: SynthFamily) {
    for dtype in DTYPES {
        let dir = tempfile::tempdir().unwrap();
        let spec = tiny(family, dtype);
        synth::write(dir.path(), &spec).unwrap();
        let ck = open(dir.path());
        assert_eq!(ck.files().len(), 1);
        assert!(ck.config().is_some());
        let an = anatomy(&ck);
        let ctx = format!("{family} {dtype}");
        let n = check_model(&ck, &an, &spec, &ctx);
        // 2 layers × (q, k, v, o with their heads + MLP) + embeddings.
        let heads = 2 * (2 * spec.heads + 2 * spec.kv_heads);
        let wholes = 2 * spec.projections().len();
        assert!(n >= heads + wholes, "{ctx}: only {n} blocks checked");
    }
}

#[test]
fn llama_gqa_every_dtype_every_block() {
    family_end_to_end(SynthFamily::Llama);
}

#[test]
fn bert_every_dtype_every_block() {
    family_end_to_end(SynthFamily::Bert);
}

#[test]
fn gpt2_every_dtype_every_block() {
    family_end_to_end(SynthFamily::Gpt2);
}

#[test]
fn phi3_gqa_every_dtype_every_block() {
    family_end_to_end(SynthFamily::Phi3);
}

#[test]
fn neox_every_dtype_every_block() {
    family_end_to_end(SynthFamily::Neox);
}

/// name → (dtype, shape, stored bytes) of every tensor.
fn contents(ck: &Checkpoint) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    ck.tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.dtype.name().to_owned(),
                t.shape.clone(),
                ck.tensor_bytes(t).unwrap(),
            )
        })
        .collect()
}

/// Shard file names of an index's weight_map.
fn index_shards(index: &Path) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(index).unwrap()).unwrap();
    v["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn file_names(ck: &Checkpoint) -> Vec<String> {
    ck.files()
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn sharded_opens_every_shard_once_and_matches_unsharded() {
    let tmp = tempfile::tempdir().unwrap();
    let (one_dir, three_dir) = (tmp.path().join("one"), tmp.path().join("three"));
    let one = tiny(SynthFamily::Llama, SynthDtype::F16);
    let three = SynthSpec {
        shards: 3,
        ..one.clone()
    };
    synth::write(&one_dir, &one).unwrap();
    synth::write(&three_dir, &three).unwrap();

    let single = open(&one_dir);
    assert_eq!(file_names(&single), ["model.safetensors"]);
    let sharded = open(&three_dir);
    let index = three_dir.join("model.safetensors.index.json");
    let names = file_names(&sharded);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(
        names.iter().cloned().collect::<BTreeSet<_>>(),
        index_shards(&index),
        "each shard of the index opened exactly once"
    );
    for f in 0..3 {
        assert!(
            sharded.tensors().iter().any(|t| t.file == f),
            "shard {f} empty"
        );
    }
    assert_eq!(contents(&sharded), contents(&single));
    check_model(&sharded, &anatomy(&sharded), &three, "sharded");

    // The same checkpoint by other path forms: the index file itself, a single weights file.
    let by_index = open(&index);
    assert_eq!(file_names(&by_index), names);
    assert_eq!(contents(&by_index), contents(&single));
    let by_file = open(&one_dir.join("model.safetensors"));
    assert_eq!(contents(&by_file), contents(&single));
    check_model(&by_file, &anatomy(&by_file), &one, "single file");
}

#[test]
fn directory_of_shards_without_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let spec = SynthSpec {
        shards: 3,
        ..tiny(SynthFamily::Neox, SynthDtype::Bf16)
    };
    synth::write(&dir, &spec).unwrap();
    fs::rename(
        dir.join("model.safetensors.index.json"),
        tmp.path().join("index.json.away"),
    )
    .unwrap();
    let ck = open(&dir);
    assert_eq!(
        file_names(&ck),
        [
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors"
        ]
    );
    assert!(
        ck.config().is_some(),
        "config.json beside the shards is read"
    );
    check_model(&ck, &anatomy(&ck), &spec, "no index");
}

/// Moves every file of `from` into `repo/blobs/<name>.blob` and links it from
/// `repo/snapshots/<rev>/<name>`, as the hub cache does.
fn into_snapshot(from: &Path, repo: &Path, rev: &str) -> PathBuf {
    let blobs = repo.join("blobs");
    let snap = repo.join("snapshots").join(rev);
    fs::create_dir_all(&blobs).unwrap();
    fs::create_dir_all(&snap).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let src = e.unwrap().path();
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let blob = format!("{rev}-{name}.blob");
        fs::rename(&src, blobs.join(&blob)).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(Path::new("../../blobs").join(&blob), snap.join(&name)).unwrap();
        #[cfg(not(unix))]
        fs::copy(blobs.join(&blob), snap.join(&name)).unwrap();
    }
    snap
}

#[test]
fn hf_cache_repo_id_resolves_refs_main() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let repo = cache.join("models--acme--tiny-llama");
    let (old_rev, rev) = (
        "0123456789abcdef0123456789abcdef01234567",
        "fedcba9876543210fedcba9876543210fedcba98",
    );
    // An older snapshot of another model, and the current one refs/main points to.
    let old = tiny(SynthFamily::Bert, SynthDtype::F32);
    let spec = SynthSpec {
        shards: 2,
        ..tiny(SynthFamily::Llama, SynthDtype::Bf16)
    };
    let staging = tmp.path().join("staging");
    synth::write(&staging, &old).unwrap();
    into_snapshot(&staging, &repo, old_rev);
    synth::write(&staging, &spec).unwrap();
    let snap = into_snapshot(&staging, &repo, rev);
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs").join("main"), rev).unwrap();

    let opts = OpenOptions {
        hf_cache: Some(cache.clone()),
    };
    let ck = Checkpoint::open_with("acme/tiny-llama", &opts).unwrap();
    assert_eq!(ck.root(), snap);
    assert_eq!(ck.files().len(), 2);
    assert!(ck.files().iter().all(|f| f.starts_with(&snap)));
    check_model(&ck, &anatomy(&ck), &spec, "hf cache");

    let missing = Checkpoint::open_with("acme/other-model", &opts).unwrap_err();
    assert!(
        missing.to_string().contains("acme/other-model"),
        "{missing}"
    );
}
