//! The saliency methods.

use serde::{Deserialize, Serialize};

/// How the class-specific saliency map is computed. Every method runs on any loaded network
/// through the same call ([`FeedbackNet::infer_with`](crate::FeedbackNet::infer_with)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Feedback: infer the ReLU gates with the soft solver, then take the input gradient
    /// through the gated net (Cao et al., ICCV 2015).
    #[default]
    Feedback,
    /// Feedback with binary gates from the hard (coordinate-descent, "selective pruning")
    /// solver, then the input gradient through the gated net.
    FeedbackHard,
    /// The plain input gradient of the feed-forward net (Simonyan et al., 2014).
    Gradient,
    /// DeconvNet (Zeiler & Fergus, 2014): only positive gradients pass each ReLU backwards,
    /// whatever its forward state.
    Deconvnet,
    /// Guided backprop (Springenberg et al., 2015): positive gradients through active ReLUs.
    Guided,
    /// Grad-CAM (Selvaraju et al., 2017) on the last convolutional feature map, upsampled to
    /// the input.
    GradCam,
}

impl Method {
    /// Every method, in CLI order.
    pub const ALL: [Method; 6] = [
        Method::Feedback,
        Method::FeedbackHard,
        Method::Gradient,
        Method::Deconvnet,
        Method::Guided,
        Method::GradCam,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Feedback => "feedback",
            Method::FeedbackHard => "feedback-hard",
            Method::Gradient => "gradient",
            Method::Deconvnet => "deconvnet",
            Method::Guided => "guided",
            Method::GradCam => "gradcam",
        }
    }

    /// Whether the method infers feedback gates first.
    pub fn is_feedback(self) -> bool {
        matches!(self, Method::Feedback | Method::FeedbackHard)
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
