//! Property tests (proptest) of the metrics and the summary: a perfect box scores 1 in every
//! metric, and the summary of a run does not depend on the order of its records or on how the
//! images were split into shards and merged back.

use std::path::PathBuf;

use feedbacknet_eval::{
    Dataset, Explanation, ImageRecord, Layout, MeasureConfig, ResultsWriter, Sample, Shard,
    Summary, merge, score_explanation,
};
use feedbacknet_localize::{BoundingBox, SaliencyMap};
use proptest::prelude::*;

/// An image size and a ground-truth box on whole pixels inside it.
fn image_and_box() -> impl Strategy<Value = ((u32, u32), [u32; 4])> {
    (2u32..=48, 2u32..=48).prop_flat_map(|(w, h)| {
        (0..w, 0..h).prop_flat_map(move |(x0, y0)| {
            (x0 + 1..=w, y0 + 1..=h).prop_map(move |(x1, y1)| ((w, h), [x0, y0, x1, y1]))
        })
    })
}

/// A map of the image's size that is `value` exactly on the box's pixels and 0 elsewhere.
fn map_on(size: (u32, u32), b: [u32; 4], value: f32) -> SaliencyMap {
    let [x0, y0, x1, y1] = b.map(|v| v as usize);
    SaliencyMap::from_fn(size.0 as usize, size.1 as usize, |x, y| {
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            value
        } else {
            0.0
        }
    })
    .unwrap()
}

fn sample(index: usize, class: usize, size: (u32, u32), b: [u32; 4]) -> Sample {
    let [x0, y0, x1, y1] = b.map(|v| v as f32);
    Sample {
        index,
        id: format!("img{index}.png"),
        path: PathBuf::from(format!("img{index}.png")),
        class,
        size,
        boxes: vec![BoundingBox::new(x0, y0, x1, y1).unwrap()],
    }
}

/// A record as the runner writes it, with arbitrary scores; some failed.
fn record(index: usize, sweep_len: usize) -> impl Strategy<Value = ImageRecord> {
    // Values near the rounding step of 1 make a float sum depend on its order.
    let iou = prop_oneof![
        Just(0.0f32),
        Just(0.5f32),
        Just(1.0f32),
        0.0f32..=1.0,
        1e-17f32..1e-15
    ];
    (
        0usize..6,
        proptest::collection::vec(0usize..6, 0..=5),
        iou.clone(),
        proptest::collection::vec(iou, sweep_len),
        any::<bool>(),
        prop_oneof![4 => Just(None), 1 => Just(Some("unreadable".to_string()))],
        0.0f64..100.0,
    )
        .prop_map(
            move |(class, top5, gt_known_iou, maxbox_ious, pointing_hit, error, time_ms)| {
                let failed = error.is_some();
                ImageRecord {
                    index,
                    id: format!("img{index}.png"),
                    class,
                    top1_iou: top5.first().map(|_| gt_known_iou),
                    top5_ious: top5.iter().map(|_| Some(gt_known_iou)).collect(),
                    top5: if failed { Vec::new() } else { top5 },
                    gt_known_iou: if failed { 0.0 } else { gt_known_iou },
                    gt_known_box: None,
                    maxbox_ious: if failed { Vec::new() } else { maxbox_ious },
                    pointing_hit: !failed && pointing_hit,
                    time_ms,
                    error,
                    warnings: Vec::new(),
                }
            },
        )
}

/// A run: a sweep and records with unique indices (not contiguous: a shard's indices).
fn run() -> impl Strategy<Value = (Vec<f32>, Vec<ImageRecord>)> {
    (1usize..=5, 0usize..=30, 1usize..=3).prop_flat_map(|(sweep_len, n, stride)| {
        let sweep: Vec<f32> = (0..sweep_len)
            .map(|i| i as f32 / sweep_len as f32)
            .collect();
        let records: Vec<_> = (0..n).map(|i| record(i * stride + 1, sweep_len)).collect();
        (Just(sweep), records)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A map that is one positive value exactly on the ground-truth box gives that box at every
    /// threshold: IoU 1, every MaxBoxAccV2 IoU 1, a pointing hit; and a run of such images with
    /// the right class first scores 1 in every summary metric (0 top-5 error).
    #[test]
    fn a_perfect_box_scores_one_in_every_metric(
        images in proptest::collection::vec((image_and_box(), 0.01f32..100.0, 0usize..1000), 1..=4),
        threshold in 0.0f32..=1.0,
        sweep in proptest::collection::vec(0.0f32..=1.0, 1..=6),
        tolerance in 0.0f32..30.0,
    ) {
        let config = MeasureConfig::default()
            .with_blur_sigma(0.0)
            .with_threshold(threshold)
            .with_sweep(sweep.clone())
            .with_pointing_tolerance_px(tolerance);
        let mut records = Vec::new();
        for (i, ((size, b), value, class)) in images.into_iter().enumerate() {
            let explanation = Explanation {
                top5: vec![class, class + 1, class + 2, class + 3, class + 4],
                true_class_map: map_on(size, b, value),
                top_maps: Vec::new(),
                image: None,
            };
            let record = score_explanation(&sample(i, class, size, b), &explanation, &config).unwrap();
            prop_assert_eq!(record.gt_known_iou, 1.0);
            prop_assert_eq!(record.top1_iou, Some(1.0));
            prop_assert_eq!(&record.maxbox_ious, &vec![1.0; sweep.len()]);
            prop_assert!(record.pointing_hit);
            records.push(record);
        }
        let s = Summary::from_records(&records, &sweep).unwrap();
        for (name, value) in [
            ("top1_cls", s.top1_cls),
            ("top5_cls", s.top5_cls),
            ("top1_loc", s.top1_loc),
            ("top5_loc", s.top5_loc),
            ("gt_known_loc", s.gt_known_loc),
            ("maxbox_acc_v2", s.maxbox_acc_v2),
            ("mean_iou", s.mean_iou),
            ("pointing_game", s.pointing_game),
        ] {
            prop_assert_eq!(value, 1.0, "{}", name);
        }
        prop_assert_eq!(s.top5_loc_error, 0.0);
        prop_assert!(s.maxbox.iter().all(|m| m.accuracy == 1.0));
        prop_assert_eq!(s.iou_histogram.last().copied(), Some(records.len()));
    }

    /// The summary of a run is bit-identical whatever the order of its records.
    #[test]
    fn shuffling_records_does_not_change_the_summary(
        (sweep, records, shuffled) in run().prop_flat_map(|(sweep, records)| {
            let shuffled = Just(records.clone()).prop_shuffle();
            (Just(sweep), Just(records), shuffled)
        }),
    ) {
        let a = Summary::from_records(&records, &sweep).unwrap();
        let b = Summary::from_records(&shuffled, &sweep).unwrap();
        prop_assert_eq!(a, b);
    }
}

proptest! {
    // Each case writes and syncs a few results files: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Records split into shards (each shard file written in any order, one record also left
    /// over in a second shard's file as a resumed run may leave it, with another timing) and
    /// merged back give the records in index order and the same summary.
    #[test]
    fn sharding_and_merging_does_not_change_the_summary(
        (sweep, records, order) in run().prop_flat_map(|(sweep, records)| {
            let order = Just((0..records.len()).collect::<Vec<_>>()).prop_shuffle();
            (Just(sweep), Just(records), order)
        }),
        count in 1usize..=4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (1..=count).map(|i| dir.path().join(format!("shard{i}.jsonl"))).collect();
        let mut writers: Vec<ResultsWriter> =
            paths.iter().map(|p| ResultsWriter::create(p).unwrap()).collect();
        for &k in &order {
            let r = &records[k];
            let i = (1..=count).find(|&i| Shard::new(i, count).unwrap().contains(r.index)).unwrap();
            writers[i - 1].write(r).unwrap();
        }
        if let Some(first) = records.first() {
            let mut again = first.clone();
            again.time_ms += 1.0;
            writers[count - 1].write(&again).unwrap();
        }
        drop(writers);
        let mut reversed = paths.clone();
        reversed.reverse();
        let merged = merge(&reversed).unwrap();
        let mut sorted = records.clone();
        sorted.sort_by_key(|r| r.index);
        prop_assert_eq!(merged.len(), sorted.len());
        for (m, r) in merged.iter().zip(&sorted) {
            prop_assert!(m.same_result(r), "{m:?} != {r:?}");
        }
        prop_assert_eq!(
            Summary::from_records(&merged, &sweep).unwrap(),
            Summary::from_records(&records, &sweep).unwrap()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The shards of a data set are disjoint, keep the samples' order and together hold every
    /// sample.
    #[test]
    fn shards_partition_a_data_set(n in 0usize..50, count in 1usize..=6) {
        let samples = (0..n).map(|i| sample(i, i % 3, (4, 4), [0, 0, 2, 2])).collect();
        let dataset = Dataset { samples, layout: Layout::BoxesCsv };
        let mut seen: Vec<usize> = Vec::new();
        for i in 1..=count {
            let shard = dataset.shard(Shard::new(i, count).unwrap());
            let indices: Vec<usize> = shard.samples.iter().map(|s| s.index).collect();
            prop_assert!(indices.windows(2).all(|w| w[0] < w[1]));
            seen.extend(indices);
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }
}
