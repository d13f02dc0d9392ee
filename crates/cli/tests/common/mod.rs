//! Helpers shared by the CLI's integration tests: the shared data and the binary.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// `../shared` beside the repository, or `FEEDBACKNET_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// A fresh temporary folder for one test, removed when the guard is dropped (also when the
/// test fails), and the path `name` inside it, not yet created.
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = (tempfile::Builder::new().prefix("feedbacknet-test-"))
        .tempdir()
        .expect("a temporary folder");
    let path = root.path().join(name);
    (root, path)
}

/// [`scratch`] with the folder `name` created.
pub fn scratch_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (root, dir) = scratch(name);
    std::fs::create_dir_all(&dir).expect("a folder in the temporary folder");
    (root, dir)
}

/// Runs `feedbacknet` with `args`, the shared models as its model folder.
pub fn feedbacknet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedbacknet"))
        .args(args)
        .env("FEEDBACKNET_MODELS", shared().join("models"))
        .output()
        .expect("the binary runs")
}
