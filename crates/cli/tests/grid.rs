//! `feedbacknet grid` end to end: SqueezeNet, one 2x2 mosaic of dev images, the gradient.

mod common;

use common::{feedbacknet, scratch_dir, shared};

use serde_json::Value;

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn grid_scores_a_mosaic_and_repeats_it_from_its_manifest() {
    let (_tmp, dir) = scratch_dir("grid");
    let (manifest, first, again, report) = (
        dir.join("manifest.json"),
        dir.join("first.json"),
        dir.join("again.json"),
        dir.join("grid.html"),
    );
    let data = shared().join("data/imagenet-val");
    let base = [
        "grid",
        "--model",
        "squeezenet1.1",
        "--data",
        data.to_str().unwrap(),
        "--method",
        "gradient",
        "--n",
        "2",
        "--mosaics",
        "1",
        "--seed",
        "3",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        let out = feedbacknet(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "--manifest",
        manifest.to_str().unwrap(),
        "--json",
        first.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    run(&[
        "--from-manifest",
        manifest.to_str().unwrap(),
        "--json",
        again.to_str().unwrap(),
    ]);

    let m = read(&manifest);
    let cells = m["mosaics"][0]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let mut classes: Vec<u64> = cells.iter().map(|c| c["class"].as_u64().unwrap()).collect();
    classes.sort_unstable();
    classes.dedup();
    assert_eq!(classes.len(), 4, "distinct classes");
    assert!(
        cells
            .iter()
            .all(|c| c["confidence"].as_f64().unwrap() >= 0.5)
    );
    assert_eq!(
        cells[3]["rect"]["x"], 224,
        "cells at SqueezeNet's input size"
    );

    let (a, b) = (read(&first), read(&again));
    let summary = &a["methods"][0]["summary"];
    assert_eq!(summary["cells"], 4);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["chance"], 0.25);
    assert!(
        summary["mass_share"].as_f64().unwrap() > 0.25,
        "a class's gradient puts more than chance of its mass in its own cell: {summary}"
    );
    assert_eq!(a["config"]["mosaic_size"], serde_json::json!([448, 448]));
    assert_eq!(a["methods"], b["methods"], "the manifest repeats the run");
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("Grid pointing game") && page.matches("<figure>").count() == 4);

    // Each cell's box refined with the mosaic's colours, and unrefined: the same maps (mass and
    // peak), every cell scored both ways, and other boxes.
    let (refined, plain) = (dir.join("refined.json"), dir.join("plain.json"));
    for (path, refine) in [(&refined, "colour"), (&plain, "none")] {
        run(&[
            "--from-manifest",
            manifest.to_str().unwrap(),
            "--refine",
            refine,
            "--json",
            path.to_str().unwrap(),
        ]);
    }
    let (r, p) = (read(&refined), read(&plain));
    let cells = |v: &Value| v["methods"][0]["cells"].as_array().unwrap().clone();
    let (rc, pc) = (cells(&r), cells(&p));
    assert_eq!(rc.len(), 4);
    assert!(rc.iter().chain(&pc).all(|c| c["error"].is_null()));
    for (x, y) in rc.iter().zip(&pc) {
        assert_eq!(x["mass_share"], y["mass_share"]);
        assert_eq!(x["peak_in_cell"], y["peak_in_cell"]);
    }
    assert!(
        rc.iter().zip(&pc).any(|(x, y)| x["iou"] != y["iou"]),
        "the refinement moved no box"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
