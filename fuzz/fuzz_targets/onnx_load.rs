#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys installs a panic hook that aborts at once, before any unwinding. The
    // loader deliberately catches a panic of the protobuf parser or onnx-ir and returns
    // `OnnxError::Parse` instead; restore the default hook so that caught panic stays caught.
    // A panic that escapes the loader still reaches libfuzzer-sys, which aborts: a crash.
    static DEFAULT_HOOK: Once = Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    feedbacknet_fuzz::onnx_load::run(data);
});
