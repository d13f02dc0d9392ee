//! Tuning on synthetic maps whose best settings are known.

use std::path::PathBuf;

use feedbacknet_localize::{BoundingBox, MapScale, SaliencyMap};
use serde::Serialize;

use super::*;
use crate::dataset::Sample;
use crate::error::EvalError;

/// A map setting as a caller would name it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Tag {
    tag: &'static str,
}

/// The ground-truth box of every synthetic image: 40x40 in a 100x100 image.
fn truth() -> BoundingBox {
    BoundingBox::new(20.0, 30.0, 60.0, 70.0).unwrap()
}

fn inside(x: usize, y: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> bool {
    (x0..x1).contains(&x) && (y0..y1).contains(&y)
}

/// 1 on the box, 0.4 everywhere else: boxed right above 0.4 only (wants threshold 0.5).
fn wants_high() -> SaliencyMap {
    SaliencyMap::from_fn(100, 100, |x, y| {
        if inside(x, y, 20, 30, 60, 70) {
            1.0
        } else {
            0.4
        }
    })
    .unwrap()
}

/// 0.4 on the box, 1 on a small core in it: boxed right below 0.4 only (wants threshold 0.3).
fn wants_low() -> SaliencyMap {
    SaliencyMap::from_fn(100, 100, |x, y| {
        if inside(x, y, 35, 45, 45, 55) {
            1.0
        } else if inside(x, y, 20, 30, 60, 70) {
            0.4
        } else {
            0.0
        }
    })
    .unwrap()
}

fn image(index: usize, map: SaliencyMap) -> StoredImage {
    StoredImage {
        sample: Sample {
            index,
            id: format!("img{index}"),
            path: PathBuf::from(format!("img{index}.png")),
            class: 7,
            size: (100, 100),
            boxes: vec![truth()],
        },
        top5: vec![7, 1, 2, 3, 4],
        maps: vec![vec![map]],
        times_ms: vec![index as f64],
        image: None,
        warnings: Vec::new(),
        perturbed: None,
    }
}

fn grid() -> Grid {
    Grid {
        blurs: vec![0.0],
        thresholds: vec![0.3, 0.5],
        scales: vec![MapScale::Maximum],
        refinements: vec![Refinement::None],
        given_blur: 0.0,
        given_threshold: 0.3,
        given_scale: MapScale::Maximum,
        given_refine: Refinement::None,
        min_box_stability: None,
    }
}

fn one_variant() -> Candidates<Tag> {
    Candidates::new(Tag { tag: "given" }, [Tag { tag: "given" }])
}

/// The maps as they are (normalized): the grid's blurs are 0.
fn smooth(map: &SaliencyMap, _blur: f32) -> Result<SaliencyMap, EvalError> {
    Ok(map.normalized())
}

fn tune(stored: &[StoredImage]) -> MethodTuning<Tag> {
    tune_method(stored, 0, &one_variant(), &grid(), smooth).unwrap()
}

#[test]
fn the_known_best_threshold_is_chosen() {
    let stored: Vec<StoredImage> = (0..4).map(|i| image(i, wants_high())).collect();
    let t = tune(&stored);
    for (fold, half) in t.folds.iter().zip(["even", "odd"]) {
        assert_eq!(fold.tuned_on, half);
        assert_eq!(fold.threshold, 0.5);
        assert_eq!(fold.tuned_gt_known_loc, 1.0);
        assert_eq!(fold.reported.gt_known_loc, 1.0);
        assert_eq!(fold.reported.images, 2);
    }
    assert_eq!(t.held_out_gt_known_loc, 1.0);
    // The given threshold 0.3 boxes the whole image.
    assert_eq!(t.at_given_settings.reported.gt_known_loc, 0.0);
    assert_eq!(t.at_given_settings.reported.images, 4);
    assert!(t.at_given_settings.tuned_gt_known_loc.is_nan());
}

/// 0.2 on the box, 1 on one stray pixel far from it: by the maximum the box is the stray
/// pixel at any threshold tried; by the 99th percentile (the box is 16 % of the image) it is
/// the box.
fn stray_peak() -> SaliencyMap {
    SaliencyMap::from_fn(100, 100, |x, y| match (x, y) {
        (90, 5) => 1.0,
        _ if inside(x, y, 20, 30, 60, 70) => 0.2,
        _ => 0.0,
    })
    .unwrap()
}

#[test]
fn a_percentile_scale_is_tried_and_chosen_where_it_boxes_better() {
    let stored: Vec<StoredImage> = (0..4).map(|i| image(i, stray_peak())).collect();
    let scales = Grid {
        scales: vec![MapScale::Maximum, MapScale::Percentile(99.0)],
        ..grid()
    };
    let t = tune_method(&stored, 0, &one_variant(), &scales, smooth).unwrap();
    let scored: Vec<(MapScale, f32, f64)> = (t.grid[0].1.iter())
        .map(|p| (p.scale, p.threshold, p.gt_known_loc))
        .collect();
    let p99 = MapScale::Percentile(99.0);
    let max = MapScale::Maximum;
    assert_eq!(
        scored,
        [
            (max, 0.3, 0.0),
            (max, 0.5, 0.0),
            (p99, 0.3, 1.0),
            (p99, 0.5, 1.0)
        ]
    );
    for fold in &t.folds {
        assert_eq!(fold.scale, p99);
        assert_eq!(fold.reported.gt_known_loc, 1.0);
    }
    assert_eq!(t.at_given_settings.scale, max);
    assert_eq!(t.at_given_settings.reported.gt_known_loc, 0.0);
    let bad = Grid {
        scales: vec![MapScale::Percentile(0.0)],
        ..grid()
    };
    assert!(tune_method(&stored, 0, &one_variant(), &bad, smooth).is_err());
}

#[test]
fn the_folds_never_score_a_point_on_their_own_images() {
    // Even images want 0.3, odd ones 0.5: each half's choice fails on the other half.
    let stored: Vec<StoredImage> = (0..5)
        .map(|i| {
            image(
                i,
                if i % 2 == 0 {
                    wants_low()
                } else {
                    wants_high()
                },
            )
        })
        .collect();
    let t = tune(&stored);
    let scores =
        |half: usize| -> Vec<f64> { t.grid[half].1.iter().map(|p| p.gt_known_loc).collect() };
    assert_eq!(
        (t.grid[0].0.as_str(), t.grid[1].0.as_str()),
        ("even", "odd")
    );
    assert_eq!(scores(0), [1.0, 0.0]);
    assert_eq!(scores(1), [0.0, 1.0]);
    let (even, odd) = (&t.folds[0], &t.folds[1]);
    assert_eq!((even.tuned_on, even.reported_on), ("even", "odd"));
    assert_eq!((even.threshold, even.reported.images), (0.3, 2));
    assert_eq!((odd.threshold, odd.reported.images), (0.5, 3));
    assert_eq!(
        (even.tuned_gt_known_loc, odd.tuned_gt_known_loc),
        (1.0, 1.0)
    );
    assert_eq!(even.reported.gt_known_loc, 0.0);
    assert_eq!(odd.reported.gt_known_loc, 0.0);
    assert_eq!(t.held_out_gt_known_loc, 0.0);
    // All five at the given threshold 0.3: the three even images hit.
    assert_eq!(t.at_given_settings.reported.gt_known_loc, 0.6);
    assert_eq!(t.median_ms, 2.0);
}

#[test]
fn variants_are_searched_in_order_and_stored_once() {
    let c = Candidates::new("a", ["b", "a", "c", "b"]);
    assert_eq!(c.variants(), ["a", "b", "c"]);
    assert_eq!(c.searched(), [1, 0, 2, 1]);
}

#[test]
fn each_variant_is_scored_on_its_own_map() {
    let candidates = Candidates::new(
        Tag { tag: "high" },
        [Tag { tag: "low" }, Tag { tag: "high" }],
    );
    let stored: Vec<StoredImage> = (0..4)
        .map(|i| StoredImage {
            maps: vec![vec![wants_high(), wants_low()]],
            ..image(i, wants_high())
        })
        .collect();
    let t = tune_method(&stored, 0, &candidates, &grid(), smooth).unwrap();
    let points: Vec<(&str, f32, f64)> = t.grid[0]
        .1
        .iter()
        .map(|p| (p.variant.tag, p.threshold, p.gt_known_loc))
        .collect();
    assert_eq!(
        points,
        [
            ("low", 0.3, 1.0),
            ("low", 0.5, 0.0),
            ("high", 0.3, 0.0),
            ("high", 0.5, 1.0)
        ]
    );
    // Ties: the first point of the grid's order wins.
    assert_eq!((t.folds[0].variant.tag, t.folds[0].threshold), ("low", 0.3));
    assert_eq!(t.at_given_settings.variant.tag, "high");
}

/// A grid point of no variant, blur 0 and no refinement.
fn point(threshold: f32, gt_known_loc: f64, box_stability: Option<f64>) -> GridPoint<()> {
    GridPoint {
        variant: (),
        candidate: 0,
        refine: Refinement::None,
        blur: 0.0,
        scale: MapScale::Maximum,
        threshold,
        gt_known_loc,
        box_stability,
    }
}

#[test]
fn best_point_takes_the_first_of_equals() {
    let points = [
        point(0.1, 0.5, None),
        point(0.2, 0.7, None),
        point(0.3, 0.7, None),
    ];
    assert_eq!(best_point(&points, None).map(|p| p.threshold), Some(0.2));
    assert!(best_point::<()>(&[], None).is_none());
}

#[test]
fn equally_accurate_points_go_to_the_more_stable_one() {
    let points = [
        point(0.1, 0.7, Some(0.40)),
        point(0.2, 0.7, Some(0.62)),
        point(0.3, 0.7, Some(0.62)),
        point(0.4, 0.6, Some(0.99)),
    ];
    for floor in [None, Some(0.3)] {
        let chosen = best_point(&points, floor).map(|p| p.threshold);
        assert_eq!(chosen, Some(0.2), "{floor:?}");
    }
}

#[test]
fn a_stability_floor_keeps_the_best_stable_point_or_the_most_stable() {
    let points = [
        point(0.1, 0.5, Some(0.97)),
        point(0.2, 0.7, Some(0.80)),
        point(0.3, 0.6, Some(0.95)),
    ];
    let chosen = |floor| best_point(&points, floor).map(|p| p.threshold);
    assert_eq!(chosen(None), Some(0.2));
    assert_eq!(chosen(Some(0.95)), Some(0.3));
    assert_eq!(
        chosen(Some(0.99)),
        Some(0.1),
        "none is that stable: the most stable"
    );
}

/// `wants_high` boxes its object at threshold 0.5 and the whole image at 0.3; its perturbed
/// copy has the object elsewhere: the 0.5 box moves, the whole-image box stays.
#[test]
fn box_stability_is_scored_and_constrains_the_choice() {
    let moved = SaliencyMap::from_fn(100, 100, |x, y| {
        if inside(x, y, 50, 50, 90, 90) {
            1.0
        } else {
            0.4
        }
    })
    .unwrap();
    let stored: Vec<StoredImage> = (0..4)
        .map(|i| StoredImage {
            perturbed: Some(PerturbedMaps {
                maps: vec![vec![moved.clone()]],
                image: None,
            }),
            ..image(i, wants_high())
        })
        .collect();
    let t = tune(&stored);
    let scored: Vec<(f32, f64, Option<f64>)> = (t.grid[0].1.iter())
        .map(|p| (p.threshold, p.gt_known_loc, p.box_stability))
        .collect();
    assert_eq!(scored, [(0.3, 0.0, Some(1.0)), (0.5, 1.0, Some(0.0))]);
    let fold = &t.folds[0];
    assert_eq!(fold.threshold, 0.5, "no floor: the best GT-known point");
    assert_eq!(fold.tuned_box_stability, Some(0.0));
    assert_eq!(fold.reported_box_stability, Some(0.0));
    assert_eq!(t.at_given_settings.reported_box_stability, Some(1.0));
    let floor = Grid {
        min_box_stability: Some(0.95),
        ..grid()
    };
    let t = tune_method(&stored, 0, &one_variant(), &floor, smooth).unwrap();
    assert_eq!(t.folds[0].threshold, 0.3, "the floor: the stable point");
    assert_eq!(t.folds[0].tuned_box_stability, Some(1.0));
    let plain: Vec<StoredImage> = (0..4).map(|i| image(i, wants_high())).collect();
    let t = tune(&plain);
    assert_eq!(t.folds[0].tuned_box_stability, None);
    assert_eq!(t.at_given_settings.reported_box_stability, None);
}

#[test]
fn missing_maps_and_an_empty_grid_are_errors() {
    let stored = vec![image(0, wants_high()), image(1, wants_high())];
    let two = Candidates::new(Tag { tag: "a" }, [Tag { tag: "b" }]);
    let e = tune_method(&stored, 0, &two, &grid(), smooth);
    assert!(
        matches!(e, Err(EvalError::InvalidParameter { .. })),
        "{e:?}"
    );
    let e = tune_method(&stored, 1, &one_variant(), &grid(), smooth);
    assert!(e.is_err());
    let empty = Grid {
        thresholds: Vec::new(),
        ..grid()
    };
    assert!(tune_method(&stored, 0, &one_variant(), &empty, smooth).is_err());
}

#[test]
fn the_result_serializes_in_the_documented_order() {
    let stored: Vec<StoredImage> = (0..2).map(|i| image(i, wants_high())).collect();
    let result = TuneResult {
        method: "m".into(),
        model: "net.onnx".into(),
        data: "data".into(),
        images: stored.len(),
        failed: vec!["bad".into()],
        settings: serde_json::json!({ "threshold": 0.3 }),
        tuning: tune(&stored),
    };
    let json = serde_json::to_string(&result).unwrap();
    let keys = [
        "\"method\"",
        "\"model\"",
        "\"data\"",
        "\"images\"",
        "\"failed\"",
        "\"settings\"",
        "\"median_ms\"",
        "\"at_given_settings\"",
        "\"grid\"",
        "\"folds\"",
        "\"held_out_gt_known_loc\"",
        "\"held_out_maxbox_acc_v2\"",
    ];
    let at: Vec<usize> = keys.iter().map(|k| json.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert!(json.contains(
        "\"grid\":[[\"even\",[{\"tag\":\"given\",\"refine\":\"none\",\"blur\":0.0,\"scale\":\"max\",\"threshold\":0.3,\"gt_known_loc\":0.0}"
    ));
    assert!(json.contains(
        "\"at_given_settings\":{\"tuned_on\":\"none (given settings)\",\"reported_on\":\"all\",\"tag\":\"given\",\"refine\":\"none\",\"blur\":0.0,\"scale\":\"max\",\"threshold\":0.3,\"tuned_gt_known_loc\":null,"
    ));
}
