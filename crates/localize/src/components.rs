//! Connected-component labelling of binary masks.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{BoundingBox, Mask};

/// One 8-connected group of on pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Number of pixels.
    pub area: usize,
    /// Tight box in continuous coordinates: pixels with x in `xmin..=xmax`
    /// give `x0 = xmin`, `x1 = xmax + 1` (same for y).
    pub bbox: BoundingBox,
}

/// Labels the 8-connected components of `mask`.
///
/// The result is sorted by area, largest first; ties are broken by the top
/// edge of the box (top-most first), then its left edge (left-most first),
/// then by raster order of each component's first pixel, so the order is
/// fully deterministic. The labelling is an iterative breadth-first flood
/// fill, so huge masks cannot overflow the stack; extra memory is one byte per
/// pixel plus the flood front.
///
/// ```
/// use feedbacknet_localize::{connected_components, Mask};
/// // Two pixels touching only at a corner are one 8-connected component.
/// let m = Mask::new(2, 2, vec![true, false, false, true])?;
/// let c = connected_components(&m);
/// assert_eq!(c.len(), 1);
/// assert_eq!(c[0].area, 2);
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
pub fn connected_components(mask: &Mask) -> Vec<Component> {
    let (w, h) = (mask.width(), mask.height());
    let on = mask.data();
    let mut visited = vec![false; on.len()];
    let mut queue = VecDeque::new();
    let mut found: Vec<(usize, [usize; 4])> = Vec::new();

    for start in 0..on.len() {
        if !on[start] || visited[start] {
            continue;
        }
        visited[start] = true;
        queue.push_back(start);
        let mut area = 0usize;
        let (mut xmin, mut ymin, mut xmax, mut ymax) = (usize::MAX, usize::MAX, 0usize, 0usize);
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            area += 1;
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                let row = ny * w;
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = row + nx;
                    if on[j] && !visited[j] {
                        visited[j] = true;
                        queue.push_back(j);
                    }
                }
            }
        }
        found.push((area, [xmin, ymin, xmax, ymax]));
    }

    // Stable sort: equal keys keep raster discovery order.
    found.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1[1].cmp(&b.1[1]))
            .then(a.1[0].cmp(&b.1[0]))
    });
    found
        .into_iter()
        .map(|(area, [xmin, ymin, xmax, ymax])| Component {
            area,
            bbox: BoundingBox {
                x0: xmin as f32,
                y0: ymin as f32,
                x1: (xmax + 1) as f32,
                y1: (ymax + 1) as f32,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a mask from rows of `#` (on) and `.` (off).
    fn mask(rows: &[&str]) -> Mask {
        let w = rows[0].len();
        let data = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        Mask::new(w, rows.len(), data).unwrap()
    }

    fn bb(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::new(x0, y0, x1, y1).unwrap()
    }

    #[test]
    fn diagonal_pixels_are_one_component() {
        let m = mask(&["#...", ".#..", "..#.", "...#"]);
        let c = connected_components(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].area, 4);
        assert_eq!(c[0].bbox, bb(0.0, 0.0, 4.0, 4.0));
        // Anti-diagonal too.
        let m = mask(&["..#", ".#.", "#.."]);
        assert_eq!(connected_components(&m).len(), 1);
    }

    #[test]
    fn two_blobs_exact_boxes_and_areas() {
        let m = mask(&[
            "##.....", //
            "###....", //
            ".......", //
            "....#..", //
            "....##.", //
        ]);
        let c = connected_components(&m);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].area, 5);
        assert_eq!(c[0].bbox, bb(0.0, 0.0, 3.0, 2.0));
        assert_eq!(c[1].area, 3);
        assert_eq!(c[1].bbox, bb(4.0, 3.0, 6.0, 5.0));
    }

    #[test]
    fn larger_blob_first_even_if_later_in_raster_order() {
        let m = mask(&["#....", ".....", "..###", "..###"]);
        let c = connected_components(&m);
        assert_eq!(c.iter().map(|c| c.area).collect::<Vec<_>>(), vec![6, 1]);
        assert_eq!(c[0].bbox, bb(2.0, 2.0, 5.0, 4.0));
        assert_eq!(c[1].bbox, bb(0.0, 0.0, 1.0, 1.0));
    }

    #[test]
    fn ties_are_top_most_then_left_most() {
        let m = mask(&[
            "....#.#", //
            ".......", //
            "#......", //
        ]);
        let c = connected_components(&m);
        let corners: Vec<_> = c.iter().map(|c| (c.area, c.bbox.x0, c.bbox.y0)).collect();
        assert_eq!(corners, vec![(1, 4.0, 0.0), (1, 6.0, 0.0), (1, 0.0, 2.0)]);
    }

    #[test]
    fn tie_broken_by_box_left_edge_not_raster_order() {
        // A (first found in raster order, at (1,0)) and B (found at (6,0))
        // both have 9 pixels and top edge 0, but B's box reaches x = 0.
        let m = mask(&[
            ".####.#", //
            "..###.#", //
            "..##..#", //
            ".....#.", //
            "#####..", //
        ]);
        let c = connected_components(&m);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].area, c[1].area), (9, 9));
        assert_eq!(c[0].bbox, bb(0.0, 0.0, 7.0, 5.0));
        assert_eq!(c[1].bbox, bb(1.0, 0.0, 5.0, 3.0));
    }

    #[test]
    fn empty_mask_has_no_components() {
        let m = mask(&["...", "..."]);
        assert!(connected_components(&m).is_empty());
    }

    #[test]
    fn huge_full_mask_does_not_overflow_the_stack() {
        let m = Mask::new(3000, 3000, vec![true; 3000 * 3000]).unwrap();
        let c = connected_components(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].area, 9_000_000);
        assert_eq!(c[0].bbox, bb(0.0, 0.0, 3000.0, 3000.0));
    }

    #[test]
    fn snake_is_one_component() {
        // A long serpentine path: worst case for recursive flood fills.
        let (w, h) = (101, 101);
        let m = Mask::from_fn(w, h, |x, y| {
            if y % 2 == 0 {
                true
            } else if (y / 2) % 2 == 0 {
                x == w - 1
            } else {
                x == 0
            }
        })
        .unwrap();
        let c = connected_components(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].area, m.count());
    }
}
