//! The soft solver's step fused into the backward pass of a gated activation, on flex buffers:
//! one pass reads `x`, `dy`, the gates and their velocity, and writes `dx`, the new gates and
//! the new velocity. The gate gradient `dy · act(x)` is used where it is computed and never
//! stored: 7 memory streams per gate instead of 10 (backward, then step).

use std::mem::MaybeUninit;

use burn::tensor::Tensor;
use feedbacknet_core::{DynTensor, MomentumStep, SteppedGate};
use rayon::prelude::*;

use super::buffer::{
    PARALLEL_MIN, dyn_buffer, dyn_values, float_like, owned_pair, tensor, written,
};
use crate::{
    Activation,
    activation::{kink_ramp, kink_ramp_apart, ramps_apart},
    nan_max,
};

/// `dx` (if `want_input`) and the stepped gates of `y = act(x) · g`, one gate per activation,
/// under the true-gradient rule; `g` and `v` back unchanged if a tensor is not a plain flex
/// tensor or the shapes do not fit.
#[allow(clippy::result_large_err)] // hands the caller's own tensors back, once per call
pub(crate) fn backward_step(
    x: &DynTensor,
    act: Activation,
    dy: &DynTensor,
    (g, v): (Tensor<2>, Tensor<2>),
    step: &MomentumStep,
    want_input: bool,
) -> Result<(Option<DynTensor>, SteppedGate), (Tensor<2>, Tensor<2>)> {
    let n = x.numel();
    let fits =
        dy.dims() == x.dims() && g.dims() == v.dims() && g.dims().iter().product::<usize>() == n;
    // `dy` in place: a fire module's concatenation hands out channel ranges of its gradient.
    let (Some(px), Some(pdy)) = (dyn_buffer(x).filter(|_| fits), dyn_values(dy)) else {
        return Err((g, v));
    };
    let (mut pg, mut pv) = owned_pair(g, v)?;
    let (xs, dys): (&[f32], &[f32]) = (px.storage(), pdy.as_slice());
    let (gs, vs) = (pg.storage_mut::<f32>(), pv.storage_mut::<f32>());
    let mut moved = 0.0;
    let io = Io { xs, dys, step };
    // SAFETY: `run` writes every element of a non-empty `dx`.
    let dx = unsafe {
        written(if want_input { n } else { 0 }, |dx| {
            moved = match act {
                Activation::Relu => io.run(
                    dx,
                    gs,
                    vs,
                    |x| x.max(0.0),
                    |x, dz| if x > 0.0 { dz } else { 0.0 },
                ),
                Activation::Clip { min, max } => io.run(
                    dx,
                    gs,
                    vs,
                    move |x| x.clamp(min, max),
                    move |x, dz| if x > min && x < max { dz } else { 0.0 },
                ),
                // The solver's smooth slope at the kinks, in arms of its own: through the generic
                // one below, the `match` per element keeps the loop from vectorizing. ReLU and
                // ReLU6 take one `σ` per element (their ramps lie apart), the rest two.
                Activation::SmoothClip { max, beta } if ramps_apart(max, beta) => io.run(
                    dx,
                    gs,
                    vs,
                    move |x| x.clamp(0.0, max),
                    move |x, dz| dz * kink_ramp_apart(x, max, beta),
                ),
                Activation::SmoothClip { max, beta } => io.run(
                    dx,
                    gs,
                    vs,
                    move |x| x.clamp(0.0, max),
                    move |x, dz| dz * kink_ramp(x, max, beta),
                ),
                // The true gradient through the local derivative `f'(x)`.
                smooth => io.run(
                    dx,
                    gs,
                    vs,
                    move |x| smooth.value(x),
                    move |x, dz| dz * smooth.derivative(x),
                ),
            };
        })
    };
    let dx = want_input.then(|| float_like(x, dx));
    Ok((
        dx,
        SteppedGate {
            gate: tensor(pg),
            velocity: tensor(pv),
            moved,
        },
    ))
}

/// The read-only inputs of one fused pass.
struct Io<'a> {
    xs: &'a [f32],
    dys: &'a [f32],
    step: &'a MomentumStep,
}

impl Io<'_> {
    /// The fused pass over every activation, in parallel chunks when large; the largest gate
    /// change (NaN if any).
    fn run(
        &self,
        dx: &mut [MaybeUninit<f32>],
        gs: &mut [f32],
        vs: &mut [f32],
        f: impl Fn(f32) -> f32 + Sync,
        back: impl Fn(f32, f32) -> f32 + Sync,
    ) -> f32 {
        let n = gs.len();
        let threads = rayon::current_num_threads().max(1);
        let chunk = if n < PARALLEL_MIN || threads == 1 {
            n.max(1)
        } else {
            n.div_ceil(threads * 2)
        };
        let part = |(c, (gs, vs)): (usize, (&mut [f32], &mut [f32])),
                    dx: &mut [MaybeUninit<f32>]| {
            let range = c * chunk..c * chunk + gs.len();
            let (xs, dys) = (&self.xs[range.clone()], &self.dys[range]);
            step_chunk(dx, (gs, vs), (xs, dys), self.step, &f, &back)
        };
        let pairs = gs
            .par_chunks_mut(chunk)
            .zip(vs.par_chunks_mut(chunk))
            .enumerate();
        if dx.is_empty() {
            pairs.map(|p| part(p, &mut [])).reduce(|| 0.0, nan_max)
        } else {
            pairs
                .zip(dx.par_chunks_mut(chunk))
                .map(|(p, dx)| part(p, dx))
                .reduce(|| 0.0, nan_max)
        }
    }
}

/// Lanes of the chunk loops: each lane keeps its own largest change, so that no reduction
/// crosses lanes inside the loop and the loop vectorizes (a running `max` over one scalar does
/// not: LLVM keeps float reductions in order).
const LANES: usize = 16;

/// Per lane, the largest gate change and the sum of the changes (NaN exactly when a change
/// was NaN: every change is `≥ 0`, so no `∞ − ∞` arises).
struct Changes {
    max: [f32; LANES],
    sum: [f32; LANES],
}

impl Changes {
    fn new() -> Self {
        Self {
            max: [0.0; LANES],
            sum: [0.0; LANES],
        }
    }

    #[inline(always)]
    fn add(&mut self, lane: usize, change: f32) {
        let m = &mut self.max[lane];
        *m = if change > *m { change } else { *m };
        self.sum[lane] += change;
    }

    /// The largest change, or NaN if any change was NaN.
    fn total(&self) -> f32 {
        if self.sum.iter().any(|s| s.is_nan()) {
            f32::NAN
        } else {
            self.max.iter().fold(0.0, |a, &b| a.max(b))
        }
    }
}

/// One chunk: `dx = back(x, dy · g)` (`dy · g · f'(x)`, unless `dx` is empty), then the step
/// with the gate gradient `dy · f(x)`; the largest gate change (NaN if any).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn step_chunk<F: Fn(f32) -> f32, B: Fn(f32, f32) -> f32>(
    dx: &mut [MaybeUninit<f32>],
    (gs, vs): (&mut [f32], &mut [f32]),
    (xs, dys): (&[f32], &[f32]),
    step: &MomentumStep,
    f: &F,
    back: &B,
) -> f32 {
    let mut changes = Changes::new();
    // The gate's step; its change.
    let update = |g: &mut f32, v: &mut f32, x: f32, dy: f32| {
        let (next_g, next_v) = step.element(*g, *v, dy * f(x));
        let change = (next_g - *g).abs();
        *g = next_g;
        *v = next_v;
        change
    };
    let (g_blocks, g_tail) = gs.as_chunks_mut::<LANES>();
    let (v_blocks, v_tail) = vs.as_chunks_mut::<LANES>();
    let (x_blocks, x_tail) = xs.as_chunks::<LANES>();
    let (y_blocks, y_tail) = dys.as_chunks::<LANES>();
    let blocks = g_blocks.iter_mut().zip(v_blocks.iter_mut());
    let blocks = blocks.zip(x_blocks.iter().zip(y_blocks));
    let tail = g_tail.iter_mut().zip(v_tail.iter_mut());
    let tail = tail.zip(x_tail.iter().zip(y_tail));
    if dx.is_empty() {
        for ((g, v), (x, dy)) in blocks {
            for i in 0..LANES {
                changes.add(i, update(&mut g[i], &mut v[i], x[i], dy[i]));
            }
        }
        for ((g, v), (&x, &dy)) in tail {
            changes.add(0, update(g, v, x, dy));
        }
    } else {
        let (d_blocks, d_tail) = dx.as_chunks_mut::<LANES>();
        for (((g, v), (x, dy)), d) in blocks.zip(d_blocks) {
            for i in 0..LANES {
                d[i].write(back(x[i], dy[i] * g[i]));
                changes.add(i, update(&mut g[i], &mut v[i], x[i], dy[i]));
            }
        }
        for (((g, v), (&x, &dy)), d) in tail.zip(d_tail) {
            d.write(back(x, dy * *g));
            changes.add(0, update(g, v, x, dy));
        }
    }
    changes.total()
}
