//! From an image file or `DynamicImage` to a normalized network input, and the geometry that
//! maps results back to the image.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::InputSpec;
use feedbacknet_eval::{DecodeOptions, ImageFileError, LoadedImage, decode_image_file};
use feedbacknet_localize::{ColourImage, ImageGeometry, ResizeMode};
use image::{DynamicImage, RgbImage, imageops::FilterType};

use crate::{Error, Result};

/// Reads and decodes an image file (any format the `image` crate reads: JPEG, PNG, BMP, GIF,
/// TIFF, WebP) under the default [`DecodeOptions`]: sides of at most
/// [`DecodeOptions::DEFAULT_MAX_SIDE`] pixels, the `image` crate's allocation limit, and a
/// truncated or damaged file refused ([`Error::DamagedImage`]) even where its decoder would
/// fill the missing part (a cut JPEG). Grayscale, RGBA and 16-bit images are accepted; they are
/// converted to 8-bit RGB when used.
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    Ok(load_image_with(path, &DecodeOptions::default())?.image)
}

/// [`load_image`] under `options` (limits; damaged files refused, or accepted with
/// [`LoadedImage::warnings`] saying what is wrong). The evaluator decodes with the same
/// policy (`feedbacknet_eval::decode_image_file`).
pub fn load_image_with(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<LoadedImage> {
    decode_image_file(path, options).map_err(image_error)
}

/// The facade's error for a file the decoding policy refused.
fn image_error(e: ImageFileError) -> Error {
    match e {
        ImageFileError::Read { path, source } => Error::Image {
            path,
            reason: source.to_string(),
        },
        ImageFileError::Decode { path, reason } => Error::Image { path, reason },
        ImageFileError::Damaged { path, reason } => Error::DamagedImage { path, reason },
        ImageFileError::TooLarge { path, reason } => Error::ImageTooLarge { path, reason },
        ImageFileError::Empty { width, height, .. } => Error::EmptyImage { width, height },
    }
}

/// An image prepared for the network.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `[1, 3, H, W]` normalized input.
    pub input: Tensor<4>,
    /// How the input relates to the original image.
    pub geometry: ImageGeometry,
}

/// Resizes (and crops) an image to the network input and normalizes it.
pub(crate) fn prepare(
    image: &DynamicImage,
    spec: &InputSpec,
    resize: ResizeMode,
    device: &Device,
) -> Result<Prepared> {
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(Error::EmptyImage { width, height });
    }
    let (in_w, in_h) = (spec.width as u32, spec.height as u32);
    let geometry = ImageGeometry::new(width, height, in_w, in_h, resize)?;
    let rgb = image.to_rgb8();
    let (rw, rh) = geometry.resized_size();
    let resized = if (rw, rh) == (width, height) {
        rgb
    } else {
        image::imageops::resize(&rgb, rw, rh, FilterType::Triangle)
    };
    let (cx, cy) = geometry.crop_offset();
    let cropped: RgbImage = if (cx, cy, rw, rh) == (0, 0, in_w, in_h) {
        resized
    } else {
        image::imageops::crop_imm(&resized, cx, cy, in_w, in_h).to_image()
    };
    let planar = spec
        .normalization
        .planar_from_rgb(cropped.as_raw(), spec.width, spec.height);
    let input = Tensor::from_data(
        TensorData::new(planar, [1, 3, spec.height, spec.width]),
        device,
    );
    Ok(Prepared { input, geometry })
}

/// The image as RGB at `w`x`h`, for the colour refinement (the pipeline reads it at the image's
/// own size, the evaluator at the maps' size); resampled only when the sizes differ.
pub fn colour_image(image: &DynamicImage, w: u32, h: u32) -> Result<ColourImage> {
    let rgb = if (image.width(), image.height()) == (w, h) {
        image.to_rgb8()
    } else {
        image.resize_exact(w, h, FilterType::Triangle).to_rgb8()
    };
    Ok(ColourImage::new(w as usize, h as usize, rgb.into_raw())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DamagedImages;

    /// A shared dev-set photo (227x227 JPEG).
    fn photo() -> std::path::PathBuf {
        std::env::var_os("FEEDBACKNET_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").into())
            .join("data/imagenet-val/images/ILSVRC2012_val_00000361.JPEG")
    }

    #[test]
    fn a_truncated_jpeg_is_a_damaged_image_error_unless_accepted() {
        let bytes = std::fs::read(photo()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let cut = tmp.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        match load_image(&cut) {
            Err(Error::DamagedImage { path, reason }) => {
                assert_eq!(path, cut);
                assert!(reason.contains("truncated"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let accept = DecodeOptions::default().damaged(DamagedImages::Accept);
        let loaded = load_image_with(&cut, &accept).unwrap();
        assert!(loaded.warnings[0].contains("truncated"));
        std::fs::remove_file(&cut).unwrap();
        assert!(
            load_image_with(photo(), &accept)
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn an_image_over_the_limits_is_too_large() {
        let small = DecodeOptions::default().max_width(64);
        assert!(matches!(
            load_image_with(photo(), &small),
            Err(Error::ImageTooLarge { .. })
        ));
    }

    #[test]
    fn the_colour_image_is_resampled_only_when_sizes_differ() {
        let rgb = RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let image = DynamicImage::ImageRgb8(rgb.clone());
        let same = colour_image(&image, 6, 4).unwrap();
        assert_eq!(same, ColourImage::new(6, 4, rgb.into_raw()).unwrap());
        let smaller = colour_image(&image, 3, 2).unwrap();
        assert_eq!((smaller.width(), smaller.height()), (3, 2));
    }
}
