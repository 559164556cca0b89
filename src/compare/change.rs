//! The change scores by which the explorer's compare mode shades, plots and ranks blocks.

use super::Comparison;

/// A change score of one compared pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// ‖ΔW‖_F / ‖W_base‖_F.
    DeltaRel,
    /// Numerical rank of ΔW.
    DeltaRank,
    /// KS distance of ΔW's values to its MP law (0 for an unchanged block).
    DeltaKs,
    /// ks(other) − ks(base).
    KsShift,
    /// α(other) − α(base).
    AlphaShift,
}

impl ChangeKind {
    /// All kinds in cycling order.
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::DeltaRel,
        ChangeKind::DeltaRank,
        ChangeKind::DeltaKs,
        ChangeKind::KsShift,
        ChangeKind::AlphaShift,
    ];

    /// Name as in the compare report.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::DeltaRel => "delta_rel",
            ChangeKind::DeltaRank => "delta_rank",
            ChangeKind::DeltaKs => "delta_ks",
            ChangeKind::KsShift => "ks_shift",
            ChangeKind::AlphaShift => "alpha_shift",
        }
    }

    /// A name of at most seven characters, for narrow labels.
    pub fn short(self) -> &'static str {
        match self {
            ChangeKind::DeltaRel => "Δrel",
            ChangeKind::DeltaRank => "Δrank",
            ChangeKind::DeltaKs => "Δks",
            ChangeKind::KsShift => "ks_sh",
            ChangeKind::AlphaShift => "α_sh",
        }
    }

    /// The next kind, wrapping.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// The value of this score for a pair (`None` when it has none: a shift of an empty block,
    /// α where no tail was fitted).
    pub fn value(self, c: &Comparison) -> Option<f64> {
        match self {
            ChangeKind::DeltaRel => Some(c.delta.rel),
            ChangeKind::DeltaRank => Some(c.delta.rank as f64),
            ChangeKind::DeltaKs if c.delta.is_zero() => Some(0.0),
            ChangeKind::DeltaKs => c.delta.ks(),
            ChangeKind::KsShift => c.ks_shift(),
            ChangeKind::AlphaShift => c.alpha_shift(),
        }
    }

    /// How far from "unchanged" a value is, 0..=1, against the largest magnitude seen (shifts
    /// count both ways).
    pub fn farness(self, v: f64, max_seen: f64) -> f64 {
        let t = v.abs() / max_seen.max(f64::MIN_POSITIVE);
        if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_through_every_kind_and_back() {
        let mut k = ChangeKind::DeltaRel;
        let mut seen = vec![k.name()];
        for _ in 1..ChangeKind::ALL.len() {
            k = k.next();
            seen.push(k.name());
        }
        assert_eq!(k.next(), ChangeKind::DeltaRel);
        assert_eq!(
            seen,
            [
                "delta_rel",
                "delta_rank",
                "delta_ks",
                "ks_shift",
                "alpha_shift"
            ]
        );
        assert!(
            ChangeKind::ALL
                .iter()
                .all(|k| k.short().chars().count() <= 7)
        );
    }

    #[test]
    fn farness_counts_negative_shifts_and_clamps() {
        let k = ChangeKind::AlphaShift;
        assert_eq!(k.farness(-1.0, 2.0), 0.5);
        assert_eq!(k.farness(3.0, 2.0), 1.0);
        assert_eq!(k.farness(0.0, 0.0), 0.0);
    }
}
