//! The operators added for transformers and run-time shapes, on small hand-checked cases, and
//! their refusals of bad shapes and axes (errors, never panics).

use burn::tensor::Device;
use feedbacknet_core::DynTensor;

use super::{CastTo, Ints, Op, ReduceKind, UnaryOp};

fn t(values: Vec<f32>, dims: &[usize]) -> DynTensor {
    DynTensor::from_vec(values, dims, &Device::flex()).unwrap()
}

/// `0, 1, 2, …` in `dims`.
fn iota(dims: &[usize]) -> DynTensor {
    let n: usize = dims.iter().product();
    t((0..n).map(|i| i as f32).collect(), dims)
}

fn run(op: Op, inputs: Vec<DynTensor>) -> (Vec<usize>, Vec<f32>) {
    let y = op.run(inputs).unwrap();
    (y.dims(), y.to_vec().unwrap())
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

#[test]
fn slice_wraps_negative_indices_clamps_and_steps() {
    let x = iota(&[1, 6]);
    let slice = |starts, ends, steps| Op::Slice {
        starts: Ints::Static(starts),
        ends: Ints::Static(ends),
        axes: Some(vec![-1]),
        steps: Some(steps),
    };
    let (dims, v) = run(slice(vec![-4], vec![i64::MAX], vec![1]), vec![x.clone()]);
    assert_eq!((dims, v), (vec![1, 4], vec![2.0, 3.0, 4.0, 5.0]));
    let (_, v) = run(slice(vec![0], vec![6], vec![2]), vec![x.clone()]);
    assert_eq!(v, vec![0.0, 2.0, 4.0]);
    let (_, v) = run(slice(vec![-1], vec![i64::MIN], vec![-2]), vec![x.clone()]);
    assert_eq!(v, vec![5.0, 3.0, 1.0]);
    // Run-time ends (ShuffleNet's channel split): 49 is clamped to the 6 entries.
    let op = Op::Slice {
        starts: Ints::Input(1),
        ends: Ints::Input(2),
        axes: Some(vec![1]),
        steps: None,
    };
    let (_, v) = run(op, vec![x.clone(), t(vec![3.0], &[1]), t(vec![49.0], &[1])]);
    assert_eq!(v, vec![3.0, 4.0, 5.0]);
    // Empty slices, zero steps and bad axes are errors.
    assert!(
        slice(vec![4], vec![2], vec![1])
            .run(vec![x.clone()])
            .is_err()
    );
    assert!(
        slice(vec![0], vec![2], vec![0])
            .run(vec![x.clone()])
            .is_err()
    );
    let bad_axis = Op::Slice {
        starts: Ints::Static(vec![0]),
        ends: Ints::Static(vec![1]),
        axes: Some(vec![2]),
        steps: None,
    };
    assert!(bad_axis.run(vec![x]).is_err());
}

#[test]
fn gather_picks_and_a_scalar_index_removes_the_axis() {
    let x = iota(&[2, 3, 2]);
    let gather = |indices, scalar| Op::Gather {
        axis: 1,
        indices,
        scalar,
    };
    let (dims, v) = run(gather(vec![0], true), vec![x.clone()]);
    assert_eq!((dims, v), (vec![2, 2], vec![0.0, 1.0, 6.0, 7.0]));
    let (dims, v) = run(gather(vec![2, 0], false), vec![x.clone()]);
    assert_eq!(dims, vec![2, 2, 2]);
    assert_eq!(v, vec![4.0, 5.0, 0.0, 1.0, 10.0, 11.0, 6.0, 7.0]);
    assert!(gather(vec![3], true).run(vec![x.clone()]).is_err());
    // A dimension picked from a shape vector is a scalar, stored as [1].
    let shape = Op::Shape { start: 0, end: 4 }
        .run(vec![iota(&[2, 3, 4, 5])])
        .unwrap();
    let (dims, v) = run(
        Op::Gather {
            axis: 0,
            indices: vec![-1],
            scalar: true,
        },
        vec![shape],
    );
    assert_eq!((dims, v), (vec![1], vec![5.0]));
}

#[test]
fn squeeze_and_unsqueeze_move_size_one_axes() {
    let x = iota(&[2, 1, 3, 1]);
    let (dims, _) = run(Op::Squeeze { axes: None }, vec![x.clone()]);
    assert_eq!(dims, vec![2, 3]);
    let (dims, _) = run(
        Op::Squeeze {
            axes: Some(vec![-1]),
        },
        vec![x.clone()],
    );
    assert_eq!(dims, vec![2, 1, 3]);
    assert!(
        Op::Squeeze {
            axes: Some(vec![0])
        }
        .run(vec![x])
        .is_err()
    );
    let unsqueeze = |axes, scalar_input| Op::Unsqueeze { axes, scalar_input };
    let (dims, _) = run(unsqueeze(vec![0, 3], false), vec![iota(&[2, 3])]);
    assert_eq!(dims, vec![1, 2, 3, 1]);
    let (dims, _) = run(unsqueeze(vec![0], true), vec![t(vec![7.0], &[1])]);
    assert_eq!(dims, vec![1]);
    assert!(unsqueeze(vec![0, 0], false).run(vec![iota(&[2])]).is_err());
}

#[test]
fn transpose_permutes_and_refuses_a_non_permutation() {
    let (dims, v) = run(Op::Transpose { perm: vec![1, 0] }, vec![iota(&[2, 3])]);
    assert_eq!((dims, v), (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    for perm in [vec![0, 0], vec![0, 2], vec![0]] {
        assert!(Op::Transpose { perm }.run(vec![iota(&[2, 3])]).is_err());
    }
}

#[test]
fn reductions_keep_or_drop_their_axes() {
    let x = iota(&[2, 3]);
    let reduce = |kind, axes, keepdims| Op::Reduce {
        kind,
        axes,
        keepdims,
    };
    let (dims, v) = run(reduce(ReduceKind::Mean, vec![-1], true), vec![x.clone()]);
    assert_eq!((dims, v), (vec![2, 1], vec![1.0, 4.0]));
    let (dims, v) = run(reduce(ReduceKind::Sum, vec![0], false), vec![x.clone()]);
    assert_eq!((dims, v), (vec![3], vec![3.0, 5.0, 7.0]));
    let (dims, v) = run(reduce(ReduceKind::Max, vec![], false), vec![x.clone()]);
    assert_eq!((dims, v), (vec![1], vec![5.0]));
    let (dims, v) = run(reduce(ReduceKind::L2, vec![1], false), vec![x.clone()]);
    assert_eq!(dims, vec![2]);
    assert!(close(&v, &[5f32.sqrt(), 50f32.sqrt()]), "{v:?}");
    assert!(reduce(ReduceKind::Sum, vec![2], true).run(vec![x]).is_err());
}

#[test]
fn elementwise_functions_and_powers() {
    let x = t(vec![0.25, 1.0, 4.0], &[3]);
    let (_, v) = run(Op::Unary(UnaryOp::Sqrt), vec![x.clone()]);
    assert_eq!(v, vec![0.5, 1.0, 2.0]);
    let (_, v) = run(Op::Unary(UnaryOp::Reciprocal), vec![x.clone()]);
    assert_eq!(v, vec![4.0, 1.0, 0.25]);
    let (_, v) = run(Op::PowScalar(2.0), vec![x.clone()]);
    assert_eq!(v, vec![0.0625, 1.0, 16.0]);
    let (_, v) = run(Op::Pow, vec![x, t(vec![0.5], &[1])]);
    assert!(close(&v, &[0.5, 1.0, 2.0]), "{v:?}");
    let (_, v) = run(Op::Unary(UnaryOp::Erf), vec![t(vec![0.0, 1.0], &[2])]);
    assert!(close(&v, &[0.0, 0.842_700_8]), "{v:?}");
}

#[test]
fn layer_norm_normalizes_the_last_axes() {
    let op = Op::LayerNorm {
        axis: -1,
        epsilon: 0.0,
        scale: Some(t(vec![1.0, 2.0], &[2])),
        bias: Some(t(vec![0.0, 1.0], &[2])),
    };
    let (dims, v) = run(op, vec![t(vec![1.0, 3.0, 5.0, 5.0 + 1e-3], &[2, 2])]);
    assert_eq!(dims, vec![2, 2]);
    assert!(close(&v[..2], &[-1.0, 3.0]), "{v:?}");
}

#[test]
fn shape_arithmetic_reads_dimensions_at_run_time() {
    let x = iota(&[2, 6, 1]);
    let (_, shape) = run(Op::Shape { start: 1, end: 9 }, vec![x.clone()]);
    assert_eq!(shape, vec![6.0, 1.0]);
    let (_, v) = run(
        Op::IntDiv,
        vec![t(vec![7.0, -7.0], &[2]), t(vec![2.0], &[1])],
    );
    assert_eq!(v, vec![3.0, -3.0]);
    let (_, v) = run(Op::Cast(CastTo::Int), vec![t(vec![2.7, -2.7], &[2])]);
    assert_eq!(v, vec![2.0, -2.0]);
    let (dims, _) = run(Op::ReshapeTo, vec![x.clone(), t(vec![3.0, -1.0], &[2])]);
    assert_eq!(dims, vec![3, 4]);
    assert!(
        Op::ReshapeTo
            .run(vec![x.clone(), t(vec![5.0, -1.0], &[2])])
            .is_err()
    );
    let (dims, v) = run(
        Op::Expand(Ints::Static(vec![2, 1, 3])),
        vec![t(vec![1.0, 2.0, 3.0], &[3])],
    );
    assert_eq!((dims, v.len()), (vec![2, 1, 3], 6));
    assert!(
        Op::Expand(Ints::Static(vec![5, 1]))
            .run(vec![x.clone()])
            .is_err()
    );
    let (dims, v) = run(
        Op::ConstantOfShape { value: 1.5 },
        vec![t(vec![2.0, 2.0], &[2])],
    );
    assert_eq!((dims, v), (vec![2, 2], vec![1.5; 4]));
}

#[test]
fn matmul_broadcasts_batch_dimensions() {
    let a = iota(&[2, 1, 2, 3]);
    let b = iota(&[3, 3, 2]);
    let y = Op::MatMul.run(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(y.dims(), vec![2, 3, 2, 2]);
    // Batch (1, 1) of the result is a[1, 0] · b[1].
    let v = y.to_vec().unwrap();
    let (a1, b1) = (&a.to_vec().unwrap()[6..12], &b.to_vec().unwrap()[6..12]);
    let expected: Vec<f32> = (0..2)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| (0..3).map(|k| a1[i * 3 + k] * b1[k * 2 + j]).sum())
        .collect();
    assert_eq!(&v[(3 + 1) * 4..(3 + 2) * 4], expected.as_slice());
    assert!(
        Op::MatMul
            .run(vec![iota(&[2, 2, 3]), iota(&[3, 2, 2])])
            .is_err()
    );
}

#[test]
fn attention_equals_its_definition_and_groups_heads() {
    // One head of two queries over two keys, by hand.
    let q = t(vec![1.0, 0.0, 0.0, 1.0], &[1, 1, 2, 2]);
    let k = t(vec![1.0, 0.0, 0.0, 2.0], &[1, 1, 2, 2]);
    let v = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let op = Op::Attention {
        scale: Some(1.0),
        q_heads: None,
        kv_heads: None,
        boolean_mask: false,
    };
    let (_, out) = run(op.clone(), vec![q.clone(), k.clone(), v.clone()]);
    let softmax2 = |a: f32, b: f32| {
        let (ea, eb) = (a.exp(), b.exp());
        (ea / (ea + eb), eb / (ea + eb))
    };
    let (p0, p1) = softmax2(1.0, 0.0);
    let (r0, r1) = softmax2(0.0, 2.0);
    let expected = [
        p0 * 1.0 + p1 * 3.0,
        p0 * 2.0 + p1 * 4.0,
        r0 * 1.0 + r1 * 3.0,
        r0 * 2.0 + r1 * 4.0,
    ];
    assert!(close(&out, &expected), "{out:?} vs {expected:?}");
    // Two query heads sharing one key/value head equal each head run alone.
    let q2 = DynTensor::concat(vec![q.clone(), q.clone()], 1).unwrap();
    let (dims, grouped) = run(op.clone(), vec![q2, k.clone(), v.clone()]);
    assert_eq!(dims, vec![1, 2, 2, 2]);
    assert!(close(&grouped[..4], &expected) && close(&grouped[4..], &expected));
    // The 3-D layout with the head count given.
    let flat = |x: &DynTensor| x.clone().reshape(&[1, 2, 2]).unwrap();
    let op3 = Op::Attention {
        scale: Some(1.0),
        q_heads: Some(1),
        kv_heads: Some(1),
        boolean_mask: false,
    };
    let (dims, out3) = run(op3, vec![flat(&q), flat(&k), flat(&v)]);
    assert_eq!(dims, vec![1, 2, 2]);
    assert!(close(&out3, &expected));
    assert!(op.run(vec![q, k]).is_err());
}

#[test]
fn equal_not_and_where_use_zero_one_floats_and_broadcast() {
    let (dims, v) = run(
        Op::Equal,
        vec![t(vec![1.0, 2.0, 3.0], &[1, 3]), t(vec![2.0], &[1])],
    );
    assert_eq!((dims, v), (vec![1, 3], vec![0.0, 1.0, 0.0]));
    let (_, v) = run(Op::Not, vec![t(vec![0.0, 1.0, 1.0], &[3])]);
    assert_eq!(v, vec![1.0, 0.0, 0.0]);
    // Infinities in the unpicked branch do not leak into the picked one.
    let (dims, v) = run(
        Op::Where,
        vec![
            t(vec![1.0, 0.0], &[2, 1]),
            t(vec![5.0, 6.0, 7.0], &[3]),
            t(vec![f32::NEG_INFINITY], &[1]),
        ],
    );
    assert_eq!(dims, vec![2, 3]);
    assert_eq!(&v[..3], &[5.0, 6.0, 7.0]);
    assert!(v[3..].iter().all(|x| *x == f32::NEG_INFINITY));
}

#[test]
fn mod_follows_the_divisor_or_with_fmod_the_dividend() {
    let a = t(vec![7.0, -7.0, 7.0, -7.0, 6.0], &[5]);
    let b = t(vec![3.0, 3.0, -3.0, -3.0, 3.0], &[5]);
    let (_, v) = run(Op::Mod { fmod: false }, vec![a.clone(), b.clone()]);
    assert_eq!(v, vec![1.0, 2.0, -2.0, -1.0, 0.0]);
    let (_, v) = run(Op::Mod { fmod: true }, vec![a, b]);
    assert_eq!(v, vec![1.0, -1.0, 1.0, -1.0, 0.0]);
}

#[test]
fn range_counts_up_and_down_and_refuses_empty() {
    let range = |s: Ints, l: Ints, d: Ints| Op::Range(Box::new([s, l, d]));
    let limit = t(vec![8.0], &[1]);
    let (_, v) = run(
        range(Ints::Static(vec![1]), Ints::Input(0), Ints::Static(vec![3])),
        vec![limit.clone()],
    );
    assert_eq!(v, vec![1.0, 4.0, 7.0]);
    let (_, v) = run(
        range(
            Ints::Input(0),
            Ints::Static(vec![2]),
            Ints::Static(vec![-2]),
        ),
        vec![limit.clone()],
    );
    assert_eq!(v, vec![8.0, 6.0, 4.0]);
    let empty = range(Ints::Input(0), Ints::Static(vec![2]), Ints::Static(vec![1]));
    assert!(empty.run(vec![limit.clone()]).is_err());
    let zero_step = range(Ints::Input(0), Ints::Static(vec![2]), Ints::Static(vec![0]));
    assert!(zero_step.run(vec![limit.clone()]).is_err());
    // Bounds whose difference overflows `i64` (a malformed model) are counted without panicking.
    let extreme = range(
        Ints::Static(vec![i64::MIN]),
        Ints::Static(vec![i64::MAX]),
        Ints::Static(vec![i64::MAX]),
    );
    let (_, v) = run(extreme, vec![limit]);
    assert_eq!(v, vec![i64::MIN as f32, -1.0, (i64::MAX - 1) as f32]);
}

#[test]
fn scatter_nd_replaces_slices_and_checks_indices() {
    // Rows 2 and 0 of a 3x2 matrix replaced.
    let data = iota(&[3, 2]);
    let indices = t(vec![2.0, 0.0], &[2, 1]);
    let updates = t(vec![10.0, 11.0, 20.0, 21.0], &[2, 2]);
    let (dims, v) = run(Op::ScatterNd, vec![data.clone(), indices, updates.clone()]);
    assert_eq!(
        (dims, v),
        (vec![3, 2], vec![20.0, 21.0, 2.0, 3.0, 10.0, 11.0])
    );
    // Single elements by full index tuples (a negative one wraps).
    let indices = t(vec![0.0, 1.0, -1.0, 0.0], &[2, 2]);
    let (_, v) = run(
        Op::ScatterNd,
        vec![data.clone(), indices, t(vec![7.0, 8.0], &[2])],
    );
    assert_eq!(v, vec![0.0, 7.0, 2.0, 3.0, 8.0, 5.0]);
    let out_of_range = t(vec![3.0, 0.0], &[2, 1]);
    assert!(
        Op::ScatterNd
            .run(vec![data, out_of_range, updates])
            .is_err()
    );
}

#[test]
fn pad_to_reads_the_amounts_at_run_time() {
    let x = iota(&[1, 2]);
    let pads = t(vec![0.0, 1.0, 0.0, 2.0], &[4]);
    let op = Op::PadTo(burn::tensor::ops::PadMode::Constant(0.0));
    let (dims, v) = run(op.clone(), vec![x.clone(), pads]);
    assert_eq!((dims, v), (vec![1, 5], vec![0.0, 0.0, 1.0, 0.0, 0.0]));
    assert!(
        op.run(vec![x.clone(), t(vec![0.0, -1.0, 0.0, 0.0], &[4])])
            .is_err()
    );
    assert!(op.run(vec![x, t(vec![1.0, 1.0], &[2])]).is_err());
}

#[test]
fn attention_adds_a_float_mask_to_the_scores() {
    let q = iota(&[1, 1, 2, 2]);
    let op = Op::Attention {
        scale: Some(1.0),
        q_heads: None,
        kv_heads: None,
        boolean_mask: false,
    };
    // A mask of -inf on the second key: every query attends to the first value alone.
    let mask = t(vec![0.0, f32::NEG_INFINITY], &[1, 2]);
    let v = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let (_, y) = run(op.clone(), vec![q.clone(), q.clone(), v.clone(), mask]);
    assert!(close(&y, &[1.0, 2.0, 1.0, 2.0]), "{y:?}");
    let bad = t(vec![0.0, 0.0, 0.0], &[3]);
    assert!(op.run(vec![q.clone(), q, v, bad]).is_err());
}

/// A boolean mask (1: the key takes part) is the additive mask 0 / −∞; a query whose keys are
/// all masked, by either mask, attends to nothing (zeros, as onnxruntime gives), not NaN.
#[test]
fn attention_takes_a_boolean_mask_and_a_query_without_keys() {
    let q = iota(&[1, 1, 2, 2]);
    let v = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let attention = |boolean_mask| Op::Attention {
        scale: Some(1.0),
        q_heads: None,
        kv_heads: None,
        boolean_mask,
    };
    let inf = f32::NEG_INFINITY;
    let boolean = t(vec![1.0, 0.0, 0.0, 0.0], &[2, 2]);
    let additive = t(vec![0.0, inf, inf, inf], &[2, 2]);
    let (_, y) = run(
        attention(true),
        vec![q.clone(), q.clone(), v.clone(), boolean],
    );
    assert_eq!(y, vec![1.0, 2.0, 0.0, 0.0]);
    let (_, y) = run(
        attention(false),
        vec![q.clone(), q.clone(), v.clone(), additive],
    );
    assert_eq!(y, vec![1.0, 2.0, 0.0, 0.0]);
    // All true is no mask at all.
    let open = t(vec![1.0; 4], &[2, 2]);
    let (_, masked) = run(attention(true), vec![q.clone(), q.clone(), v.clone(), open]);
    let (_, plain) = run(attention(false), vec![q.clone(), q, v]);
    assert_eq!(masked, plain);
}

/// No gradient through a condition or indices; `Where` splits the output gradient between its
/// values, `ScatterND` between the kept data and the updates.
#[test]
fn where_and_scatter_nd_route_the_gradient() {
    use crate::reverse::autodiff_vjp;
    let grads = |op: &Op, inputs: Vec<DynTensor>, dy: DynTensor| -> Vec<Option<Vec<f32>>> {
        let needed: Vec<bool> = (0..inputs.len())
            .map(|i| op.differentiable_input(i))
            .collect();
        autodiff_vjp(op, inputs, dy, &needed)
            .unwrap()
            .into_iter()
            .map(|g| g.map(|g| g.to_vec().unwrap()))
            .collect()
    };
    let g = grads(
        &Op::Where,
        vec![
            t(vec![1.0, 0.0, 1.0], &[3]),
            t(vec![1.0, 2.0, 3.0], &[3]),
            t(vec![4.0, 5.0, 6.0], &[3]),
        ],
        t(vec![0.5, 0.25, 2.0], &[3]),
    );
    assert_eq!(g[0], None);
    assert_eq!(g[1], Some(vec![0.5, 0.0, 2.0]));
    assert_eq!(g[2], Some(vec![0.0, 0.25, 0.0]));
    let g = grads(
        &Op::ScatterNd,
        vec![
            iota(&[3, 2]),
            t(vec![2.0], &[1, 1]),
            t(vec![7.0, 8.0], &[1, 2]),
        ],
        t(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]),
    );
    assert_eq!(g[0], Some(vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0]));
    assert_eq!(g[1], None);
    assert_eq!(g[2], Some(vec![5.0, 6.0]));
}
