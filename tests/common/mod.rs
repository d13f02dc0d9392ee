//! Helpers shared by the integration tests of `feedbacknet` (real nets and photos from
//! ../shared).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use feedbacknet::{BoundingBox, DynamicImage, load_image};

/// `../shared` beside the repository, or `FEEDBACKNET_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
}

/// A photo under ../shared, decoded.
pub fn photo(path: &str) -> DynamicImage {
    load_image(shared().join(path)).expect("shared photo")
}

/// Whether `b` lies within `image`.
pub fn inside(b: &BoundingBox, image: &DynamicImage) -> bool {
    b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= image.width() as f32 && b.y1 <= image.height() as f32
}

/// Pearson correlation of two equally long value lists.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    feedbacknet_eval::stability::correlation(a, b).unwrap_or(f64::NAN)
}
