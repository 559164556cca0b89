//! The plan of a synthetic checkpoint: every logical matrix (with its planted structure) and
//! every stored tensor (name, shape, and how it is laid out from logical matrices).

use rayon::prelude::*;

use super::draw::{
    Axis, ColScale, Draw, GenPlan, HeadDraws, LowRank, Rank1, key_seed, lognormal_scales,
    orthonormal, orthonormal_shaped,
};
use super::error::SynthError;
use super::recipe::{Bulk, CollapseSpec, Target};
use super::spec::{SynthDtype, SynthFamily, SynthProj, SynthSpec};
use super::truth::{CollapseTruth, ColumnScaleTruth, HeadTruth, MatrixTruth, SpikeTruth};
use crate::rng::Rng;

/// σ of embeddings (normal(0, 0.02), like `initializer_range`).
const EMBED_SD: f64 = 0.02;
/// σ of the noise around 1 in norm weights.
const NORM_SD: f64 = 0.02;
/// σ of biases.
const BIAS_SD: f64 = 0.01;

/// A logical matrix (or a 1-D vector, stored as one row).
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    pub layer: Option<usize>,
    pub proj: Option<SynthProj>,
    /// Routed expert index of an expert's gate, up or down.
    pub expert: Option<usize>,
    pub rows: usize,
    pub cols: usize,
    pub rows_gen: GenPlan,
    pub truth: Option<MatrixTruth>,
}

/// How a stored tensor is made of logical matrices.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// Logical matrices stacked by rows (a single one: stored as is).
    Stack(Vec<usize>),
    /// GPT-NeoX: for each head h, d rows of each part in turn.
    Interleave { parts: [usize; 3], d: usize },
    /// GPT-2 Conv1D: the row-stack of the parts, transposed ([in, out]).
    Transpose(Vec<usize>),
}

/// One tensor as written to the file.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub name: String,
    pub shape: Vec<usize>,
    pub layout: Layout,
    /// Shard unit: 0 before the layers, 1 + N for layer N, layers + 1 after.
    pub group: usize,
    /// The Mixture-of-Experts part it is, for the GGUF writer's stacking and names.
    pub moe: Option<MoePart>,
}

/// A Mixture-of-Experts tensor of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MoePart {
    /// The router [experts, hidden].
    Router { layer: usize },
    /// One expert's gate, up or down.
    Expert {
        layer: usize,
        proj: SynthProj,
        expert: usize,
    },
}

impl Stored {
    pub(crate) fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The whole checkpoint, resolved but not yet generated.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub spec: SynthSpec,
    pub logicals: Vec<Logical>,
    pub stored: Vec<Stored>,
}

struct Builder<'a> {
    spec: &'a SynthSpec,
    logicals: Vec<Logical>,
    stored: Vec<Stored>,
    group: usize,
}

impl Builder<'_> {
    fn vector(&mut self, name: &str, n: usize, draw: Draw) {
        let rows_gen = GenPlan::plain(key_seed(self.spec.seed, name), draw);
        self.logicals.push(Logical {
            layer: None,
            proj: None,
            expert: None,
            rows: 1,
            cols: n,
            rows_gen,
            truth: None,
        });
        let idx = self.logicals.len() - 1;
        self.store(name, vec![n], Layout::Stack(vec![idx]));
    }

    fn norm(&mut self, name: &str, n: usize) {
        self.vector(name, n, Draw::normal(1.0, NORM_SD));
    }

    fn bias(&mut self, name: &str, n: usize) {
        self.vector(name, n, Draw::normal(0.0, BIAS_SD));
    }

    /// A 2-D matrix outside the layer projections, stored as is.
    fn named(&mut self, name: &str, rows: usize, cols: usize, bulk: Bulk, sigma: f64, emb: bool) {
        let rows_gen = GenPlan::plain(key_seed(self.spec.seed, name), Draw::bulk(bulk, sigma));
        let truth = MatrixTruth {
            embedding: emb,
            ..plain_truth(name.to_string(), name, rows, cols, bulk, sigma)
        };
        self.logicals.push(Logical {
            layer: None,
            proj: None,
            expert: None,
            rows,
            cols,
            rows_gen,
            truth: Some(truth),
        });
        let idx = self.logicals.len() - 1;
        self.store(name, vec![rows, cols], Layout::Stack(vec![idx]));
    }

    fn embedding(&mut self, name: &str, rows: usize) {
        let h = self.spec.hidden;
        self.named(name, rows, h, Bulk::Gaussian, EMBED_SD, true);
    }

    fn store(&mut self, name: &str, shape: Vec<usize>, layout: Layout) {
        self.stored.push(Stored {
            name: name.to_string(),
            shape,
            layout,
            group: self.group,
            moe: None,
        });
    }

    /// A plain Kaiming-uniform layer matrix with no planted structure (an expert's matrix
    /// or the router), stored as is under `name`.
    fn plain_layer_matrix(
        &mut self,
        name: &str,
        key: String,
        rows: usize,
        cols: usize,
        moe: MoePart,
    ) {
        let sigma = self.spec.gain / (cols as f64).sqrt();
        let bulk = Bulk::KaimingUniform;
        let (layer, proj, expert) = match moe {
            MoePart::Router { layer } => (layer, None, None),
            MoePart::Expert {
                layer,
                proj,
                expert,
            } => (layer, Some(proj), Some(expert)),
        };
        let rows_gen = GenPlan::plain(key_seed(self.spec.seed, &key), Draw::bulk(bulk, sigma));
        self.logicals.push(Logical {
            layer: Some(layer),
            proj,
            expert,
            rows,
            cols,
            rows_gen,
            truth: Some(MatrixTruth {
                layer: Some(layer),
                proj,
                expert,
                ..plain_truth(key, name, rows, cols, bulk, sigma)
            }),
        });
        let idx = self.logicals.len() - 1;
        self.store(name, vec![rows, cols], Layout::Stack(vec![idx]));
        if let Some(st) = self.stored.last_mut() {
            st.moe = Some(moe);
        }
    }

    /// A Mixtral layer's sparse MLP: the router, then each expert's w1 (gate), w2 (down) and
    /// w3 (up), as `MixtralSparseMoeBlock` names them.
    fn mixtral_moe(&mut self, layer: usize) {
        let (h, i) = (self.spec.hidden, self.spec.intermediate());
        let p = format!("model.layers.{layer}.block_sparse_moe.");
        let n = self.spec.experts;
        self.plain_layer_matrix(
            &format!("{p}gate.weight"),
            format!("L{layer}.router"),
            n,
            h,
            MoePart::Router { layer },
        );
        for e in 0..n {
            for (proj, w, rows, cols) in [
                (SynthProj::Gate, "w1", i, h),
                (SynthProj::Down, "w2", h, i),
                (SynthProj::Up, "w3", i, h),
            ] {
                self.plain_layer_matrix(
                    &format!("{p}experts.{e}.{w}.weight"),
                    format!("L{layer}.e{e}.{proj}"),
                    rows,
                    cols,
                    MoePart::Expert {
                        layer,
                        proj,
                        expert: e,
                    },
                );
            }
        }
    }

    /// Stores layer projections; `tensor` names the stored tensor in every part's truth.
    fn store_parts(&mut self, name: &str, parts: &[usize], layout_kind: LayoutKind) {
        for &p in parts {
            if let Some(t) = self.logicals[p].truth.as_mut() {
                t.tensor = name.to_string();
            }
        }
        let rows: usize = parts.iter().map(|&p| self.logicals[p].rows).sum();
        let cols = parts.first().map_or(0, |&p| self.logicals[p].cols);
        let (shape, layout) = match layout_kind {
            LayoutKind::Stack => (vec![rows, cols], Layout::Stack(parts.to_vec())),
            LayoutKind::Transpose => (vec![cols, rows], Layout::Transpose(parts.to_vec())),
            LayoutKind::Interleave => {
                let parts3 = [parts[0], parts[1], parts[2]];
                let d = self.spec.head_dim();
                (vec![rows, cols], Layout::Interleave { parts: parts3, d })
            }
        };
        self.store(name, shape, layout);
    }
}

#[derive(Clone, Copy)]
enum LayoutKind {
    Stack,
    Transpose,
    Interleave,
}

/// The truth of a matrix with nothing planted, outside the layers until said otherwise.
fn plain_truth(
    key: String,
    tensor: &str,
    rows: usize,
    cols: usize,
    bulk: Bulk,
    sigma: f64,
) -> MatrixTruth {
    MatrixTruth {
        key,
        tensor: tensor.to_string(),
        layer: None,
        proj: None,
        expert: None,
        rows,
        cols,
        embedding: false,
        bulk,
        sigma,
        bound: bound_of(bulk, sigma),
        spikes: Vec::new(),
        collapse: None,
        column_scale: None,
        heads: Vec::new(),
    }
}

fn bound_of(bulk: Bulk, sigma: f64) -> Option<f64> {
    (bulk == Bulk::KaimingUniform).then(|| 3f64.sqrt() * sigma)
}

/// A planted block: its bulk draw and the truth of its collapse, spikes and column scales.
type Planted = (
    Draw,
    Option<CollapseTruth>,
    Vec<SpikeTruth>,
    Option<ColumnScaleTruth>,
);

/// What truth.json records of a block's column scales.
fn column_scale_truth(tau: f64, s: &[f64]) -> ColumnScaleTruth {
    let (s2, s4) = s
        .iter()
        .fold((0.0, 0.0), |(a, b), x| (a + x * x, b + x.powi(4)));
    ColumnScaleTruth {
        tau,
        min: s.iter().copied().fold(f64::INFINITY, f64::min),
        max: s.iter().copied().fold(0.0, f64::max),
        participation: if s4 > 0.0 {
            s2 * s2 / s4 / s.len() as f64
        } else {
            1.0
        },
    }
}

/// Checks that every target names layers, projections and heads that exist.
fn check_targets(spec: &SynthSpec) -> Result<(), SynthError> {
    let targets = spec
        .spikes
        .iter()
        .map(|s| (s.target, s.to_string()))
        .chain(spec.heavy_tail.iter().map(|s| (s.target, s.to_string())))
        .chain(spec.collapse.iter().map(|s| (s.target, s.to_string())))
        .chain(spec.column_scale.iter().map(|s| (s.target, s.to_string())));
    for (t, text) in targets {
        let bad = |why: String| Err(SynthError::Spec(format!("planting `{text}`: {why}")));
        if let Some(l) = t.layers
            && l.last >= spec.layers
        {
            return bad(format!(
                "layer {} does not exist (the model has {} layers)",
                l.last, spec.layers
            ));
        }
        if t.proj == SynthProj::Gate && !spec.family.has_gate() {
            return bad(format!("family {} has no gate projection", spec.family));
        }
        if !t.proj.is_attention() && spec.family.is_moe() {
            return bad(format!(
                "family {}'s gate, up and down are experts, which plantings do not reach",
                spec.family
            ));
        }
        if let Some(h) = t.heads {
            match spec.proj_heads(t.proj) {
                None => return bad(format!("{} has no heads", t.proj)),
                Some(n) if h.last >= n => {
                    return bad(format!(
                        "head {} does not exist ({} has {n} heads)",
                        h.last, t.proj
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Resolves one layer projection: bulk, heads, collapse and spikes, with its truth.
fn resolve(spec: &SynthSpec, layer: usize, proj: SynthProj) -> Result<Logical, SynthError> {
    let (rows, cols) = spec.proj_shape(proj);
    let key = format!("L{layer}.{proj}");
    let seed = key_seed(spec.seed, &key);
    let sigma = spec.gain / (cols as f64).sqrt();
    let d = spec.head_dim();
    let nh = spec.proj_heads(proj).unwrap_or(0);
    let axis = if proj == SynthProj::O {
        Axis::Cols
    } else {
        Axis::Rows
    };
    let hits = |t: &Target| t.matches(layer, proj);

    let mut base_bulk = Bulk::KaimingUniform;
    let mut head_bulk: Vec<Option<Bulk>> = vec![None; nh];
    for ht in spec.heavy_tail.iter().filter(|s| hits(&s.target)) {
        match ht.target.heads {
            None => base_bulk = ht.bulk,
            Some(span) => (span.first..=span.last).for_each(|h| head_bulk[h] = Some(ht.bulk)),
        }
    }
    let mut whole_collapse: Option<CollapseSpec> = None;
    let mut head_collapse: Vec<Option<CollapseSpec>> = vec![None; nh];
    for c in spec.collapse.iter().filter(|s| hits(&s.target)) {
        match c.target.heads {
            None => whole_collapse = Some(*c),
            Some(span) => (span.first..=span.last).for_each(|h| head_collapse[h] = Some(*c)),
        }
    }
    let mut whole_tau: Option<f64> = None;
    let mut head_tau: Vec<Option<f64>> = vec![None; nh];
    for c in spec.column_scale.iter().filter(|s| hits(&s.target)) {
        match c.target.heads {
            None => whole_tau = Some(c.tau),
            Some(span) => (span.first..=span.last).for_each(|h| head_tau[h] = Some(c.tau)),
        }
    }
    let mut whole_mults: Vec<f64> = Vec::new();
    let mut head_mults: Vec<Vec<f64>> = vec![Vec::new(); nh];
    for s in spec.spikes.iter().filter(|s| hits(&s.target)) {
        match s.target.heads {
            None => whole_mults.extend(s.multiples()),
            Some(span) => {
                (span.first..=span.last).for_each(|h| head_mults[h].extend(s.multiples()))
            }
        }
    }

    let mut low_rank = Vec::new();
    let mut spikes = Vec::new();
    let mut col_scales: Vec<ColScale> = Vec::new();
    let scales_of = |tag: &str, n: usize, tau: f64| {
        let mut rng = Rng::stream(key_seed(spec.seed, &format!("{key}{tag}#colscale")), 0);
        lognormal_scales(&mut rng, n, tau)
    };
    let whole_scale: Option<Vec<f64>> = whole_tau.map(|tau| scales_of("", cols, tau));
    let whole_cs_truth = whole_tau
        .zip(whole_scale.as_ref())
        .map(|(tau, s)| column_scale_truth(tau, s));
    if let Some(s) = &whole_scale {
        col_scales.push(ColScale {
            r0: 0,
            nr: rows,
            c0: 0,
            s: s.clone(),
        });
    }
    // Block geometry: (rows, cols, r0, c0) of the whole matrix or of head h.
    let block = |h: Option<usize>| match (h, axis) {
        (None, _) => (rows, cols, 0, 0),
        (Some(h), Axis::Rows) => (d, cols, h * d, 0),
        (Some(h), Axis::Cols) => (rows, d, 0, h * d),
    };
    let mut plant = |h: Option<usize>,
                     bulk: Bulk,
                     collapse: Option<CollapseSpec>,
                     mults: &[f64],
                     tau: Option<f64>|
     -> Result<Planted, SynthError> {
        let (m, n, r0, c0) = block(h);
        let tag = h.map_or(String::new(), |h| format!(".h{h}"));
        // Column scales of this block: the whole matrix's (restricted) times the head's own.
        let mut shape: Option<Vec<f64>> = whole_scale.as_ref().map(|s| s[c0..c0 + n].to_vec());
        let mut cs_truth = None;
        if let (Some(h), Some(tau)) = (h, tau) {
            let own = scales_of(&format!(".h{h}"), n, tau);
            cs_truth = Some(column_scale_truth(tau, &own));
            shape = Some(match shape {
                Some(w) => w.iter().zip(&own).map(|(a, b)| a * b).collect(),
                None => own.clone(),
            });
            col_scales.push(ColScale {
                r0,
                nr: m,
                c0,
                s: own,
            });
        }
        let (p, q) = (m.min(n) as f64, m.max(n) as f64);
        let mut draw = Draw::bulk(bulk, sigma);
        let mut ctruth = None;
        if let Some(c) = collapse {
            let rank = c.rank.unwrap_or((m.min(n) / 8).max(1));
            if rank >= m.min(n) {
                return Err(SynthError::Spec(format!(
                    "collapse `{c}`: rank {rank} must be below min(block rows, cols) = {} in {key}{tag}",
                    m.min(n)
                )));
            }
            let alpha = sigma / (1.0 + c.eps * c.eps).sqrt();
            draw = Draw::bulk(bulk, alpha * c.eps);
            let mut rng = Rng::stream(key_seed(spec.seed, &format!("{key}{tag}#collapse")), 0);
            let a: Vec<f64> = (0..m * rank).map(|_| rng.normal()).collect();
            let b: Vec<f64> = (0..n * rank).map(|_| rng.normal()).collect();
            low_rank.push(LowRank {
                r0,
                c0,
                rank,
                coef: alpha / (rank as f64).sqrt(),
                a,
                b,
            });
            let s = alpha * c.eps;
            ctruth = Some(CollapseTruth {
                rank,
                eps: c.eps,
                alpha,
                noise_edges: [s * (q.sqrt() - p.sqrt()), s * (q.sqrt() + p.sqrt())],
            });
        }
        let mut struths = Vec::new();
        if !mults.is_empty() {
            if mults.len() > m.min(n) {
                return Err(SynthError::Spec(format!(
                    "{} spikes do not fit in {key}{tag}, a {m}×{n} block",
                    mults.len()
                )));
            }
            let mut rng = Rng::stream(key_seed(spec.seed, &format!("{key}{tag}#spike")), 0);
            let us = orthonormal(&mut rng, mults.len(), m);
            let vs = orthonormal_shaped(&mut rng, mults.len(), n, shape.as_deref());
            let bbp = sigma * ((m as f64) * (n as f64)).sqrt().sqrt();
            for ((&mult, u), v) in mults.iter().zip(us).zip(vs) {
                let theta = mult * bbp;
                let s2 = sigma * sigma;
                let expected = ((theta * theta + s2 * m as f64) * (theta * theta + s2 * n as f64))
                    .sqrt()
                    / theta;
                spikes.push(Rank1 {
                    theta,
                    r0,
                    c0,
                    u,
                    v,
                });
                struths.push(SpikeTruth {
                    multiple: mult,
                    strength: theta,
                    bbp,
                    expected_sv: expected,
                });
            }
        }
        Ok((draw, ctruth, struths, cs_truth))
    };

    let (base, collapse_truth, spike_truth, _) =
        plant(None, base_bulk, whole_collapse, &whole_mults, None)?;
    let mut head_truths = Vec::new();
    let mut draws: Vec<Option<Draw>> = vec![None; nh];
    for h in 0..nh {
        let own = head_bulk[h].is_some()
            || head_collapse[h].is_some()
            || !head_mults[h].is_empty()
            || head_tau[h].is_some();
        if !own {
            continue;
        }
        let bulk = head_bulk[h].unwrap_or(base_bulk);
        let (mut draw, ct, st, cst) =
            plant(Some(h), bulk, head_collapse[h], &head_mults[h], head_tau[h])?;
        if head_collapse[h].is_none()
            && let Some(c) = whole_collapse
        {
            // A head with its own bulk inside a collapsed matrix keeps the collapsed scale.
            draw = Draw::bulk(bulk, sigma * c.eps / (1.0 + c.eps * c.eps).sqrt());
        }
        if head_bulk[h].is_some() || head_collapse[h].is_some() {
            draws[h] = Some(draw);
        }
        let (m, n, _, _) = block(Some(h));
        head_truths.push(HeadTruth {
            head: h,
            rows: m,
            cols: n,
            bulk,
            sigma,
            spikes: st,
            collapse: ct,
            column_scale: cst,
        });
    }
    let heads = draws
        .iter()
        .any(Option::is_some)
        .then_some(HeadDraws { axis, d, draws });
    Ok(Logical {
        layer: Some(layer),
        proj: Some(proj),
        expert: None,
        rows,
        cols,
        rows_gen: GenPlan {
            seed,
            base,
            heads,
            low_rank,
            col_scales,
            spikes,
        },
        truth: Some(MatrixTruth {
            key,
            tensor: String::new(),
            layer: Some(layer),
            proj: Some(proj),
            expert: None,
            rows,
            cols,
            embedding: false,
            bulk: base_bulk,
            sigma,
            bound: bound_of(base_bulk, sigma),
            spikes: spike_truth,
            collapse: collapse_truth,
            column_scale: whole_cs_truth,
            heads: head_truths,
        }),
    })
}

impl Plan {
    /// Resolves a spec into logical matrices and stored tensors (validates everything).
    pub(crate) fn build(spec: &SynthSpec) -> Result<Plan, SynthError> {
        spec.validate()?;
        check_targets(spec)?;
        let (h, i, v) = (spec.hidden, spec.intermediate(), spec.vocab);
        let projections = spec.projections();
        // Resolve every layer projection first (in parallel: spike vectors can be long).
        let resolved: Vec<Vec<Logical>> = (0..spec.layers)
            .into_par_iter()
            .map(|l| projections.iter().map(|&p| resolve(spec, l, p)).collect())
            .collect::<Result<_, _>>()?;
        let mut b = Builder {
            spec,
            logicals: Vec::new(),
            stored: Vec::new(),
            group: 0,
        };
        let fam = spec.family;
        match fam {
            SynthFamily::Llama | SynthFamily::Phi3 | SynthFamily::Mixtral => {
                b.embedding("model.embed_tokens.weight", v)
            }
            SynthFamily::Bert => {
                b.embedding("bert.embeddings.word_embeddings.weight", v);
                b.embedding("bert.embeddings.position_embeddings.weight", spec.positions);
                b.embedding("bert.embeddings.token_type_embeddings.weight", 2);
                b.norm("bert.embeddings.LayerNorm.weight", h);
                b.bias("bert.embeddings.LayerNorm.bias", h);
            }
            SynthFamily::Gpt2 => {
                b.embedding("wte.weight", v);
                b.embedding("wpe.weight", spec.positions);
            }
            SynthFamily::Neox => b.embedding("gpt_neox.embed_in.weight", v),
        }
        for (l, mats) in resolved.into_iter().enumerate() {
            b.group = l + 1;
            let base = b.logicals.len();
            let idx: std::collections::BTreeMap<SynthProj, usize> = mats
                .iter()
                .enumerate()
                .map(|(k, m)| (m.proj.unwrap_or(SynthProj::Q), base + k))
                .collect();
            let rows_of = |p: SynthProj| spec.proj_shape(p).0;
            b.logicals.extend(mats);
            let ix = |p: SynthProj| idx.get(&p).copied().unwrap_or(0);
            use SynthProj::*;
            match fam {
                SynthFamily::Mixtral => {
                    let p = format!("model.layers.{l}.");
                    b.norm(&format!("{p}input_layernorm.weight"), h);
                    for (pr, n) in [(Q, "q"), (K, "k"), (V, "v"), (O, "o")] {
                        b.store_parts(
                            &format!("{p}self_attn.{n}_proj.weight"),
                            &[ix(pr)],
                            LayoutKind::Stack,
                        );
                    }
                    b.norm(&format!("{p}post_attention_layernorm.weight"), h);
                    b.mixtral_moe(l);
                }
                SynthFamily::Llama | SynthFamily::Phi3 => {
                    let p = format!("model.layers.{l}.");
                    b.norm(&format!("{p}input_layernorm.weight"), h);
                    if fam == SynthFamily::Llama {
                        for (pr, n) in [(Q, "q"), (K, "k"), (V, "v"), (O, "o")] {
                            b.store_parts(
                                &format!("{p}self_attn.{n}_proj.weight"),
                                &[ix(pr)],
                                LayoutKind::Stack,
                            );
                        }
                    } else {
                        b.store_parts(
                            &format!("{p}self_attn.qkv_proj.weight"),
                            &[ix(Q), ix(K), ix(V)],
                            LayoutKind::Stack,
                        );
                        b.store_parts(
                            &format!("{p}self_attn.o_proj.weight"),
                            &[ix(O)],
                            LayoutKind::Stack,
                        );
                    }
                    b.norm(&format!("{p}post_attention_layernorm.weight"), h);
                    if fam == SynthFamily::Llama {
                        b.store_parts(
                            &format!("{p}mlp.gate_proj.weight"),
                            &[ix(Gate)],
                            LayoutKind::Stack,
                        );
                        b.store_parts(
                            &format!("{p}mlp.up_proj.weight"),
                            &[ix(Up)],
                            LayoutKind::Stack,
                        );
                    } else {
                        b.store_parts(
                            &format!("{p}mlp.gate_up_proj.weight"),
                            &[ix(Gate), ix(Up)],
                            LayoutKind::Stack,
                        );
                    }
                    b.store_parts(
                        &format!("{p}mlp.down_proj.weight"),
                        &[ix(Down)],
                        LayoutKind::Stack,
                    );
                }
                SynthFamily::Bert => {
                    let p = format!("bert.encoder.layer.{l}.");
                    for (pr, n) in [
                        (Q, "attention.self.query"),
                        (K, "attention.self.key"),
                        (V, "attention.self.value"),
                        (O, "attention.output.dense"),
                    ] {
                        b.store_parts(&format!("{p}{n}.weight"), &[ix(pr)], LayoutKind::Stack);
                        b.bias(&format!("{p}{n}.bias"), rows_of(pr));
                    }
                    b.norm(&format!("{p}attention.output.LayerNorm.weight"), h);
                    b.bias(&format!("{p}attention.output.LayerNorm.bias"), h);
                    b.store_parts(
                        &format!("{p}intermediate.dense.weight"),
                        &[ix(Up)],
                        LayoutKind::Stack,
                    );
                    b.bias(&format!("{p}intermediate.dense.bias"), i);
                    b.store_parts(
                        &format!("{p}output.dense.weight"),
                        &[ix(Down)],
                        LayoutKind::Stack,
                    );
                    b.bias(&format!("{p}output.dense.bias"), h);
                    b.norm(&format!("{p}output.LayerNorm.weight"), h);
                    b.bias(&format!("{p}output.LayerNorm.bias"), h);
                }
                SynthFamily::Gpt2 => {
                    let p = format!("h.{l}.");
                    b.norm(&format!("{p}ln_1.weight"), h);
                    b.bias(&format!("{p}ln_1.bias"), h);
                    b.store_parts(
                        &format!("{p}attn.c_attn.weight"),
                        &[ix(Q), ix(K), ix(V)],
                        LayoutKind::Transpose,
                    );
                    b.bias(
                        &format!("{p}attn.c_attn.bias"),
                        rows_of(Q) + rows_of(K) + rows_of(V),
                    );
                    b.store_parts(
                        &format!("{p}attn.c_proj.weight"),
                        &[ix(O)],
                        LayoutKind::Transpose,
                    );
                    b.bias(&format!("{p}attn.c_proj.bias"), h);
                    b.norm(&format!("{p}ln_2.weight"), h);
                    b.bias(&format!("{p}ln_2.bias"), h);
                    b.store_parts(
                        &format!("{p}mlp.c_fc.weight"),
                        &[ix(Up)],
                        LayoutKind::Transpose,
                    );
                    b.bias(&format!("{p}mlp.c_fc.bias"), i);
                    b.store_parts(
                        &format!("{p}mlp.c_proj.weight"),
                        &[ix(Down)],
                        LayoutKind::Transpose,
                    );
                    b.bias(&format!("{p}mlp.c_proj.bias"), h);
                }
                SynthFamily::Neox => {
                    let p = format!("gpt_neox.layers.{l}.");
                    b.norm(&format!("{p}input_layernorm.weight"), h);
                    b.bias(&format!("{p}input_layernorm.bias"), h);
                    b.norm(&format!("{p}post_attention_layernorm.weight"), h);
                    b.bias(&format!("{p}post_attention_layernorm.bias"), h);
                    b.store_parts(
                        &format!("{p}attention.query_key_value.weight"),
                        &[ix(Q), ix(K), ix(V)],
                        LayoutKind::Interleave,
                    );
                    b.bias(&format!("{p}attention.query_key_value.bias"), 3 * h);
                    b.store_parts(
                        &format!("{p}attention.dense.weight"),
                        &[ix(O)],
                        LayoutKind::Stack,
                    );
                    b.bias(&format!("{p}attention.dense.bias"), h);
                    b.store_parts(
                        &format!("{p}mlp.dense_h_to_4h.weight"),
                        &[ix(Up)],
                        LayoutKind::Stack,
                    );
                    b.bias(&format!("{p}mlp.dense_h_to_4h.bias"), i);
                    b.store_parts(
                        &format!("{p}mlp.dense_4h_to_h.weight"),
                        &[ix(Down)],
                        LayoutKind::Stack,
                    );
                    b.bias(&format!("{p}mlp.dense_4h_to_h.bias"), h);
                }
            }
        }
        b.group = spec.layers + 1;
        match fam {
            SynthFamily::Llama | SynthFamily::Phi3 | SynthFamily::Mixtral => {
                b.norm("model.norm.weight", h);
                b.embedding("lm_head.weight", v);
            }
            SynthFamily::Bert => {
                let sigma = spec.gain / (h as f64).sqrt();
                b.named(
                    "bert.pooler.dense.weight",
                    h,
                    h,
                    Bulk::KaimingUniform,
                    sigma,
                    false,
                );
                b.bias("bert.pooler.dense.bias", h);
            }
            SynthFamily::Gpt2 => {
                b.norm("ln_f.weight", h);
                b.bias("ln_f.bias", h);
            }
            SynthFamily::Neox => {
                b.norm("gpt_neox.final_layer_norm.weight", h);
                b.bias("gpt_neox.final_layer_norm.bias", h);
                b.embedding("embed_out.weight", v);
            }
        }
        for e in &spec.extras {
            let sigma = e.gain / (e.cols as f64).sqrt();
            b.named(&e.name, e.rows, e.cols, Bulk::KaimingUniform, sigma, false);
        }
        let mut names: Vec<&str> = b.stored.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(SynthError::Spec(format!(
                "tensor name `{}` is used twice (an extra tensor clashes with a model tensor)",
                w[0]
            )));
        }
        Ok(Plan {
            spec: spec.clone(),
            logicals: b.logicals,
            stored: b.stored,
        })
    }

    /// Index of the logical matrix of (layer, proj, expert).
    pub(crate) fn find(
        &self,
        layer: usize,
        proj: SynthProj,
        expert: Option<usize>,
    ) -> Option<usize> {
        self.logicals
            .iter()
            .position(|l| l.layer == Some(layer) && l.proj == Some(proj) && l.expert == expert)
    }

    /// The plan as llama.cpp stores it: each layer's experts of one projection stacked into
    /// one 3-D tensor [experts, out, in] named `mlp.experts.{gate,up,down}_proj` (GGUF
    /// `ffn_*_exps`), at the place of its first expert; the router renamed `mlp.gate`
    /// (GGUF `ffn_gate_inp`). Dense plans are returned unchanged.
    /// The plan as llama.cpp's converter lays it out: experts stacked (see
    /// [`Plan::stacked_experts`]), GPT-2's Conv1D weights transposed back to [out, in], and
    /// GPT-NeoX's per-head interleaved `query_key_value` reordered into q, k, v row blocks.
    pub(crate) fn for_gguf(&self) -> Plan {
        let mut plan = self.stacked_experts();
        for st in &mut plan.stored {
            match &st.layout {
                Layout::Transpose(parts) => {
                    st.layout = Layout::Stack(parts.clone());
                    st.shape.reverse();
                }
                Layout::Interleave { parts, .. } => st.layout = Layout::Stack(parts.to_vec()),
                Layout::Stack(_) => {}
            }
        }
        plan
    }

    pub(crate) fn stacked_experts(&self) -> Plan {
        let mut stored: Vec<Stored> = Vec::new();
        let mut logicals = self.logicals.clone();
        for st in &self.stored {
            match st.moe {
                Some(MoePart::Expert {
                    layer,
                    proj,
                    expert,
                }) => {
                    let Layout::Stack(parts) = &st.layout else {
                        continue;
                    };
                    let name = format!("model.layers.{layer}.mlp.experts.{proj}_proj.weight");
                    if expert == 0 {
                        let mut shape = vec![0];
                        shape.extend(&st.shape);
                        stored.push(Stored {
                            name: name.clone(),
                            shape,
                            layout: Layout::Stack(Vec::new()),
                            group: st.group,
                            moe: st.moe,
                        });
                    }
                    if let Some(stack) = stored.iter_mut().rev().find(|s| s.name == name)
                        && let Layout::Stack(all) = &mut stack.layout
                    {
                        all.extend(parts);
                        stack.shape[0] += 1;
                    }
                    for &p in parts {
                        if let Some(t) = logicals.get_mut(p).and_then(|l| l.truth.as_mut()) {
                            t.tensor.clone_from(&name);
                        }
                    }
                }
                Some(MoePart::Router { layer }) => {
                    let name = format!("model.layers.{layer}.mlp.gate.weight");
                    if let Layout::Stack(parts) = &st.layout {
                        for &p in parts {
                            if let Some(t) = logicals.get_mut(p).and_then(|l| l.truth.as_mut()) {
                                t.tensor.clone_from(&name);
                            }
                        }
                    }
                    stored.push(Stored { name, ..st.clone() });
                }
                None => stored.push(st.clone()),
            }
        }
        Plan {
            spec: self.spec.clone(),
            logicals,
            stored,
        }
    }

    /// Data bytes of stored tensor `idx`.
    pub(crate) fn bytes_of(&self, idx: usize) -> usize {
        self.stored[idx].numel() * self.spec.dtype.size()
    }

    /// Sum of every tensor's data bytes.
    pub(crate) fn total_bytes(&self) -> u64 {
        (0..self.stored.len())
            .map(|i| self.bytes_of(i) as u64)
            .sum()
    }

    /// Logical matrix `idx` as written (rounded to the dtype).
    pub(crate) fn matrix(&self, idx: usize) -> super::Matrix {
        let lg = &self.logicals[idx];
        super::Matrix {
            rows: lg.rows,
            cols: lg.cols,
            data: self.logical_values(idx),
        }
    }

    /// All rows of logical matrix `idx`, rounded to the dtype, row-major.
    pub(crate) fn logical_values(&self, idx: usize) -> Vec<f32> {
        let lg = &self.logicals[idx];
        let dt = self.spec.dtype;
        let mut out = vec![0f32; lg.rows * lg.cols];
        out.par_chunks_mut(lg.cols.max(1))
            .enumerate()
            .for_each_init(
                || vec![0f64; lg.cols],
                |buf, (r, row)| {
                    lg.rows_gen.row(r, buf);
                    row.iter_mut()
                        .zip(buf.iter())
                        .for_each(|(o, x)| *o = dt.round(*x as f32));
                },
            );
        out
    }

    /// The stored values of tensor `idx` (dtype-rounded, row-major, as in the file).
    pub(crate) fn stored_values(&self, idx: usize) -> Vec<f32> {
        let dt = self.spec.dtype;
        self.render(idx)
            .chunks_exact(dt.size())
            .map(|b| match (dt, b) {
                (SynthDtype::Bf16, &[a, b]) => half::bf16::from_le_bytes([a, b]).to_f32(),
                (SynthDtype::F16, &[a, b]) => half::f16::from_le_bytes([a, b]).to_f32(),
                (SynthDtype::F32, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
                _ => f32::NAN,
            })
            .collect()
    }

    /// The stored bytes of tensor `idx` (little-endian, row-major, as in the file).
    pub(crate) fn render(&self, idx: usize) -> Vec<u8> {
        let st = &self.stored[idx];
        let dt = self.spec.dtype;
        let size = dt.size();
        let mut bytes = vec![0u8; st.numel() * size];
        let cols = st.shape.last().copied().unwrap_or(0).max(1);
        let row_bytes = cols * size;
        let rows_per_task = (16384 / cols).max(1);
        match &st.layout {
            Layout::Transpose(parts) => {
                let values: Vec<(Vec<f32>, usize)> = parts
                    .iter()
                    .map(|&p| (self.logical_values(p), self.logicals[p].rows))
                    .collect();
                // Stored row j = column j of the row-stacked logical parts.
                bytes
                    .par_chunks_mut(row_bytes * rows_per_task)
                    .enumerate()
                    .for_each(|(t, chunk)| {
                        for (k, row) in chunk.chunks_exact_mut(row_bytes).enumerate() {
                            let j = t * rows_per_task + k;
                            let mut col = Vec::with_capacity(cols);
                            for (vals, rows) in &values {
                                let lcols = vals.len() / rows.max(&1);
                                col.extend((0..*rows).map(|i| vals[i * lcols + j]));
                            }
                            dt.encode_f32_row(&col, row);
                        }
                    });
            }
            layout => {
                let map = |r: usize| -> (usize, usize) {
                    match layout {
                        Layout::Stack(parts) => {
                            let mut r = r;
                            for &p in parts {
                                let n = self.logicals[p].rows;
                                if r < n {
                                    return (p, r);
                                }
                                r -= n;
                            }
                            (parts[parts.len() - 1], 0)
                        }
                        Layout::Interleave { parts, d } => {
                            let (h, w) = (r / (3 * d), r % (3 * d));
                            (parts[w / d], h * d + w % d)
                        }
                        Layout::Transpose(_) => unreachable!("handled above"),
                    }
                };
                bytes
                    .par_chunks_mut(row_bytes * rows_per_task)
                    .enumerate()
                    .for_each_init(
                        || vec![0f64; cols],
                        |buf, (t, chunk)| {
                            for (k, row) in chunk.chunks_exact_mut(row_bytes).enumerate() {
                                let (p, lr) = map(t * rows_per_task + k);
                                self.logicals[p].rows_gen.row(lr, buf);
                                dt.encode_row(buf, row);
                            }
                        },
                    );
            }
        }
        bytes
    }

    /// Splits the stored tensors into `spec.shards` contiguous shards of nearly equal bytes,
    /// whole layers at a time when there are enough layers. Returns the shard of each tensor.
    pub(crate) fn shard_assignment(&self) -> Result<Vec<usize>, SynthError> {
        let s = self.spec.shards;
        let n = self.stored.len();
        if s > n {
            return Err(SynthError::Spec(format!(
                "{s} shards asked for but the model has only {n} tensors"
            )));
        }
        // Units: groups (embeddings, each layer, the tail) in order, or single tensors.
        let groups = self.spec.layers + 2;
        let mut unit_of: Vec<usize> = (0..n).map(|i| self.stored[i].group).collect();
        let nonempty = (0..groups).filter(|g| unit_of.contains(g)).count();
        if nonempty < s {
            unit_of = (0..n).collect();
        }
        let mut units: Vec<usize> = unit_of.clone();
        units.sort_unstable();
        units.dedup();
        let sizes: Vec<u64> = units
            .iter()
            .map(|u| {
                (0..n)
                    .filter(|&i| unit_of[i] == *u)
                    .map(|i| self.bytes_of(i) as u64)
                    .sum()
            })
            .collect();
        let cut = linear_partition(&sizes, s);
        Ok((0..n)
            .map(|i| {
                let u = units.binary_search(&unit_of[i]).unwrap_or(0);
                cut.iter().take_while(|&&c| c <= u).count() - 1
            })
            .collect())
    }
}

/// Start indices of `k` contiguous non-empty parts of `sizes` minimising the largest part.
fn linear_partition(sizes: &[u64], k: usize) -> Vec<usize> {
    let n = sizes.len();
    let mut prefix = vec![0u64; n + 1];
    for (i, s) in sizes.iter().enumerate() {
        prefix[i + 1] = prefix[i] + s;
    }
    // best[j][i]: minimal max part splitting the first i units into j parts.
    let mut best = vec![vec![u64::MAX; n + 1]; k + 1];
    let mut from = vec![vec![0usize; n + 1]; k + 1];
    best[0][0] = 0;
    for j in 1..=k {
        for i in j..=n {
            for p in (j - 1)..i {
                if best[j - 1][p] == u64::MAX {
                    continue;
                }
                let cost = best[j - 1][p].max(prefix[i] - prefix[p]);
                if cost < best[j][i] {
                    best[j][i] = cost;
                    from[j][i] = p;
                }
            }
        }
    }
    let mut starts = vec![0usize; k];
    let mut i = n;
    for j in (1..=k).rev() {
        starts[j - 1] = from[j][i];
        i = from[j][i];
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_balanced_and_contiguous() {
        assert_eq!(linear_partition(&[5, 1, 1, 1, 1, 1, 5], 2), vec![0, 3]);
        assert_eq!(linear_partition(&[1, 1, 1], 3), vec![0, 1, 2]);
        assert_eq!(linear_partition(&[10, 0, 0], 2), vec![0, 1]);
    }
}
