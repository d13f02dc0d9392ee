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

/// One step on gates `g` with velocity `v` and score gradient `grad`.
pub(crate) fn momentum_step(
    g: &Tensor<2>,
    v: &Tensor<2>,
    grad: &Tensor<2>,
    config: &SolverConfig,
) -> Result<Step> {
    #[cfg(feature = "flex")]
    if let Some(step) = flex::momentum_step(g, v, grad, config) {
        return Ok(step);
    }
    // Ascent direction of score − λ·Σ|g|; the L1 subgradient is 0 at g = 0.
    let penalty = g
        .clone()
        .greater_elem(0.0)
        .float()
        .mul_scalar(config.lambda);
    let direction = grad.clone().sub(penalty);
    let velocity = v.clone().mul_scalar(config.momentum).add(direction);
    let gates = g
        .clone()
        .add(velocity.clone().mul_scalar(config.learning_rate))
        .clamp(0.0, 1.0);
    let change = gates.clone().sub(g.clone()).abs().max().reshape([1, 1]);
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
    use feedbacknet_core::flex::{buffer, chunked_pair, float};

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

    /// One chunk of the step; answers the largest gate change (NaN if any change is NaN).
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn step_chunk(
        (gs, vs, ds): (&[f32], &[f32], &[f32]),
        (out_g, out_v): (&mut [f32], &mut [f32]),
        (lambda, mu, lr): (f32, f32, f32),
    ) -> f32 {
        let (mut moved, mut nan) = (0.0f32, false);
        let inputs = gs.iter().zip(vs).zip(ds);
        for ((og, ov), ((&g, &v), &d)) in out_g.iter_mut().zip(out_v.iter_mut()).zip(inputs) {
            let penalty = if g > 0.0 { lambda } else { 0.0 };
            let next_v = mu * v + (d - penalty);
            let next_g = (g + lr * next_v).clamp(0.0, 1.0);
            *ov = next_v;
            *og = next_g;
            let change = (next_g - g).abs();
            moved = moved.max(change);
            nan |= change.is_nan();
        }
        if nan { f32::NAN } else { moved }
    }

    pub(super) fn momentum_step(
        g: &Tensor<2>,
        v: &Tensor<2>,
        grad: &Tensor<2>,
        config: &SolverConfig,
    ) -> Option<Step> {
        let dims = g.dims();
        if v.dims() != dims || grad.dims() != dims {
            return None;
        }
        let (pg, pv, pd) = (buffer(g)?, buffer(v)?, buffer(grad)?);
        let (gs, vs, ds): (&[f32], &[f32], &[f32]) = (pg.storage(), pv.storage(), pd.storage());
        let n = gs.len();
        let (lambda, mu, lr) = (config.lambda, config.momentum, config.learning_rate);
        let mut gates = vec![0.0f32; n];
        let mut velocity = vec![0.0f32; n];
        let moved = chunked_pair(
            &mut gates,
            &mut velocity,
            |start, out_g, out_v| {
                let end = start + out_g.len();
                let inputs = (&gs[start..end], &vs[start..end], &ds[start..end]);
                step_chunk(inputs, (out_g, out_v), (lambda, mu, lr))
            },
            nan_max,
            0.0,
        );
        Some(Step {
            gates: float(gates, dims),
            velocity: float(velocity, dims),
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
        let fast = momentum_step(&g, &v, &grad, &config).expect("fast step");
        // The same step on autodiff tensors takes the tensor-op path.
        let ad = |t: &Tensor<2>| t.clone().autodiff();
        let slow = momentum_step(&ad(&g), &ad(&v), &ad(&grad), &config).expect("tensor-op step");
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
            momentum_step(&g, &v, &nan, &config)
                .expect("step")
                .moved
                .is_nan()
        );
    }
}
