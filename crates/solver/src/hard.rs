//! The hard feedback solver: binary gates by coordinate ascent ("selective pruning" of Cao et
//! al., ICCV 2015).

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use feedbacknet_core::{GateSet, GateSite, GatedNetwork};

use crate::{
    GateSolution, HardConfig, Result, SolverError,
    score::{check_finite, check_targets, one_hot, read, read_scalar, target_scores},
};

/// Infers binary (0/1) gates for each sample's target class by coordinate ascent on the
/// target logit.
///
/// Every gate starts open (1). Each sweep runs one forward pass with the current gates as
/// autodiff leaves and one backward pass of the target logits, and reads every gate's gradient
/// `∂S/∂g`: the neuron's activation times the gradient at its output, i.e. its first-order
/// contribution to the score (for a closed gate: whether reopening it would help). Then, site
/// by site from the last to the first, for each sample, a gate becomes 1 where its gradient is
/// positive and at least [`HardConfig::ratio`] times the mean of that site's positive gradients
/// of that sample, and 0 elsewhere. All sites of a sweep use the gradient of that sweep's one
/// backward pass, so the order does not change the result.
///
/// Sweeps are not monotone (closing many neurons at once can lower the logit) and can cycle.
/// A sample stops once [`HardConfig::patience`] consecutive sweeps have not raised its best
/// logit; its gates are then frozen at its best set. The solver stops when no gate changes or
/// every sample has stopped ([`GateSolution::converged`]), or after
/// [`HardConfig::max_sweeps`] sweeps.
///
/// **The returned gates are, per sample, the best gate set seen** by target logit, the all-open
/// set included: the solution never scores below the feed-forward logit (up to floating-point
/// noise when re-evaluated in another batch).
///
/// [`GateSolution::trace`] holds `iterations + 1` entries: `trace[0]` is the feed-forward logit
/// of each sample and `trace[k]` the logit with the gates of sweep `k`; the returned gates of
/// sample `b` score `max_k trace[k][b]`. `input` is a `[batch, C, H, W]` plain tensor and
/// `targets[b]` the logit index of sample `b`; the samples are solved independently, in one
/// batched pass per sweep.
///
/// ```no_run
/// # fn demo(net: &dyn feedbacknet_core::GatedNetwork, input: &feedbacknet_core::Tensor<4>)
/// # -> feedbacknet_solver::Result<()> {
/// use feedbacknet_solver::{HardConfig, hard_feedback, input_gradient};
///
/// let solution = hard_feedback(net, input, &[243], &HardConfig::default())?;
/// let gated = input_gradient(net, input, &[243], Some(&solution.gates))?;
/// assert!(gated.scores[0] >= solution.trace[0][0] - 1e-3);
/// # Ok(()) }
/// ```
pub fn hard_feedback(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    config: &HardConfig,
) -> Result<GateSolution> {
    config.validate()?;
    let [batch, _, height, width] = input.dims();
    check_targets(net, targets, batch)?;
    check_finite(input)?;
    let sites = net.gate_sites([height, width])?;
    let x = input.clone().autodiff().detach();
    let mut gates = GateSet::ones(sites.clone(), batch, config.granularity, &input.device());
    let (scores, mut gradients) = evaluate(net, &x, &gates, targets, 0)?;
    let mut best = Best::new(gates.values().to_vec(), scores.clone());
    let mut trace = vec![scores];
    let (mut iterations, mut converged) = (0, false);
    loop {
        if best.all_settled(config.patience) {
            converged = true;
            break;
        }
        if iterations == config.max_sweeps {
            break;
        }
        iterations += 1;
        let next = best.freeze_settled(threshold_gates(&gradients, config.ratio), config.patience);
        if !any_change(gates.values(), &next)? {
            converged = true;
            trace.push(trace.last().cloned().unwrap_or_default());
            break;
        }
        gates = GateSet::from_values(sites.clone(), batch, config.granularity, next)?;
        let scores = if iterations < config.max_sweeps {
            let (scores, grads) = evaluate(net, &x, &gates, targets, iterations)?;
            gradients = grads;
            scores
        } else {
            score_only(net, input, &gates, targets, iterations)?
        };
        best.update(gates.values(), &scores);
        trace.push(scores);
    }
    Ok(GateSolution {
        gates: best.into_gates(sites, batch, config)?,
        trace,
        iterations,
        converged,
    })
}

/// One forward and backward pass: each sample's target logit and each site's gate gradient.
fn evaluate(
    net: &dyn GatedNetwork,
    x: &Tensor<4>,
    gates: &GateSet,
    targets: &[usize],
    iteration: usize,
) -> Result<(Vec<f32>, Vec<Tensor<2>>)> {
    let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
        Ok(one_hot(targets, logits.dims()[1], &logits.device()))
    };
    let step = net.gate_gradients(x.clone(), gates, &seed)?;
    let scores = finite_scores(read(target_scores(step.logits, targets))?, iteration)?;
    let gradients = step.gradients;
    Ok((scores, gradients))
}

/// A forward pass without autodiff: each sample's target logit.
fn score_only(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    gates: &GateSet,
    targets: &[usize],
    iteration: usize,
) -> Result<Vec<f32>> {
    let logits = net.forward(input.clone(), Some(gates))?;
    finite_scores(read(target_scores(logits, targets))?, iteration)
}

fn finite_scores(scores: Vec<f32>, iteration: usize) -> Result<Vec<f32>> {
    if scores.iter().all(|s| s.is_finite()) {
        Ok(scores)
    } else {
        Err(SolverError::Diverged { iteration })
    }
}

/// The new binary gates of every site, computed top-down (last site first) and returned in
/// forward order.
fn threshold_gates(gradients: &[Tensor<2>], ratio: f32) -> Vec<Tensor<2>> {
    let mut gates: Vec<Tensor<2>> = gradients
        .iter()
        .rev()
        .map(|g| threshold_site(g.clone(), ratio))
        .collect();
    gates.reverse();
    gates
}

/// `1` where `g > 0` and `g >= ratio · mean(positive g of the sample)`, else `0`.
fn threshold_site(gradient: Tensor<2>, ratio: f32) -> Tensor<2> {
    let positive = gradient.clone().greater_elem(0.0).float();
    if ratio == 0.0 {
        return positive;
    }
    let count = positive.clone().sum_dim(1).clamp_min(1.0);
    let mean = gradient.clone().mul(positive.clone()).sum_dim(1).div(count);
    let above = gradient.greater_equal(mean.mul_scalar(ratio)).float();
    above.mul(positive)
}

/// Whether any gate differs between `old` and `new` (one read-back for all sites).
fn any_change(old: &[Tensor<2>], new: &[Tensor<2>]) -> Result<bool> {
    let sums: Vec<Tensor<1>> = old
        .iter()
        .zip(new)
        .map(|(a, b)| a.clone().sub(b.clone()).abs().sum())
        .collect();
    if sums.is_empty() {
        return Ok(false);
    }
    let total = Tensor::cat(sums, 0).sum().reshape([1, 1]);
    Ok(read_scalar(total)? > 0.0)
}

/// The best gates seen so far per sample, and how many sweeps each has gone without improving.
struct Best {
    values: Vec<Tensor<2>>,
    scores: Vec<f32>,
    stalls: Vec<usize>,
}

impl Best {
    fn new(values: Vec<Tensor<2>>, scores: Vec<f32>) -> Self {
        let stalls = vec![0; scores.len()];
        Self {
            values,
            scores,
            stalls,
        }
    }

    /// `[batch, 1]` 0/1 mask of the samples whose gates are frozen.
    fn settled_mask(&self, patience: usize) -> Option<Vec<f32>> {
        let mask: Vec<f32> = self
            .stalls
            .iter()
            .map(|&s| f32::from(u8::from(patience > 0 && s >= patience)))
            .collect();
        mask.iter().any(|&m| m > 0.0).then_some(mask)
    }

    fn all_settled(&self, patience: usize) -> bool {
        patience > 0 && self.stalls.iter().all(|&s| s >= patience)
    }

    /// Replaces the rows of settled samples in `gates` by their best gates.
    fn freeze_settled(&self, gates: Vec<Tensor<2>>, patience: usize) -> Vec<Tensor<2>> {
        match self.settled_mask(patience) {
            Some(mask) => blend_rows(gates, &self.values, mask),
            None => gates,
        }
    }

    /// Takes the samples of `values` whose score beats their best so far.
    fn update(&mut self, values: &[Tensor<2>], scores: &[f32]) {
        let mut improved = vec![0.0f32; scores.len()];
        let best = self.scores.iter_mut().zip(&mut self.stalls);
        for ((&s, (best, stalls)), improved) in scores.iter().zip(best).zip(&mut improved) {
            if s > *best {
                *best = s;
                *stalls = 0;
                *improved = 1.0;
            } else {
                *stalls += 1;
            }
        }
        if improved.iter().any(|&m| m > 0.0) {
            let old = std::mem::take(&mut self.values);
            self.values = blend_rows(old, values, improved);
        }
    }

    fn into_gates(
        self,
        sites: Arc<[GateSite]>,
        batch: usize,
        config: &HardConfig,
    ) -> Result<GateSet> {
        Ok(GateSet::from_values(sites, batch, config.granularity, self.values)?.without_autodiff())
    }
}

/// Per site, row `b` of `from` where `mask[b]` is 1, else row `b` of `base` (0/1 values stay
/// exact).
fn blend_rows(base: Vec<Tensor<2>>, from: &[Tensor<2>], mask: Vec<f32>) -> Vec<Tensor<2>> {
    let batch = mask.len();
    let Some(device) = from.first().map(|t| t.device()) else {
        return base;
    };
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, 1]), &device);
    let keep = mask.clone().neg().add_scalar(1.0);
    base.into_iter()
        .zip(from)
        .map(|(b, f)| b.mul(keep.clone()).add(f.clone().mul(mask.clone())))
        .collect()
}
