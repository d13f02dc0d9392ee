//! GrabCut seeded by the map: Gaussian-mixture colour models of foreground and background,
//! and a minimum cut of the 8-connected pixel graph with a contrast-sensitive smoothness
//! term, at a reduced resolution.

use super::gmm::{Gmm, Rgb};
use super::maxflow::Graph;
use super::{ColourImage, RefineConfig, Trimap};
use crate::Result;
use crate::error::invalid;

/// The terminal capacity that keeps a sure pixel on its side.
const HARD: i64 = 1 << 40;
/// Capacities are costs (in nats) times this, rounded: integer capacities keep the max-flow
/// exact (no residual left at 1e-13 that would be augmented again and again).
const SCALE: f64 = 1000.0;

/// A cost as an integer capacity (non-negative, at most [`HARD`]).
fn capacity(cost: f64) -> i64 {
    (cost * SCALE).round().clamp(0.0, HARD as f64) as i64
}

/// The foreground labels of GrabCut (before the connectivity filter), at the map's size.
///
/// The image and the normalised map `v` are averaged in square blocks until the longer side
/// is at most `config.max_side`. There: sure foreground and sure background
/// ([`Trimap::sure_fg`], [`Trimap::sure_bg`]) are fixed; the mixtures
/// (`config.components` each) are started by k-means on the seed (foreground) and the sure
/// background; each of `config.iterations` rounds cuts the graph whose data terms are
/// `-ln p(z | fg) - w ln v` and `-ln p(z | bg) - w ln(1 - v)` and whose neighbours pay
/// `gamma exp(-beta |z_p - z_q|²) / dist(p, q)` for differing labels (`beta = 1 / (2
/// <|z_p - z_q|²>)`), then refits the mixtures to the new labels, stopping early when the
/// labels settle. Each pixel at full size takes its block's label, its own sure label
/// where it has one. Without seed or without background to fit, the seed itself is returned.
pub(super) fn labels(
    v: &[f32],
    image: &ColourImage,
    trimap: &Trimap,
    config: &RefineConfig,
) -> Result<Vec<bool>> {
    let (w, h) = (image.width(), image.height());
    let small = Blocks::of(image, v, config.max_side)?;
    let small_labels = segment(&small, trimap, config);
    let f = small.factor;
    Ok((0..w * h)
        .map(|i| {
            let x = v.get(i).copied().unwrap_or(0.0);
            if trimap.sure_fg(x) {
                return true;
            }
            if trimap.sure_bg(x) {
                return false;
            }
            let (bx, by) = ((i % w) / f, (i / w) / f);
            small_labels
                .get(by * small.width + bx)
                .copied()
                .unwrap_or(false)
        })
        .collect())
}

/// The image and map averaged in `factor` x `factor` blocks (smaller at the right and
/// bottom edges).
struct Blocks {
    width: usize,
    height: usize,
    factor: usize,
    colour: Vec<Rgb>,
    value: Vec<f32>,
}

impl Blocks {
    fn of(image: &ColourImage, v: &[f32], max_side: usize) -> Result<Self> {
        let (w, h) = (image.width(), image.height());
        if v.len() != w * h {
            return Err(invalid("map", v.len(), "must have one value per pixel"));
        }
        let factor = w.max(h).div_ceil(max_side.max(1)).max(1);
        let (width, height) = (w.div_ceil(factor), h.div_ceil(factor));
        let mut colour = vec![[0.0; 3]; width * height];
        let mut value = vec![0.0f64; width * height];
        let mut count = vec![0.0f64; width * height];
        for (i, (p, &x)) in image.rgb().chunks_exact(3).zip(v).enumerate() {
            let b = ((i / w) / factor) * width + (i % w) / factor;
            if let (Some(c), Some(s), Some(n)) =
                (colour.get_mut(b), value.get_mut(b), count.get_mut(b))
            {
                for (ci, &pi) in c.iter_mut().zip(p) {
                    *ci += f64::from(pi);
                }
                *s += f64::from(x);
                *n += 1.0;
            }
        }
        for ((c, s), &n) in colour.iter_mut().zip(&mut value).zip(&count) {
            let n = n.max(1.0);
            *c = c.map(|ci| ci / n);
            *s /= n;
        }
        Ok(Self {
            width,
            height,
            factor,
            colour,
            value: value.into_iter().map(|s| s as f32).collect(),
        })
    }
}

/// The neighbours of a pixel that its edges go to: right, down-left, down, down-right, with
/// their distances.
const NEIGHBOURS: [(isize, usize, f64); 4] = [
    (1, 0, 1.0),
    (-1, 1, std::f64::consts::SQRT_2),
    (0, 1, 1.0),
    (1, 1, std::f64::consts::SQRT_2),
];

/// Every edge `(p, q, |z_p - z_q|², distance)` of the 8-connected grid, each pair once.
fn edges(b: &Blocks) -> Vec<(usize, usize, f64, f64)> {
    let mut out = Vec::with_capacity(4 * b.colour.len());
    for y in 0..b.height {
        for x in 0..b.width {
            let p = y * b.width + x;
            for &(dx, dy, dist) in &NEIGHBOURS {
                let (Some(qx), qy) = (x.checked_add_signed(dx), y + dy) else {
                    continue;
                };
                if qx >= b.width || qy >= b.height {
                    continue;
                }
                let q = qy * b.width + qx;
                if let (Some(zp), Some(zq)) = (b.colour.get(p), b.colour.get(q)) {
                    let d2: f64 = zp.iter().zip(zq).map(|(a, c)| (a - c) * (a - c)).sum();
                    out.push((p, q, d2, dist));
                }
            }
        }
    }
    out
}

/// GrabCut on the blocks; the foreground labels per block.
fn segment(b: &Blocks, trimap: &Trimap, config: &RefineConfig) -> Vec<bool> {
    let initial: Vec<Option<bool>> = b.value.iter().map(|&x| trimap.initial(x)).collect();
    let seed: Vec<bool> = initial.iter().map(|&l| l == Some(true)).collect();
    let samples = |want: Option<bool>, labels: &[Option<bool>]| -> Vec<Rgb> {
        labels
            .iter()
            .zip(&b.colour)
            .filter(|(l, _)| **l == want)
            .map(|(_, z)| *z)
            .collect()
    };
    let k = config.components;
    let mut background = samples(Some(false), &initial);
    if background.is_empty() {
        // No sure background (a wide blur): the rest of the band stands in for it.
        background = samples(None, &initial);
    }
    let (Some(mut fg), Some(mut bg)) = (
        Gmm::fit_kmeans(&samples(Some(true), &initial), k),
        Gmm::fit_kmeans(&background, k),
    ) else {
        return seed;
    };
    let edges = edges(b);
    let mean_d2 = edges.iter().map(|e| e.2).sum::<f64>() / edges.len().max(1) as f64;
    let beta = if mean_d2 > 0.0 { 0.5 / mean_d2 } else { 0.0 };
    let gamma = f64::from(config.gamma);
    let smooth: Vec<(usize, usize, i64)> = edges
        .iter()
        .map(|&(p, q, d2, dist)| (p, q, capacity(gamma * (-beta * d2).exp() / dist)))
        .collect();
    let mut labels = seed;
    for round in 0..config.iterations {
        let new = cut(b, trimap, &fg, &bg, &smooth);
        if round > 0 && new == labels {
            break;
        }
        labels = new;
        let as_option: Vec<Option<bool>> = labels.iter().map(|&l| Some(l)).collect();
        if let Some(g) = fg.refit(&samples(Some(true), &as_option)) {
            fg = g;
        }
        if let Some(g) = bg.refit(&samples(Some(false), &as_option)) {
            bg = g;
        }
    }
    labels
}

/// One minimum cut: the foreground (source side) labels.
fn cut(
    b: &Blocks,
    trimap: &Trimap,
    fg: &Gmm,
    bg: &Gmm,
    smooth: &[(usize, usize, i64)],
) -> Vec<bool> {
    let mut graph = Graph::new(b.colour.len(), smooth.len());
    for (i, (z, &x)) in b.colour.iter().zip(&b.value).enumerate() {
        // A pixel on the source side pays its sink capacity (the cost of foreground).
        let (source, sink) = if trimap.sure_fg(x) {
            (HARD, 0)
        } else if trimap.sure_bg(x) {
            (0, HARD)
        } else {
            let log_odds = trimap.log_odds(x);
            let cost_fg = fg.neg_log_density(z);
            let cost_bg = bg.neg_log_density(z);
            // Only the difference matters; log_odds = w ln v - w ln(1 - v).
            let d = cost_bg - cost_fg + log_odds;
            if d > 0.0 {
                (capacity(d), 0)
            } else {
                (0, capacity(-d))
            }
        };
        graph.add_terminal(i, source, sink);
    }
    for &(p, q, c) in smooth {
        graph.add_edge(p, q, c, c);
    }
    graph.max_flow().1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refine::refine_mask;
    use crate::{BoundingBox, ColourModel, SaliencyMap, connected_components};

    /// A pseudo-random byte stream (xorshift) for pixel noise.
    fn noise(seed: u64) -> impl FnMut() -> u8 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        }
    }

    #[test]
    fn separates_a_two_colour_image_from_a_noisy_seed() {
        // A noisy red ellipse-ish square on noisy blue; the map is a blob off the object's
        // centre, with noise, so the thresholded seed covers part of it and some background.
        let (w, h) = (120, 90);
        let object = BoundingBox::new(30.0, 20.0, 80.0, 70.0).unwrap();
        let mut n = noise(7);
        let image = ColourImage::from_fn(w, h, |x, y| {
            let j = n() / 8;
            if object.contains_point(x as f32 + 0.5, y as f32 + 0.5) {
                [180 + j, 40 + j, 30]
            } else {
                [40, 60 + j, 170 + j]
            }
        })
        .unwrap();
        let mut m = noise(11);
        let map = SaliencyMap::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - 50.0, y as f32 - 42.0);
            (-(dx * dx + dy * dy) / (2.0 * 15.0 * 15.0)).exp() * (0.8 + f32::from(m()) / 1280.0)
        })
        .unwrap();
        let seed_box = connected_components(&map.normalized().threshold(0.5).unwrap())[0].bbox;
        let config = RefineConfig::default().with_model(ColourModel::GrabCut);
        let mask = refine_mask(&map, &image, 0.5, &config).unwrap();
        let refined = connected_components(&mask)[0].bbox;
        let (before, after) = (seed_box.iou(&object), refined.iou(&object));
        assert!(after > 0.9, "GrabCut IoU {after} (seed {before})");
        assert!(after > before + 0.1, "{after} vs {before}");
        // No blue pixel is foreground.
        let blue = (0..w * h)
            .filter(|&i| mask.get(i % w, i / w))
            .filter(|&i| !object.contains_point((i % w) as f32 + 0.5, (i / w) as f32 + 0.5))
            .count();
        assert!(blue < 20, "{blue} background pixels kept");
    }

    #[test]
    fn works_at_a_reduced_resolution_and_keeps_sure_pixels() {
        let (w, h) = (300, 200);
        let image = ColourImage::from_fn(w, h, |x, _| {
            if x < 150 {
                [200, 20, 20]
            } else {
                [20, 20, 200]
            }
        })
        .unwrap();
        let map = SaliencyMap::from_fn(w, h, |x, _| match x {
            0..100 => 1.0,
            100..200 => 0.3,
            _ => 0.05,
        })
        .unwrap();
        let config = RefineConfig::default()
            .with_model(ColourModel::GrabCut)
            .with_max_side(32);
        let mask = refine_mask(&map, &image, 0.5, &config).unwrap();
        // Sure foreground stays; the red half is taken up to its edge (block size 10).
        assert!((0..100).all(|x| mask.get(x, 50)));
        let b = connected_components(&mask)[0].bbox;
        assert!((b.x1 - 150.0).abs() <= 10.0, "{b:?}");
    }
}
