//! The backward pass of a gated activation in one pass over flex buffers: `dx` under an
//! [`ActivationRule`] and the gate gradient `∂/∂g`, each if wanted.

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, DynTensor, GateGranularity};

use super::{
    activation::per_gate,
    buffer::{
        Slots, buffer, chunked, chunked_pair, dyn_buffer, dyn_values, float, float_like, written,
    },
};
use crate::{Activation, Wanted};

pub(crate) fn gated_activation_backward(
    x: &DynTensor,
    act: Activation,
    dy: &DynTensor,
    gate: Option<(&Tensor<2>, GateGranularity)>,
    rule: ActivationRule,
    wanted: Wanted,
) -> Option<(Option<DynTensor>, Option<Tensor<2>>)> {
    let dims = x.dims();
    if dy.dims() != dims {
        return None;
    }
    let px = dyn_buffer(x)?;
    let pdy = dyn_values(dy)?;
    let n = px.layout().num_elements();
    let pg = match gate {
        Some((g, _)) => Some(buffer(g)?),
        None => None,
    };
    // Ungated: one gate of 1 per plane (not one per activation).
    let (share, gate_dims) = match gate {
        Some((g, granularity)) => (per_gate(&dims, granularity), g.dims()),
        None => (per_gate(&dims, GateGranularity::Channel), [1, n]),
    };
    let ones = if pg.is_none() {
        vec![1.0f32; n / share]
    } else {
        Vec::new()
    };
    let gs: &[f32] = pg.as_ref().map_or(&ones[..], |p| p.storage());
    let (xs, dys): (&[f32], &[f32]) = (px.storage(), pdy.as_slice());
    if gs.len() * share != n || dys.len() != n {
        return None;
    }
    let dx_len = if wanted.input { n } else { 0 };
    let dg_len = if wanted.gate && gate.is_some() {
        gs.len()
    } else {
        0
    };
    let io = Backward { xs, dys, gs, share };
    // ReLU and Clip: the rule on the 0/1 active mask (their arithmetic as it always was); the
    // smooth activations: the rule on the local derivative `f'(x)`.
    macro_rules! run {
        ($dx:expr, $dg:expr, $rule:expr, $smooth_rule:expr) => {
            match act {
                Activation::Relu => {
                    io.run($dx, $dg, |v| v.max(0.0), move |x, dz| $rule(dz, x > 0.0))
                }
                Activation::Clip { min, max } => io.run(
                    $dx,
                    $dg,
                    move |v| v.clamp(min, max),
                    move |x, dz| $rule(dz, x > min && x < max),
                ),
                smooth => io.run(
                    $dx,
                    $dg,
                    move |v| smooth.value(v),
                    move |x, dz| $smooth_rule(dz, smooth.derivative(x)),
                ),
            }
        };
    }
    let mut dg = Vec::new();
    // SAFETY: `Backward::run` writes every element of a non-empty `dx` and `dg` (`gs`
    // covers all `n` activations, `dg` has one value per gate).
    let dx = unsafe {
        written(dx_len, |dx| {
            dg = written(dg_len, |dg| match rule {
                ActivationRule::Gradient => run!(
                    dx,
                    dg,
                    |dz: f32, on: bool| if on { dz } else { 0.0 },
                    |dz: f32, slope: f32| ActivationRule::Gradient.at(dz, slope)
                ),
                ActivationRule::Guided => run!(
                    dx,
                    dg,
                    |dz: f32, on: bool| if on { dz.max(0.0) } else { 0.0 },
                    |dz: f32, slope: f32| ActivationRule::Guided.at(dz, slope)
                ),
                ActivationRule::Deconv => {
                    run!(dx, dg, |dz: f32, _: bool| dz.max(0.0), |dz: f32, _: f32| dz
                        .max(0.0))
                }
            });
        })
    };
    let gate_grad = (!dg.is_empty()).then(|| float(dg, gate_dims));
    let dx = wanted.input.then(|| float_like(x, dx));
    Some((dx, gate_grad))
}

/// The inputs of one gated activation backward pass.
struct Backward<'a> {
    xs: &'a [f32],
    dys: &'a [f32],
    gs: &'a [f32],
    share: usize,
}

impl Backward<'_> {
    /// `dx = back(x, dy·g)` (the rule at `x`) and `dg = Σ dy·f(x)` per gate, each unless empty; every
    /// element of a non-empty output is written.
    fn run(
        &self,
        dx: &mut Slots,
        dg: &mut Slots,
        f: impl Fn(f32) -> f32 + Sync,
        back: impl Fn(f32, f32) -> f32 + Sync,
    ) {
        let share = self.share;
        if share == 1 && !dg.is_empty() && !dx.is_empty() {
            // One gate per activation: both outputs in one pass.
            chunked_pair(
                dx,
                dg,
                |start, dx, dg| {
                    let end = start + dx.len();
                    let (xs, dys, gs) = self.range(start..end);
                    pair_chunk(dx, dg, xs, dys, gs, &f, &back);
                },
                |(), ()| (),
                (),
            );
            return;
        }
        if !dx.is_empty() {
            chunked(dx, share, |start, dx| {
                let (xs, dys, gs) = self.range(start..start + dx.len());
                dx_chunk(dx, xs, dys, gs, share, &back);
            });
        }
        if dg.is_empty() {
            return;
        }
        chunked(dg, 1, |start, dg| {
            let (xs, dys, _) = self.range(start * share..(start + dg.len()) * share);
            gate_grad_chunk(dg, xs, dys, share, &f);
        });
    }

    /// The activations, output gradients and gates of the activations `range`.
    fn range(&self, range: std::ops::Range<usize>) -> (&[f32], &[f32], &[f32]) {
        let gates = range.start / self.share..range.end.div_ceil(self.share);
        (&self.xs[range.clone()], &self.dys[range], &self.gs[gates])
    }
}

/// `dx = back(x, dy·g)` and `dg = dy·f(x)`, one gate per activation.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn pair_chunk<F, B>(
    dx: &mut Slots,
    dg: &mut Slots,
    xs: &[f32],
    dys: &[f32],
    gs: &[f32],
    f: &F,
    back: &B,
) where
    F: Fn(f32) -> f32,
    B: Fn(f32, f32) -> f32,
{
    let inputs = xs.iter().zip(dys);
    let outputs = dx.iter_mut().zip(dg.iter_mut());
    for (((d, o), (&x, &dy)), &g) in outputs.zip(inputs).zip(gs) {
        d.write(back(x, dy * g));
        o.write(dy * f(x));
    }
}

/// `dx = back(x, dy·g)`, each gate covering `share` activations.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn dx_chunk<B: Fn(f32, f32) -> f32>(
    dx: &mut Slots,
    xs: &[f32],
    dys: &[f32],
    gs: &[f32],
    share: usize,
    back: &B,
) {
    if share == 1 {
        for (((d, &x), &dy), &g) in dx.iter_mut().zip(xs).zip(dys).zip(gs) {
            d.write(back(x, dy * g));
        }
        return;
    }
    let blocks = dx
        .chunks_mut(share)
        .zip(xs.chunks(share))
        .zip(dys.chunks(share));
    for (((dx, xs), dys), &g) in blocks.zip(gs) {
        for ((d, &x), &dy) in dx.iter_mut().zip(xs).zip(dys) {
            d.write(back(x, dy * g));
        }
    }
}

/// `dg = Σ dy·f(x)` over the `share` activations of each gate.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn gate_grad_chunk<F: Fn(f32) -> f32>(
    dg: &mut Slots,
    xs: &[f32],
    dys: &[f32],
    share: usize,
    f: &F,
) {
    if share == 1 {
        for ((o, &x), &dy) in dg.iter_mut().zip(xs).zip(dys) {
            o.write(dy * f(x));
        }
        return;
    }
    for ((o, xs), dys) in dg.iter_mut().zip(xs.chunks(share)).zip(dys.chunks(share)) {
        o.write(xs.iter().zip(dys).map(|(&x, &dy)| dy * f(x)).sum());
    }
}
