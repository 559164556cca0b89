//! Ranking blocks by a deviation score, strangest first: the explorer's ranked view and
//! `mpscope report --top`, from one ordering and one filter.

use std::cmp::Ordering;

use crate::anatomy::{Block, MatrixId, Proj};
use crate::spectrum::Analysis;

/// A deviation score by which blocks are shaded, plotted and ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreKind {
    /// KS distance to MP.
    Ks,
    /// Power-law exponent α of the ESD's tail (low = heavy-tailed, learned).
    Alpha,
    /// Mean KS p-value of the singular vectors (low = far from random).
    #[value(name = "vector_p")]
    VectorP,
    /// ν₁ / ν+.
    #[value(name = "edge_ratio")]
    EdgeRatio,
    /// Values above the bulk.
    Above,
    /// Values below the bulk.
    Below,
    /// Energy share outside the bulk.
    #[value(name = "outlier_mass")]
    OutlierMass,
}

impl ScoreKind {
    /// All kinds in cycling order.
    pub const ALL: [ScoreKind; 7] = [
        ScoreKind::Ks,
        ScoreKind::Alpha,
        ScoreKind::VectorP,
        ScoreKind::EdgeRatio,
        ScoreKind::Above,
        ScoreKind::Below,
        ScoreKind::OutlierMass,
    ];

    /// Name as in the report and README.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Ks => "ks",
            ScoreKind::Alpha => "alpha",
            ScoreKind::VectorP => "vector_p",
            ScoreKind::EdgeRatio => "edge_ratio",
            ScoreKind::Above => "above",
            ScoreKind::Below => "below",
            ScoreKind::OutlierMass => "outlier_mass",
        }
    }

    /// A name of at most seven characters, for narrow labels.
    pub fn short(self) -> &'static str {
        match self {
            ScoreKind::VectorP => "vec_p",
            ScoreKind::EdgeRatio => "edge",
            ScoreKind::OutlierMass => "outlier",
            other => other.name(),
        }
    }

    /// The next kind, wrapping.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// The value of this score in an analysis (`None` when not computed or empty).
    pub fn value(self, a: &Analysis) -> Option<f64> {
        let s = &a.scores;
        if s.empty {
            return None;
        }
        Some(match self {
            ScoreKind::Ks => s.ks,
            ScoreKind::Alpha => a.heavy_tail.alpha()?,
            ScoreKind::VectorP => s.vector_p?,
            ScoreKind::EdgeRatio => s.edge_ratio,
            ScoreKind::Above => s.above as f64,
            ScoreKind::Below => s.below as f64,
            ScoreKind::OutlierMass => s.outlier_mass,
        })
    }

    /// True when a low value is the far one (`vector_p`, `alpha`); every other score is
    /// distance-like.
    pub fn low_is_far(self) -> bool {
        matches!(self, ScoreKind::VectorP | ScoreKind::Alpha)
    }

    /// Orders two values strangest first (NaN last).
    pub fn worst_first(self, a: f64, b: f64) -> Ordering {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if self.low_is_far() => a.total_cmp(&b),
            _ => b.total_cmp(&a),
        }
    }

    /// Maps a value to [0, 1] where 1 is farthest from MP, given the largest value seen.
    pub fn farness(self, v: f64, max_seen: f64) -> f64 {
        let (close, far) = self.ramp_ends(max_seen);
        let t = (v - close) / (far - close);
        if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The values at the close (farness 0) and far (farness 1) ends of the shading ramp.
    pub fn ramp_ends(self, max_seen: f64) -> (f64, f64) {
        match self {
            ScoreKind::VectorP => (0.5, 0.0),
            // α ≥ 8: random-like; α ≤ 2: as heavy-tailed as trained layers get.
            ScoreKind::Alpha => (8.0, 2.0),
            ScoreKind::EdgeRatio => (1.0, 1.0 + (max_seen - 1.0).max(0.5)),
            _ => (0.0, max_seen.max(f64::MIN_POSITIVE)),
        }
    }
}

/// Keeps the blocks whose every token matches: `q`, `k`, `gate`, `router`, … (projection),
/// `L3` (layer), `h7` (head), `e5` (routed expert), `experts` (any routed expert), `whole`
/// (not a head); any other token is a case-insensitive piece of the tensor name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    tokens: Vec<String>,
}

impl Filter {
    /// Parses a filter from what the user typed (empty = everything).
    pub fn new(text: &str) -> Self {
        Self {
            tokens: text.split_whitespace().map(str::to_lowercase).collect(),
        }
    }

    /// Whether `block` passes every token.
    pub fn matches(&self, block: &Block) -> bool {
        self.tokens.iter().all(|t| token_matches(t, block))
    }
}

fn number_after(token: &str, prefix: char) -> Option<usize> {
    token.strip_prefix(prefix)?.parse().ok()
}

fn token_matches(token: &str, b: &Block) -> bool {
    if let Some(l) = number_after(token, 'l') {
        return b.id.layer == Some(l);
    }
    if let Some(h) = number_after(token, 'h') {
        return b.id.head == Some(h);
    }
    if let Some(e) = number_after(token, 'e') {
        return b.id.expert == Some(e);
    }
    if token == "whole" {
        return b.id.head.is_none();
    }
    if token == "experts" {
        return b.id.expert.is_some();
    }
    let mut labels = Proj::NAMED
        .into_iter()
        .chain(Proj::MOE)
        .map(|p| p.proj_label());
    if token == "other" || labels.any(|l| l == token) {
        return b.id.proj.proj_label() == token;
    }
    b.tensor.to_lowercase().contains(token)
}

/// `blocks` with their `kind` score, strangest first; blocks without that score (not
/// computed, failed, or `vector_p` of a whole matrix) follow in plan order. Ties keep plan order.
pub fn rank<'a>(
    blocks: impl IntoIterator<Item = (&'a Block, Option<&'a Analysis>)>,
    kind: ScoreKind,
) -> Vec<(&'a Block, Option<f64>)> {
    let mut rows: Vec<(&Block, Option<f64>)> = blocks
        .into_iter()
        .map(|(b, a)| (b, a.and_then(|a| kind.value(a))))
        .collect();
    rows.sort_by(|(ba, a), (bb, b)| {
        match (a, b) {
            (Some(a), Some(b)) => kind.worst_first(*a, *b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| order_key(&ba.id).cmp(&order_key(&bb.id)))
    });
    rows
}

/// Plan order: layers first, each whole matrix before its heads.
fn order_key(id: &MatrixId) -> (bool, Option<usize>, MatrixId) {
    (id.layer.is_none(), id.layer, *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_scores_rank_high_first_and_vector_p_low_first() {
        use std::cmp::Ordering::*;
        assert_eq!(ScoreKind::Ks.worst_first(0.5, 0.1), Less);
        assert_eq!(ScoreKind::VectorP.worst_first(0.5, 0.1), Greater);
        assert_eq!(ScoreKind::Ks.worst_first(f64::NAN, 0.1), Greater);
        assert_eq!(ScoreKind::VectorP.worst_first(0.1, f64::NAN), Less);
    }

    #[test]
    fn ramp_ends_invert_farness() {
        for kind in ScoreKind::ALL {
            let (close, far) = kind.ramp_ends(3.0);
            assert_eq!(kind.farness(close, 3.0), 0.0, "{kind:?}");
            assert_eq!(kind.farness(far, 3.0), 1.0, "{kind:?}");
        }
        assert_eq!(ScoreKind::VectorP.ramp_ends(3.0), (0.5, 0.0));
        assert_eq!(ScoreKind::Ks.ramp_ends(0.6), (0.0, 0.6));
    }
}
