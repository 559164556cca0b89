//! Projection labels, parsing and grouping.

use std::fmt;
use std::str::FromStr;

use super::Proj;

impl Proj {
    /// The seven named projections in display order.
    pub const NAMED: [Proj; 7] = [
        Proj::Q,
        Proj::K,
        Proj::V,
        Proj::O,
        Proj::Gate,
        Proj::Up,
        Proj::Down,
    ];

    /// The Mixture-of-Experts projections beside the routed experts, in display order.
    pub const MOE: [Proj; 5] = [
        Proj::Router,
        Proj::SharedGate,
        Proj::SharedUp,
        Proj::SharedDown,
        Proj::SharedRouter,
    ];

    /// Short label: "q", "k", "v", "o", "gate", "up", "down", "router", "shared_gate",
    /// "shared_up", "shared_down", "shared_router" or "other".
    pub fn proj_label(&self) -> &'static str {
        match self {
            Proj::Q => "q",
            Proj::K => "k",
            Proj::V => "v",
            Proj::O => "o",
            Proj::Gate => "gate",
            Proj::Up => "up",
            Proj::Down => "down",
            Proj::Router => "router",
            Proj::SharedGate => "shared_gate",
            Proj::SharedUp => "shared_up",
            Proj::SharedDown => "shared_down",
            Proj::SharedRouter => "shared_router",
            Proj::Other(_) => "other",
        }
    }

    /// True for the MoE router and the shared expert's projections.
    pub fn is_moe(&self) -> bool {
        Proj::MOE.contains(self)
    }

    /// True for q, k, v and o.
    pub fn is_attention(&self) -> bool {
        matches!(self, Proj::Q | Proj::K | Proj::V | Proj::O)
    }

    /// True for gate, up and down.
    pub fn is_mlp(&self) -> bool {
        matches!(self, Proj::Gate | Proj::Up | Proj::Down)
    }

    /// True for `Other(_)`.
    pub fn is_other(&self) -> bool {
        matches!(self, Proj::Other(_))
    }
}

impl fmt::Display for Proj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proj_label())
    }
}

/// A projection name that is not one of q, k, v, o, gate, up, down, router, shared_*.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown projection {0:?}: expected one of q, k, v, o, gate, up, down, router, \
     shared_gate, shared_up, shared_down, shared_router"
)]
pub struct ParseProjError(pub String);

impl FromStr for Proj {
    type Err = ParseProjError;

    /// Parses "q", "k", "v", "o", "gate", "up", "down", "router", "shared_gate", "shared_up",
    /// "shared_down", "shared_router" (also "query", "key", "value", "out").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q" | "query" => Ok(Proj::Q),
            "k" | "key" => Ok(Proj::K),
            "v" | "value" => Ok(Proj::V),
            "o" | "out" | "output" => Ok(Proj::O),
            "gate" => Ok(Proj::Gate),
            "up" => Ok(Proj::Up),
            "down" => Ok(Proj::Down),
            "router" => Ok(Proj::Router),
            "shared_gate" => Ok(Proj::SharedGate),
            "shared_up" => Ok(Proj::SharedUp),
            "shared_down" => Ok(Proj::SharedDown),
            "shared_router" => Ok(Proj::SharedRouter),
            _ => Err(ParseProjError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for p in Proj::NAMED.into_iter().chain(Proj::MOE) {
            assert_eq!(p.to_string().parse::<Proj>().unwrap(), p);
        }
        assert_eq!(Proj::Other(3).to_string(), "other");
        assert_eq!(" Query ".parse::<Proj>().unwrap(), Proj::Q);
        let err = "mlp".parse::<Proj>().unwrap_err();
        assert!(err.to_string().contains("\"mlp\""));
    }

    #[test]
    fn groups() {
        assert!(Proj::O.is_attention() && !Proj::O.is_mlp());
        assert!(Proj::Gate.is_mlp() && !Proj::Gate.is_attention());
        assert!(Proj::Other(0).is_other() && !Proj::Other(0).is_mlp());
        assert!(Proj::Down < Proj::Other(0) && Proj::Other(1) < Proj::Other(2));
        assert!(Proj::Down < Proj::Router && Proj::SharedRouter < Proj::Other(0));
        assert!(Proj::SharedUp.is_moe() && !Proj::SharedUp.is_mlp() && !Proj::Up.is_moe());
    }
}
