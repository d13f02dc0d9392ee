//! Activations, gated or not, in one pass over flex buffers: `act(x)` and `act(x) · g`.

use burn::tensor::Tensor;
use feedbacknet_core::{DynTensor, GateGranularity};

use super::buffer::{Slots, buffer, chunked, dyn_buffer, float_like, written};
use crate::Activation;

/// Consecutive activations that share one gate value.
pub(super) fn per_gate(dims: &[usize], granularity: GateGranularity) -> usize {
    match granularity {
        GateGranularity::Neuron => 1,
        GateGranularity::Channel => dims[2..].iter().product::<usize>().max(1),
    }
}

pub(crate) fn gated_activation(
    x: &DynTensor,
    act: Activation,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Option<DynTensor> {
    let dims = x.dims();
    let px = dyn_buffer(x)?;
    let pg = buffer(gate)?;
    let n = px.layout().num_elements();
    let (xs, gs): (&[f32], &[f32]) = (px.storage(), pg.storage());
    let share = per_gate(&dims, granularity);
    if gs.len() * share != n {
        return None;
    }
    // SAFETY: `gate_forward` writes every element (`gs` covers all `n` activations).
    let out = unsafe {
        written(n, |out| match act {
            Activation::Relu => gate_forward(out, xs, gs, share, |v| v.max(0.0)),
            Activation::Clip { min, max } => {
                gate_forward(out, xs, gs, share, move |v| v.clamp(min, max))
            }
            smooth => gate_forward(out, xs, gs, share, move |v| smooth.value(v)),
        })
    };
    Some(float_like(x, out))
}

pub(crate) fn activation(x: &DynTensor, act: Activation) -> Option<DynTensor> {
    let px = dyn_buffer(x)?;
    let xs: &[f32] = px.storage();
    // SAFETY: `map_into` writes every element.
    let out = unsafe {
        written(xs.len(), |out| match act {
            Activation::Relu => map_into(out, xs, |v| v.max(0.0)),
            Activation::Clip { min, max } => map_into(out, xs, move |v| v.clamp(min, max)),
            // The others through their scalar form: one `exp`, `tanh` or `erf` per element,
            // which outweighs the `match` inside it.
            other => map_into(out, xs, move |v| other.value(v)),
        })
    };
    Some(float_like(x, out))
}

/// `out = f(xs)`, element-wise.
fn map_into(out: &mut Slots, xs: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    chunked(out, 1, |start, out| {
        map_chunk(out, &xs[start..start + out.len()], &f)
    });
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn map_chunk<F: Fn(f32) -> f32>(out: &mut Slots, xs: &[f32], f: &F) {
    for (o, &x) in out.iter_mut().zip(xs) {
        o.write(f(x));
    }
}

/// `out = f(x) · g`, each gate value covering `share` consecutive activations.
fn gate_forward(
    out: &mut Slots,
    xs: &[f32],
    gs: &[f32],
    share: usize,
    f: impl Fn(f32) -> f32 + Sync,
) {
    chunked(out, share, |start, out| {
        let xs = &xs[start..start + out.len()];
        let gs = &gs[start / share..(start + out.len()).div_ceil(share)];
        gate_chunk(out, xs, gs, share, &f);
    });
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn gate_chunk<F: Fn(f32) -> f32>(out: &mut Slots, xs: &[f32], gs: &[f32], share: usize, f: &F) {
    if share == 1 {
        for ((o, &x), &g) in out.iter_mut().zip(xs).zip(gs) {
            o.write(f(x) * g);
        }
    } else {
        for ((o, x), &g) in out.chunks_mut(share).zip(xs.chunks(share)).zip(gs) {
            for (o, &x) in o.iter_mut().zip(x) {
                o.write(f(x) * g);
            }
        }
    }
}
