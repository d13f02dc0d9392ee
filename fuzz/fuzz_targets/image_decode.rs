#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    feedbacknet_fuzz::image_decode::run(data);
});
