//! Parameters of [`crate::localize`].

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{MapScale, Result};

/// Parameters of [`crate::localize`], built in builder style.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `threshold` | 0.2 | a pixel is on when it reaches this fraction of the map's scale (its maximum by default) |
/// | `scale` | `max` | what the threshold is a fraction of: the maximum, or a percentile of the map's pixels ([`MapScale`]) |
/// | `blur_sigma` | 10.0 | Gaussian blur, in map pixels, before thresholding; 0 disables |
/// | `min_area_fraction` | 0.01 | smallest component, as a fraction of the map area, listed in [`crate::Localization::boxes`] |
///
/// ```
/// use feedbacknet_localize::LocalizeConfig;
/// let c = LocalizeConfig::default().with_threshold(0.5).with_blur_sigma(0.0);
/// assert!(c.validate().is_ok());
/// assert_eq!((c.threshold(), c.blur_sigma(), c.min_area_fraction()), (0.5, 0.0, 0.01));
/// assert!(c.with_threshold(1.5).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalizeConfig {
    /// Fraction of the (smoothed, normalised) map's scale ([`LocalizeConfig::scale`])
    /// a pixel must reach to be on; in `[0, 1]`. Default 0.2.
    pub threshold: f32,
    /// Standard deviation of the Gaussian blur in map pixels; `>= 0`, 0
    /// disables the blur. Default 10.0.
    pub blur_sigma: f32,
    /// Smallest component area, as a fraction of the map area, listed in
    /// [`crate::Localization::boxes`]; in `[0, 1)`. Default 0.01.
    pub min_area_fraction: f32,
    /// What the threshold is a fraction of: the smoothed map's maximum, or a percentile of
    /// its pixels (the map is divided by it and clamped at 1). Default
    /// [`MapScale::Maximum`].
    pub scale: MapScale,
}

impl Default for LocalizeConfig {
    fn default() -> Self {
        Self {
            threshold: 0.2,
            blur_sigma: 10.0,
            min_area_fraction: 0.01,
            scale: MapScale::Maximum,
        }
    }
}

impl LocalizeConfig {
    /// Sets [`LocalizeConfig::threshold`].
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`LocalizeConfig::blur_sigma`].
    pub fn with_blur_sigma(mut self, sigma: f32) -> Self {
        self.blur_sigma = sigma;
        self
    }

    /// Sets [`LocalizeConfig::min_area_fraction`].
    pub fn with_min_area_fraction(mut self, fraction: f32) -> Self {
        self.min_area_fraction = fraction;
        self
    }

    /// Sets [`LocalizeConfig::scale`].
    pub fn with_scale(mut self, scale: MapScale) -> Self {
        self.scale = scale;
        self
    }

    /// The threshold fraction.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The blur sigma in map pixels.
    pub fn blur_sigma(&self) -> f32 {
        self.blur_sigma
    }

    /// The minimum reported component area as a fraction of the map area.
    pub fn min_area_fraction(&self) -> f32 {
        self.min_area_fraction
    }

    /// Checks every parameter is in range (see the field docs); returns
    /// [`crate::LocalizeError::InvalidParameter`] naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.scale.validate()?;
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(invalid("threshold", self.threshold, "must lie in [0, 1]"));
        }
        if !(self.blur_sigma.is_finite() && self.blur_sigma >= 0.0) {
            return Err(invalid(
                "blur_sigma",
                self.blur_sigma,
                "must be finite and >= 0",
            ));
        }
        if self.blur_sigma > crate::MAX_BLUR_SIGMA {
            return Err(invalid(
                "blur_sigma",
                self.blur_sigma,
                format!("must be at most {}", crate::MAX_BLUR_SIGMA),
            ));
        }
        if !(0.0..1.0).contains(&self.min_area_fraction) {
            return Err(invalid(
                "min_area_fraction",
                self.min_area_fraction,
                "must lie in [0, 1)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalizeError;

    #[test]
    fn defaults_and_builders() {
        let d = LocalizeConfig::default();
        assert_eq!(
            (d.threshold, d.blur_sigma, d.min_area_fraction),
            (0.2, 10.0, 0.01)
        );
        assert!(d.validate().is_ok());
        let c = d
            .with_threshold(0.3)
            .with_blur_sigma(2.0)
            .with_min_area_fraction(0.0);
        assert_eq!(
            (c.threshold, c.blur_sigma, c.min_area_fraction),
            (0.3, 2.0, 0.0)
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validate_names_the_bad_parameter() {
        let name = |c: LocalizeConfig| match c.validate() {
            Err(LocalizeError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        };
        let d = LocalizeConfig::default();
        assert_eq!(name(d.with_threshold(-0.01)), "threshold");
        assert_eq!(name(d.with_threshold(f32::NAN)), "threshold");
        assert_eq!(name(d.with_blur_sigma(-1.0)), "blur_sigma");
        assert_eq!(name(d.with_blur_sigma(f32::INFINITY)), "blur_sigma");
        assert_eq!(name(d.with_min_area_fraction(1.0)), "min_area_fraction");
        assert_eq!(name(d.with_min_area_fraction(-0.5)), "min_area_fraction");
        let p0 = MapScale::Percentile(0.0);
        assert_eq!(name(d.with_scale(p0)), "percentile");
        assert!(d.with_threshold(0.0).validate().is_ok());
        assert!(d.with_threshold(1.0).validate().is_ok());
    }
}
