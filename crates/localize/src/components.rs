//! Connected-component labelling of binary masks.

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

/// The provisional labels of a two-pass labelling and which of them are joined (a union-find
/// forest; label 0 is the background).
struct Labels {
    parent: Vec<u32>,
}

impl Default for Labels {
    fn default() -> Self {
        Self { parent: vec![0] }
    }
}

#[allow(
    clippy::indexing_slicing,
    reason = "union-find: every label stored was issued by `fresh`, so it indexes `parent`"
)]
impl Labels {
    /// A new label, joined to none.
    fn fresh(&mut self) -> u32 {
        let label = self.parent.len() as u32;
        self.parent.push(label);
        label
    }

    /// The representative of `label`'s set (paths halved on the way).
    fn root(&mut self, mut label: u32) -> u32 {
        while self.parent[label as usize] != label {
            let grand = self.parent[self.parent[label as usize] as usize];
            self.parent[label as usize] = grand;
            label = grand;
        }
        label
    }

    /// Joins the sets of the labels `a` and `b` (neither the background); answers the joined
    /// set's root (the smaller of the two roots).
    fn join(&mut self, a: u32, b: u32) -> u32 {
        let (a, b) = (self.root(a), self.root(b));
        let (low, high) = (a.min(b), a.max(b));
        self.parent[high as usize] = low;
        low
    }
}

/// Labels the 8-connected components of `mask`.
///
/// The result is sorted by area, largest first; ties are broken by the top
/// edge of the box (top-most first), then its left edge (left-most first),
/// then by raster order of each component's first pixel, so the order is
/// fully deterministic. The labelling takes two raster passes (provisional
/// labels joined by union-find, then one count per component): no recursion,
/// and four bytes per pixel of extra memory.
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
#[allow(
    clippy::indexing_slicing,
    reason = "raster scan: pixel indices are below w * h = on.len(), labels below parent.len()"
)]
pub fn connected_components(mask: &Mask) -> Vec<Component> {
    let (w, h) = (mask.width(), mask.height());
    let on = mask.data();
    let mut labels = Labels::default();
    // Pass 1: each on pixel takes the label of an earlier neighbour (north; else west or
    // north-west, joined to north-east; else north-east), or starts a label. North touches the
    // other three, and west touches north-west, so these joins are all that is needed.
    let mut pixel_labels = vec![0u32; on.len()];
    for y in 0..h {
        let row = y * w;
        for x in (0..w).filter(|&x| on[row + x]) {
            let i = row + x;
            let at = |j: Option<usize>| j.map_or(0, |j| pixel_labels[j]);
            let north = (y > 0).then(|| i - w);
            let north_east = north.filter(|_| x + 1 < w).map(|n| n + 1);
            let west = (x > 0).then(|| i - 1);
            let north_west = north.filter(|_| x > 0).map(|n| n - 1);
            let label = match (at(north), at(west).max(at(north_west)), at(north_east)) {
                (0, 0, 0) => labels.fresh(),
                (0, 0, ne) => ne,
                (0, left, 0) => left,
                (0, left, ne) => labels.join(left, ne),
                (n, _, _) => n,
            };
            pixel_labels[i] = label;
        }
    }
    // Every provisional label's final representative.
    let roots: Vec<u32> = (0..labels.parent.len() as u32)
        .map(|l| labels.root(l))
        .collect();
    // Pass 2: area and extent per component, numbered in raster order of their first pixel.
    let mut index = vec![usize::MAX; labels.parent.len()];
    let mut found: Vec<(usize, [usize; 4])> = Vec::new();
    for y in 0..h {
        for x in (0..w).filter(|&x| on[y * w + x]) {
            let root = roots[pixel_labels[y * w + x] as usize] as usize;
            if index[root] == usize::MAX {
                index[root] = found.len();
                found.push((0, [x, y, x, y]));
            }
            let (area, [xmin, ymin, xmax, ymax]) = &mut found[index[root]];
            *area += 1;
            *xmin = (*xmin).min(x);
            *ymin = (*ymin).min(y);
            *xmax = (*xmax).max(x);
            *ymax = (*ymax).max(y);
        }
    }

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

    /// The flood fill that the two-pass labelling replaced: the components in raster order of
    /// their first pixel, as `(area, [xmin, ymin, xmax, ymax])`.
    fn flood_fill(mask: &Mask) -> Vec<(usize, [usize; 4])> {
        let (w, h) = (mask.width(), mask.height());
        let on = mask.data();
        let mut seen = vec![false; on.len()];
        let mut found = Vec::new();
        for start in 0..on.len() {
            if !on[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let (mut area, mut b) = (0, [usize::MAX, usize::MAX, 0, 0]);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % w, i / w);
                area += 1;
                b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let j = ny * w + nx;
                        if on[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            found.push((area, b));
        }
        found
    }

    #[test]
    fn random_masks_label_as_a_flood_fill_does() {
        // A fixed-seed generator: masks of several densities and shapes, with many merges
        // of provisional labels (U and spiral shapes arise at 50-60 % density).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (w, h, percent) in [
            (1, 1, 50),
            (17, 9, 30),
            (40, 33, 55),
            (64, 64, 60),
            (7, 50, 80),
        ] {
            for _ in 0..20 {
                let data = (0..w * h).map(|_| next() % 100 < percent).collect();
                let m = Mask::new(w, h, data).unwrap();
                let mut expected = flood_fill(&m);
                expected.sort_by(|a, b| {
                    b.0.cmp(&a.0)
                        .then(a.1[1].cmp(&b.1[1]))
                        .then(a.1[0].cmp(&b.1[0]))
                });
                let got: Vec<(usize, [usize; 4])> = connected_components(&m)
                    .iter()
                    .map(|c| {
                        let b = c.bbox;
                        let corners = [b.x0, b.y0, b.x1 - 1.0, b.y1 - 1.0].map(|v| v as usize);
                        (c.area, corners)
                    })
                    .collect();
                assert_eq!(got, expected, "{w}x{h} at {percent} %");
            }
        }
    }
}
