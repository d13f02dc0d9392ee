//! Every input the fuzzers (`fuzz/`, see `docs/fuzzing.md`) found a crash with, replayed under
//! plain `cargo test` through the same harness code the fuzzer ran (`fuzz/src/*.rs`, included
//! here): `tests/fuzz_regressions/<target>/<name>`. Each must now finish without a panic, and
//! the tests below also check the typed error it gets.

#[allow(dead_code)]
#[path = "../fuzz/src/annotations.rs"]
mod annotations;
#[allow(dead_code)]
#[path = "../fuzz/src/boxes.rs"]
mod boxes;
#[allow(dead_code)]
#[path = "../fuzz/src/image_decode.rs"]
mod image_decode;
#[allow(dead_code)]
#[path = "../fuzz/src/onnx_load.rs"]
mod onnx_load;
#[allow(dead_code)]
#[path = "../fuzz/src/scratch.rs"]
mod scratch;

use std::path::PathBuf;

/// The saved inputs of one target, by file name.
fn saved(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    files
}

/// `onnx_load`: every saved file is refused with a typed error.
#[test]
fn onnx_load_regressions_are_errors() {
    for (name, bytes) in saved("onnx_load") {
        let result = onnx_load::run(&bytes).expect("under the size cap");
        let error = result.err().unwrap_or_else(|| panic!("{name} loaded"));
        // The shufflenet fixture with a Reshape target whose product overflows i64: the probe
        // run's reshape multiplied it unchecked (an overflow panic with overflow checks on).
        if name.starts_with("reshape_target_product_overflow") {
            assert!(
                matches!(
                    &error,
                    feedbacknet::OnnxError::Run(feedbacknet::CoreError::Forward { op, reason, .. })
                        if op == "Reshape" && reason.contains("shape mismatch")
                ),
                "{name}: {error}"
            );
        }
    }
}

/// `image_decode`: a 3 kB JPEG that declares 40744 x 2018 pixels (82 megapixels) decoded
/// without a panic but took seconds (over libFuzzer's 10 s limit in the instrumented build):
/// a decompression bomb. Images wider or taller than `DecodeOptions::DEFAULT_MAX_SIDE` are now
/// refused from their header, before any pixel is decoded.
#[test]
fn image_decode_regressions_are_refused_from_the_header() {
    for (name, bytes) in saved("image_decode") {
        let result = image_decode::run(&bytes).expect("under the size cap");
        let error = result.err().unwrap_or_else(|| panic!("{name} decoded"));
        assert!(
            matches!(error, feedbacknet::Error::ImageTooLarge { .. }),
            "{name}: {error}"
        );
    }
}
