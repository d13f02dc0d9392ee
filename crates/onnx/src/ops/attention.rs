//! ONNX (opset 23) `Attention` with an optional additive mask, without boolean masks, causality, softcap or a key/value cache:
//! `softmax(Q·Kᵀ · scale) · V` per head, with grouped key/value heads.

use burn::tensor::{Tensor, activation};
use feedbacknet_core::{DynTensor, Result};

use super::shape_err;

/// The attention of `[q, k, v]` or `[q, k, v, mask]` (added to the scaled scores, broadcast to
/// `[batch, heads, queries, keys]`): 4-D as `[batch, heads, sequence, head size]`, or 3-D as
/// `[batch, sequence, heads · head size]` with the head counts given.
pub(super) fn attention(
    inputs: &[DynTensor],
    scale: Option<f32>,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
) -> Result<DynTensor> {
    let (q, k, v, mask) = match inputs {
        [q, k, v] => (q, k, v, None),
        [q, k, v, mask] => (q, k, v, Some(mask)),
        _ => return Err(shape_err("Q, K and V", vec![inputs.len()])),
    };
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
    let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    if let Some(mask) = mask {
        let dims = scores.dims();
        scores = DynTensor::R4(scores)
            .binary(mask.clone(), feedbacknet_core::BinaryOp::Add)?
            .into4("Attention mask")?;
        if scores.dims() != dims {
            return Err(shape_err(
                &format!("a mask broadcastable to {dims:?}"),
                mask.dims(),
            ));
        }
    }
    Ok(activation::softmax(scores, 3).matmul(v))
}
