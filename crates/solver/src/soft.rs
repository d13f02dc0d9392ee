//! The soft feedback solver (continuous relaxation of the gate inference).

use burn::tensor::{Tensor, activation::softmax};
use feedbacknet_core::{GateSet, GatedNetwork};

use crate::{
    Objective, Result, SolverConfig, SolverError,
    score::{check_finite, check_targets, one_hot, read, target_scores},
    step::momentum_step,
};

/// Converged gates and how the solver got there.
#[derive(Debug, Clone)]
pub struct GateSolution {
    /// Final gates in `[0, 1]` (plain tensors, no autodiff).
    pub gates: GateSet,
    /// Per iteration, the target logit of each sample *before* that iteration's update
    /// (`trace[0]` is the feed-forward logit with every gate open).
    pub trace: Vec<Vec<f32>>,
    /// Iterations run (fewer than configured when the gates stopped moving).
    pub iterations: usize,
    /// Whether the solver stopped early because the gates stopped moving.
    pub converged: bool,
}

/// Infers gates for each sample's target class by projected SGD with momentum on
/// `score(g) − λ·Σ|g|`, gates clamped to `[0, 1]` after every step. The score is the target
/// logit or its log-softmax ([`SolverConfig::objective`]).
///
/// `input` is a `[batch, C, H, W]` plain tensor; `targets[b]` is the logit index for sample
/// `b`. The samples are solved independently, in one batched pass per iteration.
pub fn soft_feedback(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    config: &SolverConfig,
) -> Result<GateSolution> {
    config.validate()?;
    let [batch, _, height, width] = input.dims();
    check_targets(net, targets, batch)?;
    check_finite(input)?;
    let sites = net.gate_sites([height, width])?;
    let device = input.device();
    let mut gates = GateSet::ones(sites, batch, config.granularity, &device);
    let mut velocity: Vec<Tensor<2>> = gates.values().iter().map(|g| g.zeros_like()).collect();
    let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
        let [_, classes] = logits.dims();
        let target = one_hot(targets, classes, &logits.device());
        Ok(match config.objective {
            Objective::Logit => target,
            Objective::LogSoftmax => target.sub(softmax(logits.clone(), 1)),
        })
    };
    let mut trace = Vec::with_capacity(config.iterations);
    let mut converged = false;
    let mut iterations = 0;
    let site_count = gates.len();
    while iterations < config.iterations && !converged {
        let step = net.gate_gradients(input.clone(), &gates, &seed)?;
        trace.push(read(target_scores(step.logits, targets))?);
        let mut largest_step = 0.0f32;
        let mut updated = Vec::with_capacity(gates.len());
        let mut next_velocity = Vec::with_capacity(gates.len());
        let sites = gates.sites().clone();
        // Owned, so that the step can write the gates and velocities in place.
        let current = gates
            .into_values()
            .into_iter()
            .zip(std::mem::take(&mut velocity));
        for (site, ((g, v), score_grad)) in current.zip(step.gradients).enumerate() {
            if !config.schedule.moves(site, site_count, iterations) {
                updated.push(g);
                next_velocity.push(v);
                continue;
            }
            let step = momentum_step(g, v, &score_grad, config)?;
            next_velocity.push(step.velocity);
            let (next, moved) = (step.gates, step.moved);
            if !moved.is_finite() {
                return Err(SolverError::Diverged {
                    iteration: iterations,
                });
            }
            largest_step = largest_step.max(moved);
            updated.push(next);
        }
        velocity = next_velocity;
        gates = GateSet::from_values(sites, batch, config.granularity, updated)?;
        // A first-stage step moved only the top gates: the others have not had their turn.
        converged = config.tolerance > 0.0
            && largest_step < config.tolerance
            && !config.schedule.in_first_stage(iterations);
        iterations += 1;
    }
    Ok(GateSolution {
        gates,
        trace,
        iterations,
        converged,
    })
}
