//! A hand-written reverse pass over the compiled program: the true gradient, guided backprop
//! or DeconvNet at every gated activation, down to the input or to one gate site (Grad-CAM).
//!
//! Each step's vector-Jacobian product comes from autodiff on that step alone (its inputs as
//! fresh leaves, its output weighted by the incoming gradient), so every operator the
//! interpreter runs is covered; gated activations apply their [`ActivationRule`] by hand.

use std::collections::HashSet;

use burn::tensor::{Gradients, Tensor};
use feedbacknet_core::{
    ActivationRule, BackwardOutput, BackwardTarget, BinaryOp, CoreError, DynTensor, GateSet,
    Result, dyn_map,
};

use crate::{
    compile::Step,
    network::{OnnxNetwork, Retain, forward_error, to_logits},
    ops::{Activation, Op},
};

/// Forward, then the reverse pass of `Σ seed·logits` down to `target` with `rule`.
pub(crate) fn backward(
    net: &OnnxNetwork,
    input: Tensor<4>,
    gates: Option<&GateSet>,
    seed: Tensor<2>,
    rule: ActivationRule,
    target: BackwardTarget,
) -> Result<BackwardOutput> {
    let program = net.program();
    let gates = gates.map(|g| g.clone().without_autodiff());
    let values = net.execute(input.without_autodiff(), gates.as_ref(), None, Retain::All)?;
    let output = values[program.output]
        .clone()
        .ok_or_else(|| CoreError::Readback("the output was never computed".into()))?;
    let logits = to_logits(output.clone())?;
    if seed.dims() != logits.dims() {
        return Err(CoreError::Shape {
            context: "backward seed".into(),
            expected: format!("{:?} (the logits)", logits.dims()),
            got: seed.dims().to_vec(),
        });
    }
    let stop = match target {
        BackwardTarget::Input => None,
        BackwardTarget::Site(k) => Some(site_slot(net, k)?),
        BackwardTarget::FeatureMap => Some(net.feature_map_slot().ok_or_else(|| {
            CoreError::Unsupported(
                "the graph has no spatial feature map before its classifier".into(),
            )
        })?),
    };
    let constants: HashSet<usize> = program.constants.iter().map(|(slot, _)| *slot).collect();
    let mut grads: Vec<Option<DynTensor>> = vec![None; program.slots];
    grads[program.output] = Some(DynTensor::R2(seed.without_autodiff()).reshape(&output.dims())?);
    for step in program.steps.iter().rev() {
        let Some(dy) = grads[step.output].take() else {
            continue;
        };
        if stop == Some(step.output) {
            return Ok(BackwardOutput {
                logits,
                gradient: dy,
                activation: values[step.output].clone(),
            });
        }
        let inputs = step
            .inputs
            .iter()
            .map(|&s| values[s].clone())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| forward_error(step, "a value of the forward pass is missing".into()))?;
        let needed: Vec<bool> = step.inputs.iter().map(|s| !constants.contains(s)).collect();
        let input_grads = step_vjp(step, inputs, dy, &needed, gates.as_ref(), rule)
            .map_err(|e| forward_error(step, format!("backward: {e}")))?;
        for (&slot, grad) in step.inputs.iter().zip(input_grads) {
            if let Some(grad) = grad {
                grads[slot] = Some(match grads[slot].take() {
                    Some(acc) => acc.binary(grad, BinaryOp::Add)?,
                    None => grad,
                });
            }
        }
    }
    if stop.is_some() {
        return Err(CoreError::Unsupported(format!(
            "{target:?} does not influence the output"
        )));
    }
    let gradient = match grads[program.input].take() {
        Some(g) => g,
        None => DynTensor::R4(input_zeros(&values, program.input)?),
    };
    Ok(BackwardOutput {
        logits,
        gradient,
        activation: None,
    })
}

/// The value slot of gate site `k`.
fn site_slot(net: &OnnxNetwork, k: usize) -> Result<usize> {
    let program = net.program();
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

fn input_zeros(values: &[Option<DynTensor>], slot: usize) -> Result<Tensor<4>> {
    let x = values[slot]
        .clone()
        .ok_or_else(|| CoreError::Readback("the input was dropped".into()))?
        .into4("input")?;
    Ok(x.zeros_like())
}

/// The gradients of one step's inputs (`None` where not needed).
fn step_vjp(
    step: &Step,
    inputs: Vec<DynTensor>,
    dy: DynTensor,
    needed: &[bool],
    gates: Option<&GateSet>,
    rule: ActivationRule,
) -> Result<Vec<Option<DynTensor>>> {
    if let (Op::Activation(act), Some(k)) = (&step.op, step.gate) {
        let x = inputs.into_iter().next().ok_or_else(|| CoreError::Shape {
            context: "activation".into(),
            expected: "one input".into(),
            got: vec![],
        })?;
        let dz = match gates {
            Some(g) => dy.binary(g.gate(k)?, BinaryOp::Mul)?,
            None => dy,
        };
        return Ok(vec![Some(activation_vjp(*act, x, dz, rule)?)]);
    }
    if !needed.iter().any(|&n| n) {
        return Ok(vec![None; needed.len()]);
    }
    autodiff_vjp(&step.op, inputs, dy, needed)
}

/// The rule at a gated activation, given `dz`, the gradient at its ungated output.
fn activation_vjp(
    act: Activation,
    x: DynTensor,
    dz: DynTensor,
    rule: ActivationRule,
) -> Result<DynTensor> {
    let dims = x.dims();
    if dz.dims() != dims {
        return Err(CoreError::Shape {
            context: "activation gradient".into(),
            expected: format!("{dims:?}"),
            got: dz.dims(),
        });
    }
    let x = x.flatten_all();
    let active = match act {
        Activation::Relu => x.greater_elem(0.0).float(),
        Activation::Clip { min, max } => x
            .clone()
            .greater_elem(min)
            .float()
            .mul(x.lower_elem(max).float()),
    };
    DynTensor::R1(rule.apply(dz.flatten_all(), active)).reshape(&dims)
}

/// The vector-Jacobian product of a step by autodiff on that step alone.
fn autodiff_vjp(
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
