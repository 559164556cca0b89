//! Planted structure: which blocks get spikes, heavy tails or a collapse, and the grammar of
//! the command-line strings that name them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::SynthError;
use super::spec::SynthProj;

/// An inclusive range of indices (`3` or `0-3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First index.
    pub first: usize,
    /// Last index (inclusive).
    pub last: usize,
}

impl Span {
    /// The single index `i`.
    pub fn one(i: usize) -> Self {
        Span { first: i, last: i }
    }

    /// True when `i` lies in the span.
    pub fn contains(&self, i: usize) -> bool {
        self.first <= i && i <= self.last
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Which blocks a planting applies to: layers × one projection × whole matrix or heads.
///
/// Grammar: `[L<a>[-<b>].]<proj>[.h<a>[-<b>]]`, proj ∈ q k v o gate up down, ranges inclusive.
/// No `L…` part means every layer; no `h…` part means the whole matrix. Head h of q, k, v is
/// rows h·d…(h+1)·d; head h of o is columns h·d…(h+1)·d.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Layers (`None` = all).
    pub layers: Option<Span>,
    /// Projection.
    pub proj: SynthProj,
    /// Heads (`None` = the whole matrix).
    pub heads: Option<Span>,
}

impl Target {
    /// The whole `proj` matrix of every layer.
    pub fn all(proj: SynthProj) -> Self {
        Target {
            layers: None,
            proj,
            heads: None,
        }
    }

    /// The whole `proj` matrix of one layer.
    pub fn layer(layer: usize, proj: SynthProj) -> Self {
        Target {
            layers: Some(Span::one(layer)),
            proj,
            heads: None,
        }
    }

    /// Head `head` of `proj` in one layer.
    pub fn head(layer: usize, proj: SynthProj, head: usize) -> Self {
        Target {
            layers: Some(Span::one(layer)),
            proj,
            heads: Some(Span::one(head)),
        }
    }

    /// True when the target covers (layer, proj).
    pub fn matches(&self, layer: usize, proj: SynthProj) -> bool {
        self.proj == proj && self.layers.is_none_or(|s| s.contains(layer))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.layers {
            write!(f, "L{l}.")?;
        }
        write!(f, "{}", self.proj)?;
        if let Some(h) = self.heads {
            write!(f, ".h{h}")?;
        }
        Ok(())
    }
}

/// Bulk distribution of a block; every kind is scaled to the same σ (Kaiming: gain/√fan_in).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bulk {
    /// Uniform on [−√3σ, √3σ] (PyTorch's Kaiming-uniform with bound = gain·√(3/fan_in)).
    KaimingUniform,
    /// Normal(0, σ²).
    Gaussian,
    /// Student-t with `dof` ≥ 3 degrees of freedom, rescaled to variance σ² (heavy tails).
    StudentT {
        /// Degrees of freedom.
        dof: u32,
    },
}

impl fmt::Display for Bulk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bulk::KaimingUniform => f.write_str("uniform"),
            Bulk::Gaussian => f.write_str("gauss"),
            Bulk::StudentT { dof } => write!(f, "t{dof}"),
        }
    }
}

impl FromStr for Bulk {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t {
            "uniform" | "kaiming" => return Ok(Bulk::KaimingUniform),
            "gauss" | "gaussian" | "normal" => return Ok(Bulk::Gaussian),
            _ => {}
        }
        let dof = t
            .strip_prefix('t')
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(|| {
                SynthError::parse(
                    "bulk distribution",
                    s,
                    "expected `t<dof>` (Student-t, e.g. t3), `gauss` or `uniform`",
                )
            })?;
        if dof < 3 {
            return Err(SynthError::parse(
                "bulk distribution",
                s,
                "Student-t needs at least 3 degrees of freedom (finite variance to rescale to σ)",
            ));
        }
        Ok(Bulk::StudentT { dof })
    }
}

/// Rank-one spikes planted in a block: `count` orthonormal pairs (u, v) of strength θ given as
/// multiples of the block's BBP threshold σ(m n)^{1/4}.
///
/// Grammar: `<target>[:<count>[x<mult>[-<mult2>]]]` where `<target>` is
/// `[L<a>[-<b>].]<proj>[.h<a>[-<b>]]` (see [`Target`]). Count defaults to 1, multiple to 3;
/// `x6-2` spreads the strengths evenly from 6× down to 2×. Examples: `q:3` (every q matrix,
/// 3 spikes at 3× BBP), `L0.q:5x4` (layer 0 q, 5 spikes at 4×), `L2.k.h3:1` (head 3 of k in
/// layer 2), `L0-3.o:2x6-2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpikeSpec {
    /// Where the spikes go (a head target keeps each spike inside that head's rows / columns).
    pub target: Target,
    /// Number of spikes per block.
    pub count: usize,
    /// Strength of the first spike, in multiples of the BBP threshold.
    pub multiple: f64,
    /// Strength of the last spike (`None` = all equal to `multiple`).
    pub multiple_to: Option<f64>,
}

impl SpikeSpec {
    /// The multiple of every spike, first to last.
    pub fn multiples(&self) -> Vec<f64> {
        let a = self.multiple;
        let b = self.multiple_to.unwrap_or(a);
        (0..self.count)
            .map(|i| {
                if self.count <= 1 {
                    a
                } else {
                    a + (b - a) * i as f64 / (self.count - 1) as f64
                }
            })
            .collect()
    }
}

impl fmt::Display for SpikeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}x{}", self.target, self.count, self.multiple)?;
        if let Some(b) = self.multiple_to {
            write!(f, "-{b}")?;
        }
        Ok(())
    }
}

const SPIKE_GRAMMAR: &str = "grammar: [L<a>[-<b>].]<proj>[.h<a>[-<b>]][:<count>[x<mult>[-<mult2>]]], \
     e.g. `q:3`, `L0.q:5x4`, `L2.k.h3:1`";

impl FromStr for SpikeSpec {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "spike spec";
        let err = |r: String| SynthError::parse(WHAT, s, format!("{r}; {SPIKE_GRAMMAR}"));
        let (tpart, rest) = split_colon(s);
        let target = parse_target(tpart).map_err(&err)?;
        let (mut count, mut multiple, mut multiple_to) = (1usize, 3.0f64, None);
        if let Some(rest) = rest {
            let (c, m) = match rest.split_once(['x', 'X']) {
                Some((c, m)) => (c, Some(m)),
                None => (rest, None),
            };
            count = c
                .parse()
                .map_err(|_| err(format!("the spike count `{c}` is not a whole number")))?;
            if let Some(m) = m {
                let (a, b) = match m.split_once('-') {
                    Some((a, b)) => (a, Some(b)),
                    None => (m, None),
                };
                multiple = parse_positive(a).ok_or_else(|| {
                    err(format!("the BBP multiple `{a}` is not a positive number"))
                })?;
                multiple_to = match b {
                    Some(b) => Some(parse_positive(b).ok_or_else(|| {
                        err(format!("the BBP multiple `{b}` is not a positive number"))
                    })?),
                    None => None,
                };
            }
        }
        if count == 0 {
            return Err(err("the spike count must be at least 1".to_string()));
        }
        Ok(SpikeSpec {
            target,
            count,
            multiple,
            multiple_to,
        })
    }
}

/// A bulk distribution other than Kaiming-uniform for some blocks (default Student-t(3)).
///
/// Grammar: `<target>[:t<dof>|:gauss|:uniform]` where `<target>` is
/// `[L<a>[-<b>].]<proj>[.h<a>[-<b>]]` (see [`Target`]). Examples: `q` (every q, Student-t(3)),
/// `L0-3.q`, `L1.k.h0:t5`, `v:gauss`. The bulk keeps the Kaiming σ = gain/√fan_in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeavyTailSpec {
    /// Which blocks.
    pub target: Target,
    /// Their bulk distribution.
    pub bulk: Bulk,
}

impl fmt::Display for HeavyTailSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.bulk)
    }
}

const TAIL_GRAMMAR: &str = "grammar: [L<a>[-<b>].]<proj>[.h<a>[-<b>]][:t<dof>|:gauss|:uniform], e.g. `q`, `L0-3.q`, `L1.k.h0:t5`";

impl FromStr for HeavyTailSpec {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err =
            |r: String| SynthError::parse("heavy-tail spec", s, format!("{r}; {TAIL_GRAMMAR}"));
        let (tpart, rest) = split_colon(s);
        let target = parse_target(tpart).map_err(&err)?;
        let bulk = match rest {
            None => Bulk::StudentT { dof: 3 },
            Some(b) => b.parse::<Bulk>().map_err(|e| match e {
                SynthError::Parse { reason, .. } => err(reason),
                other => other,
            })?,
        };
        Ok(HeavyTailSpec { target, bulk })
    }
}

/// A collapsed block: its bulk becomes α·(rank-r part + ε·noise) with α keeping σ, so r
/// singular values stand out and the others pile up near zero.
///
/// Grammar: `<target>[:<rank>][@<eps>]` where `<target>` is `[L<a>[-<b>].]<proj>[.h<a>[-<b>]]`
/// (see [`Target`]). Rank defaults to min(block rows, cols)/8 (at least 1), ε to 0.05.
/// Examples: `L0.q.h3`, `L0.q.h1-2:4`, `L1.k.h0:2@0.02`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CollapseSpec {
    /// Which blocks.
    pub target: Target,
    /// Rank of the low-rank part (`None` = min(rows, cols)/8, at least 1).
    pub rank: Option<usize>,
    /// Relative noise level ε.
    pub eps: f64,
}

impl fmt::Display for CollapseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        if let Some(r) = self.rank {
            write!(f, ":{r}")?;
        }
        write!(f, "@{}", self.eps)
    }
}

const COLLAPSE_GRAMMAR: &str = "grammar: [L<a>[-<b>].]<proj>[.h<a>[-<b>]][:<rank>][@<eps>], e.g. `L0.q.h3`, `L0.q.h1-2:4@0.05`";

impl FromStr for CollapseSpec {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err =
            |r: String| SynthError::parse("collapse spec", s, format!("{r}; {COLLAPSE_GRAMMAR}"));
        let (head, eps) = match s.trim().split_once('@') {
            Some((h, e)) => (
                h,
                Some(
                    parse_positive(e)
                        .filter(|e| *e < 1.0)
                        .ok_or_else(|| err(format!("ε `{e}` is not a number in (0, 1)")))?,
                ),
            ),
            None => (s.trim(), None),
        };
        let (tpart, rest) = split_colon(head);
        let target = parse_target(tpart).map_err(&err)?;
        let rank = match rest {
            None => None,
            Some(r) => Some(
                r.parse::<usize>()
                    .ok()
                    .filter(|r| *r >= 1)
                    .ok_or_else(|| err(format!("the rank `{r}` is not a whole number ≥ 1")))?,
            ),
        };
        Ok(CollapseSpec {
            target,
            rank,
            eps: eps.unwrap_or(0.05),
        })
    }
}

/// Outlier input features: column j of a block is multiplied by s_j with log s_j ~ N(0, τ²),
/// then the s_j are rescaled so that their mean square is 1 (the block keeps its entry σ).
/// A few input coordinates then carry most of the energy, so right singular vectors
/// concentrate on them and their entries stop looking Gaussian (`vector_p` → 0). The scaling
/// applies to the bulk and any collapse part; spike directions v of the block (and of heads
/// inside a scaled whole matrix) are drawn through the same scales, so they are localised too.
///
/// Grammar: `<target>[:<tau>]` where `<target>` is `[L<a>[-<b>].]<proj>[.h<a>[-<b>]]` (see
/// [`Target`]); τ defaults to 1. Examples: `q` (every q, τ = 1), `L0-1.k:1.5`, `L2.q.h3:0.5`.
/// A head of q, k, v gets scales over its `hidden` columns (only its rows); a head of o over
/// its d columns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnScaleSpec {
    /// Which blocks.
    pub target: Target,
    /// Standard deviation τ of log s_j.
    pub tau: f64,
}

impl fmt::Display for ColumnScaleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.tau)
    }
}

const COLUMN_SCALE_GRAMMAR: &str =
    "grammar: [L<a>[-<b>].]<proj>[.h<a>[-<b>]][:<tau>], e.g. `q`, `L0-1.k:1.5`, `L2.q.h3:0.5`";

impl FromStr for ColumnScaleSpec {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |r: String| {
            SynthError::parse(
                "column-scale spec",
                s,
                format!("{r}; {COLUMN_SCALE_GRAMMAR}"),
            )
        };
        let (tpart, rest) = split_colon(s);
        let target = parse_target(tpart).map_err(&err)?;
        let tau = match rest {
            None => 1.0,
            Some(t) => parse_positive(t)
                .filter(|t| *t <= 4.0)
                .ok_or_else(|| err(format!("τ `{t}` is not a number in (0, 4]")))?,
        };
        Ok(ColumnScaleSpec { target, tau })
    }
}

/// Parses a comma-separated list (`q:3,L0.k:2x4`) of any spec type; empty items are errors.
pub fn parse_list<T: FromStr<Err = SynthError>>(s: &str) -> Result<Vec<T>, SynthError> {
    s.split(',').map(|item| item.trim().parse()).collect()
}

fn split_colon(s: &str) -> (&str, Option<&str>) {
    match s.trim().split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (s.trim(), None),
    }
}

fn parse_positive(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
}

fn parse_span(s: &str, what: &str) -> Result<Span, String> {
    let num = |t: &str| {
        t.parse::<usize>()
            .map_err(|_| format!("the {what} index `{t}` is not a whole number"))
    };
    let span = match s.split_once('-') {
        Some((a, b)) => Span {
            first: num(a)?,
            last: num(b)?,
        },
        None => Span::one(num(s)?),
    };
    if span.first > span.last {
        return Err(format!("the {what} range `{s}` runs backwards"));
    }
    Ok(span)
}

fn parse_target(s: &str) -> Result<Target, String> {
    if s.is_empty() {
        return Err("the target is empty".to_string());
    }
    let parts: Vec<&str> = s.split('.').collect();
    let mut i = 0;
    let mut layers = None;
    if let Some(l) = parts[0].strip_prefix(['L', 'l'])
        && l.starts_with(|c: char| c.is_ascii_digit())
    {
        layers = Some(parse_span(l, "layer")?);
        i = 1;
    }
    let proj_s = parts
        .get(i)
        .ok_or_else(|| format!("`{s}` names no projection"))?;
    let proj: SynthProj = proj_s.parse().map_err(|_| {
        format!("`{proj_s}` is not a projection (expected q, k, v, o, gate, up or down)")
    })?;
    let mut heads = None;
    if let Some(h) = parts.get(i + 1) {
        let hs = h
            .strip_prefix(['h', 'H'])
            .ok_or_else(|| format!("`{h}` after the projection is not a head (`h<a>[-<b>]`)"))?;
        heads = Some(parse_span(hs, "head")?);
    }
    if parts.len() > i + 2 {
        return Err(format!(
            "unexpected `{}` after the head",
            parts[i + 2..].join(".")
        ));
    }
    if heads.is_some() && !proj.is_attention() {
        return Err(format!("{proj} has no heads (only q, k, v, o do)"));
    }
    Ok(Target {
        layers,
        proj,
        heads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for s in ["q", "L0.q", "L0-3.k.h2-5", "l2.o.h1", "down"] {
            let t = parse_target(s).unwrap();
            assert_eq!(parse_target(&t.to_string()).unwrap(), t, "{s}");
        }
        assert_eq!(
            parse_target("L2.k.h3").unwrap(),
            Target::head(2, SynthProj::K, 3)
        );
    }

    #[test]
    fn spike_multiples_spread() {
        let s: SpikeSpec = "q:3x6-2".parse().unwrap();
        assert_eq!(s.multiples(), vec![6.0, 4.0, 2.0]);
        let s: SpikeSpec = "q".parse().unwrap();
        assert_eq!((s.count, s.multiples()), (1, vec![3.0]));
    }
}
