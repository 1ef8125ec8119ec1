//! How an open-loop point's rate was chosen (`points[].offered` in results.json): each
//! model's own capacity, one capacity common to every server, or a rate given as such.

use serde::{Deserialize, Serialize};

/// How an open-loop point's rate was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offered {
    /// From what.
    pub chosen: Chosen,
    /// The fraction of `capacity` offered; absent for a fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// The closed-loop capacity, msgs/s, the fraction multiplies; absent for a fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
    /// The server whose capacity that is (none for the median of an even count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// What an open-loop rate was derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chosen {
    /// A fraction of this model's own capacity: each model at its own rate.
    Own,
    /// A fraction of the lowest capacity over the scenario's servers, the same for all.
    Slowest,
    /// A fraction of the median capacity, the same for all.
    Median,
    /// A fraction of the highest capacity, the same for all.
    Fastest,
    /// A rate given as such (`--rates 50000`), the same for all.
    Fixed,
}

impl From<crate::plan::Basis> for Chosen {
    fn from(b: crate::plan::Basis) -> Chosen {
        match b {
            crate::plan::Basis::Slowest => Chosen::Slowest,
            crate::plan::Basis::Median => Chosen::Median,
            crate::plan::Basis::Fastest => Chosen::Fastest,
        }
    }
}
