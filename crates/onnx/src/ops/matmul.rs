//! Batched matrix products: the operands brought to one batch shape.

use feedbacknet_core::{BinaryOp, DynTensor, Result, dyn_with};

use super::shape_err;

/// The operands of a batched matrix product (rank 3 or more) brought to one rank and one batch
/// shape by NumPy broadcasting, their matrix dimensions checked.
pub(super) fn broadcast_batch(a: DynTensor, b: DynTensor) -> Result<(DynTensor, DynTensor)> {
    let rank = a.rank().max(b.rank());
    let (a, b) = (a.unsqueeze_to(rank)?, b.unsqueeze_to(rank)?);
    let (ad, bd) = (a.dims(), b.dims());
    let matrices = ad.split_last_chunk::<2>().zip(bd.split_last_chunk::<2>());
    let Some(((a_batch, a_matrix), (b_batch, b_matrix))) =
        matrices.filter(|((_, [_, inner]), (_, [rows, _]))| inner == rows)
    else {
        return Err(shape_err(&format!("a matrix product with {bd:?}"), ad));
    };
    if a_batch == b_batch {
        return Ok((a, b));
    }
    let mut batch = Vec::with_capacity(a_batch.len());
    for (&x, &y) in a_batch.iter().zip(b_batch) {
        if x != y && x != 1 && y != 1 {
            return Err(shape_err(
                &format!("batch dimensions broadcastable with {bd:?}"),
                ad,
            ));
        }
        batch.push(x.max(y));
    }
    let widen = |t: DynTensor, matrix: &[usize]| -> Result<DynTensor> {
        let mut full = batch.clone();
        full.extend_from_slice(matrix);
        if t.dims() == full {
            return Ok(t);
        }
        let device = dyn_with!(&t, u => u.device());
        let zeros = DynTensor::from_vec(vec![0.0; full.iter().product()], &full, &device)?;
        t.binary(zeros, BinaryOp::Add)
    };
    Ok((widen(a, a_matrix)?, widen(b, b_matrix)?))
}
