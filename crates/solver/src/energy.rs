//! Gate-weighted activation energy: a class-specific map read off the gated activations of
//! one gate site, with no gradient weighting (the class enters through the gates alone).

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, BackwardTarget, GateSet, GatedNetwork};
use feedbacknet_localize::SaliencyMap;

use crate::{
    CamLayer, CamMaps, Result, SolverError,
    score::{check_finite, check_targets, one_hot, read},
};

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
    let activation = out
        .activation
        .ok_or_else(|| SolverError::NoCamLayer {
            layer: format!("{layer:?}"),
            sites: sites.len(),
        })?
        .into4("gated activation")?;
    let [_, _, h, w] = activation.dims();
    let values = read(activation.sum_dim(1).reshape([batch, h * w]))?;
    let maps = values
        .chunks_exact(h * w)
        .map(|m| Ok(SaliencyMap::new(w, h, m.to_vec())?))
        .collect::<Result<Vec<_>>>()?;
    Ok(CamMaps {
        maps,
        scores: read(out.logits.mul(seed).sum_dim(1))?,
        target,
    })
}
