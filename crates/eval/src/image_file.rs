//! Reading an image file under one decoding policy: decoder limits and what to do with a
//! damaged file. The facade's `load_image` and the evaluator's decoding threads both call
//! [`decode_image_file`], so an image is accepted or refused the same way everywhere.
//!
//! What each decoder of the workspace does with a damaged file (measured on a 164 kB
//! photo and a 160x120 image encoded in each format, cut to 2/3 and 1/3 of its length, or with
//! four bytes flipped): the PNG, GIF, WebP, BMP and TIFF decoders fail on a cut file; the JPEG
//! decoder (zune-jpeg, which `image` runs in its lenient mode) returns the cut image whole,
//! its missing part grey, without a word. A JPEG therefore has its segments walked up to the
//! end-of-image marker ([`jpeg_damage`]) before it is decoded. Flipped bytes inside the pixel
//! data of a JPEG, BMP or TIFF file change a few pixels and cannot be detected: those formats
//! carry no checksum.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use thiserror::Error;

/// What to do with an image file that is truncated or damaged but that the decoder can still
/// turn into pixels (a cut JPEG: the decoder fills its missing part with grey).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DamagedImages {
    /// Refuse it with [`ImageFileError::Damaged`]. The default.
    #[default]
    Refuse,
    /// Decode it anyway; [`LoadedImage::warnings`] says what is wrong.
    Accept,
}

/// How image files are decoded: the decoder limits and the damaged-image policy.
///
/// Defaults: sides of at most [`DecodeOptions::DEFAULT_MAX_SIDE`] = 16384 pixels (checked from
/// the header, before any pixel is decoded: a 3 kB JPEG that declares 40744 x 2018 pixels, found
/// by fuzzing, would otherwise cost seconds of decoding), at most
/// [`DecodeOptions::DEFAULT_MAX_BYTES`] = 512 MiB allocated by the decoder (the `image` crate's
/// default, about 179 million RGB pixels) and [`DamagedImages::Refuse`].
///
/// ```
/// use feedbacknet_eval::{DamagedImages, DecodeOptions};
///
/// let options = DecodeOptions::default()
///     .max_width(8192)
///     .max_height(8192)
///     .damaged(DamagedImages::Accept);
/// assert_eq!(options.limits().max_image_width, Some(8192));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    max_width: Option<u32>,
    max_height: Option<u32>,
    max_bytes: Option<u64>,
    damaged: DamagedImages,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_width: Some(Self::DEFAULT_MAX_SIDE),
            max_height: Some(Self::DEFAULT_MAX_SIDE),
            max_bytes: Some(Self::DEFAULT_MAX_BYTES),
            damaged: DamagedImages::default(),
        }
    }
}

impl DecodeOptions {
    /// The default bound on an image's width and on its height: 16384 pixels (a 134-megapixel
    /// square; panoramas beyond it need [`Self::max_width`]).
    pub const DEFAULT_MAX_SIDE: u32 = 16384;

    /// The default bound on the decoder's allocations (the `image` crate's default): 512 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

    /// Refuses images wider than `pixels` ([`ImageFileError::TooLarge`]).
    pub fn max_width(mut self, pixels: u32) -> Self {
        self.max_width = Some(pixels);
        self
    }

    /// Refuses images taller than `pixels` ([`ImageFileError::TooLarge`]).
    pub fn max_height(mut self, pixels: u32) -> Self {
        self.max_height = Some(pixels);
        self
    }

    /// Refuses images whose decoding needs more than `bytes` (the decoded image's own size
    /// counts; [`ImageFileError::TooLarge`]).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Removes every limit (width, height and allocation).
    pub fn no_limits(mut self) -> Self {
        self.max_width = None;
        self.max_height = None;
        self.max_bytes = None;
        self
    }

    /// Sets what happens to a damaged file.
    pub fn damaged(mut self, policy: DamagedImages) -> Self {
        self.damaged = policy;
        self
    }

    /// The damaged-image policy.
    pub fn damaged_policy(&self) -> DamagedImages {
        self.damaged
    }

    /// The limits as the `image` crate takes them.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::no_limits();
        limits.max_image_width = self.max_width;
        limits.max_image_height = self.max_height;
        limits.max_alloc = self.max_bytes;
        limits
    }

    /// Why an image of `width`x`height` whose decoding needs `bytes` is refused, if it is.
    fn exceeded(&self, width: u32, height: u32, bytes: u64) -> Option<String> {
        let size = format!("{width}x{height} pixels");
        if let Some(max) = self.max_width.filter(|&max| width > max) {
            return Some(format!("{size}: wider than the {max} allowed"));
        }
        if let Some(max) = self.max_height.filter(|&max| height > max) {
            return Some(format!("{size}: taller than the {max} allowed"));
        }
        if let Some(max) = self.max_bytes.filter(|&max| bytes > max) {
            return Some(format!(
                "{size}: decoding needs {bytes} bytes, more than the {max} allowed"
            ));
        }
        None
    }
}

/// A decoded image and what was wrong with its file, if it was accepted damaged.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The pixels.
    pub image: DynamicImage,
    /// One line per problem of an image accepted under [`DamagedImages::Accept`]; empty for a
    /// sound file.
    pub warnings: Vec<String>,
}

/// Why an image file was not decoded. Every variant names the file.
#[derive(Debug, Error)]
pub enum ImageFileError {
    /// The file could not be read.
    #[error("cannot read image {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The format is unknown or the decoder failed (for a cut PNG, GIF, WebP, BMP or TIFF:
    /// "unexpected end of file" or alike).
    #[error("cannot decode image {path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's words, with the format.
        reason: String,
    },
    /// The file is truncated or damaged and [`DamagedImages::Refuse`] is in force.
    #[error(
        "damaged image {path}: {reason}; refused (to use it anyway: DamagedImages::Accept, or \
         --accept-damaged-images on the command line)"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The image exceeds the [`DecodeOptions`] limits.
    #[error("image {path} exceeds the decoding limits: {reason}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The size and the limit it exceeds.
        reason: String,
    },
    /// The image has no pixels.
    #[error("image {path} is empty ({width}x{height})")]
    Empty {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// Reads and decodes an image file, guessing its format from its content (JPEG, PNG, BMP, GIF,
/// TIFF, WebP), under `options`: an image over the limits is refused before it is decoded, and
/// a damaged file is refused or decoded with a warning as [`DecodeOptions::damaged`] says.
pub fn decode_image_file(
    path: impl AsRef<Path>,
    options: &DecodeOptions,
) -> Result<LoadedImage, ImageFileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ImageFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_bytes(path, &bytes, options)
}

/// [`decode_image_file`] on the file's bytes; `path` names the file in errors and its
/// extension gives the format when the content does not.
pub fn decode_image_bytes(
    path: &Path,
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<LoadedImage, ImageFileError> {
    let decode_error = |e: image::ImageError| ImageFileError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // The extension's format unless the content says another (as `ImageReader::open`).
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>, ImageFileError> {
        let mut reader = ImageReader::new(Cursor::new(bytes));
        if let Ok(format) = ImageFormat::from_path(path) {
            reader.set_format(format);
        }
        reader
            .with_guessed_format()
            .map_err(|source| ImageFileError::Read {
                path: path.to_path_buf(),
                source,
            })
    };
    let header = reader()?;
    let format = header.format();
    check_size(path, header, options)?;
    let warnings = damage(path, format, bytes, options.damaged)?;
    let mut reader = reader()?;
    reader.limits(options.limits());
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(limit) => ImageFileError::TooLarge {
            path: path.to_path_buf(),
            reason: limit.to_string(),
        },
        other => decode_error(other),
    })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(ImageFileError::Empty {
            path: path.to_path_buf(),
            width: image.width(),
            height: image.height(),
        });
    }
    Ok(LoadedImage { image, warnings })
}

/// Refuses an image over the limits from its header, before any pixel is decoded.
fn check_size(
    path: &Path,
    mut reader: ImageReader<Cursor<&[u8]>>,
    options: &DecodeOptions,
) -> Result<(), ImageFileError> {
    reader.no_limits();
    let decoder = reader.into_decoder().map_err(|e| ImageFileError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (width, height) = decoder.dimensions();
    match options.exceeded(width, height, decoder.total_bytes()) {
        Some(reason) => Err(ImageFileError::TooLarge {
            path: path.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The damage found in a file of `format` that its decoder would not report: refused, or the
/// warnings of an accepted file.
fn damage(
    path: &Path,
    format: Option<ImageFormat>,
    bytes: &[u8],
    policy: DamagedImages,
) -> Result<Vec<String>, ImageFileError> {
    let found = match format {
        Some(ImageFormat::Jpeg) => jpeg_damage(bytes),
        _ => None,
    };
    match (found, policy) {
        (None, _) => Ok(Vec::new()),
        (Some(reason), DamagedImages::Refuse) => Err(ImageFileError::Damaged {
            path: path.to_path_buf(),
            reason,
        }),
        (Some(reason), DamagedImages::Accept) => {
            Ok(vec![format!("damaged image accepted: {reason}")])
        }
    }
}

/// What is wrong with a JPEG file whose segments do not reach the end-of-image marker
/// (`FF D9`), or `None` for a whole file.
///
/// The segments are walked from the start-of-image marker: a marker segment is skipped by its
/// length (so the `FF D9` of an Exif thumbnail inside `APP1` does not count), the compressed
/// data after a start-of-scan is skipped up to the next marker that is not a stuffed `FF 00`,
/// a restart marker or a fill byte. Bytes after the end-of-image marker are allowed: the
/// decoder stops there, so they change no pixel, and real files carry them (zero padding,
/// a second image or a video appended by phone cameras).
pub fn jpeg_damage(bytes: &[u8]) -> Option<String> {
    let truncated = |inside: &str| {
        Some(format!(
            "JPEG data ends before the end-of-image marker (FF D9), inside {inside}: the file \
             is truncated ({} bytes)",
            bytes.len()
        ))
    };
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2;
    loop {
        // A marker: FF (any number of fill FFs) then its code.
        pos = match next_marker(bytes, pos) {
            Some(p) => p,
            None => return truncated("the data between segments"),
        };
        let Some(&code) = bytes.get(pos + 1) else {
            return truncated("a marker");
        };
        match code {
            0xD9 => return None,
            0xD8 | 0x01 | 0xD0..=0xD7 => pos += 2,
            _ => {
                let Some(length) = segment_length(bytes, pos + 2) else {
                    return truncated("a segment header");
                };
                let end = pos + 2 + length;
                if end > bytes.len() {
                    return truncated(&format!("a {} segment", marker_name(code)));
                }
                pos = end;
                if code == 0xDA {
                    match end_of_scan(bytes, pos) {
                        Some(p) => pos = p,
                        None => return truncated("the compressed image data"),
                    }
                }
            }
        }
    }
}

/// The position of the next `FF` at or after `pos` that is followed by a marker code (fill
/// bytes skipped), if the file has one.
fn next_marker(bytes: &[u8], pos: usize) -> Option<usize> {
    let rest = bytes.get(pos..)?;
    let mut offset = rest.iter().position(|&b| b == 0xFF)?;
    while rest.get(offset + 1) == Some(&0xFF) {
        offset += 1;
    }
    Some(pos + offset)
}

/// The big-endian length at `pos` (it counts its own two bytes, not the marker).
fn segment_length(bytes: &[u8], pos: usize) -> Option<usize> {
    match bytes.get(pos..pos + 2)? {
        &[high, low] => Some(usize::from(u16::from_be_bytes([high, low]))),
        _ => None,
    }
}

/// The position of the marker that ends the compressed data starting at `pos`: an `FF`
/// followed by neither `00` (a stuffed byte), a restart marker `D0`-`D7` nor another `FF`.
fn end_of_scan(bytes: &[u8], pos: usize) -> Option<usize> {
    let rest = bytes.get(pos..)?;
    rest.windows(2)
        .position(|pair| match pair {
            &[0xFF, next] => !matches!(next, 0x00 | 0xD0..=0xD7 | 0xFF),
            _ => false,
        })
        .map(|offset| pos + offset)
}

/// A readable name of a JPEG marker code, for the messages.
fn marker_name(code: u8) -> String {
    match code {
        0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => "start-of-frame".into(),
        0xC4 => "Huffman table".into(),
        0xDA => "start-of-scan".into(),
        0xDB => "quantization table".into(),
        0xDD => "restart interval".into(),
        0xE0..=0xEF => format!("APP{}", code - 0xE0),
        0xFE => "comment".into(),
        _ => format!("FF {code:02X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal marker layout: SOI, a comment, a scan with stuffed bytes and a restart
    /// marker, EOI.
    fn layout() -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend([0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 0xAB, 0xCD]); // a comment holding FF D9
        bytes.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        bytes.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF]);
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn a_whole_layout_passes_and_trailing_bytes_are_allowed() {
        assert_eq!(jpeg_damage(&layout()), None);
        let mut padded = layout();
        padded.extend([0; 16]);
        assert_eq!(jpeg_damage(&padded), None);
    }

    #[test]
    fn every_cut_of_the_layout_is_truncated() {
        let bytes = layout();
        for len in 2..bytes.len() {
            let reason = jpeg_damage(&bytes[..len]);
            assert!(
                reason.as_deref().is_some_and(|r| r.contains("truncated")),
                "cut at {len}: {reason:?}"
            );
        }
    }

    #[test]
    fn a_marker_in_a_segment_is_not_the_end() {
        // The comment's FF D9 is inside a segment: cut right after it, the file is truncated.
        let bytes = layout();
        let reason = jpeg_damage(&bytes[..8]).unwrap();
        assert!(reason.contains("comment segment"), "{reason}");
    }

    #[test]
    fn limits_name_the_size_and_the_limit() {
        let options = DecodeOptions::default().max_width(100);
        let reason = options.exceeded(101, 10, 3030).unwrap();
        assert!(
            reason.contains("101x10") && reason.contains("100"),
            "{reason}"
        );
        assert_eq!(options.exceeded(100, 10, 3000), None);
        let small = DecodeOptions::default().max_bytes(1000);
        assert!(small.exceeded(20, 20, 1200).is_some());
        assert_eq!(
            DecodeOptions::default().no_limits().limits(),
            Limits::no_limits()
        );
    }
}
