//! Checkpoints derived from an existing one: a fine-tuned copy with planted low-rank updates
//! (`synth OUT --finetune-of BASE --update L1.q.h3:2@0.5`) and a PEFT LoRA adapter on it
//! (`synth OUT --lora-of BASE --rank 8 --targets q,v`), each with a truth.json saying what
//! changed.
//!
//! The base is read through the checkpoint room, one tensor at a time, and written back as one
//! `model.safetensors`: every tensor an update does not touch is copied byte for byte (unless
//! `--dtype` casts the copy), so a comparison finds those blocks exactly unchanged.
//!
//! An update `L1.q.h3:2@0.5` adds θ·Σₖ uₖvₖᵀ to head 3 of layer 1's q (k < 2, u and v random
//! orthonormal sets, seeded), θ = 0.5·ν₁ of that block in the base: a rank-2 change whose
//! singular values are all θ, before the result is rounded to the stored dtype.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::SynthError;
use super::spec::SynthDtype;
use crate::anatomy::{Anatomy, MatrixId, Overrides, Proj};
use crate::checkpoint::{Checkpoint, Dtype, Selection, TensorInfo};
use crate::rng::{Rng, fnv1a};

/// Generator name recorded in a derived truth.json.
const GENERATOR: &str = "mpscope synth-derive v1";

/// A planted low-rank update: `L<layer>.<proj>[.h<head>]:<rank>@<strength>` (also its JSON
/// form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct UpdateSpec {
    /// Layer.
    pub layer: usize,
    /// Projection (q, k, v, o, gate, up, down).
    pub proj: Proj,
    /// Head, or the whole matrix.
    pub head: Option<usize>,
    /// Rank of the update.
    pub rank: usize,
    /// Its singular values relative to the base block's ν₁.
    pub strength: f64,
}

impl FromStr for UpdateSpec {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, SynthError> {
        let bad = |why: &str| SynthError::parse("update spec", s, why);
        let expected = "expected L<layer>.<proj>[.h<head>]:<rank>@<strength>, e.g. L1.q.h3:2@0.5";
        let (target, amount) = s.trim().split_once(':').ok_or_else(|| bad(expected))?;
        let (rank, strength) = amount.split_once('@').ok_or_else(|| bad(expected))?;
        let rank: usize = rank
            .trim()
            .parse()
            .ok()
            .filter(|&r| r > 0)
            .ok_or_else(|| bad("the rank must be a positive integer"))?;
        let strength: f64 = strength
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x > 0.0)
            .ok_or_else(|| bad("the strength must be a positive number (times the block's ν₁)"))?;
        let mut parts = target.trim().split('.');
        let layer = parts
            .next()
            .and_then(|l| l.strip_prefix('L').or_else(|| l.strip_prefix('l')))
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad(expected))?;
        let proj: Proj = parts
            .next()
            .ok_or_else(|| bad(expected))?
            .parse()
            .map_err(|e: crate::anatomy::ParseProjError| bad(&e.to_string()))?;
        let head = match parts.next() {
            None => None,
            Some(h) => Some(
                h.strip_prefix('h')
                    .and_then(|h| h.parse().ok())
                    .ok_or_else(|| bad(expected))?,
            ),
        };
        if parts.next().is_some() {
            return Err(bad(expected));
        }
        Ok(Self {
            layer,
            proj,
            head,
            rank,
            strength,
        })
    }
}

impl TryFrom<String> for UpdateSpec {
    type Error = SynthError;

    fn try_from(s: String) -> Result<Self, SynthError> {
        s.parse()
    }
}

impl From<UpdateSpec> for String {
    fn from(u: UpdateSpec) -> String {
        u.to_string()
    }
}

impl fmt::Display for UpdateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}.{}", self.layer, self.proj)?;
        if let Some(h) = self.head {
            write!(f, ".h{h}")?;
        }
        write!(f, ":{}@{}", self.rank, self.strength)
    }
}

/// What a derived checkpoint changed, written as its truth.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedTruth {
    /// Generator name and version.
    pub generator: String,
    /// "finetune" or "lora".
    pub kind: String,
    /// The base as named.
    pub base: String,
    /// dtype every tensor was cast to (`--dtype`), if any.
    pub cast: Option<String>,
    /// The planted updates (finetune).
    pub updates: Vec<UpdateTruth>,
    /// The adapter (lora).
    pub lora: Option<LoraTruth>,
}

/// One planted update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateTruth {
    /// As asked for.
    pub spec: UpdateSpec,
    /// Block name, e.g. "L1 q h3".
    pub block: String,
    /// Stored tensor changed.
    pub tensor: String,
    /// ν₁ of the block in the base.
    pub base_top: f64,
    /// Every singular value of the update: strength · base_top.
    pub singular_value: f64,
}

/// A written LoRA adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraTruth {
    /// r.
    pub rank: usize,
    /// lora_alpha.
    pub alpha: f64,
    /// Adapted modules.
    pub modules: Vec<String>,
    /// Layer whose B factors are all zero, if any.
    pub zero_b_layer: Option<usize>,
}

/// Options of a LoRA adapter to write.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    /// r.
    pub rank: usize,
    /// lora_alpha.
    pub alpha: f64,
    /// Projections adapted in every layer.
    pub targets: Vec<Proj>,
    /// A layer whose B is left at zero (PEFT's initialization: an adapter that learned
    /// nothing).
    pub zero_b: Option<usize>,
    /// Random seed.
    pub seed: u64,
}

/// Opens `base` and its anatomy, with errors as [`SynthError::Base`].
fn open_base(base: &str) -> Result<(Checkpoint, Anatomy), SynthError> {
    let ck = Checkpoint::open(base).map_err(|e| SynthError::Base(e.to_string()))?;
    let an = Anatomy::from_checkpoint(&ck, &Overrides::default())
        .map_err(|e| SynthError::Base(e.to_string()))?;
    Ok((ck, an))
}

/// One update to add: stored tensor index, the block's cut, u's, v's and θ.
type Planted = (usize, Selection, Vec<Vec<f64>>, Vec<Vec<f64>>, f64);

/// Writes a fine-tuned copy of `base` into `out` with `updates` planted (and every tensor cast
/// to `cast` when given); returns what changed.
pub fn write_finetune(
    out: &Path,
    base: &str,
    updates: &[UpdateSpec],
    cast: Option<SynthDtype>,
    seed: u64,
) -> Result<DerivedTruth, SynthError> {
    let (ck, an) = open_base(base)?;
    let mut planted: Vec<Planted> = Vec::new();
    let mut truths = Vec::new();
    for u in updates {
        let id = MatrixId {
            layer: Some(u.layer),
            proj: u.proj,
            head: u.head,
            expert: None,
        };
        let block = an.block(id).ok_or_else(|| {
            SynthError::NoSuchMatrix(format!("{u}: the base has no block {}", describe(id)))
        })?;
        let max_rank = block.rows.min(block.cols);
        if u.rank > max_rank {
            return Err(SynthError::Spec(format!(
                "{u}: rank {} exceeds the {}×{} block's {max_rank}",
                u.rank, block.rows, block.cols
            )));
        }
        let w = ck
            .decode_f64(&block.selection)
            .map_err(|e| SynthError::Base(e.to_string()))?;
        let top = crate::spectrum::singular_values(
            w.as_ref(),
            crate::spectrum::Precision::Fast,
            faer::Par::Seq,
        )
        .map_err(|e| SynthError::Base(format!("{}: {e}", block.name)))?[0];
        let theta = u.strength * top;
        let mut rng = Rng::new(seed ^ fnv1a(&u.to_string()));
        let us = orthonormal(&mut rng, block.rows, u.rank);
        let vs = orthonormal(&mut rng, block.cols, u.rank);
        planted.push((
            block.selection.tensor,
            block.selection.clone(),
            us,
            vs,
            theta,
        ));
        truths.push(UpdateTruth {
            spec: u.clone(),
            block: block.name.clone(),
            tensor: block.tensor.clone(),
            base_top: top,
            singular_value: theta,
        });
    }
    let mut tensors = Vec::new();
    for (idx, t) in ck.tensors().iter().enumerate() {
        let mine: Vec<_> = planted.iter().filter(|p| p.0 == idx).collect();
        let dtype = match cast {
            Some(c) if is_float(&t.dtype) => c.safetensors_name().to_owned(),
            _ => t.dtype.name().to_owned(),
        };
        let copy = mine.is_empty() && dtype == t.dtype.name();
        if !copy && !is_float(&t.dtype) {
            return Err(SynthError::Base(format!(
                "{}: {} tensors cannot be changed or cast (f32, f16, bf16 and f64 can)",
                t.name,
                t.dtype.name()
            )));
        }
        let elems: usize = t.shape.iter().product();
        let len = if copy {
            t.bytes.len()
        } else {
            elems * dtype_size(&dtype)
        };
        let ck = &ck;
        let make: Make<'_> = Box::new(move || {
            let bytes = ck
                .tensor_bytes(t)
                .map_err(|e| SynthError::Base(e.to_string()))?;
            if copy {
                return Ok(bytes);
            }
            let mut values = decode_raw(t, &bytes).unwrap_or_default();
            let ncols = *t.shape.last().unwrap_or(&1);
            for (_, sel, us, vs, theta) in &mine {
                add_low_rank(&mut values, ncols, sel, us, vs, *theta);
            }
            encode(&values, &dtype)
                .ok_or_else(|| SynthError::Base(format!("{}: cannot write {dtype}", t.name)))
        });
        tensors.push(Out {
            name: t.name.clone(),
            dtype: match cast {
                Some(c) if is_float(&t.dtype) => c.safetensors_name().to_owned(),
                _ => t.dtype.name().to_owned(),
            },
            shape: t.shape.clone(),
            len,
            make,
        });
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    write_safetensors(&out.join("model.safetensors"), &tensors)?;
    if let Some(cfg) = ck.config_path() {
        std::fs::copy(cfg, out.join("config.json")).map_err(io(out))?;
    }
    let truth = DerivedTruth {
        generator: GENERATOR.into(),
        kind: "finetune".into(),
        base: base.to_owned(),
        cast: cast.map(|c| c.safetensors_name().to_owned()),
        updates: truths,
        lora: None,
    };
    write_json(&out.join("truth.json"), &truth)?;
    Ok(truth)
}

/// Writes a PEFT LoRA adapter on `base` into `out`: adapter_config.json (naming `base` as
/// `base_model_name_or_path`), adapter_model.safetensors (f32 factors: A Kaiming-uniform as
/// PEFT initializes it, B normal(0, 0.02), or zero in the `zero_b` layer) and truth.json.
pub fn write_lora(out: &Path, base: &str, spec: &LoraSpec) -> Result<DerivedTruth, SynthError> {
    let (ck, an) = open_base(base)?;
    if spec.rank == 0 {
        return Err(SynthError::Spec("the LoRA rank must be at least 1".into()));
    }
    let mut tensors = Vec::new();
    let mut modules = Vec::new();
    let mut short: Vec<String> = Vec::new();
    for layer in 0..an.num_layers {
        for &proj in &spec.targets {
            let id = MatrixId {
                layer: Some(layer),
                proj,
                head: None,
                expert: None,
            };
            let Some(b) = an.matrix(id) else {
                return Err(SynthError::NoSuchMatrix(format!(
                    "--targets {proj}: the base has no {}",
                    describe(id)
                )));
            };
            let t = &ck.tensors()[b.selection.tensor];
            let whole = t.shape.len() == 2
                && b.selection.rows.len() == 1
                && b.selection.rows[0] == (0..t.shape[0])
                && b.selection.cols == (0..t.shape[1])
                && !b.selection.transpose;
            if !whole {
                return Err(SynthError::Spec(format!(
                    "{}: {proj} is part of a fused or transposed tensor; --lora-of needs \
                     separate q/k/v/o tensors (llama, bert)",
                    t.name
                )));
            }
            let module = t.name.strip_suffix(".weight").unwrap_or(&t.name).to_owned();
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let mut rng = Rng::new(spec.seed ^ fnv1a(&module));
            let bound = 1.0 / (cols as f64).sqrt();
            let a: Vec<f64> = (0..spec.rank * cols)
                .map(|_| rng.uniform_sym(bound))
                .collect();
            let bvals: Vec<f64> = if spec.zero_b == Some(layer) {
                vec![0.0; rows * spec.rank]
            } else {
                (0..rows * spec.rank).map(|_| 0.02 * rng.normal()).collect()
            };
            let name = |f: &str| format!("base_model.model.{module}.lora_{f}.weight");
            for (n, shape, v) in [
                (name("A"), vec![spec.rank, cols], a),
                (name("B"), vec![rows, spec.rank], bvals),
            ] {
                let len = v.len() * 4;
                tensors.push(Out {
                    name: n,
                    shape,
                    dtype: "F32".into(),
                    len,
                    make: Box::new(move || Ok(encode(&v, "F32").unwrap_or_default())),
                });
            }
            let last = module.rsplit('.').next().unwrap_or(&module).to_owned();
            if !short.contains(&last) {
                short.push(last);
            }
            modules.push(module);
        }
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    std::fs::create_dir_all(out).map_err(io(out))?;
    write_safetensors(&out.join("adapter_model.safetensors"), &tensors)?;
    // A local base is named by its absolute path, so the adapter finds it from anywhere.
    let named = std::fs::canonicalize(base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| base.to_owned());
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": named,
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": 0.0,
        "target_modules": short,
        "fan_in_fan_out": false,
        "use_rslora": false,
        "bias": "none",
        "inference_mode": true,
    });
    write_json(&out.join("adapter_config.json"), &config)?;
    let truth = DerivedTruth {
        generator: GENERATOR.into(),
        kind: "lora".into(),
        base: base.to_owned(),
        cast: None,
        updates: Vec::new(),
        lora: Some(LoraTruth {
            rank: spec.rank,
            alpha: spec.alpha,
            modules,
            zero_b_layer: spec.zero_b,
        }),
    };
    write_json(&out.join("truth.json"), &truth)?;
    Ok(truth)
}

/// "layer 3 q head 5".
fn describe(id: MatrixId) -> String {
    let mut s = format!("layer {} {}", id.layer.unwrap_or(0), id.proj);
    if let Some(h) = id.head {
        s.push_str(&format!(" head {h}"));
    }
    s
}

/// `k` random orthonormal vectors of length `n` (Gram–Schmidt on normal draws, twice).
fn orthonormal(rng: &mut Rng, n: usize, k: usize) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(k);
    while out.len() < k {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        for _ in 0..2 {
            for u in &out {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= d * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            v.iter_mut().for_each(|x| *x /= norm);
            out.push(v);
        }
    }
    out
}

/// Adds θ·Σₖ uₖvₖᵀ to the block `sel` cuts from a row-major stored tensor of `ncols` columns.
fn add_low_rank(
    values: &mut [f64],
    ncols: usize,
    sel: &Selection,
    us: &[Vec<f64>],
    vs: &[Vec<f64>],
    theta: f64,
) {
    let rows: Vec<usize> = sel.rows.iter().flat_map(|r| r.clone()).collect();
    for (ci, &sr) in rows.iter().enumerate() {
        for (cj, sc) in sel.cols.clone().enumerate() {
            // Logical (i, j) is the cut's (ci, cj), or its transpose.
            let (i, j) = if sel.transpose { (cj, ci) } else { (ci, cj) };
            let d: f64 = us.iter().zip(vs).map(|(u, v)| u[i] * v[j]).sum();
            values[sr * ncols + sc] += theta * d;
        }
    }
}

/// True for the float dtypes a derived checkpoint can change or cast.
fn is_float(d: &Dtype) -> bool {
    matches!(d, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// A tensor's stored bytes as f64 values (f64, f32, f16 and bf16 only).
fn decode_raw(t: &TensorInfo, bytes: &[u8]) -> Option<Vec<f64>> {
    Some(match t.dtype {
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect(),
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()) as f64)
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        _ => return None,
    })
}

/// Values rounded to a safetensors dtype (F64, F32, F16, BF16), little-endian.
fn encode(values: &[f64], dtype: &str) -> Option<Vec<u8>> {
    Some(match dtype {
        "F64" => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        "F32" => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        "F16" => values
            .iter()
            .flat_map(|&v| half::f16::from_f64(v).to_le_bytes())
            .collect(),
        "BF16" => values
            .iter()
            .flat_map(|&v| half::bf16::from_f64(v).to_le_bytes())
            .collect(),
        _ => return None,
    })
}

/// Produces a tensor's bytes when the writer reaches it.
type Make<'a> = Box<dyn Fn() -> Result<Vec<u8>, SynthError> + 'a>;

/// One tensor to write: name, dtype, shape, byte length, and how to make its bytes.
struct Out<'a> {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    len: usize,
    make: Make<'a>,
}

/// Bytes per element of a safetensors dtype name (1 for the 8-bit and unknown ones).
fn dtype_size(name: &str) -> usize {
    match name {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        _ => 1,
    }
}

/// Writes a safetensors file: the JSON header (padded with spaces to a multiple of 8 bytes),
/// then each tensor's bytes in order, made one at a time so that only one tensor is ever in
/// memory. Goes through a temporary file renamed into place.
fn write_safetensors(path: &Path, tensors: &[Out<'_>]) -> Result<(), SynthError> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for t in tensors {
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype,
                "shape": t.shape,
                "data_offsets": [offset, offset + t.len],
            }),
        );
        offset += t.len;
    }
    let mut text = serde_json::to_string(&header).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let tmp = path.with_extension("safetensors.tmp");
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&(text.len() as u64).to_le_bytes())
        .and_then(|()| w.write_all(text.as_bytes()))
        .map_err(io(&tmp))?;
    for t in tensors {
        let bytes = (t.make)()?;
        if bytes.len() != t.len {
            return Err(SynthError::Base(format!(
                "{}: {} bytes where the header says {}",
                t.name,
                bytes.len(),
                t.len
            )));
        }
        w.write_all(&bytes).map_err(io(&tmp))?;
    }
    w.flush().map_err(io(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes a value as pretty JSON.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SynthError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(io(path))
}

/// An I/O error on `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + use<> {
    let path: PathBuf = path.to_path_buf();
    move |source| SynthError::Io { path, source }
}
