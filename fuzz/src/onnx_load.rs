//! `onnx_load`: bytes -> `OnnxNetwork::from_bytes` (parse, compile, probe run).

use feedbacknet::{OnnxError, OnnxNetwork, default_device};

/// Inputs larger than this are skipped (the seeds, the small fixture nets, are 50-290 kB).
pub const MAX_BYTES: usize = 512 * 1024;

/// Loads `data` as an ONNX model; `None` for an input over [`MAX_BYTES`]. Must not panic or
/// abort, whatever the bytes.
pub fn run(data: &[u8]) -> Option<Result<OnnxNetwork, OnnxError>> {
    if data.len() > MAX_BYTES {
        return None;
    }
    let device = default_device().expect("the flex backend is compiled in");
    Some(OnnxNetwork::from_bytes(data, &device))
}
