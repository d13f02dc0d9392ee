//! Checks and conversions shared by the windowed ops (convolution and pooling).

use onnx_ir::node::padding::{AutoPad, PaddingConfig2d};

use super::builder::unsupported;
use crate::error::Result;

/// Refuses `auto_pad` `SAME_*` (the explicit pads are the only ones read), with `reason`.
pub(super) fn explicit_pads(node: &str, op: &str, auto_pad: &AutoPad, reason: &str) -> Result<()> {
    if matches!(auto_pad, AutoPad::NotSet | AutoPad::Valid) {
        Ok(())
    } else {
        Err(unsupported(node, op, reason))
    }
}

/// Refuses a zero kernel size, stride or dilation.
pub(super) fn check_positive(node: &str, op: &str, values: &[[usize; 2]]) -> Result<()> {
    if values.iter().flatten().any(|&v| v == 0) {
        return Err(unsupported(
            node,
            op,
            "kernel, stride and dilation must be positive",
        ));
    }
    Ok(())
}

/// Burn's `[(top, bottom), (left, right)]` padding pairs.
pub(super) fn padding_pairs(cfg: &PaddingConfig2d) -> [(usize, usize); 2] {
    let (t, l, b, r) = cfg.as_tuple();
    [(t, b), (l, r)]
}
