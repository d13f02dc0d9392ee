//! Weakly supervised localisation from saliency maps.
//!
//! This crate turns a class-specific saliency map (such as the one produced
//! by a feedback CNN) into object bounding boxes, and maps boxes and maps
//! between network-input and original-image coordinates. It is pure Rust
//! with no numeric or imaging dependencies.
//!
//! * [`SaliencyMap`]: a dense map with [`SaliencyMap::gaussian_blur`],
//!   [`SaliencyMap::resize_bilinear`], [`SaliencyMap::normalized`] (or
//!   [`SaliencyMap::normalized_by`] a [`MapScale`]),
//!   [`SaliencyMap::threshold`] and [`SaliencyMap::mass_fraction_in`].
//! * [`Mask`] and [`connected_components`]: 8-connected labelling.
//! * [`BoundingBox`]: boxes in continuous pixel coordinates, with IoU.
//! * [`localize`] with [`LocalizeConfig`]: blur, threshold, components, boxes.
//! * [`localize_in_image`]: the same on a map at image resolution, the blur given in
//!   network-input pixels, with optional colour [`Refinement`] (what the `feedbacknet` facade
//!   and its evaluator both call).
//! * [`ImageGeometry`] and [`ResizeMode`]: from image to network input and back.
//!
//! Nothing here panics on bad input; errors are [`LocalizeError`] values.
//!
//! ```
//! use feedbacknet_localize::{localize, BoundingBox, ImageGeometry, LocalizeConfig, ResizeMode, SaliencyMap};
//!
//! // A saliency map at network-input resolution with one bright region.
//! let map = SaliencyMap::from_fn(224, 224, |x, y| {
//!     if (60..160).contains(&x) && (40..120).contains(&y) { 1.0 } else { 0.0 }
//! })?;
//! let loc = localize(&map, &LocalizeConfig::default())?;
//! let best = loc.best.expect("the map is not all zero");
//! let truth = BoundingBox::new(60.0, 40.0, 160.0, 120.0)?;
//! // The default blur (sigma 10) widens the box a little around the region.
//! assert_eq!(best.intersection(&truth), Some(truth));
//! assert!(best.iou(&truth) > 0.6);
//!
//! // Back to the original 500x375 photo (resized to 256, centre-cropped to 224).
//! let geometry = ImageGeometry::new(500, 375, 224, 224, ResizeMode::ResizeCrop { shorter_side: 256 })?;
//! let in_photo = geometry.box_to_image(&best).expect("inside the photo");
//! assert!(in_photo.x1 <= 500.0 && in_photo.y1 <= 375.0);
//! # Ok::<(), feedbacknet_localize::LocalizeError>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![forbid(unsafe_code)]

mod bbox;
mod blur;
mod components;
mod config;
mod error;
mod fusion;
mod geometry;
mod in_image;
mod localize;
mod map;
mod mask;
mod refine;
mod resize;
mod scale;

pub use bbox::BoundingBox;
pub use blur::MAX_BLUR_SIGMA;
pub use components::{Component, connected_components};
pub use config::LocalizeConfig;
pub use error::{LocalizeError, Result};
pub use fusion::{FusionConfig, FusionRule, fuse};
pub use geometry::{ImageGeometry, ResizeMode};
pub use in_image::{Refinement, localize_in_image, sigma_in_map, smoothed_in_image};
pub use localize::{Localization, localize};
pub use map::SaliencyMap;
pub use mask::Mask;
pub use refine::{Binning, ColourImage, ColourModel, RefineConfig, refine_mask, refined_boxes};
pub use scale::MapScale;
