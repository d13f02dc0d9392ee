//! Per-channel gates on activations whose channels are the last per-sample axis: token
//! sequences `[N, S, C]` (and their folded form `[N·S, C]`) and channels-last maps
//! `[N, H, W, C]` (see `layout`). The kernels place a per-channel gate on axis 1, which on such
//! a value would gate per token or per row; here the gate is spread to one value per
//! activation (`[N, S·C]`) before the kernels run, and its gradient is summed back per
//! channel. Channels-first values go to the kernels unchanged.

use burn::tensor::Tensor;
use feedbacknet_core::{
    ActivationKind, ActivationRule, DynTensor, GateGranularity, MomentumStep, Result, SteppedGate,
};
use feedbacknet_kernels::{GatedActivation, Wanted, momentum_step};

use crate::layout::{Channels, channel_axis, per_sample_shape};

/// How a site's gates lie on its activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GateLayout {
    /// One gate per activation or per channel.
    pub granularity: GateGranularity,
    /// Which axis holds the channels.
    pub channels: Channels,
}

impl GateLayout {
    /// The layout of the gates of a site of kind `kind` (none: not a known gated activation)
    /// in a gate set of `granularity`, on a value that the program writes channels-last or
    /// not: attention-head sites have one gate per head whatever the set's granularity (see
    /// `head_gates`).
    pub fn of(
        kind: Option<ActivationKind>,
        granularity: GateGranularity,
        channels_last: bool,
    ) -> Self {
        Self {
            granularity: kind.map_or(granularity, |kind| kind.granularity(granularity)),
            channels: Channels::of(kind, channels_last),
        }
    }
}

/// A per-channel gate spread over the activations of each of its `channels`: per sample, the
/// value is `[outer, channels, inner]`.
#[derive(Debug, Clone, Copy)]
struct Spread {
    outer: usize,
    channels: usize,
    inner: usize,
}

impl Spread {
    /// The spread needed for gates of `layout` on `x`, in a batch of `gate`'s rows; `None`
    /// where the kernels place them as they are (channels on the first per-sample axis).
    fn of(x: &DynTensor, gate: &Tensor<2>, layout: GateLayout) -> Option<Self> {
        if layout.granularity != GateGranularity::Channel {
            return None;
        }
        let per_sample = per_sample_shape(&x.dims(), gate.dims()[0]);
        let axis = channel_axis(&per_sample, layout.channels);
        let channels = *per_sample.get(axis).filter(|_| axis > 0)?;
        Some(Self {
            outer: per_sample.get(..axis)?.iter().product(),
            channels,
            inner: per_sample.get(axis + 1..)?.iter().product(),
        })
    }

    fn shape(&self, batch: usize) -> [usize; 4] {
        [batch, self.outer, self.channels, self.inner]
    }

    /// `[N, C]` gates as `[N, outer · C · inner]`, one per activation.
    fn spread(&self, gate: &Tensor<2>) -> Tensor<2> {
        let [batch, _] = gate.dims();
        let shape = self.shape(batch);
        let per_channel = gate.clone().reshape([batch, 1, self.channels, 1]);
        per_channel
            .expand(shape)
            .reshape([batch, shape[1..].iter().product()])
    }

    /// A `[N, outer · C · inner]` gradient summed per channel: `[N, C]`.
    fn gather(&self, grad: Tensor<2>) -> Tensor<2> {
        let [batch, _] = grad.dims();
        let grad = grad.reshape(self.shape(batch)).sum_dim(3).sum_dim(1);
        grad.reshape([batch, self.channels])
    }
}

/// `act(x) · gate` (see `feedbacknet_kernels::gated_activation`).
pub(crate) fn gated_activation<'a>(
    x: DynTensor,
    act: impl Into<GatedActivation<'a>>,
    gate: &Tensor<2>,
    layout: GateLayout,
) -> Result<DynTensor> {
    match Spread::of(&x, gate, layout) {
        Some(s) => {
            let spread = s.spread(gate);
            crate::kernels::gated_activation(x, act, &spread, GateGranularity::Neuron)
        }
        None => crate::kernels::gated_activation(x, act, gate, layout.granularity),
    }
}

/// The backward pass of `act(x) · gate` (see `feedbacknet_kernels::gated_activation_backward`);
/// the gate gradient comes back shaped like the gate.
pub(crate) fn gated_activation_backward<'a>(
    x: &DynTensor,
    act: impl Into<GatedActivation<'a>>,
    dy: &DynTensor,
    gate: Option<(&Tensor<2>, GateLayout)>,
    rule: ActivationRule,
    wanted: Wanted,
) -> Result<(Option<DynTensor>, Option<Tensor<2>>)> {
    let spread = gate.and_then(|(g, layout)| Spread::of(x, g, layout).map(|s| (s, g)));
    match spread {
        Some((s, g)) => {
            let spread = s.spread(g);
            let gate = Some((&spread, GateGranularity::Neuron));
            let (dx, dg) =
                crate::kernels::gated_activation_backward(x, act, dy, gate, rule, wanted)?;
            Ok((dx, dg.map(|d| s.gather(d))))
        }
        None => {
            let gate = gate.map(|(g, layout)| (g, layout.granularity));
            crate::kernels::gated_activation_backward(x, act, dy, gate, rule, wanted)
        }
    }
}

/// The backward pass under the true gradient with the soft solver's `step` applied to the
/// gates (see `feedbacknet_kernels::gated_backward_step`).
pub(crate) fn gated_backward_step<'a>(
    x: &DynTensor,
    act: impl Into<GatedActivation<'a>>,
    dy: &DynTensor,
    (g, v): (Tensor<2>, Tensor<2>),
    layout: GateLayout,
    step: &MomentumStep,
    want_input: bool,
) -> Result<(Option<DynTensor>, SteppedGate)> {
    let Some(s) = Spread::of(x, &g, layout) else {
        return crate::kernels::gated_backward_step(
            x,
            act,
            dy,
            (g, v),
            layout.granularity,
            step,
            want_input,
        );
    };
    let wanted = Wanted {
        input: want_input,
        gate: true,
    };
    let spread = s.spread(&g);
    let gate = Some((&spread, GateGranularity::Neuron));
    let rule = ActivationRule::Gradient;
    let (dx, dg) = crate::kernels::gated_activation_backward(x, act, dy, gate, rule, wanted)?;
    let dg = dg.ok_or_else(|| feedbacknet_core::CoreError::Readback("no gate gradient".into()))?;
    Ok((dx, momentum_step(step, g, v, &s.gather(dg))?))
}
