//! The settings of the colour refinement.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::error::invalid;

/// The colour model of [`refine_mask`](crate::refine_mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColourModel {
    /// Two colour histograms (foreground, background); each pixel of the uncertain band is
    /// labelled on its own by its colour and the map prior. The default.
    #[default]
    Histogram,
    /// GrabCut: two Gaussian mixtures (full-covariance RGB) and a minimum cut of the pixel
    /// graph with a contrast-sensitive smoothness term, so neighbours of like colour take
    /// the same label; run at a reduced resolution (`max_side`).
    GrabCut,
}

/// How the histogram model counts a colour in its cells.
///
/// Under [`Binning::Nearest`] a colour counts in the one cell it falls in, so a change of one
/// grey level that crosses a cell edge (`256 / bins` levels wide) moves the pixel to another
/// cell with another likelihood: noise of ±1 grey level moves about one pixel in eight. Under
/// [`Binning::Trilinear`] a colour is shared among the eight cells whose centres surround it,
/// by trilinear weights, and its likelihood is read back the same way, so it varies
/// continuously with the colour. On the dev images of SqueezeNet 1.1 and EfficientNet-Lite0
/// trilinear binning kept more of the fused map's boxes under that noise at nearly every
/// setting measured, and localized as well or better; on MobileNet v2 it localized better at
/// every setting and kept about as many, on MobileNet v1 it kept slightly fewer
/// (`docs/results.md`, "Trilinear colour histograms"). The nearest cell stays the default; the
/// facade's tuned box settings bin trilinearly where their tune chose it (SqueezeNet 1.1's
/// feedback row and its stable feedback-cam row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binning {
    /// Each colour counts in the one cell it falls in. The default.
    #[default]
    Nearest,
    /// Each colour is shared among the eight surrounding cell centres by trilinear weights.
    Trilinear,
}

/// Parameters of [`refine_mask`](crate::refine_mask), built in builder style. Map values are
/// read as fractions of the map's maximum (the map is normalised first).
///
/// | field | default | meaning |
/// |---|---|---|
/// | `sure_foreground` | 0.5 | pixels at or above this fraction are always foreground (the seeds) |
/// | `sure_background` | 0.1 | pixels below this fraction are always background |
/// | `bins` | 16 | histogram bins per colour channel, in `1..=64` |
/// | `binning` | `Nearest` | how a colour counts in the cells: [`Binning::Nearest`] or [`Binning::Trilinear`] |
/// | `iterations` | 3 | label / refit rounds, in `1..=100` (stops early when labels settle) |
/// | `prior_weight` | 1.0 | weight of the map prior `ln(v / (1 - v))`; 0 = colour alone |
/// | `smoothing` | 1.0 | Laplace pseudo-count per histogram cell |
/// | `model` | `Histogram` | the colour model: [`ColourModel::Histogram`] or [`ColourModel::GrabCut`] |
/// | `components` | 5 | GrabCut: Gaussians per mixture, in `1..=16` |
/// | `gamma` | 50.0 | GrabCut: weight of the smoothness term |
/// | `max_side` | 96 | GrabCut: the longer side of the working resolution, in `8..=4096` |
///
/// `bins`, `binning` and `smoothing` are read by the histogram model only; `components`,
/// `gamma` and `max_side` by GrabCut only.
///
/// ```
/// use feedbacknet_localize::RefineConfig;
/// let c = RefineConfig::default().with_bins(8).with_iterations(5);
/// assert!(c.validate().is_ok());
/// assert!(c.with_sure_background(0.7).validate().is_err()); // above sure_foreground
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefineConfig {
    /// Fraction of the map's maximum from which a pixel is sure foreground;
    /// in `[sure_background, 1]`. Default 0.5.
    pub sure_foreground: f32,
    /// Fraction of the map's maximum below which a pixel is sure background;
    /// in `[0, sure_foreground]`. Default 0.1.
    pub sure_background: f32,
    /// Bins per RGB channel of the colour histograms (`bins³` cells); in
    /// `1..=64`. Default 16.
    pub bins: usize,
    /// How a colour counts in the histogram's cells. Default [`Binning::Nearest`].
    pub binning: Binning,
    /// Rounds of labelling the uncertain band and refitting the histograms;
    /// in `1..=100`. Default 3.
    pub iterations: usize,
    /// Weight of the map prior; finite and `>= 0`. Default 1.0.
    pub prior_weight: f32,
    /// Laplace smoothing: pseudo-count added to every histogram cell;
    /// finite and `> 0`. Default 1.0.
    pub smoothing: f32,
    /// The colour model. Default [`ColourModel::Histogram`].
    pub model: ColourModel,
    /// GrabCut: Gaussian components per colour mixture; in `1..=16`. Default 5.
    pub components: usize,
    /// GrabCut: weight of the contrast-sensitive smoothness term between neighbours;
    /// finite and `>= 0`. Default 50.0.
    pub gamma: f32,
    /// GrabCut: the image and map are averaged down in square blocks until their longer
    /// side is at most this many pixels, segmented there, and the labels read back at full
    /// size; in `8..=4096`. Default 96.
    pub max_side: usize,
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            sure_foreground: 0.5,
            sure_background: 0.1,
            bins: 16,
            binning: Binning::Nearest,
            iterations: 3,
            prior_weight: 1.0,
            smoothing: 1.0,
            model: ColourModel::Histogram,
            components: 5,
            gamma: 50.0,
            max_side: 96,
        }
    }
}

impl RefineConfig {
    /// Sets [`RefineConfig::sure_foreground`].
    pub fn with_sure_foreground(mut self, fraction: f32) -> Self {
        self.sure_foreground = fraction;
        self
    }

    /// Sets [`RefineConfig::sure_background`].
    pub fn with_sure_background(mut self, fraction: f32) -> Self {
        self.sure_background = fraction;
        self
    }

    /// Sets [`RefineConfig::bins`].
    pub fn with_bins(mut self, bins: usize) -> Self {
        self.bins = bins;
        self
    }

    /// Sets [`RefineConfig::binning`].
    pub fn with_binning(mut self, binning: Binning) -> Self {
        self.binning = binning;
        self
    }

    /// Sets [`RefineConfig::iterations`].
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Sets [`RefineConfig::prior_weight`].
    pub fn with_prior_weight(mut self, weight: f32) -> Self {
        self.prior_weight = weight;
        self
    }

    /// Sets [`RefineConfig::smoothing`].
    pub fn with_smoothing(mut self, pseudo_count: f32) -> Self {
        self.smoothing = pseudo_count;
        self
    }

    /// Sets [`RefineConfig::model`].
    pub fn with_model(mut self, model: ColourModel) -> Self {
        self.model = model;
        self
    }

    /// Sets [`RefineConfig::components`].
    pub fn with_components(mut self, components: usize) -> Self {
        self.components = components;
        self
    }

    /// Sets [`RefineConfig::gamma`].
    pub fn with_gamma(mut self, gamma: f32) -> Self {
        self.gamma = gamma;
        self
    }

    /// Sets [`RefineConfig::max_side`].
    pub fn with_max_side(mut self, max_side: usize) -> Self {
        self.max_side = max_side;
        self
    }

    /// Checks every parameter is in range (see the field docs); returns
    /// [`LocalizeError::InvalidParameter`] naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let (fg, bg) = (self.sure_foreground, self.sure_background);
        if !(0.0..=1.0).contains(&fg) {
            return Err(invalid("sure_foreground", fg, "must lie in [0, 1]"));
        }
        if !(0.0..=fg).contains(&bg) {
            return Err(invalid(
                "sure_background",
                bg,
                format!("must lie in [0, sure_foreground = {fg}]"),
            ));
        }
        if !(1..=64).contains(&self.bins) {
            return Err(invalid("bins", self.bins, "must lie in 1..=64"));
        }
        if !(1..=100).contains(&self.iterations) {
            return Err(invalid(
                "iterations",
                self.iterations,
                "must lie in 1..=100",
            ));
        }
        if !(self.prior_weight.is_finite() && self.prior_weight >= 0.0) {
            return Err(invalid(
                "prior_weight",
                self.prior_weight,
                "must be finite and >= 0",
            ));
        }
        if !(self.smoothing.is_finite() && self.smoothing > 0.0) {
            return Err(invalid(
                "smoothing",
                self.smoothing,
                "must be finite and > 0",
            ));
        }
        if !(1..=16).contains(&self.components) {
            return Err(invalid("components", self.components, "must lie in 1..=16"));
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(invalid("gamma", self.gamma, "must be finite and >= 0"));
        }
        if !(8..=4096).contains(&self.max_side) {
            return Err(invalid("max_side", self.max_side, "must lie in 8..=4096"));
        }
        Ok(())
    }
}
