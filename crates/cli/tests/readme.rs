//! The README's main command: a photo with a cat and a dog, each class explained at the
//! defaults, and each class's box on its own animal.

mod common;

use common::{feedbacknet, scratch, shared};

use serde_json::Value;

/// Hand-drawn boxes of the two animals of `ramprs_cat_dog.jpg` (640x480), `[x0, y0, x1, y1]`:
/// the lying tabby and the sitting bulldog. They overlap where the dog's paws meet the cat.
const CAT: [f64; 4] = [125.0, 255.0, 570.0, 478.0];
const DOG: [f64; 4] = [220.0, 25.0, 475.0, 318.0];

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

#[test]
fn the_main_command_boxes_each_class_on_its_own_animal() {
    let (_tmp, dir) = scratch("readme");
    let photo = shared().join("data/demo/ramprs_cat_dog.jpg");
    // As in the README, but for the folders.
    let out = feedbacknet(&[
        "infer",
        "--image",
        photo.to_str().unwrap(),
        "--class",
        "tiger cat",
        "--class",
        "bull mastiff",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ramprs_cat_dog.json")).unwrap()).unwrap();
    assert_eq!(report["method"], "feedback-cam", "the default method");
    let best = |i: usize| -> [f64; 4] {
        let b = &report["results"][i]["boxes"][0];
        ["x0", "y0", "x1", "y1"].map(|k| b[k].as_f64().unwrap())
    };
    for (i, label, own, other) in [(0, "tiger cat", CAT, DOG), (1, "bull mastiff", DOG, CAT)] {
        assert_eq!(report["results"][i]["class"]["label"], label);
        let found = best(i);
        let (on_own, on_other) = (iou(found, own), iou(found, other));
        assert!(
            on_own >= 0.3 && on_own > on_other,
            "{label}: box {found:?}, IoU {on_own:.2} with its animal, {on_other:.2} with the other"
        );
    }
    for name in [
        "ramprs_cat_dog_282_tiger_cat.png",
        "ramprs_cat_dog_243_bull_mastiff.png",
    ] {
        assert!(dir.join(name).is_file(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
