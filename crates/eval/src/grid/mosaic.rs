//! Mosaic geometry: cells, boxes mapped into the mosaic, and composing its pixels.

use feedbacknet_localize::BoundingBox;
use image::{DynamicImage, RgbImage, imageops::FilterType};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// One cell of a mosaic, in mosaic pixels: columns `x..x + width`, rows `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellRect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl CellRect {
    /// Whether pixel `(x, y)` lies in the cell.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        let (x0, y0) = (self.x as usize, self.y as usize);
        (x0..x0 + self.width as usize).contains(&x) && (y0..y0 + self.height as usize).contains(&y)
    }
}

/// `n × n` cells of `cell_width × cell_height` pixels, numbered row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MosaicLayout {
    /// Cells per side.
    pub n: usize,
    /// Width of a cell in pixels.
    pub cell_width: u32,
    /// Height of a cell in pixels.
    pub cell_height: u32,
}

impl MosaicLayout {
    /// A layout; errors when a size is 0 or the mosaic's side would pass `u32`.
    pub fn new(n: usize, cell_width: u32, cell_height: u32) -> Result<Self> {
        if n == 0 {
            return Err(invalid("n", n, "must be at least 1"));
        }
        if cell_width == 0 || cell_height == 0 {
            return Err(invalid(
                "cell size",
                (cell_width, cell_height),
                "must not be 0",
            ));
        }
        let n32 = u32::try_from(n).map_err(|_| invalid("n", n, "too large"))?;
        if cell_width.checked_mul(n32).is_none() || cell_height.checked_mul(n32).is_none() {
            return Err(invalid("n", n, "the mosaic would be too large"));
        }
        Ok(Self {
            n,
            cell_width,
            cell_height,
        })
    }

    /// `(width, height)` of the whole mosaic.
    pub fn size(&self) -> (u32, u32) {
        let n = self.n as u32;
        (self.cell_width * n, self.cell_height * n)
    }

    /// Cells in the mosaic, `n²`.
    pub fn cells(&self) -> usize {
        self.n * self.n
    }

    /// Cell `i` (row-major: `i = row · n + column`); `None` past the last cell.
    pub fn cell(&self, i: usize) -> Option<CellRect> {
        if i >= self.cells() {
            return None;
        }
        let (row, column) = ((i / self.n) as u32, (i % self.n) as u32);
        Some(CellRect {
            x: column * self.cell_width,
            y: row * self.cell_height,
            width: self.cell_width,
            height: self.cell_height,
        })
    }

    /// A box of an image of `size = (width, height)` pixels, mapped into `cell` as the image
    /// is stretched into it.
    pub fn map_box(
        &self,
        b: &BoundingBox,
        size: (u32, u32),
        cell: &CellRect,
    ) -> Result<BoundingBox> {
        if size.0 == 0 || size.1 == 0 {
            return Err(invalid("image size", size, "must not be 0"));
        }
        let sx = self.cell_width as f32 / size.0 as f32;
        let sy = self.cell_height as f32 / size.1 as f32;
        let (x, y) = (cell.x as f32, cell.y as f32);
        Ok(BoundingBox::new(
            x + b.x0 * sx,
            y + b.y0 * sy,
            x + b.x1 * sx,
            y + b.y1 * sy,
        )?)
    }

    /// The mosaic of `images` (one per cell, in cell order; missing cells stay black), each
    /// stretched to the cell's size (triangle filter, the aspect ratio ignored, as the
    /// evaluator feeds a whole image).
    pub fn compose(&self, images: &[&DynamicImage]) -> RgbImage {
        let (w, h) = self.size();
        let mut canvas = RgbImage::new(w, h);
        for (i, image) in images.iter().enumerate() {
            let Some(cell) = self.cell(i) else { break };
            let resized = image
                .resize_exact(cell.width, cell.height, FilterType::Triangle)
                .to_rgb8();
            image::imageops::replace(&mut canvas, &resized, i64::from(cell.x), i64::from(cell.y));
        }
        canvas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_tile_the_mosaic_row_by_row() {
        let layout = MosaicLayout::new(3, 10, 8).unwrap();
        assert_eq!(layout.size(), (30, 24));
        assert_eq!(
            layout.cell(5),
            Some(CellRect {
                x: 20,
                y: 8,
                width: 10,
                height: 8
            })
        );
        assert_eq!(layout.cell(9), None);
        let mut covered = vec![0; 30 * 24];
        for i in 0..9 {
            let cell = layout.cell(i).unwrap();
            for (p, count) in covered.iter_mut().enumerate() {
                *count += usize::from(cell.contains(p % 30, p / 30));
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
    }

    #[test]
    fn boxes_follow_their_image_into_the_cell() {
        let layout = MosaicLayout::new(2, 100, 50).unwrap();
        let cell = layout.cell(3).unwrap();
        let b = BoundingBox::new(10.0, 20.0, 200.0, 100.0).unwrap();
        let mapped = layout.map_box(&b, (200, 100), &cell).unwrap();
        assert_eq!(mapped, BoundingBox::new(105.0, 60.0, 200.0, 100.0).unwrap());
        assert!(layout.map_box(&b, (0, 100), &cell).is_err());
        assert!(MosaicLayout::new(2, 0, 5).is_err());
    }

    #[test]
    fn compose_puts_each_image_in_its_cell() {
        let layout = MosaicLayout::new(2, 4, 4).unwrap();
        let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
        let images: Vec<DynamicImage> = colours
            .iter()
            .map(|&c| DynamicImage::ImageRgb8(RgbImage::from_pixel(7, 3, image::Rgb(c))))
            .collect();
        let refs: Vec<&DynamicImage> = images.iter().collect();
        let mosaic = layout.compose(&refs);
        assert_eq!(mosaic.dimensions(), (8, 8));
        assert_eq!(mosaic.get_pixel(1, 1).0, [255, 0, 0]);
        assert_eq!(mosaic.get_pixel(6, 2).0, [0, 255, 0]);
        assert_eq!(mosaic.get_pixel(2, 6).0, [0, 0, 255]);
        assert_eq!(mosaic.get_pixel(6, 6).0, [0, 0, 0]);
    }
}
