//! One box rule: `FeedbackNet::infer` and the evaluator (`feedbacknet eval`, scoring through
//! `feedbacknet_eval::score_explanation`) find the same box for the same image and settings,
//! both by `feedbacknet_localize::localize_in_image`.

mod common;

use common::{scratch_dir, shared};

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use feedbacknet::{BoundingBox, FeedbackNet, LocalizeConfig, MapScale, Method, load_image};

/// The first row of the dev set's `boxes.csv`: the image and its ground-truth class.
fn first_dev_row(dir: &Path) -> (PathBuf, String, usize) {
    let text = std::fs::read_to_string(shared().join("data/imagenet-val/boxes.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let csv = dir.join("boxes.csv");
    std::fs::write(&csv, format!("{header}\n{row}\n")).unwrap();
    let mut fields = row.split(',');
    let image = fields.next().unwrap().to_string();
    let class = fields.next().unwrap().parse().unwrap();
    (csv, image, class)
}

/// The GT-known box `feedbacknet eval` recorded for the one image of `csv`.
fn evaluated_box(csv: &Path, results: &Path, method: Method, config: &LocalizeConfig) {
    let (blur, threshold) = (config.blur_sigma.to_string(), config.threshold.to_string());
    let scale = config.scale.to_string();
    let images = shared().join("data/imagenet-val");
    let args = [
        "eval",
        "--method",
        method.name(),
        "--blur",
        &blur,
        "--threshold",
        &threshold,
        "--map-scale",
        &scale,
        // The true class alone: one sample, as in `infer`.
        "--top-k",
        "0",
        "--data",
        csv.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_feedbacknet"))
        .args(args)
        .env("FEEDBACKNET_MODELS", shared().join("models"))
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn record_box(results: &Path) -> BoundingBox {
    let text = std::fs::read_to_string(results).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    serde_json::from_value(record["gt_known_box"].clone()).expect("a box")
}

#[test]
fn infer_and_the_evaluator_give_the_same_box() {
    let (_tmp, dir) = scratch_dir("box-rule");
    let (csv, image, class) = first_dev_row(&dir);
    let photo = load_image(shared().join("data/imagenet-val").join(&image)).unwrap();
    let p99 = MapScale::Percentile(99.0);
    let cases = [
        (Method::Gradient, 10.0, 0.2, MapScale::Maximum),
        (Method::GradCam, 6.0, 0.35, MapScale::Maximum),
        // A peaky map (no blur) whose threshold is a fraction of its 99th percentile.
        (Method::Gradient, 0.0, 0.5, p99),
    ];
    let infer = |method, config: LocalizeConfig| {
        let net = FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .method(method)
            .localize(config)
            .build()
            .unwrap();
        net.infer(&photo, class).unwrap().best_box().copied()
    };
    for (i, (method, blur, threshold, scale)) in cases.into_iter().enumerate() {
        let results = dir.join(format!("{i}.jsonl"));
        let config = (LocalizeConfig::default())
            .with_blur_sigma(blur)
            .with_threshold(threshold)
            .with_scale(scale);
        evaluated_box(&csv, &results, method, &config);
        let inferred = infer(method, config);
        assert_eq!(
            inferred,
            Some(record_box(&results)),
            "{method} {scale}: infer and eval disagree"
        );
        if scale == p99 {
            let by_max = infer(method, config.with_scale(MapScale::Maximum));
            assert_ne!(inferred, by_max, "the percentile changes the box");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
