//! Separable Gaussian blur with replicated borders.

use crate::error::invalid;
use crate::{Result, SaliencyMap};

/// Largest accepted `sigma` for [`SaliencyMap::gaussian_blur`]; building the
/// kernel costs `O(sigma)`, so absurd values are refused instead of hanging.
pub const MAX_BLUR_SIGMA: f32 = 1.0e6;

/// A normalised 1-D Gaussian restricted to one axis of length `n`.
///
/// Taps further than `n - 1` from the centre always land outside the axis,
/// where replicate padding repeats the edge pixel, so they are folded into a
/// single weight `far` applied to both edge pixels. This keeps the cost at
/// `O(n * min(2r + 1, 2n - 1))` however large the radius is.
struct AxisKernel {
    /// Weights for offsets `-reach..=reach`.
    weights: Vec<f32>,
    /// `reach = min(radius, n - 1)`.
    reach: usize,
    /// Total weight of the offsets `n..=radius` on one side.
    far: f32,
}

impl AxisKernel {
    fn new(sigma: f64, radius: usize, n: usize) -> Self {
        let two_var = 2.0 * sigma * sigma;
        let k = |d: usize| {
            if d == 0 {
                1.0
            } else {
                (-((d * d) as f64) / two_var).exp()
            }
        };
        let reach = radius.min(n - 1);
        let total: f64 = 1.0 + 2.0 * (1..=radius).map(k).sum::<f64>();
        let far: f64 = (n..=radius).map(k).sum::<f64>() / total;
        let weights = (0..=2 * reach)
            .map(|i| (k(i.abs_diff(reach)) / total) as f32)
            .collect();
        Self {
            weights,
            reach,
            far: far as f32,
        }
    }
}

/// `out += Σ_k w[k] · src[k]` over equal lengths, `N` taps per pass over `out` (each output
/// loaded and stored once per `N` multiply-adds).
#[allow(
    clippy::indexing_slicing,
    reason = "hot vectorised loop; every index is below the lengths the caller sizes"
)]
#[inline(always)]
fn accumulate<const N: usize>(out: &mut [f32], src: [&[f32]; N], w: [f32; N]) {
    const L: usize = 16;
    let n = out.len();
    let src: [&[f32]; N] = src.map(|s| &s[..n]);
    let src_blocks: [&[[f32; L]]; N] = src.map(|s| s.as_chunks::<L>().0);
    let (blocks, tail) = out.as_chunks_mut::<L>();
    for (b, block) in blocks.iter_mut().enumerate() {
        let mut v = *block;
        for k in 0..N {
            let s = &src_blocks[k][b];
            for l in 0..L {
                v[l] += w[k] * s[l];
            }
        }
        *block = v;
    }
    let done = n - tail.len();
    for (i, o) in tail.iter_mut().enumerate() {
        for k in 0..N {
            *o += w[k] * src[k][done + i];
        }
    }
}

/// `out += Σ weights[k] · source(k)` over all taps, four at a time.
#[inline(always)]
fn accumulate_taps<'a>(out: &mut [f32], weights: &[f32], source: impl Fn(usize) -> &'a [f32]) {
    let (fours, rest) = weights.as_chunks::<4>();
    for (i, four) in fours.iter().enumerate() {
        let src = std::array::from_fn(|j| source(4 * i + j));
        accumulate(out, src, *four);
    }
    let done = 4 * fours.len();
    for (j, &wk) in rest.iter().enumerate() {
        accumulate(out, [source(done + j)], [wk]);
    }
}

/// Blurs every row of `src` (`w` wide) along x into `dst`.
#[allow(
    clippy::indexing_slicing,
    reason = "hot loop; rows are `w` long (w >= 1) and taps stay within the padded row"
)]
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn blur_rows(src: &[f32], dst: &mut [f32], w: usize, kernel: &AxisKernel) {
    let r = kernel.reach;
    let mut padded = vec![0.0f32; w + 2 * r];
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        let (first, last) = (row[0], row[w - 1]);
        padded[..r].fill(first);
        padded[r..r + w].copy_from_slice(row);
        padded[r + w..].fill(last);
        out.fill(kernel.far * (first + last));
        // Tap-major order: each tap is an axpy over the row, which vectorises.
        accumulate_taps(out, &kernel.weights, |k| &padded[k..k + w]);
    }
}

/// Blurs along y: each output row is a weighted sum of whole source rows.
#[allow(
    clippy::indexing_slicing,
    reason = "hot loop; source rows are clamped to 0..h and `src` holds h rows of `w`"
)]
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn blur_cols(src: &[f32], dst: &mut [f32], w: usize, h: usize, kernel: &AxisKernel) {
    let r = kernel.reach;
    let row = |y: usize| &src[y * w..(y + 1) * w];
    let (top, bottom) = (row(0), row(h - 1));
    for (y, out) in dst.chunks_exact_mut(w).enumerate() {
        for ((o, &a), &b) in out.iter_mut().zip(top).zip(bottom) {
            *o = kernel.far * (a + b);
        }
        // Source row y + k - r, replicated at the borders.
        accumulate_taps(out, &kernel.weights, |k| {
            row((y + k).saturating_sub(r).min(h - 1))
        });
    }
}

impl SaliencyMap {
    /// Gaussian blur with standard deviation `sigma` (in pixels).
    ///
    /// The kernel is separable with radius `ceil(3 * sigma)`, normalised to
    /// sum 1, and borders are handled by replicating the edge pixels (clamp to
    /// edge). `sigma == 0` returns a copy. Cost is `O(w * h * radius)`.
    ///
    /// Errors: [`crate::LocalizeError::InvalidParameter`] for a negative,
    /// non-finite or larger than [`MAX_BLUR_SIGMA`] `sigma`.
    ///
    /// ```
    /// use feedbacknet_localize::SaliencyMap;
    /// // An impulse in the middle of a 9x9 map, far enough (radius 3) from
    /// // the borders that no mass is lost or gained there.
    /// let impulse = SaliencyMap::from_fn(9, 9, |x, y| if (x, y) == (4, 4) { 1.0 } else { 0.0 })?;
    /// let m = impulse.gaussian_blur(1.0)?;
    /// let sum: f32 = m.data().iter().sum();
    /// assert!((sum - 1.0).abs() < 1e-4);
    /// assert!(m.get(4, 4) > m.get(3, 4) && (m.get(3, 4) - m.get(5, 4)).abs() < 1e-7);
    /// # Ok::<(), feedbacknet_localize::LocalizeError>(())
    /// ```
    pub fn gaussian_blur(&self, sigma: f32) -> Result<SaliencyMap> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(invalid("sigma", sigma, "must be finite and >= 0"));
        }
        if sigma > MAX_BLUR_SIGMA {
            return Err(invalid(
                "sigma",
                sigma,
                format!("must be at most {MAX_BLUR_SIGMA}"),
            ));
        }
        if sigma == 0.0 {
            return Ok(self.clone());
        }
        let (w, h) = (self.width(), self.height());
        let sigma = f64::from(sigma);
        let radius = (3.0 * sigma).ceil() as usize;
        let kx = AxisKernel::new(sigma, radius, w);
        let ky = AxisKernel::new(sigma, radius, h);
        let mut tmp = vec![0.0f32; w * h];
        blur_rows(self.data(), &mut tmp, w, &kx);
        let mut out = vec![0.0f32; w * h];
        blur_cols(&tmp, &mut out, w, h, &ky);
        Ok(SaliencyMap::from_computed(w, h, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalizeError;

    fn impulse(w: usize, h: usize, x: usize, y: usize) -> SaliencyMap {
        SaliencyMap::from_fn(w, h, |i, j| if i == x && j == y { 1.0 } else { 0.0 }).unwrap()
    }

    /// Direct 2-D reference: sum over the full (2r+1)^2 kernel with clamped
    /// indices.
    fn reference(m: &SaliencyMap, sigma: f64) -> Vec<f64> {
        let r = (3.0 * sigma).ceil() as i64;
        let k: Vec<f64> = (-r..=r)
            .map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp())
            .collect();
        let s: f64 = k.iter().sum();
        let (w, h) = (m.width() as i64, m.height() as i64);
        let mut out = vec![0.0; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for dy in -r..=r {
                    for dx in -r..=r {
                        let sx = (x + dx).clamp(0, w - 1) as usize;
                        let sy = (y + dy).clamp(0, h - 1) as usize;
                        acc +=
                            k[(dx + r) as usize] * k[(dy + r) as usize] * f64::from(m.get(sx, sy));
                    }
                }
                out[(y * w + x) as usize] = acc / (s * s);
            }
        }
        out
    }

    #[test]
    fn impulse_mass_is_preserved_and_spread_symmetrically() {
        let m = impulse(31, 31, 15, 15).gaussian_blur(2.0).unwrap();
        let sum: f64 = m.data().iter().map(|&v| f64::from(v)).sum();
        assert!((sum - 1.0).abs() < 1e-4, "sum {sum}");
        let c = m.get(15, 15);
        assert!(c > m.get(14, 15) && m.get(14, 15) > m.get(13, 15));
        for d in 1..8 {
            let l = m.get(15 - d, 15);
            for v in [m.get(15 + d, 15), m.get(15, 15 - d), m.get(15, 15 + d)] {
                assert!((l - v).abs() < 1e-7, "asymmetric at {d}: {l} vs {v}");
            }
            assert!((m.get(15 - d, 15 - d) - m.get(15 + d, 15 + d)).abs() < 1e-7);
        }
        // Peak of a 2-D Gaussian is 1 / (2 pi sigma^2) (discretely ~0.0397).
        assert!((c - 0.0398).abs() < 1e-3, "peak {c}");
    }

    #[test]
    fn constant_map_stays_constant() {
        let m = SaliencyMap::from_fn(17, 9, |_, _| 0.7).unwrap();
        for sigma in [0.5, 3.0, 40.0] {
            let b = m.gaussian_blur(sigma).unwrap();
            assert!(
                b.data().iter().all(|&v| (v - 0.7).abs() < 1e-5),
                "sigma {sigma}"
            );
        }
    }

    #[test]
    fn matches_direct_reference_including_borders_and_huge_radius() {
        let m = SaliencyMap::from_fn(9, 6, |x, y| ((x * 7 + y * 3) % 5) as f32 - 1.0).unwrap();
        // sigma 4 and 30 give radii far beyond the map, exercising the
        // folded far-tail weights.
        for sigma in [0.7, 1.5, 4.0, 30.0] {
            let fast = m.gaussian_blur(sigma as f32).unwrap();
            let slow = reference(&m, sigma);
            for (i, (&a, &b)) in fast.data().iter().zip(&slow).enumerate() {
                assert!(
                    (f64::from(a) - b).abs() < 1e-5,
                    "sigma {sigma} index {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn sigma_zero_is_a_copy_and_bad_sigma_errors() {
        let m = impulse(4, 3, 1, 1);
        assert_eq!(m.gaussian_blur(0.0).unwrap(), m);
        for bad in [-1.0, f32::NAN, f32::INFINITY, 2.0e6] {
            assert!(matches!(
                m.gaussian_blur(bad),
                Err(LocalizeError::InvalidParameter { .. })
            ));
        }
    }

    #[test]
    fn one_pixel_wide_maps() {
        let m = SaliencyMap::from_fn(1, 9, |_, y| if y == 4 { 4.0 } else { 0.0 }).unwrap();
        let b = m.gaussian_blur(1.0).unwrap();
        let sum: f32 = b.data().iter().sum();
        assert!((sum - 4.0).abs() < 1e-4);
        assert!(b.get(0, 4) > b.get(0, 5) && b.get(0, 5) > b.get(0, 6));
        assert!((b.get(0, 3) - b.get(0, 5)).abs() < 1e-7);
        let row = SaliencyMap::from_fn(9, 1, |x, _| if x == 4 { 4.0 } else { 0.0 }).unwrap();
        let rb = row.gaussian_blur(1.0).unwrap();
        assert!(
            rb.data()
                .iter()
                .zip(b.data())
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        let single = SaliencyMap::new(1, 1, vec![2.5]).unwrap();
        assert!((single.gaussian_blur(5.0).unwrap().get(0, 0) - 2.5).abs() < 1e-5);
    }

    #[test]
    fn extreme_values_stay_finite() {
        let m = SaliencyMap::from_fn(8, 8, |_, _| f32::MAX).unwrap();
        let b = m.gaussian_blur(2.0).unwrap();
        assert!(b.data().iter().all(|v| v.is_finite()));
    }
}
