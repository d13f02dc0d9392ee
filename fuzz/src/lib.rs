//! The fuzz targets' harnesses, one module each, shared with the regression test
//! (`tests/fuzz_regressions.rs` at the repository root includes these files), so that a saved
//! crash replays through exactly the code the fuzzer ran.

pub mod annotations;
pub mod boxes;
pub mod image_decode;
pub mod onnx_load;
pub mod scratch;
