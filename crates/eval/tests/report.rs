//! The HTML report and the JSON summary.

mod common;

use common::{MockExplainer, first_dev_images};
use feedbacknet_eval::{
    GalleryItem, ImageRecord, MeasureConfig, Report, Runner, SummaryFile, Timings, best_and_worst,
    config_table, encode_png, read_records, sha256_file, summary_json,
};

/// Runs the mock over 12 dev images; returns the records and the summary.
fn evaluated() -> (Vec<ImageRecord>, feedbacknet_eval::Summary, MeasureConfig) {
    let dir = tempfile::tempdir().unwrap();
    let ds = first_dev_images(12);
    let config = MeasureConfig::default()
        .with_blur_sigma(4.0)
        .with_sweep(vec![0.1, 0.2, 0.5]);
    let path = dir.path().join("r.jsonl");
    let out = Runner::new(&path)
        .measure(config.clone())
        .run(&ds, &MockExplainer::new(&ds), |_| {})
        .unwrap();
    (read_records(&path).unwrap().records, out.summary, config)
}

/// A small thumbnail of a shared image, as the caller's "overlay".
fn thumbnail(record: &ImageRecord) -> Vec<u8> {
    let path = common::dev_dir().join(&record.id);
    let image = image::open(path).unwrap().thumbnail(48, 48).to_rgb8();
    encode_png(&image).unwrap()
}

#[test]
fn html_report_is_self_contained_and_complete() {
    let (records, summary, config) = evaluated();
    let (best, worst) = best_and_worst(&records, 3);
    assert_eq!((best.len(), worst.len()), (3, 3));
    assert!(
        best.windows(2)
            .all(|w| w[0].gt_known_iou >= w[1].gt_known_iou)
    );
    assert!(
        worst
            .windows(2)
            .all(|w| w[0].gt_known_iou <= w[1].gt_known_iou)
    );
    assert!(best[0].gt_known_iou >= worst[2].gt_known_iou);
    let item = |r: &&ImageRecord| GalleryItem {
        id: r.id.clone(),
        class: r.class,
        label: Some("label <with> & \"quotes\"".into()),
        iou: r.gt_known_iou,
        png: thumbnail(r),
    };
    let best: Vec<GalleryItem> = best.iter().map(item).collect();
    let worst: Vec<GalleryItem> = worst.iter().map(item).collect();
    let rows = config_table(&serde_json::json!({"measure": config, "model": "squeezenet1.1.onnx"}));
    let html = Report {
        title: "Dev set <mock>",
        config: &rows,
        summary: &summary,
        best: &best,
        worst: &worst,
    }
    .to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<title>Dev set &lt;mock&gt;</title>"));
    assert!(!html.contains("<mock>") && !html.contains("<with>"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "url(http",
        "<link",
        "<script",
    ] {
        assert!(!html.contains(external), "{external}");
    }
    // Configuration rows.
    assert!(html.contains("<th>measure.threshold</th><td>0.2</td>"));
    assert!(html.contains("<th>measure.blur_sigma</th><td>4</td>"));
    assert!(html.contains("<th>model</th><td>squeezenet1.1.onnx</td>"));
    // Metrics.
    for (name, value) in [
        ("GT-known localization", summary.gt_known_loc),
        ("Top-1 localization", summary.top1_loc),
        ("Top-5 localization error", summary.top5_loc_error),
        ("MaxBoxAccV2", summary.maxbox_acc_v2),
        ("Pointing game", summary.pointing_game),
        ("Top-1 classification", summary.top1_cls),
    ] {
        let row = format!(
            "<td>{name}</td><td class=\"num\">{:.2}%</td>",
            value * 100.0
        );
        assert!(html.contains(&row), "{row}");
    }
    assert!(html.contains(&format!("{:.4}", summary.mean_iou)));
    // Histogram with one bar per bin.
    assert!(html.contains("<svg"));
    assert_eq!(html.matches("<rect").count(), 10);
    // Six embedded PNGs (base64 of the PNG signature starts "iVBORw0KGgo").
    assert_eq!(
        html.matches("src=\"data:image/png;base64,iVBORw0KGgo")
            .count(),
        6
    );
    for item in best.iter().chain(&worst) {
        assert!(html.contains(&format!("alt=\"{}\"", item.id)));
        assert!(html.contains(&format!("IoU {:.3}", item.iou)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    Report {
        title: "t",
        config: &rows,
        summary: &summary,
        best: &best,
        worst: &worst,
    }
    .write(&path)
    .unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
}

#[test]
fn summary_json_round_trips() {
    let (records, summary, config) = evaluated();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, b"abc").unwrap();
    let sha = sha256_file(&model).unwrap();
    assert_eq!(
        sha,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let timings = Timings::from_records(&records).with_wall_s(12.5);
    assert_eq!(timings.images, 12);
    let contents = SummaryFile {
        summary,
        config: serde_json::to_value(&config).unwrap(),
        model_sha256: sha,
        timings,
    };
    let path = dir.path().join("summary.json");
    summary_json(&path, &contents).unwrap();
    let back: SummaryFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, contents);
    assert!(sha256_file(&dir.path().join("missing")).is_err());
}

#[test]
fn timings_by_hand() {
    let sample = |i: usize| feedbacknet_eval::Sample {
        index: i,
        id: format!("{i}"),
        path: "x".into(),
        class: 0,
        size: (1, 1),
        boxes: vec![],
    };
    let mut records: Vec<ImageRecord> = [5.0, 1.0, 3.0, 2.0, 4.0]
        .iter()
        .enumerate()
        .map(|(i, &t)| ImageRecord {
            error: None,
            ..ImageRecord::failed(&sample(i), String::new(), t)
        })
        .collect();
    records.push(ImageRecord::failed(&sample(9), "bad".into(), 100.0));
    let t = Timings::from_records(&records);
    assert_eq!((t.images, t.total_ms, t.mean_ms), (5, 15.0, 3.0));
    assert_eq!(
        (t.median_ms, t.p95_ms, t.max_ms, t.wall_s),
        (3.0, 5.0, 5.0, None)
    );
    let none = Timings::from_records(&[]);
    assert_eq!((none.images, none.mean_ms, none.median_ms), (0, 0.0, 0.0));
}
