//! The image the colour refinement reads.

use crate::error::{checked_area, invalid};
use crate::{LocalizeError, Result};

/// An interleaved 8-bit RGB image (`r, g, b, r, g, b, ...`, row-major).
///
/// The invariants (`width, height > 0`, `rgb.len() == 3 * width * height`)
/// are checked on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColourImage {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl ColourImage {
    /// Creates an image from interleaved row-major RGB bytes.
    ///
    /// Errors: [`LocalizeError::EmptyImage`] for a zero dimension,
    /// [`LocalizeError::ShapeMismatch`] when `rgb.len() != 3 * width * height`.
    pub fn new(width: usize, height: usize, rgb: Vec<u8>) -> Result<Self> {
        let area = checked_area(width, height)?;
        let expected = area
            .checked_mul(3)
            .ok_or_else(|| invalid("width * height * 3", area, "overflows usize"))?;
        if rgb.len() != expected {
            return Err(LocalizeError::ShapeMismatch {
                expected: format!("{expected} bytes (3x{width}x{height} RGB)"),
                got: format!("{} bytes", rgb.len()),
            });
        }
        Ok(Self { width, height, rgb })
    }

    /// Creates an image by evaluating `f(x, y) = [r, g, b]` at every pixel.
    pub fn from_fn(
        width: usize,
        height: usize,
        mut f: impl FnMut(usize, usize) -> [u8; 3],
    ) -> Result<Self> {
        let n = checked_area(width, height)?;
        let rgb = (0..n).flat_map(|i| f(i % width, i / width)).collect();
        Self::new(width, height, rgb)
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Interleaved row-major RGB bytes.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Colour at `(x, y)`; `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            let mut colour = [0; 3];
            if let Some(rgb) = self.rgb.get(i..i + 3) {
                colour.copy_from_slice(rgb);
            }
            colour
        })
    }
}
