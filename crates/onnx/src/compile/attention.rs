//! `Attention` (ONNX opset 23, which onnx-ir also fuses PyTorch's exported attention into):
//! queries, keys and values, no mask, no causality, no softcap, no key/value cache.

use onnx_ir::{
    Node,
    node::attention::{AttentionConfig, AttentionQkMatmulOutputMode},
};

use super::builder::{Compiler, unsupported};
use crate::{error::Result, ops::Op};

/// Scaled dot-product attention over the node's Q, K and V; refuses what else ONNX allows.
pub(super) fn attention(c: &mut Compiler, node: &Node, cfg: &AttentionConfig) -> Result<()> {
    let refuse = |reason: &str| Err(unsupported(node.name(), "Attention", reason));
    let extra_input = node.inputs().iter().skip(3).any(|a| !a.is_optional());
    let extra_output = node.outputs().iter().skip(1).any(|o| !o.name.is_empty());
    if extra_input {
        return refuse("a mask or a key/value cache input");
    }
    if extra_output {
        return refuse("outputs beyond the attention itself (cache or scores)");
    }
    if cfg.is_causal {
        return refuse("causal attention");
    }
    if cfg.softcap != 0.0 {
        return refuse("a softcap");
    }
    if !matches!(
        cfg.qk_matmul_output_mode,
        AttentionQkMatmulOutputMode::Matmul
    ) {
        return refuse("a Q·K output mode");
    }
    if node.inputs().len() < 3 {
        return refuse("fewer than three inputs (Q, K, V)");
    }
    let op = Op::Attention {
        scale: cfg.scale.map(|s| s as f32),
        q_heads: cfg.q_num_heads,
        kv_heads: cfg.kv_num_heads,
    };
    let inputs = (0..3)
        .map(|i| c.slot_of(node, i))
        .collect::<Result<Vec<_>>>()?;
    c.step(node, op, inputs)
}
