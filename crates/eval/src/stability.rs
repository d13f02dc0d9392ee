//! Stability as a measured property: how much a method's map and box move when the input is
//! perturbed by amounts far below what a viewer (or the class) notices.
//!
//! A [`Perturbation`] is either noise on the network input in its normalized units
//! ([`Perturbation::Input`]: `1e-6` probes rounding, the same test as running in float64) or
//! uniform integer noise of a few grey levels on the 8-bit image ([`Perturbation::Grey`]: the
//! noise of re-encoding a photo); [`Perturbation::OtherBackend`] leaves the input alone and
//! runs the same pipeline on another compute backend. One [`StabilityRecord`] holds, for one image, method and
//! perturbation, the Pearson correlation of the two maps and the IoU of the two first boxes;
//! [`summarize`] turns records into [`StabilityRow`]s: per method and perturbation, the mean and
//! smallest correlation and the share of boxes that kept IoU >= [`STABLE_BOX_IOU`].
//!
//! ```
//! use feedbacknet_eval::stability::{Perturbation, StabilityRecord, correlation, summarize};
//!
//! let a = [0.0f32, 1.0, 2.0, 3.0];
//! let b = [0.1f32, 1.0, 2.1, 2.9];
//! let r = correlation(&a, &b).unwrap();
//! assert!(r > 0.99);
//! let record = StabilityRecord {
//!     image: "x".into(),
//!     method: "feedback".into(),
//!     perturbation: Perturbation::Grey { levels: 1 },
//!     correlation: r,
//!     box_iou: Some(0.95),
//! };
//! let rows = summarize(&[record]);
//! assert_eq!(rows[0].images, 1);
//! assert_eq!(rows[0].boxes_kept, Some(1.0));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A box "keeps its place" when its IoU with the unperturbed box is at least this (0.9).
pub const STABLE_BOX_IOU: f64 = 0.9;

/// A map is called stable when it correlates at least this with the unperturbed map (0.95).
pub const STABLE_CORRELATION: f64 = 0.95;

/// How the input is perturbed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Perturbation {
    /// Uniform noise in `[-amplitude, amplitude]` added to every value of the normalized network
    /// input (after resizing and normalization).
    Input {
        /// Largest change of one input value, in normalized units.
        amplitude: f32,
    },
    /// Uniform integer noise in `[-levels, levels]` added to every 8-bit channel of the image
    /// (clamped to 0..=255) before it is prepared for the network.
    Grey {
        /// Largest change of one channel, in grey levels.
        levels: u8,
    },
    /// No change of the input: the same image explained on another compute backend (a GPU
    /// against the CPU, say; the caller's report names the two). Its maps and boxes come
    /// through the whole pipeline, as for [`Perturbation::Grey`].
    OtherBackend,
}

impl std::fmt::Display for Perturbation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Perturbation::Input { amplitude } => write!(f, "input ±{amplitude:e}"),
            Perturbation::Grey { levels } => write!(f, "±{levels} grey"),
            Perturbation::OtherBackend => write!(f, "other backend"),
        }
    }
}

/// One image, method and perturbation: how far the map and the box moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityRecord {
    /// The image's id.
    pub image: String,
    /// The method (and objective) that made the maps, as the caller names it.
    pub method: String,
    /// The perturbation.
    pub perturbation: Perturbation,
    /// Pearson correlation of the map of the clean and of the perturbed input.
    pub correlation: f64,
    /// IoU of the two first boxes (`None` where boxes were not computed or one side had none).
    pub box_iou: Option<f64>,
}

/// Per method and perturbation, the summary of its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityRow {
    /// The method.
    pub method: String,
    /// The perturbation.
    pub perturbation: Perturbation,
    /// Number of records.
    pub images: usize,
    /// Mean correlation.
    pub mean_correlation: f64,
    /// Smallest correlation.
    pub min_correlation: f64,
    /// Share of records whose correlation is at least [`STABLE_CORRELATION`].
    pub stable_maps: f64,
    /// Share of boxes with IoU >= [`STABLE_BOX_IOU`] (`None` where no record has a box).
    pub boxes_kept: Option<f64>,
}

/// Pearson correlation of two equally long maps, in `f64`; `None` when the lengths differ, the
/// maps are empty, or one of them is constant or not finite.
pub fn correlation(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let n = a.len() as f64;
    let mean = |m: &[f32]| m.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    let r = ab / (aa * bb).sqrt();
    r.is_finite().then_some(r)
}

/// Summarizes records per (method, perturbation), in the order of first appearance.
pub fn summarize(records: &[StabilityRecord]) -> Vec<StabilityRow> {
    let mut order: Vec<(String, Perturbation)> = Vec::new();
    let mut groups: BTreeMap<usize, Vec<&StabilityRecord>> = BTreeMap::new();
    for record in records {
        let key = (record.method.clone(), record.perturbation);
        let index = match order.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                order.push(key);
                order.len() - 1
            }
        };
        groups.entry(index).or_default().push(record);
    }
    order
        .into_iter()
        .zip(groups.into_values())
        .map(|((method, perturbation), group)| row(method, perturbation, &group))
        .collect()
}

fn row(method: String, perturbation: Perturbation, group: &[&StabilityRecord]) -> StabilityRow {
    let n = group.len().max(1) as f64;
    let rs = group.iter().map(|r| r.correlation);
    let ious: Vec<f64> = group.iter().filter_map(|r| r.box_iou).collect();
    StabilityRow {
        method,
        perturbation,
        images: group.len(),
        mean_correlation: rs.clone().sum::<f64>() / n,
        min_correlation: rs.clone().fold(f64::INFINITY, f64::min),
        stable_maps: rs.filter(|&r| r >= STABLE_CORRELATION).count() as f64 / n,
        boxes_kept: (!ious.is_empty()).then(|| {
            ious.iter().filter(|&&iou| iou >= STABLE_BOX_IOU).count() as f64 / ious.len() as f64
        }),
    }
}

/// A Markdown table of rows: method, perturbation, images, mean and smallest correlation,
/// share of stable maps, share of boxes kept.
pub fn markdown_table(rows: &[StabilityRow]) -> String {
    let mut out = String::from(
        "| method | perturbation | images | mean r | min r | r >= 0.95 | boxes IoU >= 0.9 |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let boxes = r
            .boxes_kept
            .map_or_else(|| "-".to_string(), |b| format!("{:.0} %", 100.0 * b));
        out.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.0} % | {} |\n",
            r.method,
            r.perturbation,
            r.images,
            r.mean_correlation,
            r.min_correlation,
            100.0 * r.stable_maps,
            boxes
        ));
    }
    out
}

/// A small deterministic generator (SplitMix64) so that a perturbation is reproducible from
/// its seed without a random-number dependency.
#[derive(Debug, Clone)]
pub struct NoiseSource {
    state: u64,
}

impl NoiseSource {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator of the image of data set index `index` under the run's `seed`: what
    /// `feedbacknet stability` and `feedbacknet tune --stable-boxes` perturb each image with,
    /// so both see the same noise.
    pub fn for_image(seed: u64, index: usize) -> Self {
        Self::new(seed ^ (index as u64).rotate_left(17))
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        2.0 * unit - 1.0
    }

    /// A uniform integer in `[-levels, levels]`.
    pub fn levels(&mut self, levels: u8) -> i16 {
        let span = 2 * u64::from(levels) + 1;
        (self.next_u64() % span) as i16 - i16::from(levels)
    }
}

/// Adds uniform noise in `[-amplitude, amplitude]` to every value.
pub fn add_input_noise(values: &mut [f32], amplitude: f32, noise: &mut NoiseSource) {
    for v in values {
        *v += amplitude * noise.symmetric();
    }
}

/// Adds uniform integer noise in `[-levels, levels]` to every 8-bit channel, clamped to 0..=255.
pub fn add_grey_noise(channels: &mut [u8], levels: u8, noise: &mut NoiseSource) {
    for c in channels {
        let v = i16::from(*c) + noise.levels(levels);
        *c = v.clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(method: &str, r: f64, iou: Option<f64>) -> StabilityRecord {
        StabilityRecord {
            image: "i".into(),
            method: method.into(),
            perturbation: Perturbation::Input { amplitude: 1e-6 },
            correlation: r,
            box_iou: iou,
        }
    }

    #[test]
    fn correlation_of_a_map_with_itself_scaled_is_one_and_with_its_negative_minus_one() {
        let a: Vec<f32> = (0..50).map(|i| ((i * 7) % 13) as f32).collect();
        let scaled: Vec<f32> = a.iter().map(|v| 3.0 * v + 1.0).collect();
        let negated: Vec<f32> = a.iter().map(|v| -v).collect();
        assert!((correlation(&a, &scaled).unwrap() - 1.0).abs() < 1e-12);
        assert!((correlation(&a, &negated).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&a, &a[1..]), None);
        assert_eq!(correlation(&[1.0, 1.0], &[0.0, 1.0]), None);
    }

    #[test]
    fn summary_groups_by_method_and_counts_stable_maps_and_kept_boxes() {
        let records = [
            record("a", 0.99, Some(0.95)),
            record("b", 0.5, Some(0.2)),
            record("a", 0.90, Some(0.5)),
            record("a", 0.97, None),
        ];
        let rows = summarize(&records);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].method.as_str(), rows[0].images), ("a", 3));
        assert!((rows[0].mean_correlation - (0.99 + 0.90 + 0.97) / 3.0).abs() < 1e-12);
        assert_eq!(rows[0].min_correlation, 0.90);
        assert!((rows[0].stable_maps - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rows[0].boxes_kept, Some(0.5));
        assert_eq!(rows[1].boxes_kept, Some(0.0));
        assert!(markdown_table(&rows).contains("| a | input ±1e-6 | 3 |"));
    }

    #[test]
    fn noise_stays_within_its_amplitude_and_reaches_both_ends() {
        let mut noise = NoiseSource::new(7);
        let mut grey = vec![0u8, 255, 100, 100, 100, 100, 100, 100, 100, 100];
        grey.extend(std::iter::repeat_n(100u8, 1000));
        add_grey_noise(&mut grey, 1, &mut noise);
        assert!(grey[0] <= 1 && grey[1] >= 254);
        assert!(grey[2..].iter().all(|&v| (99..=101).contains(&v)));
        assert!(grey.contains(&99) && grey.contains(&101));
        let mut values = vec![0.5f32; 1000];
        add_input_noise(&mut values, 1e-3, &mut noise);
        assert!(values.iter().all(|v| (v - 0.5).abs() <= 1e-3 + 1e-7));
        assert!(values.iter().any(|&v| v != 0.5));
        let again: Vec<i16> = {
            let mut n = NoiseSource::new(7);
            (0..5).map(|_| n.levels(3)).collect()
        };
        let mut n = NoiseSource::new(7);
        assert_eq!(again, (0..5).map(|_| n.levels(3)).collect::<Vec<_>>());
    }
}
