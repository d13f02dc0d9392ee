//! Grad-CAM (Selvaraju et al., ICCV 2017) on any gate site of a gated network.

use burn::tensor::{Tensor, activation::relu};
use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardTarget, CoreError, DynTensor, GateSet, GateSite,
    GatedNetwork,
};
use feedbacknet_localize::SaliencyMap;
use serde::{Deserialize, Serialize};

use crate::{
    Result, SolverError,
    score::{check_finite, check_targets, one_hot, read},
};

/// The feature map Grad-CAM reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CamLayer {
    /// The last convolutional feature map (a vision transformer's tokens entering its last
    /// block, as a map on the patch grid): the network's own choice
    /// ([`BackwardTarget::FeatureMap`]), else the last gated activation with a spatial map
    /// larger than 1x1 (default).
    #[default]
    LastConv,
    /// The gate site of this index (see [`GatedNetwork::gate_sites`]).
    Site(usize),
    /// The gate site of this name (the activation node's name).
    Named(String),
}

impl CamLayer {
    /// The gate site index this layer designates among `sites` (for [`CamLayer::LastConv`]:
    /// the fallback when the network designates no feature map).
    pub fn resolve(&self, sites: &[GateSite]) -> Result<usize> {
        // A map `[C, H, W]` larger than 1x1, or a transformer's token sequence `[S, C]` (the
        // network returns it as a map on its patch grid).
        let spatial = |s: &GateSite| match s.shape.as_slice() {
            _ if s.activation == ActivationKind::AttentionHeads => false,
            [_, h, w] => h * w > 1,
            [tokens, _] => *tokens > 1,
            _ => false,
        };
        let found = match self {
            CamLayer::LastConv => sites.iter().rposition(spatial),
            CamLayer::Site(i) => sites.get(*i).filter(|s| spatial(s)).map(|_| *i),
            CamLayer::Named(name) => sites.iter().position(|s| &s.name == name && spatial(s)),
        };
        found.ok_or_else(|| SolverError::NoCamLayer {
            layer: format!("{self:?}"),
            sites: sites.len(),
        })
    }
}

/// Grad-CAM maps at the feature map's resolution, one per sample, with the target logits.
#[derive(Debug, Clone)]
pub struct CamMaps {
    /// `ReLU(Σ_c α_c A_c)` with `α_c` the spatial mean of `∂score/∂A_c`, per sample.
    pub maps: Vec<SaliencyMap>,
    /// Each sample's target logit.
    pub scores: Vec<f32>,
    /// The feature map read.
    pub target: BackwardTarget,
}

/// Grad-CAM for each sample's target class on the feature map `layer`, through the network
/// gated by `gates` (`None`: the plain network).
pub fn grad_cam(
    net: &dyn GatedNetwork,
    input: &Tensor<4>,
    targets: &[usize],
    gates: Option<&GateSet>,
    layer: &CamLayer,
) -> Result<CamMaps> {
    let [batch, _, height, width] = input.dims();
    check_targets(net, targets, batch)?;
    check_finite(input)?;
    let seed = one_hot(targets, net.num_outputs(), &input.device());
    let backward = |target| {
        net.backward(
            input.clone(),
            gates,
            seed.clone(),
            ActivationRule::Gradient,
            target,
        )
    };
    let site =
        |sites| -> Result<BackwardTarget> { Ok(BackwardTarget::Site(layer.resolve(sites)?)) };
    let sites = net.gate_sites([height, width])?;
    let (target, out) = match layer {
        CamLayer::LastConv => match backward(BackwardTarget::FeatureMap) {
            Ok(out) => (BackwardTarget::FeatureMap, out),
            Err(CoreError::Unsupported(_)) => {
                let target = site(&sites)?;
                (target, backward(target)?)
            }
            Err(e) => return Err(e.into()),
        },
        _ => {
            let target = site(&sites)?;
            (target, backward(target)?)
        }
    };
    let activation = site_activation(out.activation, layer, &sites, "Grad-CAM activation")?;
    let gradient = out.gradient.into4("Grad-CAM gradient")?;
    let weights = gradient.mean_dim(3).mean_dim(2);
    let cam: Tensor<4> = relu(activation.mul(weights).sum_dim(1));
    Ok(CamMaps {
        maps: sample_maps(cam)?,
        scores: read(out.logits.mul(seed).sum_dim(1))?,
        target,
    })
}

/// The activation a backward pass to `layer` read, as `[batch, C, h, w]` (`context` names it
/// in a shape error).
pub(crate) fn site_activation(
    activation: Option<DynTensor>,
    layer: &CamLayer,
    sites: &[GateSite],
    context: &str,
) -> Result<Tensor<4>> {
    Ok(activation
        .ok_or_else(|| SolverError::NoCamLayer {
            layer: format!("{layer:?}"),
            sites: sites.len(),
        })?
        .into4(context)?)
}

/// One map per sample of a `[batch, 1, h, w]` tensor.
pub(crate) fn sample_maps(t: Tensor<4>) -> Result<Vec<SaliencyMap>> {
    let [batch, _, h, w] = t.dims();
    read(t.reshape([batch, h * w]))?
        .chunks_exact(h * w)
        .map(|m| Ok(SaliencyMap::new(w, h, m.to_vec())?))
        .collect()
}
