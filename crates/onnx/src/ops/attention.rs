//! ONNX (opset 23) `Attention` with an optional additive or boolean mask, without causality,
//! softcap or a key/value cache: `softmax(Q·Kᵀ · scale + mask) · V` per head, with grouped
//! key/value heads.
//!
//! A boolean mask (0/1 floats here, 1 where the key takes part) becomes the additive mask
//! `0` / `−∞`, as the ONNX reference does (`np.where(mask, 0, -inf)`). A query whose keys are
//! all masked (every score `−∞`, whichever mask) attends to nothing: its output is 0, as
//! onnxruntime and the ONNX reference evaluator give, not the NaN of a softmax over `−∞` alone;
//! its scores are set to 0 before the softmax and its weights to 0 after, so no NaN reaches the
//! backward pass either.

use burn::tensor::{Bool, Tensor, activation};
use feedbacknet_core::{DynTensor, Result, dyn_map};

use super::shape_err;

/// The attention of `[q, k, v]` or `[q, k, v, mask]` (the mask added to the scaled scores,
/// broadcast to `[batch, heads, queries, keys]`; a `boolean` one first turned into `0` / `−∞`):
/// 4-D as `[batch, heads, sequence, head size]`, or 3-D as `[batch, sequence, heads · head
/// size]` with the head counts given.
pub(super) fn attention(
    inputs: &[DynTensor],
    scale: Option<f32>,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
    boolean: bool,
) -> Result<DynTensor> {
    let (q, k, v, mask) = match inputs {
        [q, k, v] => (q, k, v, None),
        [q, k, v, mask] if boolean => (q, k, v, Some(additive(mask.clone()))),
        [q, k, v, mask] => (q, k, v, Some(mask.clone())),
        _ => return Err(shape_err("Q, K and V", vec![inputs.len()])),
    };
    let mask = mask.as_ref();
    match (q, k, v) {
        (DynTensor::R4(q), DynTensor::R4(k), DynTensor::R4(v)) => Ok(DynTensor::R4(heads(
            q.clone(),
            k.clone(),
            v.clone(),
            scale,
            mask,
        )?)),
        (DynTensor::R3(q), DynTensor::R3(k), DynTensor::R3(v)) => {
            let (Some(hq), Some(hk)) = (q_heads, kv_heads.or(q_heads)) else {
                return Err(shape_err(
                    "4-D inputs (3-D ones need q_num_heads and kv_num_heads)",
                    q.dims().to_vec(),
                ));
            };
            let split = |t: &Tensor<3>, h: usize| -> Result<Tensor<4>> {
                let [b, s, width] = t.dims();
                if h == 0 || width % h != 0 {
                    return Err(shape_err(
                        &format!("a width divisible by {h} heads"),
                        t.dims().to_vec(),
                    ));
                }
                Ok(t.clone().reshape([b, s, h, width / h]).swap_dims(1, 2))
            };
            let out = heads(split(q, hq)?, split(k, hk)?, split(v, hk)?, scale, mask)?;
            let [b, h, s, d] = out.dims();
            Ok(DynTensor::R3(out.swap_dims(1, 2).reshape([b, s, h * d])))
        }
        _ => Err(shape_err("Q, K and V all 3-D or all 4-D", q.dims())),
    }
}

/// Scaled dot-product attention of `[batch, heads, sequence, size]` tensors; the key/value
/// heads are repeated when there are fewer of them (grouped-query attention).
fn heads(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: Option<f32>,
    mask: Option<&DynTensor>,
) -> Result<Tensor<4>> {
    let [b, hq, _, d] = q.dims();
    let [bk, hk, l, dk] = k.dims();
    let [bv, hv, lv, dv] = v.dims();
    if bk != b || bv != b || dk != d || hv != hk || lv != l || hk == 0 || hq % hk != 0 {
        return Err(shape_err(
            &format!("keys and values matching queries {:?}", q.dims()),
            k.dims().to_vec(),
        ));
    }
    let group = hq / hk;
    let repeat = |t: Tensor<4>, size: usize| {
        if group == 1 {
            t
        } else {
            t.reshape([b, hk, 1, l, size])
                .expand([b, hk, group, l, size])
                .reshape([b, hq, l, size])
        }
    };
    let (k, v) = (repeat(k, d), repeat(v, dv));
    let scale = scale.unwrap_or(1.0 / (d as f32).sqrt());
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    let Some(mask) = mask else {
        return Ok(activation::softmax(scores, 3).matmul(v));
    };
    let dims = scores.dims();
    let scores = DynTensor::R4(scores)
        .binary(mask.clone(), feedbacknet_core::BinaryOp::Add)?
        .into4("Attention mask")?;
    if scores.dims() != dims {
        return Err(shape_err(
            &format!("a mask broadcastable to {dims:?}"),
            mask.dims(),
        ));
    }
    let unattended = unattended(&scores);
    let scores = scores.mask_fill(unattended.clone(), 0.0);
    Ok(activation::softmax(scores, 3)
        .mask_fill(unattended, 0.0)
        .matmul(v))
}

/// The additive form of a boolean mask (0/1 floats): 0 where it is 1, `−∞` where it is 0.
fn additive(mask: DynTensor) -> DynTensor {
    dyn_map!(mask, t => t.clone().zeros_like().mask_fill(t.equal_elem(0.0), f32::NEG_INFINITY))
}

/// The queries whose masked scores are all `−∞`, spread over their keys.
fn unattended(scores: &Tensor<4>) -> Tensor<4, Bool> {
    scores
        .clone()
        .max_dim(3)
        .equal_elem(f32::NEG_INFINITY)
        .expand(scores.dims())
}
