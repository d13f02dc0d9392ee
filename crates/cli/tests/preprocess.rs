//! Preprocessing and labels of a model no preset knows: flags, file metadata, inference from
//! 1001 outputs, and the settings line every command prints.

mod common;

use common::{feedbacknet, scratch_dir, shared};

use std::{
    path::{Path, PathBuf},
    process::Output,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The settings line of a run (stderr).
fn settings_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    stderr
        .lines()
        .find(|l| l.starts_with("model "))
        .unwrap_or_else(|| panic!("no settings line in: {stderr}"))
        .to_string()
}

/// `infer` with the gradient method on the dog photo; its JSON report.
fn infer(model: &Path, extra: &[&str], out: &Path) -> (Output, serde_json::Value) {
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let mut args = vec![
        "infer",
        "--model",
        model.to_str().unwrap(),
        "--image",
        photo.to_str().unwrap(),
        "--method",
        "gradient",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let run = feedbacknet(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let json = std::fs::read(out.join("darknet_dog.json")).unwrap();
    (run, serde_json::from_slice(&json).unwrap())
}

/// The top prediction's index and label.
fn top1(report: &serde_json::Value) -> (u64, String) {
    let class = &report["predictions"][0]["class"];
    (
        class["index"].as_u64().unwrap(),
        class["label"].as_str().unwrap().to_string(),
    )
}

/// MobileNet v1 under a file name no preset knows.
fn unknown_mobilenet(dir: &Path) -> PathBuf {
    let model = dir.join("my_classifier.onnx");
    std::fs::copy(shared().join("models/mobilenet_v1_0.25_128.onnx"), &model).unwrap();
    model
}

#[test]
fn flags_make_an_unknown_net_predict_as_its_preset() {
    let (_tmp, dir) = scratch_dir("flags");
    let preset_model = shared().join("models/mobilenet_v1_0.25_128.onnx");
    let (run, preset) = infer(&preset_model, &[], &dir.join("preset"));
    let line = settings_line(&run);
    assert!(
        line.starts_with("model mobilenet_v1_0.25_128.onnx: input 128x128 (from preset)"),
        "{line}"
    );
    assert!(line.contains("offset 1, from preset"), "{line}");
    let expected = top1(&preset);
    assert!(!expected.1.starts_with("class "), "{expected:?}");

    let model = unknown_mobilenet(&dir);
    let labels = shared().join("models/imagenet_labels_1001.txt");
    let flags = [
        "--normalize",
        "inception",
        "--input-size",
        "128",
        "--labels",
        labels.to_str().unwrap(),
    ];
    let (run, report) = infer(&model, &flags, &dir.join("flags"));
    assert_eq!(top1(&report), expected);
    let line = settings_line(&run);
    for part in [
        "model my_classifier.onnx: input 128x128 (given)",
        "normalize inception ([-1,1]) (given)",
        "resize stretch (default)",
        "outputs 1001 (background first: offset 1, inferred from 1001 outputs)",
        "classes 1000",
        "labels imagenet_labels_1001.txt (given, background line skipped)",
    ] {
        assert!(line.contains(part), "`{part}` not in: {line}");
    }
    // The JSON records the settings, and stdout names the class.
    let info = &report["model_info"];
    assert_eq!(info["normalize"], "inception");
    assert_eq!(info["class_offset"], 1);
    assert_eq!(info["class_offset_from"], "inferred");
    assert_eq!(info["labels_from"], "given");
    assert!(
        text(&run.stdout).contains(&expected.1),
        "{}",
        text(&run.stdout)
    );
}

#[test]
fn without_flags_the_offset_is_inferred_and_classes_are_numbered() {
    let (_tmp, dir) = scratch_dir("bare");
    let model = unknown_mobilenet(&dir);
    let (run, report) = infer(&model, &[], &dir.join("out"));
    let line = settings_line(&run);
    for part in [
        "input 128x128 (from the model)",
        "normalize imagenet (ImageNet mean/std) (default)",
        "background first: offset 1, inferred from 1001 outputs",
        "labels numbered (class 0..999) (default)",
    ] {
        assert!(line.contains(part), "`{part}` not in: {line}");
    }
    assert_eq!(report["model_info"]["classes"], 1000);
    assert!(top1(&report).1.starts_with("class "));
}

/// A `metadata_props` entry (`ModelProto` field 14) appended to a model file: protobuf merges
/// a repeated field written after the others.
fn metadata_entry(key: &str, value: &str) -> Vec<u8> {
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut entry = Vec::new();
    for (tag, s) in [(0x0a, key), (0x12, value)] {
        entry.push(tag);
        varint(s.len(), &mut entry);
        entry.extend(s.as_bytes());
    }
    let mut field = vec![0x72];
    varint(entry.len(), &mut field);
    field.extend(entry);
    field
}

#[test]
fn metadata_in_the_file_sets_what_no_flag_gives() {
    let (_tmp, dir) = scratch_dir("metadata");
    let expected = {
        let preset_model = shared().join("models/mobilenet_v1_0.25_128.onnx");
        top1(&infer(&preset_model, &[], &dir.join("preset")).1)
    };
    let model = dir.join("tagged.onnx");
    let mut bytes = std::fs::read(shared().join("models/mobilenet_v1_0.25_128.onnx")).unwrap();
    let labels = std::fs::read_to_string(shared().join("models/imagenet_labels_1001.txt")).unwrap();
    bytes.extend(metadata_entry("feedbacknet.normalize", "inception"));
    bytes.extend(metadata_entry("feedbacknet.input_size", "128"));
    bytes.extend(metadata_entry("feedbacknet.class_offset", "1"));
    bytes.extend(metadata_entry("feedbacknet.labels", &labels));
    std::fs::write(&model, bytes).unwrap();
    let (run, report) = infer(&model, &[], &dir.join("meta"));
    assert_eq!(top1(&report), expected);
    let line = settings_line(&run);
    for part in [
        "input 128x128 (from metadata)",
        "normalize inception ([-1,1]) (from metadata)",
        "offset 1, from metadata",
        "labels inline (from metadata, background line skipped)",
    ] {
        assert!(line.contains(part), "`{part}` not in: {line}");
    }
    // A flag wins over the metadata.
    let (run, _) = infer(&model, &["--normalize", "raw"], &dir.join("flag"));
    assert!(
        settings_line(&run).contains("normalize raw ([0,1]) (given)"),
        "{}",
        settings_line(&run)
    );
}

#[test]
fn bad_preprocessing_flags_fail_with_a_message() {
    let (_tmp, dir) = scratch_dir("bad");
    let model = unknown_mobilenet(&dir);
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--image",
            photo.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = feedbacknet(&args);
        assert!(!out.status.success(), "{extra:?} succeeded");
        text(&out.stderr)
    };
    let stderr = run(&["--normalize", "bgr"]);
    assert!(
        stderr.contains("imagenet, inception, caffe, raw"),
        "{stderr}"
    );
    let stderr = run(&["--input-size", "0"]);
    assert!(stderr.contains("must be positive"), "{stderr}");
    // 1000 labels for 1001 classes (offset 0): neither the classes nor one more.
    let labels = shared().join("models/imagenet_labels_1000.txt");
    let stderr = run(&["--class-offset", "0", "--labels", labels.to_str().unwrap()]);
    assert!(
        stderr.contains("1000 labels") && stderr.contains("1001 classes"),
        "{stderr}"
    );
}
