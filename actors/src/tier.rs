//! Subscription tiers. A tier sets a user's limits (vehicles, freshness, commands, push).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Basic,
    Pro,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Basic, Tier::Pro];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Basic => "basic",
            Tier::Pro => "pro",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown tier {0:?} (expected free, basic or pro)")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "free" => Ok(Tier::Free),
            "basic" => Ok(Tier::Basic),
            "pro" => Ok(Tier::Pro),
            _ => Err(UnknownTier(s.to_owned())),
        }
    }
}
