//! How an image became the network input, and the way back.
//!
//! Coordinates are continuous: pixel `(x, y)` covers `[x, x + 1) x [y, y + 1)`.
//! A resize from length `a` to length `b` maps continuous coordinate `u` to
//! `u * b / a` (pixel centres to pixel centres, as in bilinear resizing with
//! `align_corners = false`), and a crop at offset `o` maps `u` to `u - o`.

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::resize::{Tap, sample_grid};
use crate::{BoundingBox, LocalizeError, Result, SaliencyMap};

/// How an image is turned into the network input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResizeMode {
    /// Resize straight to the input size, ignoring the aspect ratio; no crop (the default:
    /// the whole image is seen and every box maps back).
    #[default]
    Stretch,
    /// Resize so that the shorter side becomes `shorter_side` (keeping the
    /// aspect ratio, the longer side rounded down as torchvision does), then
    /// take a centre crop of the input size, e.g. 256 then 224.
    ResizeCrop {
        /// Length of the shorter side after the resize.
        shorter_side: u32,
    },
}

/// The geometry linking an original image to the network input.
///
/// ```
/// use feedbacknet_localize::{BoundingBox, ImageGeometry, ResizeMode};
/// let g = ImageGeometry::new(500, 375, 224, 224, ResizeMode::ResizeCrop { shorter_side: 256 })?;
/// assert_eq!(g.resized_size(), (341, 256));
/// assert_eq!(g.crop_offset(), (58, 16));
/// let whole_input = BoundingBox::new(0.0, 0.0, 224.0, 224.0)?;
/// let in_image = g.box_to_image(&whole_input).unwrap();
/// assert!((in_image.x0 - 58.0 * 500.0 / 341.0).abs() < 1e-3);
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGeometry")]
pub struct ImageGeometry {
    image_w: u32,
    image_h: u32,
    input_w: u32,
    input_h: u32,
    mode: ResizeMode,
    resized_w: u32,
    resized_h: u32,
    offset_x: u32,
    offset_y: u32,
}

#[derive(Deserialize)]
struct RawGeometry {
    image_w: u32,
    image_h: u32,
    input_w: u32,
    input_h: u32,
    mode: ResizeMode,
}

impl TryFrom<RawGeometry> for ImageGeometry {
    type Error = LocalizeError;
    fn try_from(r: RawGeometry) -> Result<Self> {
        ImageGeometry::new(r.image_w, r.image_h, r.input_w, r.input_h, r.mode)
    }
}

impl ImageGeometry {
    /// Describes an `image_w x image_h` image fed to an `input_w x input_h`
    /// network input through `mode`.
    ///
    /// Errors: [`LocalizeError::EmptyImage`] for a zero image or input size,
    /// [`LocalizeError::InvalidParameter`] for `shorter_side == 0`, a resized
    /// side that does not fit in `u32`, or a crop larger than the resized
    /// image.
    pub fn new(
        image_w: u32,
        image_h: u32,
        input_w: u32,
        input_h: u32,
        mode: ResizeMode,
    ) -> Result<Self> {
        if image_w == 0 || image_h == 0 || input_w == 0 || input_h == 0 {
            return Err(LocalizeError::EmptyImage);
        }
        let (resized_w, resized_h) = match mode {
            ResizeMode::Stretch => (input_w, input_h),
            ResizeMode::ResizeCrop { shorter_side: s } => {
                if s == 0 {
                    return Err(invalid("shorter_side", s, "must be positive"));
                }
                // Longer side = floor(s * long / short), exactly.
                let scaled = |long: u32, short: u32| -> Result<u32> {
                    let v = u64::from(s) * u64::from(long) / u64::from(short);
                    u32::try_from(v)
                        .map_err(|_| invalid("shorter_side", s, "resized image side overflows u32"))
                };
                if image_w <= image_h {
                    (s, scaled(image_h, image_w)?)
                } else {
                    (scaled(image_w, image_h)?, s)
                }
            }
        };
        if input_w > resized_w || input_h > resized_h {
            return Err(invalid(
                "input size",
                format!("{input_w}x{input_h}"),
                format!("crop is larger than the resized image {resized_w}x{resized_h}"),
            ));
        }
        Ok(Self {
            image_w,
            image_h,
            input_w,
            input_h,
            mode,
            resized_w,
            resized_h,
            offset_x: (resized_w - input_w) / 2,
            offset_y: (resized_h - input_h) / 2,
        })
    }

    /// Size of the original image.
    pub fn image_size(&self) -> (u32, u32) {
        (self.image_w, self.image_h)
    }

    /// Size of the network input.
    pub fn input_size(&self) -> (u32, u32) {
        (self.input_w, self.input_h)
    }

    /// The resize mode.
    pub fn mode(&self) -> ResizeMode {
        self.mode
    }

    /// Size of the image after the resize, before the crop (equal to the
    /// input size for [`ResizeMode::Stretch`]).
    pub fn resized_size(&self) -> (u32, u32) {
        (self.resized_w, self.resized_h)
    }

    /// Top-left corner of the crop in resized coordinates:
    /// `floor((resized - input) / 2)`; `(0, 0)` for [`ResizeMode::Stretch`].
    pub fn crop_offset(&self) -> (u32, u32) {
        (self.offset_x, self.offset_y)
    }

    /// Resized pixels per original pixel, along x and y.
    fn scales(&self) -> (f64, f64) {
        (
            f64::from(self.resized_w) / f64::from(self.image_w),
            f64::from(self.resized_h) / f64::from(self.image_h),
        )
    }

    /// Maps a box from network-input coordinates to original-image pixels,
    /// clamped to the image; `None` if nothing is left.
    pub fn box_to_image(&self, b: &BoundingBox) -> Option<BoundingBox> {
        let (sx, sy) = self.scales();
        let (ox, oy) = (f64::from(self.offset_x), f64::from(self.offset_y));
        let fx = |x: f32| ((f64::from(x) + ox) / sx) as f32;
        let fy = |y: f32| ((f64::from(y) + oy) / sy) as f32;
        BoundingBox {
            x0: fx(b.x0),
            y0: fy(b.y0),
            x1: fx(b.x1),
            y1: fy(b.y1),
        }
        .clamp_to(self.image_w, self.image_h)
    }

    /// Maps a box from original-image pixels to network-input coordinates,
    /// clamped to the input; `None` if nothing is left (e.g. the box lies in
    /// a part of the image the crop removed).
    pub fn box_to_input(&self, b: &BoundingBox) -> Option<BoundingBox> {
        let (sx, sy) = self.scales();
        let (ox, oy) = (f64::from(self.offset_x), f64::from(self.offset_y));
        let fx = |x: f32| (f64::from(x) * sx - ox) as f32;
        let fy = |y: f32| (f64::from(y) * sy - oy) as f32;
        BoundingBox {
            x0: fx(b.x0),
            y0: fy(b.y0),
            x1: fx(b.x1),
            y1: fy(b.y1),
        }
        .clamp_to(self.input_w, self.input_h)
    }

    /// Maps a map at network-input resolution to a map of the original image
    /// size.
    ///
    /// Every image pixel centre is mapped into input coordinates and sampled
    /// bilinearly (edges clamped); pixels whose centre falls outside the
    /// input (the parts removed by a crop) are 0. For
    /// [`ResizeMode::Stretch`] this equals
    /// [`SaliencyMap::resize_bilinear`] to the image size. No intermediate
    /// at resized resolution is built.
    ///
    /// Errors: [`LocalizeError::ShapeMismatch`] when the map is not
    /// `input_w x input_h`; [`LocalizeError::InvalidParameter`] when the
    /// image area overflows `usize`.
    pub fn map_to_image(&self, map: &SaliencyMap) -> Result<SaliencyMap> {
        let (iw, ih) = (self.input_w as usize, self.input_h as usize);
        if (map.width(), map.height()) != (iw, ih) {
            return Err(LocalizeError::ShapeMismatch {
                expected: format!("{iw}x{ih} map"),
                got: format!("{}x{} map", map.width(), map.height()),
            });
        }
        crate::error::checked_area(self.image_w as usize, self.image_h as usize)?;
        let (sx, sy) = self.scales();
        let taps = |len: u32, scale: f64, offset: u32, input: usize| -> Vec<Option<Tap>> {
            (0..len)
                .map(|p| {
                    // Continuous input coordinate of the pixel centre.
                    let u = (f64::from(p) + 0.5) * scale - f64::from(offset);
                    (u >= 0.0 && u < input as f64).then(|| Tap::at(u - 0.5, input))
                })
                .collect()
        };
        let xs = taps(self.image_w, sx, self.offset_x, iw);
        let ys = taps(self.image_h, sy, self.offset_y, ih);
        Ok(sample_grid(map, &xs, &ys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bb(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::new(x0, y0, x1, y1).unwrap()
    }

    fn close(a: &BoundingBox, b: &BoundingBox, tol: f32) -> bool {
        (a.x0 - b.x0).abs() < tol
            && (a.y0 - b.y0).abs() < tol
            && (a.x1 - b.x1).abs() < tol
            && (a.y1 - b.y1).abs() < tol
    }

    const CROP: ResizeMode = ResizeMode::ResizeCrop { shorter_side: 256 };

    #[test]
    fn resize_crop_numbers_landscape_and_portrait() {
        let g = ImageGeometry::new(500, 375, 224, 224, CROP).unwrap();
        assert_eq!(g.resized_size(), (341, 256));
        assert_eq!(g.crop_offset(), (58, 16));
        let g = ImageGeometry::new(375, 500, 224, 224, CROP).unwrap();
        assert_eq!(g.resized_size(), (256, 341));
        assert_eq!(g.crop_offset(), (16, 58));
        let g = ImageGeometry::new(300, 300, 224, 224, CROP).unwrap();
        assert_eq!((g.resized_size(), g.crop_offset()), ((256, 256), (16, 16)));
    }

    #[test]
    fn stretch_numbers() {
        let g = ImageGeometry::new(640, 480, 224, 224, ResizeMode::Stretch).unwrap();
        assert_eq!(g.resized_size(), (224, 224));
        assert_eq!(g.crop_offset(), (0, 0));
        let b = g.box_to_image(&bb(0.0, 0.0, 112.0, 56.0)).unwrap();
        assert!(close(&b, &bb(0.0, 0.0, 320.0, 120.0), 1e-3));
    }

    #[test]
    fn constructor_errors() {
        assert_eq!(
            ImageGeometry::new(0, 10, 4, 4, ResizeMode::Stretch),
            Err(LocalizeError::EmptyImage)
        );
        assert_eq!(
            ImageGeometry::new(10, 10, 4, 0, ResizeMode::Stretch),
            Err(LocalizeError::EmptyImage)
        );
        assert!(matches!(
            ImageGeometry::new(
                500,
                375,
                224,
                224,
                ResizeMode::ResizeCrop { shorter_side: 200 }
            ),
            Err(LocalizeError::InvalidParameter { .. })
        ));
        assert!(matches!(
            ImageGeometry::new(500, 375, 342, 224, CROP),
            Err(LocalizeError::InvalidParameter { .. })
        ));
        assert!(ImageGeometry::new(500, 375, 341, 256, CROP).is_ok());
        assert!(matches!(
            ImageGeometry::new(500, 375, 1, 1, ResizeMode::ResizeCrop { shorter_side: 0 }),
            Err(LocalizeError::InvalidParameter { .. })
        ));
        assert!(matches!(
            ImageGeometry::new(
                u32::MAX,
                1,
                1,
                1,
                ResizeMode::ResizeCrop { shorter_side: 2 }
            ),
            Err(LocalizeError::InvalidParameter { .. })
        ));
    }

    #[test]
    fn box_round_trips() {
        let g = ImageGeometry::new(500, 375, 224, 224, CROP).unwrap();
        // Input -> image: x0 = (10 + 58) * 500 / 341.
        let input_box = bb(10.0, 20.0, 200.0, 150.0);
        let img = g.box_to_image(&input_box).unwrap();
        assert!((img.x0 - 68.0 * 500.0 / 341.0).abs() < 1e-3);
        assert!((img.y0 - 36.0 * 375.0 / 256.0).abs() < 1e-3);
        assert!(close(&g.box_to_input(&img).unwrap(), &input_box, 1e-3));
        // Image -> input -> image for a box inside the crop.
        let image_box = bb(100.0, 50.0, 300.0, 200.0);
        let inp = g.box_to_input(&image_box).unwrap();
        assert!((inp.x0 - (100.0 * 341.0 / 500.0 - 58.0)).abs() < 1e-3);
        assert!(close(&g.box_to_image(&inp).unwrap(), &image_box, 1e-3));

        let s = ImageGeometry::new(640, 480, 224, 160, ResizeMode::Stretch).unwrap();
        let image_box = bb(13.0, 7.5, 600.0, 479.0);
        let back = s
            .box_to_image(&s.box_to_input(&image_box).unwrap())
            .unwrap();
        assert!(close(&back, &image_box, 1e-3));
    }

    #[test]
    fn boxes_are_clamped_or_dropped() {
        let g = ImageGeometry::new(500, 375, 224, 224, CROP).unwrap();
        // The image's left strip is cropped away: nothing left in the input.
        assert_eq!(g.box_to_input(&bb(0.0, 0.0, 50.0, 50.0)), None);
        // A box larger than the input maps to at most the image.
        let b = g.box_to_image(&bb(-500.0, -500.0, 1000.0, 1000.0)).unwrap();
        assert_eq!(b, bb(0.0, 0.0, 500.0, 375.0));
        // The whole image covers the whole input.
        let b = g.box_to_input(&bb(0.0, 0.0, 500.0, 375.0)).unwrap();
        assert_eq!(b, bb(0.0, 0.0, 224.0, 224.0));
    }

    #[test]
    fn map_to_image_resize_crop_is_zero_outside_the_crop() {
        let g = ImageGeometry::new(500, 375, 224, 224, CROP).unwrap();
        let ones = SaliencyMap::from_fn(224, 224, |_, _| 1.0).unwrap();
        let m = g.map_to_image(&ones).unwrap();
        assert_eq!((m.width(), m.height()), (500, 375));
        // Crop in image x: [58, 282) * 500/341 = [85.04, 413.49); pixel centres
        // 85.5 ..= 412.5 inside. y: [16, 240) * 375/256 = [23.44, 351.56):
        // centres 23.5 ..= 351.5 inside.
        for (x, y, v) in [
            (0, 0, 0.0),
            (84, 187, 0.0),
            (85, 187, 1.0),
            (412, 187, 1.0),
            (413, 187, 0.0),
            (499, 187, 0.0),
            (250, 22, 0.0),
            (250, 23, 1.0),
            (250, 351, 1.0),
            (250, 352, 0.0),
        ] {
            assert_eq!(m.get(x, y), v, "pixel ({x}, {y})");
        }
        let inside = m.data().iter().filter(|&&v| v == 1.0).count();
        assert_eq!(inside, (412 - 85 + 1) * (351 - 23 + 1));
        assert_eq!(m.data().iter().filter(|&&v| v != 0.0).count(), inside);
    }

    #[test]
    fn map_to_image_places_a_peak_where_box_to_image_says() {
        let g = ImageGeometry::new(500, 375, 224, 224, CROP).unwrap();
        let peak = SaliencyMap::from_fn(224, 224, |x, y| {
            if (100..110).contains(&x) && (50..60).contains(&y) {
                1.0
            } else {
                0.0
            }
        })
        .unwrap();
        let m = g.map_to_image(&peak).unwrap();
        let b = g.box_to_image(&bb(100.0, 50.0, 110.0, 60.0)).unwrap();
        let (cx, cy) = (
            ((b.x0 + b.x1) / 2.0) as usize,
            ((b.y0 + b.y1) / 2.0) as usize,
        );
        assert_eq!(m.get(cx, cy), 1.0);
        assert!(m.mass_fraction_in(&b) > 0.8);
    }

    #[test]
    fn map_to_image_stretch_equals_resize() {
        let g = ImageGeometry::new(50, 30, 16, 12, ResizeMode::Stretch).unwrap();
        let m = SaliencyMap::from_fn(16, 12, |x, y| (x * y) as f32).unwrap();
        assert_eq!(
            g.map_to_image(&m).unwrap(),
            m.resize_bilinear(50, 30).unwrap()
        );
        let wrong = SaliencyMap::zeros(12, 16).unwrap();
        assert!(matches!(
            g.map_to_image(&wrong),
            Err(LocalizeError::ShapeMismatch { .. })
        ));
    }
}
