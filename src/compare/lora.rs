//! PEFT LoRA adapters: `adapter_config.json`, the A and B factors of each adapted module, and
//! the exact spectrum of ΔW = s·B·A in factored form.
//!
//! **Scale.** s = lora_alpha / r, or lora_alpha / √r with `use_rslora`; `rank_pattern` and
//! `alpha_pattern` override r and lora_alpha for the modules whose name ends in one of their
//! keys (PEFT's `(^|.*\.)KEY$` match, first key that matches).
//!
//! **Which modules.** PEFT builds a LoRA layer only where `target_modules` matches (a list:
//! the full module name or its last dotted parts; a string: a regex that must match the whole
//! name; `"all-linear"`: every module) and, with `layers_to_transform`, only in those layers
//! (the number after `layers_pattern`, else after any `NAME.N.`). Adapter tensors outside
//! those modules are never loaded by PEFT; mpscope lists them and leaves them out too.
//!
//! **Factored spectrum.** With X (m × r) and Y (r × n) the block's cut of B and A (B's rows
//! of a head for q/k/v, A's columns of a head for o; swapped and transposed with
//! `fan_in_fan_out`), ΔW = s·X·Y. QR of X and of Yᵀ gives X = Q₁R₁, Yᵀ = Q₂R₂, so
//! ΔW = s·Q₁(R₁R₂ᵀ)Q₂ᵀ and its nonzero singular values are |s| times those of the r × r core
//! R₁R₂ᵀ: O((m + n)r²) work, exact up to rounding (the tests check 1e-10 relative against a
//! dense SVD of s·B·A), and the m × n product is never formed.

use std::path::{Path, PathBuf};

use faer::{Mat, MatRef, Par};
use regex::Regex;
use serde_json::Value;

use super::error::CompareError;
use crate::checkpoint::{Checkpoint, Selection};
use crate::spectrum::{Method, singular_values_with};

/// PEFT's prefix of every tensor name in an adapter file.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// Name of a PEFT adapter's config file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

/// Name of a PEFT adapter's weights file.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// True when `dir` is a directory holding `adapter_config.json`.
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join(ADAPTER_CONFIG).is_file()
}

/// Which modules a LoRA config adapts (`target_modules`).
#[derive(Debug, Clone)]
pub enum Targets {
    /// Module names or their trailing dotted parts.
    Names(Vec<String>),
    /// A regex that must match the whole module name.
    Regex(Regex),
    /// `"all-linear"`: every module in the file.
    All,
}

/// What `adapter_config.json` says (the fields mpscope honours).
#[derive(Debug, Clone)]
pub struct LoraConfig {
    /// `base_model_name_or_path`.
    pub base_model: Option<String>,
    /// `r`.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f64,
    /// `use_rslora`: s = alpha / √r.
    pub use_rslora: bool,
    /// `fan_in_fan_out`: the base stores the weight as [in, out] (GPT-2's Conv1D).
    pub fan_in_fan_out: bool,
    /// `target_modules`.
    pub targets: Targets,
    /// `layers_to_transform`.
    pub layers: Option<Vec<usize>>,
    /// `layers_pattern`.
    pub layers_pattern: Vec<String>,
    /// `rank_pattern`: (key, r).
    pub rank_pattern: Vec<(String, usize)>,
    /// `alpha_pattern`: (key, alpha).
    pub alpha_pattern: Vec<(String, f64)>,
}

impl LoraConfig {
    /// Parses the text of an `adapter_config.json` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, CompareError> {
        let bad = |problem: String| CompareError::BadAdapter {
            path: path.to_path_buf(),
            problem,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(t) = v.get("peft_type").and_then(Value::as_str)
            && !t.eq_ignore_ascii_case("lora")
        {
            return Err(bad(format!(
                "peft_type is {t:?}; mpscope reads LoRA adapters"
            )));
        }
        let r = match v.get("r") {
            Some(x) => x
                .as_u64()
                .filter(|&r| r > 0)
                .ok_or_else(|| bad(format!("\"r\" is {x}, not a positive integer")))?
                as usize,
            None => 8,
        };
        let alpha = match v.get("lora_alpha") {
            Some(x) => x
                .as_f64()
                .filter(|a| a.is_finite())
                .ok_or_else(|| bad(format!("\"lora_alpha\" is {x}, not a number")))?,
            None => 8.0,
        };
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let strings = |k: &str| -> Result<Vec<String>, CompareError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("\"{k}\" holds {x}, not a string")))
                    })
                    .collect(),
                Some(x) => Err(bad(format!("\"{k}\" is {x}, not a string or a list"))),
            }
        };
        let targets = match v.get("target_modules") {
            Some(Value::String(s)) if s == "all-linear" => Targets::All,
            Some(Value::String(s)) => Targets::Regex(
                Regex::new(&format!("^(?:{s})$"))
                    .map_err(|e| bad(format!("\"target_modules\" is not a regex: {e}")))?,
            ),
            None | Some(Value::Null) => Targets::All,
            Some(_) => Targets::Names(strings("target_modules")?),
        };
        let layers =
            match v.get("layers_to_transform") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(vec![n.as_u64().ok_or_else(|| {
                    bad(format!("\"layers_to_transform\" is {n}, not a layer index"))
                })? as usize]),
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|x| {
                            x.as_u64().map(|l| l as usize).ok_or_else(|| {
                                bad(format!(
                                    "\"layers_to_transform\" holds {x}, not a layer index"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Some(x) => return Err(bad(format!("\"layers_to_transform\" is {x}"))),
            };
        let pattern = |k: &str| -> Result<Vec<(String, f64)>, CompareError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(key, x)| {
                        x.as_f64()
                            .filter(|a| a.is_finite() && *a > 0.0)
                            .map(|a| (key.clone(), a))
                            .ok_or_else(|| bad(format!("\"{k}\" maps {key:?} to {x}")))
                    })
                    .collect(),
                Some(x) => Err(bad(format!("\"{k}\" is {x}, not an object"))),
            }
        };
        Ok(Self {
            base_model: v
                .get("base_model_name_or_path")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            r,
            alpha,
            use_rslora: flag("use_rslora"),
            fan_in_fan_out: flag("fan_in_fan_out"),
            targets,
            layers,
            layers_pattern: strings("layers_pattern")?,
            rank_pattern: pattern("rank_pattern")?
                .into_iter()
                .map(|(k, r)| (k, r as usize))
                .collect(),
            alpha_pattern: pattern("alpha_pattern")?,
        })
    }

    /// Whether PEFT would build a LoRA layer on `module` (target_modules and
    /// layers_to_transform).
    pub fn targets(&self, module: &str) -> bool {
        let named = match &self.targets {
            Targets::All => true,
            Targets::Regex(re) => re.is_match(module),
            Targets::Names(names) => names
                .iter()
                .any(|t| module == t || module.ends_with(&format!(".{t}"))),
        };
        if !named {
            return false;
        }
        let Some(layers) = &self.layers else {
            return true;
        };
        match layer_index(module, &self.layers_pattern) {
            Some(l) => layers.contains(&l),
            None => true,
        }
    }

    /// r and lora_alpha of `module`, after `rank_pattern` and `alpha_pattern`.
    pub fn rank_alpha(&self, module: &str) -> (usize, f64) {
        let r = pattern_value(&self.rank_pattern, module).unwrap_or(self.r);
        let alpha = pattern_value(&self.alpha_pattern, module).unwrap_or(self.alpha);
        (r, alpha)
    }

    /// The scale s of `module`'s ΔW = s·B·A.
    pub fn scale(&self, module: &str) -> f64 {
        let (r, alpha) = self.rank_alpha(module);
        if self.use_rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        }
    }
}

/// The value of the first pattern key that `module` ends with (as a whole dotted part or a
/// regex matching its tail).
fn pattern_value<T: Copy>(pattern: &[(String, T)], module: &str) -> Option<T> {
    pattern.iter().find_map(|(key, v)| {
        let re = Regex::new(&format!("(^|.*\\.)(?:{key})$")).ok();
        let hit = match re {
            Some(re) => re.is_match(module),
            None => module == key || module.ends_with(&format!(".{key}")),
        };
        hit.then_some(*v)
    })
}

/// The layer index of a module name: the number after one of `patterns` (`layers.3.`), or
/// with no pattern the first number between dots.
fn layer_index(module: &str, patterns: &[String]) -> Option<usize> {
    let parts: Vec<&str> = module.split('.').collect();
    parts.windows(2).find_map(|w| {
        let named = patterns.is_empty() || patterns.iter().any(|p| p == w[0]);
        if named { w[1].parse().ok() } else { None }
    })
}

/// One adapted module: where its factors are and how ΔW is scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraModule {
    /// Module name in the base model, e.g. `model.layers.0.self_attn.q_proj`.
    pub module: String,
    /// Index of `lora_A` ([r, in]) in the adapter's tensors.
    pub a: usize,
    /// Index of `lora_B` ([out, r]) in the adapter's tensors.
    pub b: usize,
    /// r.
    pub rank: usize,
    /// s.
    pub scale: f64,
}

/// An opened PEFT LoRA adapter: its config, its weights file and its modules.
#[derive(Debug)]
pub struct Adapter {
    /// The adapter directory.
    pub dir: PathBuf,
    /// What adapter_config.json says.
    pub config: LoraConfig,
    /// adapter_model.safetensors, opened by the checkpoint room.
    pub weights: Checkpoint,
    /// Adapted modules, by name.
    pub modules: Vec<LoraModule>,
    /// Tensors left out (not targeted by the config, or without their partner), and why.
    pub notes: Vec<String>,
}

impl Adapter {
    /// Opens the adapter in `dir` (adapter_config.json + adapter_model.safetensors).
    pub fn open(dir: &Path) -> Result<Self, CompareError> {
        let cfg_path = dir.join(ADAPTER_CONFIG);
        let bad = |path: &Path, problem: String| CompareError::BadAdapter {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| bad(&cfg_path, format!("cannot read: {e}")))?;
        let config = LoraConfig::parse(&cfg_path, &text)?;
        let weights_path = dir.join(ADAPTER_WEIGHTS);
        if !weights_path.is_file() {
            let hint = if dir.join("adapter_model.bin").is_file() {
                " (found adapter_model.bin, a PyTorch pickle mpscope does not read; save with \
                 safe_serialization=True)"
            } else {
                ""
            };
            return Err(bad(&weights_path, format!("no such file{hint}")));
        }
        let weights = Checkpoint::open(&weights_path.to_string_lossy())
            .map_err(|e| bad(&weights_path, e.to_string()))?;
        let (modules, notes) = modules(&config, &weights, &weights_path)?;
        if modules.is_empty() {
            return Err(bad(
                &weights_path,
                "no lora_A / lora_B pair of a targeted module".into(),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            weights,
            modules,
            notes,
        })
    }

    /// The module adapting the base tensor `tensor` (`NAME.weight` → module `NAME`).
    pub fn module_of(&self, tensor: &str) -> Option<&LoraModule> {
        let name = tensor.strip_prefix(PEFT_PREFIX).unwrap_or(tensor);
        let name = name.strip_suffix(".weight").unwrap_or(name);
        self.modules.iter().find(|m| m.module == name)
    }
}

/// Splits an adapter tensor name into (module, "A" or "B").
fn split_name(name: &str) -> Option<(&str, char)> {
    let name = name.strip_prefix(PEFT_PREFIX).unwrap_or(name);
    for (tag, which) in [(".lora_A.", 'A'), (".lora_B.", 'B')] {
        if let Some(i) = name.find(tag) {
            let rest = &name[i + tag.len()..];
            // `weight`, or `ADAPTER.weight` as some savers write it.
            if rest == "weight" || rest.ends_with(".weight") {
                return Some((&name[..i], which));
            }
        }
    }
    None
}

/// The adapted modules of an adapter file, with the tensors left out and why.
fn modules(
    config: &LoraConfig,
    weights: &Checkpoint,
    path: &Path,
) -> Result<(Vec<LoraModule>, Vec<String>), CompareError> {
    let mut found: Vec<(String, Option<usize>, Option<usize>)> = Vec::new();
    let mut notes = Vec::new();
    for (i, t) in weights.tensors().iter().enumerate() {
        let Some((module, which)) = split_name(&t.name) else {
            notes.push(format!(
                "{}: not a lora_A / lora_B weight, left out",
                t.name
            ));
            continue;
        };
        let slot = match found.iter().position(|f| f.0 == module) {
            Some(k) => k,
            None => {
                found.push((module.to_owned(), None, None));
                found.len() - 1
            }
        };
        if which == 'A' {
            found[slot].1 = Some(i);
        } else {
            found[slot].2 = Some(i);
        }
    }
    let mut out = Vec::new();
    for (module, a, b) in found {
        let (Some(a), Some(b)) = (a, b) else {
            notes.push(format!(
                "{module}: has lora_{} but not lora_{}, left out",
                if a.is_some() { 'A' } else { 'B' },
                if a.is_some() { 'B' } else { 'A' }
            ));
            continue;
        };
        if !config.targets(&module) {
            notes.push(format!(
                "{module}: not targeted by adapter_config.json (target_modules / \
                 layers_to_transform), left out as PEFT would"
            ));
            continue;
        }
        let ts = weights.tensors();
        let (sa, sb) = (&ts[a].shape, &ts[b].shape);
        let (r, _) = config.rank_alpha(&module);
        let ok =
            matches!((sa.as_slice(), sb.as_slice()), ([ra, _], [_, rb]) if *ra == r && *rb == r);
        if !ok {
            return Err(CompareError::BadAdapter {
                path: path.to_path_buf(),
                problem: format!(
                    "{module}: lora_A is {sa:?} and lora_B is {sb:?}, but adapter_config.json \
                     gives rank {r} (expected [{r}, in] and [out, {r}])"
                ),
            });
        }
        out.push(LoraModule {
            scale: config.scale(&module),
            module,
            a,
            b,
            rank: r,
        });
    }
    Ok((out, notes))
}

/// Where one block's factors X (m × r) and Y (r × n) come from: ΔW_block = s·X·Y.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraBlock {
    /// The adapted module.
    pub module: LoraModule,
    /// The block's cut of the base tensor (rows, columns, transpose).
    pub selection: Selection,
    /// The base stores [in, out] (`fan_in_fan_out`).
    pub fan_in_fan_out: bool,
}

impl LoraBlock {
    /// Decodes X and Y of the block from the adapter's weights, in f64.
    ///
    /// The stored ΔW is L·R with L = B, R = A (or L = Aᵀ, R = Bᵀ with fan_in_fan_out); the
    /// block cuts rows of L and columns of R, then transposes when the base block does.
    // Selections of all r rows of a factor are one-range lists on purpose.
    #[allow(clippy::single_range_in_vec_init)]
    pub fn factors(&self, weights: &Checkpoint) -> Result<Factors, String> {
        let r = self.module.rank;
        let sel = &self.selection;
        let dec = |s: Selection| weights.decode_f64(&s).map_err(|e| e.to_string());
        let (l, rr) = if self.fan_in_fan_out {
            // L = Aᵀ: rows of L are columns of A; R = Bᵀ: columns of R are rows of B.
            let mut parts = Vec::new();
            for rows in &sel.rows {
                parts.push(dec(Selection {
                    tensor: self.module.a,
                    rows: vec![0..r],
                    cols: rows.clone(),
                    transpose: true,
                })?);
            }
            let l = stack(&parts, r);
            let rr = dec(Selection {
                tensor: self.module.b,
                rows: vec![sel.cols.clone()],
                cols: 0..r,
                transpose: true,
            })?;
            (l, rr)
        } else {
            let l = dec(Selection {
                tensor: self.module.b,
                rows: sel.rows.clone(),
                cols: 0..r,
                transpose: false,
            })?;
            let rr = dec(Selection {
                tensor: self.module.a,
                rows: vec![0..r],
                cols: sel.cols.clone(),
                transpose: false,
            })?;
            (l, rr)
        };
        let (b_cut, a_cut) = if self.fan_in_fan_out {
            (&rr, &l)
        } else {
            (&l, &rr)
        };
        let zero = if all_zero(b_cut.as_ref()) {
            Some("lora_B")
        } else if all_zero(a_cut.as_ref()) {
            Some("lora_A")
        } else {
            None
        };
        let (x, y) = if sel.transpose {
            (rr.transpose().to_owned(), l.transpose().to_owned())
        } else {
            (l, rr)
        };
        Ok(Factors { x, y, zero })
    }
}

/// One block's factors: ΔW_block = s·X·Y.
#[derive(Debug, Clone)]
pub struct Factors {
    /// X, m × r.
    pub x: Mat<f64>,
    /// Y, r × n.
    pub y: Mat<f64>,
    /// Which adapter factor is all zero on this block (`"lora_B"` or `"lora_A"`), if one is.
    pub zero: Option<&'static str>,
}

/// Stacks matrices of `cols` columns vertically.
fn stack(parts: &[Mat<f64>], cols: usize) -> Mat<f64> {
    let rows: usize = parts.iter().map(|p| p.nrows()).sum();
    let mut out = Mat::<f64>::zeros(rows, cols);
    let mut at = 0;
    for p in parts {
        out.as_mut()
            .subrows_mut(at, p.nrows())
            .copy_from(p.as_ref());
        at += p.nrows();
    }
    out
}

/// True when every entry of `m` is zero.
pub fn all_zero(m: MatRef<'_, f64>) -> bool {
    (0..m.ncols()).all(|j| m.col(j).iter().all(|&x| x == 0.0))
}

/// Singular values (descending, min(m, n) of them, the last min(m, n) − r zero) of
/// s·X·Y for X m × r and Y r × n, from QR(X), QR(Yᵀ) and the SVD of the small core, all on the
/// calling thread (many small blocks run in parallel on the worker's threads instead).
pub fn factored_values(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    scale: f64,
) -> Result<Vec<f64>, String> {
    let (m, n) = (x.nrows(), y.ncols());
    let p = m.min(n);
    let rx = r_factor(x.to_owned());
    let ry = r_factor(y.transpose().to_owned());
    let core = &rx * ry.transpose();
    let mut values: Vec<f64> = if core.nrows() == 0 || core.ncols() == 0 || all_zero(core.as_ref())
    {
        Vec::new()
    } else {
        singular_values_with(core.as_ref(), Method::SvdF64, Par::Seq).map_err(|e| {
            format!(
                "SVD of the {}×{} LoRA core: {e}",
                core.nrows(),
                core.ncols()
            )
        })?
    };
    for v in &mut values {
        *v *= scale.abs();
    }
    values.truncate(p);
    values.resize(p, 0.0);
    values.sort_by(|a, b| b.total_cmp(a));
    Ok(values)
}

/// The R factor (min(m, k) × k, upper trapezoidal) of the Householder QR of an m × k matrix,
/// computed sequentially.
fn r_factor(mut a: Mat<f64>) -> Mat<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::qr::no_pivoting::factor;
    let (m, k) = a.shape();
    let size = m.min(k);
    if size == 0 {
        return Mat::zeros(size, k);
    }
    let block = factor::recommended_block_size::<f64>(m, k);
    let mut coeff = Mat::<f64>::zeros(block, size);
    let mut mem = MemBuffer::new(factor::qr_in_place_scratch::<f64>(
        m,
        k,
        block,
        Par::Seq,
        Default::default(),
    ));
    factor::qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    );
    Mat::from_fn(size, k, |i, j| if i <= j { a[(i, j)] } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Mat<f64> {
        let mut rng = Rng::new(seed);
        Mat::from_fn(rows, cols, |_, _| rng.normal())
    }

    /// The factored values equal a dense SVD of s·X·Y to 1e-10 relative, for tall, wide,
    /// rank-deficient and r > min(m, n) shapes.
    #[test]
    fn factored_spectrum_matches_dense_svd() {
        for (m, n, r, seed) in [
            (64, 256, 8, 1),
            (256, 64, 16, 2),
            (96, 96, 4, 3),
            (6, 40, 8, 4),
        ] {
            let x = random(m, r, seed);
            let y = random(r, n, seed + 100);
            let s = 2.5;
            let dense = (&x * &y) * faer::Scale(s);
            let want = dense.singular_values().unwrap();
            let got = factored_values(x.as_ref(), y.as_ref(), s).unwrap();
            assert_eq!(got.len(), m.min(n));
            let top = want[0];
            for (g, w) in got.iter().zip(&want) {
                // Values that are zero in exact arithmetic sit at rounding level in the dense SVD.
                let tol = if *w > 1e-8 * top {
                    1e-10 * w
                } else {
                    1e-12 * top
                };
                assert!((g - w).abs() <= tol, "{m}×{n} r{r}: {g} vs {w}");
            }
            assert_eq!(
                got.iter().filter(|&&v| v > 1e-8 * top).count(),
                r.min(m).min(n)
            );
        }
    }

    #[test]
    fn zero_factor_gives_zero_spectrum() {
        let x = Mat::<f64>::zeros(32, 4);
        let y = random(4, 48, 9);
        assert!(all_zero(x.as_ref()) && !all_zero(y.as_ref()));
        let v = factored_values(x.as_ref(), y.as_ref(), 2.0).unwrap();
        assert!(v.iter().all(|&v| v == 0.0) && v.len() == 32);
    }

    fn config(json: &str) -> LoraConfig {
        LoraConfig::parse(Path::new("adapter_config.json"), json).unwrap()
    }

    #[test]
    fn scale_patterns_and_targets_follow_peft() {
        let c = config(
            r#"{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj","v_proj"],
                "rank_pattern":{"layers.1.self_attn.q_proj":4},"alpha_pattern":{"v_proj":32},
                "layers_to_transform":[0,1],"layers_pattern":"layers"}"#,
        );
        let q0 = "model.layers.0.self_attn.q_proj";
        let q1 = "model.layers.1.self_attn.q_proj";
        let v0 = "model.layers.0.self_attn.v_proj";
        assert_eq!(c.scale(q0), 2.0);
        assert_eq!(c.rank_alpha(q1), (4, 16.0));
        assert_eq!(c.scale(q1), 4.0);
        assert_eq!(c.scale(v0), 4.0);
        assert!(c.targets(q0) && c.targets(v0));
        assert!(
            !c.targets("model.layers.2.self_attn.q_proj"),
            "layer 2 not transformed"
        );
        assert!(
            !c.targets("model.layers.0.self_attn.k_proj"),
            "k not targeted"
        );
        let rs = config(
            r#"{"r":16,"lora_alpha":8,"use_rslora":true,"target_modules":".*\\.(q|k)_proj"}"#,
        );
        assert_eq!(rs.scale(q0), 2.0);
        assert!(rs.targets("model.layers.0.self_attn.k_proj") && !rs.targets(v0));
        let bad = LoraConfig::parse(Path::new("a.json"), r#"{"r":0}"#).unwrap_err();
        assert!(bad.to_string().contains("\"r\""), "{bad}");
        let ia3 = LoraConfig::parse(Path::new("a.json"), r#"{"peft_type":"IA3"}"#).unwrap_err();
        assert!(ia3.to_string().contains("IA3"), "{ia3}");
    }

    #[test]
    fn tensor_names_split_into_module_and_factor() {
        assert_eq!(
            split_name("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            Some(("model.layers.0.self_attn.q_proj", 'A'))
        );
        assert_eq!(
            split_name("base_model.model.h.0.attn.c_attn.lora_B.default.weight"),
            Some(("h.0.attn.c_attn", 'B'))
        );
        assert_eq!(split_name("base_model.model.lm_head.weight"), None);
    }
}
