//! The MaxBoxAccV2 threshold sweep, done incrementally.
//!
//! Thresholding one map at rising values gives nested masks, so instead of
//! labelling the components of each mask from scratch, the pixels are added
//! from the brightest down and merged into 8-connected components with a
//! union-find, and the component boxes are read off at each threshold on
//! the way. The boxes are exactly those of
//! `connected_components(&map.threshold(t)?)` at every threshold `t`.

use feedbacknet_localize::{BoundingBox, SaliencyMap};

use crate::metrics::max_iou;

/// For each threshold of `sweep` (each in `[0, 1]`), the largest IoU of
/// any 8-connected component's box of `map.threshold(t)` (pixels `> 0` and
/// `>= t * max`) with any of `gt`.
#[allow(
    clippy::indexing_slicing,
    reason = "`order` holds pixel indices of `data` and `by_cut` positions in `sweep`"
)]
pub(crate) fn sweep_ious(map: &SaliencyMap, gt: &[BoundingBox], sweep: &[f32]) -> Vec<f32> {
    let max = map.max();
    let data = map.data();
    let mut order: Vec<usize> = (0..data.len()).filter(|&i| data[i] > 0.0).collect();
    order.sort_unstable_by(|&a, &b| data[b].total_cmp(&data[a]));
    let mut by_cut: Vec<usize> = (0..sweep.len()).collect();
    by_cut.sort_by(|&a, &b| sweep[b].total_cmp(&sweep[a]));
    let mut forest = Forest::new(map.width(), map.height());
    let mut added = 0;
    let mut ious = vec![0.0; sweep.len()];
    for k in by_cut {
        let cut = sweep[k] * max;
        while let Some(&i) = order.get(added).filter(|&&i| data[i] >= cut) {
            forest.add(i);
            added += 1;
        }
        ious[k] = max_iou(&forest.boxes(), gt);
    }
    ious
}

/// Union-find over the pixels added so far, with each component's box.
struct Forest {
    width: usize,
    height: usize,
    /// Parent of each pixel; `usize::MAX` for pixels not added yet.
    parent: Vec<usize>,
    /// Pixel count of each root's component.
    size: Vec<usize>,
    /// `[xmin, ymin, xmax, ymax]` of each root's component (inclusive).
    extent: Vec<[usize; 4]>,
    /// The current roots, and each root's position in that list.
    roots: Vec<usize>,
    slot: Vec<usize>,
}

const ABSENT: usize = usize::MAX;

#[allow(
    clippy::indexing_slicing,
    reason = "union-find over the pixels of one map: every index stored is a pixel below w * h"
)]
impl Forest {
    fn new(width: usize, height: usize) -> Self {
        let n = width * height;
        Self {
            width,
            height,
            parent: vec![ABSENT; n],
            size: vec![0; n],
            extent: vec![[0; 4]; n],
            roots: Vec::new(),
            slot: vec![0; n],
        }
    }

    /// Adds pixel `i` and joins it with its added 8-neighbours.
    fn add(&mut self, i: usize) {
        let (x, y) = (i % self.width, i / self.width);
        self.parent[i] = i;
        self.size[i] = 1;
        self.extent[i] = [x, y, x, y];
        self.slot[i] = self.roots.len();
        self.roots.push(i);
        for ny in y.saturating_sub(1)..=(y + 1).min(self.height - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(self.width - 1) {
                let j = ny * self.width + nx;
                if j != i && self.parent[j] != ABSENT {
                    self.union(i, j);
                }
            }
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Merges the components of `a` and `b` (the smaller into the larger).
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (keep, gone) = if self.size[ra] >= self.size[rb] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[gone] = keep;
        self.size[keep] += self.size[gone];
        let (k, g) = (self.extent[keep], self.extent[gone]);
        self.extent[keep] = [
            k[0].min(g[0]),
            k[1].min(g[1]),
            k[2].max(g[2]),
            k[3].max(g[3]),
        ];
        self.remove_root(gone);
    }

    fn remove_root(&mut self, root: usize) {
        let at = self.slot[root];
        self.roots.swap_remove(at);
        if let Some(&moved) = self.roots.get(at) {
            self.slot[moved] = at;
        }
    }

    /// The box of every current component, in continuous coordinates.
    fn boxes(&self) -> Vec<BoundingBox> {
        self.roots
            .iter()
            .map(|&r| {
                let [x0, y0, x1, y1] = self.extent[r];
                BoundingBox {
                    x0: x0 as f32,
                    y0: y0 as f32,
                    x1: (x1 + 1) as f32,
                    y1: (y1 + 1) as f32,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use feedbacknet_localize::connected_components;

    use super::*;

    /// The straightforward sweep: threshold and label at every value.
    fn reference(map: &SaliencyMap, gt: &[BoundingBox], sweep: &[f32]) -> Vec<f32> {
        sweep
            .iter()
            .map(|&t| {
                let components = connected_components(&map.threshold(t).unwrap());
                max_iou(components.iter().map(|c| &c.bbox), gt)
            })
            .collect()
    }

    /// A deterministic noisy map: smooth bumps plus hashed noise.
    fn noisy(w: usize, h: usize, seed: u32) -> SaliencyMap {
        SaliencyMap::from_fn(w, h, |x, y| {
            let hash =
                (x as u32).wrapping_mul(73_856_093) ^ (y as u32).wrapping_mul(19_349_663) ^ seed;
            let noise = (hash.wrapping_mul(2_654_435_761) >> 16) as f32 / 65_536.0;
            let (dx, dy) = (x as f32 - w as f32 / 3.0, y as f32 - h as f32 / 2.0);
            (-(dx * dx + dy * dy) / 300.0).exp() + 0.6 * noise - 0.1
        })
        .unwrap()
    }

    #[test]
    fn matches_thresholding_and_labelling_at_each_value() {
        let gt = [
            BoundingBox::new(5.0, 10.0, 30.0, 40.0).unwrap(),
            BoundingBox::new(40.0, 2.0, 60.0, 20.0).unwrap(),
        ];
        let mut sweep = crate::metrics::default_sweep();
        sweep.extend([1.0, 0.335, 0.0]);
        for (seed, (w, h)) in [(1, (64, 48)), (2, (17, 90)), (3, (1, 30)), (4, (50, 1))] {
            let map = noisy(w, h, seed).normalized();
            let many = sweep
                .iter()
                .filter(|&&t| connected_components(&map.threshold(t).unwrap()).len() > 3);
            assert!(
                many.count() > 10,
                "the noise splits the mask into many components"
            );
            assert_eq!(
                sweep_ious(&map, &gt, &sweep),
                reference(&map, &gt, &sweep),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn empty_and_constant_maps() {
        let gt = [BoundingBox::new(0.0, 0.0, 4.0, 4.0).unwrap()];
        let zero = SaliencyMap::zeros(8, 8).unwrap();
        assert_eq!(sweep_ious(&zero, &gt, &[0.0, 0.5]), vec![0.0, 0.0]);
        let flat = SaliencyMap::from_fn(8, 8, |_, _| 2.0).unwrap();
        assert_eq!(sweep_ious(&flat, &gt, &[0.0, 1.0]), vec![0.25, 0.25]);
        assert_eq!(sweep_ious(&flat, &gt, &[]), Vec::<f32>::new());
    }
}
