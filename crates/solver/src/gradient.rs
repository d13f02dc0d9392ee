//! Input gradients and the saliency maps read off them.

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, BackwardTarget, GateSet, GatedNetwork};
use feedbacknet_localize::SaliencyMap;

use crate::{
    Result,
    score::{check_finite, check_targets, one_hot, read},
};

/// `∂score/∂input` for each sample, with the target logits of that forward pass.
#[derive(Debug, Clone)]
pub struct InputGradient {
    /// `[batch, C, H, W]` gradient of each sample's target logit w.r.t. its input.
    pub gradient: Tensor<4>,
    /// Each sample's target logit in this (gated) forward pass.
    pub scores: Vec<f32>,
}

/// Differentiates each sample's target logit w.r.t. the input, through the network gated by
/// `gates` (`None`: all gates open, the plain gradient of Simonyan et al.).
pub fn input_gradient(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    gates: Option<&GateSet>,
) -> Result<InputGradient> {
    input_gradient_with(net, input, targets, gates, ActivationRule::Gradient)
}

/// `M_ij = max_c |g_cij|` for each sample of a `[batch, C, H, W]` gradient.
pub fn saliency_maps(gradient: &Tensor<4>) -> Result<Vec<SaliencyMap>> {
    let [batch, _, height, width] = gradient.dims();
    let maps = gradient
        .clone()
        .abs()
        .max_dim(1)
        .reshape([batch, height * width]);
    let values = read(maps)?;
    values
        .chunks_exact(height * width)
        .map(|m| Ok(SaliencyMap::new(width, height, m.to_vec())?))
        .collect()
}

/// Like [`input_gradient`], with `rule` at every gated activation: the true gradient, guided
/// backprop or DeconvNet (see [`ActivationRule`]), through [`GatedNetwork::backward`] (whose
/// default implementation covers the true gradient by autodiff; the ONNX interpreter runs its
/// hand-written reverse pass, tested equal to autodiff).
pub fn input_gradient_with(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    gates: Option<&GateSet>,
    rule: ActivationRule,
) -> Result<InputGradient> {
    let [batch, ..] = input.dims();
    check_targets(net, targets, batch)?;
    check_finite(input)?;
    let seed = one_hot(targets, net.num_outputs(), &input.device());
    let out = net.backward(
        input.clone(),
        gates,
        seed.clone(),
        rule,
        BackwardTarget::Input,
    )?;
    let gradient = out.gradient.into4("input gradient")?;
    Ok(InputGradient {
        gradient,
        scores: read(out.logits.mul(seed).sum_dim(1))?,
    })
}
