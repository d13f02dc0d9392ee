//! The two-histogram colour model: the uncertain band labelled pixel by pixel.

use super::{ColourImage, RefineConfig, Trimap};

/// The foreground labels of the two-histogram model (before the connectivity filter).
///
/// Colour histograms of foreground and background (`config.bins` per channel, Laplace
/// smoothed with `config.smoothing` extra counts per cell) are fitted from the current
/// labels, first [`Trimap::initial`]; a pixel of the band is foreground when `ln p(colour |
/// fg) + w ln(v / (1 - v)) > ln p(colour | bg)`. Labelling and refitting repeat
/// `config.iterations` times or until nothing changes.
pub(super) fn labels(
    v: &[f32],
    image: &ColourImage,
    trimap: &Trimap,
    config: &RefineConfig,
) -> Vec<bool> {
    let bins = config.bins;
    let cells = bins * bins * bins;
    let cell: Vec<usize> = image
        .rgb()
        .chunks_exact(3)
        .map(|p| {
            let b = |c: u8| usize::from(c) * bins / 256;
            p.iter().fold(0, |cell, &c| cell * bins + b(c))
        })
        .collect();
    let mut label: Vec<Option<bool>> = v.iter().map(|&x| trimap.initial(x)).collect();
    for _ in 0..config.iterations {
        let (lf, lb) = fit_log_histograms(&label, &cell, cells, config.smoothing);
        let mut changed = false;
        for ((l, &x), &c) in label.iter_mut().zip(v).zip(&cell) {
            let new = Some(if trimap.sure_fg(x) {
                true
            } else if trimap.sure_bg(x) {
                false
            } else {
                let log_odds = trimap.log_odds(x);
                lf.get(c)
                    .zip(lb.get(c))
                    .is_some_and(|(f, b)| f + log_odds > *b)
            });
            changed |= new != *l;
            *l = new;
        }
        if !changed {
            break;
        }
    }
    label.iter().map(|&l| l == Some(true)).collect()
}

/// Log-probabilities per colour cell of the foreground and background
/// histograms of the labelled pixels, with `alpha` pseudo-counts per cell.
fn fit_log_histograms(
    label: &[Option<bool>],
    cell: &[usize],
    cells: usize,
    alpha: f32,
) -> (Vec<f64>, Vec<f64>) {
    let alpha = f64::from(alpha);
    let (mut cf, mut cb) = (vec![alpha; cells], vec![alpha; cells]);
    for (&l, &c) in label.iter().zip(cell) {
        let counts = match l {
            Some(true) => cf.get_mut(c),
            Some(false) => cb.get_mut(c),
            None => None,
        };
        if let Some(n) = counts {
            *n += 1.0;
        }
    }
    let to_log = |counts: Vec<f64>| {
        let total: f64 = counts.iter().sum();
        counts.into_iter().map(|n| (n / total).ln()).collect()
    };
    (to_log(cf), to_log(cb))
}
