//! The soft solver's momentum step on flex buffers: gates and velocity updated in place (when
//! nothing else holds them) in one pass that also finds the largest gate change.

use burn::tensor::Tensor;
use feedbacknet_core::{MomentumStep, SteppedGate};

use super::buffer::{buffer, chunked_pair, owned_pair, tensor};
use crate::nan_max;

/// One chunk of the step, in place; answers the largest gate change (NaN if any change is
/// NaN).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn step_chunk((gs, vs): (&mut [f32], &mut [f32]), ds: &[f32], step: &MomentumStep) -> f32 {
    let (mut moved, mut nan) = (0.0f32, false);
    for ((g, v), &d) in gs.iter_mut().zip(vs.iter_mut()).zip(ds) {
        let (next_g, next_v) = step.element(*g, *v, d);
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
pub(crate) fn apply(
    step: &MomentumStep,
    g: Tensor<2>,
    v: Tensor<2>,
    grad: &Tensor<2>,
) -> Result<SteppedGate, (Tensor<2>, Tensor<2>)> {
    let dims = g.dims();
    let Some(pd) = buffer(grad).filter(|_| v.dims() == dims && grad.dims() == dims) else {
        return Err((g, v));
    };
    let (mut pg, mut pv) = owned_pair(g, v)?;
    let ds: &[f32] = pd.storage();
    let moved = chunked_pair(
        pg.storage_mut::<f32>(),
        pv.storage_mut::<f32>(),
        |start, gs, vs| {
            let ds = &ds[start..start + gs.len()];
            step_chunk((gs, vs), ds, step)
        },
        nan_max,
        0.0,
    );
    Ok(SteppedGate {
        gate: tensor(pg),
        velocity: tensor(pv),
        moved,
    })
}
