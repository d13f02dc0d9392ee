//! Drawing saliency overlays and boxes onto photos.
//!
//! Self-contained: depends only on `image` and `feedbacknet-localize`, and
//! never panics, whatever the boxes or maps look like.

use feedbacknet_localize::{BoundingBox, SaliencyMap};
use image::{Rgb, RgbImage};

/// Outline colour of the first (best) box: bright green.
pub const BEST_BOX_COLOR: [u8; 3] = [0, 255, 0];
/// Outline colour of every other box: yellow.
pub const OTHER_BOX_COLOR: [u8; 3] = [255, 255, 0];
/// Outline thickness of boxes drawn by [`overlay`], in pixels.
pub const BOX_THICKNESS: u32 = 3;

/// Maps `value` in `[0, 1]` to the "turbo" colormap (near black, blue, cyan,
/// green, yellow, red, dark red). Values outside the range are clamped; NaN maps
/// like 0.
///
/// Uses the polynomial approximation published with Google's Turbo colormap.
pub fn heat_color(value: f32) -> [u8; 3] {
    let x = if value.is_nan() {
        0.0
    } else {
        f64::from(value.clamp(0.0, 1.0))
    };
    let poly = |c: [f64; 6]| c.iter().rev().fold(0.0, |acc, &k| acc * x + k);
    let red = poly([
        0.13572138,
        4.61539260,
        -42.66032258,
        132.13108234,
        -152.94239396,
        59.28637943,
    ]);
    let green = poly([
        0.09140261,
        2.19418839,
        4.84296658,
        -14.18503333,
        4.27729857,
        2.82956604,
    ]);
    let blue = poly([
        0.10667330,
        12.64194608,
        -60.58204836,
        110.36276771,
        -89.90310912,
        27.34824973,
    ]);
    let to_u8 = |c: f64| (c.clamp(0.0, 1.0) * 255.0).round() as u8;
    [to_u8(red), to_u8(green), to_u8(blue)]
}

/// Blends the colour-mapped saliency `map` over `image` and outlines `boxes`.
///
/// The map is normalised (negatives clamped to 0, maximum scaled to 1) and,
/// if its size differs from the image's, resized bilinearly to it. Each
/// output pixel is `(1 - alpha) * photo + alpha * heat_color(value)`, with
/// `alpha` clamped to `[0, 1]` (NaN counts as 0.5). Boxes are in image pixel
/// coordinates and drawn as [`BOX_THICKNESS`]-pixel outlines, the first in
/// [`BEST_BOX_COLOR`], the others in [`OTHER_BOX_COLOR`], clipped to the image.
pub fn overlay(image: &RgbImage, map: &SaliencyMap, boxes: &[BoundingBox], alpha: f32) -> RgbImage {
    let mut out = image.clone();
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return out;
    }
    let alpha = if alpha.is_nan() {
        0.5
    } else {
        alpha.clamp(0.0, 1.0)
    };
    let resized;
    let map = if (map.width(), map.height()) == (w as usize, h as usize) {
        map
    } else {
        match map.resize_bilinear(w as usize, h as usize) {
            Ok(m) => {
                resized = m;
                &resized
            }
            // Unreachable for a non-empty image; keep the photo as is.
            Err(_) => return out,
        }
    };
    let norm = map.normalized();
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let heat = heat_color(norm.get(x as usize, y as usize));
        for (channel, c) in pixel.0.iter_mut().zip(heat) {
            let blended = (1.0 - alpha) * f32::from(*channel) + alpha * f32::from(c);
            *channel = blended.round().clamp(0.0, 255.0) as u8;
        }
    }
    for (i, b) in boxes.iter().enumerate() {
        let color = if i == 0 {
            BEST_BOX_COLOR
        } else {
            OTHER_BOX_COLOR
        };
        draw_rect(&mut out, b, color, BOX_THICKNESS);
    }
    out
}

/// Draws the outline of `b` (continuous pixel coordinates, `x1`/`y1`
/// exclusive) with the given `thickness`, growing inwards from the pixels the
/// box covers: columns `floor(x0) ..= ceil(x1) - 1`, rows likewise.
///
/// Parts outside the image are clipped; boxes wholly outside, degenerate or
/// with NaN coordinates draw nothing. `thickness == 0` draws nothing.
pub fn draw_rect(image: &mut RgbImage, b: &BoundingBox, color: [u8; 3], thickness: u32) {
    let coords = [b.x0, b.y0, b.x1, b.y1];
    if thickness == 0 || coords.iter().any(|v| v.is_nan()) {
        return;
    }
    // `as` saturates, so infinite coordinates become i64::MIN / MAX.
    let left = f64::from(b.x0).floor() as i64;
    let top = f64::from(b.y0).floor() as i64;
    let right = (f64::from(b.x1).ceil() as i64).saturating_sub(1);
    let bottom = (f64::from(b.y1).ceil() as i64).saturating_sub(1);
    if right < left || bottom < top {
        return;
    }
    let t = i64::from(thickness) - 1;
    let bands = [
        (left, top, right, top.saturating_add(t).min(bottom)),
        (left, bottom.saturating_sub(t).max(top), right, bottom),
        (left, top, left.saturating_add(t).min(right), bottom),
        (right.saturating_sub(t).max(left), top, right, bottom),
    ];
    for (x0, y0, x1, y1) in bands {
        fill_clipped(image, x0, y0, x1, y1, color);
    }
}

/// Fills the inclusive pixel rectangle `[x0, x1] x [y0, y1]`, clipped.
fn fill_clipped(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
    let (w, h) = image.dimensions();
    let (w, h) = (i64::from(w), i64::from(h));
    let (x0, y0) = (x0.max(0), y0.max(0));
    let (x1, y1) = (x1.min(w - 1), y1.min(h - 1));
    if x1 < x0 || y1 < y0 {
        return;
    }
    for y in y0..=y1 {
        for x in x0..=x1 {
            // In range: 0 <= x < w and 0 <= y < h, both from u32.
            image.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 5 % 256) as u8, (y * 7 % 256) as u8, 128])
        })
    }

    fn ramp(w: usize, h: usize) -> SaliencyMap {
        SaliencyMap::from_fn(w, h, |x, y| (x + y) as f32).unwrap()
    }

    fn bb(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::new(x0, y0, x1, y1).unwrap()
    }

    #[test]
    fn heat_color_ends_and_clamping() {
        let (lo, mid, hi) = (heat_color(0.0), heat_color(0.5), heat_color(1.0));
        // Turbo: near black at 0, blue at 0.15, green in the middle, dark red at 1.
        assert!(lo.iter().all(|&c| c < 60), "{lo:?}");
        let blue = heat_color(0.15);
        assert!(
            blue[2] > 200 && blue[2] > blue[0] && blue[2] > blue[1],
            "{blue:?}"
        );
        assert!(mid[1] > mid[2] && mid[1] > 150, "{mid:?}");
        assert!(hi[0] > hi[1] && hi[0] > hi[2], "{hi:?}");
        assert_eq!(heat_color(-3.0), lo);
        assert_eq!(heat_color(7.0), hi);
        assert_eq!(heat_color(f32::NAN), lo);
        assert_eq!(heat_color(f32::INFINITY), hi);
    }

    #[test]
    fn overlay_has_the_image_size_even_for_other_map_sizes() {
        let img = photo(40, 30);
        for map in [ramp(40, 30), ramp(7, 5), ramp(100, 90)] {
            let out = overlay(&img, &map, &[], 0.5);
            assert_eq!(out.dimensions(), (40, 30));
        }
    }

    #[test]
    fn overlay_blends_per_alpha() {
        let img = photo(20, 10);
        let map = SaliencyMap::from_fn(20, 10, |_, _| 1.0).unwrap();
        let hot = heat_color(1.0);
        assert_eq!(overlay(&img, &map, &[], 0.0), img);
        let full = overlay(&img, &map, &[], 1.0);
        assert!(full.pixels().all(|p| p.0 == hot));
        let half = overlay(&img, &map, &[], 0.5);
        let (p, q) = (img.get_pixel(3, 4).0, half.get_pixel(3, 4).0);
        for c in 0..3 {
            let expected = (0.5 * f32::from(p[c]) + 0.5 * f32::from(hot[c])).round() as u8;
            assert_eq!(q[c], expected);
        }
        // An all-zero map colours everything like value 0.
        let zero = SaliencyMap::zeros(20, 10).unwrap();
        assert!(
            overlay(&img, &zero, &[], 1.0)
                .pixels()
                .all(|p| p.0 == heat_color(0.0))
        );
    }

    #[test]
    fn box_outline_has_box_colour_and_interior_keeps_blend() {
        let img = photo(40, 30);
        let map = ramp(40, 30);
        let plain = overlay(&img, &map, &[], 0.4);
        let boxes = [bb(10.0, 5.0, 30.0, 25.0), bb(1.0, 1.0, 8.0, 8.0)];
        let out = overlay(&img, &map, &boxes, 0.4);
        // Box 0 covers columns 10..=29 and rows 5..=24; 3-pixel outline.
        for (x, y) in [
            (10, 5),
            (29, 24),
            (12, 15),
            (27, 15),
            (20, 7),
            (20, 22),
            (10, 24),
            (29, 5),
        ] {
            assert_eq!(out.get_pixel(x, y).0, BEST_BOX_COLOR, "outline ({x}, {y})");
        }
        for (x, y) in [
            (13, 8),
            (26, 21),
            (20, 15),
            (9, 15),
            (30, 15),
            (20, 4),
            (20, 25),
        ] {
            assert_eq!(
                out.get_pixel(x, y),
                plain.get_pixel(x, y),
                "not outline ({x}, {y})"
            );
        }
        // The second box is yellow.
        assert_eq!(out.get_pixel(1, 1).0, OTHER_BOX_COLOR);
        assert_eq!(out.get_pixel(7, 4).0, OTHER_BOX_COLOR);
        assert_eq!(out.get_pixel(4, 4), plain.get_pixel(4, 4));
    }

    #[test]
    fn fractional_boxes_cover_touched_pixels() {
        let mut img = RgbImage::new(10, 10);
        draw_rect(&mut img, &bb(2.5, 2.5, 6.2, 6.9), [255, 0, 0], 1);
        // Columns 2..=6, rows 2..=6.
        assert_eq!(img.get_pixel(2, 2).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(6, 6).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(4, 6).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(3, 3).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(7, 4).0, [0, 0, 0]);
    }

    #[test]
    fn thick_outline_fills_small_boxes() {
        let mut img = RgbImage::new(10, 10);
        draw_rect(&mut img, &bb(1.0, 1.0, 5.0, 4.0), [9, 9, 9], 3);
        let painted = img.pixels().filter(|p| p.0 == [9, 9, 9]).count();
        assert_eq!(painted, 4 * 3);
        draw_rect(&mut img, &bb(6.0, 6.0, 8.0, 8.0), [1, 1, 1], 0);
        assert_eq!(img.get_pixel(6, 6).0, [0, 0, 0]);
    }

    #[test]
    fn partly_outside_box_is_clipped() {
        let mut img = RgbImage::new(40, 30);
        draw_rect(&mut img, &bb(30.0, 20.0, 100.0, 100.0), [0, 255, 0], 3);
        assert_eq!(img.get_pixel(30, 29).0, [0, 255, 0]);
        assert_eq!(img.get_pixel(32, 25).0, [0, 255, 0]);
        assert_eq!(img.get_pixel(39, 22).0, [0, 255, 0]);
        // The right and bottom edges are off-image: the inside stays untouched.
        assert_eq!(img.get_pixel(39, 29).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(33, 23).0, [0, 0, 0]);
    }

    #[test]
    fn out_of_bounds_and_odd_boxes_do_not_panic() {
        let img = photo(16, 12);
        let map = ramp(16, 12);
        let odd = [
            bb(-50.0, -50.0, -10.0, -10.0),
            bb(100.0, 100.0, 200.0, 300.0),
            bb(-1e30, -1e30, 1e30, 1e30),
            bb(-5.0, 3.0, 5.0, 1e9),
            BoundingBox {
                x0: f32::NAN,
                y0: 0.0,
                x1: 4.0,
                y1: 4.0,
            },
            BoundingBox {
                x0: f32::NEG_INFINITY,
                y0: 0.0,
                x1: f32::INFINITY,
                y1: 4.0,
            },
            BoundingBox {
                x0: 5.0,
                y0: 5.0,
                x1: 2.0,
                y1: 8.0,
            },
        ];
        let plain = overlay(&img, &map, &[], 0.5);
        let out = overlay(&img, &map, &odd[..2], 0.5);
        assert_eq!(out, plain, "wholly outside boxes draw nothing");
        let out = overlay(&img, &map, &odd, 0.5);
        assert_eq!(out.dimensions(), (16, 12));
        // The huge yellow box's outline is off-image, its interior untouched.
        assert_eq!(out.get_pixel(10, 10), plain.get_pixel(10, 10));
        let mut empty = RgbImage::new(0, 0);
        draw_rect(&mut empty, &odd[2], [1, 2, 3], 3);
        assert_eq!(overlay(&empty, &map, &odd, 0.5).dimensions(), (0, 0));
    }
}
