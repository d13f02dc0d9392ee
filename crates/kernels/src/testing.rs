//! Helpers of the tests.

use feedbacknet_core::{BinaryOp, DynTensor};

/// The largest absolute difference between two tensors of one shape.
pub(crate) fn max_abs(a: DynTensor, b: DynTensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.binary(b, BinaryOp::Sub)
        .expect("same shape")
        .flatten_all()
        .abs()
        .max()
        .into_scalar()
}
