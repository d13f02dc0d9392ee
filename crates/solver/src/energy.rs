//! Gate-weighted activation energy: a class-specific map read off the gated activations of
//! one gate site, with no gradient weighting (the class enters through the gates alone).

use crate::{
    CamLayer, CamMaps, Result,
    gradcam::{sample_maps, site_activation},
    score::{check_finite, check_targets, one_hot, read},
};
use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, BackwardTarget, GateSet, GatedNetwork};

/// `E(x, y) = Σ_c g_c(x, y)·a_c(x, y)`: the gated activations of the gate site `layer`
/// summed over channels, per sample, at the site's resolution. With feedback gates it shows
/// what the gated network keeps for the class at that depth; with `gates = None` it is the
/// plain activation energy, the same for every class.
///
/// Only [`CamLayer::Site`] and [`CamLayer::Named`] make sense for a middle layer;
/// [`CamLayer::LastConv`] reads the last spatial gate site.
pub fn gated_energy(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    gates: Option<&GateSet>,
    layer: &CamLayer,
) -> Result<CamMaps> {
    let [batch, _, height, width] = input.dims();
    check_targets(net, targets, batch)?;
    check_finite(input)?;
    let sites = net.gate_sites([height, width])?;
    let target = BackwardTarget::Site(layer.resolve(&sites)?);
    let seed = one_hot(targets, net.num_outputs(), &input.device());
    let out = net.backward(
        input.clone(),
        gates,
        seed.clone(),
        ActivationRule::Gradient,
        target,
    )?;
    let activation = site_activation(out.activation, layer, &sites, "gated activation")?;
    Ok(CamMaps {
        maps: sample_maps(activation.sum_dim(1))?,
        scores: read(out.logits.mul(seed).sum_dim(1))?,
        target,
    })
}
