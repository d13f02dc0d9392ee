//! The soft feedback solver's update of the gates: one projected momentum ascent step on
//! `score(g) − λ·Σ|g|` per iteration,
//!
//! `v ← μ·v + (∂score/∂g − λ·[g > 0])`, `g ← clamp(g + lr·v, 0, 1)`,
//!
//! and [`GatedNetwork::step_gates`](crate::GatedNetwork::step_gates), which runs one iteration:
//! networks with a reverse pass of their own apply the step where each gate gradient is
//! computed, so that the gradient is never stored.

use burn::tensor::Tensor;

use crate::{CoreError, GateGradients, GateSet, GatedNetwork, KinkDerivative, Result, Seed};

/// A projected momentum step (the soft solver's update rule), and the derivative its gate
/// gradients take through the kinks of ReLU and Clip.
///
/// ```
/// use feedbacknet_core::{KinkDerivative, MomentumStep};
///
/// let step = MomentumStep {
///     learning_rate: 0.1,
///     momentum: 0.9,
///     lambda: 0.01,
///     kinks: KinkDerivative::Exact,
/// };
/// // An open gate with a positive gradient stays open (clamped at 1) and gains velocity.
/// let (g, v) = step.element(1.0, 0.0, 2.0);
/// assert_eq!(g, 1.0);
/// assert!((v - 1.99).abs() < 1e-6);
/// // A shut gate with a negative gradient stays shut.
/// assert_eq!(step.element(0.0, 0.0, -1.0).0, 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentumStep {
    /// `lr`, the step size.
    pub learning_rate: f32,
    /// `μ`, the momentum.
    pub momentum: f32,
    /// `λ`, the weight of the L1 penalty on the gates.
    pub lambda: f32,
    /// The local derivative of ReLU and Clip(0, max) in the reverse pass that computes the gate
    /// gradients (networks with a reverse pass of their own; the autodiff default of
    /// [`GatedNetwork::step_gates`](crate::GatedNetwork::step_gates) takes the exact one).
    pub kinks: KinkDerivative,
}

/// One gate tensor after a step.
#[derive(Debug, Clone)]
pub struct SteppedGate {
    /// The new gates.
    pub gate: Tensor<2>,
    /// The new velocity.
    pub velocity: Tensor<2>,
    /// The largest `|Δg|` (NaN if any value is NaN).
    pub moved: f32,
}

/// The solver's state between iterations: the gates and their velocities (one per site).
#[derive(Debug, Clone)]
pub struct GateState {
    /// The gates.
    pub gates: GateSet,
    /// Per gate site, the velocity, shaped like its gates.
    pub velocity: Vec<Tensor<2>>,
}

impl GateState {
    /// `gates` with every velocity zero: the state a solve starts from.
    pub fn at_rest(gates: GateSet) -> Self {
        let velocity = gates.values().iter().map(Tensor::zeros_like).collect();
        Self { gates, velocity }
    }
}

/// What [`GatedNetwork::step_gates`](crate::GatedNetwork::step_gates) returns.
#[derive(Debug, Clone)]
pub struct SteppedGates {
    /// The gates and velocities after the step.
    pub state: GateState,
    /// `[batch, num_outputs]` logits of the forward pass with the gates before the step.
    pub logits: Tensor<2>,
    /// The largest `|Δg|` over the sites that moved (NaN if any value is NaN; 0 if none moved).
    pub moved: f32,
}

/// `max` that keeps a NaN once seen.
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

impl MomentumStep {
    /// Finishes a step over every gate site of `state`: site `k`'s gates and velocity take the
    /// step with the gradient `gradient(k, gates)` where it gives one and stay as they are
    /// where it gives `None`. `logits` are those of the pass before the step, and `moved` the
    /// largest change of any site stepped before this call (0 if none).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn::tensor::Tensor;
    /// use feedbacknet_core::{
    ///     ActivationKind, Device, GateGranularity, GateSet, GateSite, GateState, KinkDerivative,
    ///     MomentumStep,
    /// };
    ///
    /// let device = Device::flex();
    /// let sites: Arc<[GateSite]> =
    ///     Arc::from(vec![GateSite::new("relu", vec![2], ActivationKind::Relu)]);
    /// let gates = GateSet::ones(sites, 1, GateGranularity::Channel, &device);
    /// let state = GateState { gates, velocity: vec![Tensor::zeros([1, 2], &device)] };
    /// let step = MomentumStep {
    ///     learning_rate: 0.1,
    ///     momentum: 0.9,
    ///     lambda: 1.0,
    ///     kinks: KinkDerivative::Exact,
    /// };
    /// let logits = Tensor::zeros([1, 3], &device);
    /// // The gradient just balances the penalty on the first gate and is zero on the second.
    /// let grad = Tensor::from_floats([[1.0, 0.0]], &device);
    /// let stepped = step.step_sites(state, |_, _| Some(grad.clone()), logits, 0.0).unwrap();
    /// let g = stepped.state.gates.values()[0].clone().into_data().to_vec::<f32>().unwrap();
    /// assert_eq!(g, vec![1.0, 0.9]);
    /// assert!((stepped.moved - 0.1).abs() < 1e-6);
    /// ```
    pub fn step_sites(
        &self,
        state: GateState,
        mut gradient: impl FnMut(usize, &Tensor<2>) -> Option<Tensor<2>>,
        logits: Tensor<2>,
        mut moved: f32,
    ) -> Result<SteppedGates> {
        let GateState { gates, velocity } = state;
        let (sites, batch, granularity) =
            (gates.sites().clone(), gates.batch(), gates.granularity());
        let (mut next_gates, mut next_velocity) = (Vec::new(), Vec::new());
        for (k, (g, v)) in gates.into_values().into_iter().zip(velocity).enumerate() {
            let (g, v) = match gradient(k, &g) {
                Some(grad) => {
                    let stepped = self.apply(g, v, &grad)?;
                    moved = nan_max(moved, stepped.moved);
                    (stepped.gate, stepped.velocity)
                }
                None => (g, v),
            };
            next_gates.push(g);
            next_velocity.push(v);
        }
        Ok(SteppedGates {
            state: GateState {
                gates: GateSet::from_values(sites, batch, granularity, next_gates)?,
                velocity: next_velocity,
            },
            logits,
            moved,
        })
    }

    /// The step on one gate `g` with velocity `v` and score gradient `d`: the new `(g, v)`.
    #[inline(always)]
    pub fn element(&self, g: f32, v: f32, d: f32) -> (f32, f32) {
        // Ascent direction of score − λ·Σ|g|; the L1 subgradient is 0 at g = 0.
        let penalty = if g > 0.0 { self.lambda } else { 0.0 };
        let v = self.momentum * v + (d - penalty);
        let g = (g + self.learning_rate * v).clamp(0.0, 1.0);
        (g, v)
    }

    /// The step on gates `g` with velocity `v` and score gradient `grad` (all of one shape), in
    /// plain Burn tensor ops on any backend: the rule of [`element`](Self::element) over whole
    /// tensors. `feedbacknet_kernels::momentum_step` runs it in one fused pass on flex, with
    /// this as its reference.
    pub fn apply(&self, g: Tensor<2>, v: Tensor<2>, grad: &Tensor<2>) -> Result<SteppedGate> {
        let penalty = g.clone().greater_elem(0.0).float().mul_scalar(self.lambda);
        let direction = grad.clone().sub(penalty);
        let velocity = v.mul_scalar(self.momentum).add(direction);
        let gate = g
            .clone()
            .add(velocity.clone().mul_scalar(self.learning_rate))
            .clamp(0.0, 1.0);
        let change = gate.clone().sub(g).abs().max();
        let moved = change
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| CoreError::Readback(format!("{e:?}")))?
            .first()
            .copied()
            .unwrap_or(0.0);
        Ok(SteppedGate {
            gate,
            velocity,
            moved,
        })
    }
}

/// [`GatedNetwork::step_gates`](crate::GatedNetwork::step_gates) by way of
/// [`GatedNetwork::gate_gradients`]: the gradients of every gate first, then the step on each
/// site with `moving[k]` set.
pub fn step_by_gradients<N: GatedNetwork + ?Sized>(
    net: &N,
    input: Tensor<4>,
    state: GateState,
    moving: &[bool],
    step: &MomentumStep,
    seed: Seed<'_>,
) -> Result<SteppedGates> {
    check_state(&state, moving)?;
    let gradient = |logits: &Tensor<2>| seed.gradient(logits);
    let GateGradients { logits, gradients } = net.gate_gradients(input, &state.gates, &gradient)?;
    if gradients.len() != moving.len() {
        return Err(CoreError::GateMismatch(format!(
            "the network returned {} gate gradients for {} gate sites",
            gradients.len(),
            moving.len()
        )));
    }
    step.step_sites(
        state,
        |k, _| match moving.get(k) {
            Some(true) => gradients.get(k).cloned(),
            _ => None,
        },
        logits,
        0.0,
    )
}

/// Checks that `state` has a velocity and `moving` a flag per gate site.
pub fn check_state(state: &GateState, moving: &[bool]) -> Result<()> {
    let sites = state.gates.len();
    if state.velocity.len() != sites || moving.len() != sites {
        return Err(CoreError::GateMismatch(format!(
            "{sites} gate sites, {} velocities and {} step flags",
            state.velocity.len(),
            moving.len()
        )));
    }
    let shapes_differ = state
        .gates
        .values()
        .iter()
        .zip(&state.velocity)
        .any(|(g, v)| g.dims() != v.dims());
    if shapes_differ {
        return Err(CoreError::GateMismatch(
            "a velocity is not shaped like its gates".into(),
        ));
    }
    Ok(())
}
