//! The class score that every method differentiates: the target logit of each sample.

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::{CoreError, GatedNetwork};

use crate::{Result, SolverError};

/// Checks the targets against the network and the batch.
pub(crate) fn check_targets(net: &dyn GatedNetwork, targets: &[usize], batch: usize) -> Result<()> {
    if targets.len() != batch {
        return Err(SolverError::BatchMismatch {
            targets: targets.len(),
            batch,
        });
    }
    let classes = net.num_outputs();
    match targets.iter().find(|&&t| t >= classes) {
        Some(&class) => Err(SolverError::ClassOutOfRange { class, classes }),
        None => Ok(()),
    }
}

/// Rejects inputs with NaN or infinite values.
pub(crate) fn check_finite(input: &Tensor<4>) -> Result<()> {
    let values = input
        .to_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Readback(format!("{e:?}")))?;
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(SolverError::NonFiniteInput)
    }
}

/// `[batch, classes]` one-hot rows: `1` at each sample's target.
pub(crate) fn one_hot(targets: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let batch = targets.len();
    let mut mask = vec![0.0f32; batch * classes];
    for (row, &t) in mask.chunks_exact_mut(classes.max(1)).zip(targets) {
        if let Some(m) = row.get_mut(t) {
            *m = 1.0;
        }
    }
    Tensor::<2>::from_data(TensorData::new(mask, [batch, classes]), device)
}

/// `[batch, 1]` target logits: `Σ_k logits[b, k] · onehot[b, k]`.
pub(crate) fn target_scores(logits: Tensor<2>, targets: &[usize]) -> Tensor<2> {
    let [_, classes] = logits.dims();
    let mask = one_hot(targets, classes, &logits.device());
    logits.mul(mask).sum_dim(1)
}

/// Reads a one-value tensor back as an `f32`.
pub(crate) fn read_scalar(t: Tensor<2>) -> Result<f32> {
    read(t)?.first().copied().ok_or_else(|| {
        CoreError::Readback("an empty tensor where one value was expected".into()).into()
    })
}

/// Reads a small tensor back as `f32` values.
pub(crate) fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    Ok(t.without_autodiff()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Readback(format!("{e:?}")))?)
}

/// The seed of a contrastive objective, computed on the host from `[batch, classes]` logits:
/// per row, `+1` at the target and minus the weights of the competitors: the strongest other
/// logit (`margin`: weight 1 on it) or all others (`mean`: `1 / (classes − 1)` each).
pub(crate) fn contrastive_seed(
    logits: &Tensor<2>,
    targets: &[usize],
    margin: bool,
) -> feedbacknet_core::Result<Tensor<2>> {
    let [batch, classes] = logits.dims();
    let values = logits
        .to_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Readback(format!("{e:?}")))?;
    let mut seed = vec![0.0f32; batch * classes];
    let others = classes.saturating_sub(1).max(1) as f32;
    let rows = seed.chunks_exact_mut(classes.max(1));
    for ((row, z), &t) in rows.zip(values.chunks_exact(classes.max(1))).zip(targets) {
        if margin {
            let rival = z
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != t)
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(j, _)| j);
            if let Some(r) = rival.and_then(|j| row.get_mut(j)) {
                *r = -1.0;
            }
        } else {
            row.iter_mut().for_each(|s| *s = -1.0 / others);
        }
        if let Some(s) = row.get_mut(t) {
            *s = 1.0;
        }
    }
    Ok(Tensor::<2>::from_data(
        TensorData::new(seed, [batch, classes]),
        &logits.device(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The margin and the mean contrast of one row of logits.
    fn objective(z: &[f32], t: usize, margin: bool) -> f32 {
        let others = z
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != t)
            .map(|(_, &v)| v);
        let competitor = if margin {
            others.fold(f32::NEG_INFINITY, f32::max)
        } else {
            others.sum::<f32>() / (z.len() - 1) as f32
        };
        z[t] - competitor
    }

    #[test]
    fn contrastive_seeds_are_the_gradients_of_their_objectives() {
        let device = Device::default();
        let rows = [[0.3f32, 2.5, -1.0, 1.9, 0.7], [4.0, -2.0, 0.5, 3.1, 3.0]];
        let targets = [2usize, 0];
        let logits = Tensor::<2>::from_data(TensorData::new(rows.concat(), [2, 5]), &device);
        for margin in [true, false] {
            let seed = contrastive_seed(&logits, &targets, margin)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (b, (row, &t)) in rows.iter().zip(&targets).enumerate() {
                for k in 0..row.len() {
                    let (mut up, mut down) = (*row, *row);
                    up[k] += 1e-2;
                    down[k] -= 1e-2;
                    let fd = (objective(&up, t, margin) - objective(&down, t, margin)) / 2e-2;
                    let s = seed[b * 5 + k];
                    assert!(
                        (s - fd).abs() < 1e-3,
                        "margin {margin}, row {b}, logit {k}: {s} vs {fd}"
                    );
                }
            }
        }
    }
}
