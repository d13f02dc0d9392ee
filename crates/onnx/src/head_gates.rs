//! One gate per attention head, an option ([`GatePlacement::AttentionHeads`]).
//!
//! After every attention whose output keeps its heads on an axis of their own, third from the
//! end (`[.., heads, tokens, head size]`), a gated identity step is put in
//! ([`Activation::Identity`]), and every step that read the attention reads it instead. Such
//! attention is onnx-ir's `Attention` of 4-D queries (PyTorch's exported `MultiheadAttention`
//! in torchvision's ViT, one of Swin's blocks) and the product of a `Softmax`'s weights by the
//! values as `MatMul` or `Einsum` (Swin's other block, MaxViT's `B G H I J, B G H J D -> B G H
//! I D`). The gate site ([`ActivationKind::AttentionHeads`](feedbacknet_core::ActivationKind))
//! has one gate per head whatever the gate set's granularity, so closing a gate silences that
//! head's output before the heads are merged by the output projection. `Attention` on 3-D
//! inputs, whose heads share the last axis, gets no head gates.

use crate::{
    ops::{Activation, Op},
    program::{Program, Step},
};

/// Which values of an ONNX network carry gates.
///
/// ```no_run
/// use feedbacknet_core::{Device, GatedNetwork};
/// use feedbacknet_onnx::{GatePlacement, OnnxNetwork};
///
/// let net = OnnxNetwork::load_with("vit_b_16.onnx", &Device::flex(), GatePlacement::AttentionHeads)?;
/// let heads = net.gate_sites([224, 224])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatePlacement {
    /// After every gated activation (ReLU, SiLU, GELU, …): the paper's placement; in a
    /// transformer, the MLPs' activations. The default.
    #[default]
    Activations,
    /// The activations' gates and one gate per attention head, on each head's output.
    AttentionHeads,
}

/// Whether `step` computes an attention with its heads third from the end: a fused 4-D
/// `Attention`, or a product whose first operand is a `Softmax`'s weights.
fn is_attention(program: &Program, step: &Step) -> bool {
    let softmax_weights = || {
        let first = step.inputs.first().and_then(|&slot| program.writer(slot));
        let op = first.and_then(|i| program.steps.get(i)).map(|s| &s.op);
        matches!(op, Some(Op::Softmax { .. }))
    };
    match step.op {
        Op::Attention { q_heads, .. } => q_heads.is_none(),
        Op::MatMul | Op::Einsum(_) => softmax_weights(),
        _ => false,
    }
}

/// Puts a head gate after every attention (see [`is_attention`]); returns how many. Gate indices
/// are numbered again in program order.
pub(crate) fn add(program: &mut Program) -> usize {
    let attentions: Vec<usize> = (program.steps.iter().enumerate())
        .filter(|(_, s)| is_attention(program, s))
        .map(|(i, _)| i)
        .collect();
    for &index in attentions.iter().rev() {
        let Some(attention) = program.steps.get(index) else {
            continue;
        };
        let (from, to) = (attention.output, program.slots);
        let name = format!("{}_heads", attention.name);
        let gate = Step {
            name,
            op: Op::Activation(Activation::Identity),
            inputs: vec![from],
            output: to,
            gate: Some(0),
            release: Vec::new(),
        };
        program.slots += 1;
        for step in program.steps.iter_mut().skip(index + 1) {
            for input in step.inputs.iter_mut().filter(|s| **s == from) {
                *input = to;
            }
        }
        if program.output == from {
            program.output = to;
        }
        program.steps.insert(index + 1, gate);
    }
    let mut count = 0;
    for step in program.steps.iter_mut().filter(|s| s.gate.is_some()) {
        step.gate = Some(count);
        count += 1;
    }
    program.gate_count = count;
    attentions.len()
}
