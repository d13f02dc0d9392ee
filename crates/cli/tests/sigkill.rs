//! Durable evaluation: a real `feedbacknet eval` process killed with SIGKILL at seeded
//! pseudo-random moments (before the model has loaded, right after a record is written,
//! anywhere in the run), its results file sometimes cut inside its last line as a write
//! interrupted half-way would leave it, then resumed until done, ends with exactly the records
//! and summary of an uninterrupted run: every image once, none lost, none counted twice.
//!
//! The seed is `FEEDBACKNET_SIGKILL_SEED` (a number), fixed by default; a failure names it.

#![cfg(unix)]

mod common;

use common::{scratch_dir, shared};
use std::{
    collections::BTreeMap,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// Real images in the test's data set (one of them given class 99999); with the missing one,
/// 12 images in all: enough that every planned kill lands before the run ends, however fast
/// the machine (each kill but the first waits for at least one new record).
const REAL_IMAGES: usize = 11;

/// A `boxes.csv` over the first dev images, with two that fail: a missing file (third in
/// data set order) and a real image given class 99999 (sixth).
fn csv_with_failures(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(shared().join("data/imagenet-val/boxes.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_string()];
    let mut images: Vec<String> = Vec::new();
    for line in lines {
        let image = line.split(',').next().unwrap().to_string();
        if !images.contains(&image) {
            if images.len() == REAL_IMAGES {
                break;
            }
            if images.len() == 2 {
                out.push(
                    "images/missing_sigkill.JPEG,1,n01443537,227,227,10,10,100,100,500,375,\
                     22,16,220,165"
                        .into(),
                );
            }
            images.push(image);
        }
        if images.len() == 5 {
            let mut fields: Vec<&str> = line.split(',').collect();
            fields[1] = "99999";
            out.push(fields.join(","));
        } else {
            out.push(line.to_string());
        }
    }
    let path = dir.join("boxes.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn eval_command(csv: &Path, results: &Path, summary: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedbacknet"));
    command
        .args([
            "eval",
            "--method",
            "gradient",
            "--sweep",
            "0.1",
            "--workers",
            "2",
        ])
        .arg("--data")
        .arg(csv)
        .arg("--images")
        .arg(shared().join("data/imagenet-val"))
        .arg("--results")
        .arg(results)
        .arg("--json")
        .arg(summary)
        .arg("--resume")
        .env("FEEDBACKNET_MODELS", shared().join("models"));
    command
}

/// SplitMix64: a small seeded generator, so that a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration of `lo..hi` ms.
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// When to kill a run.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the start.
    After(Duration),
    /// This long after the results file has gained `lines` more complete lines.
    Lines(usize, Duration),
}

fn complete_lines(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// Waits for `moment`, then sends SIGKILL (unless the run ended first); returns its status.
fn kill_at(mut child: Child, moment: Moment, results: &Path) -> ExitStatus {
    let wait = match moment {
        Moment::After(delay) => delay,
        Moment::Lines(lines, delay) => {
            let target = complete_lines(results) + lines;
            let deadline = Instant::now() + Duration::from_secs(60);
            while complete_lines(results) < target && Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            delay
        }
    };
    std::thread::sleep(wait);
    // `Child::kill` sends SIGKILL; an error means the run has already ended.
    let _ = child.kill();
    child.wait().unwrap()
}

/// What a kill may leave: complete lines, each a record of its own image, and at most one
/// unterminated last line. Returns the complete records.
fn check_what_a_kill_left(results: &Path, seed: u64) -> Vec<Value> {
    let Ok(bytes) = std::fs::read(results) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
    let records: Vec<Value> = complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("seed {seed}: {e}: {l}")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        assert!(
            seen.insert(r["index"].as_u64().unwrap()),
            "seed {seed}: image {} written twice",
            r["index"]
        );
    }
    records
}

/// Cuts the results file inside its last line, as a write interrupted half-way would.
fn tear_last_line(results: &Path) {
    let bytes = std::fs::read(results).unwrap();
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return;
    };
    let start = body.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let cut = start + (body.len() - start) / 2;
    std::fs::write(results, &bytes[..cut]).unwrap();
}

/// The records by image, timing left out.
fn by_index(results: &Path) -> BTreeMap<u64, Value> {
    let text = std::fs::read_to_string(results).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut record: Value = serde_json::from_str(line).unwrap();
        record.as_object_mut().unwrap().remove("time_ms");
        let index = record["index"].as_u64().unwrap();
        assert!(out.insert(index, record).is_none(), "image {index} twice");
    }
    out
}

fn summary(path: &Path) -> Value {
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    file["summary"].clone()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn killed_and_resumed_runs_equal_an_uninterrupted_run() {
    let seed = std::env::var("FEEDBACKNET_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0023);
    let (_tmp, dir) = scratch_dir("sigkill");
    let csv = csv_with_failures(&dir);

    let (reference, reference_json) = (dir.join("reference.jsonl"), dir.join("reference.json"));
    let out = eval_command(&csv, &reference, &reference_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = by_index(&reference);
    assert_eq!(expected.len(), REAL_IMAGES + 1);

    let mut rng = Rng(seed);
    let plan = [
        (Moment::After(rng.ms(0, 20)), false), // before the model has loaded
        (Moment::Lines(1, Duration::ZERO), false), // right after a record is written
        (Moment::Lines(1, rng.ms(0, 600)), true), // anywhere, then a torn last line
        (Moment::Lines(1, rng.ms(0, 300)), false),
        (Moment::Lines(1, Duration::ZERO), true),
        (Moment::Lines(1, rng.ms(0, 200)), false),
    ];
    let (results, results_json) = (dir.join("results.jsonl"), dir.join("results.json"));
    let mut killed = 0;
    let mut torn = 0;
    for (moment, tear) in plan {
        let child = eval_command(&csv, &results, &results_json)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = kill_at(child, moment, &results);
        if status.signal() == Some(9) {
            killed += 1;
        }
        let records = check_what_a_kill_left(&results, seed);
        for r in &records {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("time_ms");
            assert_eq!(
                Some(&r),
                expected.get(&r["index"].as_u64().unwrap()),
                "seed {seed}"
            );
        }
        if results_json.exists() {
            // Written whole or not at all.
            let _: Value = serde_json::from_slice(&std::fs::read(&results_json).unwrap())
                .unwrap_or_else(|e| panic!("seed {seed}: a torn summary: {e}"));
        }
        let tore = tear && !records.is_empty();
        if tore {
            tear_last_line(&results);
            torn += 1;
        }
        eprintln!(
            "seed {seed}: {moment:?}: {status}, {} records left{}",
            records.len(),
            if tore { ", the last one torn" } else { "" }
        );
    }
    assert!(
        killed >= 4 && torn >= 1,
        "seed {seed}: {killed} runs killed, {torn} torn"
    );

    let out = eval_command(&csv, &results, &results_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "seed {seed}: {}", stderr(&out));
    assert_eq!(by_index(&results), expected, "seed {seed}");
    assert_eq!(
        summary(&results_json),
        summary(&reference_json),
        "seed {seed}"
    );

    // The failed images are counted once and listed, with their errors, at the end of the run.
    let s = summary(&results_json);
    assert_eq!(s["failed"], 2);
    let failures = s["failures"].as_array().unwrap();
    let ids: Vec<&str> = failures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], "images/missing_sigkill.JPEG");
    assert!(failures[1]["error"].as_str().unwrap().contains("99999"));
    let listing = stderr(&out);
    assert!(listing.contains("2 of 12 images failed"), "{listing}");
    assert!(listing.contains("missing_sigkill.JPEG: "), "{listing}");
    assert!(listing.contains("class 99999"), "{listing}");

    // `merge` lists them too, and skips the torn last line of a shard killed while writing.
    let torn = dir.join("torn.jsonl");
    std::fs::copy(&results, &torn).unwrap();
    tear_last_line(&torn);
    let out = Command::new(env!("CARGO_BIN_EXE_feedbacknet"))
        .args(["merge", "--sweep", "0.1"])
        .args([&results, &torn])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("12 records from 2 files"));
    let listing = stderr(&out);
    assert!(listing.contains("2 of 12 images failed"), "{listing}");
    assert!(
        listing.contains("images/missing_sigkill.JPEG: cannot read image"),
        "{listing}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
