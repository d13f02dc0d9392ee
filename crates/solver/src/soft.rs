//! The soft feedback solver (continuous relaxation of the gate inference).

use burn::tensor::{Tensor, activation::softmax};
use feedbacknet_core::{GateSet, GateState, GatedNetwork, MomentumStep, Seed};

use crate::{
    Objective, Result, SolverConfig, SolverError,
    score::{check_finite, check_targets, contrastive_seed, one_hot, read, target_scores},
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
    let mut state = GateState::at_rest(GateSet::ones(sites, batch, config.granularity, &device));
    let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
        let [_, classes] = logits.dims();
        let target = one_hot(targets, classes, &logits.device());
        Ok(match config.objective {
            Objective::Logit => target,
            Objective::LogSoftmax => target.sub(softmax(logits.clone(), 1)),
            Objective::Margin => contrastive_seed(logits, targets, true)?,
            Objective::ContrastMean => contrastive_seed(logits, targets, false)?,
        })
    };
    // The logit objective reads each sample's target logit alone (below and in the seed).
    let seed = match config.objective {
        Objective::Logit => Seed::new(&seed).reading_only(targets),
        Objective::LogSoftmax | Objective::Margin | Objective::ContrastMean => Seed::new(&seed),
    };
    let step = MomentumStep {
        learning_rate: config.learning_rate,
        momentum: config.momentum,
        lambda: config.lambda,
        kinks: config.kinks,
    };
    let mut trace = Vec::with_capacity(config.iterations);
    let mut converged = false;
    let mut iterations = 0;
    let site_count = state.gates.len();
    while iterations < config.iterations && !converged {
        let moving: Vec<bool> = (0..site_count)
            .map(|site| config.schedule.moves(site, site_count, iterations))
            .collect();
        let stepped = net.step_gates(input.clone(), state, &moving, &step, seed)?;
        trace.push(read(target_scores(stepped.logits, targets))?);
        if !stepped.moved.is_finite() {
            return Err(SolverError::Diverged {
                iteration: iterations,
            });
        }
        state = stepped.state;
        // A first-stage step moved only the top gates: the others have not had their turn.
        converged = config.tolerance > 0.0
            && stepped.moved < config.tolerance
            && !config.schedule.in_first_stage(iterations);
        iterations += 1;
    }
    let gates = state.gates;
    Ok(GateSolution {
        gates,
        trace,
        iterations,
        converged,
    })
}
