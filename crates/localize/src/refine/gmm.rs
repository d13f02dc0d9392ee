//! Gaussian mixtures of RGB colours with full covariances, as GrabCut fits them: k-means
//! to start, then hard assignments (each pixel to its most likely component) and refits.

/// A colour, RGB in `0..=255`.
pub(super) type Rgb = [f64; 3];

/// Added to each variance so that a flat region (one colour) still has a density.
const VARIANCE_FLOOR: f64 = 4.0;
/// Rounds of k-means before the first fit.
const KMEANS_ROUNDS: usize = 6;

/// One Gaussian component: its weight, mean, inverse covariance and the constant
/// `ln w - ln det(Σ) / 2 - 3 ln(2π) / 2` of its log density.
#[derive(Debug, Clone, PartialEq)]
struct Component {
    mean: Rgb,
    inverse: [[f64; 3]; 3],
    log_norm: f64,
}

/// A mixture of full-covariance Gaussians over RGB.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Gmm {
    components: Vec<Component>,
}

impl Gmm {
    /// Fits `k` components to `samples` by k-means (started from colours spread along the
    /// samples' brightness order); `None` without samples.
    pub(super) fn fit_kmeans(samples: &[Rgb], k: usize) -> Option<Self> {
        let k = k.clamp(1, samples.len().max(1));
        let mut order: Vec<&Rgb> = samples.iter().collect();
        order.sort_by(|a, b| brightness(a).total_cmp(&brightness(b)));
        let mut centres: Vec<Rgb> = (0..k)
            .filter_map(|c| order.get((2 * c + 1) * order.len() / (2 * k)).map(|p| **p))
            .collect();
        let mut assignment = vec![0; samples.len()];
        for _ in 0..KMEANS_ROUNDS {
            for (a, z) in assignment.iter_mut().zip(samples) {
                *a = nearest(&centres, z);
            }
            centres = means(samples, &assignment, &centres);
        }
        Self::fit_assigned(samples, &assignment, centres.len())
    }

    /// Refits the mixture to `samples`, each assigned to its most likely component of this
    /// mixture (GrabCut's hard-assignment step); `None` without samples.
    pub(super) fn refit(&self, samples: &[Rgb]) -> Option<Self> {
        let assignment: Vec<usize> = samples.iter().map(|z| self.likeliest(z)).collect();
        Self::fit_assigned(samples, &assignment, self.components.len())
    }

    /// `-ln p(z)`, the negative log density of colour `z` under the mixture.
    pub(super) fn neg_log_density(&self, z: &Rgb) -> f64 {
        let logs = self.components.iter().map(|c| c.log_density(z));
        let max = logs.clone().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return f64::MAX.sqrt();
        }
        let sum: f64 = logs.map(|l| (l - max).exp()).sum();
        -(max + sum.ln())
    }

    /// The component with the highest weighted density at `z`.
    fn likeliest(&self, z: &Rgb) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for (i, c) in self.components.iter().enumerate() {
            let l = c.log_density(z);
            if l > best.1 {
                best = (i, l);
            }
        }
        best.0
    }

    /// Weights, means and covariances of the components from an assignment; components
    /// left without samples are dropped.
    fn fit_assigned(samples: &[Rgb], assignment: &[usize], k: usize) -> Option<Self> {
        let mut stats = vec![Moments::default(); k];
        for (&a, z) in assignment.iter().zip(samples) {
            if let Some(m) = stats.get_mut(a) {
                m.add(z);
            }
        }
        let total = samples.len() as f64;
        let components: Vec<Component> = stats
            .iter()
            .filter(|m| m.n > 0.0)
            .filter_map(|m| m.component(m.n / total))
            .collect();
        (!components.is_empty()).then_some(Self { components })
    }
}

impl Component {
    fn log_density(&self, z: &Rgb) -> f64 {
        let d = [
            z[0] - self.mean[0],
            z[1] - self.mean[1],
            z[2] - self.mean[2],
        ];
        let q: f64 = self
            .inverse
            .iter()
            .zip(&d)
            .map(|(row, di)| di * (row[0] * d[0] + row[1] * d[1] + row[2] * d[2]))
            .sum();
        self.log_norm - 0.5 * q
    }
}

/// Sums of one component's samples: count, sum, sum of outer products.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: f64,
    sum: Rgb,
    outer: [[f64; 3]; 3],
}

impl Moments {
    fn add(&mut self, z: &Rgb) {
        self.n += 1.0;
        for (s, zi) in self.sum.iter_mut().zip(z) {
            *s += zi;
        }
        for (row, zi) in self.outer.iter_mut().zip(z) {
            for (o, zj) in row.iter_mut().zip(z) {
                *o += zi * zj;
            }
        }
    }

    /// The component of these samples with mixture weight `weight`; `None` for a singular
    /// covariance (not reached: the variance floor keeps it positive definite).
    fn component(&self, weight: f64) -> Option<Component> {
        let mean = self.sum.map(|s| s / self.n);
        let mut cov = [[0.0; 3]; 3];
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                let (oi, mi, mj) = (self.outer.get(i)?, mean.get(i)?, mean.get(j)?);
                *c = oi.get(j)? / self.n - mi * mj;
            }
            if let Some(c) = row.get_mut(i) {
                *c += VARIANCE_FLOOR;
            }
        }
        let (inverse, det) = invert3(&cov)?;
        let log_norm = weight.ln() - 0.5 * det.ln() - 1.5 * (2.0 * std::f64::consts::PI).ln();
        Some(Component {
            mean,
            inverse,
            log_norm,
        })
    }
}

/// The inverse and determinant of a 3x3 matrix; `None` unless the determinant is positive.
fn invert3(m: &[[f64; 3]; 3]) -> Option<([[f64; 3]; 3], f64)> {
    let [[a, b, c], [d, e, f], [g, h, i]] = *m;
    let (co_a, co_b, co_c) = (e * i - f * h, f * g - d * i, d * h - e * g);
    let det = a * co_a + b * co_b + c * co_c;
    if !(det.is_finite() && det > 0.0) {
        return None;
    }
    let inv = [
        [co_a, c * h - b * i, b * f - c * e],
        [co_b, a * i - c * g, c * d - a * f],
        [co_c, b * g - a * h, a * e - b * d],
    ];
    Some((inv.map(|row| row.map(|v| v / det)), det))
}

fn brightness(z: &Rgb) -> f64 {
    z[0] + z[1] + z[2]
}

fn distance2(a: &Rgb, b: &Rgb) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(centres: &[Rgb], z: &Rgb) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centres.iter().enumerate() {
        let d = distance2(c, z);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// The mean of each cluster; an empty cluster keeps its old centre.
fn means(samples: &[Rgb], assignment: &[usize], old: &[Rgb]) -> Vec<Rgb> {
    let mut sums = vec![([0.0; 3], 0.0); old.len()];
    for (&a, z) in assignment.iter().zip(samples) {
        if let Some((s, n)) = sums.get_mut(a) {
            for (si, zi) in s.iter_mut().zip(z) {
                *si += zi;
            }
            *n += 1.0;
        }
    }
    sums.iter()
        .zip(old)
        .map(|(&(s, n), o)| if n > 0.0 { s.map(|v| v / n) } else { *o })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_clusters_are_found_and_scored() {
        // Reds around (200, 30, 30) and blues around (30, 30, 200), with some spread.
        let samples: Vec<Rgb> = (0..200)
            .map(|i| {
                let jitter = (i % 7) as f64 - 3.0;
                if i % 2 == 0 {
                    [200.0 + jitter, 30.0 - jitter, 30.0]
                } else {
                    [30.0, 30.0 + jitter, 200.0 - jitter]
                }
            })
            .collect();
        let gmm = Gmm::fit_kmeans(&samples, 2).unwrap();
        assert_eq!(gmm.components.len(), 2);
        let mut means: Vec<Rgb> = gmm.components.iter().map(|c| c.mean).collect();
        means.sort_by(|a, b| a[0].total_cmp(&b[0]));
        assert!(distance2(&means[0], &[30.0, 30.0, 200.0]) < 4.0);
        assert!(distance2(&means[1], &[200.0, 30.0, 30.0]) < 4.0);
        // Colours of the clusters are far likelier than green.
        let red = gmm.neg_log_density(&[200.0, 30.0, 30.0]);
        let green = gmm.neg_log_density(&[30.0, 200.0, 30.0]);
        assert!(red + 100.0 < green, "{red} vs {green}");
        // A refit keeps the clusters.
        let again = gmm.refit(&samples).unwrap();
        assert_eq!(again.components.len(), 2);
    }

    #[test]
    fn a_single_colour_has_a_finite_density() {
        let samples = vec![[10.0, 20.0, 30.0]; 50];
        let gmm = Gmm::fit_kmeans(&samples, 5).unwrap();
        let here = gmm.neg_log_density(&[10.0, 20.0, 30.0]);
        let there = gmm.neg_log_density(&[200.0, 20.0, 30.0]);
        assert!(here.is_finite() && there.is_finite() && here < there);
        assert!(Gmm::fit_kmeans(&[], 5).is_none());
    }

    #[test]
    fn inverse_times_matrix_is_the_identity() {
        let m = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let (inv, det) = invert3(&m).unwrap();
        assert!(det > 0.0);
        for (i, row) in m.iter().enumerate() {
            for j in 0..3 {
                let p: f64 = row.iter().zip(&inv).map(|(a, b)| a * b[j]).sum();
                assert!((p - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
    }
}
