//! Gated activations: `act(x)`, `act(x) · g` and its backward pass under an
//! [`ActivationRule`], each in one pass on flex; and the backward pass with the soft solver's
//! step fused in (the gate gradient used where it is computed, never stored).

use burn::tensor::Tensor;
use feedbacknet_core::{
    ActivationRule, CoreError, DynTensor, GateGranularity, MomentumStep, Result, SteppedGate,
};

use crate::{
    Activation, GatedActivation, Wanted, backend::Fast, fast::FastPath, momentum_step, reference,
};

/// `act(x)` (ungated).
pub fn activation(x: DynTensor, act: Activation) -> DynTensor {
    Fast::activation(&x, act).unwrap_or_else(|| reference::activation(x, act))
}

/// `act(x) · gate`, the gate being `[batch, units]` with one value per activation
/// ([`GateGranularity::Neuron`]) or per channel ([`GateGranularity::Channel`]); `act` is an
/// [`Activation`] or a [`GatedActivation`] (PReLU per channel: Burn's ops).
pub fn gated_activation<'a>(
    x: DynTensor,
    act: impl Into<GatedActivation<'a>>,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Result<DynTensor> {
    let act = act.into();
    if let Some(folded) = by_sample(&x, gate)? {
        let dims = x.dims();
        return gated_activation(folded, act, gate, granularity)?.reshape(&dims);
    }
    match act {
        GatedActivation::Scalar(act) => match Fast::gated_activation(&x, act, gate, granularity) {
            Some(y) => Ok(y),
            None => reference::gated_activation(x, &act, gate, granularity),
        },
        GatedActivation::PReluPerChannel(slopes) => {
            reference::gated_activation(x, slopes, gate, granularity)
        }
    }
}

/// The backward pass of `y = act(x) · g` for the output gradient `dy`: `dx` under `rule`
/// (with `g = 1` where `gate` is `None`) and `∂/∂g` shaped like the gate, each if `wanted`.
pub fn gated_activation_backward<'a>(
    x: &DynTensor,
    act: impl Into<GatedActivation<'a>>,
    dy: &DynTensor,
    gate: Option<(&Tensor<2>, GateGranularity)>,
    rule: ActivationRule,
    wanted: Wanted,
) -> Result<(Option<DynTensor>, Option<Tensor<2>>)> {
    let act = act.into();
    // A gate without an activation (attention heads) leaves every rule's gradient as it is.
    let rule = match act {
        GatedActivation::Scalar(Activation::Identity) => ActivationRule::Gradient,
        _ => rule,
    };
    if let Some((g, _)) = gate
        && let (Some(fx), Some(fdy)) = (by_sample(x, g)?, by_sample(dy, g)?)
    {
        let (dx, dg) = gated_activation_backward(&fx, act, &fdy, gate, rule, wanted)?;
        let dx = dx.map(|d| d.reshape(&x.dims())).transpose()?;
        return Ok((dx, dg));
    }
    match act {
        GatedActivation::Scalar(act) => {
            match Fast::gated_activation_backward(x, act, dy, gate, rule, wanted) {
                Some(result) => Ok(result),
                None => reference::gated_activation_backward(x, &act, dy, gate, rule, wanted),
            }
        }
        GatedActivation::PReluPerChannel(slopes) => {
            reference::gated_activation_backward(x, slopes, dy, gate, rule, wanted)
        }
    }
}

/// The backward pass of `y = act(x) · g` under the true gradient, with the soft solver's
/// `step` applied to the gates `g` (velocity `v`) by their gradient: `dx` (if `want_input`)
/// and the stepped gates. On flex with one gate per activation and a scalar activation, one
/// fused pass; elsewhere the gate gradient is computed first ([`gated_activation_backward`],
/// then [`momentum_step`]).
pub fn gated_backward_step<'a>(
    x: &DynTensor,
    act: impl Into<GatedActivation<'a>>,
    dy: &DynTensor,
    (g, v): (Tensor<2>, Tensor<2>),
    granularity: GateGranularity,
    step: &MomentumStep,
    want_input: bool,
) -> Result<(Option<DynTensor>, SteppedGate)> {
    let act = act.into();
    if let (Some(fx), Some(fdy)) = (by_sample(x, &g)?, by_sample(dy, &g)?) {
        let (dx, stepped) =
            gated_backward_step(&fx, act, &fdy, (g, v), granularity, step, want_input)?;
        let dx = dx.map(|d| d.reshape(&x.dims())).transpose()?;
        return Ok((dx, stepped));
    }
    let (g, v) = match (granularity, act) {
        (GateGranularity::Neuron, GatedActivation::Scalar(act)) => {
            match Fast::gated_backward_step(x, act, dy, (g, v), step, want_input) {
                Ok(done) => return Ok(done),
                Err(unchanged) => unchanged,
            }
        }
        _ => (g, v),
    };
    let wanted = Wanted {
        input: want_input,
        gate: true,
    };
    let gate = Some((&g, granularity));
    let (dx, dg) = gated_activation_backward(x, act, dy, gate, ActivationRule::Gradient, wanted)?;
    let dg = dg.ok_or_else(|| CoreError::Readback("no gate gradient".into()))?;
    Ok((dx, momentum_step(step, g, v, &dg)?))
}

/// `x` with its leading axis split into the gates' samples and the rest, where it is not the
/// samples' axis: a transformer's MLP may run on `[batch · tokens, features]`, whose gate site
/// is `[tokens, features]` per sample (see the interpreter's gate sites). `None` where `x`
/// leads with the batch of `gate` already.
fn by_sample(x: &DynTensor, gate: &Tensor<2>) -> Result<Option<DynTensor>> {
    let batch = gate.dims()[0];
    let dims = x.dims();
    match dims.split_first() {
        Some((&lead, rest)) if lead != batch => {
            if batch == 0 || lead % batch != 0 {
                return Err(CoreError::Shape {
                    context: "gated activation".into(),
                    expected: format!("a leading axis that folds the gates' {batch} samples"),
                    got: dims,
                });
            }
            let shape: Vec<usize> = [batch, lead / batch]
                .into_iter()
                .chain(rest.iter().copied())
                .collect();
            Ok(Some(x.clone().reshape(&shape)?))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, activation};
    use feedbacknet_core::BinaryOp;

    use super::*;
    use crate::testing::max_abs;

    const BOTH: Wanted = Wanted {
        input: true,
        gate: true,
    };

    /// Every activation, with parameters that exercise their branches.
    const ALL: [Activation; 17] = [
        Activation::Relu,
        Activation::Clip { min: 0.0, max: 0.5 },
        Activation::SmoothClip {
            max: f32::INFINITY,
            beta: 10.0,
        },
        Activation::SmoothClip {
            max: 0.5,
            beta: 4.0,
        },
        Activation::Silu,
        Activation::HardSwish,
        Activation::GeluErf,
        Activation::GeluTanh,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::Elu { alpha: 0.7 },
        Activation::Mish,
        Activation::PRelu { slope: 0.25 },
        Activation::Sigmoid,
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::Tanh,
        Activation::Softplus,
        Activation::Identity,
    ];

    /// The largest difference a fast path may have from its reference: none for ReLU and Clip
    /// (the same arithmetic), rounding for the others (`exp`, `erf`, `tanh` by other routes).
    fn tolerance(act: Activation) -> f32 {
        if act.is_piecewise_identity() {
            0.0
        } else {
            1e-5
        }
    }

    /// Moves `v` 0.01 away from the points where one of `ALL` has a kink (0, 0.5, ±2.5, ±3).
    fn off_the_kinks(v: f32) -> f32 {
        const KINKS: [f32; 6] = [0.0, 0.5, -2.5, 2.5, -3.0, 3.0];
        match KINKS.iter().find(|&&k| (v - k).abs() < 1e-3) {
            Some(&k) => k + 0.01,
            None => v,
        }
    }

    /// The reference's local derivative `f'(x)` (what every rule reads) is Burn's autodiff
    /// gradient of the reference `f`, and the scalar `f`, `f'` of the flex kernels agree.
    #[test]
    fn the_derivative_is_the_autodiff_gradient() {
        let device = Device::flex();
        // Normal values, scaled to reach the far branches (HardSwish's ±3, the clips), kept off
        // the kinks: there `x + 3` can round onto the clip bound, where autodiff and `f'` pick
        // different one-sided slopes (a convention, not an error).
        let raw = Tensor::<1>::random([4096], Distribution::Normal(0.0, 2.5), &device);
        let values: Vec<f32> = DynTensor::R1(raw)
            .to_vec()
            .expect("x")
            .into_iter()
            .map(off_the_kinks)
            .collect();
        let x = Tensor::<1>::from_data(burn::tensor::TensorData::new(values, [4096]), &device);
        // The smooth kinks' derivative is not their value's (the next test).
        let exact = ALL
            .into_iter()
            .filter(|a| !matches!(a, Activation::SmoothClip { .. }));
        for act in exact {
            let leaf = x.clone().autodiff().detach().require_grad();
            let y = reference::activation(DynTensor::R1(leaf.clone()), act).flatten_all();
            let grads = y.sum().backward();
            let autodiff = leaf.grad(&grads).expect("gradient");
            let slope = reference::derivative(x.clone(), act);
            let diff = max_abs(DynTensor::R1(slope.clone()), DynTensor::R1(autodiff));
            assert!(diff < 1e-5, "{act:?}: f' differs from autodiff by {diff}");
            let xs = DynTensor::R1(x.clone()).to_vec().expect("x");
            let (values, slopes): (Vec<f32>, Vec<f32>) = xs
                .iter()
                .map(|&v| (act.value(v), act.derivative(v)))
                .unzip();
            let reference_values = reference::activation(DynTensor::R1(x.clone()), act);
            let scalar = DynTensor::from_vec(values, &[4096], &device).expect("values");
            let diff = max_abs(scalar, reference_values);
            assert!(diff < 1e-5, "{act:?}: scalar f differs by {diff}");
            let scalar = DynTensor::from_vec(slopes, &[4096], &device).expect("slopes");
            let diff = max_abs(scalar, DynTensor::R1(slope));
            assert!(diff < 1e-5, "{act:?}: scalar f' differs by {diff}");
        }
    }

    /// `SmoothClip` keeps the exact clip as its value, and its local derivative (reference and
    /// scalar) is the gradient of the softplus-smoothed clip `sp_β(x) − sp_β(x − max)`, with
    /// `sp_β(x) = ln(1 + e^(βx))/β`: continuous across the kinks, the mask far from them.
    #[test]
    fn the_smooth_kink_derivative_is_the_gradient_of_a_softplus_clip() {
        let device = Device::flex();
        let x = Tensor::<1>::random([4096], Distribution::Normal(0.0, 2.5), &device);
        let xs = DynTensor::R1(x.clone()).to_vec().expect("x");
        for (max, beta) in [(f32::INFINITY, 10.0), (0.5, 4.0), (6.0, 10.0)] {
            let act = Activation::SmoothClip { max, beta };
            let leaf = x.clone().autodiff().detach().require_grad();
            let rise = activation::softplus(leaf.clone(), beta as f64);
            let smooth = match max.is_finite() {
                true => rise.sub(activation::softplus(
                    leaf.clone().sub_scalar(max),
                    beta as f64,
                )),
                false => rise,
            };
            let grads = smooth.sum().backward();
            let autodiff = leaf.grad(&grads).expect("gradient");
            let slope = reference::derivative(x.clone(), act);
            let diff = max_abs(DynTensor::R1(slope.clone()), DynTensor::R1(autodiff));
            assert!(
                diff < 1e-5,
                "{act:?}: f' differs from the softplus gradient by {diff}"
            );
            let scalar: Vec<f32> = xs.iter().map(|&v| act.derivative(v)).collect();
            let scalar = DynTensor::from_vec(scalar, &[4096], &device).expect("slopes");
            let diff = max_abs(scalar, DynTensor::R1(slope));
            assert!(diff < 1e-6, "{act:?}: scalar f' differs by {diff}");
            let value = reference::activation(DynTensor::R1(x.clone()), act);
            let clip = DynTensor::R1(x.clone().clamp(0.0, max.min(f32::MAX)));
            assert_eq!(max_abs(value, clip), 0.0, "{act:?}: the value is the clip");
            for &v in &xs {
                let far = v.abs() > 2.0 && (v - max).abs() > 2.0;
                let mask = if v > 0.0 && v < max { 1.0 } else { 0.0 };
                assert!(
                    !far || (act.derivative(v) - mask).abs() < 1e-3,
                    "{act:?} at {v}"
                );
            }
        }
    }

    /// For ReLU and Clip the local derivative is the 0/1 mask, so the generalised rules are the
    /// original ones; guided backprop drops the negative slopes of the smooth activations.
    #[test]
    fn the_rules_on_a_mask_are_the_relu_rules() {
        for (dz, on) in [(0.7f32, true), (-0.7, true), (0.7, false), (-0.7, false)] {
            let slope = if on { 1.0 } else { 0.0 };
            assert_eq!(
                ActivationRule::Gradient.at(dz, slope),
                if on { dz } else { 0.0 }
            );
            let guided = if on { dz.max(0.0) } else { 0.0 };
            assert_eq!(ActivationRule::Guided.at(dz, slope), guided);
            assert_eq!(ActivationRule::Deconv.at(dz, slope), dz.max(0.0));
        }
        let slope = Activation::GeluErf.derivative(-1.5);
        assert!(slope < 0.0, "GELU falls below −0.75");
        assert_eq!(ActivationRule::Guided.at(1.0, slope), 0.0);
        assert_eq!(ActivationRule::Gradient.at(1.0, slope), slope);
    }

    #[test]
    fn gated_activation_matches_the_generic_path_forward_and_backward() {
        let device = Device::flex();
        let dims = [2, 24, 30, 30];
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let dy = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        for act in ALL {
            let exact = tolerance(act);
            let plain = activation(DynTensor::R4(x.clone()), act);
            let generic = reference::activation(DynTensor::R4(x.clone().autodiff()), act);
            let generic = DynTensor::R4(generic.into4("act").expect("4-d").without_autodiff());
            let diff = max_abs(plain, generic);
            assert!(diff <= exact, "{act:?} ungated: {diff}");
            for rule in [
                ActivationRule::Gradient,
                ActivationRule::Guided,
                ActivationRule::Deconv,
            ] {
                let backward = |x: &Tensor<4>, dy: &Tensor<4>| {
                    let (dx, dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        None,
                        rule,
                        BOTH,
                    )
                    .expect("ungated backward");
                    assert!(dg.is_none(), "no gate, no gate gradient");
                    dx.expect("dx").into4("dx").expect("4-d").without_autodiff()
                };
                let fast = backward(&x, &dy);
                let generic = backward(&x.clone().autodiff(), &dy.clone().autodiff());
                let diff = max_abs(DynTensor::R4(fast), DynTensor::R4(generic));
                assert!(diff <= exact, "{act:?} {rule:?} ungated backward: {diff}");
            }
            for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
                let units = match granularity {
                    GateGranularity::Neuron => 24 * 30 * 30,
                    GateGranularity::Channel => 24,
                };
                let gate =
                    Tensor::<2>::random([2, units], Distribution::Uniform(0.0, 1.0), &device);
                let fast = gated_activation(DynTensor::R4(x.clone()), act, &gate, granularity)
                    .expect("fast");
                let generic = reference::activation(DynTensor::R4(x.clone()), act)
                    .binary(
                        reference::broadcast_gate(&gate, &dims, granularity).expect("gate"),
                        BinaryOp::Mul,
                    )
                    .expect("generic");
                assert!(
                    max_abs(fast, generic) < 1e-6 + exact,
                    "{act:?} {granularity:?} forward"
                );
                for rule in [
                    ActivationRule::Gradient,
                    ActivationRule::Guided,
                    ActivationRule::Deconv,
                ] {
                    let (dx, dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        Some((&gate, granularity)),
                        rule,
                        BOTH,
                    )
                    .expect("fast backward");
                    let (no_dx, only_dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        Some((&gate, granularity)),
                        rule,
                        Wanted {
                            input: false,
                            gate: true,
                        },
                    )
                    .expect("gate gradient alone");
                    assert!(no_dx.is_none(), "dx was not wanted");
                    // The generic path, on an autodiff tensor (no flex primitive behind it).
                    let leaf = x.clone().autodiff().detach();
                    let (gdx, gdg) = gated_activation_backward(
                        &DynTensor::R4(leaf),
                        act,
                        &DynTensor::R4(dy.clone().autodiff()),
                        Some((&gate.clone().autodiff(), granularity)),
                        rule,
                        BOTH,
                    )
                    .expect("generic backward");
                    let gdx = gdx
                        .expect("dx")
                        .into4("dx")
                        .expect("4-d")
                        .without_autodiff();
                    let gdg = gdg.expect("gate gradient").without_autodiff();
                    let case = format!("{act:?} {granularity:?} {rule:?}");
                    assert!(
                        max_abs(dx.expect("dx"), DynTensor::R4(gdx)) < 1e-6 + exact,
                        "{case} dx"
                    );
                    let dg = dg.expect("gate gradient");
                    let only_dg = only_dg.expect("gate gradient alone");
                    assert_eq!(
                        max_abs(DynTensor::R2(dg.clone()), DynTensor::R2(only_dg)),
                        0.0,
                        "{case} dg alone"
                    );
                    assert!(
                        max_abs(DynTensor::R2(dg), DynTensor::R2(gdg)) < 1e-3,
                        "{case} dg"
                    );
                }
            }
        }
    }

    /// The fused backward step (one gate per activation) and the unfused one (per channel)
    /// equal the reference: the gate gradient by Burn's ops, then the step by Burn's ops.
    #[test]
    fn the_backward_step_equals_the_backward_pass_then_the_step() {
        let device = Device::flex();
        let step = MomentumStep {
            learning_rate: 0.1,
            momentum: 0.9,
            lambda: 0.01,
            kinks: feedbacknet_core::KinkDerivative::Exact,
        };
        let dims = [1, 16, 45, 45];
        let normal = Distribution::Normal(0.0, 1.0);
        let x = DynTensor::R4(Tensor::<4>::random(dims, normal, &device));
        let dy = DynTensor::R4(Tensor::<4>::random(dims, normal, &device));
        let acts = ALL.into_iter().filter(|a| a.gate_kind().is_some());
        let cases = [
            (GateGranularity::Neuron, 16 * 45 * 45),
            (GateGranularity::Channel, 16),
        ];
        for (act, (granularity, units)) in acts.flat_map(|a| cases.map(|c| (a, c))) {
            let case = format!("{act:?} {granularity:?}");
            let g = Tensor::<2>::random([1, units], Distribution::Uniform(-0.2, 1.2), &device)
                .clamp(0.0, 1.0);
            let v = Tensor::<2>::random([1, units], normal, &device);
            let (dx, fused) = gated_backward_step(
                &x,
                act,
                &dy,
                (g.clone(), v.clone()),
                granularity,
                &step,
                true,
            )
            .expect("backward step");
            let gate = Some((&g, granularity));
            let (rdx, rdg) = reference::gated_activation_backward(
                &x,
                &act,
                &dy,
                gate,
                ActivationRule::Gradient,
                BOTH,
            )
            .expect("reference backward");
            let rdg = rdg.expect("gate gradient");
            let stepped = reference::momentum_step(&step, g, v, &rdg).expect("reference step");
            let dx_diff = max_abs(dx.expect("dx"), rdx.expect("dx"));
            assert!(
                dx_diff < 1e-6 + tolerance(act),
                "{case}: dx differs by {dx_diff}"
            );
            let (gate_diff, velocity_diff) = (
                max_abs(DynTensor::R2(fused.gate), DynTensor::R2(stepped.gate)),
                max_abs(
                    DynTensor::R2(fused.velocity),
                    DynTensor::R2(stepped.velocity),
                ),
            );
            assert!(gate_diff < 1e-4, "{case}: gates differ by {gate_diff}");
            assert!(
                velocity_diff < 1e-3,
                "{case}: velocities differ by {velocity_diff}"
            );
            assert!((fused.moved - stepped.moved).abs() < 1e-4, "{case}: moved");
            assert!(fused.moved > 0.0, "{case}: the gates moved");
        }
    }
}
