//! How a smoothed map is scaled before it is thresholded: by its maximum, or by a high
//! percentile of its pixels.
//!
//! Why a percentile: a box threshold is a fraction of the map's scale, and the maximum is one
//! pixel. On a peaky map (a gradient map at a small blur) that pixel moves under an invisible
//! change of the input (one grey level), the threshold moves with it and the box jumps. The
//! value at the 99th percentile is set by a hundredth of the pixels, so it moves far less
//! (`docs/results.md`, "Stable boxes").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{LocalizeError, invalid};

/// How a map (clamped at 0) is scaled to `[0, 1]` before a box threshold is applied: the
/// threshold is a fraction of the scale. Written `max` or `pP` (`p99`, `p99.5`).
///
/// ```
/// use feedbacknet_localize::{MapScale, SaliencyMap};
/// let map = SaliencyMap::from_fn(10, 10, |x, y| if (x, y) == (0, 0) { 9.0 } else { 1.0 })?;
/// // By the maximum, one bright pixel puts every other pixel at 1/9.
/// assert!((map.normalized_by(MapScale::Maximum).get(5, 5) - 1.0 / 9.0).abs() < 1e-6);
/// // By the 95th percentile, the bright pixel is clamped at 1 and the rest is 1 too.
/// let p95: MapScale = "p95".parse()?;
/// assert_eq!(map.normalized_by(p95).get(5, 5), 1.0);
/// assert_eq!(p95.to_string(), "p95");
/// assert!("p0".parse::<MapScale>().is_err());
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MapScale {
    /// Divided by the maximum: a threshold is a fraction of the peak (the default, and the
    /// rule of the paper and of wsolevaluation).
    #[default]
    Maximum,
    /// Divided by the value at this percentile of the map's pixels (nearest rank, in
    /// `(0, 100]`), then clamped at 1: a threshold is a fraction of a level that no single
    /// pixel sets. When that value is 0 (a map that is 0 almost everywhere), the maximum.
    Percentile(f32),
}

impl MapScale {
    /// Checks that a percentile lies in `(0, 100]`.
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            MapScale::Percentile(p) if !(p > 0.0 && p <= 100.0) => {
                Err(invalid("percentile", p, "must lie in (0, 100]"))
            }
            _ => Ok(()),
        }
    }

    /// The value `data` (clamped at 0) is divided by: its maximum, or the value at the
    /// percentile (its maximum when that is 0). Not positive for a map without a positive
    /// value.
    pub(crate) fn value(&self, data: &[f32]) -> f32 {
        let max = data.iter().copied().fold(0.0f32, f32::max);
        let MapScale::Percentile(p) = *self else {
            return max;
        };
        let mut values: Vec<f32> = data.iter().map(|&v| v.max(0.0)).collect();
        let rank = (f64::from(p) / 100.0 * values.len() as f64).ceil() as usize;
        let at = rank.clamp(1, values.len().max(1)) - 1;
        let value = match values.get(at) {
            Some(_) => *values.select_nth_unstable_by(at, f32::total_cmp).1,
            None => 0.0,
        };
        if value > 0.0 { value } else { max }
    }
}

impl fmt::Display for MapScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapScale::Maximum => write!(f, "max"),
            MapScale::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

impl FromStr for MapScale {
    type Err = LocalizeError;

    fn from_str(s: &str) -> crate::Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") || s.eq_ignore_ascii_case("maximum") {
            return Ok(MapScale::Maximum);
        }
        let percentile = (s.strip_prefix(['p', 'P']))
            .and_then(|p| p.parse::<f32>().ok())
            .ok_or_else(|| invalid("map scale", s, "expected `max` or `pP` (e.g. `p99`)"))?;
        let scale = MapScale::Percentile(percentile);
        scale.validate()?;
        Ok(scale)
    }
}

impl From<MapScale> for String {
    fn from(n: MapScale) -> String {
        n.to_string()
    }
}

impl TryFrom<String> for MapScale {
    type Error = LocalizeError;

    fn try_from(s: String) -> crate::Result<Self> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_nearest_rank() {
        let data: Vec<f32> = (1..=100).map(|v| v as f32).collect();
        assert_eq!(MapScale::Percentile(99.0).value(&data), 99.0);
        assert_eq!(MapScale::Percentile(100.0).value(&data), 100.0);
        assert_eq!(MapScale::Percentile(0.5).value(&data), 1.0);
        assert_eq!(MapScale::Maximum.value(&data), 100.0);
    }

    #[test]
    fn a_map_zero_at_the_percentile_falls_back_to_its_maximum() {
        let mut data = vec![0.0f32; 100];
        data[3] = 2.0;
        assert_eq!(MapScale::Percentile(99.0).value(&data), 2.0);
        assert_eq!(MapScale::Percentile(99.0).value(&[-1.0, -2.0]), 0.0);
        assert_eq!(MapScale::Percentile(99.0).value(&[]), 0.0);
    }

    #[test]
    fn parses_and_prints_each_form() {
        for (text, n) in [
            ("max", MapScale::Maximum),
            ("Maximum", MapScale::Maximum),
            ("p99", MapScale::Percentile(99.0)),
            ("P99.5", MapScale::Percentile(99.5)),
            ("p100", MapScale::Percentile(100.0)),
        ] {
            assert_eq!(text.parse::<MapScale>(), Ok(n), "{text}");
            assert_eq!(n.to_string().parse::<MapScale>(), Ok(n));
        }
        for bad in ["", "p", "p0", "p-1", "p101", "pNaN", "median", "99"] {
            assert!(bad.parse::<MapScale>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serializes_as_its_name() {
        let json = serde_json::to_string(&MapScale::Percentile(99.0)).unwrap();
        assert_eq!(json, "\"p99\"");
        let back: MapScale = serde_json::from_str("\"max\"").unwrap();
        assert_eq!(back, MapScale::Maximum);
        assert!(serde_json::from_str::<MapScale>("\"p200\"").is_err());
    }
}
