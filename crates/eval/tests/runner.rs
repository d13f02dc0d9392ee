//! Runs with a mock explainer over the first shared dev images: resume after
//! a simulated crash, shards, bad images.

mod common;

use std::io::Write;
use std::path::Path;

use common::{MockExplainer, first_dev_images};
use feedbacknet_eval::{
    Dataset, EvalError, ImageRecord, MeasureConfig, ResultsWriter, ResumePolicy, RunOutcome,
    Runner, Shard, Summary, done_ids, merge, read_records,
};

const IMAGES: usize = 40;

/// A 20-step sweep keeps the debug-build tests quick.
fn config() -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(4.0)
        .with_sweep((0..20u8).map(|i| f32::from(i) / 20.0).collect())
}

fn runner(path: &Path) -> Runner {
    Runner::new(path).measure(config())
}

fn run(runner: &Runner, ds: &Dataset) -> RunOutcome {
    let explainer = MockExplainer::new(ds);
    runner.run(ds, &explainer, |_| {}).unwrap()
}

fn json(summary: &Summary) -> String {
    serde_json::to_string(summary).unwrap()
}

/// The reference: one uninterrupted run over the 40 images.
fn full_run(dir: &Path) -> RunOutcome {
    let ds = first_dev_images(IMAGES);
    let explainer = MockExplainer::new(&ds);
    let path = dir.join("full.jsonl");
    let mut seen = Vec::new();
    let out = runner(&path)
        .run(&ds, &explainer, |p| {
            seen.push((p.done, p.total, p.last.index))
        })
        .unwrap();
    let expected: Vec<_> = (0..IMAGES).map(|i| (i + 1, IMAGES, i)).collect();
    assert_eq!(seen, expected, "progress after every image, in order");
    out
}

#[test]
fn uninterrupted_run_measures_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let out = full_run(dir.path());
    assert_eq!(
        (out.records, out.evaluated, out.skipped, out.failed),
        (40, 40, 0, 0)
    );
    let s = &out.summary;
    assert_eq!(s.images, 40);
    // The mock puts the true class first for classes 0 and 3 (mod 4),
    // third for 1, nowhere for 2.
    let records = read_records(&dir.path().join("full.jsonl"))
        .unwrap()
        .records;
    let count = |f: &dyn Fn(&ImageRecord) -> bool| records.iter().filter(|r| f(r)).count();
    let top1 = count(&|r| r.class % 4 == 0 || r.class % 4 == 3);
    let top5 = count(&|r| r.class % 4 != 2);
    assert_eq!(s.top1_cls, top1 as f64 / 40.0);
    assert_eq!(s.top5_cls, top5 as f64 / 40.0);
    assert!(top1 > 0 && top5 > top1 && top5 < 40, "{top1} {top5}");
    // Maps bright inside the box (classes 0, 2 mod 4) localize well.
    for r in &records {
        let good = r.class % 4 == 0 || r.class % 4 == 2;
        assert_eq!(
            r.gt_known_iou > 0.5,
            good,
            "{} class {} iou {}",
            r.id,
            r.class,
            r.gt_known_iou
        );
        assert_eq!(r.maxbox_ious.len(), 20);
        assert_eq!(r.top5.len(), 5);
        assert_eq!(r.top5_ious.len(), 5);
        assert!(r.top5_ious[0].is_some(), "top-1 map asked for");
    }
    // At the main threshold (0.2 = sweep step 4) MaxBox sees every component,
    // the largest one included.
    assert_eq!(config().sweep[4], config().threshold);
    assert!(records.iter().all(|r| r.maxbox_ious[4] >= r.gt_known_iou));
    let split = records
        .iter()
        .filter(|r| r.maxbox_ious[4] > r.gt_known_iou)
        .count();
    assert!(
        split > 0,
        "the two-blob maps (class 3 mod 4) have a better non-largest box"
    );
    assert!(s.maxbox_acc_v2 > 0.0 && s.gt_known_loc > 0.0 && s.pointing_game > 0.0);
    assert!(s.top1_loc <= s.gt_known_loc && s.top1_loc <= s.top5_loc);
}

#[test]
fn resume_after_a_crash_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = full_run(dir.path());
    let ds = first_dev_images(IMAGES);
    let path = dir.path().join("resumed.jsonl");
    // "Crash" after 15 images, in the middle of writing the 16th.
    let first = run(&runner(&path).limit(15), &ds);
    assert_eq!((first.evaluated, first.records), (15, 15));
    assert_ne!(json(&first.summary), json(&full.summary));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(br#"{"index":15,"id":"images/ILSVRC2012_val_0000"#)
        .unwrap();
    drop(file);
    let read = read_records(&path).unwrap();
    assert_eq!((read.records.len(), read.truncated_lines), (15, 1));
    assert_eq!(done_ids(&path).unwrap(), (0..15).collect());
    // Starting afresh on that file is refused: nothing is lost by mistake.
    let explainer = MockExplainer::new(&ds);
    assert!(matches!(
        runner(&path).run(&ds, &explainer, |_| {}),
        Err(EvalError::ResultsExist { .. })
    ));
    // Resume in two more steps.
    let second = run(
        &runner(&path).resume_policy(ResumePolicy::Resume).limit(10),
        &ds,
    );
    assert!(second.dropped_partial_line);
    assert_eq!(
        (second.evaluated, second.skipped, second.records),
        (10, 15, 25)
    );
    let third = run(&runner(&path).resume_policy(ResumePolicy::Resume), &ds);
    assert_eq!(
        (third.evaluated, third.skipped, third.records),
        (15, 25, 40)
    );
    assert!(!third.dropped_partial_line);
    assert_eq!(json(&third.summary), json(&full.summary));
    let read = read_records(&path).unwrap();
    assert_eq!((read.records.len(), read.truncated_lines), (40, 0));
    // Nothing left to do.
    let again = run(&runner(&path).resume_policy(ResumePolicy::Resume), &ds);
    assert_eq!((again.evaluated, again.skipped), (0, 40));
    assert_eq!(json(&again.summary), json(&full.summary));
    // Overwrite starts over.
    let over = run(
        &runner(&path)
            .resume_policy(ResumePolicy::Overwrite)
            .limit(3),
        &ds,
    );
    assert_eq!(over.records, 3);
}

#[test]
fn shards_merged_equal_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = full_run(dir.path());
    let ds = first_dev_images(IMAGES);
    let mut paths = Vec::new();
    for i in 1..=3 {
        let path = dir.path().join(format!("shard{i}.jsonl"));
        let shard = Shard::new(i, 3).unwrap();
        // Shard 2 evaluates a pre-sharded data set; the others shard in the runner.
        let out = if i == 2 {
            run(&runner(&path), &ds.shard(shard))
        } else {
            run(&runner(&path).shard(shard), &ds)
        };
        assert_eq!(out.records, ds.shard(shard).len());
        paths.push(path);
    }
    let merged = merge(&paths).unwrap();
    assert_eq!(
        merged.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    let summary = Summary::from_records(&merged, &config().sweep).unwrap();
    assert_eq!(json(&summary), json(&full.summary));
    // The same file twice is harmless; a conflicting copy is an error.
    let twice = merge(&[&paths[0], &paths[0], &paths[1], &paths[2]]).unwrap();
    assert_eq!(twice, merged);
    let conflict = dir.path().join("conflict.jsonl");
    let mut changed = merged[3].clone();
    changed.gt_known_iou += 0.25;
    ResultsWriter::open(&conflict)
        .unwrap()
        .write(&changed)
        .unwrap();
    match merge(&[&paths[0], &conflict]) {
        Err(EvalError::ConflictingRecords { index, second, .. }) => {
            assert_eq!((index, second), (3, conflict));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn decode_threads_keep_order_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let full = full_run(dir.path());
    let ds = first_dev_images(IMAGES);
    let path = dir.path().join("threads.jsonl");
    let out = run(&runner(&path).decode_threads(3).prefetch(2), &ds);
    assert_eq!(json(&out.summary), json(&full.summary));
    let indices: Vec<usize> = read_records(&path)
        .unwrap()
        .records
        .iter()
        .map(|r| r.index)
        .collect();
    assert_eq!(indices, (0..40).collect::<Vec<_>>());
    assert!(matches!(
        runner(&path)
            .decode_threads(0)
            .run(&ds, &MockExplainer::new(&ds), |_| {}),
        Err(EvalError::InvalidParameter {
            name: "decode_threads",
            ..
        })
    ));
}

/// A csv data set over two shared images, a corrupt file and an image
/// whose class makes the mock explainer fail.
fn troubled_dataset(dir: &Path) -> Dataset {
    let dev = common::dev_dir();
    let rows = common::csv_rows();
    for r in rows.iter().take(2) {
        let name = r.image.trim_start_matches("images/");
        std::fs::copy(dev.join(&r.image), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("corrupt.JPEG"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    let mut csv = String::from("image,class_idx,wnid,img_w,img_h,x0,y0,x1,y1\n");
    for r in rows.iter().take(2) {
        let name = r.image.trim_start_matches("images/");
        csv += &format!("{name},{},{},227,227,10,10,100,100\n", r.class, r.wnid);
    }
    csv += "corrupt.JPEG,5,n0,227,227,10,10,100,100\n";
    let third = rows[2].image.trim_start_matches("images/");
    std::fs::copy(dev.join(&rows[2].image), dir.join(third)).unwrap();
    csv += &format!("{third},999,n1,227,227,10,10,100,100\n");
    std::fs::write(dir.join("boxes.csv"), csv).unwrap();
    Dataset::open(dir, None).unwrap()
}

#[test]
fn bad_images_become_failed_records() {
    let dir = tempfile::tempdir().unwrap();
    let ds = troubled_dataset(dir.path());
    let path = dir.path().join("results.jsonl");
    let out = run(&runner(&path), &ds);
    assert_eq!((out.records, out.evaluated, out.failed), (4, 4, 2));
    assert_eq!((out.summary.images, out.summary.failed), (4, 2));
    let records = read_records(&path).unwrap().records;
    let corrupt = &records[2];
    let message = corrupt.error.as_deref().unwrap();
    assert!(message.contains("corrupt.JPEG"), "{message}");
    assert!(corrupt.top5.is_empty() && !corrupt.pointing_hit);
    let failing = records[3].error.as_deref().unwrap();
    assert!(failing.contains("mock failure"), "{failing}");
    assert!(records[..2].iter().all(|r| r.error.is_none()));
    // Failed images are done: resuming does not retry them.
    let again = run(&runner(&path).resume_policy(ResumePolicy::Resume), &ds);
    assert_eq!(again.evaluated, 0);
}

#[test]
fn resuming_against_another_data_set_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(10);
    let path = dir.path().join("results.jsonl");
    run(&runner(&path).limit(5), &ds);
    let mut other = ds.clone();
    other.samples.swap(1, 2);
    for (i, s) in other.samples.iter_mut().enumerate() {
        s.index = i;
    }
    let explainer = MockExplainer::new(&other);
    let result = runner(&path)
        .resume_policy(ResumePolicy::Resume)
        .run(&other, &explainer, |_| {});
    assert!(
        matches!(result, Err(EvalError::DatasetMismatch { index: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn writer_keeps_a_complete_last_record_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.jsonl");
    let ds = first_dev_images(3);
    run(&runner(&path), &ds);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.trim_end()).unwrap();
    let writer = ResultsWriter::open(&path).unwrap();
    assert!(!writer.dropped_partial_line());
    drop(writer);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // A bad line in the middle is an error naming its line.
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{{broken\n{}\n", lines[0], lines[1])).unwrap();
    assert!(matches!(
        read_records(&path),
        Err(EvalError::Parse { line: 2, .. })
    ));
}

#[test]
fn parallel_workers_give_the_same_records_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let full = full_run(dir.path());
    let ds = first_dev_images(IMAGES);
    let path = dir.path().join("workers.jsonl");
    let explainer = MockExplainer::new(&ds);
    let mut progress = Vec::new();
    let out = runner(&path)
        .workers(3)
        .decode_threads(2)
        .run(&ds, &explainer, |p| progress.push(p.done))
        .unwrap();
    assert_eq!(json(&out.summary), json(&full.summary));
    assert_eq!(progress, (1..=IMAGES).collect::<Vec<_>>());
    let mut indices: Vec<usize> = read_records(&path)
        .unwrap()
        .records
        .iter()
        .map(|r| r.index)
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..IMAGES).collect::<Vec<_>>());
    let merged = merge(&[&path]).unwrap();
    let reference = merge(&[dir.path().join("full.jsonl")]).unwrap();
    assert!(merged.iter().zip(&reference).all(|(a, b)| a.same_result(b)));
    assert!(matches!(
        runner(&path).workers(0).run(&ds, &explainer, |_| {}),
        Err(EvalError::InvalidParameter {
            name: "workers",
            ..
        })
    ));
}

/// An explainer that records the size of each batch it is handed and explains its items one
/// by one with the mock.
struct Batching<'a> {
    mock: MockExplainer,
    calls: &'a std::sync::Mutex<Vec<usize>>,
}

impl feedbacknet_eval::Explainer for Batching<'_> {
    fn explain(
        &self,
        image: &image::DynamicImage,
        true_class: usize,
        k: usize,
    ) -> Result<feedbacknet_eval::Explanation, feedbacknet_eval::ExplainError> {
        self.mock.explain(image, true_class, k)
    }

    fn explain_batch(
        &self,
        items: &[(&image::DynamicImage, usize)],
        k: usize,
    ) -> Vec<Result<feedbacknet_eval::Explanation, feedbacknet_eval::ExplainError>> {
        self.calls.lock().unwrap().push(items.len());
        items
            .iter()
            .map(|&(image, class)| self.mock.explain(image, class, k))
            .collect()
    }
}

#[test]
fn batches_of_images_give_the_same_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let full = full_run(dir.path());
    let ds = first_dev_images(IMAGES);
    let path = dir.path().join("batch.jsonl");
    let calls = std::sync::Mutex::new(Vec::new());
    let explainer = Batching {
        mock: MockExplainer::new(&ds),
        calls: &calls,
    };
    let mut progress = Vec::new();
    let out = runner(&path)
        .batch(16)
        .run(&ds, &explainer, |p| progress.push((p.done, p.last.index)))
        .unwrap();
    assert_eq!(json(&out.summary), json(&full.summary));
    assert_eq!(*calls.lock().unwrap(), [16, 16, 8]);
    let expected: Vec<(usize, usize)> = (0..IMAGES).map(|i| (i + 1, i)).collect();
    assert_eq!(progress, expected);
    let records = read_records(&path).unwrap().records;
    let reference = read_records(&dir.path().join("full.jsonl"))
        .unwrap()
        .records;
    assert_eq!(records.len(), reference.len());
    assert!(
        records
            .iter()
            .zip(&reference)
            .all(|(a, b)| a.same_result(b))
    );
    // Batches on parallel workers: every image once, the same results.
    calls.lock().unwrap().clear();
    let parallel = dir.path().join("parallel.jsonl");
    let out = runner(&parallel)
        .batch(7)
        .workers(2)
        .run(&ds, &explainer, |_| {})
        .unwrap();
    assert_eq!(json(&out.summary), json(&full.summary));
    let mut sizes = calls.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 7, 7, 7, 7, 7]);
    assert!(matches!(
        runner(&path).batch(0).run(&ds, &explainer, |_| {}),
        Err(EvalError::InvalidParameter { name: "batch", .. })
    ));
}

#[test]
fn a_batch_with_bad_images_fails_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let ds = troubled_dataset(dir.path());
    let one = dir.path().join("one.jsonl");
    run(&runner(&one), &ds);
    let batched = dir.path().join("batched.jsonl");
    let out = run(&runner(&batched).batch(4), &ds);
    assert_eq!((out.records, out.evaluated, out.failed), (4, 4, 2));
    let (a, b) = (
        read_records(&one).unwrap().records,
        read_records(&batched).unwrap().records,
    );
    assert!(a.iter().zip(&b).all(|(a, b)| a.same_result(b)));
    assert_eq!(a.len(), b.len());
}
