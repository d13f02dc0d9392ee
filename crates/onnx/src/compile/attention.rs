//! `Attention` (ONNX opset 23, which onnx-ir also fuses PyTorch's exported attention into):
//! queries, keys and values, an optional mask, additive (float) or boolean (`true` where the
//! key takes part: turned into `0` / `−∞` when it runs, see `ops/attention.rs`); no causality,
//! no softcap, no key/value cache.

use onnx_ir::{
    Node,
    node::attention::{AttentionConfig, AttentionQkMatmulOutputMode},
};

use super::builder::{Compiler, unsupported};
use crate::{error::Result, ops::Op};

/// Scaled dot-product attention over the node's Q, K and V (and a float or boolean mask);
/// refuses what else ONNX allows.
pub(super) fn attention(c: &mut Compiler, node: &Node, cfg: &AttentionConfig) -> Result<()> {
    let refuse = |reason: &str| Err(unsupported(node.name(), "Attention", reason));
    let mask = node.inputs().get(3).filter(|a| !a.is_optional());
    let mask_type = mask.map(|m| m.ty.elem_type());
    if mask_type.is_some_and(|t| !t.is_float() && !t.is_bool()) {
        return refuse("a mask neither float (additive) nor boolean");
    }
    let extra_input = node.inputs().iter().skip(4).any(|a| !a.is_optional());
    let extra_output = node.outputs().iter().skip(1).any(|o| !o.name.is_empty());
    if extra_input {
        return refuse("a key/value cache input");
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
        boolean_mask: mask_type.is_some_and(|t| t.is_bool()),
    };
    let count = if mask.is_some() { 4 } else { 3 };
    let inputs = (0..count)
        .map(|i| c.slot_of(node, i))
        .collect::<Result<Vec<_>>>()?;
    c.step(node, op, inputs)
}
