//! `boxes`: an arbitrary small saliency map and settings -> boxes: `localize`,
//! `localize_in_image` (with and without the colour refinement), the geometry's way back to
//! the image, and the evaluator's `measure` against arbitrary ground-truth boxes.

use arbitrary::{Arbitrary, Unstructured};
use feedbacknet_eval::{MeasureConfig, measure_with_image};
use feedbacknet_localize::{
    BoundingBox, ColourImage, ImageGeometry, LocalizeConfig, RefineConfig, Refinement, ResizeMode,
    SaliencyMap, localize, localize_in_image,
};

/// One structured input, decoded by `arbitrary` from the fuzzer's bytes.
#[derive(Debug, Arbitrary)]
pub struct Input {
    width: u8,
    height: u8,
    values: Vec<f32>,
    threshold: f32,
    blur_sigma: f32,
    min_area_fraction: f32,
    input_size: (u8, u8),
    refine: Option<(f32, f32, u8, u8, f32, f32)>,
    pixels: Vec<u8>,
    geometry: (u16, u16, Option<u16>),
    boxes: Vec<(f32, f32, f32, f32)>,
    sweep: Vec<f32>,
    pointing_tolerance_px: f32,
}

/// Side limit of the map (the sides are taken modulo this, plus one).
pub const MAX_SIDE: usize = 64;

/// Decodes `data` and runs the box pipeline on it; `None` when the bytes do not decode.
/// Errors (bad settings, non-finite values) are fine; a panic or abort is the bug.
pub fn run(data: &[u8]) -> Option<()> {
    let input = Input::arbitrary_take_rest(Unstructured::new(data)).ok()?;
    exercise(&input);
    Some(())
}

fn exercise(input: &Input) {
    let (w, h) = (
        usize::from(input.width) % MAX_SIDE + 1,
        usize::from(input.height) % MAX_SIDE + 1,
    );
    let values: Vec<f32> = if input.values.is_empty() {
        vec![0.0; w * h]
    } else {
        input.values.iter().copied().cycle().take(w * h).collect()
    };
    let Ok(map) = SaliencyMap::new(w, h, values) else {
        return;
    };
    let config = LocalizeConfig::default()
        .with_threshold(input.threshold)
        .with_blur_sigma(input.blur_sigma)
        .with_min_area_fraction(input.min_area_fraction);
    let _ = localize(&map, &config);
    let input_size = (
        usize::from(input.input_size.0),
        usize::from(input.input_size.1),
    );
    let loc = localize_in_image(&map, input_size, &config, None);
    let pixels: Vec<u8> = input
        .pixels
        .iter()
        .copied()
        .cycle()
        .take(w * h * 3)
        .collect();
    let image = ColourImage::new(w, h, pixels).ok();
    let refine = input
        .refine
        .map(|(fg, bg, bins, iterations, prior, smoothing)| {
            RefineConfig::default()
                .with_sure_foreground(fg)
                .with_sure_background(bg)
                .with_bins(usize::from(bins))
                .with_iterations(usize::from(iterations))
                .with_prior_weight(prior)
                .with_smoothing(smoothing)
        });
    if let (Some(image), Some(refine)) = (&image, &refine) {
        let refinement = Refinement {
            image,
            config: refine,
        };
        let _ = localize_in_image(&map, input_size, &config, Some(refinement));
    }
    back_to_image(input, &map, loc.ok().and_then(|l| l.best));
    let gt: Vec<BoundingBox> = input
        .boxes
        .iter()
        .filter_map(|&(x0, y0, x1, y1)| BoundingBox::new(x0, y0, x1, y1).ok())
        .collect();
    let measure = MeasureConfig::default()
        .with_threshold(input.threshold)
        .with_blur_sigma(input.blur_sigma)
        .with_sweep(input.sweep.iter().copied().take(16).collect())
        .with_pointing_tolerance_px(input.pointing_tolerance_px)
        .with_refine(refine);
    let _ = measure_with_image(&map, image.as_ref(), &gt, &measure);
}

/// The map and its best box through an arbitrary image geometry (map as the network input).
fn back_to_image(input: &Input, map: &SaliencyMap, best: Option<BoundingBox>) {
    let (iw, ih, shorter) = input.geometry;
    let mode = shorter.map_or(ResizeMode::Stretch, |s| ResizeMode::ResizeCrop {
        shorter_side: u32::from(s),
    });
    let Ok(g) = ImageGeometry::new(
        u32::from(iw) % 2048,
        u32::from(ih) % 2048,
        map.width() as u32,
        map.height() as u32,
        mode,
    ) else {
        return;
    };
    if let Some(in_image) = best.and_then(|b| g.box_to_image(&b)) {
        let _ = g.box_to_input(&in_image);
    }
    let _ = g.map_to_image(map);
}
