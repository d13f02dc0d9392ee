//! The `feedbacknet` binary end to end on shared photos.

mod common;

use common::{feedbacknet, scratch, shared};

/// ImageNet-1k has a zebra class but no giraffe: the giraffe of `darknet_giraffe.jpg` is shown
/// through its closest ImageNet classes (SqueezeNet's top-5 there includes ibex).
#[test]
fn compare_writes_one_panel_for_zebra_and_the_giraffe() {
    let (_tmp, dir) = scratch("compare");
    let panel = dir.join("giraffe.png");
    let photo = shared().join("data/demo/darknet_giraffe.jpg");
    let out = feedbacknet(&[
        "compare",
        "--image",
        photo.to_str().unwrap(),
        "--class",
        "zebra",
        "--class",
        "ibex",
        "--iterations",
        "5",
        "--out",
        panel.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pngs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .collect();
    assert_eq!(pngs.len(), 1);
    let picture = image::open(&panel).unwrap();
    // Two rows (zebra, giraffe) and three columns (photo, gradient, feedback).
    let source = image::open(&photo).unwrap();
    let tile_w = (240.0 * source.width() as f64 / source.height() as f64).round() as u32;
    assert_eq!(picture.width(), 3 * tile_w);
    assert_eq!(picture.height(), 2 * (240 + 22));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(panel.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["methods"], serde_json::json!(["gradient", "feedback"]));
    assert_eq!(json["results"][1][0]["class"]["label"], "zebra");
    assert_eq!(json["results"][1][1]["class"]["label"], "ibex");
    // Two classes of one image: the discriminative solver setting, and a note that says so.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "2 classes of one image: soft feedback uses the log-softmax with lambda 0.01"
        ),
        "{stderr}"
    );
}

/// The JSON of `stability --count 1` with `args`, run in a scratch folder named `name`.
fn stability_json(name: &str, args: &[&str]) -> serde_json::Value {
    let (_tmp, dir) = scratch(name);
    let json_path = dir.join("stability.json");
    let json_arg = ["--json", json_path.to_str().unwrap()];
    let out = feedbacknet(&[&["stability", "--count", "1"], args, &json_arg].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap()
}

/// `stability` on one dev image: Grad-CAM's map and box do not move under one grey level of
/// noise, while the plain gradient's map does move; the JSON holds the table, the records and
/// each method's box settings.
#[test]
fn stability_measures_how_far_maps_and_boxes_move() {
    let json = stability_json(
        "stability",
        &[
            "--method",
            "gradcam,gradient",
            "--grey",
            "1",
            "--input-noise",
            "1e-6",
            "--against",
            "flex",
            "--refine",
            "colour-trilinear",
        ],
    );
    assert_eq!(json["against"], "flex");
    let rows = json["rows"].as_array().unwrap();
    let row = |method: &str, kind: &str| {
        rows.iter()
            .find(|r| r["method"] == method && r["perturbation"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no {method} {kind} row in {rows:?}"))
    };
    let cam = row("gradcam", "grey");
    assert!(cam["mean_correlation"].as_f64().unwrap() > 0.99, "{cam}");
    assert_eq!(cam["boxes_kept"], 1.0);
    let gradient = row("gradient", "grey");
    assert!(
        gradient["mean_correlation"].as_f64().unwrap() < 0.99,
        "{gradient}"
    );
    assert!(
        row("gradient", "input")["mean_correlation"]
            .as_f64()
            .unwrap()
            > 0.95
    );
    // The same image on a second net of the same backend: the maps are a deterministic
    // function of the input, so they and their boxes agree exactly.
    for method in ["gradcam", "gradient"] {
        let same = row(method, "other-backend");
        assert_eq!(same["min_correlation"], 1.0, "{same}");
        assert_eq!(same["boxes_kept"], 1.0, "{same}");
    }
    assert_eq!(json["records"].as_array().unwrap().len(), 6);
    // `--refine` replaces each method's own refinement, and the JSON says what was drawn.
    let settings = json["box_settings"].as_array().unwrap();
    let methods: Vec<_> = settings.iter().map(|s| s["method"].clone()).collect();
    assert_eq!(methods, ["gradcam", "gradient"]);
    for s in settings {
        assert_eq!(s["settings"]["refine"]["binning"], "trilinear", "{s}");
    }
}

/// `--input-noise` with no value measures no input noise: only the grey-level records remain.
#[test]
fn stability_without_input_noise() {
    let json = stability_json(
        "stability_no_input_noise",
        &["--method", "gradcam", "--input-noise"],
    );
    let kinds: Vec<_> = (json["records"].as_array().unwrap().iter())
        .map(|r| r["perturbation"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["grey"]);
}

/// `--against` a backend this build lacks is a usage error naming the feature, before any
/// image is explained.
#[test]
fn stability_against_a_backend_not_compiled_in_is_refused() {
    let out = feedbacknet(&["stability", "--count", "1", "--against", "cuda"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not compiled in") && err.contains("cuda"),
        "{err}"
    );
    assert!(!err.contains("[1/1]"), "{err}");
}

#[test]
fn compare_with_a_label_the_net_lacks_fails_and_writes_nothing() {
    let (_tmp, dir) = scratch("compare-giraffe");
    let panel = dir.join("giraffe.png");
    let photo = shared().join("data/demo/darknet_giraffe.jpg");
    let out = feedbacknet(&[
        "compare",
        "--image",
        photo.to_str().unwrap(),
        "--class",
        "zebra",
        "--class",
        "giraffe",
        "--out",
        panel.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown class label `giraffe`"), "{stderr}");
    assert!(!panel.exists());
}

#[test]
fn visualize_writes_a_class_image() {
    let (_tmp, dir) = scratch("visualize");
    let path = dir.join("flamingo.png");
    let out = feedbacknet(&[
        "visualize",
        "--class",
        "flamingo",
        "--steps",
        "20",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let picture = image::open(&path).unwrap();
    assert_eq!((picture.width(), picture.height()), (224, 224));
    // SqueezeNet's flamingo logit is exactly 0 at the mean image: the default initial noise
    // lets the ascent start, and the logit rises.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logits: Vec<f32> = stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (start, end) = (logits[1], logits[2]);
    assert!(end > start + 20.0, "{stdout}");
}

#[test]
fn a_bad_method_or_class_fails_with_a_message() {
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let out = feedbacknet(&[
        "infer",
        "--image",
        photo.to_str().unwrap(),
        "--method",
        "magic",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown method"));
    let out = feedbacknet(&[
        "infer",
        "--image",
        photo.to_str().unwrap(),
        "--class",
        "1000",
        "--out",
        scratch("bad").1.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("out of range"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--top-k` above the net's classes is refused at once, with a message and a failing status.
#[test]
fn infer_refuses_a_top_k_above_the_class_count() {
    let (_tmp, dir) = scratch("top-k");
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let started = std::time::Instant::now();
    let out = feedbacknet(&[
        "infer",
        "--image",
        photo.to_str().unwrap(),
        "--top-k",
        "2000",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("top-k 2000 is more than the net's 1000 classes"),
        "{stderr}"
    );
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert!(!dir.exists());
}

/// The soft solver's step size and momentum are flags; a momentum outside [0, 1) is refused
/// with the setting named, before any image is read.
#[test]
fn a_momentum_outside_its_range_is_refused() {
    let (_tmp, dir) = scratch("momentum");
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let out = feedbacknet(&[
        "infer",
        "--image",
        photo.to_str().unwrap(),
        "--method",
        "feedback",
        "--momentum",
        "1.5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("momentum"), "{stderr}");
    assert!(!dir.join("darknet_dog.json").exists());
}

/// `--map-scale` takes `max` or a percentile in (0, 100]; anything else is refused by name
/// before any image is read, and a percentile is named in the box line.
#[test]
fn a_map_scale_outside_its_range_is_refused() {
    let (_tmp, dir) = scratch("map-scale");
    let photo = shared().join("data/demo/darknet_dog.jpg");
    let infer = |scale: &str| {
        feedbacknet(&[
            "infer",
            "--image",
            photo.to_str().unwrap(),
            "--method",
            "gradcam",
            "--map-scale",
            scale,
            "--out",
            dir.to_str().unwrap(),
        ])
    };
    for bad in ["p0", "p101", "median"] {
        let out = infer(bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {stderr}");
        assert!(stderr.contains("--map-scale"), "{bad}: {stderr}");
        assert!(!dir.join("darknet_dog.json").exists());
    }
    let out = infer("p99");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" of the p99 scale"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--gate-sites attention-heads` on the ViT fixture: soft feedback runs with one gate per
/// head beside the GELUs' (4 sites instead of 2), and the JSON says which placement was used.
#[test]
fn attention_head_gates_from_the_command_line() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/modern/vit_op17.onnx"
    );
    let photo = shared().join("data/demo/darknet_dog.jpg");
    for (sites, count) in [("activations", 2), ("attention-heads", 4)] {
        let (_tmp, dir) = scratch(&format!("heads_{sites}"));
        let out = feedbacknet(&[
            "infer",
            "--model",
            model,
            "--image",
            photo.to_str().unwrap(),
            "--method",
            "feedback",
            "--iterations",
            "3",
            "--gate-sites",
            sites,
            "--out",
            dir.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{sites}: {stderr}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("darknet_dog.json")).unwrap()).unwrap();
        assert_eq!(json["gate_sites"], count, "{sites}");
        assert_eq!(json["model_info"]["gate_placement"], sites, "{sites}");
        let logit = &json["results"][0]["logit_after"];
        assert!(
            logit.as_f64().is_some_and(f64::is_finite),
            "{sites}: {json}"
        );
    }
}
