//! `image_decode`: bytes -> `feedbacknet::load_image` (from a file, the library's only
//! decoder entry point) -> the network input of a tiny fixture net, stretched or
//! resized-and-cropped (the library's own preprocessing, through `FeedbackNet::predict`), and
//! the colour image the refinement reads.

use std::path::PathBuf;
use std::sync::OnceLock;

use feedbacknet::{FeedbackNet, Resize, colour_image, load_image};

/// Inputs larger than this are skipped.
pub const MAX_BYTES: usize = 256 * 1024;

/// The smallest committed fixture net (1x3x32x32 input, 10 classes).
fn fixture() -> PathBuf {
    // This file is built in `fuzz/` and, by the regression test, at the repository root.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = if manifest.ends_with("fuzz") {
        manifest.join("..")
    } else {
        manifest
    };
    root.join("tests/fixtures/modern/shufflenet_v2_op13.onnx")
}

/// The fixture net with a stretch (`[0]`) and with resize-then-crop (`[1]`).
fn nets() -> &'static [FeedbackNet; 2] {
    static NETS: OnceLock<[FeedbackNet; 2]> = OnceLock::new();
    NETS.get_or_init(|| {
        let net = |resize: Resize| {
            FeedbackNet::builder()
                .model_path(fixture())
                .resize(resize)
                .build()
                .expect("the fixture net loads")
        };
        [net(Resize::Stretch), net(Resize::Crop)]
    })
}

/// Decodes `data` and prepares it for the net (the resize mode picked by the input's length);
/// `None` for an input over [`MAX_BYTES`]. Must not panic or abort, whatever the bytes.
pub fn run(data: &[u8]) -> Option<feedbacknet::Result<()>> {
    if data.len() > MAX_BYTES {
        return None;
    }
    let path = crate::scratch::dir().join("image");
    std::fs::write(&path, data).expect("the scratch file is written");
    Some(prepare(&path, data.len() % 2))
}

fn prepare(path: &std::path::Path, mode: usize) -> feedbacknet::Result<()> {
    let image = load_image(path)?;
    let net = &nets()[mode];
    net.predict(&image, 1)?;
    let (w, h) = (image.width().min(64), image.height().min(64));
    colour_image(&image, w, h)?;
    Ok(())
}
