//! Property tests (proptest) of the map-to-box pipeline and the image geometry: each property
//! is checked on a few hundred generated maps, boxes and geometries.
//!
//! On the threshold: raising it can only remove pixels from the mask, so the mask's pixel
//! count, the largest component's area and the hull of all boxes shrink (or stay), and every
//! box at the higher threshold lies inside a box at the lower one. The *number* of boxes is
//! not monotone (raising the threshold can split one component into two), and neither is the
//! area of the largest component's box (the largest component at the higher threshold may
//! grow out of a component that was not the largest at the lower one), so those are not
//! claimed.

use feedbacknet_localize::{
    BoundingBox, ImageGeometry, LocalizeConfig, ResizeMode, SaliencyMap, connected_components,
    localize, localize_in_image,
};
use proptest::prelude::*;

/// A small map: sides 1..=24, values in [-1, 4] with many exact zeros and repeats (so ties and
/// empty maps occur).
fn small_map() -> impl Strategy<Value = SaliencyMap> {
    (1usize..=24, 1usize..=24).prop_flat_map(|(w, h)| {
        let value = prop_oneof![
            2 => Just(0.0f32),
            1 => Just(1.0f32),
            4 => -1.0f32..4.0,
        ];
        proptest::collection::vec(value, w * h)
            .prop_map(move |data| SaliencyMap::new(w, h, data).unwrap())
    })
}

/// A box with finite corners in `[-50, 150]` (possibly degenerate or inverted when built field
/// by field, as the public fields allow).
fn any_box() -> impl Strategy<Value = BoundingBox> {
    let c = -50.0f32..150.0;
    (c.clone(), c.clone(), c.clone(), c).prop_map(|(x0, y0, x1, y1)| BoundingBox { x0, y0, x1, y1 })
}

/// A valid box (positive area) with corners in `[-50, 150]`.
fn valid_box() -> impl Strategy<Value = BoundingBox> {
    (
        -50.0f32..140.0,
        -50.0f32..140.0,
        0.01f32..60.0,
        0.01f32..60.0,
    )
        .prop_map(|(x0, y0, w, h)| BoundingBox::new(x0, y0, x0 + w, y0 + h).unwrap())
}

/// An image size, a network input size and a resize mode that [`ImageGeometry::new`] accepts.
fn geometry() -> impl Strategy<Value = ImageGeometry> {
    (
        1u32..=2000,
        1u32..=2000,
        1u32..=300,
        1u32..=300,
        0u32..=64,
        any::<bool>(),
    )
        .prop_map(|(iw, ih, nw, nh, extra, crop)| {
            let mode = if crop {
                // The shorter resized side must hold the crop; the longer one is at least as long.
                ResizeMode::ResizeCrop {
                    shorter_side: nw.max(nh) + extra,
                }
            } else {
                ResizeMode::Stretch
            };
            ImageGeometry::new(iw, ih, nw, nh, mode).unwrap()
        })
}

/// `inner` lies inside `outer` (edges may coincide).
fn inside(inner: &BoundingBox, outer: &BoundingBox) -> bool {
    inner.x0 >= outer.x0 && inner.y0 >= outer.y0 && inner.x1 <= outer.x1 && inner.y1 <= outer.y1
}

/// The smallest box holding all of `boxes`.
fn hull(boxes: &[BoundingBox]) -> Option<BoundingBox> {
    boxes.iter().copied().reduce(|a, b| BoundingBox {
        x0: a.x0.min(b.x0),
        y0: a.y0.min(b.y0),
        x1: a.x1.max(b.x1),
        y1: a.y1.max(b.y1),
    })
}

fn close(a: &BoundingBox, b: &BoundingBox, tolerance: f32) -> bool {
    (a.x0 - b.x0).abs() <= tolerance
        && (a.y0 - b.y0).abs() <= tolerance
        && (a.x1 - b.x1).abs() <= tolerance
        && (a.y1 - b.y1).abs() <= tolerance
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every box `localize` reports lies inside the map, on whole pixels, with positive area;
    /// `best` is `boxes[0]`, and a map without a positive value gives no box.
    #[test]
    fn boxes_lie_inside_the_map(
        map in small_map(),
        threshold in 0.0f32..=1.0,
        sigma in prop_oneof![Just(0.0f32), 0.0f32..4.0],
        min_area in 0.0f32..1.0,
    ) {
        let config = LocalizeConfig::default()
            .with_threshold(threshold)
            .with_blur_sigma(sigma)
            .with_min_area_fraction(min_area);
        let loc = localize(&map, &config).unwrap();
        let (w, h) = (map.width() as f32, map.height() as f32);
        for b in &loc.boxes {
            prop_assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= w && b.y1 <= h, "{b:?} in {w}x{h}");
            prop_assert!(b.x0 < b.x1 && b.y0 < b.y1, "{b:?}");
            for v in [b.x0, b.y0, b.x1, b.y1] {
                prop_assert_eq!(v.fract(), 0.0);
            }
        }
        prop_assert_eq!(loc.best, loc.boxes.first().copied());
        let any_positive = map.data().iter().any(|&v| v > 0.0);
        prop_assert_eq!(loc.best.is_some(), any_positive);
    }

    /// The same at image resolution, for any network-input size the blur is given in.
    #[test]
    fn boxes_in_image_lie_inside_the_image(
        map in small_map(),
        input in (1usize..=64, 1usize..=64),
        threshold in 0.0f32..=1.0,
        sigma in 0.0f32..12.0,
    ) {
        let config = LocalizeConfig::default().with_threshold(threshold).with_blur_sigma(sigma);
        let loc = localize_in_image(&map, input, &config, None).unwrap();
        let (w, h) = (map.width() as f32, map.height() as f32);
        for b in &loc.boxes {
            prop_assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= w && b.y1 <= h, "{b:?} in {w}x{h}");
            prop_assert!(b.area() > 0.0);
        }
    }

    /// Raising the threshold shrinks the mask pixel by pixel, so its count and the largest
    /// component's area do not grow, each box at the higher threshold lies inside a box at the
    /// lower one, and the hull of all boxes shrinks.
    #[test]
    fn the_mask_and_the_boxes_shrink_as_the_threshold_rises(
        map in small_map(),
        a in 0.0f32..=1.0,
        b in 0.0f32..=1.0,
        sigma in prop_oneof![Just(0.0f32), 0.0f32..3.0],
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let config = |t| LocalizeConfig::default()
            .with_threshold(t)
            .with_blur_sigma(sigma)
            .with_min_area_fraction(0.0);
        let lo = localize(&map, &config(low)).unwrap();
        let hi = localize(&map, &config(high)).unwrap();
        let (mask_lo, mask_hi) = (
            lo.smoothed.threshold(low).unwrap(),
            hi.smoothed.threshold(high).unwrap(),
        );
        for (&on_hi, &on_lo) in mask_hi.data().iter().zip(mask_lo.data()) {
            prop_assert!(!on_hi || on_lo, "a pixel on at {high} is off at {low}");
        }
        prop_assert!(mask_hi.count() <= mask_lo.count());
        let largest = |m| connected_components(m).first().map_or(0, |c| c.area);
        prop_assert!(largest(&mask_hi) <= largest(&mask_lo));
        for bh in &hi.boxes {
            prop_assert!(lo.boxes.iter().any(|bl| inside(bh, bl)), "{bh:?} in none of {:?}", lo.boxes);
        }
        match (hull(&hi.boxes), hull(&lo.boxes)) {
            (Some(h), Some(l)) => prop_assert!(inside(&h, &l)),
            (Some(h), None) => prop_assert!(false, "a box {h:?} at {high}, none at {low}"),
            _ => {}
        }
    }

    /// IoU is symmetric and in [0, 1] for any boxes, degenerate ones included.
    #[test]
    fn iou_is_symmetric_and_a_fraction(a in any_box(), b in any_box()) {
        let (ab, ba) = (a.iou(&b), b.iou(&a));
        prop_assert_eq!(ab.to_bits(), ba.to_bits());
        prop_assert!((0.0..=1.0).contains(&ab), "{ab}");
    }

    /// A valid box has IoU 1 with itself, and IoU 0 with a box it only touches.
    #[test]
    fn iou_of_a_box_with_itself_is_one(a in valid_box()) {
        prop_assert_eq!(a.iou(&a), 1.0);
        let neighbour = a.translate(a.width(), 0.0);
        prop_assert_eq!(a.iou(&neighbour), 0.0);
    }

    /// A box in network-input coordinates mapped to the original image and back lands within
    /// half a pixel of where it started (float rounding only; it grows with extreme upscales,
    /// where an image pixel spans hundreds of input pixels), and its image box lies inside the
    /// image.
    #[test]
    fn input_to_image_and_back_is_within_a_pixel(
        g in geometry(),
        fx in (0.0f32..1.0, 0.0f32..1.0),
        fy in (0.0f32..1.0, 0.0f32..1.0),
    ) {
        let (nw, nh) = g.input_size();
        let (nw, nh) = (nw as f32, nh as f32);
        let (x0, x1) = (fx.0.min(fx.1) * nw, fx.0.max(fx.1) * nw);
        let (y0, y1) = (fy.0.min(fy.1) * nh, fy.0.max(fy.1) * nh);
        prop_assume!(x1 - x0 > 0.05 && y1 - y0 > 0.05);
        let b = BoundingBox::new(x0, y0, x1, y1).unwrap();
        let in_image = g.box_to_image(&b).unwrap();
        let (iw, ih) = g.image_size();
        prop_assert!(in_image.x0 >= 0.0 && in_image.y0 >= 0.0);
        prop_assert!(in_image.x1 <= iw as f32 && in_image.y1 <= ih as f32);
        let back = g.box_to_input(&in_image).unwrap();
        prop_assert!(close(&back, &b, 0.5), "{b:?} -> {in_image:?} -> {back:?}");
    }

    /// With a stretch (nothing cropped), an image box mapped to the input and back also lands
    /// within a pixel (0.01 pixel) of where it started.
    #[test]
    fn image_to_input_and_back_is_within_a_pixel_when_stretched(
        (iw, ih, nw, nh) in (1u32..=2000, 1u32..=2000, 1u32..=300, 1u32..=300),
        fx in (0.0f32..1.0, 0.0f32..1.0),
        fy in (0.0f32..1.0, 0.0f32..1.0),
    ) {
        let g = ImageGeometry::new(iw, ih, nw, nh, ResizeMode::Stretch).unwrap();
        let (x0, x1) = (fx.0.min(fx.1) * iw as f32, fx.0.max(fx.1) * iw as f32);
        let (y0, y1) = (fy.0.min(fy.1) * ih as f32, fy.0.max(fy.1) * ih as f32);
        // Thin enough boxes can vanish in the input; keep ones at least a hundredth of an input
        // pixel wide.
        prop_assume!((x1 - x0) * nw as f32 / iw as f32 > 0.01 && (y1 - y0) * nh as f32 / ih as f32 > 0.01);
        let b = BoundingBox::new(x0, y0, x1, y1).unwrap();
        let back = g.box_to_image(&g.box_to_input(&b).unwrap()).unwrap();
        prop_assert!(close(&back, &b, 0.01), "{b:?} -> {back:?}");
    }
}
