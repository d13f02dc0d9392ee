//! Dense saliency maps.

use serde::{Deserialize, Serialize};

use crate::error::{checked_area, invalid};
use crate::{BoundingBox, LocalizeError, MapScale, Mask, Result};

/// A dense, row-major map of finite `f32` values (e.g. a saliency map).
///
/// The invariants (`width, height > 0`, `data.len() == width * height`, all
/// values finite) are checked on construction and on deserialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMap")]
pub struct SaliencyMap {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

#[derive(Deserialize)]
struct RawMap {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl TryFrom<RawMap> for SaliencyMap {
    type Error = LocalizeError;
    fn try_from(raw: RawMap) -> Result<Self> {
        SaliencyMap::new(raw.width, raw.height, raw.data)
    }
}

impl SaliencyMap {
    /// Creates a map from row-major data.
    ///
    /// Errors: [`LocalizeError::EmptyImage`] for a zero dimension,
    /// [`LocalizeError::ShapeMismatch`] when `data.len() != width * height`,
    /// [`LocalizeError::NonFinite`] for a NaN or infinite value.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// let m = SaliencyMap::new(3, 2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])?;
    /// assert_eq!(m.get(1, 1), 4.0);
    /// assert!(SaliencyMap::new(2, 2, vec![0.0, f32::NAN, 0.0, 0.0]).is_err());
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        let expected = checked_area(width, height)?;
        if data.len() != expected {
            return Err(LocalizeError::ShapeMismatch {
                expected: format!("{expected} values ({width}x{height})"),
                got: format!("{} values", data.len()),
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(LocalizeError::NonFinite { index });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// An all-zero map.
    pub fn zeros(width: usize, height: usize) -> Result<Self> {
        let n = checked_area(width, height)?;
        Ok(Self {
            width,
            height,
            data: vec![0.0; n],
        })
    }

    /// Creates a map by evaluating `f(x, y)` at every pixel.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// let ramp = SaliencyMap::from_fn(4, 2, |x, _| x as f32)?;
    /// assert_eq!(ramp.max(), 3.0);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn from_fn(
        width: usize,
        height: usize,
        mut f: impl FnMut(usize, usize) -> f32,
    ) -> Result<Self> {
        let n = checked_area(width, height)?;
        let data = (0..n).map(|i| f(i % width, i / width)).collect();
        Self::new(width, height, data)
    }

    /// Builds a map from data known to satisfy the invariants; values that
    /// overflowed during arithmetic are saturated to `±f32::MAX`.
    pub(crate) fn from_computed(width: usize, height: usize, mut data: Vec<f32>) -> Self {
        debug_assert_eq!(data.len(), width * height);
        for v in &mut data {
            if !v.is_finite() {
                *v = if v.is_nan() {
                    0.0
                } else {
                    v.clamp(f32::MIN, f32::MAX)
                };
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the map and returns its row-major values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Value at `(x, y)`; the map is taken to be 0 outside its extent.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        if x < self.width && y < self.height {
            self.data.get(y * self.width + x).copied().unwrap_or(0.0)
        } else {
            0.0
        }
    }

    /// Largest value.
    pub fn max(&self) -> f32 {
        self.data.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Copy with negative values clamped to 0.
    pub fn clamped_nonnegative(&self) -> SaliencyMap {
        let data = self.data.iter().map(|&v| v.max(0.0)).collect();
        Self {
            width: self.width,
            height: self.height,
            data,
        }
    }

    /// Negative values clamped to 0, then everything divided by the maximum,
    /// so the maximum becomes 1. A map with no positive value becomes all 0.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// let m = SaliencyMap::new(3, 1, vec![-2.0, 1.0, 4.0])?.normalized();
    /// assert_eq!(m.data(), &[0.0, 0.25, 1.0]);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn normalized(&self) -> SaliencyMap {
        self.normalized_by(MapScale::Maximum)
    }

    /// Negative values clamped to 0, then everything divided by the value `scale` reads off
    /// the map (its maximum, or a percentile of its pixels) and clamped at 1. A map with no
    /// positive value becomes all 0. With [`MapScale::Maximum`] this is
    /// [`SaliencyMap::normalized`]; normalizing a normalized map again changes nothing.
    pub fn normalized_by(&self, scale: MapScale) -> SaliencyMap {
        let scale = scale.value(&self.data);
        let data = if scale > 0.0 {
            self.data
                .iter()
                .map(|&v| (v.max(0.0) / scale).min(1.0))
                .collect()
        } else {
            vec![0.0; self.data.len()]
        };
        Self {
            width: self.width,
            height: self.height,
            data,
        }
    }

    /// Binary mask of the pixels with `value >= fraction * max` and
    /// `value > 0`. `fraction` must lie in `[0, 1]`.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// let m = SaliencyMap::new(4, 1, vec![0.0, 0.1, 0.5, 1.0])?;
    /// assert_eq!(m.threshold(0.5)?.count(), 2);
    /// assert_eq!(m.threshold(0.0)?.count(), 3);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn threshold(&self, fraction: f32) -> Result<Mask> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(invalid("fraction", fraction, "must lie in [0, 1]"));
        }
        let cut = fraction * self.max();
        let data = self.data.iter().map(|&v| v > 0.0 && v >= cut).collect();
        Mask::new(self.width, self.height, data)
    }

    /// Share of the map's total mass whose pixel centres `(x + 0.5, y + 0.5)`
    /// lie inside `region`, in `[0, 1]`. Negative values are clamped to 0
    /// first; the result is 0 for a map without positive values.
    ///
    /// ```
    /// use feedbacknet_localize::{BoundingBox, SaliencyMap};
    /// let m = SaliencyMap::new(4, 1, vec![1.0, 1.0, 2.0, 0.0])?;
    /// let left = BoundingBox::new(0.0, 0.0, 2.0, 1.0)?;
    /// assert_eq!(m.mass_fraction_in(&left), 0.5);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn mass_fraction_in(&self, region: &BoundingBox) -> f32 {
        let total: f64 = self.data.iter().map(|&v| f64::from(v.max(0.0))).sum();
        if total <= 0.0 {
            return 0.0;
        }
        // Pixel x is inside when x0 <= x + 0.5 < x1.
        let range = |lo: f32, hi: f32, n: usize| -> (usize, usize) {
            let first = (f64::from(lo) - 0.5).ceil().clamp(0.0, n as f64) as usize;
            let end = (f64::from(hi) - 0.5).ceil().clamp(0.0, n as f64) as usize;
            (first, end.max(first))
        };
        if [region.x0, region.y0, region.x1, region.y1]
            .iter()
            .any(|v| v.is_nan())
        {
            return 0.0;
        }
        let (xa, xb) = range(region.x0, region.x1, self.width);
        let (ya, yb) = range(region.y0, region.y1, self.height);
        let inside: f64 = (ya..yb)
            .flat_map(|y| {
                let row = y * self.width;
                self.data.get(row + xa..row + xb).unwrap_or_default()
            })
            .map(|&v| f64::from(v.max(0.0)))
            .sum();
        (inside / total).clamp(0.0, 1.0) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_validates() {
        assert_eq!(
            SaliencyMap::new(0, 3, vec![]),
            Err(LocalizeError::EmptyImage)
        );
        assert!(matches!(
            SaliencyMap::new(2, 3, vec![0.0; 5]),
            Err(LocalizeError::ShapeMismatch { .. })
        ));
        assert_eq!(
            SaliencyMap::new(2, 2, vec![0.0, 1.0, f32::INFINITY, 0.0]),
            Err(LocalizeError::NonFinite { index: 2 })
        );
        assert_eq!(
            SaliencyMap::new(2, 2, vec![f32::NAN, 1.0, 0.0, 0.0]),
            Err(LocalizeError::NonFinite { index: 0 })
        );
        assert_eq!(
            SaliencyMap::from_fn(2, 2, |x, y| if x == 1 && y == 1 { f32::NAN } else { 0.0 }),
            Err(LocalizeError::NonFinite { index: 3 })
        );
    }

    #[test]
    fn accessors() {
        let m = SaliencyMap::new(3, 2, vec![0.0, 1.0, 2.0, 3.0, 4.0, -5.0]).unwrap();
        assert_eq!((m.width(), m.height()), (3, 2));
        assert_eq!(m.get(2, 0), 2.0);
        assert_eq!(m.get(0, 1), 3.0);
        assert_eq!(m.get(3, 0), 0.0);
        assert_eq!(m.get(0, 2), 0.0);
        assert_eq!(m.max(), 4.0);
        assert_eq!(m.clone().into_data(), m.data().to_vec());
    }

    #[test]
    fn normalized_cases() {
        let m = SaliencyMap::new(2, 2, vec![2.0, -1.0, 8.0, 4.0])
            .unwrap()
            .normalized();
        assert_eq!(m.data(), &[0.25, 0.0, 1.0, 0.5]);
        let z = SaliencyMap::zeros(3, 3).unwrap().normalized();
        assert!(z.data().iter().all(|&v| v == 0.0));
        let neg = SaliencyMap::new(2, 1, vec![-3.0, -1.0])
            .unwrap()
            .normalized();
        assert_eq!(neg.data(), &[0.0, 0.0]);
    }

    #[test]
    fn normalized_by_a_percentile_clamps_above_it_and_is_idempotent() {
        let m = SaliencyMap::from_fn(40, 30, |x, y| ((x * 7 + y * 13) % 97) as f32 - 5.0).unwrap();
        for n in [MapScale::Maximum, MapScale::Percentile(99.0)] {
            let once = m.normalized_by(n);
            assert_eq!(once.max(), 1.0, "{n}");
            assert!(once.data().iter().all(|v| (0.0..=1.0).contains(v)));
            assert_eq!(once.normalized_by(n), once, "{n}");
            assert_eq!(once.normalized(), once, "{n}");
        }
        let p99 = m.normalized_by(MapScale::Percentile(99.0));
        let at_one = p99.data().iter().filter(|&&v| v == 1.0).count();
        assert!(
            at_one >= 12,
            "at least 1 % of 1200 pixels clamped: {at_one}"
        );
        assert!(
            p99.data()
                .iter()
                .zip(m.normalized().data())
                .all(|(p, x)| p >= x)
        );
    }

    #[test]
    fn threshold_counts() {
        let m = SaliencyMap::new(5, 1, vec![0.0, 0.2, 0.4, 0.6, 0.8]).unwrap();
        assert_eq!(m.threshold(0.5).unwrap().count(), 3); // cut 0.4
        assert_eq!(m.threshold(0.75).unwrap().count(), 2); // cut 0.6
        assert_eq!(m.threshold(1.0).unwrap().count(), 1);
        assert_eq!(m.threshold(0.0).unwrap().count(), 4); // zero excluded
        let mask = m.threshold(0.75).unwrap();
        assert!(!mask.get(2, 0) && mask.get(3, 0) && mask.get(4, 0));
        assert!(matches!(
            m.threshold(1.5),
            Err(LocalizeError::InvalidParameter { .. })
        ));
        assert!(m.threshold(-0.1).is_err());
        assert!(m.threshold(f32::NAN).is_err());
        assert_eq!(
            SaliencyMap::zeros(3, 3)
                .unwrap()
                .threshold(0.0)
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn mass_fraction_cases() {
        let m = SaliencyMap::new(4, 2, vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]).unwrap();
        let b = |x0, y0, x1, y1| BoundingBox::new(x0, y0, x1, y1).unwrap();
        assert_eq!(m.mass_fraction_in(&b(0.0, 0.0, 2.0, 2.0)), 0.5);
        assert_eq!(m.mass_fraction_in(&b(2.0, 1.0, 4.0, 2.0)), 0.5);
        assert_eq!(m.mass_fraction_in(&b(-10.0, -10.0, 10.0, 10.0)), 1.0);
        // Centre 0.5 of column 0 lies in [0.4, 0.6); centre 1.5 does not.
        assert_eq!(m.mass_fraction_in(&b(0.4, 0.0, 0.6, 1.0)), 0.125);
        assert_eq!(m.mass_fraction_in(&b(0.6, 0.0, 1.4, 2.0)), 0.0);
        assert_eq!(m.mass_fraction_in(&b(5.0, 5.0, 6.0, 6.0)), 0.0);
        let z = SaliencyMap::zeros(2, 2).unwrap();
        assert_eq!(z.mass_fraction_in(&b(0.0, 0.0, 2.0, 2.0)), 0.0);
    }
}
