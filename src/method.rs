//! The saliency methods.

use feedbacknet_localize::{FusionConfig, FusionRule};
use feedbacknet_solver::CamLayer;
use serde::{Deserialize, Serialize};

/// How the class-specific saliency map is computed. Every method runs on any loaded network
/// through the same calls ([`FeedbackNet::infer`](crate::FeedbackNet::infer) with the net's
/// method, [`FeedbackNet::explain`](crate::FeedbackNet::explain) with any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Feedback: infer the ReLU gates with the soft solver, then take the input gradient
    /// through the gated net (Cao et al., ICCV 2015): the paper's map.
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
    /// Feedback fused with Grad-CAM: the soft-feedback map, blurred and normalized, times the
    /// normalized Grad-CAM map, as a per-pixel (weighted) geometric mean (see
    /// [`FeedbackCamConfig`]). Grad-CAM finds the object coarsely and class-specifically; the
    /// feedback map follows its parts. The default: with each net's tuned box settings it draws
    /// the best boxes of the feedback methods on the dev images of every shared net
    /// (`docs/results.md`, "Every method at its own setting").
    #[default]
    FeedbackCam,
}

/// Where [`Method::Feedback`] and the fine half of [`Method::FeedbackCam`] read their map off
/// the gated network ([`Method::FeedbackHard`] always takes the input gradient).
///
/// ```
/// use feedbacknet::{CamLayer, FeedbackMap};
/// assert_eq!(FeedbackMap::default(), FeedbackMap::InputGradient);
/// let middle = FeedbackMap::GatedEnergy(CamLayer::Site(12));
/// # let _ = middle;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackMap {
    /// `max_c |∂score/∂I_c|` through the gates, as in Cao et al. (default).
    #[default]
    InputGradient,
    /// The gate-weighted activation energy `Σ_c g_c·a_c` of one gate site
    /// ([`gated_energy`](feedbacknet_solver::gated_energy)), upsampled bilinearly to the input:
    /// coarser than the gradient, it covers more of the object.
    GatedEnergy(CamLayer),
}

/// Which network Grad-CAM reads in [`Method::FeedbackCam`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CamThrough {
    /// The plain feed-forward network (default).
    #[default]
    PlainNet,
    /// The network gated by the converged feedback gates.
    FeedbackGates,
}

/// Settings of [`Method::FeedbackCam`]. Defaults: the geometric mean with equal weights, the
/// feedback map blurred with sigma 10 network-input pixels before fusion, Grad-CAM through the
/// plain network.
///
/// ```
/// use feedbacknet::{CamThrough, FeedbackCamConfig, FusionRule};
/// let config = FeedbackCamConfig::default()
///     .with_rule(FusionRule::Geometric { cam_weight: 0.6 })
///     .with_feedback_blur(8.0)
///     .with_cam_through(CamThrough::FeedbackGates);
/// assert_eq!(config.fusion.fine_blur_sigma, 8.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCamConfig {
    /// The fusion rule and the feedback map's blur (in network-input pixels).
    pub fusion: FusionConfig,
    /// Which network Grad-CAM reads.
    pub cam_through: CamThrough,
}

impl FeedbackCamConfig {
    /// Sets the fusion rule.
    pub fn with_rule(mut self, rule: FusionRule) -> Self {
        self.fusion = self.fusion.with_rule(rule);
        self
    }

    /// Sets the blur of the feedback map before fusion (sigma, network-input pixels).
    pub fn with_feedback_blur(mut self, sigma: f32) -> Self {
        self.fusion = self.fusion.with_fine_blur_sigma(sigma);
        self
    }

    /// Sets which network Grad-CAM reads.
    pub fn with_cam_through(mut self, through: CamThrough) -> Self {
        self.cam_through = through;
        self
    }
}

/// A method with its settings, for a [`Request`](crate::Request) of
/// [`FeedbackNet::explain`](crate::FeedbackNet::explain):
/// the method and, for [`Method::FeedbackCam`], a fusion setting other than the net's own. A
/// plain [`Method`] converts into one.
///
/// ```
/// use feedbacknet::{FeedbackCamConfig, Method, MethodSpec};
/// let spec = MethodSpec::new(Method::FeedbackCam)
///     .with_feedback_cam(FeedbackCamConfig::default().with_feedback_blur(5.0));
/// assert_eq!(MethodSpec::from(Method::GradCam).feedback_cam, None);
/// assert!(spec.feedback_cam.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    /// The method.
    pub method: Method,
    /// The fusion settings of [`Method::FeedbackCam`]; `None`: the net's (ignored by the
    /// other methods).
    pub feedback_cam: Option<FeedbackCamConfig>,
    /// The map [`Method::Feedback`] and [`Method::FeedbackCam`] read off the gates; `None`:
    /// the net's.
    pub feedback_map: Option<FeedbackMap>,
}

impl MethodSpec {
    /// The method with the net's settings.
    pub fn new(method: Method) -> Self {
        Self {
            method,
            feedback_cam: None,
            feedback_map: None,
        }
    }

    /// Sets the fusion settings [`Method::FeedbackCam`] uses.
    pub fn with_feedback_cam(mut self, config: FeedbackCamConfig) -> Self {
        self.feedback_cam = Some(config);
        self
    }

    /// Sets the map the feedback methods read off the gates.
    pub fn with_feedback_map(mut self, map: FeedbackMap) -> Self {
        self.feedback_map = Some(map);
        self
    }
}

impl From<Method> for MethodSpec {
    fn from(method: Method) -> Self {
        Self::new(method)
    }
}

impl From<&Method> for MethodSpec {
    fn from(method: &Method) -> Self {
        Self::new(*method)
    }
}

impl Method {
    /// Every method, in CLI order.
    pub const ALL: [Method; 7] = [
        Method::Feedback,
        Method::FeedbackHard,
        Method::Gradient,
        Method::Deconvnet,
        Method::Guided,
        Method::GradCam,
        Method::FeedbackCam,
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
            Method::FeedbackCam => "feedback-cam",
        }
    }

    /// Whether the method infers feedback gates first.
    pub fn is_feedback(self) -> bool {
        matches!(
            self,
            Method::Feedback | Method::FeedbackHard | Method::FeedbackCam
        )
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
