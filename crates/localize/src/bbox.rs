//! Axis-aligned boxes in continuous pixel coordinates.

use serde::{Deserialize, Serialize};

use crate::{LocalizeError, Result};

/// An axis-aligned box in continuous pixel coordinates.
///
/// Pixel `(x, y)` covers the square `[x, x + 1) x [y, y + 1)`, so a box
/// covering pixel columns `xmin..=xmax` has `x0 = xmin` and `x1 = xmax + 1`.
/// `x1` and `y1` are exclusive. [`BoundingBox::new`] guarantees a finite box of
/// positive area; since the fields are public, the methods also tolerate
/// degenerate boxes (they report zero area and never panic).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge (exclusive).
    pub x1: f32,
    /// Bottom edge (exclusive).
    pub y1: f32,
}

impl BoundingBox {
    /// Creates a box, checking that all coordinates are finite and that
    /// `x1 > x0` and `y1 > y0`.
    ///
    /// ```
    /// use feedbacknet_localize::{BoundingBox, LocalizeError};
    /// let b = BoundingBox::new(1.0, 2.0, 4.0, 6.0)?;
    /// assert_eq!((b.width(), b.height(), b.area()), (3.0, 4.0, 12.0));
    /// assert!(matches!(
    ///     BoundingBox::new(1.0, 2.0, 1.0, 6.0),
    ///     Err(LocalizeError::ZeroAreaBox { .. })
    /// ));
    /// # Ok::<(), LocalizeError>(())
    /// ```
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Result<Self> {
        if let Some(index) = [x0, y0, x1, y1].iter().position(|v| !v.is_finite()) {
            return Err(LocalizeError::NonFinite { index });
        }
        if x1 <= x0 || y1 <= y0 {
            return Err(LocalizeError::ZeroAreaBox { x0, y0, x1, y1 });
        }
        Ok(Self { x0, y0, x1, y1 })
    }

    /// `x1 - x0` (negative only for a degenerate box built field by field).
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    /// `y1 - y0` (negative only for a degenerate box built field by field).
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// Area; 0 for a degenerate box.
    pub fn area(&self) -> f32 {
        let a = self.width().max(0.0) * self.height().max(0.0);
        if a.is_nan() { 0.0 } else { a }
    }

    /// Overlapping part of two boxes, `None` when they do not overlap with
    /// positive area (boxes that only touch do not overlap).
    pub fn intersection(&self, other: &BoundingBox) -> Option<BoundingBox> {
        if self.has_nan() || other.has_nan() {
            return None;
        }
        let x0 = self.x0.max(other.x0);
        let y0 = self.y0.max(other.y0);
        let x1 = self.x1.min(other.x1);
        let y1 = self.y1.min(other.y1);
        BoundingBox::new(x0, y0, x1, y1).ok()
    }

    /// Intersection over union, in `[0, 1]`; 0 for disjoint or degenerate boxes.
    ///
    /// ```
    /// use feedbacknet_localize::BoundingBox;
    /// let a = BoundingBox::new(0.0, 0.0, 2.0, 2.0).unwrap();
    /// let b = BoundingBox::new(1.0, 0.0, 3.0, 2.0).unwrap();
    /// assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
    /// ```
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let inter = match self.intersection(other) {
            Some(i) => i.area(),
            None => return 0.0,
        };
        let union = self.area() + other.area() - inter;
        if union > 0.0 && union.is_finite() {
            (inter / union).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The part of the box inside `[0, width) x [0, height)`, or `None` if
    /// nothing with positive area is left (also for NaN coordinates or a
    /// non-positive extent).
    ///
    /// Accepts any numeric type convertible to `f64` (`u32`, `i32`, `f32`,
    /// `f64`), so `b.clamp_to(img.width(), img.height())` and
    /// `b.clamp_to(224.0, 224.0)` both work.
    pub fn clamp_to(&self, width: impl Into<f64>, height: impl Into<f64>) -> Option<BoundingBox> {
        let (w, h) = (width.into(), height.into());
        if !(w > 0.0 && h > 0.0) || self.has_nan() {
            return None;
        }
        let x0 = f64::from(self.x0).clamp(0.0, w) as f32;
        let y0 = f64::from(self.y0).clamp(0.0, h) as f32;
        let x1 = f64::from(self.x1).clamp(0.0, w) as f32;
        let y1 = f64::from(self.y1).clamp(0.0, h) as f32;
        BoundingBox::new(x0, y0, x1, y1).ok()
    }

    /// Multiplies x coordinates by `sx` and y coordinates by `sy`.
    ///
    /// A negative factor mirrors the box; the corners are re-ordered so that
    /// `x0 <= x1` and `y0 <= y1` still hold. A zero factor gives a degenerate
    /// box of zero area.
    pub fn scale(&self, sx: f32, sy: f32) -> BoundingBox {
        let (ax, bx) = (self.x0 * sx, self.x1 * sx);
        let (ay, by) = (self.y0 * sy, self.y1 * sy);
        BoundingBox {
            x0: ax.min(bx),
            y0: ay.min(by),
            x1: ax.max(bx),
            y1: ay.max(by),
        }
    }

    /// Shifts the box by `(dx, dy)`.
    pub fn translate(&self, dx: f32, dy: f32) -> BoundingBox {
        BoundingBox {
            x0: self.x0 + dx,
            y0: self.y0 + dy,
            x1: self.x1 + dx,
            y1: self.y1 + dy,
        }
    }

    fn has_nan(&self) -> bool {
        [self.x0, self.y0, self.x1, self.y1]
            .iter()
            .any(|v| v.is_nan())
    }

    /// Whether `(x, y)` lies in the half-open box `[x0, x1) x [y0, y1)`.
    pub fn contains_point(&self, x: f32, y: f32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bb(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::new(x0, y0, x1, y1).unwrap()
    }

    #[test]
    fn iou_identical_is_one() {
        let a = bb(3.0, 4.0, 10.0, 9.0);
        assert_eq!(a.iou(&a), 1.0);
    }

    #[test]
    fn iou_disjoint_and_touching_is_zero() {
        let a = bb(0.0, 0.0, 2.0, 2.0);
        assert_eq!(a.iou(&bb(5.0, 5.0, 6.0, 6.0)), 0.0);
        // Sharing an edge is not an overlap.
        assert_eq!(a.iou(&bb(2.0, 0.0, 4.0, 2.0)), 0.0);
        assert!(a.intersection(&bb(2.0, 0.0, 4.0, 2.0)).is_none());
    }

    #[test]
    fn iou_half_overlap() {
        // Two 2x2 boxes sharing a 1x2 strip: 2 / (4 + 4 - 2) = 1/3.
        let a = bb(0.0, 0.0, 2.0, 2.0);
        let b = bb(1.0, 0.0, 3.0, 2.0);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.intersection(&b), Some(bb(1.0, 0.0, 2.0, 2.0)));
        assert_eq!(a.iou(&b), b.iou(&a));
    }

    #[test]
    fn iou_nested() {
        // 2x2 inside 4x4: 4 / 16.
        let outer = bb(0.0, 0.0, 4.0, 4.0);
        let inner = bb(1.0, 1.0, 3.0, 3.0);
        assert!((outer.iou(&inner) - 0.25).abs() < 1e-6);
        assert_eq!(outer.intersection(&inner), Some(inner));
    }

    #[test]
    fn iou_of_degenerate_box_is_zero() {
        let a = bb(0.0, 0.0, 4.0, 4.0);
        let d = BoundingBox {
            x0: 1.0,
            y0: 1.0,
            x1: 1.0,
            y1: 3.0,
        };
        assert_eq!(d.area(), 0.0);
        assert_eq!(a.iou(&d), 0.0);
        let nan = BoundingBox {
            x0: f32::NAN,
            y0: 0.0,
            x1: 1.0,
            y1: 1.0,
        };
        assert_eq!(a.iou(&nan), 0.0);
    }

    #[test]
    fn new_rejects_zero_area_and_non_finite() {
        assert_eq!(
            BoundingBox::new(1.0, 1.0, 1.0, 2.0),
            Err(LocalizeError::ZeroAreaBox {
                x0: 1.0,
                y0: 1.0,
                x1: 1.0,
                y1: 2.0
            })
        );
        assert!(matches!(
            BoundingBox::new(0.0, 5.0, 1.0, 2.0),
            Err(LocalizeError::ZeroAreaBox { .. })
        ));
        assert_eq!(
            BoundingBox::new(0.0, 0.0, f32::INFINITY, 2.0),
            Err(LocalizeError::NonFinite { index: 2 })
        );
        assert_eq!(
            BoundingBox::new(0.0, f32::NAN, 1.0, 2.0),
            Err(LocalizeError::NonFinite { index: 1 })
        );
    }

    #[test]
    fn clamp_to_cuts_and_drops() {
        let b = bb(-5.0, 2.0, 12.0, 30.0);
        assert_eq!(b.clamp_to(10u32, 20u32), Some(bb(0.0, 2.0, 10.0, 20.0)));
        assert_eq!(b.clamp_to(10.0f32, 20.0f32), Some(bb(0.0, 2.0, 10.0, 20.0)));
        assert_eq!(bb(11.0, 0.0, 12.0, 1.0).clamp_to(10, 10), None);
        assert_eq!(bb(-3.0, 0.0, 0.0, 1.0).clamp_to(10, 10), None);
        assert_eq!(b.clamp_to(0, 10), None);
        let nan = BoundingBox {
            x0: f32::NAN,
            y0: 0.0,
            x1: 1.0,
            y1: 1.0,
        };
        assert_eq!(nan.clamp_to(10, 10), None);
    }

    #[test]
    fn scale_translate_contains() {
        let b = bb(1.0, 2.0, 3.0, 5.0);
        assert_eq!(b.scale(2.0, 10.0), bb(2.0, 20.0, 6.0, 50.0));
        assert_eq!(b.scale(-1.0, 1.0), bb(-3.0, 2.0, -1.0, 5.0));
        assert_eq!(b.translate(-1.0, 0.5), bb(0.0, 2.5, 2.0, 5.5));
        assert!(b.contains_point(1.0, 2.0));
        assert!(b.contains_point(2.9, 4.9));
        assert!(!b.contains_point(3.0, 3.0));
        assert!(!b.contains_point(2.0, 5.0));
        assert!(!b.contains_point(0.99, 3.0));
    }
}
