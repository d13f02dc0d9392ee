//! [`FastPath`]: every fast path of a backend, each answering `None` (or handing its tensors
//! back) where it does not apply. The implementation a build has is [`crate::backend::Fast`].

use burn::tensor::{
    Int, Tensor,
    ops::{ConvOptions, MaxPoolOptions},
};
use feedbacknet_core::{ActivationRule, DynTensor, GateGranularity, MomentumStep, SteppedGate};

use crate::{Activation, Wanted, WinogradWeights};

/// What a gated backward pass answers: `dx` and the gate gradient, each if wanted.
pub(crate) type BackwardGrads = (Option<DynTensor>, Option<Tensor<2>>);

/// The fused backward step's answer (`dx` and the stepped gates), or the gates and velocity
/// handed back where it does not apply.
pub(crate) type StepOutcome<T> = Result<T, (Tensor<2>, Tensor<2>)>;

/// The fast paths of one backend. Every default body is "no fast path here": `None`, or the
/// caller's tensors handed back (and [`FastPath::on_worker`] runs `f` right here).
#[allow(clippy::result_large_err)] // the step paths hand the caller's own tensors back
pub(crate) trait FastPath {
    /// See [`crate::max_pool_with_indices`].
    fn max_pool_with_indices(
        _x: &Tensor<4>,
        _options: &MaxPoolOptions<2>,
    ) -> Option<(Tensor<4>, Tensor<4, Int>)> {
        None
    }

    /// See [`crate::depthwise_conv`].
    fn depthwise_conv(
        _x: &Tensor<4>,
        _weight: &Tensor<4>,
        _bias: Option<&Tensor<1>>,
        _options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::depthwise_input_grad`].
    fn depthwise_input_grad(
        _dy: &Tensor<4>,
        _weight: &Tensor<4>,
        _options: &ConvOptions<2>,
        _input_hw: [usize; 2],
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::few_channel_conv`].
    fn few_channel_conv(
        _x: &Tensor<4>,
        _weight: &Tensor<4>,
        _bias: Option<&Tensor<1>>,
        _options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::few_channel_input_grad`].
    fn few_channel_input_grad(
        _dy: &Tensor<4>,
        _weight: &Tensor<4>,
        _options: &ConvOptions<2>,
        _input_hw: [usize; 2],
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::pointwise_conv`].
    fn pointwise_conv(
        _x: &Tensor<4>,
        _weight: &Tensor<4>,
        _bias: Option<&Tensor<1>>,
        _options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::dense_conv`] (`pad`: its top and left padding).
    fn dense_conv(
        _x: &Tensor<4>,
        _weight: &Tensor<4>,
        _bias: Option<&Tensor<1>>,
        _pad: [usize; 2],
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::winograd_weights`] (`pad`: the top and left padding).
    fn winograd_weights(
        _weight: &Tensor<4>,
        _backward_weight: Option<&Tensor<4>>,
        _pad: [usize; 2],
    ) -> Option<Box<WinogradWeights>> {
        None
    }

    /// See [`crate::winograd_conv`] (`pad`: the top and left padding).
    fn winograd_conv(
        _x: &Tensor<4>,
        _transformed: &Tensor<3>,
        _bias: Option<&Tensor<1>>,
        _pad: [usize; 2],
    ) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::sparse_pointwise_input_grad`].
    fn sparse_pointwise_input_grad(_dy: &Tensor<4>, _swapped: &Tensor<4>) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::pad_planes`].
    fn pad_planes(_x: &Tensor<4>, _pads: [(usize, usize); 2], _value: f32) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::spread_channels`].
    fn spread_channels(_dy: &Tensor<4>, _dims: [usize; 4]) -> Option<Tensor<4>> {
        None
    }

    /// See [`crate::activation`].
    fn activation(_x: &DynTensor, _act: Activation) -> Option<DynTensor> {
        None
    }

    /// See [`crate::gated_activation`].
    fn gated_activation(
        _x: &DynTensor,
        _act: Activation,
        _gate: &Tensor<2>,
        _granularity: GateGranularity,
    ) -> Option<DynTensor> {
        None
    }

    /// See [`crate::gated_activation_backward`].
    fn gated_activation_backward(
        _x: &DynTensor,
        _act: Activation,
        _dy: &DynTensor,
        _gate: Option<(&Tensor<2>, GateGranularity)>,
        _rule: ActivationRule,
        _wanted: Wanted,
    ) -> Option<BackwardGrads> {
        None
    }

    /// See [`crate::gated_backward_step`] (one gate per activation).
    fn gated_backward_step(
        _x: &DynTensor,
        _act: Activation,
        _dy: &DynTensor,
        gv: (Tensor<2>, Tensor<2>),
        _step: &MomentumStep,
        _want_input: bool,
    ) -> StepOutcome<(Option<DynTensor>, SteppedGate)> {
        Err(gv)
    }

    /// See [`crate::momentum_step`].
    fn momentum_step(
        _step: &MomentumStep,
        g: Tensor<2>,
        v: Tensor<2>,
        _grad: &Tensor<2>,
    ) -> StepOutcome<SteppedGate> {
        Err((g, v))
    }

    /// See [`crate::on_worker`].
    fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        f()
    }
}
