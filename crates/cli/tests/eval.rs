//! `feedbacknet eval` and `feedbacknet merge` end to end on shared dev images.

mod common;

use common::{feedbacknet, scratch_dir, shared};

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `boxes.csv` with the rows of the first `images` dev images (their images stay in
/// ../shared).
fn small_csv(dir: &Path, images: usize) -> PathBuf {
    let text = std::fs::read_to_string(shared().join("data/imagenet-val/boxes.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_string()];
    let mut seen = Vec::new();
    for line in lines {
        let image = line.split(',').next().unwrap().to_string();
        if !seen.contains(&image) {
            if seen.len() == images {
                break;
            }
            seen.push(image);
        }
        out.push(line.to_string());
    }
    let path = dir.join("boxes.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a gradient eval of `csv`, with extra flags, into `results`.
fn eval(csv: &Path, results: &Path, extra: &[&str]) -> Output {
    let images = shared().join("data/imagenet-val");
    let mut args = vec![
        "eval",
        "--method",
        "gradient",
        "--data",
        s(csv),
        "--images",
        s(&images),
        "--results",
        s(results),
    ];
    args.extend_from_slice(extra);
    feedbacknet(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn eval_writes_records_summary_and_report() {
    let (_tmp, dir) = scratch_dir("full");
    let csv = small_csv(&dir, 5);
    let (results, summary, report) = (dir.join("r.jsonl"), dir.join("s.json"), dir.join("r.html"));
    let out = eval(
        &csv,
        &results,
        &[
            "--json",
            s(&summary),
            "--report",
            s(&report),
            "--gallery",
            "1",
        ],
    );
    ok(&out);
    assert_eq!(lines(&results), 5);
    let j = json(&summary);
    assert_eq!(j["summary"]["images"], 5);
    assert_eq!(j["summary"]["failed"], 0);
    assert_eq!(j["config"]["method"], "gradient");
    assert_eq!(j["model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(j["timings"]["images"], 5);
    let gt_known = j["summary"]["gt_known_loc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&gt_known));
    assert_eq!(j["summary"]["maxbox"].as_array().unwrap().len(), 3);
    let html = std::fs::read_to_string(&report).unwrap();
    // One best and one worst image, embedded.
    assert_eq!(html.matches("data:image/png;base64,").count(), 2);
    assert!(html.contains("GT-known"));

    // A second run refuses to touch the records without --resume or --overwrite.
    let again = eval(&csv, &results, &[]);
    assert!(!again.status.success());
    assert_eq!(lines(&results), 5, "the records are kept");
}

#[test]
fn resumed_and_sharded_runs_equal_the_single_run() {
    let (_tmp, dir) = scratch_dir("shards");
    let csv = small_csv(&dir, 6);
    let single = dir.join("single.jsonl");
    ok(&eval(&csv, &single, &[]));
    let merged_summary = |inputs: &[&Path], name: &str| {
        let path = dir.join(name);
        let mut args = vec!["merge"];
        args.extend(inputs.iter().map(|p| s(p)));
        args.extend(["--json", s(&path)]);
        ok(&feedbacknet(&args));
        json(&path)["summary"].clone()
    };
    let reference = merged_summary(&[&single], "single.json");
    assert_eq!(reference["images"], 6);

    // Stopped after 2 images, then resumed.
    let resumed = dir.join("resumed.jsonl");
    ok(&eval(&csv, &resumed, &["--limit", "2"]));
    assert_eq!(lines(&resumed), 2);
    let out = eval(&csv, &resumed, &["--resume"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 skipped"));
    assert_eq!(lines(&resumed), 6);
    assert_eq!(merged_summary(&[&resumed], "resumed.json"), reference);

    // Three shards, merged.
    let shards: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("s{i}.jsonl"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        ok(&eval(&csv, shard, &["--shard", &format!("{}/3", i + 1)]));
        assert_eq!(lines(shard), 2);
    }
    let refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    assert_eq!(merged_summary(&refs, "merged.json"), reference);
}

#[test]
fn eval_refines_masks_with_the_image_colours_on_request() {
    let (_tmp, dir) = scratch_dir("refine");
    let csv = small_csv(&dir, 4);
    let run = |name: &str, refine: &str| -> Value {
        let (results, summary) = (
            dir.join(format!("{name}.jsonl")),
            dir.join(format!("{name}.json")),
        );
        ok(&eval(
            &csv,
            &results,
            &["--refine", refine, "--json", s(&summary), "--sweep", "0.1"],
        ));
        json(&summary)
    };
    let (plain, refined) = (run("plain", "none"), run("refined", "colour"));
    assert_eq!(plain["config"]["refine"], "none");
    assert_eq!(refined["config"]["refine"], "colour");
    assert_eq!(refined["summary"]["images"], 4);
    assert_eq!(refined["summary"]["failed"], 0);
    // The same maps, other boxes.
    let iou = |j: &Value| j["summary"]["mean_iou"].as_f64().unwrap();
    assert_ne!(iou(&plain), iou(&refined));
    assert!((0.0..=1.0).contains(&iou(&refined)));
    // GrabCut is the other colour model of the same flag.
    let grabcut = run("grabcut", "grabcut");
    assert_eq!(grabcut["config"]["refine"], "grabcut");
    assert_eq!(grabcut["summary"]["images"], 4);
    assert_eq!(grabcut["summary"]["failed"], 0);
    assert_ne!(iou(&plain), iou(&grabcut));
    assert!((0.0..=1.0).contains(&iou(&grabcut)));
}

#[test]
fn a_missing_data_set_is_an_error() {
    let (_tmp, dir) = scratch_dir("missing");
    let out = eval(&dir.join("nothing.csv"), &dir.join("r.jsonl"), &[]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

/// `tune` on `csv` (images from the shared dev set) with a 2x2 grid of blurs and thresholds
/// and a 2-iteration solver; its JSON.
fn tune_json(dir: &Path, csv: &Path, name: &str, extra: &[&str]) -> Value {
    let path = dir.join(name);
    let images = shared().join("data/imagenet-val");
    let mut args = vec![
        "tune",
        "--data",
        s(csv),
        "--images",
        s(&images),
        "--iterations",
        "2",
        "--blurs",
        "0,8",
        "--thresholds",
        "0.1,0.3",
        "--json",
        s(&path),
    ];
    args.extend_from_slice(extra);
    ok(&feedbacknet(&args));
    json(&path)
}

#[test]
fn tune_chooses_the_fusion_setting_from_one_solve_per_image() {
    let (_tmp, dir) = scratch_dir("tune-fusion");
    let csv = small_csv(&dir, 6);
    let grid = tune_json(
        &dir,
        &csv,
        "grid.json",
        &[
            "--method",
            "feedback-cam",
            "--cam-weights",
            "0.3,0.7",
            "--feedback-blurs",
            "4,10",
        ],
    );
    // 2 weights x 2 feedback blurs x 2 blurs x 2 thresholds per half.
    let points = grid["grid"][0][1].as_array().unwrap();
    assert_eq!(points.len(), 16);
    // Every image is also reported at SqueezeNet's own (tuned) fusion.
    let own =
        feedbacknet::BoxSettings::tuned(Some("squeezenet1.1"), feedbacknet::Method::FeedbackCam)
            .feedback_cam
            .fusion;
    let tuned = (own.rule.cam_weight(), own.fine_blur_sigma);
    let given = &grid["at_given_settings"];
    let as_f32 = |v: &Value| v.as_f64().map(|x| x as f32);
    assert_eq!(
        (
            as_f32(&given["cam_weight"]),
            as_f32(&given["feedback_blur"])
        ),
        (Some(tuned.0), Some(tuned.1))
    );
    let fold = &grid["folds"][0];
    let (w, b) = (
        fold["cam_weight"].as_f64().unwrap(),
        fold["feedback_blur"].as_f64().unwrap(),
    );
    assert!(
        [0.3f32, 0.7].contains(&(w as f32)) && [4.0, 10.0].contains(&b),
        "{w} {b}"
    );
    // Each fusion setting scores exactly as a run with that setting alone (one of the grid's
    // that is not the tuned one).
    let (w, b) = if tuned == (0.7, 4.0) {
        (0.3, 10.0)
    } else {
        (0.7, 4.0)
    };
    let alone = tune_json(
        &dir,
        &csv,
        "alone.json",
        &[
            "--method",
            "feedback-cam",
            "--cam-weight",
            &w.to_string(),
            "--feedback-blur",
            &b.to_string(),
        ],
    );
    let alone_points = alone["grid"][0][1].as_array().unwrap();
    let of_setting: Vec<&Value> = points
        .iter()
        .filter(|p| p["cam_weight"] == w && p["feedback_blur"] == b)
        .collect();
    assert_eq!(of_setting.len(), alone_points.len());
    for (p, q) in of_setting.iter().zip(alone_points) {
        assert_eq!(p["gt_known_loc"], q["gt_known_loc"]);
    }
    // The settings differ in what they find (the grid is not one map four times).
    let alone_given = alone["at_given_settings"]["reported"].clone();
    assert_ne!(alone_given["mean_iou"], given["reported"]["mean_iou"]);
    let bad = feedbacknet(&["tune", "--method", "feedback-cam", "--cam-weights", "1.5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cam-weights"));
}

#[test]
fn tune_reports_the_other_half_exactly_as_eval_scores_it() {
    let (_tmp, dir) = scratch_dir("tune");
    let csv = small_csv(&dir, 8);
    let t = tune_json(&dir, &csv, "tune.json", &["--method", "gradient"]);
    assert_eq!(t["images"], 8);
    let folds = t["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    // Tuned on the even half, reported on the odd one: the odd images are eval's shard 2/2.
    let fold = &folds[0];
    assert_eq!(
        (fold["tuned_on"].as_str(), fold["reported_on"].as_str()),
        (Some("even"), Some("odd"))
    );
    let (blur, threshold) = (
        fold["blur"].as_f64().unwrap(),
        fold["threshold"].as_f64().unwrap(),
    );
    assert!([0.0, 8.0].contains(&blur) && [0.1f32, 0.3].contains(&(threshold as f32)));
    let grid = t["grid"][0][1].as_array().unwrap();
    assert_eq!(grid.len(), 4);
    let best = grid
        .iter()
        .map(|p| p["gt_known_loc"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(fold["tuned_gt_known_loc"].as_f64().unwrap(), best);

    let (results, summary) = (dir.join("odd.jsonl"), dir.join("odd.json"));
    let blur_arg = format!("{blur}");
    let threshold_arg = format!("{}", threshold as f32);
    ok(&eval(
        &csv,
        &results,
        &[
            "--shard",
            "2/2",
            "--blur",
            &blur_arg,
            "--threshold",
            &threshold_arg,
            "--json",
            s(&summary),
        ],
    ));
    let e = json(&summary)["summary"].clone();
    assert_eq!(e["images"], 4);
    for metric in [
        "gt_known_loc",
        "maxbox_acc_v2",
        "top1_loc",
        "mean_iou",
        "pointing_game",
    ] {
        assert_eq!(fold["reported"][metric], e[metric], "{metric}");
    }
    // All images at the given (default) settings: what a plain eval reports.
    let (all, all_summary) = (dir.join("all.jsonl"), dir.join("all.json"));
    ok(&eval(&csv, &all, &["--json", s(&all_summary)]));
    let e = json(&all_summary)["summary"].clone();
    assert_eq!(t["at_given_settings"]["reported"], e);

    // Several methods on one pass: a list, one entry per method, each as its own run.
    let both = tune_json(&dir, &csv, "both.json", &["--method", "gradcam,gradient"]);
    let list = both.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["method"], "gradcam");
    assert_eq!(list[1]["method"], "gradient");
    for key in ["grid", "folds", "at_given_settings", "images"] {
        assert_eq!(list[1][key], t[key], "{key}");
    }
    assert_ne!(list[0]["grid"], t["grid"]);

    // Colour refinement (any model or binning) is one more grid dimension; the plain points are the plain run's.
    let refined = tune_json(
        &dir,
        &csv,
        "refined.json",
        &[
            "--method",
            "gradient",
            "--refine",
            "none,colour,colour-trilinear,grabcut",
        ],
    );
    let points = refined["grid"][0][1].as_array().unwrap();
    assert_eq!(points.len(), 16);
    let of = |kind: &str| -> Vec<Value> {
        points
            .iter()
            .filter(|p| p["refine"] == kind)
            .map(|p| p["gt_known_loc"].clone())
            .collect()
    };
    let plain: Vec<Value> = grid.iter().map(|p| p["gt_known_loc"].clone()).collect();
    assert_eq!(of("none"), plain);
    assert_eq!(of("colour").len(), 4);
    assert_eq!(of("grabcut").len(), 4);
    assert_eq!(of("colour-trilinear").len(), 4);
    // Every image is also reported at the method's own (tuned) setting, refinement included.
    let own = feedbacknet::BoxSettings::tuned(Some("squeezenet1.1"), feedbacknet::Method::Gradient);
    let given = &refined["at_given_settings"];
    let expected = if own.refine.is_some() {
        "colour"
    } else {
        "none"
    };
    assert_eq!(given["refine"], expected);
    let as_f32 = |v: &Value| v.as_f64().map(|x| x as f32);
    assert_eq!(as_f32(&given["blur"]), Some(own.localize.blur_sigma));
    assert_eq!(as_f32(&given["threshold"]), Some(own.localize.threshold));
}

/// `--shard auto` takes the shard from a Slurm array starting at 100, prints it and records it;
/// without any scheduler variable it is an error naming them.
#[test]
fn shard_auto_reads_the_scheduler_environment() {
    let (_tmp, dir) = scratch_dir("shard-auto");
    let csv = small_csv(&dir, 4);
    let (results, summary) = (dir.join("r.jsonl"), dir.join("s.json"));
    let images = shared().join("data/imagenet-val");
    let args = [
        "eval",
        "--method",
        "gradient",
        "--data",
        s(&csv),
        "--images",
        s(&images),
        "--results",
        s(&results),
        "--json",
        s(&summary),
        "--shard",
        "auto",
    ];
    let scheduler_vars = [
        "FEEDBACKNET_SHARD_INDEX",
        "FEEDBACKNET_SHARD_COUNT",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
    ];
    let run = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_feedbacknet"));
        command
            .args(args)
            .env("FEEDBACKNET_MODELS", shared().join("models"));
        for name in scheduler_vars {
            command.env_remove(name);
        }
        command.envs(vars.iter().copied());
        command.output().expect("the binary runs")
    };
    let out = run(&[
        ("SLURM_ARRAY_TASK_ID", "101"),
        ("SLURM_ARRAY_TASK_MIN", "100"),
        ("SLURM_ARRAY_TASK_MAX", "101"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
    ]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--shard auto: shard 2/2 from the Slurm job array"),
        "{stderr}"
    );
    assert_eq!(lines(&results), 2);
    let config = &json(&summary)["config"];
    assert_eq!(config["shard"], "2/2");
    assert_eq!(config["shard_auto"]["source"], "slurm");
    assert_eq!(
        config["shard_auto"]["variables"]["SLURM_ARRAY_TASK_ID"],
        "101"
    );

    let none = run(&[]);
    assert!(!none.status.success());
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no scheduler shard") && stderr.contains("SLURM_ARRAY_TASK_ID unset"),
        "{stderr}"
    );
}

/// Whether two JSON values are equal, numbers up to `tolerance` (batched convolutions may
/// round differently from one-image ones).
fn close(a: &Value, b: &Value, tolerance: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tolerance
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y, tolerance))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| close(v, w, tolerance)))
        }
        _ => a == b,
    }
}

/// The records of a results file, in file order, without their times.
fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            record.as_object_mut().unwrap().remove("time_ms");
            record
        })
        .collect()
}

#[test]
fn batches_of_images_give_the_records_of_one_image_per_call() {
    let (_tmp, dir) = scratch_dir("batch");
    let csv = small_csv(&dir, 6);
    let one = dir.join("one.jsonl");
    ok(&eval(&csv, &one, &["--workers", "1", "--top-k", "2"]));
    let four = dir.join("four.jsonl");
    let summary = dir.join("four.json");
    let flags = [
        "--workers",
        "1",
        "--top-k",
        "2",
        "--batch",
        "4",
        "--max-batch",
        "12",
        "--json",
    ];
    let mut args = flags.to_vec();
    args.push(s(&summary));
    ok(&eval(&csv, &four, &args));
    let (a, b) = (records(&one), records(&four));
    assert_eq!(a.len(), 6);
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert!(close(a, b, 1e-4), "{a}\n{b}");
    }
    assert_eq!(json(&summary)["config"]["batch"], 4);
    let refused = eval(&csv, &dir.join("zero.jsonl"), &["--batch", "0"]);
    assert!(!refused.status.success());
}

/// `tune --stable-boxes`: each image is also explained under ±3 grey levels of noise; every
/// grid point and fold reports its box stability, and the choice keeps the floor (or, if no
/// point reaches it, takes the most stable).
#[test]
fn tune_with_a_box_stability_floor() {
    let (_tmp, dir) = scratch_dir("tune-stable");
    let csv = small_csv(&dir, 6);
    let extra = ["--method", "gradient", "--stable-boxes", "1", "--grey", "3"];
    let t = tune_json(&dir, &csv, "stable.json", &extra);
    assert_eq!(t["settings"]["stable_boxes"]["floor"], 1.0);
    assert_eq!(t["settings"]["stable_boxes"]["grey"], 3);
    for (half, fold) in t["grid"]
        .as_array()
        .unwrap()
        .iter()
        .zip(t["folds"].as_array().unwrap())
    {
        let points = half[1].as_array().unwrap();
        let stability = |p: &serde_json::Value| p["box_stability"].as_f64().unwrap();
        assert!(points.iter().all(|p| (0.0..=1.0).contains(&stability(p))));
        let chosen = fold["tuned_box_stability"].as_f64().unwrap();
        let most = points.iter().map(stability).fold(0.0, f64::max);
        let tuned = fold["tuned_gt_known_loc"].as_f64().unwrap();
        if most >= 1.0 {
            assert_eq!(chosen, 1.0);
            let best_stable = (points.iter())
                .filter(|p| stability(p) >= 1.0)
                .map(|p| p["gt_known_loc"].as_f64().unwrap())
                .fold(0.0, f64::max);
            assert_eq!(tuned, best_stable);
        } else {
            assert_eq!(chosen, most);
        }
        let reported = fold["reported_box_stability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&reported));
    }
    let bad = feedbacknet(&["tune", "--method", "gradient", "--stable-boxes", "1.5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("stable-boxes"));
}
