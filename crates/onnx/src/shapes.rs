//! The shape of every value of a compiled program for one image, from the ops' shape rules:
//! what the probe needs (the number of classes, Grad-CAM's layer, the classifier head) without
//! running the network.
//!
//! Why: the probe's forward pass was most of a convolutional net's load (ResNet-50: about
//! 0.1 s of 0.19 s, against 0.11 s for a whole onnxruntime session; `scripts/load_speed.sh`).
//! The rules cover the ops of convolutional classifiers (convolutions, pooling, element-wise
//! arithmetic, concatenation, flattening, reshapes, linear layers, matrix products,
//! attention); a program with any other op (slices, run-time shapes) returns `None` here and
//! is probed by a forward pass in which the heavy steps (convolutions, matrix products,
//! attention) do not run: each writes zeros of its rule's shape ([`stand_in`]), so only the
//! cheap steps and the shape arithmetic run (unsimplified ViT-B/16: 0.66 s to 0.3 s). The
//! shapes are the ops' own: pooling uses the kernels' window count, a reshape
//! the interpreter's rule. `onnx-ir`'s static shapes are not used: they get convolutions with
//! `SAME_UPPER` padding one pixel short (MobileNet v2: 111 for 112). Every shared net and
//! committed fixture that the rules cover gets exactly the forward pass's shapes (tested
//! below). A graph inferred this way runs for the first time in its first explanation.

use burn::tensor::ops::ConvOptions;

use crate::{
    ops::{CastTo, Op},
    program::Program,
};

/// The shape of each value slot (`None` for a slot nobody writes).
pub(crate) type Shapes = Vec<Option<Vec<usize>>>;

/// Every value's shape for a `[1, 3, height, width]` input, or `None` if a step's op has no
/// rule here or its inputs do not fit it.
pub(crate) fn infer(program: &Program, [height, width]: [usize; 2]) -> Option<Shapes> {
    let mut shapes: Shapes = vec![None; program.slots];
    *shapes.get_mut(program.input)? = Some(vec![1, 3, height, width]);
    for (slot, tensor) in &program.constants {
        *shapes.get_mut(*slot)? = Some(tensor.dims());
    }
    for step in &program.steps {
        let inputs: Option<Vec<&[usize]>> = (step.inputs.iter())
            .map(|&s| shapes.get(s).and_then(Option::as_deref))
            .collect();
        let out = rule(&step.op, &inputs?)?;
        *shapes.get_mut(step.output)? = Some(out);
    }
    Some(shapes)
}

/// The output shape of `op` on inputs of shapes `inputs`.
fn rule(op: &Op, inputs: &[&[usize]]) -> Option<Vec<usize>> {
    let x = *inputs.first()?;
    match op {
        Op::Conv2d {
            weight, options, ..
        } => conv(x, &weight.dims(), options),
        Op::MaxPool2d(o) => pool(
            x,
            o.kernel_size,
            o.stride,
            o.padding,
            o.dilation,
            o.ceil_mode,
        ),
        Op::AvgPool2d { options: o } => {
            pool(x, o.kernel_size, o.stride, o.padding, [1, 1], o.ceil_mode)
        }
        Op::GlobalAveragePool => match x {
            [n, c, _, _] => Some(vec![*n, *c, 1, 1]),
            _ => None,
        },
        Op::Activation(_)
        | Op::PRelu(_)
        | Op::Identity
        | Op::ChannelAffine { .. }
        | Op::Softmax { .. }
        | Op::Lrn { .. }
        | Op::Unary(_)
        | Op::PowScalar(_)
        | Op::Cast(CastTo::Float) => Some(x.to_vec()),
        Op::Binary(_) => broadcast(inputs),
        Op::Concat { axis } => concat(inputs, *axis),
        Op::Linear { weight, .. } => {
            let [k, n] = weight.dims();
            let (&last, lead) = x.split_last()?;
            (last == k).then(|| lead.iter().copied().chain([n]).collect())
        }
        Op::Flatten { axis } => {
            let (outer, inner) = x.split_at((*axis).min(x.len()));
            Some(vec![outer.iter().product(), inner.iter().product()])
        }
        Op::Reshape { shape } => crate::ops::reshaped(x, shape, true).ok(),
        Op::Pad { pads, .. } if pads.len() == x.len() => {
            Some(x.iter().zip(pads).map(|(&d, &(b, a))| d + b + a).collect())
        }
        Op::Transpose { perm } if perm.len() == x.len() => {
            perm.iter().map(|&p| x.get(p).copied()).collect()
        }
        Op::Gemm {
            trans_a, trans_b, ..
        } => match (x, *inputs.get(1)?) {
            (&[a0, a1], &[b0, b1]) => {
                let (m, k) = if *trans_a { (a1, a0) } else { (a0, a1) };
                let (k2, n) = if *trans_b { (b1, b0) } else { (b0, b1) };
                (k == k2).then(|| vec![m, n])
            }
            _ => None,
        },
        Op::MatMul => matmul(x, inputs.get(1)?),
        Op::Attention {
            q_heads, kv_heads, ..
        } => attention(x, inputs.get(2)?, *q_heads, kv_heads.or(*q_heads)),
        _ => None,
    }
}

/// The output shape of a step whose cost is its arithmetic (convolutions, matrix products,
/// attention), when its rule knows it: a shape-only forward pass writes zeros of that shape
/// instead of running the step (see `Executor::forward_shapes`).
pub(crate) fn stand_in(op: &Op, inputs: &[&[usize]]) -> Option<Vec<usize>> {
    let heavy = matches!(
        op,
        Op::Conv2d { .. } | Op::Linear { .. } | Op::Gemm { .. } | Op::MatMul | Op::Attention { .. }
    );
    heavy.then(|| rule(op, inputs)).flatten()
}

/// NumPy's `matmul` of `[.., m, k]` by `[.., k, n]` (both of rank 2 or more), the leading axes
/// broadcast.
fn matmul(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let ((&k, a_rest), (&n, b_rest)) = (a.split_last()?, b.split_last()?);
    let ((&m, a_lead), (&k2, b_lead)) = (a_rest.split_last()?, b_rest.split_last()?);
    if k != k2 {
        return None;
    }
    let mut out = broadcast(&[a_lead, b_lead])?;
    out.extend([m, n]);
    Some(out)
}

/// `Attention` of queries `q` and values `v`: `[b, heads, s, size]` for 4-D inputs, `[b, s,
/// heads · value size]` for 3-D ones with the head counts given.
fn attention(
    q: &[usize],
    v: &[usize],
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
) -> Option<Vec<usize>> {
    match (q, v) {
        (&[b, hq, s, _], &[_, _, _, dv]) => Some(vec![b, hq, s, dv]),
        (&[b, s, _], &[_, _, width]) => {
            let (hq, hk) = (q_heads?, kv_heads?);
            let size = width.checked_div(hk)?;
            Some(vec![b, s, hq * size])
        }
        _ => None,
    }
}

/// `[N, C, H, W]` convolved by a `[O, C / groups, kh, kw]` weight.
fn conv(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Option<Vec<usize>> {
    let (&[n, _, h, w], &[o, _, kh, kw]) = (x, weight) else {
        return None;
    };
    let [(top, bottom), (left, right)] = options.padding;
    let [dh, dw] = options.dilation;
    let [sh, sw] = options.stride;
    let rows = windows(h + top + bottom, kh, dh, sh)?;
    let cols = windows(w + left + right, kw, dw, sw)?;
    Some(vec![n, o, rows, cols])
}

/// The windows of `kernel` taps `dilation` apart, every `stride`, that fit in `padded`.
fn windows(padded: usize, kernel: usize, dilation: usize, stride: usize) -> Option<usize> {
    let span = dilation.checked_mul(kernel.checked_sub(1)?)? + 1;
    Some(padded.checked_sub(span)?.checked_div(stride)? + 1)
}

/// `[N, C, H, W]` pooled (ONNX's rule: a window of the ceiling mode may not start in the
/// trailing padding).
fn pool(
    x: &[usize],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [(top, bottom), (left, right)]: [(usize, usize); 2],
    [dh, dw]: [usize; 2],
    ceil: bool,
) -> Option<Vec<usize>> {
    let &[n, c, h, w] = x else {
        return None;
    };
    let side = |size: usize, (before, after): (usize, usize), k: usize, d: usize, s: usize| {
        let padded = size + before + after;
        if !ceil {
            return windows(padded, k, d, s);
        }
        let room = padded.checked_sub(d.checked_mul(k.checked_sub(1)?)? + 1)?;
        let out = room.checked_div(s)? + usize::from(room % s != 0) + 1;
        Some(if (out - 1) * s >= size + before {
            out - 1
        } else {
            out
        })
    };
    let rows = side(h, (top, bottom), kh, dh, sh)?;
    let cols = side(w, (left, right), kw, dw, sw)?;
    Some(vec![n, c, rows, cols])
}

/// NumPy broadcasting of every input's shape.
fn broadcast(inputs: &[&[usize]]) -> Option<Vec<usize>> {
    let rank = inputs.iter().map(|s| s.len()).max()?;
    (0..rank)
        .map(|i| {
            let mut dims = inputs
                .iter()
                .filter_map(|s| (i + s.len()).checked_sub(rank).and_then(|j| s.get(j)));
            dims.try_fold(1, |acc, &d| match acc {
                1 => Some(d),
                a if d == 1 || d == a => Some(a),
                _ => None,
            })
        })
        .collect()
}

/// The inputs joined along `axis`.
fn concat(inputs: &[&[usize]], axis: usize) -> Option<Vec<usize>> {
    let mut out = inputs.first()?.to_vec();
    let total = inputs
        .iter()
        .map(|s| s.get(axis).copied())
        .sum::<Option<usize>>()?;
    *out.get_mut(axis)? = total;
    let same_elsewhere = inputs.iter().all(|s| {
        s.len() == out.len()
            && s.iter()
                .zip(&out)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b)
    });
    same_elsewhere.then_some(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use burn::tensor::Device;

    use feedbacknet_core::GatedNetwork;

    use super::*;

    /// The four shared nets and every committed fixture net.
    fn nets() -> Vec<PathBuf> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let shared = root.join("../shared/models");
        let mut nets: Vec<PathBuf> = [
            "squeezenet1.1.onnx",
            "mobilenet_v2_1.0_224.onnx",
            "mobilenet_v1_0.25_128.onnx",
            "efficientnet_lite0.onnx",
        ]
        .iter()
        .map(|f| shared.join(f))
        .collect();
        let fixtures = std::fs::read_dir(root.join("tests/fixtures/modern")).expect("fixtures");
        let mut more: Vec<PathBuf> = fixtures
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        more.sort();
        nets.extend(more);
        nets
    }

    /// Where the rules cover a program, they give the forward pass's shapes; and on every net,
    /// the shape probe that stands zeros in for the heavy steps gives the shapes of the pass
    /// that runs them all.
    #[test]
    fn the_rules_give_the_forward_pass_shapes_where_they_apply() {
        let device = Device::flex();
        let mut inferred = Vec::new();
        for path in nets() {
            let net = crate::OnnxNetwork::load(&path, &device).expect("loads");
            let executor = net.executor();
            let program = executor.program();
            let hw = [net.input_spec().height, net.input_spec().width];
            let forward = executor.forward_shapes(hw, &device).expect("runs");
            let full = executor.full_forward_shapes(hw, &device).expect("runs");
            assert_eq!(forward, full, "{path:?}: stand-ins change a shape");
            let Some(shapes) = infer(program, hw) else {
                continue;
            };
            for step in &program.steps {
                let slot = step.output;
                let ran = forward.get(slot).cloned().flatten();
                let ruled = shapes.get(slot).cloned().flatten();
                assert_eq!(ruled, ran, "{path:?}, {} ({})", step.name, step.op.name());
            }
            inferred.extend(path.file_name().map(|n| n.to_string_lossy().to_string()));
        }
        for net in [
            "squeezenet1.1.onnx",
            "mobilenet_v2_1.0_224.onnx",
            "efficientnet_lite0.onnx",
        ] {
            assert!(inferred.iter().any(|n| n == net), "{net}: {inferred:?}");
        }
    }
}
