//! Multi-image panels: a grid of captioned tiles (the `compare` picture).

use image::{Rgb, RgbImage};

/// Writes ASCII `text` at `(x, y)` with the 8x8 bitmap font scaled by `scale`, clipped to the
/// image; characters outside ASCII print as `?`.
pub fn draw_text(image: &mut RgbImage, x: u32, y: u32, text: &str, color: [u8; 3], scale: u32) {
    let (w, h) = image.dimensions();
    for (i, c) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[if c.is_ascii() {
            c as usize
        } else {
            b'?' as usize
        }];
        let left = x as u64 + (i as u64) * 8 * u64::from(scale);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u64 {
                if bits >> col & 1 == 0 {
                    continue;
                }
                for dy in 0..u64::from(scale) {
                    for dx in 0..u64::from(scale) {
                        let px = left + col * u64::from(scale) + dx;
                        let py = u64::from(y) + row as u64 * u64::from(scale) + dy;
                        if px < u64::from(w) && py < u64::from(h) {
                            image.put_pixel(px as u32, py as u32, Rgb(color));
                        }
                    }
                }
            }
        }
    }
}

/// A grid of equally sized tiles, each with a caption bar above it.
pub struct Panel {
    canvas: RgbImage,
    tile: (u32, u32),
}

/// Height of a tile's caption bar, in pixels.
const CAPTION: u32 = 22;
/// Background of the panel.
const BACKGROUND: [u8; 3] = [24, 24, 24];

impl Panel {
    /// An empty panel of `rows x cols` tiles of `tile` pixels.
    pub fn new(rows: u32, cols: u32, tile: (u32, u32)) -> Self {
        let width = cols * tile.0;
        let height = rows * (tile.1 + CAPTION);
        Self {
            canvas: RgbImage::from_pixel(width.max(1), height.max(1), Rgb(BACKGROUND)),
            tile,
        }
    }

    /// Places `picture` (resized to the tile) at `(row, col)` with a caption.
    pub fn put(&mut self, row: u32, col: u32, picture: &RgbImage, caption: &str) {
        let (tw, th) = self.tile;
        let fitted =
            image::imageops::resize(picture, tw, th, image::imageops::FilterType::Triangle);
        let (x, y) = (col * tw, row * (th + CAPTION));
        image::imageops::replace(
            &mut self.canvas,
            &fitted,
            i64::from(x),
            i64::from(y + CAPTION),
        );
        let max_chars = (tw / 8).saturating_sub(1) as usize;
        let text: String = caption.chars().take(max_chars).collect();
        draw_text(&mut self.canvas, x + 4, y + 7, &text, [240, 240, 240], 1);
    }

    /// The finished picture.
    pub fn into_image(self) -> RgbImage {
        self.canvas
    }
}
