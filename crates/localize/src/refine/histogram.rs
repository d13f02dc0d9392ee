//! The two-histogram colour model: the uncertain band labelled pixel by pixel.

use super::{ColourImage, RefineConfig, Trimap};
use crate::Binning;

/// The foreground labels of the two-histogram model (before the connectivity filter).
///
/// Colour histograms of foreground and background (`config.bins` per channel, Laplace
/// smoothed with `config.smoothing` extra counts per cell, colours counted as
/// `config.binning` says) are fitted from the current labels, first [`Trimap::initial`]; a
/// pixel of the band is foreground when `ln p(colour | fg) + w ln(v / (1 - v)) > ln p(colour |
/// bg)`. Labelling and refitting repeat `config.iterations` times or until nothing changes.
///
/// The histograms are counted once and then kept up to date: a pixel whose label changes
/// moves its colour from one to the other, instead of every pixel being counted again each
/// round (the sure foreground and background, most of an image, never change). The counts are
/// the same as a recount: with the default 16 bins a trilinear weight is a multiple of 2^-15,
/// so its sums are exact in any order.
pub(super) fn labels(
    v: &[f32],
    image: &ColourImage,
    trimap: &Trimap,
    config: &RefineConfig,
) -> Vec<bool> {
    let cells = Cells::new(config.bins, config.binning);
    let mut label: Vec<Option<bool>> = v.iter().map(|&x| trimap.initial(x)).collect();
    let pixels = || image.rgb().chunks_exact(3);
    let mut counts = Counts::new(&cells);
    for (&l, rgb) in label.iter().zip(pixels()) {
        counts.add(&cells, l, rgb, 1.0);
    }
    for _ in 0..config.iterations {
        let (pf, pb) = counts.probabilities(config.smoothing);
        let mut changed = false;
        for ((l, &x), rgb) in label.iter_mut().zip(v).zip(pixels()) {
            let new = Some(if trimap.sure_fg(x) {
                true
            } else if trimap.sure_bg(x) {
                false
            } else {
                let (mut f, mut b) = (0.0, 0.0);
                cells.spread(rgb, |c, w| {
                    f += w * pf.get(c).copied().unwrap_or(0.0);
                    b += w * pb.get(c).copied().unwrap_or(0.0);
                });
                f.ln() + trimap.log_odds(x) > b.ln()
            });
            if new != *l {
                counts.add(&cells, *l, rgb, -1.0);
                counts.add(&cells, new, rgb, 1.0);
                changed = true;
                *l = new;
            }
        }
        if !changed {
            break;
        }
    }
    label.iter().map(|&l| l == Some(true)).collect()
}

/// The cells of a `bins`³ colour histogram and how a colour counts in them.
#[derive(Debug, Clone)]
struct Cells {
    bins: usize,
    binning: Binning,
    /// Per 8-bit channel value, the lower of the two cells whose centres surround it and the
    /// weight of the upper one (nearest: the cell it falls in, and 0).
    axis: Vec<(usize, f64)>,
}

impl Cells {
    fn new(bins: usize, binning: Binning) -> Self {
        let top = bins.saturating_sub(1);
        let axis = (0..=255u8)
            .map(|c| match binning {
                Binning::Nearest => (usize::from(c) * bins / 256, 0.0),
                Binning::Trilinear => {
                    // Position in units of cells, 0 at the first cell's centre.
                    let t =
                        ((f64::from(c) + 0.5) * bins as f64 / 256.0 - 0.5).clamp(0.0, top as f64);
                    let lower = (t as usize).min(bins.saturating_sub(2));
                    (lower, (t - lower as f64).min(1.0))
                }
            })
            .collect();
        Self {
            bins,
            binning,
            axis,
        }
    }

    fn count(&self) -> usize {
        self.bins * self.bins * self.bins
    }

    /// Calls `f(cell, weight)` for the cells an `[r, g, b]` colour counts in; the weights sum
    /// to 1. Nearest: the one cell the colour falls in. Trilinear: the eight cells whose
    /// centres surround it (clamped at the edges of the colour cube).
    fn spread(&self, rgb: &[u8], mut f: impl FnMut(usize, f64)) {
        let bins = self.bins;
        let axes = [0, 1, 2].map(|k| {
            let c = usize::from(rgb.get(k).copied().unwrap_or(0));
            self.axis.get(c).copied().unwrap_or((0, 0.0))
        });
        match self.binning {
            Binning::Nearest => {
                f(axes.iter().fold(0, |cell, &(c, _)| cell * bins + c), 1.0);
            }
            Binning::Trilinear => {
                let top = bins.saturating_sub(1);
                for corner in 0..8 {
                    let (mut cell, mut weight) = (0, 1.0);
                    for (k, &(lower, upper_weight)) in axes.iter().enumerate() {
                        let above = (corner >> k) & 1 == 1;
                        cell = cell * bins + (lower + usize::from(above)).min(top);
                        weight *= if above {
                            upper_weight
                        } else {
                            1.0 - upper_weight
                        };
                    }
                    f(cell, weight);
                }
            }
        }
    }
}

/// The weighted counts of the labelled pixels' colours per cell, foreground and background.
struct Counts {
    fg: Vec<f64>,
    bg: Vec<f64>,
}

impl Counts {
    fn new(cells: &Cells) -> Self {
        Self {
            fg: vec![0.0; cells.count()],
            bg: vec![0.0; cells.count()],
        }
    }

    /// Adds `sign` (1 or -1) times the colour `rgb` to the histogram of `label` (none for an
    /// unlabelled pixel).
    fn add(&mut self, cells: &Cells, label: Option<bool>, rgb: &[u8], sign: f64) {
        let counts = match label {
            Some(true) => &mut self.fg,
            Some(false) => &mut self.bg,
            None => return,
        };
        cells.spread(rgb, |c, w| {
            if let Some(n) = counts.get_mut(c) {
                *n += sign * w;
            }
        });
    }

    /// Probabilities per cell of the foreground and background histograms, with `alpha`
    /// pseudo-counts per cell.
    fn probabilities(&self, alpha: f32) -> (Vec<f64>, Vec<f64>) {
        let alpha = f64::from(alpha);
        let to_probability = |counts: &[f64]| {
            let smoothed: Vec<f64> = counts.iter().map(|n| alpha + n).collect();
            let total: f64 = smoothed.iter().sum();
            smoothed.into_iter().map(|n| n / total).collect()
        };
        (to_probability(&self.fg), to_probability(&self.bg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weights `spread` gives the colour `[c, 0, 0]`, per cell.
    fn weights(cells: &Cells, c: u8) -> Vec<f64> {
        let mut w = vec![0.0; cells.count()];
        cells.spread(&[c, 0, 0], |cell, weight| w[cell] += weight);
        w
    }

    #[test]
    fn weights_are_a_distribution_over_the_cells() {
        for bins in [1, 2, 16, 64] {
            for binning in [Binning::Nearest, Binning::Trilinear] {
                let cells = Cells::new(bins, binning);
                for rgb in [[0, 0, 0], [255, 255, 255], [127, 128, 129], [8, 200, 71]] {
                    let mut total = 0.0;
                    cells.spread(&rgb, |cell, w| {
                        assert!(
                            cell < cells.count() && (0.0..=1.0).contains(&w),
                            "{bins} {w}"
                        );
                        total += w;
                    });
                    assert!(
                        (total - 1.0).abs() < 1e-12,
                        "{bins} {binning:?} {rgb:?}: {total}"
                    );
                }
            }
        }
    }

    #[test]
    fn trilinear_weights_change_little_per_grey_level_and_nearest_ones_jump() {
        let l1 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
        let nearest = Cells::new(16, Binning::Nearest);
        let trilinear = Cells::new(16, Binning::Trilinear);
        let steps = |cells: &Cells| -> Vec<f64> {
            (0..255u8)
                .map(|c| l1(&weights(cells, c), &weights(cells, c + 1)))
                .collect()
        };
        // One grey level is 1/16 of a cell: trilinear weights move by at most 2/16.
        assert!(
            steps(&trilinear)
                .into_iter()
                .all(|d| d <= 2.0 / 16.0 + 1e-12)
        );
        // The nearest cell changes at each of the 15 inner cell edges, by the whole weight.
        assert_eq!(
            steps(&nearest).into_iter().filter(|&d| d == 2.0).count(),
            15
        );
        // Red 87 lies half a grey level below the centre of red cell 5 (grey level 88, taking
        // a level's middle): 31/32 of its weight is on that cell, 1/32 on cell 4 (green and
        // blue 0 are clamped into their first cell).
        let w = weights(&trilinear, 87);
        let red_cell = |i: usize| w[i * 16 * 16];
        assert!((red_cell(5) - 31.0 / 32.0).abs() < 1e-12, "{}", red_cell(5));
        assert!((red_cell(4) - 1.0 / 32.0).abs() < 1e-12, "{}", red_cell(4));
        assert_eq!(weights(&nearest, 87)[5 * 16 * 16], 1.0);
    }
}
