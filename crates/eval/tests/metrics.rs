//! Metric code against hand-computed cases.

mod common;

use common::bb;
use feedbacknet_eval::{
    EvalError, Explanation, ImageRecord, MeasureConfig, Sample, Summary, default_sweep, max_iou,
    measure, measure_box_with_image, measure_with_image, peak, pointing_hit, score_explanation,
};
use feedbacknet_localize::{
    BoundingBox, ColourImage, LocalizeError, MapScale, RefineConfig, SaliencyMap,
};

/// A `w x h` map that is 1 inside the given pixel rectangles `[x0, y0, x1, y1)`.
fn map_with(w: usize, h: usize, rects: &[[usize; 4]]) -> SaliencyMap {
    SaliencyMap::from_fn(w, h, |x, y| {
        let on = rects
            .iter()
            .any(|r| x >= r[0] && x < r[2] && y >= r[1] && y < r[3]);
        if on { 1.0 } else { 0.0 }
    })
    .unwrap()
}

fn sharp() -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(0.0)
        .with_threshold(0.5)
}

#[test]
fn iou_edge_cases() {
    let a = bb(0.0, 0.0, 10.0, 10.0);
    // Touching along an edge: no overlap.
    assert_eq!(max_iou([&a], &[bb(10.0, 0.0, 20.0, 10.0)]), 0.0);
    // Touching at a corner.
    assert_eq!(max_iou([&a], &[bb(10.0, 10.0, 12.0, 12.0)]), 0.0);
    // Containment: 25 / 100.
    assert_eq!(max_iou([&a], &[bb(0.0, 0.0, 5.0, 5.0)]), 0.25);
    // Half overlap: 50 / 150.
    let half = max_iou([&a], &[bb(5.0, 0.0, 15.0, 10.0)]);
    assert!((half - 1.0 / 3.0).abs() < 1e-6, "{half}");
    // No boxes on either side.
    assert_eq!(max_iou([&a], &[]), 0.0);
    assert_eq!(max_iou(std::iter::empty::<&BoundingBox>(), &[a]), 0.0);
    // A zero-area box cannot be built.
    assert!(matches!(
        BoundingBox::new(3.0, 3.0, 3.0, 8.0),
        Err(LocalizeError::ZeroAreaBox { .. })
    ));
}

#[test]
fn zero_area_box_in_a_csv_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("boxes.csv");
    let text = "image,class_idx,wnid,img_w,img_h,x0,y0,x1,y1\n\
                a.jpg,1,n1,100,100,10,10,50,50\n\
                b.jpg,2,n2,100,100,10,10,10,50\n";
    std::fs::write(&csv, text).unwrap();
    match feedbacknet_eval::Dataset::open(&csv, None) {
        Err(EvalError::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!((path, line), (csv, 3));
            assert!(message.contains("bad box"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn best_of_several_gt_boxes_counts() {
    let map = map_with(100, 100, &[[60, 60, 90, 90]]);
    let gt = [bb(0.0, 0.0, 30.0, 30.0), bb(60.0, 60.0, 90.0, 90.0)];
    let s = measure(&map, &gt, &sharp()).unwrap();
    assert_eq!(s.best_box, Some(bb(60.0, 60.0, 90.0, 90.0)));
    assert_eq!(s.iou, 1.0);
    // Only the far box: no overlap.
    let s = measure(&map, &gt[..1], &sharp()).unwrap();
    assert_eq!(s.iou, 0.0);
}

#[test]
fn largest_component_for_gt_known_all_components_for_maxbox() {
    // A big blob far from the object and a small blob exactly on it.
    let map = map_with(100, 100, &[[0, 0, 40, 40], [70, 70, 80, 80]]);
    let gt = [bb(70.0, 70.0, 80.0, 80.0)];
    let config = sharp().with_sweep(vec![0.0, 0.5, 1.0]);
    let s = measure(&map, &gt, &config).unwrap();
    assert_eq!(s.best_box, Some(bb(0.0, 0.0, 40.0, 40.0)));
    assert_eq!(s.iou, 0.0);
    // Every threshold keeps both blobs; MaxBox finds the small one.
    assert_eq!(s.maxbox_ious, vec![1.0, 1.0, 1.0]);
}

#[test]
fn sweep_thresholds_a_graded_map() {
    // Rings of decreasing value around (50, 50): the box shrinks as the
    // threshold rises, so the IoU with the 20x20 core peaks mid-sweep.
    let map = SaliencyMap::from_fn(100, 100, |x, y| {
        let d = (x as i32 - 50).abs().max((y as i32 - 50).abs());
        (1.0 - d as f32 / 50.0).max(0.0)
    })
    .unwrap();
    let gt = [bb(40.0, 40.0, 61.0, 61.0)];
    let config = MeasureConfig::default()
        .with_blur_sigma(0.0)
        .with_sweep(vec![0.1, 0.8, 0.99]);
    let s = measure(&map, &gt, &config).unwrap();
    // t = 0.8 keeps d <= 10: exactly the 21x21 core.
    assert_eq!(s.maxbox_ious[1], 1.0);
    assert!(
        s.maxbox_ious[0] < 0.1 && s.maxbox_ious[2] < 0.01,
        "{:?}",
        s.maxbox_ious
    );
}

#[test]
fn a_percentile_scale_moves_the_main_box_but_not_the_sweep() {
    // The graded rings of `sweep_thresholds_a_graded_map` with one stray peak of 10: by the
    // maximum the main box is the peak alone; by the 99th percentile the rings' core.
    let map = SaliencyMap::from_fn(100, 100, |x, y| {
        let d = (x as i32 - 50).abs().max((y as i32 - 50).abs());
        if (x, y) == (5, 5) {
            10.0
        } else {
            (1.0 - d as f32 / 50.0).max(0.0)
        }
    })
    .unwrap();
    let gt = [bb(40.0, 40.0, 61.0, 61.0)];
    let by_max = (MeasureConfig::default())
        .with_blur_sigma(0.0)
        .with_threshold(0.8)
        .with_sweep(vec![0.01, 0.08, 0.5]);
    let by_p99 = by_max.clone().with_scale(MapScale::Percentile(99.0));
    let (max, p99) = (
        measure(&map, &gt, &by_max).unwrap(),
        measure(&map, &gt, &by_p99).unwrap(),
    );
    assert_eq!(max.best_box, Some(bb(5.0, 5.0, 6.0, 6.0)));
    assert!(p99.iou > 0.5, "{:?}", p99.best_box);
    // The sweep thresholds fractions of the maximum under either scale (wsolevaluation's).
    assert_eq!(p99.maxbox_ious, max.maxbox_ious);
    assert!(max.maxbox_ious[1] > 0.5, "{:?}", max.maxbox_ious);
}

fn sample(class: usize, boxes: Vec<BoundingBox>) -> Sample {
    Sample {
        index: 0,
        id: "x.JPEG".into(),
        path: "x.JPEG".into(),
        class,
        size: (100, 100),
        boxes,
    }
}

#[test]
fn top5_localization_rules() {
    let gt = vec![bb(20.0, 20.0, 60.0, 60.0)];
    let good = map_with(50, 50, &[[10, 10, 30, 30]]); // half-size map, resized to 100x100
    let bad = map_with(100, 100, &[[70, 70, 95, 95]]);
    let config = sharp();
    // Right class at guess 3 with a good box: no top-5 error.
    let e = Explanation {
        top5: vec![1, 2, 7, 3, 4],
        true_class_map: good.clone(),
        top_maps: vec![bad.clone(), good.clone()],
        image: None,
    };
    let mut a = score_explanation(&sample(7, gt.clone()), &e, &config).unwrap();
    assert!(a.gt_known_iou > 0.9, "{}", a.gt_known_iou);
    assert!(a.top5_loc_correct() && !a.top1_loc_correct() && !a.top1_correct());
    assert_eq!(a.top5_ious.len(), 5);
    assert_eq!(a.top5_ious[0], Some(0.0));
    assert!(a.top5_ious[1].unwrap() > 0.9);
    assert_eq!(a.top5_ious[2], Some(a.gt_known_iou));
    assert_eq!((a.top5_ious[3], a.top5_ious[4]), (None, None));
    assert_eq!(a.top1_iou, Some(0.0));
    // Right class at guess 1 with a bad box, wrong classes elsewhere: error.
    let e = Explanation {
        top5: vec![7, 1, 2, 3, 4],
        true_class_map: bad,
        top_maps: vec![],
        image: None,
    };
    let mut b = score_explanation(&sample(7, gt), &e, &config).unwrap();
    assert_eq!(b.gt_known_iou, 0.0);
    assert!(b.top1_correct() && !b.top5_loc_correct() && !b.top1_loc_correct());
    assert_eq!(b.top1_iou, Some(0.0));
    b.index = 1;
    a.maxbox_ious = vec![];
    b.maxbox_ious = vec![];
    let s = Summary::from_records(&[a, b], &[]).unwrap();
    assert_eq!((s.top1_cls, s.top5_cls), (0.5, 1.0));
    assert_eq!((s.top1_loc, s.top5_loc, s.top5_loc_error), (0.0, 0.5, 0.5));
    assert_eq!(s.gt_known_loc, 0.5);
}

#[test]
fn pointing_game_tolerance() {
    let gt = [bb(50.0, 50.0, 100.0, 100.0)];
    let peak_at = |x: usize, y: usize| {
        SaliencyMap::from_fn(200, 200, |i, j| if (i, j) == (x, y) { 1.0 } else { 0.1 }).unwrap()
    };
    // Inside.
    assert!(pointing_hit(&peak_at(75, 75), &gt, 15.0));
    // Pixel 110 is 10 pixels right of the box's last column (99).
    assert!(pointing_hit(&peak_at(110, 75), &gt, 15.0));
    assert!(!pointing_hit(&peak_at(120, 75), &gt, 15.0));
    assert!(pointing_hit(&peak_at(75, 40), &gt, 15.0));
    assert!(!pointing_hit(&peak_at(75, 29), &gt, 15.0));
    // Euclidean: 10.5 px right and 10.5 px down is 14.8 px away.
    assert!(pointing_hit(&peak_at(110, 110), &gt, 15.0));
    assert!(!pointing_hit(&peak_at(113, 113), &gt, 15.0));
    // No tolerance.
    assert!(!pointing_hit(&peak_at(110, 75), &gt, 0.0));
    // A map with no positive value never hits.
    let zero = SaliencyMap::zeros(200, 200).unwrap();
    assert_eq!(peak(&zero), None);
    assert!(!pointing_hit(&zero, &gt, 1000.0));
    // measure uses the configured tolerance.
    let config = sharp().with_pointing_tolerance_px(25.0);
    assert!(
        measure(&peak_at(120, 75), &gt, &config)
            .unwrap()
            .pointing_hit
    );
}

#[test]
fn invalid_config_is_rejected() {
    let map = map_with(10, 10, &[[2, 2, 5, 5]]);
    let gt = [bb(2.0, 2.0, 5.0, 5.0)];
    let bad_sweep = sharp().with_sweep(vec![0.1, 1.5]);
    assert!(matches!(
        measure(&map, &gt, &bad_sweep),
        Err(EvalError::InvalidParameter { name: "sweep", .. })
    ));
    let bad_threshold = sharp().with_threshold(2.0);
    assert!(matches!(
        measure(&map, &gt, &bad_threshold),
        Err(EvalError::Localize(_))
    ));
    let bad_tolerance = sharp().with_pointing_tolerance_px(f32::NAN);
    assert!(measure(&map, &gt, &bad_tolerance).is_err());
}

fn record(index: usize, gt_known_iou: f32, maxbox_ious: Vec<f32>, hit: bool) -> ImageRecord {
    ImageRecord {
        index,
        id: format!("img{index}"),
        class: 3,
        top5: vec![3, 1, 2, 4, 5],
        gt_known_iou,
        gt_known_box: None,
        top1_iou: Some(gt_known_iou),
        top5_ious: vec![Some(gt_known_iou)],
        maxbox_ious,
        pointing_hit: hit,
        time_ms: 1.0,
        error: None,
        warnings: Vec::new(),
    }
}

#[test]
fn maxbox_acc_v2_by_hand() {
    let sweep = [0.1, 0.5, 0.9];
    let failed_sample = Sample {
        index: 3,
        ..sample(3, vec![bb(0.0, 0.0, 1.0, 1.0)])
    };
    let records = vec![
        record(0, 0.6, vec![0.2, 0.6, 0.8], true),
        record(1, 0.35, vec![0.4, 0.35, 0.1], false),
        record(2, 0.95, vec![0.75, 0.5, 0.0], true),
        ImageRecord::failed(&failed_sample, "broken".into(), 0.0),
    ];
    let s = Summary::from_records(&records, &sweep).unwrap();
    let acc: Vec<(f32, f64, f32)> = s
        .maxbox
        .iter()
        .map(|m| (m.iou_threshold, m.accuracy, m.best_threshold))
        .collect();
    // δ 0.3: 2, 3, 1 images per threshold; δ 0.5: 1, 2, 1; δ 0.7: 1, 0, 1 (first max wins).
    assert_eq!(
        acc,
        vec![(0.3, 0.75, 0.5), (0.5, 0.5, 0.5), (0.7, 0.25, 0.1)]
    );
    assert_eq!(s.maxbox_acc_v2, 0.5);
    assert_eq!((s.images, s.failed), (4, 1));
    assert_eq!(s.gt_known_loc, 0.5);
    assert_eq!(s.top1_cls, 0.75);
    assert_eq!(s.pointing_game, 0.5);
    assert!((s.mean_iou - (0.6f64 + 0.35 + 0.95) / 4.0).abs() < 1e-6);
    assert_eq!(s.iou_histogram, vec![1, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
    // Any order gives a bit-identical summary.
    let mut shuffled = records.clone();
    shuffled.reverse();
    shuffled.swap(0, 2);
    let again = Summary::from_records(&shuffled, &sweep).unwrap();
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    // A record measured with another sweep is refused.
    let odd = vec![record(0, 0.5, vec![0.1, 0.2], true)];
    assert!(matches!(
        Summary::from_records(&odd, &sweep),
        Err(EvalError::SweepMismatch {
            index: 0,
            expected: 3,
            got: 2
        })
    ));
    // No records: zeros, no NaN.
    let empty = Summary::from_records(&[], &sweep).unwrap();
    assert_eq!(
        (empty.images, empty.maxbox_acc_v2, empty.mean_iou),
        (0, 0.0, 0.0)
    );
}

/// Floating-point sums depend on order: the summary must not.
#[test]
fn summary_does_not_depend_on_record_order() {
    let sweep = [0.25, 0.5];
    let records: Vec<ImageRecord> = (0..300u32)
        .map(|i| {
            // Values over many magnitudes, so that f64 sums round.
            let frac = (i.wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 24) as f32;
            let v = frac * 10f32.powi(-((i % 13) as i32));
            record(i as usize, v, vec![v, v * 0.5], i % 3 == 0)
        })
        .collect();
    let reference =
        serde_json::to_string(&Summary::from_records(&records, &sweep).unwrap()).unwrap();
    let mut shuffled = records.clone();
    for i in 0..shuffled.len() {
        shuffled.swap(i, (i * 7919 + 13) % records.len());
    }
    assert_ne!(shuffled, records);
    let again = serde_json::to_string(&Summary::from_records(&shuffled, &sweep).unwrap()).unwrap();
    assert_eq!(again, reference);
}

#[test]
fn default_sweep_is_wsolevaluations() {
    let s = default_sweep();
    assert_eq!(s.len(), 100);
    assert_eq!((s[0], s[1], s[50], s[99]), (0.0, 0.01, 0.5, 0.99));
}

/// A full 100-threshold measure on dev-set and full-resolution sized maps (its speed is a
/// benchmark's business, not a test's).
#[test]
fn full_sweep_on_dev_and_full_resolution_sizes() {
    for (w, h) in [(227, 227), (500, 375)] {
        let map = SaliencyMap::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - w as f32 * 0.4, y as f32 - h as f32 * 0.5);
            (-(dx * dx + dy * dy) / 2000.0).exp() + 0.3 * ((x * 7 + y * 3) % 11) as f32 / 11.0
        })
        .unwrap();
        let gt = [bb(40.0, 50.0, 150.0, 160.0)];
        let s = measure(&map, &gt, &MeasureConfig::default()).unwrap();
        assert_eq!(s.maxbox_ious.len(), 100);
        assert!(s.maxbox_ious.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn colour_refinement_boxes_the_object_the_map_only_partly_covers() {
    // A red 16x16 square at (8, 8) on blue; the map's blob covers its top-left part.
    let image = ColourImage::from_fn(40, 40, |x, y| {
        if (8..24).contains(&x) && (8..24).contains(&y) {
            [200, 30, 30]
        } else {
            [30, 30, 200]
        }
    })
    .unwrap();
    let map = SaliencyMap::from_fn(40, 40, |x, y| {
        let (dx, dy) = (x as f32 - 14.0, y as f32 - 14.0);
        (-(dx * dx + dy * dy) / 50.0).exp()
    })
    .unwrap();
    let gt = [bb(8.0, 8.0, 24.0, 24.0)];
    let plain = measure(&map, &gt, &sharp()).unwrap();
    let refined_config = sharp().with_refine(Some(RefineConfig::default()));
    let refined = measure_with_image(&map, Some(&image), &gt, &refined_config).unwrap();
    assert!(plain.iou < 0.6, "plain IoU {}", plain.iou);
    assert!(
        refined.iou > plain.iou + 0.3,
        "{} vs {}",
        refined.iou,
        plain.iou
    );
    assert_eq!(refined.best_box, Some(gt[0]));
    // The sweep is refined too, threshold by threshold.
    assert_eq!(refined.maxbox_ious.len(), plain.maxbox_ious.len());
    let (r, p) = (refined.maxbox_ious[50], plain.maxbox_ious[50]);
    assert!(r > p, "sweep at 0.5: {r} vs {p}");
    let (_, box_iou) = measure_box_with_image(&map, Some(&image), &gt, &refined_config).unwrap();
    assert_eq!(box_iou, refined.iou);
    // Refinement without the image is a typed error, not a silent plain box.
    assert!(matches!(
        measure(&map, &gt, &refined_config),
        Err(EvalError::InvalidParameter { name: "refine", .. })
    ));
    let small = ColourImage::from_fn(20, 20, |_, _| [0, 0, 0]).unwrap();
    assert!(measure_with_image(&map, Some(&small), &gt, &refined_config).is_err());
}
