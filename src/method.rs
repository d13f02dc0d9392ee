//! The saliency methods.

use serde::{Deserialize, Serialize};

/// How the class-specific saliency map is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Feedback: infer the ReLU gates with the soft solver, then take the input gradient
    /// through the gated net (Cao et al., ICCV 2015).
    #[default]
    Feedback,
    /// The plain input gradient of the feed-forward net (Simonyan et al., 2014).
    Gradient,
}

impl Method {
    /// Every method, in CLI order.
    pub const ALL: [Method; 2] = [Method::Feedback, Method::Gradient];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Feedback => "feedback",
            Method::Gradient => "gradient",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown method `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}
