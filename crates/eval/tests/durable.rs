//! What a crash leaves in a results file and how reading and resuming treat it: a last line
//! cut at any byte, a cut inside a multi-byte character, a bad complete line; the failed
//! images listed in the summary; the summary file replaced in one piece.

mod common;

use std::path::Path;

use common::{MockExplainer, first_dev_images};
use feedbacknet_eval::{
    Dataset, EvalError, FAILURES_LISTED, ImageRecord, MeasureConfig, ResultsWriter, ResumePolicy,
    RunOutcome, Runner, Summary, SummaryFile, Timings, done_ids, merge, read_records, summary_json,
};

fn config() -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(4.0)
        .with_sweep((0..10u8).map(|i| f32::from(i) / 10.0).collect())
}

fn run(path: &Path, ds: &Dataset, policy: ResumePolicy) -> RunOutcome {
    let explainer = MockExplainer::new(ds);
    Runner::new(path)
        .measure(config())
        .resume_policy(policy)
        .run(ds, &explainer, |_| {})
        .unwrap()
}

/// A failed record whose error holds multi-byte characters (written raw by serde_json).
fn accented_failure(ds: &Dataset, index: usize) -> ImageRecord {
    ImageRecord::failed(
        &ds.samples[index],
        "cannot read /données/clichés/été.JPEG: no such file".into(),
        1.0,
    )
}

#[test]
fn a_last_line_cut_at_any_byte_is_skipped_then_cut_off_and_evaluated_again() {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(4);
    let full = dir.path().join("full.jsonl");
    let reference = run(&full, &ds, ResumePolicy::Fresh);
    let text = std::fs::read(&full).unwrap();
    // The start of the fourth line: the first three records.
    let start = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(2)
        .unwrap()
        .0
        + 1;
    let last_len = text.len() - start;
    let path = dir.path().join("cut.jsonl");
    // Every length of the torn last line, its newline excluded (with it the line is whole).
    for cut in 0..last_len {
        std::fs::write(&path, &text[..start + cut]).unwrap();
        let read = read_records(&path).unwrap();
        let complete = cut == last_len - 1; // the whole record, only the newline missing
        assert_eq!(read.records.len(), 3 + usize::from(complete), "cut {cut}");
        assert_eq!(
            read.truncated_lines,
            usize::from(cut > 0 && !complete),
            "cut {cut}"
        );
        let writer = ResultsWriter::open(&path).unwrap();
        assert_eq!(writer.dropped_partial_line(), cut > 0 && !complete);
        drop(writer);
        let repaired = std::fs::read(&path).unwrap();
        let expected = if complete { &text[..] } else { &text[..start] };
        assert_eq!(repaired, expected, "cut {cut}");
    }
    // Resuming from a torn line evaluates its image once: the file equals the reference's
    // (modulo times) and so does the summary.
    std::fs::write(&path, &text[..start + last_len / 2]).unwrap();
    let resumed = run(&path, &ds, ResumePolicy::Resume);
    assert!(resumed.dropped_partial_line);
    assert_eq!((resumed.evaluated, resumed.skipped), (1, 3));
    let (a, b) = (merge(&[&full]).unwrap(), read_records(&path).unwrap());
    assert_eq!(b.records.len(), 4);
    assert!(a.iter().zip(&b.records).all(|(x, y)| x.same_result(y)));
    assert_eq!(resumed.summary, reference.summary);
}

#[test]
fn a_line_cut_inside_a_multi_byte_character_reads_as_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(3);
    let path = dir.path().join("r.jsonl");
    run(&path, &ds, ResumePolicy::Fresh);
    let before = std::fs::read(&path).unwrap();
    let line = serde_json::to_string(&accented_failure(&ds, 2)).unwrap();
    // Cut between the two bytes of the first "é".
    let cut = line.find('é').unwrap() + 1;
    // The first two records, then the torn failed one in place of the third.
    let second_end = before
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;
    let torn = [&before[..second_end], &line.as_bytes()[..cut]].concat();
    assert!(
        std::str::from_utf8(&torn).is_err(),
        "the cut splits a character"
    );
    std::fs::write(&path, &torn).unwrap();
    // Reading (as `merge` and `done_ids` do) skips the torn line instead of failing on it.
    let read = read_records(&path).unwrap();
    assert_eq!((read.records.len(), read.truncated_lines), (2, 1));
    assert_eq!(done_ids(&path).unwrap(), [0, 1].into_iter().collect());
    assert_eq!(merge(&[&path]).unwrap().len(), 2);
    let resumed = run(&path, &ds, ResumePolicy::Resume);
    assert!(resumed.dropped_partial_line);
    assert_eq!((resumed.evaluated, resumed.records), (1, 3));
    // The same record whole (newline and all) reads back, characters intact.
    std::fs::write(
        &path,
        [&before[..second_end], line.as_bytes(), b"\n"].concat(),
    )
    .unwrap();
    let read = read_records(&path).unwrap();
    assert_eq!(read.records[2], accented_failure(&ds, 2));
}

#[test]
fn a_bad_complete_last_line_is_an_error_not_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(3);
    let path = dir.path().join("r.jsonl");
    run(&path, &ds, ResumePolicy::Fresh);
    let mut text = std::fs::read_to_string(&path).unwrap();
    // A crash never leaves a bad line with its newline (each line is written whole): this is
    // another kind of damage, and resuming after it would bury it inside the file.
    text.push_str("{\"index\": 7, \"id\n");
    std::fs::write(&path, &text).unwrap();
    assert!(matches!(
        read_records(&path),
        Err(EvalError::Parse { line: 4, .. })
    ));
    let explainer = MockExplainer::new(&ds);
    let resumed = Runner::new(&path)
        .measure(config())
        .resume_policy(ResumePolicy::Resume)
        .run(&ds, &explainer, |_| {});
    assert!(matches!(resumed, Err(EvalError::Parse { line: 4, .. })));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "left as it was"
    );
}

/// A csv data set of `good` real images followed by `missing` images that do not exist.
fn dataset_with_missing_images(dir: &Path, good: usize, missing: usize) -> Dataset {
    let rows = common::csv_rows();
    let mut csv = String::from("image,class_idx,wnid,img_w,img_h,x0,y0,x1,y1\n");
    for r in rows.iter().take(good) {
        let name = r.image.trim_start_matches("images/");
        std::fs::copy(common::dev_dir().join(&r.image), dir.join(name)).unwrap();
        csv += &format!("{name},{},{},227,227,10,10,100,100\n", r.class, r.wnid);
    }
    for i in 0..missing {
        csv += &format!("missing_{i:02}.JPEG,{i},n{i},227,227,10,10,100,100\n");
    }
    std::fs::write(dir.join("boxes.csv"), csv).unwrap();
    Dataset::open(dir, None).unwrap()
}

#[test]
fn the_summary_lists_the_first_failed_images_with_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset_with_missing_images(dir.path(), 2, 13);
    let path = dir.path().join("r.jsonl");
    let out = run(&path, &ds, ResumePolicy::Fresh);
    let s = &out.summary;
    assert_eq!((s.images, s.failed), (15, 13));
    assert_eq!(s.failures.len(), FAILURES_LISTED);
    let ids: Vec<&str> = s.failures.iter().map(|f| f.id.as_str()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("missing_{i:02}.JPEG")).collect();
    assert_eq!(ids, expected);
    let indices: Vec<usize> = s.failures.iter().map(|f| f.index).collect();
    assert_eq!(indices, (2..12).collect::<Vec<_>>());
    for f in &s.failures {
        assert!(f.error.contains(&f.id), "{}: {}", f.id, f.error);
    }
    // The same list from the records in any order, and none without failures.
    let mut records = read_records(&path).unwrap().records;
    records.reverse();
    assert_eq!(
        &Summary::from_records(&records, &config().sweep).unwrap(),
        s
    );
    let good: Vec<ImageRecord> = records.into_iter().filter(|r| r.error.is_none()).collect();
    assert!(
        Summary::from_records(&good, &config().sweep)
            .unwrap()
            .failures
            .is_empty()
    );
    // In the JSON, beside `failed`; a summary written before the list existed still reads.
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["failed"], 13);
    assert_eq!(json["failures"][0]["id"], "missing_00.JPEG");
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("failures");
    let back: Summary = serde_json::from_value(old).unwrap();
    assert!(back.failures.is_empty() && back.failed == 13);
}

#[test]
fn the_summary_file_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(2);
    let out = run(&dir.path().join("r.jsonl"), &ds, ResumePolicy::Fresh);
    let path = dir.path().join("summary.json");
    std::fs::write(&path, "an older summary").unwrap();
    let contents = SummaryFile {
        summary: out.summary,
        config: serde_json::json!({}),
        model_sha256: String::new(),
        timings: Timings::from_records(&[]),
    };
    summary_json(&path, &contents).unwrap();
    let back: SummaryFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(back, contents);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "no temporary left: {names:?}"
    );
}
