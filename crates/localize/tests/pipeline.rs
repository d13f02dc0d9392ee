//! End-to-end checks of the public API: localisation on synthetic maps and
//! the way back to image coordinates.

use feedbacknet_localize::{
    BoundingBox, ImageGeometry, LocalizeConfig, LocalizeError, ResizeMode, SaliencyMap, localize,
};

fn rect(x0: usize, y0: usize, x1: usize, y1: usize) -> BoundingBox {
    BoundingBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32).unwrap()
}

/// 224x224 map: a bright 100x80 blob A, a dimmer 30x30 blob B and a tiny
/// 5x5 blob C (below the default minimum area even after blurring).
fn three_blobs() -> SaliencyMap {
    SaliencyMap::from_fn(224, 224, |x, y| {
        if (60..160).contains(&x) && (40..120).contains(&y) {
            1.0
        } else if (180..210).contains(&x) && (170..200).contains(&y) {
            0.6
        } else if (10..15).contains(&x) && (200..205).contains(&y) {
            0.9
        } else {
            0.0
        }
    })
    .unwrap()
}

#[test]
fn finds_the_bright_blob_and_lists_the_smaller_one() {
    let config = LocalizeConfig::default().with_blur_sigma(2.0);
    let loc = localize(&three_blobs(), &config).unwrap();
    let best = loc.best.unwrap();
    let iou_a = best.iou(&rect(60, 40, 160, 120));
    assert!(iou_a > 0.8, "IoU with blob A {iou_a}");
    assert_eq!(loc.boxes.len(), 2, "boxes {:?}", loc.boxes);
    assert_eq!(loc.boxes[0], best);
    let iou_b = loc.boxes[1].iou(&rect(180, 170, 210, 200));
    assert!(iou_b > 0.7, "IoU with blob B {iou_b}");
    // The smoothed map is normalised.
    assert!((loc.smoothed.max() - 1.0).abs() < 1e-6);
    assert_eq!((loc.smoothed.width(), loc.smoothed.height()), (224, 224));
}

#[test]
fn default_config_box_encloses_the_blob() {
    let loc = localize(&three_blobs(), &LocalizeConfig::default()).unwrap();
    let a = rect(60, 40, 160, 120);
    let best = loc.best.unwrap();
    assert_eq!(best.intersection(&a), Some(a));
    assert!(best.iou(&a) > 0.6);
    assert_eq!(loc.boxes[0], best);
    assert!(loc.boxes.iter().skip(1).all(|b| b.area() < best.area()));
}

#[test]
fn without_blur_boxes_are_exact_and_min_area_filters() {
    let config = LocalizeConfig::default()
        .with_blur_sigma(0.0)
        .with_min_area_fraction(0.0);
    let loc = localize(&three_blobs(), &config).unwrap();
    assert_eq!(
        loc.boxes,
        vec![
            rect(60, 40, 160, 120),
            rect(180, 170, 210, 200),
            rect(10, 200, 15, 205)
        ]
    );
    // 1% of 224^2 is 501.76 pixels: the 25-pixel blob C is dropped.
    let config = config.with_min_area_fraction(0.01);
    let loc = localize(&three_blobs(), &config).unwrap();
    assert_eq!(
        loc.boxes,
        vec![rect(60, 40, 160, 120), rect(180, 170, 210, 200)]
    );
    // A higher threshold removes the dimmer blob B (0.6 < 0.7).
    let loc = localize(&three_blobs(), &config.with_threshold(0.7)).unwrap();
    assert_eq!(loc.boxes, vec![rect(60, 40, 160, 120)]);
}

#[test]
fn best_is_listed_even_below_the_minimum_area() {
    let map =
        SaliencyMap::from_fn(50, 50, |x, y| if x == 20 && y == 30 { 5.0 } else { 0.0 }).unwrap();
    let config = LocalizeConfig::default()
        .with_blur_sigma(0.0)
        .with_min_area_fraction(0.5);
    let loc = localize(&map, &config).unwrap();
    assert_eq!(loc.best, Some(rect(20, 30, 21, 31)));
    assert_eq!(loc.boxes, vec![rect(20, 30, 21, 31)]);
}

#[test]
fn zero_and_negative_maps_give_no_box() {
    for fill in [0.0, -3.0] {
        let map = SaliencyMap::from_fn(40, 30, |_, _| fill).unwrap();
        let loc = localize(&map, &LocalizeConfig::default()).unwrap();
        assert_eq!(loc.best, None);
        assert!(loc.boxes.is_empty());
        assert!(loc.smoothed.data().iter().all(|&v| v == 0.0));
    }
}

#[test]
fn negative_values_are_ignored() {
    // A strongly negative region must not change the box of the positive one.
    let pos = |x: usize, y: usize| {
        if (5..15).contains(&x) && (5..15).contains(&y) {
            1.0
        } else {
            0.0
        }
    };
    let plain = SaliencyMap::from_fn(40, 40, pos).unwrap();
    let with_neg =
        SaliencyMap::from_fn(40, 40, |x, y| if x > 30 { -100.0 } else { pos(x, y) }).unwrap();
    let config = LocalizeConfig::default().with_blur_sigma(1.5);
    let a = localize(&plain, &config).unwrap();
    let b = localize(&with_neg, &config).unwrap();
    assert_eq!(a.best, b.best);
    assert_eq!(
        a.best.unwrap().intersection(&rect(5, 5, 15, 15)),
        Some(rect(5, 5, 15, 15))
    );
}

#[test]
fn invalid_config_and_non_finite_map_are_errors() {
    let map = three_blobs();
    assert!(matches!(
        localize(&map, &LocalizeConfig::default().with_threshold(2.0)),
        Err(LocalizeError::InvalidParameter {
            name: "threshold",
            ..
        })
    ));
    assert!(matches!(
        localize(&map, &LocalizeConfig::default().with_blur_sigma(f32::NAN)),
        Err(LocalizeError::InvalidParameter {
            name: "blur_sigma",
            ..
        })
    ));
    let mut data = vec![0.0; 16];
    data[5] = f32::NAN;
    assert_eq!(
        SaliencyMap::new(4, 4, data),
        Err(LocalizeError::NonFinite { index: 5 })
    );
}

#[test]
fn input_box_and_map_land_on_the_same_photo_region() {
    let geometry = ImageGeometry::new(
        500,
        375,
        224,
        224,
        ResizeMode::ResizeCrop { shorter_side: 256 },
    )
    .unwrap();
    let config = LocalizeConfig::default().with_blur_sigma(2.0);
    let loc = localize(&three_blobs(), &config).unwrap();
    let photo_box = geometry.box_to_image(&loc.best.unwrap()).unwrap();
    // Blob A in the photo: ((60 + 58) * 500/341, (40 + 16) * 375/256) ..
    let expected = BoundingBox::new(
        118.0 * 500.0 / 341.0,
        56.0 * 375.0 / 256.0,
        218.0 * 500.0 / 341.0,
        136.0 * 375.0 / 256.0,
    )
    .unwrap();
    assert!(photo_box.iou(&expected) > 0.8);
    let photo_map = geometry.map_to_image(&loc.smoothed).unwrap();
    assert_eq!((photo_map.width(), photo_map.height()), (500, 375));
    let truth_map = geometry.map_to_image(&three_blobs()).unwrap();
    // Blob A holds 8000 / (8000 + 0.6 * 900 + 0.9 * 25) of the mass.
    let share = truth_map.mass_fraction_in(&expected);
    assert!((share - 8000.0 / 8562.5).abs() < 0.01, "share {share}");
}

#[test]
fn stretch_round_trip_through_both_directions() {
    let g = ImageGeometry::new(333, 250, 224, 224, ResizeMode::Stretch).unwrap();
    let b = BoundingBox::new(12.5, 30.0, 200.25, 249.0).unwrap();
    let back = g.box_to_image(&g.box_to_input(&b).unwrap()).unwrap();
    for (u, v) in [
        (back.x0, b.x0),
        (back.y0, b.y0),
        (back.x1, b.x1),
        (back.y1, b.y1),
    ] {
        assert!((u - v).abs() < 1e-3, "{u} vs {v}");
    }
}
