//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in this crate.
///
/// The library never panics on bad input; every fallible operation returns
/// one of these variants with enough context to find the culprit.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LocalizeError {
    /// A bounding box whose width or height is not strictly positive.
    #[error("bounding box has zero or negative area: x0={x0}, y0={y0}, x1={x1}, y1={y1}")]
    ZeroAreaBox {
        /// Left edge.
        x0: f32,
        /// Top edge.
        y0: f32,
        /// Right edge (exclusive).
        x1: f32,
        /// Bottom edge (exclusive).
        y1: f32,
    },
    /// Data whose size does not match the declared or required shape.
    #[error("shape mismatch: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was required, e.g. `"6 values (3x2)"` or `"224x224"`.
        expected: String,
        /// What was supplied.
        got: String,
    },
    /// A NaN or infinite value.
    #[error("non-finite value at index {index}")]
    NonFinite {
        /// Row-major index into a map's data, or the coordinate index
        /// (0 = x0, 1 = y0, 2 = x1, 3 = y1) of a bounding box.
        index: usize,
    },
    /// A parameter outside its documented range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A map, mask or image with zero width or height.
    #[error("image or map has zero width or height")]
    EmptyImage,
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LocalizeError>;

/// Checks `width * height` is non-zero and does not overflow; returns the area.
pub(crate) fn checked_area(width: usize, height: usize) -> Result<usize> {
    if width == 0 || height == 0 {
        return Err(LocalizeError::EmptyImage);
    }
    width
        .checked_mul(height)
        .ok_or_else(|| LocalizeError::InvalidParameter {
            name: "width * height",
            value: format!("{width}x{height}"),
            reason: "area overflows usize".to_string(),
        })
}

/// Builds an [`LocalizeError::InvalidParameter`].
pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    reason: impl Into<String>,
) -> LocalizeError {
    LocalizeError::InvalidParameter {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}
