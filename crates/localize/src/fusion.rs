//! Fusing a fine saliency map (feedback, gradient) with a coarse class-discriminative one
//! (Grad-CAM) into one map.

use serde::{Deserialize, Serialize};

use crate::{Result, SaliencyMap, error::invalid};

/// How two normalized maps become one, per pixel. With `f` the fine map (blurred, normalized)
/// and `c` the coarse map (upsampled, normalized), both in `[0, 1]`, and `w` the coarse map's
/// weight:
///
/// | rule | fused value |
/// |---|---|
/// | [`Geometric`](FusionRule::Geometric) | `c^w · f^(1−w)` (the weighted geometric mean) |
/// | [`Arithmetic`](FusionRule::Arithmetic) | `w·c + (1−w)·f` |
///
/// The geometric mean keeps a pixel only where both maps see the object: Grad-CAM's coarse,
/// class-discriminative blob cut to the parts the fine map follows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FusionRule {
    /// The weighted geometric mean (default, `cam_weight` 0.5: `sqrt(c·f)`).
    Geometric {
        /// Weight `w` of the coarse map, in `[0, 1]`.
        cam_weight: f32,
    },
    /// The weighted arithmetic mean.
    Arithmetic {
        /// Weight `w` of the coarse map, in `[0, 1]`.
        cam_weight: f32,
    },
}

impl FusionRule {
    /// The weight `w` of the coarse map.
    ///
    /// ```
    /// use feedbacknet_localize::FusionRule;
    /// assert_eq!(FusionRule::Arithmetic { cam_weight: 0.3 }.cam_weight(), 0.3);
    /// ```
    pub fn cam_weight(self) -> f32 {
        match self {
            FusionRule::Geometric { cam_weight } | FusionRule::Arithmetic { cam_weight } => {
                cam_weight
            }
        }
    }
}

impl Default for FusionRule {
    fn default() -> Self {
        FusionRule::Geometric { cam_weight: 0.5 }
    }
}

/// Settings of [`fuse`]. Defaults: the geometric mean with equal weights, the fine map blurred
/// with sigma 10 pixels of the fine map (network-input pixels in `feedbacknet`).
///
/// ```
/// use feedbacknet_localize::{FusionConfig, FusionRule};
/// let config = FusionConfig::default().with_fine_blur_sigma(8.0);
/// assert_eq!(config.rule, FusionRule::Geometric { cam_weight: 0.5 });
/// assert!(config.validate().is_ok());
/// assert!(FusionConfig::default().with_rule(FusionRule::Arithmetic { cam_weight: 2.0 }).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FusionConfig {
    /// The fusion rule.
    pub rule: FusionRule,
    /// Gaussian blur of the fine map before fusion, in its pixels (0: none).
    pub fine_blur_sigma: f32,
}

impl Default for FusionConfig {
    fn default() -> Self {
        Self {
            rule: FusionRule::default(),
            fine_blur_sigma: 10.0,
        }
    }
}

impl FusionConfig {
    /// Sets the rule.
    pub fn with_rule(mut self, rule: FusionRule) -> Self {
        self.rule = rule;
        self
    }

    /// Sets the blur of the fine map.
    pub fn with_fine_blur_sigma(mut self, sigma: f32) -> Self {
        self.fine_blur_sigma = sigma;
        self
    }

    /// Checks the weight (in `[0, 1]`) and the blur (finite, `>= 0`, at most
    /// [`crate::MAX_BLUR_SIGMA`]).
    pub fn validate(&self) -> Result<()> {
        let w = self.cam_weight();
        if !(0.0..=1.0).contains(&w) {
            return Err(invalid("cam_weight", w, "must lie in [0, 1]"));
        }
        let s = self.fine_blur_sigma;
        if !(s.is_finite() && (0.0..=crate::MAX_BLUR_SIGMA).contains(&s)) {
            return Err(invalid(
                "fine_blur_sigma",
                s,
                format!("must be finite, in [0, {}]", crate::MAX_BLUR_SIGMA),
            ));
        }
        Ok(())
    }

    fn cam_weight(&self) -> f32 {
        match self.rule {
            FusionRule::Geometric { cam_weight } | FusionRule::Arithmetic { cam_weight } => {
                cam_weight
            }
        }
    }
}

/// Fuses a fine map with a coarse one: the fine map is blurred and normalized, the coarse map
/// resized bilinearly to the fine map's size and normalized, then the two are combined pixel
/// by pixel as [`FusionConfig::rule`] says. The result is normalized (maximum 1, or all 0).
///
/// ```
/// use feedbacknet_localize::{FusionConfig, SaliencyMap, fuse};
/// // The fine map sees two objects, the coarse map only the left one.
/// let fine = SaliencyMap::from_fn(8, 4, |x, _| if x == 1 || x == 6 { 1.0 } else { 0.0 })?;
/// let coarse = SaliencyMap::from_fn(2, 1, |x, _| if x == 0 { 1.0 } else { 0.0 })?;
/// let fused = fuse(&fine, &coarse, &FusionConfig::default().with_fine_blur_sigma(0.0))?;
/// assert_eq!((fused.width(), fused.height()), (8, 4));
/// assert_eq!(fused.get(1, 0), 1.0);
/// assert_eq!(fused.get(6, 0), 0.0);
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
pub fn fuse(
    fine: &SaliencyMap,
    coarse: &SaliencyMap,
    config: &FusionConfig,
) -> Result<SaliencyMap> {
    config.validate()?;
    let f = fine.gaussian_blur(config.fine_blur_sigma)?.normalized();
    let c = coarse
        .resize_bilinear(fine.width(), fine.height())?
        .normalized();
    let data = f
        .data()
        .iter()
        .zip(c.data())
        .map(|(&f, &c)| combine(config.rule, f, c))
        .collect();
    Ok(SaliencyMap::new(fine.width(), fine.height(), data)?.normalized())
}

fn combine(rule: FusionRule, fine: f32, coarse: f32) -> f32 {
    match rule {
        FusionRule::Geometric { cam_weight: w } => {
            // 0^0 = 1 would let a zero-weight map keep pixels the other map rejects, so a
            // zero value gives 0 unless its own weight is exactly 0.
            let zero_fine = fine <= 0.0 && w < 1.0;
            let zero_coarse = coarse <= 0.0 && w > 0.0;
            if zero_fine || zero_coarse {
                0.0
            } else {
                coarse.max(0.0).powf(w) * fine.max(0.0).powf(1.0 - w)
            }
        }
        FusionRule::Arithmetic { cam_weight: w } => w * coarse + (1.0 - w) * fine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> SaliencyMap {
        SaliencyMap::from_fn(w, h, f).unwrap()
    }

    #[test]
    fn geometric_mean_by_hand() {
        let fine = SaliencyMap::new(3, 1, vec![1.0, 0.25, 0.5]).unwrap();
        let coarse = SaliencyMap::new(3, 1, vec![0.25, 1.0, 0.0]).unwrap();
        let config = FusionConfig::default().with_fine_blur_sigma(0.0);
        let fused = fuse(&fine, &coarse, &config).unwrap();
        // sqrt(0.25) = 0.5 for both of the first two, 0 where the coarse map is 0.
        assert_eq!(fused.data(), &[1.0, 1.0, 0.0]);
        let arith = FusionConfig::default()
            .with_fine_blur_sigma(0.0)
            .with_rule(FusionRule::Arithmetic { cam_weight: 0.5 });
        let fused = fuse(&fine, &coarse, &arith).unwrap();
        // 0.625, 0.625, 0.25, normalized by 0.625.
        assert_eq!(fused.data(), &[1.0, 1.0, 0.4]);
    }

    #[test]
    fn the_extreme_weights_give_one_map_back() {
        let fine = map(6, 6, |x, y| (x * y) as f32);
        let coarse = map(3, 3, |x, _| x as f32);
        let only = |w| {
            let c = FusionConfig::default()
                .with_fine_blur_sigma(0.0)
                .with_rule(FusionRule::Geometric { cam_weight: w });
            fuse(&fine, &coarse, &c).unwrap()
        };
        assert_eq!(only(0.0).data(), fine.normalized().data());
        let up = coarse.resize_bilinear(6, 6).unwrap().normalized();
        let got = only(1.0);
        for (a, b) in got.data().iter().zip(up.data()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn blur_spreads_the_fine_map_before_fusion() {
        let fine = map(21, 21, |x, y| f32::from(u8::from((x, y) == (10, 10))));
        let coarse = map(1, 1, |_, _| 1.0);
        let sharp = fuse(
            &fine,
            &coarse,
            &FusionConfig::default().with_fine_blur_sigma(0.0),
        );
        let blurred = fuse(
            &fine,
            &coarse,
            &FusionConfig::default().with_fine_blur_sigma(2.0),
        );
        let on = |m: &SaliencyMap| m.data().iter().filter(|&&v| v > 0.1).count();
        assert_eq!(on(&sharp.unwrap()), 1);
        assert!(on(&blurred.unwrap()) > 9);
    }

    #[test]
    fn bad_settings_are_errors() {
        let m = map(2, 2, |_, _| 1.0);
        for config in [
            FusionConfig::default().with_fine_blur_sigma(-1.0),
            FusionConfig::default().with_fine_blur_sigma(f32::NAN),
            FusionConfig::default().with_rule(FusionRule::Geometric { cam_weight: -0.1 }),
            FusionConfig::default().with_rule(FusionRule::Arithmetic {
                cam_weight: f32::NAN,
            }),
        ] {
            assert!(fuse(&m, &m, &config).is_err(), "{config:?}");
        }
    }
}
