//! The trait every gated network implements.

use std::sync::Arc;

use burn::tensor::Tensor;

use crate::{
    ActivationRule, BackwardOutput, BackwardTarget, CoreError, DynTensor, GateSet, GateSite,
    GateState, InputSpec, MomentumStep, Result, Seed, SteppedGates, step_by_gradients,
};

/// A classifier whose ReLU-type activations can be gated.
///
/// Implement it for any Burn model: list the activations you gate as [`GateSite`]s and
/// multiply each activation's output by `gates.gate(i)` in `forward`. Every solver and saliency
/// method of feedbacknet then works on your model; the modified backward rules (guided
/// backprop, DeconvNet) and Grad-CAM need [`GatedNetwork::backward`] too, whose default only
/// covers the true gradient to the input.
///
/// Weights should be plain (non-autodiff) tensors: gradients then flow only to the gates and
/// the input, which is what every method here needs.
pub trait GatedNetwork: Send + Sync {
    /// The expected input (size and normalization).
    fn input_spec(&self) -> &InputSpec;

    /// Number of output logits.
    fn num_outputs(&self) -> usize;

    /// The gate sites, in forward order, for an input of `[height, width]` pixels.
    fn gate_sites(&self, input_hw: [usize; 2]) -> Result<Arc<[GateSite]>>;

    /// The most samples one call may hold, or `None` for any number (the default). An ONNX
    /// export that bakes batch 1 into its graph (a simplified ViT's reshapes and class token)
    /// answers `Some(1)`, and the library then sends it one sample per call.
    fn max_batch(&self) -> Option<usize> {
        None
    }

    /// Runs the network on a `[batch, channels, height, width]` input. `None` means every gate
    /// open (the plain feed-forward net). Returns `[batch, num_outputs]` logits.
    fn forward(&self, input: Tensor<4>, gates: Option<&GateSet>) -> Result<Tensor<2>>;

    /// Runs forward, then back-propagates `seed` (`[batch, num_outputs]`, the gradient of the
    /// score w.r.t. the logits: a one-hot row selects a class) down to `target`, applying
    /// `rule` at every gated activation. Gates act as constants.
    ///
    /// The default implementation uses autodiff and supports only
    /// [`ActivationRule::Gradient`] with [`BackwardTarget::Input`]; other requests return
    /// [`CoreError::Unsupported`].
    fn backward(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        seed: Tensor<2>,
        rule: ActivationRule,
        target: BackwardTarget,
    ) -> Result<BackwardOutput> {
        if rule != ActivationRule::Gradient || target != BackwardTarget::Input {
            return Err(CoreError::Unsupported(format!(
                "this network implements only the true input gradient, not {rule:?} to {target:?}"
            )));
        }
        autodiff_input_gradient(self, input, gates, seed)
    }

    /// Runs forward with `gates`, then returns the gradient of `Σ seed·logits` w.r.t. every
    /// gate, where `seed` is computed from the logits of that same forward pass (a one-hot row
    /// differentiates a target logit; `onehot − softmax` its log-probability). This is the
    /// soft feedback solver's inner step.
    ///
    /// The default implementation uses autodiff; networks with a faster reverse pass (the ONNX
    /// interpreter) override it.
    fn gate_gradients(
        &self,
        input: Tensor<4>,
        gates: &GateSet,
        seed: &dyn Fn(&Tensor<2>) -> Result<Tensor<2>>,
    ) -> Result<GateGradients> {
        autodiff_gate_gradients(self, input, gates, seed)
    }

    /// One soft-solver iteration: forward with `state.gates`, the gradient of `Σ seed·logits`
    /// w.r.t. every gate (as in [`GatedNetwork::gate_gradients`]), and `step` applied to the
    /// gates of each site `k` with `moving[k]` set (the others keep their gates and velocity).
    /// Of the logits returned, only those the seed reads must be exact (see [`Seed`]).
    ///
    /// The default implementation computes every gradient first ([`step_by_gradients`]); the
    /// ONNX interpreter applies the step in its reverse pass, where each site's gradient is
    /// computed, so that the gradient is never stored (on flex).
    fn step_gates(
        &self,
        input: Tensor<4>,
        state: GateState,
        moving: &[bool],
        step: &MomentumStep,
        seed: Seed<'_>,
    ) -> Result<SteppedGates> {
        step_by_gradients(self, input, state, moving, step, seed)
    }
}

/// The result of [`GatedNetwork::gate_gradients`].
#[derive(Debug, Clone)]
pub struct GateGradients {
    /// `[batch, num_outputs]` logits of the gated forward pass (plain tensor).
    pub logits: Tensor<2>,
    /// Per gate site, the `[batch, gates_per_sample]` gradient (plain tensors, laid out like
    /// [`GateSet::values`]).
    pub gradients: Vec<Tensor<2>>,
}

/// [`GatedNetwork::gate_gradients`] by autodiff (gates as leaves, weights and input constant).
pub fn autodiff_gate_gradients<N: GatedNetwork + ?Sized>(
    net: &N,
    input: Tensor<4>,
    gates: &GateSet,
    seed: &dyn Fn(&Tensor<2>) -> Result<Tensor<2>>,
) -> Result<GateGradients> {
    let leaves = gates.clone().require_grad();
    let logits = net.forward(input.autodiff().detach(), Some(&leaves))?;
    let plain = logits.clone().without_autodiff();
    let seed = seed(&plain)?;
    if seed.dims() != plain.dims() {
        return Err(CoreError::Shape {
            context: "gate gradient seed".into(),
            expected: format!("{:?} (the logits)", plain.dims()),
            got: seed.dims().to_vec(),
        });
    }
    let grads = logits.mul(seed.autodiff().detach()).sum().backward();
    let gradients = leaves
        .values()
        .iter()
        .map(|leaf| {
            leaf.grad(&grads)
                .unwrap_or_else(|| leaf.clone().without_autodiff().zeros_like())
        })
        .collect();
    Ok(GateGradients {
        logits: plain,
        gradients,
    })
}

/// The true input gradient of `Σ seed·logits` by autodiff (gates and weights constant).
pub fn autodiff_input_gradient<N: GatedNetwork + ?Sized>(
    net: &N,
    input: Tensor<4>,
    gates: Option<&GateSet>,
    seed: Tensor<2>,
) -> Result<BackwardOutput> {
    let x = input.autodiff().detach().require_grad();
    let gates = gates.map(|g| g.clone().constant());
    let logits = net.forward(x.clone(), gates.as_ref())?;
    let grads = logits
        .clone()
        .mul(seed.autodiff().detach())
        .sum()
        .backward();
    let gradient = x
        .grad(&grads)
        .ok_or_else(|| CoreError::Readback("the input received no gradient".into()))?;
    Ok(BackwardOutput {
        logits: logits.without_autodiff(),
        gradient: DynTensor::R4(gradient),
        activation: None,
    })
}
