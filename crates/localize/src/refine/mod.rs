//! Colour-aware refinement of a thresholded saliency map so that boxes follow the object:
//! a two-histogram model (`histogram.rs`, the default) or GrabCut (`grabcut.rs`: Gaussian
//! mixtures in `gmm.rs`, the minimum cut in `maxflow.rs`), chosen by
//! [`RefineConfig::model`]. Both read the map through the same trimap and keep only
//! foreground connected to the sure foreground.

mod config;
mod gmm;
mod grabcut;
mod histogram;
mod image;
mod maxflow;

use std::collections::VecDeque;

pub use config::{Binning, ColourModel, RefineConfig};
pub use image::ColourImage;

use crate::error::invalid;
use crate::{LocalizeError, Mask, Result, SaliencyMap};

/// Map values are clamped to `[PRIOR_EPS, 1 - PRIOR_EPS]` before the log-odds.
const PRIOR_EPS: f64 = 1e-3;

/// The map's thresholds of one refinement: sure foreground, sure background, and the seed
/// (the foreground the colour models are first fitted on).
#[derive(Debug, Clone, Copy)]
struct Trimap {
    sure_foreground: f32,
    sure_background: f32,
    seed: f32,
    prior_weight: f64,
}

impl Trimap {
    fn new(config: &RefineConfig, seed: f32) -> Self {
        Self {
            sure_foreground: config.sure_foreground,
            sure_background: config.sure_background,
            seed,
            prior_weight: f64::from(config.prior_weight),
        }
    }

    /// Whether a pixel of map value `x` is always foreground.
    fn sure_fg(&self, x: f32) -> bool {
        x > 0.0 && x >= self.sure_foreground
    }

    /// Whether a pixel of map value `x` is always background.
    fn sure_bg(&self, x: f32) -> bool {
        x < self.sure_background
    }

    /// The first labels: the seed is foreground, the sure background background, the rest
    /// of the band unlabelled (`None`), so object colour just outside the seed does not
    /// enter the background model.
    fn initial(&self, x: f32) -> Option<bool> {
        if x > 0.0 && x >= self.seed {
            Some(true)
        } else if self.sure_bg(x) {
            Some(false)
        } else {
            None
        }
    }

    /// The map prior of foreground against background, `w ln(v / (1 - v))`, with `v`
    /// clamped away from 0 and 1.
    fn log_odds(&self, x: f32) -> f64 {
        let p = f64::from(x).clamp(PRIOR_EPS, 1.0 - PRIOR_EPS);
        self.prior_weight * (p / (1.0 - p)).ln()
    }
}

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
///
/// That is the default [`ColourModel::Histogram`]. With [`ColourModel::GrabCut`] the same
/// trimap and prior seed GrabCut instead: Gaussian mixtures (`config.components` each) in
/// place of the histograms, and the band labelled by one minimum cut of the 8-connected pixel
/// graph per round, so neighbours of like colour pay `config.gamma` (contrast-weighted) to
/// differ; it runs on blocks averaged down to at most `config.max_side` pixels a side.
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
    if (image.width(), image.height()) != (w, h) {
        return Err(LocalizeError::ShapeMismatch {
            expected: format!("{w}x{h} (the map's size)"),
            got: format!("{}x{}", image.width(), image.height()),
        });
    }
    let norm = map.normalized();
    let v = norm.data();
    let trimap = Trimap::new(config, seed_threshold);
    let fg = match config.model {
        ColourModel::Histogram => histogram::labels(v, image, &trimap, config),
        ColourModel::GrabCut => grabcut::labels(v, image, &trimap, config)?,
    };
    let seeds = v.iter().map(|&x| trimap.sure_fg(x));
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

    /// How many pixels of the refined mask change when every channel of every pixel of a
    /// textured image (object and background colours from overlapping ranges, so the band's
    /// labels rest on the histograms' fine detail) moves one grey level up or down, as a
    /// re-encode does; `seed` draws the texture and the noise.
    fn pixels_changed_by_one_grey_level(binning: Binning, seed: u32) -> usize {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        let (w, h) = (96, 96);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let object = (24..72).contains(&(i % w)) && (24..72).contains(&(i / w));
                let base: [u8; 3] = if object {
                    [150, 90, 60]
                } else {
                    [110, 100, 90]
                };
                base.map(|c| c.saturating_add(next() / 4))
            })
            .collect();
        let moved: Vec<u8> = rgb
            .iter()
            .map(|&c| {
                if next() < 128 {
                    c.saturating_add(1)
                } else {
                    c.saturating_sub(1)
                }
            })
            .collect();
        let map = blob(w, h, 48.0, 48.0, 16.0);
        let config = RefineConfig::default().with_binning(binning);
        let mask = |rgb| refine_mask(&map, &ColourImage::new(w, h, rgb).unwrap(), 0.5, &config);
        let (a, b) = (mask(rgb).unwrap(), mask(moved).unwrap());
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| a.get(x, y) != b.get(x, y))
            .count()
    }

    #[test]
    fn trilinear_binning_moves_fewer_pixels_under_one_grey_level_of_noise() {
        let seeds = [1, 7, 99, 777, 2024, 12345];
        let total = |binning| -> usize {
            let changed = seeds.map(|s| pixels_changed_by_one_grey_level(binning, s));
            changed.iter().sum()
        };
        let (nearest, trilinear) = (total(Binning::Nearest), total(Binning::Trilinear));
        // Under the nearest cell a grey level that crosses a cell edge moves the pixel to
        // another cell; under trilinear binning its likelihood moves by 1/16 of a cell.
        assert!(
            nearest > 0,
            "the noise changes no label: the test shows nothing"
        );
        assert!(
            4 * trilinear < 3 * nearest,
            "pixels changed: nearest {nearest}, trilinear {trilinear}"
        );
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
        assert_eq!(
            (d.model, d.components, d.gamma, d.max_side),
            (ColourModel::Histogram, 5, 50.0, 96)
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
        assert_eq!(name(d.with_components(0)), "components");
        assert_eq!(name(d.with_components(17)), "components");
        assert_eq!(name(d.with_gamma(-1.0)), "gamma");
        assert_eq!(name(d.with_gamma(f32::NAN)), "gamma");
        assert_eq!(name(d.with_max_side(7)), "max_side");
        assert_eq!(name(d.with_max_side(4097)), "max_side");
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
