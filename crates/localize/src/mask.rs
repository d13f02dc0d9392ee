//! Binary masks.

use serde::{Deserialize, Serialize};

use crate::error::checked_area;
use crate::{LocalizeError, Result};

/// A binary image, row-major, `true` = on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMask")]
pub struct Mask {
    width: usize,
    height: usize,
    data: Vec<bool>,
}

#[derive(Deserialize)]
struct RawMask {
    width: usize,
    height: usize,
    data: Vec<bool>,
}

impl TryFrom<RawMask> for Mask {
    type Error = LocalizeError;
    fn try_from(raw: RawMask) -> Result<Self> {
        Mask::new(raw.width, raw.height, raw.data)
    }
}

impl Mask {
    /// Creates a mask from row-major data.
    ///
    /// Errors: [`LocalizeError::EmptyImage`] for a zero dimension,
    /// [`LocalizeError::ShapeMismatch`] when `data.len() != width * height`.
    pub fn new(width: usize, height: usize, data: Vec<bool>) -> Result<Self> {
        let expected = checked_area(width, height)?;
        if data.len() != expected {
            return Err(LocalizeError::ShapeMismatch {
                expected: format!("{expected} values ({width}x{height})"),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Creates a mask by evaluating `f(x, y)` at every pixel.
    ///
    /// ```
    /// use feedbacknet_localize::Mask;
    /// let m = Mask::from_fn(4, 3, |x, y| x == y)?;
    /// assert_eq!(m.count(), 3);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn from_fn(
        width: usize,
        height: usize,
        mut f: impl FnMut(usize, usize) -> bool,
    ) -> Result<Self> {
        let n = checked_area(width, height)?;
        let data = (0..n).map(|i| f(i % width, i / width)).collect();
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major pixel values.
    pub fn data(&self) -> &[bool] {
        &self.data
    }

    /// Value at `(x, y)`; `false` outside the mask.
    pub fn get(&self, x: usize, y: usize) -> bool {
        x < self.width
            && y < self.height
            && self.data.get(y * self.width + x).copied().unwrap_or(false)
    }

    /// Number of pixels that are on.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&b| b).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_shape() {
        assert!(matches!(
            Mask::new(3, 2, vec![true; 5]),
            Err(LocalizeError::ShapeMismatch { .. })
        ));
        assert_eq!(Mask::new(0, 2, vec![]), Err(LocalizeError::EmptyImage));
        let m = Mask::new(3, 2, vec![true, false, false, false, true, true]).unwrap();
        assert_eq!(m.count(), 3);
        assert!(m.get(0, 0));
        assert!(!m.get(1, 0));
        assert!(m.get(2, 1));
        assert!(!m.get(3, 1));
        assert!(!m.get(0, 2));
    }
}
