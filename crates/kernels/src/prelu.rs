//! PReLU with a learnt slope per channel: its value and local derivative in plain Burn tensor
//! ops (the gated forward and backward passes are the references', see `reference::Pointwise`).
//! There is no flex fast path: the slopes are a tensor, which the scalar, `Copy`
//! [`Activation`](crate::Activation) cannot hold.

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationKind, BinaryOp, CoreError, DynTensor, Result, dyn_map};

use crate::reference::Pointwise;

/// The slopes of a PReLU whose slope differs per channel: `f(x) = x` for `x > 0`, `a·x`
/// otherwise, with the constant slope tensor `a` broadcast to `x` as ONNX `PRelu` broadcasts
/// it (unidirectionally, aligned on the last axes): `[C, 1, 1]` or `[1, C, 1, 1]` on a
/// `[N, C, H, W]` map, `[C]` on `[N, C]` features or on channels-last `[.., C]` tokens. A
/// slope that does not broadcast to the activation is a shape error when it runs.
///
/// ```
/// use feedbacknet_core::{Device, DynTensor};
/// use feedbacknet_kernels::PReluSlopes;
///
/// let device = Device::flex();
/// let slopes = PReluSlopes::new(DynTensor::from_vec(vec![0.5, -1.0], &[2, 1, 1], &device)?);
/// let x = DynTensor::from_vec(vec![-2.0, 3.0, -2.0, 3.0], &[1, 2, 1, 2], &device)?;
/// assert_eq!(slopes.apply(x)?.to_vec()?, vec![-1.0, 3.0, 2.0, 3.0]);
/// # Ok::<(), feedbacknet_core::CoreError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PReluSlopes {
    slope: DynTensor,
}

impl PReluSlopes {
    /// The PReLU of the constant slope tensor `slope` (a plain tensor, not autodiff).
    pub fn new(slope: DynTensor) -> Self {
        Self { slope }
    }

    /// The number of slope values.
    pub fn count(&self) -> usize {
        self.slope.numel()
    }

    /// The gate site kind: [`ActivationKind::PReluPerChannel`].
    pub fn gate_kind(&self) -> ActivationKind {
        ActivationKind::PReluPerChannel {
            slopes: self.count(),
        }
    }

    /// `f(x)`: `where(x > 0, x, a·x)`.
    pub fn apply(&self, x: DynTensor) -> Result<DynTensor> {
        let dims = x.dims();
        let scaled = x.clone().binary(self.aligned(&dims)?, BinaryOp::Mul)?;
        let x = x.flatten_all();
        let y = scaled
            .flatten_all()
            .mask_where(x.clone().greater_elem(0.0), x);
        DynTensor::R1(y).reshape(&dims)
    }

    /// `f'(x)`, flat: `where(x > 0, 1, a)` (the slope at the kink, as the scalar PReLU takes it).
    pub(crate) fn derivative(&self, x: &DynTensor) -> Result<Tensor<1>> {
        let ones = dyn_map!(x.clone(), t => t.ones_like());
        let slopes = ones.binary(self.aligned(&x.dims())?, BinaryOp::Mul)?;
        let positive = x.clone().flatten_all().greater_elem(0.0);
        Ok(slopes.flatten_all().mask_fill(positive, 1.0))
    }

    /// The slope with the rank of an activation of shape `dims` (leading axes of 1), checked to
    /// broadcast to it unidirectionally.
    fn aligned(&self, dims: &[usize]) -> Result<DynTensor> {
        let own = self.slope.dims();
        let extra = own.len().saturating_sub(dims.len());
        let (lead, kept) = own.split_at(extra);
        let offset = dims.len() - kept.len();
        let fits = lead.iter().all(|&d| d == 1)
            && kept
                .iter()
                .zip(dims.iter().skip(offset))
                .all(|(&s, &d)| s == 1 || s == d);
        if !fits {
            return Err(CoreError::Shape {
                context: "PRelu slope".into(),
                expected: format!("a slope that broadcasts to the activation {dims:?}"),
                got: own,
            });
        }
        let slope = match extra {
            0 => self.slope.clone(),
            _ => self.slope.clone().reshape(kept)?,
        };
        slope.unsqueeze_to(dims.len())
    }
}

impl Pointwise for PReluSlopes {
    fn value(&self, x: DynTensor) -> Result<DynTensor> {
        self.apply(x)
    }

    fn derivative(&self, x: &DynTensor) -> Result<Tensor<1>> {
        PReluSlopes::derivative(self, x)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};
    use feedbacknet_core::{ActivationRule, GateGranularity, MomentumStep};

    use super::*;
    use crate::{
        Activation, Wanted, gated_activation, gated_activation_backward, gated_backward_step,
        reference, testing::max_abs,
    };

    const DIMS: [usize; 4] = [2, 3, 4, 5];
    const SLOPES: [f32; 3] = [0.25, -0.5, 1.5];
    const RULES: [ActivationRule; 3] = [
        ActivationRule::Gradient,
        ActivationRule::Guided,
        ActivationRule::Deconv,
    ];
    const BOTH: Wanted = Wanted {
        input: true,
        gate: true,
    };

    fn random(dims: [usize; 4]) -> DynTensor {
        let t = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &Device::flex());
        DynTensor::R4(t)
    }

    fn slopes(dims: &[usize]) -> PReluSlopes {
        let slope = DynTensor::from_vec(SLOPES.to_vec(), dims, &Device::flex()).expect("slope");
        PReluSlopes::new(slope)
    }

    /// The channel of flat index `i` of a `DIMS` tensor, and the scalar PReLU of its slope.
    fn scalar_at(i: usize) -> (usize, Activation) {
        let channel = i / (DIMS[2] * DIMS[3]) % DIMS[1];
        (
            channel,
            Activation::PRelu {
                slope: SLOPES[channel],
            },
        )
    }

    /// The gate of flat index `i` of a `DIMS` tensor, from the flat `[batch, units]` gates.
    fn gate_at(gates: &[f32], i: usize, granularity: GateGranularity) -> (usize, f32) {
        let unit = match granularity {
            GateGranularity::Neuron => i,
            GateGranularity::Channel => i / (DIMS[2] * DIMS[3]),
        };
        (unit, gates[unit])
    }

    /// Both slope shapes of one slope per channel of `[N, C, H, W]` give the scalar PReLU of
    /// each channel; `[C]` runs along the last axis; a slope that does not broadcast is an error.
    #[test]
    fn a_slope_per_channel_is_the_scalar_prelu_of_each_channel() {
        let x = random(DIMS);
        let xs = x.to_vec().expect("x");
        let expected: Vec<f32> = (0..xs.len()).map(|i| scalar_at(i).1.value(xs[i])).collect();
        for dims in [&[3, 1, 1][..], &[1, 3, 1, 1]] {
            let y = slopes(dims).apply(x.clone()).expect("prelu");
            assert_eq!(y.dims(), DIMS.to_vec());
            assert_eq!(y.to_vec().expect("y"), expected, "{dims:?}");
        }
        // `[C]` broadcasts along the last axis (channels-last tokens).
        let tokens = random([2, 4, 5, 3]);
        let ts = tokens.to_vec().expect("tokens");
        let y = slopes(&[3]).apply(tokens).expect("channels last");
        let expected: Vec<f32> = (0..ts.len())
            .map(|i| {
                Activation::PRelu {
                    slope: SLOPES[i % 3],
                }
                .value(ts[i])
            })
            .collect();
        assert_eq!(y.to_vec().expect("y"), expected);
        // A slope that does not broadcast to the activation is a shape error.
        assert!(slopes(&[3]).apply(x.clone()).is_err());
        assert!(slopes(&[3, 1]).apply(x).is_err());
    }

    /// `f'` is autodiff's gradient of `f`, and the gated forward and backward passes under
    /// every rule are, element by element, the scalar PReLU of the element's channel.
    #[test]
    fn the_gated_passes_are_the_scalar_rules_per_channel() {
        let device = Device::flex();
        let prelu = slopes(&[3, 1, 1]);
        let (x, dy) = (random(DIMS), random(DIMS));
        let (xs, dys) = (x.to_vec().expect("x"), dy.to_vec().expect("dy"));
        let leaf = dyn_map!(x.clone(), t => t.autodiff().detach().require_grad());
        let grads = prelu
            .apply(leaf.clone())
            .expect("f")
            .flatten_all()
            .sum()
            .backward();
        let autodiff = match &leaf {
            DynTensor::R4(t) => t.grad(&grads).expect("gradient"),
            _ => unreachable!("4-d"),
        };
        let slope = prelu.derivative(&x).expect("f'");
        let autodiff = DynTensor::R4(autodiff).flatten_all();
        let diff = max_abs(DynTensor::R1(slope), DynTensor::R1(autodiff));
        assert_eq!(diff, 0.0, "f' differs from autodiff by {diff}");
        for (granularity, units) in [
            (GateGranularity::Neuron, 3 * 4 * 5),
            (GateGranularity::Channel, 3),
        ] {
            let gate = Tensor::<2>::random([2, units], Distribution::Uniform(0.0, 1.0), &device);
            let gs = DynTensor::R2(gate.clone()).to_vec().expect("gates");
            let unit_of = |i: usize| gate_at(&gs, i, granularity);
            let y = gated_activation(x.clone(), &prelu, &gate, granularity).expect("forward");
            let expected: Vec<f32> = (0..xs.len())
                .map(|i| scalar_at(i).1.value(xs[i]) * unit_of(i).1)
                .collect();
            let diff = max_abs(y, DynTensor::from_vec(expected, &DIMS, &device).expect("y"));
            assert!(diff < 1e-6, "{granularity:?} forward: {diff}");
            let mut expected_dg = vec![0.0f32; gs.len()];
            for (i, (&xv, &dyv)) in xs.iter().zip(&dys).enumerate() {
                let (unit, _) = unit_of(i);
                expected_dg[unit] += scalar_at(i).1.value(xv) * dyv;
            }
            for rule in RULES {
                let gated = Some((&gate, granularity));
                let (dx, dg) = gated_activation_backward(&x, &prelu, &dy, gated, rule, BOTH)
                    .expect("backward");
                let expected: Vec<f32> = (0..xs.len())
                    .map(|i| rule.at(dys[i] * unit_of(i).1, scalar_at(i).1.derivative(xs[i])))
                    .collect();
                let expected = DynTensor::from_vec(expected, &DIMS, &device).expect("dx");
                let case = format!("{granularity:?} {rule:?}");
                let diff = max_abs(dx.expect("dx"), expected);
                assert!(diff < 1e-6, "{case} dx: {diff}");
                let dg = DynTensor::R2(dg.expect("dg")).to_vec().expect("dg");
                let diff = dg
                    .iter()
                    .zip(&expected_dg)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff < 1e-4, "{case} dg: {diff}");
            }
        }
    }

    /// Guided backprop blocks the negative part of the channel with a negative slope, passes
    /// the positive slopes' share; DeconvNet passes every positive gradient.
    #[test]
    fn guided_blocks_a_negative_slope_deconvnet_ignores_it() {
        let device = Device::flex();
        let x = DynTensor::from_vec(
            vec![-1.0, 2.0, -1.0, 2.0, -1.0, 2.0],
            &[1, 3, 1, 2],
            &device,
        )
        .expect("x");
        let dy = DynTensor::from_vec(vec![1.0; 6], &[1, 3, 1, 2], &device).expect("dy");
        let prelu = slopes(&[3, 1, 1]);
        let dx = |rule| {
            let (dx, _) =
                gated_activation_backward(&x, &prelu, &dy, None, rule, BOTH).expect("backward");
            dx.expect("dx").to_vec().expect("dx")
        };
        assert_eq!(
            dx(ActivationRule::Gradient),
            [0.25, 1.0, -0.5, 1.0, 1.5, 1.0]
        );
        assert_eq!(dx(ActivationRule::Guided), [0.25, 1.0, 0.0, 1.0, 1.5, 1.0]);
        assert_eq!(dx(ActivationRule::Deconv), [1.0; 6]);
    }

    /// The solver's step at a per-channel PReLU equals the backward pass, then the step, and
    /// equal slopes give what the scalar PReLU (its fused flex path) gives.
    #[test]
    fn the_backward_step_equals_the_backward_pass_then_the_step() {
        let device = Device::flex();
        let step = MomentumStep {
            learning_rate: 0.1,
            momentum: 0.9,
            lambda: 0.01,
            kinks: feedbacknet_core::KinkDerivative::Exact,
        };
        let (x, dy) = (random(DIMS), random(DIMS));
        let equal = PReluSlopes::new(
            DynTensor::from_vec(vec![0.25; 3], &[3, 1, 1], &device).expect("slope"),
        );
        for (granularity, units) in [
            (GateGranularity::Neuron, 3 * 4 * 5),
            (GateGranularity::Channel, 3),
        ] {
            let g = Tensor::<2>::random([2, units], Distribution::Uniform(0.0, 1.0), &device);
            let v = Tensor::<2>::random([2, units], Distribution::Normal(0.0, 1.0), &device);
            let prelu = slopes(&[3, 1, 1]);
            let state = (g.clone(), v.clone());
            let (dx, fused) = gated_backward_step(&x, &prelu, &dy, state, granularity, &step, true)
                .expect("step");
            let gate = Some((&g, granularity));
            let rule = ActivationRule::Gradient;
            let (rdx, rdg) =
                gated_activation_backward(&x, &prelu, &dy, gate, rule, BOTH).expect("backward");
            let stepped = reference::momentum_step(&step, g.clone(), v.clone(), &rdg.expect("dg"))
                .expect("reference step");
            assert!(max_abs(dx.expect("dx"), rdx.expect("dx")) < 1e-6);
            let diff = max_abs(DynTensor::R2(fused.gate), DynTensor::R2(stepped.gate));
            assert!(diff < 1e-6, "{granularity:?}: gates differ by {diff}");
            assert!(fused.moved > 0.0, "{granularity:?}: the gates moved");
            let scalar = Activation::PRelu { slope: 0.25 };
            let (sdx, s) = gated_backward_step(
                &x,
                scalar,
                &dy,
                (g.clone(), v.clone()),
                granularity,
                &step,
                true,
            )
            .expect("scalar step");
            let (edx, e) = gated_backward_step(&x, &equal, &dy, (g, v), granularity, &step, true)
                .expect("equal slopes");
            assert!(max_abs(sdx.expect("dx"), edx.expect("dx")) < 1e-6);
            let diff = max_abs(DynTensor::R2(s.gate), DynTensor::R2(e.gate));
            assert!(
                diff < 1e-5,
                "{granularity:?}: scalar and equal slopes differ by {diff}"
            );
        }
    }
}
