//! One projected momentum step of the soft solver on one gate tensor:
//!
//! `v ← μ·v + (∂score/∂g − λ·[g > 0])`, `g ← clamp(g + lr·v, 0, 1)`,
//!
//! also reporting the largest gate change. On the flex CPU backend the whole step is one pass
//! over the gates; elsewhere it runs as Burn tensor ops (tests compare the two).

use burn::tensor::Tensor;

use crate::{Result, SolverConfig, score::read};

/// The gates and velocity after one step, and the largest `|Δg|` (NaN if any value is NaN).
pub(crate) struct Step {
    pub gates: Tensor<2>,
    pub velocity: Tensor<2>,
    pub moved: f32,
}

/// One step on gates `g` with velocity `v` and score gradient `grad` (on flex, `g` and `v` are
/// updated in place when nothing else holds them).
pub(crate) fn momentum_step(
    g: Tensor<2>,
    v: Tensor<2>,
    grad: &Tensor<2>,
    config: &SolverConfig,
) -> Result<Step> {
    #[cfg(feature = "flex")]
    let (g, v) = match flex::momentum_step(g, v, grad, config) {
        Ok(step) => return Ok(step),
        Err(unchanged) => unchanged,
    };
    // Ascent direction of score − λ·Σ|g|; the L1 subgradient is 0 at g = 0.
    let penalty = g
        .clone()
        .greater_elem(0.0)
        .float()
        .mul_scalar(config.lambda);
    let direction = grad.clone().sub(penalty);
    let velocity = v.mul_scalar(config.momentum).add(direction);
    let gates = g
        .clone()
        .add(velocity.clone().mul_scalar(config.learning_rate))
        .clamp(0.0, 1.0);
    let change = gates.clone().sub(g).abs().max().reshape([1, 1]);
    let moved = read(change)?[0];
    Ok(Step {
        gates,
        velocity,
        moved,
    })
}

#[cfg(feature = "flex")]
mod flex {
    use burn::tensor::Tensor;
    use feedbacknet_core::flex::{buffer, chunked_pair, owned_buffer, tensor};

    use super::Step;
    use crate::SolverConfig;

    /// `max` that keeps a NaN once seen.
    fn nan_max(a: f32, b: f32) -> f32 {
        if a.is_nan() || b.is_nan() {
            f32::NAN
        } else {
            a.max(b)
        }
    }

    /// One chunk of the step, in place; answers the largest gate change (NaN if any change is
    /// NaN).
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn step_chunk(
        (gs, vs): (&mut [f32], &mut [f32]),
        ds: &[f32],
        (lambda, mu, lr): (f32, f32, f32),
    ) -> f32 {
        let (mut moved, mut nan) = (0.0f32, false);
        for ((g, v), &d) in gs.iter_mut().zip(vs.iter_mut()).zip(ds) {
            let penalty = if *g > 0.0 { lambda } else { 0.0 };
            let next_v = mu * *v + (d - penalty);
            let next_g = (*g + lr * next_v).clamp(0.0, 1.0);
            let change = (next_g - *g).abs();
            *v = next_v;
            *g = next_g;
            moved = moved.max(change);
            nan |= change.is_nan();
        }
        if nan { f32::NAN } else { moved }
    }

    /// The step on flex buffers; `g` and `v` back unchanged if any of the three is not a plain
    /// flex tensor or the shapes differ.
    #[allow(clippy::result_large_err)] // hands the caller's own tensors back, once per call
    pub(super) fn momentum_step(
        g: Tensor<2>,
        v: Tensor<2>,
        grad: &Tensor<2>,
        config: &SolverConfig,
    ) -> Result<Step, (Tensor<2>, Tensor<2>)> {
        let dims = g.dims();
        let Some(pd) = buffer(grad).filter(|_| v.dims() == dims && grad.dims() == dims) else {
            return Err((g, v));
        };
        let mut pg = match owned_buffer(g) {
            Ok(p) => p,
            Err(g) => return Err((g, v)),
        };
        let mut pv = match owned_buffer(v) {
            Ok(p) => p,
            Err(v) => return Err((tensor(pg), v)),
        };
        let ds: &[f32] = pd.storage();
        let params = (config.lambda, config.momentum, config.learning_rate);
        let moved = chunked_pair(
            pg.storage_mut::<f32>(),
            pv.storage_mut::<f32>(),
            |start, gs, vs| {
                let ds = &ds[start..start + gs.len()];
                step_chunk((gs, vs), ds, params)
            },
            nan_max,
            0.0,
        );
        Ok(Step {
            gates: tensor(pg),
            velocity: tensor(pv),
            moved,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;

    #[test]
    fn the_fused_step_matches_the_tensor_ops() {
        let device = Device::flex();
        let config = SolverConfig::default();
        let dims = [2, 70_000];
        let g =
            Tensor::<2>::random(dims, Distribution::Uniform(-0.2, 1.2), &device).clamp(0.0, 1.0);
        let v = Tensor::<2>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let grad = Tensor::<2>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        // `g` and `v` are shared here (kept for the checks below): the step copies them.
        let fast = momentum_step(g.clone(), v.clone(), &grad, &config).expect("fast step");
        // The same step on autodiff tensors takes the tensor-op path.
        let ad = |t: &Tensor<2>| t.clone().autodiff();
        let slow = momentum_step(ad(&g), ad(&v), &ad(&grad), &config).expect("tensor-op step");
        // Unshared, the step writes into their own buffers, with the same result.
        let owned = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), &device);
        let in_place = momentum_step(owned(&g), owned(&v), &grad, &config).expect("in-place step");
        let same = |a: &Tensor<2>, b: &Tensor<2>| -> bool {
            a.clone().equal(b.clone()).all().into_scalar()
        };
        assert!(same(&in_place.gates, &fast.gates) && same(&in_place.velocity, &fast.velocity));
        assert_eq!(in_place.moved, fast.moved);
        assert!(
            !same(&fast.gates, &g),
            "the step moved the gates (and left the shared input as it was)"
        );
        let diff = |a: Tensor<2>, b: Tensor<2>| -> f32 {
            a.sub(b.without_autodiff()).abs().max().into_scalar()
        };
        assert!(diff(fast.gates, slow.gates) < 1e-6);
        assert!(diff(fast.velocity, slow.velocity) < 1e-6);
        assert!((fast.moved - slow.moved).abs() < 1e-6);
        assert!(
            fast.moved > 0.0,
            "a step with random gradients moves the gates"
        );
        // A NaN gradient shows in the reported change.
        let nan = grad.clone().mul_scalar(f32::NAN);
        assert!(
            momentum_step(g, v, &nan, &config)
                .expect("step")
                .moved
                .is_nan()
        );
    }
}
