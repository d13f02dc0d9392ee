//! Each method's box settings, chosen on the dev set of each shared net.
//!
//! A map becomes boxes by a blur, a threshold, optionally a colour refinement of the mask and,
//! for [`Method::FeedbackCam`], the fusion of the feedback and Grad-CAM maps. No one setting
//! suits every method (Grad-CAM is best unblurred, the gradient maps want a wide blur), so each
//! method gets the setting that `feedbacknet tune` chose for it on all 403 dev images of each
//! shared net ([`TUNE_COMMAND`], and for the two soft-feedback methods, whose maps changed with
//! the solver, [`FEEDBACK_TUNE_COMMAND`]; `scripts/tuned_defaults.py` turns their JSON into
//! [`TABLE`]).
//! A net without an entry gets SqueezeNet 1.1's. The settings given to the builder
//! ([`FeedbackNetBuilder::localize`](crate::FeedbackNetBuilder::localize), `refine`,
//! `feedback_cam`, `box_settings`) replace the table's.
//!
//! Two settings per method and net, one per [`BoxPriority`]: the most accurate ([`TABLE`], the
//! default), and the most accurate among those whose boxes stay put when every pixel moves by
//! one grey level ([`STABLE`]: feedback and feedback-cam from [`FEEDBACK_TUNE_COMMAND`],
//! Grad-CAM from [`STABLE_TUNE_COMMAND`]). The most accurate settings keep only 62-89 % of the
//! feedback-cam boxes under that change, which a JPEG re-encode makes; the stable ones cost
//! 0-3 points of held-out localization (`docs/results.md`, "Stable boxes"). Colour refinement
//! and fine maps are what move; a threshold taken of a percentile of the map rather than of its
//! maximum ([`MapScale`](feedbacknet_localize::MapScale)) moves less, and so do colour
//! histograms binned trilinearly ([`Binning`](feedbacknet_localize::Binning)). The feedback
//! rows of SqueezeNet 1.1 and MobileNet v1 were chosen with both binnings in the grid
//! (SqueezeNet's feedback row and its stable feedback-cam row bin trilinearly); those of
//! MobileNet v2 and EfficientNet-Lite0 with the nearest cell alone.
//!
//! The figures these settings give, each method at its own setting and reported on the half of
//! the images it was not tuned on, are in `docs/results.md` ("Every method at its own
//! setting").

use std::fmt;
use std::str::FromStr;

use feedbacknet_eval::tune::Refinement;
use feedbacknet_localize::{FusionRule, LocalizeConfig, MapScale, RefineConfig};
use serde::Serialize;

use crate::{FeedbackCamConfig, Method};
use Method::{Deconvnet, Feedback, FeedbackCam, FeedbackHard, GradCam, Gradient, Guided};
use Refinement::{Colour, ColourTrilinear, None as Plain};

/// How one method's map becomes boxes.
///
/// ```
/// use feedbacknet::{BoxSettings, Method};
/// let cam = BoxSettings::tuned(Some("efficientnet_lite0"), Method::GradCam);
/// assert!(cam.localize.validate().is_ok());
/// // A net without a tuned entry gets SqueezeNet 1.1's settings.
/// assert_eq!(
///     BoxSettings::tuned(Some("my_net"), Method::Gradient),
///     BoxSettings::tuned(Some("squeezenet1.1"), Method::Gradient),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxSettings {
    /// The blur (sigma in network-input pixels) and the box threshold.
    pub localize: LocalizeConfig,
    /// The colour refinement of the thresholded mask (`None`: the thresholded map's boxes).
    pub refine: Option<RefineConfig>,
    /// The fusion of [`Method::FeedbackCam`] (read by that method only).
    pub feedback_cam: FeedbackCamConfig,
}

impl BoxSettings {
    /// The setting tuned for `method` on the net of preset `net` (a
    /// [`ModelPreset`](crate::ModelPreset) name), or on SqueezeNet 1.1 for a net without one,
    /// at the default [`BoxPriority`].
    pub fn tuned(net: Option<&str>, method: Method) -> Self {
        Self::tuned_for(net, method, BoxPriority::default())
    }

    /// The setting tuned for `method` on the net of preset `net` with `priority`. A method
    /// without a stable setting ([`BoxPriority::Stable`] covers feedback-cam and Grad-CAM)
    /// gets its accurate one.
    ///
    /// ```
    /// use feedbacknet::{BoxPriority, BoxSettings, Method};
    /// let net = Some("mobilenet_v2_1.0_224");
    /// let stable = BoxSettings::tuned_for(net, Method::FeedbackCam, BoxPriority::Stable);
    /// let accurate = BoxSettings::tuned_for(net, Method::FeedbackCam, BoxPriority::Accurate);
    /// assert_ne!(stable, accurate);
    /// // Colour refinement moves boxes under a one-grey-level change: no stable row keeps it.
    /// assert!(stable.refine.is_none());
    /// ```
    pub fn tuned_for(net: Option<&str>, method: Method, priority: BoxPriority) -> Self {
        let on = tuned_on(net);
        let find = |table: &'static [Row]| {
            table
                .iter()
                .find(|row| row.net == on && row.method == method)
        };
        let stable = match priority {
            BoxPriority::Stable => find(STABLE),
            BoxPriority::Accurate => None,
        };
        stable
            .or_else(|| find(TABLE))
            .map_or_else(Self::untuned, Row::settings)
    }

    /// The library's generic setting, for a method missing from the table: blur 10, threshold
    /// 0.2, no refinement, the fusion's defaults.
    pub fn untuned() -> Self {
        Self {
            localize: LocalizeConfig::default(),
            refine: None,
            feedback_cam: FeedbackCamConfig::default(),
        }
    }

    /// Checks every part (see [`LocalizeConfig::validate`], [`RefineConfig::validate`] and the
    /// fusion's).
    pub fn validate(&self) -> crate::Result<()> {
        self.localize.validate()?;
        if let Some(refine) = &self.refine {
            refine.validate()?;
        }
        self.feedback_cam.fusion.validate()?;
        Ok(())
    }
}

/// What a method's tuned box settings were chosen for ([`BoxSettings::tuned_for`],
/// [`FeedbackNetBuilder::box_priority`](crate::FeedbackNetBuilder::box_priority)).
///
/// ```
/// use feedbacknet::BoxPriority;
/// assert_eq!(BoxPriority::default(), BoxPriority::Accurate);
/// assert_eq!("accurate".parse::<BoxPriority>(), Ok(BoxPriority::Accurate));
/// assert_eq!(BoxPriority::Stable.to_string(), "stable");
/// assert!("fast".parse::<BoxPriority>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxPriority {
    /// The default: the best GT-known localization on the dev images ([`TUNE_COMMAND`]),
    /// however often the boxes move under a one-grey-level change of the image.
    #[default]
    Accurate,
    /// The best GT-known localization on the dev images among the settings whose boxes keep
    /// IoU >= 0.9 on at least 95 % of them when every pixel moves by up to one grey level
    /// ([`FEEDBACK_TUNE_COMMAND`], [`STABLE_TUNE_COMMAND`]): for boxes that survive a JPEG
    /// re-encode, or stay put from one video frame to the next, at a cost of 0-3 points of
    /// localization. Tuned for feedback, feedback-cam and Grad-CAM; another method gets its
    /// accurate setting.
    Stable,
}

impl BoxPriority {
    /// Both priorities, the default first.
    pub const ALL: [BoxPriority; 2] = [BoxPriority::Accurate, BoxPriority::Stable];
}

impl fmt::Display for BoxPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoxPriority::Stable => "stable",
            BoxPriority::Accurate => "accurate",
        })
    }
}

/// A string that names no [`BoxPriority`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a box priority: expected `stable` or `accurate`")]
pub struct ParseBoxPriorityError(String);

impl FromStr for BoxPriority {
    type Err = ParseBoxPriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BoxPriority::ALL
            .into_iter()
            .find(|p| s.trim().eq_ignore_ascii_case(&p.to_string()))
            .ok_or_else(|| ParseBoxPriorityError(s.to_owned()))
    }
}

/// The net whose settings a net of preset `net` gets: its own where the table has it, else
/// SqueezeNet 1.1's.
pub fn tuned_on(net: Option<&str>) -> &'static str {
    net.and_then(|name| TABLE.iter().find(|row| row.net == name))
        .map_or(FALLBACK_NET, |row| row.net)
}

/// The net whose settings a net without an entry gets.
const FALLBACK_NET: &str = "squeezenet1.1";

/// The command that chose [`TABLE`] (but its feedback and feedback-cam rows:
/// [`FEEDBACK_TUNE_COMMAND`]), once per net, on `../shared/data/imagenet-val` (403 images);
/// `T` is `0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.6`. Each method's row is the
/// grid point with the best GT-known localization over all the images.
pub const TUNE_COMMAND: &str = "feedbacknet tune --model NET \
--method feedback,feedback-cam,gradcam,gradient,guided,deconvnet,feedback-hard \
--cam-weights 0.3,0.5,0.7 --feedback-blurs 4,10,16 --refine none,colour \
--blurs 0,4,8,12,16,24 --thresholds $T --json tune_NET.json";

/// The command that chose Grad-CAM's rows of [`STABLE`], once per net, on
/// `../shared/data/imagenet-val`: the grid point with the best GT-known localization over all
/// the images among those whose box keeps IoU >= 0.9 on at least 95 % of the images under
/// uniform noise of ±1 grey level (seed 1); of equally accurate points, the more stable.
pub const STABLE_TUNE_COMMAND: &str = "feedbacknet tune --model NET --method gradcam \
--refine none,colour --blurs 0,4,8,16 --thresholds 0.2,0.3,0.35,0.4,0.45,0.5,0.6 \
--stable-boxes 0.95 --json tune_NET_stable.json";

/// The command that chose the feedback and feedback-cam rows of [`TABLE`] (the best GT-known
/// localization over all the images, the more stable of equal ones) and of [`STABLE`] (as
/// [`STABLE_TUNE_COMMAND`]'s), once per net, on `../shared/data/imagenet-val`, at the soft
/// solver's defaults of 2026-12-06 (the smooth derivative at the kinks): the map scale in the
/// grid, and thresholds up to 0.7. MobileNet v2 and EfficientNet-Lite0 were tuned without
/// `colour-trilinear` in `--refine` (`none,colour`); their rows are that smaller grid's choice.
pub const FEEDBACK_TUNE_COMMAND: &str = "feedbacknet tune --model NET \
--method feedback,feedback-cam --cam-weights 0.3,0.5,0.7 --feedback-blurs 4,16 \
--refine none,colour,colour-trilinear --blurs 0,4,8,16,24 --thresholds 0.2,0.3,0.35,0.4,0.45,0.5,0.6,0.7 \
--map-scales max,p99 --stable-boxes 0.95 --json tune_NET_feedback.json";

/// One tuned setting: a net, a method, its blur, threshold and refinement, and for
/// feedback-cam the fusion's Grad-CAM weight and feedback blur.
#[derive(Debug, Clone, Copy)]
struct Row {
    net: &'static str,
    method: Method,
    blur: f32,
    threshold: f32,
    /// The refinement, as the tune grid that chose the row names it.
    refine: Refinement,
    /// `(cam weight, feedback blur)` of feedback-cam.
    fusion: Option<(f32, f32)>,
    /// What the threshold is a fraction of.
    scale: MapScale,
}

impl Row {
    /// The row with its threshold a fraction of the map's `percentile`-th percentile.
    const fn at_percentile(mut self, percentile: f32) -> Row {
        self.scale = MapScale::Percentile(percentile);
        self
    }

    fn settings(&self) -> BoxSettings {
        let feedback_cam = match self.fusion {
            Some((cam_weight, blur)) => FeedbackCamConfig::default()
                .with_rule(FusionRule::Geometric { cam_weight })
                .with_feedback_blur(blur),
            None => FeedbackCamConfig::default(),
        };
        BoxSettings {
            localize: LocalizeConfig::default()
                .with_blur_sigma(self.blur)
                .with_threshold(self.threshold)
                .with_scale(self.scale),
            refine: self.refine.config(),
            feedback_cam,
        }
    }
}

const fn row(
    net: &'static str,
    method: Method,
    (blur, threshold): (f32, f32),
    refine: Refinement,
    fusion: Option<(f32, f32)>,
) -> Row {
    Row {
        net,
        method,
        blur,
        threshold,
        refine,
        fusion,
        scale: MapScale::Maximum,
    }
}

const SQ: &str = "squeezenet1.1";
const V1: &str = "mobilenet_v1_0.25_128";
const V2: &str = "mobilenet_v2_1.0_224";
const EF: &str = "efficientnet_lite0";

/// What [`TUNE_COMMAND`] (feedback and feedback-cam: [`FEEDBACK_TUNE_COMMAND`]) chose on all
/// 403 dev images of each shared net (`(blur, threshold)`, refinement, `(cam weight, feedback
/// blur)`, and a threshold of the map's 99th percentile where `.at_percentile(99.0)`).
#[rustfmt::skip]
static TABLE: &[Row] = &[
    row(SQ, Feedback, (8.0, 0.3), ColourTrilinear, None),
    row(SQ, FeedbackCam, (0.0, 0.7), Colour, Some((0.7, 16.0))).at_percentile(99.0),
    row(SQ, GradCam, (12.0, 0.6), Colour, None),
    row(SQ, Gradient, (24.0, 0.45), Plain, None),
    row(SQ, Guided, (12.0, 0.2), Colour, None),
    row(SQ, Deconvnet, (16.0, 0.6), Plain, None),
    row(SQ, FeedbackHard, (8.0, 0.5), Colour, None),
    row(V1, Feedback, (16.0, 0.5), Plain, None).at_percentile(99.0),
    row(V1, FeedbackCam, (16.0, 0.7), Plain, Some((0.7, 4.0))),
    row(V1, GradCam, (0.0, 0.5), Plain, None),
    row(V1, Gradient, (24.0, 0.6), Plain, None),
    row(V1, Guided, (12.0, 0.15), Colour, None),
    row(V1, Deconvnet, (24.0, 0.5), Plain, None),
    row(V1, FeedbackHard, (24.0, 0.05), Plain, None),
    row(V2, Feedback, (4.0, 0.35), Colour, None),
    row(V2, FeedbackCam, (0.0, 0.7), Colour, Some((0.5, 4.0))),
    row(V2, GradCam, (0.0, 0.6), Colour, None),
    row(V2, Gradient, (4.0, 0.3), Colour, None),
    row(V2, Guided, (24.0, 0.6), Colour, None),
    row(V2, Deconvnet, (4.0, 0.6), Plain, None),
    row(V2, FeedbackHard, (16.0, 0.35), Colour, None),
    row(EF, Feedback, (24.0, 0.5), Plain, None).at_percentile(99.0),
    row(EF, FeedbackCam, (0.0, 0.6), Colour, Some((0.5, 4.0))),
    row(EF, GradCam, (0.0, 0.45), Colour, None),
    row(EF, Gradient, (8.0, 0.3), Colour, None),
    row(EF, Guided, (12.0, 0.2), Colour, None),
    row(EF, Deconvnet, (12.0, 0.6), Plain, None),
    row(EF, FeedbackHard, (16.0, 0.35), Colour, None),
];

/// What [`FEEDBACK_TUNE_COMMAND`] (feedback, feedback-cam) and [`STABLE_TUNE_COMMAND`]
/// (Grad-CAM) chose on all 403 dev images of each shared net (`scripts/tuned_defaults.py
/// rust-stable 0.95`), laid out as [`TABLE`]; each comment is the row's GT-known localization
/// and share of boxes kept under ±1 grey, on all images.
#[rustfmt::skip]
static STABLE: &[Row] = &[
    row(SQ, Feedback, (24.0, 0.35), Plain, None).at_percentile(99.0), // 55.6 / 95.8
    row(SQ, FeedbackCam, (8.0, 0.5), ColourTrilinear, Some((0.7, 16.0))), // 66.0 / 96.5
    row(SQ, GradCam, (0.0, 0.2), Plain, None), // 60.3 / 95.5
    row(V1, Feedback, (16.0, 0.6), Colour, None), // 45.9 / 97.8
    row(V1, FeedbackCam, (24.0, 0.6), Plain, Some((0.7, 4.0))).at_percentile(99.0), // 51.1 / 96.5
    row(V1, GradCam, (8.0, 0.5), Plain, None), // 52.4 / 98.8
    row(V2, Feedback, (16.0, 0.2), Colour, None).at_percentile(99.0), // 48.4 / 95.3
    row(V2, FeedbackCam, (8.0, 0.4), Plain, Some((0.7, 4.0))).at_percentile(99.0), // 61.0 / 97.0
    row(V2, GradCam, (0.0, 0.35), Plain, None), // 59.3 / 98.5
    row(EF, Feedback, (24.0, 0.2), Plain, None), // 46.7 / 98.0
    row(EF, FeedbackCam, (16.0, 0.4), Plain, Some((0.7, 4.0))).at_percentile(99.0), // 67.7 / 97.5
    row(EF, GradCam, (16.0, 0.35), Plain, None), // 66.5 / 99.8
];

/// The box settings of every method of one net, as a pipeline uses them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodBoxes {
    by_method: Vec<(Method, BoxSettings)>,
}

impl MethodBoxes {
    /// The tables' settings for the net of preset `net` with `priority`.
    pub fn tuned(net: Option<&str>, priority: BoxPriority) -> Self {
        Self {
            by_method: Method::ALL
                .iter()
                .map(|&m| (m, BoxSettings::tuned_for(net, m, priority)))
                .collect(),
        }
    }

    /// The settings of `method`.
    pub fn get(&self, method: Method) -> BoxSettings {
        self.by_method
            .iter()
            .find(|(m, _)| *m == method)
            .map_or_else(BoxSettings::untuned, |(_, s)| *s)
    }

    /// Replaces the settings of `method`.
    pub fn set(&mut self, method: Method, settings: BoxSettings) {
        match self.by_method.iter_mut().find(|(m, _)| *m == method) {
            Some((_, s)) => *s = settings,
            None => self.by_method.push((method, settings)),
        }
    }

    /// Applies `change` to every method's settings.
    pub fn update_all(&mut self, change: impl Fn(&mut BoxSettings)) {
        for (_, s) in &mut self.by_method {
            change(s);
        }
    }

    /// Checks every method's settings.
    pub fn validate(&self) -> crate::Result<()> {
        self.by_method.iter().try_for_each(|(_, s)| s.validate())
    }
}

impl Default for MethodBoxes {
    fn default() -> Self {
        Self::tuned(None, BoxPriority::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shared net has one valid row of each of `methods` in `table`, and only
    /// feedback-cam's rows carry a fusion.
    fn assert_one_valid_row_each(table: &[Row], methods: &[Method]) {
        for net in [SQ, V1, V2, EF] {
            for &method in methods {
                let rows = (table.iter())
                    .filter(|r| r.net == net && r.method == method)
                    .count();
                assert_eq!(rows, 1, "{net} {method}");
            }
        }
        assert!(table.iter().all(|r| r.settings().validate().is_ok()));
        assert!((table.iter()).all(|r| r.fusion.is_some() == (r.method == FeedbackCam)));
    }

    #[test]
    fn every_shared_net_has_every_method_once() {
        assert_one_valid_row_each(TABLE, &Method::ALL);
    }

    #[test]
    fn every_shared_net_has_stable_feedback_and_grad_cam_settings() {
        assert_one_valid_row_each(STABLE, &[Feedback, FeedbackCam, GradCam]);
        assert!(STABLE.iter().all(|r| TABLE.iter().any(|t| t.net == r.net)));
    }

    #[test]
    fn a_method_without_a_stable_setting_gets_its_accurate_one() {
        for net in [Some(SQ), Some(V2), Some("resnet50"), None] {
            for method in [Gradient, Guided, Deconvnet, FeedbackHard] {
                assert_eq!(
                    BoxSettings::tuned_for(net, method, BoxPriority::Stable),
                    BoxSettings::tuned_for(net, method, BoxPriority::Accurate),
                    "{net:?} {method}"
                );
            }
        }
        let stable = MethodBoxes::tuned(Some(EF), BoxPriority::Stable);
        assert_eq!(
            stable.get(FeedbackCam),
            BoxSettings::tuned_for(Some(EF), FeedbackCam, BoxPriority::Stable)
        );
        assert_ne!(stable, MethodBoxes::tuned(Some(EF), BoxPriority::Accurate));
    }

    #[test]
    fn a_net_without_an_entry_gets_squeezenet_settings() {
        assert_eq!(tuned_on(None), SQ);
        assert_eq!(tuned_on(Some("resnet50")), SQ);
        assert_eq!(tuned_on(Some(V2)), V2);
        let tuned = |net| MethodBoxes::tuned(net, BoxPriority::default());
        let v2 = tuned(Some(V2));
        let other = tuned(Some("resnet50"));
        assert_eq!(other, tuned(Some(SQ)));
        assert_ne!(v2, other);
    }

    #[test]
    fn set_and_update_all_change_the_settings() {
        let mut boxes = MethodBoxes::tuned(Some(SQ), BoxPriority::Accurate);
        let given = BoxSettings::untuned();
        boxes.set(GradCam, given);
        assert_eq!(boxes.get(GradCam), given);
        assert_ne!(boxes.get(Gradient), given);
        boxes.update_all(|s| s.refine = None);
        assert!(Method::ALL.iter().all(|&m| boxes.get(m).refine.is_none()));
    }
}
