//! The fast paths on the flex CPU backend: kernels that read and write flex's contiguous `f32`
//! buffers directly (one rayon task per plane or chunk), with their hot loops compiled for
//! AVX-512 and AVX2 besides the baseline (`multiversion` picks one at run time).
//!
//! Each answers `None` (or hands its tensors back) for a tensor that is not a plain `f32` flex
//! tensor (another backend, an autodiff tensor) or a shape it does not take; the dispatch then
//! runs the reference.

use burn::tensor::{
    Int, Tensor,
    ops::{ConvOptions, MaxPoolOptions},
};
use feedbacknet_core::{ActivationRule, DynTensor, GateGranularity, MomentumStep, SteppedGate};

use crate::{
    Activation, Wanted, WinogradWeights,
    fast::{BackwardGrads, FastPath, StepOutcome},
};

mod activation;
mod backward;
mod backward_step;
mod buffer;
mod dense;
mod depthwise;
mod layout;
mod pointwise;
mod pool;
mod product;
mod step;
mod winograd;
mod worker;

/// The flex backend's fast paths.
pub(crate) struct Flex;

impl FastPath for Flex {
    fn max_pool_with_indices(
        x: &Tensor<4>,
        options: &MaxPoolOptions<2>,
    ) -> Option<(Tensor<4>, Tensor<4, Int>)> {
        pool::max_pool_with_indices(x, options)
    }

    fn depthwise_conv(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        depthwise::conv(x, weight, bias, options)
    }

    fn depthwise_input_grad(
        dy: &Tensor<4>,
        weight: &Tensor<4>,
        options: &ConvOptions<2>,
        input_hw: [usize; 2],
    ) -> Option<Tensor<4>> {
        depthwise::input_grad(dy, weight, options, input_hw)
    }

    fn few_channel_conv(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        depthwise::few_channel_conv(x, weight, bias, options)
    }

    fn few_channel_input_grad(
        dy: &Tensor<4>,
        weight: &Tensor<4>,
        options: &ConvOptions<2>,
        input_hw: [usize; 2],
    ) -> Option<Tensor<4>> {
        depthwise::few_channel_input_grad(dy, weight, options, input_hw)
    }

    fn pointwise_conv(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        pointwise::is_pointwise(weight.dims(), options)
            .then(|| pointwise::conv(x, weight, bias))
            .flatten()
    }

    fn dense_conv(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        pad: [usize; 2],
    ) -> Option<Tensor<4>> {
        dense::conv(x, weight, bias, pad)
    }

    fn winograd_weights(
        weight: &Tensor<4>,
        backward_weight: Option<&Tensor<4>>,
        pad: [usize; 2],
    ) -> Option<Box<WinogradWeights>> {
        if !winograd::takes(weight.dims(), pad) {
            return None;
        }
        let forward = winograd::transform_weight(weight)?;
        let backward = backward_weight.and_then(winograd::transform_weight);
        Some(Box::new(WinogradWeights { forward, backward }))
    }

    fn winograd_conv(
        x: &Tensor<4>,
        transformed: &Tensor<3>,
        bias: Option<&Tensor<1>>,
        pad: [usize; 2],
    ) -> Option<Tensor<4>> {
        winograd::conv(x, transformed, bias, pad)
    }

    fn sparse_pointwise_input_grad(dy: &Tensor<4>, swapped: &Tensor<4>) -> Option<Tensor<4>> {
        pointwise::sparse_pointwise_input_grad(dy, swapped)
    }

    fn pad_planes(x: &Tensor<4>, pads: [(usize, usize); 2], value: f32) -> Option<Tensor<4>> {
        layout::pad_planes(x, pads, value)
    }

    fn spread_channels(dy: &Tensor<4>, dims: [usize; 4]) -> Option<Tensor<4>> {
        layout::spread_channels(dy, dims)
    }

    fn activation(x: &DynTensor, act: Activation) -> Option<DynTensor> {
        activation::activation(x, act)
    }

    fn gated_activation(
        x: &DynTensor,
        act: Activation,
        gate: &Tensor<2>,
        granularity: GateGranularity,
    ) -> Option<DynTensor> {
        activation::gated_activation(x, act, gate, granularity)
    }

    fn gated_activation_backward(
        x: &DynTensor,
        act: Activation,
        dy: &DynTensor,
        gate: Option<(&Tensor<2>, GateGranularity)>,
        rule: ActivationRule,
        wanted: Wanted,
    ) -> Option<BackwardGrads> {
        backward::gated_activation_backward(x, act, dy, gate, rule, wanted)
    }

    fn gated_backward_step(
        x: &DynTensor,
        act: Activation,
        dy: &DynTensor,
        gv: (Tensor<2>, Tensor<2>),
        step: &MomentumStep,
        want_input: bool,
    ) -> StepOutcome<(Option<DynTensor>, SteppedGate)> {
        backward_step::backward_step(x, act, dy, gv, step, want_input)
    }

    fn momentum_step(
        step: &MomentumStep,
        g: Tensor<2>,
        v: Tensor<2>,
        grad: &Tensor<2>,
    ) -> StepOutcome<SteppedGate> {
        step::apply(step, g, v, grad)
    }

    fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        worker::on_worker(f)
    }
}
