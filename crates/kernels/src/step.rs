//! The soft solver's momentum step ([`MomentumStep`]) on whole gate tensors: in place in one
//! pass on flex, by [`MomentumStep::apply`]'s tensor ops elsewhere.

use burn::tensor::Tensor;
use feedbacknet_core::{MomentumStep, Result, SteppedGate};

use crate::{backend::Fast, fast::FastPath, reference};

/// The step on gates `g` with velocity `v` and score gradient `grad` (all of one shape). On
/// flex, `g` and `v` are updated in place when nothing else holds them.
pub fn momentum_step(
    step: &MomentumStep,
    g: Tensor<2>,
    v: Tensor<2>,
    grad: &Tensor<2>,
) -> Result<SteppedGate> {
    match Fast::momentum_step(step, g, v, grad) {
        Ok(stepped) => Ok(stepped),
        Err((g, v)) => reference::momentum_step(step, g, v, grad),
    }
}

/// `max` that keeps a NaN once seen (how the largest gate change of several steps combines).
///
/// ```
/// use feedbacknet_kernels::nan_max;
///
/// assert_eq!(nan_max(1.0, 2.0), 2.0);
/// assert!(nan_max(f32::NAN, 2.0).is_nan());
/// ```
pub fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

#[cfg(all(test, feature = "flex"))] // without flex there is no fast path to compare
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;

    #[test]
    fn the_fused_step_matches_the_tensor_ops() {
        let device = Device::flex();
        let step = MomentumStep {
            learning_rate: 0.1,
            momentum: 0.9,
            lambda: 0.01,
            kinks: feedbacknet_core::KinkDerivative::Exact,
        };
        let dims = [2, 70_000];
        let g =
            Tensor::<2>::random(dims, Distribution::Uniform(-0.2, 1.2), &device).clamp(0.0, 1.0);
        let v = Tensor::<2>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let grad = Tensor::<2>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        // `g` and `v` are shared here (kept for the checks below): the step copies them.
        let fast = momentum_step(&step, g.clone(), v.clone(), &grad).expect("fast step");
        let slow =
            reference::momentum_step(&step, g.clone(), v.clone(), &grad).expect("tensor-op step");
        // The same step on autodiff tensors takes the reference path too.
        let ad = |t: &Tensor<2>| t.clone().autodiff();
        let on_autodiff = momentum_step(&step, ad(&g), ad(&v), &ad(&grad)).expect("autodiff step");
        // Unshared, the step writes into their own buffers, with the same result.
        let owned = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), &device);
        let in_place = momentum_step(&step, owned(&g), owned(&v), &grad).expect("in-place step");
        let same = |a: &Tensor<2>, b: &Tensor<2>| -> bool {
            a.clone().equal(b.clone()).all().into_scalar()
        };
        assert!(same(&in_place.gate, &fast.gate) && same(&in_place.velocity, &fast.velocity));
        assert_eq!(in_place.moved, fast.moved);
        assert!(
            !same(&fast.gate, &g),
            "the step moved the gates (and left the shared input as it was)"
        );
        let diff = |a: Tensor<2>, b: Tensor<2>| -> f32 {
            a.sub(b.without_autodiff()).abs().max().into_scalar()
        };
        assert!(diff(fast.gate.clone(), slow.gate) < 1e-6);
        assert!(diff(fast.velocity.clone(), slow.velocity) < 1e-6);
        assert!((fast.moved - slow.moved).abs() < 1e-6);
        assert!(diff(fast.gate, on_autodiff.gate) < 1e-6);
        assert!(diff(fast.velocity, on_autodiff.velocity) < 1e-6);
        assert!(
            fast.moved > 0.0,
            "a step with random gradients moves the gates"
        );
        // A NaN gradient shows in the reported change.
        let nan = grad.clone().mul_scalar(f32::NAN);
        assert!(
            momentum_step(&step, g, v, &nan)
                .expect("step")
                .moved
                .is_nan()
        );
    }
}
