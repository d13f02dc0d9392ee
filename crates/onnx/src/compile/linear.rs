//! Matrix products: `Linear` (onnx-ir's fused `Gemm`/`MatMul` with constant weights), `Gemm`
//! and `MatMul`.

use onnx_ir::{
    Node,
    node::{gemm::GemmConfig, linear::LinearConfig},
};

use super::builder::Compiler;
use crate::{error::Result, ops::Op};

/// `x · weight + bias` with a constant weight, stored as `[in, out]`.
pub(super) fn linear(c: &mut Compiler, node: &Node, cfg: &LinearConfig) -> Result<()> {
    let weight = c.required_weight::<2>(node, 1)?;
    let weight = if cfg.transpose_weight {
        weight.transpose()
    } else {
        weight
    };
    let bias = c.weight::<1>(node, 2)?;
    c.unary(node, Op::Linear { weight, bias })
}

/// A general matrix multiply over run-time or constant inputs.
pub(super) fn gemm(c: &mut Compiler, node: &Node, cfg: &GemmConfig) -> Result<()> {
    let op = Op::Gemm {
        alpha: cfg.alpha,
        beta: cfg.beta,
        trans_a: cfg.trans_a != 0,
        trans_b: cfg.trans_b != 0,
    };
    c.nary(node, op)
}

/// A (batched) matrix product of two inputs.
pub(super) fn matmul(c: &mut Compiler, node: &Node) -> Result<()> {
    c.nary(node, Op::MatMul)
}
