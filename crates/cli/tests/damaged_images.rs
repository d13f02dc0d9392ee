//! The image decoding flags end to end: a JPEG cut to a third of its length (made at test
//! time from a shared photo) is refused by `infer` and `eval` unless `--accept-damaged-images`
//! is given, and then it is warned about on stderr and in the JSON; `--max-image-width`
//! refuses a photo over the limit.

mod common;

use common::{feedbacknet, scratch_dir, shared};

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first third of `source` written to `dir/name`.
fn cut_to_a_third(source: &Path, dir: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(source).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    path
}

fn infer(image: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "infer",
        "--image",
        s(image),
        "--method",
        "gradient",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    feedbacknet(&args)
}

#[test]
fn infer_refuses_a_truncated_jpeg_unless_asked_and_then_warns() {
    let (_tmp, dir) = scratch_dir("infer");
    let photo = shared().join("data/imagenet-val/images/ILSVRC2012_val_00000361.JPEG");
    let cut = cut_to_a_third(&photo, &dir, "cut.jpg");
    let out = infer(&cut, &dir.join("refused"), &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("damaged image") && err.contains("truncated"),
        "{err}"
    );
    assert!(err.contains("--accept-damaged-images"), "{err}");
    assert!(!dir.join("refused/cut.json").exists());

    let out = infer(&cut, &dir.join("accepted"), &["--accept-damaged-images"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("truncated"),
        "{err}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("accepted/cut.json")).unwrap()).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings[0].as_str().unwrap().contains("truncated"),
        "{warnings:?}"
    );

    // A whole photo has no `warnings` key; a photo over the width limit is refused.
    let out = infer(&photo, &dir.join("whole"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stem = photo.file_stem().unwrap().to_str().unwrap();
    let report: Value = serde_json::from_slice(
        &std::fs::read(dir.join("whole").join(format!("{stem}.json"))).unwrap(),
    )
    .unwrap();
    assert!(report.get("warnings").is_none());
    let out = infer(&photo, &dir.join("large"), &["--max-image-width", "200"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("exceeds the decoding limits") && err.contains("227x227"),
        "{err}"
    );
}

#[test]
fn eval_fails_a_truncated_image_unless_asked_and_then_records_the_warning() {
    let (_tmp, dir) = scratch_dir("eval");
    let photo = shared().join("data/imagenet-val/images/ILSVRC2012_val_00000361.JPEG");
    cut_to_a_third(&photo, &dir, "cut.JPEG");
    let csv = dir.join("boxes.csv");
    std::fs::write(
        &csv,
        "image,class_idx,wnid,img_w,img_h,x0,y0,x1,y1\ncut.JPEG,300,n02165105,227,227,37,52,190,202\n",
    )
    .unwrap();
    let eval = |results: &Path, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--method",
            "gradcam",
            "--sweep",
            "0",
            "--data",
            s(&csv),
            "--results",
            s(results),
        ];
        args.extend_from_slice(extra);
        feedbacknet(&args)
    };
    let refused = dir.join("refused.jsonl");
    let out = eval(&refused, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&refused).unwrap()).unwrap();
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("damaged image") && error.contains("truncated"),
        "{error}"
    );

    let accepted = dir.join("accepted.jsonl");
    let out = eval(&accepted, &["--accept-damaged-images"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: ") && err.contains("truncated"),
        "{err}"
    );
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&accepted).unwrap()).unwrap();
    assert!(record.get("error").is_none(), "{record}");
    assert!(
        record["warnings"][0]
            .as_str()
            .unwrap()
            .contains("truncated")
    );
}
