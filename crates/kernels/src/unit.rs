//! [`GatedActivation`]: what the gated kernels take, a scalar [`Activation`] (with its flex
//! fast paths) or a PReLU with a slope per channel ([`PReluSlopes`], on Burn's ops).

use feedbacknet_core::{ActivationKind, KinkDerivative};

use crate::{Activation, PReluSlopes};

/// The activation whose output a gate multiplies, as [`gated_activation`](crate::gated_activation)
/// and its backward passes take it. An [`Activation`] converts into it (`act.into()`).
#[derive(Debug, Clone, Copy)]
pub enum GatedActivation<'a> {
    /// An element-wise activation with scalar parameters: the fast paths where they apply, the
    /// references elsewhere (bit for bit what they were before PReLU per channel came).
    Scalar(Activation),
    /// PReLU with a slope per channel: always the Burn-op reference.
    PReluPerChannel(&'a PReluSlopes),
}

impl From<Activation> for GatedActivation<'_> {
    fn from(act: Activation) -> Self {
        GatedActivation::Scalar(act)
    }
}

impl<'a> From<&'a PReluSlopes> for GatedActivation<'a> {
    fn from(slopes: &'a PReluSlopes) -> Self {
        GatedActivation::PReluPerChannel(slopes)
    }
}

impl GatedActivation<'_> {
    /// This activation with the local derivative `kinks` at its kinks
    /// ([`Activation::with_kinks`]; PReLU per channel keeps its own).
    pub fn with_kinks(self, kinks: KinkDerivative) -> Self {
        match self {
            GatedActivation::Scalar(act) => GatedActivation::Scalar(act.with_kinks(kinks)),
            other => other,
        }
    }

    /// The kind of gate site it makes, or `None` for a scalar activation that is never gated.
    pub fn gate_kind(&self) -> Option<ActivationKind> {
        match self {
            GatedActivation::Scalar(act) => act.gate_kind(),
            GatedActivation::PReluPerChannel(slopes) => Some(slopes.gate_kind()),
        }
    }
}
