//! Colour-aware refinement of a thresholded saliency map (a simple,
//! GrabCut-like two-histogram model) so that boxes follow the object.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{checked_area, invalid};
use crate::{LocalizeError, Mask, Result, SaliencyMap};

/// An interleaved 8-bit RGB image (`r, g, b, r, g, b, ...`, row-major).
///
/// The invariants (`width, height > 0`, `rgb.len() == 3 * width * height`)
/// are checked on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColourImage {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl ColourImage {
    /// Creates an image from interleaved row-major RGB bytes.
    ///
    /// Errors: [`LocalizeError::EmptyImage`] for a zero dimension,
    /// [`LocalizeError::ShapeMismatch`] when `rgb.len() != 3 * width * height`.
    pub fn new(width: usize, height: usize, rgb: Vec<u8>) -> Result<Self> {
        let area = checked_area(width, height)?;
        let expected = area
            .checked_mul(3)
            .ok_or_else(|| invalid("width * height * 3", area, "overflows usize"))?;
        if rgb.len() != expected {
            return Err(LocalizeError::ShapeMismatch {
                expected: format!("{expected} bytes (3x{width}x{height} RGB)"),
                got: format!("{} bytes", rgb.len()),
            });
        }
        Ok(Self { width, height, rgb })
    }

    /// Creates an image by evaluating `f(x, y) = [r, g, b]` at every pixel.
    pub fn from_fn(
        width: usize,
        height: usize,
        mut f: impl FnMut(usize, usize) -> [u8; 3],
    ) -> Result<Self> {
        let n = checked_area(width, height)?;
        let rgb = (0..n).flat_map(|i| f(i % width, i / width)).collect();
        Self::new(width, height, rgb)
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Interleaved row-major RGB bytes.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Colour at `(x, y)`; `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            let mut colour = [0; 3];
            if let Some(rgb) = self.rgb.get(i..i + 3) {
                colour.copy_from_slice(rgb);
            }
            colour
        })
    }
}

/// Parameters of [`refine_mask`], built in builder style. Map values are
/// read as fractions of the map's maximum (the map is normalised first).
///
/// | field | default | meaning |
/// |---|---|---|
/// | `sure_foreground` | 0.5 | pixels at or above this fraction are always foreground (the seeds) |
/// | `sure_background` | 0.1 | pixels below this fraction are always background |
/// | `bins` | 16 | histogram bins per colour channel, in `1..=64` |
/// | `iterations` | 3 | label / refit rounds, in `1..=100` (stops early when labels settle) |
/// | `prior_weight` | 1.0 | weight of the map prior `ln(v / (1 - v))`; 0 = colour alone |
/// | `smoothing` | 1.0 | Laplace pseudo-count per histogram cell |
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
    /// Rounds of labelling the uncertain band and refitting the histograms;
    /// in `1..=100`. Default 3.
    pub iterations: usize,
    /// Weight of the map prior; finite and `>= 0`. Default 1.0.
    pub prior_weight: f32,
    /// Laplace smoothing: pseudo-count added to every histogram cell;
    /// finite and `> 0`. Default 1.0.
    pub smoothing: f32,
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            sure_foreground: 0.5,
            sure_background: 0.1,
            bins: 16,
            iterations: 3,
            prior_weight: 1.0,
            smoothing: 1.0,
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
        Ok(())
    }
}

/// Map values are clamped to `[PRIOR_EPS, 1 - PRIOR_EPS]` before the log-odds.
const PRIOR_EPS: f64 = 1e-3;

/// Refines the region of `map` at or above `seed_threshold` (a fraction of
/// its maximum, in `[0, 1]`) with a colour model of `image`, which must have
/// the map's size. Pass the map you would threshold (e.g. already blurred).
///
/// With `v` the normalised map value: pixels with `v >= sure_foreground`
/// (and `v > 0`) are foreground, pixels with `v < sure_background`
/// background. Colour histograms of foreground and background (Laplace
/// smoothed: `config.smoothing` extra counts per cell) are fitted from the
/// current labels; at first foreground is `v >= seed_threshold` (and `v > 0`),
/// background the sure background, and the rest of the band is left out, so
/// object colour just outside the seed does not enter the background model.
/// A pixel in the uncertain band between
/// is foreground when `ln p(colour | fg) + w ln(v / (1 - v)) > ln p(colour |
/// bg)`, i.e. `v` is read as the prior probability of foreground. Labelling
/// and refitting repeat `config.iterations` times (or until nothing changes);
/// finally only foreground 8-connected to a sure-foreground pixel is kept.
/// A map with no positive value gives an empty mask.
///
/// Errors: [`LocalizeError::InvalidParameter`] for a bad config or
/// `seed_threshold`, [`LocalizeError::ShapeMismatch`] when the image and map
/// sizes differ.
///
/// ```
/// use feedbacknet_localize::{connected_components, refine_mask, ColourImage, RefineConfig, SaliencyMap};
/// // A red 16x16 square at (8, 8) on blue; the map's blob sits on its top-left part,
/// // and thresholding it at half its maximum gives a box inside the square.
/// let image = ColourImage::from_fn(40, 40, |x, y| {
///     if (8..24).contains(&x) && (8..24).contains(&y) { [200, 30, 30] } else { [30, 30, 200] }
/// })?;
/// let map = SaliencyMap::from_fn(40, 40, |x, y| {
///     let (dx, dy) = (x as f32 - 14.0, y as f32 - 14.0);
///     (-(dx * dx + dy * dy) / (2.0 * 5.0 * 5.0)).exp()
/// })?;
/// let plain = connected_components(&map.threshold(0.5)?)[0].bbox;
/// assert_eq!((plain.x0, plain.y0, plain.x1, plain.y1), (9.0, 9.0, 20.0, 20.0));
/// let mask = refine_mask(&map, &image, 0.5, &RefineConfig::default())?;
/// let b = connected_components(&mask)[0].bbox;
/// assert_eq!((b.x0, b.y0, b.x1, b.y1), (8.0, 8.0, 24.0, 24.0));
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
pub fn refine_mask(
    map: &SaliencyMap,
    image: &ColourImage,
    seed_threshold: f32,
    config: &RefineConfig,
) -> Result<Mask> {
    config.validate()?;
    if !(0.0..=1.0).contains(&seed_threshold) {
        return Err(invalid(
            "seed_threshold",
            seed_threshold,
            "must lie in [0, 1]",
        ));
    }
    let (w, h) = (map.width(), map.height());
    if (image.width, image.height) != (w, h) {
        return Err(LocalizeError::ShapeMismatch {
            expected: format!("{w}x{h} (the map's size)"),
            got: format!("{}x{}", image.width, image.height),
        });
    }
    let norm = map.normalized();
    let v = norm.data();
    let bins = config.bins;
    let cells = bins * bins * bins;
    let cell: Vec<usize> = image
        .rgb
        .chunks_exact(3)
        .map(|p| {
            let b = |c: u8| usize::from(c) * bins / 256;
            p.iter().fold(0, |cell, &c| cell * bins + b(c))
        })
        .collect();
    let sure_fg = |x: f32| x > 0.0 && x >= config.sure_foreground;
    let sure_bg = |x: f32| x < config.sure_background;
    let weight = f64::from(config.prior_weight);

    // Unlabelled (`None`) pixels count in neither histogram in the first round.
    let mut label: Vec<Option<bool>> = v
        .iter()
        .map(|&x| match x {
            x if x > 0.0 && x >= seed_threshold => Some(true),
            x if sure_bg(x) => Some(false),
            _ => None,
        })
        .collect();
    for _ in 0..config.iterations {
        let (lf, lb) = fit_log_histograms(&label, &cell, cells, config.smoothing);
        let mut changed = false;
        for ((l, &x), &c) in label.iter_mut().zip(v).zip(&cell) {
            let new = Some(if sure_fg(x) {
                true
            } else if sure_bg(x) {
                false
            } else {
                let p = f64::from(x).clamp(PRIOR_EPS, 1.0 - PRIOR_EPS);
                let log_odds = weight * (p / (1.0 - p)).ln();
                lf.get(c)
                    .zip(lb.get(c))
                    .is_some_and(|(f, b)| f + log_odds > *b)
            });
            changed |= new != *l;
            *l = new;
        }
        if !changed {
            break;
        }
    }
    let fg: Vec<bool> = label.iter().map(|&l| l == Some(true)).collect();
    let seeds = v.iter().map(|&x| sure_fg(x));
    Mask::new(w, h, keep_connected(&fg, seeds, w, h))
}

/// The boxes of the components of the refined mask ([`refine_mask`] at `seed_threshold`),
/// largest first, those under `min_area_fraction` of the map's area left out.
///
/// Errors: those of [`refine_mask`]; a `min_area_fraction` outside `[0, 1)`.
pub fn refined_boxes(
    map: &SaliencyMap,
    image: &ColourImage,
    seed_threshold: f32,
    config: &RefineConfig,
    min_area_fraction: f32,
) -> Result<Vec<crate::BoundingBox>> {
    if !(0.0..1.0).contains(&min_area_fraction) {
        return Err(invalid(
            "min_area_fraction",
            min_area_fraction,
            "must lie in [0, 1)",
        ));
    }
    let mask = refine_mask(map, image, seed_threshold, config)?;
    let min_area = f64::from(min_area_fraction) * (map.width() * map.height()) as f64;
    Ok(crate::connected_components(&mask)
        .into_iter()
        .filter(|c| c.area as f64 >= min_area)
        .map(|c| c.bbox)
        .collect())
}

/// Log-probabilities per colour cell of the foreground and background
/// histograms of the labelled pixels, with `alpha` pseudo-counts per cell.
fn fit_log_histograms(
    label: &[Option<bool>],
    cell: &[usize],
    cells: usize,
    alpha: f32,
) -> (Vec<f64>, Vec<f64>) {
    let alpha = f64::from(alpha);
    let (mut cf, mut cb) = (vec![alpha; cells], vec![alpha; cells]);
    for (&l, &c) in label.iter().zip(cell) {
        let counts = match l {
            Some(true) => cf.get_mut(c),
            Some(false) => cb.get_mut(c),
            None => None,
        };
        if let Some(n) = counts {
            *n += 1.0;
        }
    }
    let to_log = |counts: Vec<f64>| {
        let total: f64 = counts.iter().sum();
        counts.into_iter().map(|n| (n / total).ln()).collect()
    };
    (to_log(cf), to_log(cb))
}

/// The pixels of `on` 8-connected (within `on`) to a seed pixel that is on;
/// the same connectivity as [`crate::connected_components`], as a seeded
/// breadth-first flood fill.
fn keep_connected(on: &[bool], seeds: impl Iterator<Item = bool>, w: usize, h: usize) -> Vec<bool> {
    let is_on = |i: usize| on.get(i).copied().unwrap_or(false);
    let mut kept = vec![false; on.len()];
    let mut queue: VecDeque<usize> = seeds
        .enumerate()
        .filter(|&(i, s)| s && is_on(i))
        .map(|(i, _)| i)
        .collect();
    for &i in &queue {
        if let Some(k) = kept.get_mut(i) {
            *k = true;
        }
    }
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let j = ny * w + nx;
                if let Some(k) = kept.get_mut(j)
                    && is_on(j)
                    && !*k
                {
                    *k = true;
                    queue.push_back(j);
                }
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoundingBox, connected_components};

    const RED: [u8; 3] = [200, 40, 30];
    const BLUE: [u8; 3] = [30, 50, 190];
    const GREEN: [u8; 3] = [40, 180, 50];

    fn blob(w: usize, h: usize, cx: f32, cy: f32, sigma: f32) -> SaliencyMap {
        SaliencyMap::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()
        })
        .unwrap()
    }

    fn largest_box(mask: &Mask) -> BoundingBox {
        connected_components(mask)[0].bbox
    }

    fn count_where(mask: &Mask, image: &ColourImage, colour: [u8; 3]) -> usize {
        (0..mask.height())
            .flat_map(|y| (0..mask.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.get(x, y) && image.pixel(x, y) == Some(colour))
            .count()
    }

    #[test]
    fn grows_to_a_square_the_map_only_partly_covers() {
        let square = BoundingBox::new(30.0, 30.0, 70.0, 70.0).unwrap();
        let image = ColourImage::from_fn(100, 100, |x, y| {
            if square.contains_point(x as f32 + 0.5, y as f32 + 0.5) {
                RED
            } else {
                BLUE
            }
        })
        .unwrap();
        // The blob's half-maximum disk (radius 14) lies inside the square's top-left part;
        // its uncertain band (down to 0.1 of the maximum, radius 25.7) reaches the far edges.
        let map = blob(100, 100, 45.0, 45.0, 12.0);
        let baseline = map.threshold(0.5).unwrap();
        let refined = refine_mask(&map, &image, 0.5, &RefineConfig::default()).unwrap();
        let (iou_base, iou_refined) = (
            largest_box(&baseline).iou(&square),
            largest_box(&refined).iou(&square),
        );
        assert!(iou_base < 0.6, "baseline IoU {iou_base}");
        assert!(iou_refined > iou_base + 0.25, "{iou_refined} vs {iou_base}");
        // It grew over red only: more red than the baseline, no blue.
        assert!(count_where(&refined, &image, RED) > count_where(&baseline, &image, RED) + 300);
        assert_eq!(count_where(&refined, &image, BLUE), 0);
    }

    #[test]
    fn does_not_grow_into_background_of_another_colour() {
        // Red square; green background left of x = 40, blue elsewhere.
        let image = ColourImage::from_fn(120, 100, |x, y| {
            if (40..70).contains(&x) && (35..65).contains(&y) {
                RED
            } else if x < 40 {
                GREEN
            } else {
                BLUE
            }
        })
        .unwrap();
        let square = BoundingBox::new(40.0, 35.0, 70.0, 65.0).unwrap();
        // The band (and the seed region) spill over the square's edges, into green on the left.
        let map = blob(120, 100, 55.0, 50.0, 12.0);
        let baseline = map.threshold(0.3).unwrap();
        let refined = refine_mask(&map, &image, 0.3, &RefineConfig::default()).unwrap();
        assert!(count_where(&baseline, &image, GREEN) > 20);
        assert!(count_where(&baseline, &image, BLUE) > 20);
        assert_eq!(count_where(&refined, &image, GREEN), 0);
        assert_eq!(count_where(&refined, &image, BLUE), 0);
        let (iou_base, iou_refined) = (
            largest_box(&baseline).iou(&square),
            largest_box(&refined).iou(&square),
        );
        assert!(iou_refined > iou_base + 0.2, "{iou_refined} vs {iou_base}");
    }

    #[test]
    fn drops_object_coloured_pixels_not_connected_to_the_seeds() {
        // A red patch in the band, cut off from the red square by a blue gap.
        let patch = |x: usize, y: usize| (20..24).contains(&x) && (4..12).contains(&y);
        let image = ColourImage::from_fn(32, 16, |x, y| {
            if (4..14).contains(&x) && (3..13).contains(&y) || patch(x, y) {
                RED
            } else {
                BLUE
            }
        })
        .unwrap();
        let map = blob(32, 16, 9.0, 8.0, 4.0);
        // Colour alone (no prior) would label the whole patch foreground.
        let config = RefineConfig::default()
            .with_prior_weight(0.0)
            .with_sure_foreground(0.8)
            .with_sure_background(1e-4);
        let refined = refine_mask(&map, &image, 0.3, &config).unwrap();
        assert!((20..24).all(|x| (4..12).all(|y| map.normalized().get(x, y) >= 1e-4)));
        assert_eq!(count_where(&refined, &image, RED), 100);
        assert!(!(0..32 * 16).any(|i| patch(i % 32, i / 32) && refined.get(i % 32, i / 32)));
    }

    #[test]
    fn config_defaults_and_validation() {
        let d = RefineConfig::default();
        assert_eq!(
            (
                d.sure_foreground,
                d.sure_background,
                d.bins,
                d.iterations,
                d.prior_weight,
                d.smoothing
            ),
            (0.5, 0.1, 16, 3, 1.0, 1.0)
        );
        let name = |c: RefineConfig| match c.validate() {
            Err(LocalizeError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        };
        assert_eq!(name(d.with_sure_foreground(f32::NAN)), "sure_foreground");
        assert_eq!(name(d.with_sure_foreground(1.5)), "sure_foreground");
        assert_eq!(name(d.with_sure_background(f32::NAN)), "sure_background");
        assert_eq!(name(d.with_sure_background(0.6)), "sure_background");
        assert_eq!(name(d.with_sure_background(-0.1)), "sure_background");
        assert_eq!(name(d.with_bins(0)), "bins");
        assert_eq!(name(d.with_bins(65)), "bins");
        assert_eq!(name(d.with_iterations(0)), "iterations");
        assert_eq!(name(d.with_prior_weight(f32::NAN)), "prior_weight");
        assert_eq!(name(d.with_prior_weight(-1.0)), "prior_weight");
        assert_eq!(name(d.with_smoothing(0.0)), "smoothing");
        assert_eq!(name(d.with_smoothing(f32::INFINITY)), "smoothing");
        assert!(d.with_sure_background(0.5).with_bins(64).validate().is_ok());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let map = blob(10, 9, 5.0, 4.0, 2.0);
        let image = ColourImage::from_fn(10, 10, |_, _| RED).unwrap();
        let d = RefineConfig::default();
        assert!(matches!(
            refine_mask(&map, &image, 0.3, &d),
            Err(LocalizeError::ShapeMismatch { .. })
        ));
        let image = ColourImage::from_fn(10, 9, |_, _| RED).unwrap();
        assert!(refine_mask(&map, &image, 0.3, &d).is_ok());
        for t in [f32::NAN, -0.1, 1.1] {
            assert!(matches!(
                refine_mask(&map, &image, t, &d),
                Err(LocalizeError::InvalidParameter {
                    name: "seed_threshold",
                    ..
                })
            ));
        }
        assert!(matches!(
            refine_mask(&map, &image, 0.3, &d.with_prior_weight(f32::NAN)),
            Err(LocalizeError::InvalidParameter {
                name: "prior_weight",
                ..
            })
        ));
        assert_eq!(
            ColourImage::new(0, 3, vec![]),
            Err(LocalizeError::EmptyImage)
        );
        assert_eq!(
            ColourImage::from_fn(3, 0, |_, _| RED),
            Err(LocalizeError::EmptyImage)
        );
        assert!(matches!(
            ColourImage::new(2, 2, vec![0; 11]),
            Err(LocalizeError::ShapeMismatch { .. })
        ));
        assert!(ColourImage::new(usize::MAX / 2, 2, vec![]).is_err());
        // An all-zero map has no seeds: an empty mask; a 1x1 map works.
        let zero = SaliencyMap::zeros(10, 9).unwrap();
        assert_eq!(refine_mask(&zero, &image, 0.0, &d).unwrap().count(), 0);
        let one = SaliencyMap::new(1, 1, vec![2.0]).unwrap();
        let px = ColourImage::new(1, 1, vec![1, 2, 3]).unwrap();
        assert_eq!(refine_mask(&one, &px, 1.0, &d).unwrap().count(), 1);
    }
}
