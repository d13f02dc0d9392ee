//! Bilinear resampling with pixel-centre alignment.

use crate::error::checked_area;
use crate::{Result, SaliencyMap};

/// Two neighbouring source indices and the weight of the second one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    i0: usize,
    i1: usize,
    frac: f32,
}

impl Tap {
    /// Tap for a source coordinate in index space (pixel `i`'s centre is at
    /// `i`), clamped to `[0, n - 1]` like OpenCV's `INTER_LINEAR`.
    pub(crate) fn at(coord: f64, n: usize) -> Tap {
        let c = if coord.is_nan() {
            0.0
        } else {
            coord.clamp(0.0, (n - 1) as f64)
        };
        let i0 = (c.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        Tap {
            i0,
            i1,
            frac: (c - i0 as f64) as f32,
        }
    }
}

/// Samples `map` on the grid `ys x xs`; `None` taps give 0.
#[allow(
    clippy::indexing_slicing,
    reason = "hot loop; taps are built by `taps` for this map's width and height"
)]
pub(crate) fn sample_grid(
    map: &SaliencyMap,
    xs: &[Option<Tap>],
    ys: &[Option<Tap>],
) -> SaliencyMap {
    let w = map.width();
    let src = map.data();
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for ty in ys {
        match ty {
            None => out.extend(std::iter::repeat_n(0.0, xs.len())),
            Some(ty) => {
                let r0 = &src[ty.i0 * w..(ty.i0 + 1) * w];
                let r1 = &src[ty.i1 * w..(ty.i1 + 1) * w];
                out.extend(xs.iter().map(|tx| match tx {
                    None => 0.0,
                    Some(tx) => {
                        let top = r0[tx.i0] + (r0[tx.i1] - r0[tx.i0]) * tx.frac;
                        let bottom = r1[tx.i0] + (r1[tx.i1] - r1[tx.i0]) * tx.frac;
                        top + (bottom - top) * ty.frac
                    }
                }));
            }
        }
    }
    SaliencyMap::from_computed(xs.len(), ys.len(), out)
}

/// Taps for resizing an axis of length `from` to length `to`:
/// destination pixel `i` samples source coordinate `(i + 0.5) * from / to - 0.5`.
fn resize_taps(from: usize, to: usize) -> Vec<Option<Tap>> {
    let scale = from as f64 / to as f64;
    (0..to)
        .map(|i| Some(Tap::at((i as f64 + 0.5) * scale - 0.5, from)))
        .collect()
}

impl SaliencyMap {
    /// Bilinear resize to `width x height`, pixel-centre aligned (the
    /// convention of OpenCV `INTER_LINEAR` and PyTorch
    /// `align_corners = false`; no antialiasing when shrinking).
    ///
    /// Errors: [`crate::LocalizeError::EmptyImage`] for a zero target size.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// let m = SaliencyMap::new(2, 1, vec![0.0, 1.0])?.resize_bilinear(4, 1)?;
    /// assert_eq!(m.data(), &[0.0, 0.25, 0.75, 1.0]);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Result<SaliencyMap> {
        checked_area(width, height)?;
        if (width, height) == (self.width(), self.height()) {
            return Ok(self.clone());
        }
        let xs = resize_taps(self.width(), width);
        let ys = resize_taps(self.height(), height);
        Ok(sample_grid(self, &xs, &ys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalizeError;

    #[test]
    fn constant_stays_constant() {
        let m = SaliencyMap::from_fn(7, 5, |_, _| 0.3).unwrap();
        for (w, h) in [(7, 5), (20, 13), (3, 2), (1, 1), (100, 1)] {
            let r = m.resize_bilinear(w, h).unwrap();
            assert_eq!((r.width(), r.height()), (w, h));
            assert!(r.data().iter().all(|&v| (v - 0.3).abs() < 1e-6), "{w}x{h}");
        }
    }

    #[test]
    fn horizontal_ramp_stays_monotone() {
        let m = SaliencyMap::from_fn(10, 3, |x, _| x as f32).unwrap();
        let r = m.resize_bilinear(37, 8).unwrap();
        for y in 0..8 {
            for x in 1..37 {
                assert!(r.get(x, y) >= r.get(x - 1, y), "row {y} col {x}");
            }
            // Rows are identical: there is no vertical variation.
            assert_eq!(r.get(17, y), r.get(17, 0));
        }
        assert!(r.get(36, 0) > r.get(0, 0));
        assert_eq!(r.get(0, 0), 0.0);
        assert_eq!(r.get(36, 0), 9.0);
    }

    #[test]
    fn known_values_match_opencv_convention() {
        // Upsampling 2 -> 4: sample coordinates -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let m = SaliencyMap::new(2, 1, vec![0.0, 1.0]).unwrap();
        assert_eq!(
            m.resize_bilinear(4, 1).unwrap().data(),
            &[0.0, 0.25, 0.75, 1.0]
        );
        // Downsampling 4 -> 2 by a factor two averages pixel pairs.
        let m = SaliencyMap::new(4, 1, vec![0.0, 2.0, 4.0, 8.0]).unwrap();
        assert_eq!(m.resize_bilinear(2, 1).unwrap().data(), &[1.0, 6.0]);
    }

    #[test]
    fn zero_target_is_an_error() {
        let m = SaliencyMap::zeros(2, 2).unwrap();
        assert_eq!(m.resize_bilinear(0, 3), Err(LocalizeError::EmptyImage));
    }
}
