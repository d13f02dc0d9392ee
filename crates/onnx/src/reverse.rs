//! A hand-written reverse pass over the compiled program: the true gradient, guided backprop
//! or DeconvNet at every gated activation, down to the input or to one gate site (Grad-CAM).
//!
//! The common operators have hand-written vector-Jacobian products (`vjp.rs`); any other step
//! is differentiated by autodiff on that step alone (its inputs as fresh leaves, its output
//! weighted by the incoming gradient), so every operator the interpreter runs is covered.
//! Gated activations apply their [`ActivationRule`] by hand.
//!
//! The same pass also collects the gradient of every gate ([`gate_gradients`], what the soft
//! solver needs each iteration) and stops below the lowest gate site.

use std::{cell::RefCell, collections::HashSet};

use burn::tensor::{Gradients, Int, Tensor};
use feedbacknet_core::{
    ActivationRule, BackwardOutput, BackwardTarget, BinaryOp, CoreError, DynTensor, GateGradients,
    GateGranularity, GateSet, GateState, MomentumStep, Result, Seed, SteppedGates, check_state,
    dyn_map,
};

use crate::{
    channel_gates::{GateLayout, gated_activation_backward, gated_backward_step},
    execute::{Executor, Recording, Retain, forward_error, program_error, store, to_logits},
    feature_map::to_grid,
    kernels::{Wanted, nan_max},
    ops::{GatedActivation, Op},
    pool::max_pool2d_backward,
    program::Step,
    vjp::fast_vjp,
};

/// Forward, then the reverse pass of `Σ seed·logits` down to `target` with `rule`.
pub(crate) fn backward(
    executor: &Executor,
    input: Tensor<4>,
    gates: Option<&GateSet>,
    seed: Tensor<2>,
    rule: ActivationRule,
    target: BackwardTarget,
) -> Result<BackwardOutput> {
    let gates = gates.map(|g| g.clone().without_autodiff());
    let tape = Tape::record(executor, input, gates.as_ref(), &[], None)?;
    let stop = match target {
        BackwardTarget::Input => Stop::Input,
        BackwardTarget::Site(k) => Stop::Slot(site_slot(executor, k)?),
        BackwardTarget::FeatureMap => Stop::Slot(executor.feature_map_slot().ok_or_else(|| {
            CoreError::Unsupported(
                "the graph has no spatial feature map before its classifier".into(),
            )
        })?),
    };
    let pass = Pass::new(&tape, gates.as_ref(), rule);
    let gradient = pass.run(seed, stop)?;
    let activation = match stop {
        Stop::Slot(slot) => Some(tape.value(slot)?),
        _ => None,
    };
    // A transformer's token sequence is returned as a map on its patch grid (Grad-CAM's layer).
    let (gradient, activation) = match (executor.token_grid(), stop) {
        (Some(grid), Stop::Slot(_)) => (
            gradient.map(|g| to_grid(g, grid)).transpose()?,
            activation.map(|a| to_grid(a, grid)).transpose()?,
        ),
        _ => (gradient, activation),
    };
    if stop != Stop::Input && gradient.is_none() {
        return Err(CoreError::Unsupported(format!(
            "{target:?} does not influence the output"
        )));
    }
    let gradient = match gradient {
        Some(g) => g,
        None => DynTensor::R4(
            tape.value(executor.program().input)?
                .into4("input")?
                .zeros_like(),
        ),
    };
    Ok(BackwardOutput {
        logits: tape.logits,
        gradient,
        activation,
    })
}

/// The gradient of `Σ seed(logits)·logits` with respect to every gate: one recorded forward
/// pass and one reverse pass that stops below the lowest gate site.
pub(crate) fn gate_gradients(
    executor: &Executor,
    input: Tensor<4>,
    gates: &GateSet,
    seed: &dyn Fn(&Tensor<2>) -> Result<Tensor<2>>,
) -> Result<GateGradients> {
    let gates = gates.clone().without_autodiff();
    let tape = Tape::record_gated(executor, input, &gates, None)?;
    let seed = seed(&tape.logits)?;
    let mut pass = Pass::new(&tape, Some(&gates), ActivationRule::Gradient);
    pass.collect = Some(RefCell::new(vec![None; gates.len()]));
    pass.run(seed, Stop::LowestGate)?;
    let collected = pass
        .collect
        .take()
        .map(RefCell::into_inner)
        .unwrap_or_default();
    let gradients = collected
        .into_iter()
        .zip(gates.values())
        .map(|(grad, gate)| grad.unwrap_or_else(|| gate.zeros_like()))
        .collect();
    Ok(GateGradients {
        logits: tape.logits,
        gradients,
    })
}

/// One soft-solver iteration with the step applied in the reverse pass, at each gate site where
/// its gradient is computed (see [`GatedNetwork::step_gates`](feedbacknet_core::GatedNetwork)).
pub(crate) fn step_gates(
    executor: &Executor,
    input: Tensor<4>,
    state: GateState,
    moving: &[bool],
    step: &MomentumStep,
    seed: Seed<'_>,
) -> Result<SteppedGates> {
    check_state(&state, moving)?;
    let GateState { gates, velocity } = state;
    let gates = gates.without_autodiff();
    let classes = seed.classes().map(|c| {
        let mut c = c.to_vec();
        c.sort_unstable();
        c.dedup();
        c
    });
    let tape = Tape::record_gated(executor, input, &gates, classes.as_deref())?;
    let seed = seed.gradient(&tape.logits)?;
    let (sites, batch, granularity) = (gates.sites().clone(), gates.batch(), gates.granularity());
    let mut pass = Pass::new(&tape, None, ActivationRule::Gradient);
    pass.update = Some(RefCell::new(Update {
        states: gates
            .into_values()
            .into_iter()
            .zip(velocity)
            .map(Some)
            .collect(),
        stepped: vec![false; moving.len()],
        moving,
        step,
        granularity,
        moved: 0.0,
    }));
    pass.run(seed, Stop::LowestGate)?;
    let update = pass.update.take().map(RefCell::into_inner);
    let Update {
        states,
        stepped,
        moved,
        ..
    } = update.ok_or_else(|| CoreError::Readback("the gate update went missing".into()))?;
    let (gates, velocity): (Vec<_>, Vec<_>) = states
        .into_iter()
        .enumerate()
        .map(|(k, state)| state.ok_or_else(|| site_error(k)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let state = GateState {
        gates: GateSet::from_values(sites, batch, granularity, gates)?,
        velocity,
    };
    // A site that the score does not reach has a zero gradient: it still takes its step.
    step.step_sites(
        state,
        |k, g| {
            (moving.get(k) == Some(&true) && stepped.get(k) == Some(&false)).then(|| g.zeros_like())
        },
        tape.logits,
        moved,
    )
}

/// The gates and velocities that a reverse pass steps, site by site.
struct Update<'a> {
    /// Per site, its gates and velocity (taken out while the site is being stepped).
    states: Vec<Option<(Tensor<2>, Tensor<2>)>>,
    /// Per site, whether its step was taken.
    stepped: Vec<bool>,
    moving: &'a [bool],
    step: &'a MomentumStep,
    granularity: GateGranularity,
    /// The largest gate change so far.
    moved: f32,
}

impl Update<'_> {
    /// `dx` of gate site `k`'s activation, stepping its gates if it moves.
    fn backward(
        &mut self,
        k: usize,
        x: &DynTensor,
        act: GatedActivation<'_>,
        dy: &DynTensor,
        want_input: bool,
        channels_last: bool,
    ) -> Result<Option<DynTensor>> {
        let layout = GateLayout::of(act.gate_kind(), self.granularity, channels_last);
        // The solver's derivative at the kinks of ReLU and Clip (the gate gradients only).
        let act = act.with_kinks(self.step.kinks);
        let (Some(state), Some(stepped)) = (self.states.get_mut(k), self.stepped.get_mut(k)) else {
            return Err(site_error(k));
        };
        let (g, v) = state.take().ok_or_else(|| site_error(k))?;
        if !self.moving.get(k).copied().unwrap_or(false) {
            let wanted = Wanted {
                input: want_input,
                gate: false,
            };
            let gate = Some((&g, layout));
            let result =
                gated_activation_backward(x, act, dy, gate, ActivationRule::Gradient, wanted);
            *state = Some((g, v));
            return result.map(|(dx, _)| dx);
        }
        let (dx, s) = gated_backward_step(x, act, dy, (g, v), layout, self.step, want_input)?;
        self.moved = nan_max(self.moved, s.moved);
        *stepped = true;
        *state = Some((s.gate, s.velocity));
        Ok(dx)
    }
}

fn site_error(k: usize) -> CoreError {
    CoreError::GateMismatch(format!("no gate for site {k}"))
}

/// Every value of one forward pass, kept for the reverse pass.
struct Tape<'a> {
    executor: &'a Executor,
    values: Vec<Option<DynTensor>>,
    /// Per value slot, the argmax indices of the max pooling that wrote it.
    pool_indices: Vec<Option<Tensor<4, Int>>>,
    logits: Tensor<2>,
    output_dims: Vec<usize>,
}

impl<'a> Tape<'a> {
    /// The forward pass of a solver iteration: the solver calls it with the same input every
    /// iteration, so the steps before the first gate come from the network's cache.
    ///
    /// With `classes` (ascending, distinct), only those logits are computed exactly.
    fn record_gated(
        executor: &'a Executor,
        input: Tensor<4>,
        gates: &GateSet,
        classes: Option<&[usize]>,
    ) -> Result<Self> {
        let input = input.without_autodiff();
        let prefix = executor.gate_free_values(&input)?;
        Self::record(executor, input, Some(gates), &prefix, classes)
    }

    fn record(
        executor: &'a Executor,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        preset: &[(usize, DynTensor)],
        classes: Option<&[usize]>,
    ) -> Result<Self> {
        let program = executor.program();
        let mut pool_indices = Vec::new();
        let recording = Recording {
            pool_indices: Some(&mut pool_indices),
            preset,
            classes,
            ..Recording::default()
        };
        let values = executor.execute_recorded(
            input.without_autodiff(),
            gates,
            None,
            Retain::All,
            recording,
        )?;
        let output = (values.get(program.output).cloned().flatten())
            .ok_or_else(|| CoreError::Readback("the output was never computed".into()))?;
        let output_dims = output.dims();
        Ok(Self {
            executor,
            values,
            pool_indices,
            logits: to_logits(output)?,
            output_dims,
        })
    }

    fn value(&self, slot: usize) -> Result<DynTensor> {
        (self.values.get(slot).cloned().flatten())
            .ok_or_else(|| CoreError::Readback(format!("value slot {slot} was dropped")))
    }
}

/// Where a reverse pass stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// At the network input.
    Input,
    /// At one value slot (its gradient is the result).
    Slot(usize),
    /// Below the lowest gate site (only the gate gradients are wanted).
    LowestGate,
}

/// One reverse pass over a recorded forward pass.
struct Pass<'a> {
    tape: &'a Tape<'a>,
    gates: Option<&'a GateSet>,
    rule: ActivationRule,
    /// Per gate site, the gradient of its gates (collected when `Some`).
    collect: Option<RefCell<Vec<Option<Tensor<2>>>>>,
    /// The solver step to apply at each gate site (then the gates come from here).
    update: Option<RefCell<Update<'a>>>,
}

impl<'a> Pass<'a> {
    fn new(tape: &'a Tape<'a>, gates: Option<&'a GateSet>, rule: ActivationRule) -> Self {
        Self {
            tape,
            gates,
            rule,
            collect: None,
            update: None,
        }
    }

    /// Back-propagates `seed` (the gradient at the logits) until `stop`; returns the gradient
    /// at the stop slot or the input (`None` if nothing reached it).
    fn run(&self, seed: Tensor<2>, stop: Stop) -> Result<Option<DynTensor>> {
        let program = self.tape.executor.program();
        if seed.dims() != self.tape.logits.dims() {
            return Err(CoreError::Shape {
                context: "backward seed".into(),
                expected: format!("{:?} (the logits)", self.tape.logits.dims()),
                got: seed.dims().to_vec(),
            });
        }
        let constants: HashSet<usize> = program.constants.iter().map(|(slot, _)| *slot).collect();
        let mut grads: Vec<Option<DynTensor>> = vec![None; program.slots];
        let seed = DynTensor::R2(seed.without_autodiff()).reshape(&self.tape.output_dims)?;
        store(&mut grads, program.output, seed)?;
        let lowest_gate = program.steps.iter().position(|s| s.gate.is_some());
        for (index, step) in program.steps.iter().enumerate().rev() {
            if stop == Stop::LowestGate && lowest_gate.is_none_or(|lowest| index < lowest) {
                break;
            }
            let Some(dy) = grads.get_mut(step.output).and_then(Option::take) else {
                continue;
            };
            if stop == Stop::Slot(step.output) {
                return Ok(Some(dy));
            }
            let inputs = step
                .inputs
                .iter()
                .map(|&s| self.tape.values.get(s).cloned().flatten())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    forward_error(step, "a value of the forward pass is missing".into())
                })?;
            let mut needed: Vec<bool> = step
                .inputs
                .iter()
                .enumerate()
                .map(|(i, s)| !constants.contains(s) && step.op.differentiable_input(i))
                .collect();
            if stop == Stop::LowestGate && lowest_gate == Some(index) {
                // Nothing below the lowest gate reads its input gradient.
                needed.iter_mut().for_each(|n| *n = false);
            }
            let input_grads = self
                .step(step, inputs, dy, &needed)
                .map_err(|e| forward_error(step, format!("backward: {e}")))?;
            for (&slot, grad) in step.inputs.iter().zip(input_grads) {
                if let Some(grad) = grad {
                    let entry = grads
                        .get_mut(slot)
                        .ok_or_else(|| program_error(format!("no gradient slot {slot}")))?;
                    *entry = Some(match entry.take() {
                        Some(acc) => acc.binary(grad, BinaryOp::Add)?,
                        None => grad,
                    });
                }
            }
        }
        Ok(match stop {
            Stop::Input => grads.get_mut(program.input).and_then(Option::take),
            _ => None,
        })
    }

    /// The gradients of one step's inputs (`None` where not needed).
    fn step(
        &self,
        step: &Step,
        inputs: Vec<DynTensor>,
        dy: DynTensor,
        needed: &[bool],
    ) -> Result<Vec<Option<DynTensor>>> {
        if let (Some(act), Some(k)) = (step.op.gated_activation(), step.gate) {
            let x = inputs.into_iter().next().ok_or_else(|| CoreError::Shape {
                context: "activation".into(),
                expected: "one input".into(),
                got: vec![],
            })?;
            if let Some(update) = &self.update {
                let want_input = needed.first().copied().unwrap_or(false);
                let channels_last = self.tape.executor.program().writes_channels_last(step);
                let dx =
                    (update.borrow_mut()).backward(k, &x, act, &dy, want_input, channels_last)?;
                return Ok(vec![dx]);
            }
            let program = self.tape.executor.program();
            let gate = match self.gates {
                Some(g) => Some((
                    g.values()
                        .get(k)
                        .ok_or_else(|| CoreError::GateMismatch(format!("no gate for site {k}")))?,
                    program.gate_layout(step, g.granularity()),
                )),
                None => None,
            };
            let wanted = Wanted {
                input: needed.first().copied().unwrap_or(false),
                gate: self.collect.is_some(),
            };
            let (dx, gate_grad) = gated_activation_backward(&x, act, &dy, gate, self.rule, wanted)?;
            if let (Some(collect), Some(grad)) = (&self.collect, gate_grad) {
                let mut collected = collect.borrow_mut();
                let entry = collected.get_mut(k).ok_or_else(|| site_error(k))?;
                *entry = Some(grad);
            }
            return Ok(vec![dx]);
        }
        if !needed.iter().any(|&n| n) {
            return Ok(vec![None; needed.len()]);
        }
        if let (Op::MaxPool2d(options), Some(Some(indices)), [DynTensor::R4(x)], DynTensor::R4(d)) = (
            &step.op,
            self.tape.pool_indices.get(step.output),
            inputs.as_slice(),
            &dy,
        ) && let Some(dx) = max_pool2d_backward(x.clone(), d.clone(), indices.clone(), options)
        {
            return Ok(vec![Some(DynTensor::R4(dx))]);
        }
        match fast_vjp(&step.op, &inputs, &dy, needed) {
            Some(grads) => grads,
            None => autodiff_vjp(&step.op, inputs, dy, needed),
        }
    }
}

/// The value slot of gate site `k`.
fn site_slot(executor: &Executor, k: usize) -> Result<usize> {
    let program = executor.program();
    program
        .steps
        .iter()
        .find(|s| s.gate == Some(k))
        .map(|s| s.output)
        .ok_or_else(|| {
            CoreError::GateMismatch(format!(
                "no gate site {k} (the network has {})",
                program.gate_count
            ))
        })
}

/// The vector-Jacobian product of a step by autodiff on that step alone.
pub(crate) fn autodiff_vjp(
    op: &Op,
    inputs: Vec<DynTensor>,
    dy: DynTensor,
    needed: &[bool],
) -> Result<Vec<Option<DynTensor>>> {
    let leaves: Vec<DynTensor> = inputs
        .into_iter()
        .zip(needed)
        .map(|(x, &need)| {
            if need {
                dyn_map!(x, t => t.autodiff().detach().require_grad())
            } else {
                x
            }
        })
        .collect();
    let out = op.run(leaves.clone())?;
    let weighted = out.binary(dy, BinaryOp::Mul)?.flatten_all().sum();
    let grads = weighted.backward();
    Ok(leaves
        .iter()
        .zip(needed)
        .map(|(leaf, &need)| if need { grad_of(leaf, &grads) } else { None })
        .collect())
}

fn grad_of(leaf: &DynTensor, grads: &Gradients) -> Option<DynTensor> {
    match leaf {
        DynTensor::R1(t) => t.grad(grads).map(DynTensor::R1),
        DynTensor::R2(t) => t.grad(grads).map(DynTensor::R2),
        DynTensor::R3(t) => t.grad(grads).map(DynTensor::R3),
        DynTensor::R4(t) => t.grad(grads).map(DynTensor::R4),
        DynTensor::R5(t) => t.grad(grads).map(DynTensor::R5),
        DynTensor::R6(t) => t.grad(grads).map(DynTensor::R6),
    }
}
