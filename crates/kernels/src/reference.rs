//! The references: every kernel's computation in plain Burn tensor ops, on any backend (and on
//! autodiff tensors). The dispatch runs these where no fast path applies, and the tests compare
//! each fast path with its reference. (The convolutions' reference is Burn's own convolution,
//! which the caller runs where a kernel answers `None`.)

use burn::tensor::{
    Int, Tensor, activation,
    module::{max_pool2d, max_pool2d_with_indices},
    ops::MaxPoolOptions,
};
use feedbacknet_core::{
    ActivationRule, BinaryOp, DynTensor, GateGranularity, KinkDerivative, MomentumStep, Result,
    SteppedGate, dyn_map,
};

use crate::{Activation, Wanted, fast::BackwardGrads};

/// Max pooling with its argmax indices, Burn's.
pub(crate) fn max_pool_with_indices(
    x: Tensor<4>,
    options: &MaxPoolOptions<2>,
) -> (Tensor<4>, Tensor<4, Int>) {
    max_pool2d_with_indices(x, options.clone())
}

/// Max pooling, Burn's.
pub(crate) fn max_pool(x: Tensor<4>, options: &MaxPoolOptions<2>) -> Tensor<4> {
    max_pool2d(x, options.clone())
}

/// `act(x)` (the gate is multiplied in by the caller).
pub(crate) fn activation(x: DynTensor, act: Activation) -> DynTensor {
    match act {
        Activation::Relu => dyn_map!(x, t => activation::relu(t)),
        Activation::Clip { min, max } => dyn_map!(x, t => t.clamp(min, max)),
        Activation::SmoothClip { max, .. } => dyn_map!(x, t => t.clamp(0.0, max)),
        Activation::Silu => dyn_map!(x, t => activation::silu(t)),
        Activation::HardSwish => dyn_map!(x, t => activation::hard_swish(t)),
        Activation::GeluErf => dyn_map!(x, t => activation::gelu(t)),
        Activation::GeluTanh => dyn_map!(x, t => activation::gelu_approximate(t)),
        Activation::LeakyRelu { alpha: a } | Activation::PRelu { slope: a } => {
            dyn_map!(x, t => activation::leaky_relu(t, a as f64))
        }
        Activation::Elu { alpha } => dyn_map!(x, t => activation::elu(t, alpha as f64)),
        Activation::Mish => dyn_map!(x, t => activation::mish(t)),
        Activation::Sigmoid => dyn_map!(x, t => activation::sigmoid(t)),
        Activation::HardSigmoid { alpha, beta } => {
            dyn_map!(x, t => activation::hard_sigmoid(t, alpha as f64, beta as f64))
        }
        Activation::Tanh => dyn_map!(x, t => t.tanh()),
        Activation::Softplus => dyn_map!(x, t => activation::softplus(t, 1.0)),
        Activation::Identity => x,
    }
}

/// The local derivative `f'(x)` of `act`, flat (for ReLU and Clip the 0/1 active mask), in
/// Burn ops (no autodiff through it).
pub(crate) fn derivative(x: Tensor<1>, act: Activation) -> Tensor<1> {
    let one = |t: &Tensor<1>| t.ones_like();
    match act {
        Activation::Relu => x.greater_elem(0.0).float(),
        Activation::Clip { min, max } => x
            .clone()
            .greater_elem(min)
            .float()
            .mul(x.lower_elem(max).float()),
        Activation::SmoothClip { max, beta } => {
            // σ(z), 0 below −CUTOFF as the flex kernels and `KinkDerivative` take it.
            let sigmoid = |z: Tensor<1>| {
                let cut = z.clone().lower_elem(-KinkDerivative::CUTOFF);
                activation::sigmoid(z).mask_fill(cut, 0.0)
            };
            let rise = sigmoid(x.clone().mul_scalar(beta));
            match max.is_finite() {
                true => rise.sub(sigmoid(x.sub_scalar(max).mul_scalar(beta))),
                false => rise,
            }
        }
        Activation::Silu => {
            let s = activation::sigmoid(x.clone());
            let inner = s.clone().neg().add_scalar(1.0).mul(x).add_scalar(1.0);
            s.mul(inner)
        }
        Activation::HardSwish => x
            .clone()
            .mul_scalar(2.0)
            .add_scalar(3.0)
            .div_scalar(6.0)
            .mask_fill(x.clone().lower_equal_elem(-3.0), 0.0)
            .mask_fill(x.greater_equal_elem(3.0), 1.0),
        Activation::GeluErf => {
            let cdf = x
                .clone()
                .mul_scalar(std::f32::consts::FRAC_1_SQRT_2)
                .erf()
                .add_scalar(1.0)
                .mul_scalar(0.5);
            let density = x.clone().powi_scalar(2).mul_scalar(-0.5).exp();
            cdf.add(x.mul(density).mul_scalar(0.398_942_3))
        }
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            let cube = x.clone().powi_scalar(3).mul_scalar(0.044_715);
            let t = x.clone().add(cube).mul_scalar(SQRT_2_OVER_PI).tanh();
            let inner = x
                .clone()
                .powi_scalar(2)
                .mul_scalar(3.0 * 0.044_715)
                .add_scalar(1.0)
                .mul_scalar(SQRT_2_OVER_PI);
            let sech2 = t.clone().powi_scalar(2).neg().add_scalar(1.0);
            let left = t.add_scalar(1.0).mul_scalar(0.5);
            left.add(x.mul(sech2).mul(inner).mul_scalar(0.5))
        }
        Activation::LeakyRelu { alpha: a } | Activation::PRelu { slope: a } => {
            one(&x).mask_fill(x.lower_equal_elem(0.0), a)
        }
        Activation::Elu { alpha } => {
            let positive = x.clone().greater_elem(0.0);
            x.clamp_max(0.0)
                .exp()
                .mul_scalar(alpha)
                .mask_fill(positive, 1.0)
        }
        Activation::Mish => {
            let t = activation::softplus(x.clone(), 1.0).tanh();
            let sech2 = t.clone().powi_scalar(2).neg().add_scalar(1.0);
            t.add(x.clone().mul(sech2).mul(activation::sigmoid(x)))
        }
        Activation::Sigmoid => {
            let s = activation::sigmoid(x);
            s.clone().mul(s.neg().add_scalar(1.0))
        }
        Activation::HardSigmoid { alpha, beta } => {
            let y = x.mul_scalar(alpha).add_scalar(beta);
            y.clone()
                .greater_elem(0.0)
                .float()
                .mul(y.lower_elem(1.0).float())
                .mul_scalar(alpha)
        }
        Activation::Tanh => x.tanh().powi_scalar(2).neg().add_scalar(1.0),
        Activation::Softplus => activation::sigmoid(x),
        Activation::Identity => one(&x),
    }
}

/// An element-wise function as the references take it: its value and its local derivative
/// `f'(x)` (flat), on Burn tensor ops.
pub(crate) trait Pointwise {
    /// `f(x)`.
    fn value(&self, x: DynTensor) -> Result<DynTensor>;
    /// `f'(x)`, flat (for ReLU and Clip the 0/1 active mask).
    fn derivative(&self, x: &DynTensor) -> Result<Tensor<1>>;
}

impl Pointwise for Activation {
    fn value(&self, x: DynTensor) -> Result<DynTensor> {
        Ok(activation(x, *self))
    }

    fn derivative(&self, x: &DynTensor) -> Result<Tensor<1>> {
        Ok(derivative(x.clone().flatten_all(), *self))
    }
}

/// `f(x) · gate`.
pub(crate) fn gated_activation(
    x: DynTensor,
    f: &impl Pointwise,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Result<DynTensor> {
    let dims = x.dims();
    f.value(x)?
        .binary(broadcast_gate(gate, &dims, granularity)?, BinaryOp::Mul)
}

/// The backward pass of `y = f(x) · g`: `dx` under `rule` and `∂/∂g`, each if `wanted`.
pub(crate) fn gated_activation_backward(
    x: &DynTensor,
    f: &impl Pointwise,
    dy: &DynTensor,
    gate: Option<(&Tensor<2>, GateGranularity)>,
    rule: ActivationRule,
    wanted: Wanted,
) -> Result<BackwardGrads> {
    let dims = x.dims();
    let gate_grad = match (wanted.gate, gate) {
        (true, Some((g, granularity))) => {
            let per_unit = f.value(x.clone())?.binary(dy.clone(), BinaryOp::Mul)?;
            Some(reduce_to_gate(per_unit, g, granularity)?)
        }
        _ => None,
    };
    if !wanted.input {
        return Ok((None, gate_grad));
    }
    let dz = match gate {
        Some((g, granularity)) => dy
            .clone()
            .binary(broadcast_gate(g, &dims, granularity)?, BinaryOp::Mul)?,
        None => dy.clone(),
    };
    let slope = f.derivative(x)?;
    let dx = DynTensor::R1(rule.apply(dz.flatten_all(), slope)).reshape(&dims)?;
    Ok((Some(dx), gate_grad))
}

/// The soft solver's momentum step on whole tensors ([`MomentumStep::apply`]).
pub(crate) fn momentum_step(
    step: &MomentumStep,
    g: Tensor<2>,
    v: Tensor<2>,
    grad: &Tensor<2>,
) -> Result<SteppedGate> {
    step.apply(g, v, grad)
}

/// `x` padded by `value` around each plane, Burn's.
#[cfg(all(test, feature = "flex"))]
pub(crate) fn pad_planes(x: Tensor<4>, pads: [(usize, usize); 2], value: f32) -> Tensor<4> {
    x.pad(
        vec![(0, 0), (0, 0), pads[0], pads[1]],
        burn::tensor::ops::PadMode::Constant(value),
    )
}

/// Each channel's gradient `dy[n, c]` spread evenly over the `h · w` pixels of `dims`.
#[cfg(all(test, feature = "flex"))]
pub(crate) fn spread_channels(dy: Tensor<4>, dims: [usize; 4]) -> Tensor<4> {
    dy.div_scalar((dims[2] * dims[3]) as f32).expand(dims)
}

/// The `[batch, units]` gate reshaped to broadcast against an activation of shape `dims`.
pub(crate) fn broadcast_gate(
    gate: &Tensor<2>,
    dims: &[usize],
    granularity: GateGranularity,
) -> Result<DynTensor> {
    let mut shape = dims.to_vec();
    if granularity == GateGranularity::Channel {
        shape[2..].iter_mut().for_each(|d| *d = 1);
    }
    DynTensor::R2(gate.clone()).reshape(&shape)
}

/// A per-activation gradient summed to the gate's shape.
fn reduce_to_gate(
    per_unit: DynTensor,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Result<Tensor<2>> {
    let [batch, units] = gate.dims();
    let per_unit = per_unit.flatten_all();
    Ok(match granularity {
        GateGranularity::Neuron => per_unit.reshape([batch, units]),
        GateGranularity::Channel => {
            let per_channel = per_unit.dims()[0] / (batch * units).max(1);
            per_unit
                .reshape([batch * units, per_channel])
                .sum_dim(1)
                .reshape([batch, units])
        }
    })
}
