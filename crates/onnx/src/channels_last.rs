//! Which values of a program are channels-last maps `[N, H, W, C]`: the output of a
//! `Transpose` with `perm = [0, 2, 3, 1]`, and every value that keeps the channels last from
//! there (activations, element-wise arithmetic, layer normalization, and the linear layers
//! that act on the last axis), as ConvNeXt's and Swin's blocks run their MLPs. Any other op
//! ends the run. Token sequences `[N, S, C]` need no analysis: their features are last by
//! rank (see `layout`).

use crate::{
    ops::{CastTo, Op},
    program::Program,
};

/// `perm` of the transpose from `[N, C, H, W]` to `[N, H, W, C]`.
const TO_CHANNELS_LAST: [usize; 4] = [0, 2, 3, 1];

/// Per value slot, whether it is a channels-last map.
pub(crate) fn channels_last(program: &Program) -> Vec<bool> {
    let mut last = vec![false; program.slots];
    for step in &program.steps {
        let reads_last = |slots: &[usize]| slots.iter().any(|&s| last.get(s) == Some(&true));
        let is_last = match &step.op {
            Op::Transpose { perm } => perm.as_slice() == TO_CHANNELS_LAST,
            Op::Binary(_) => reads_last(&step.inputs),
            op if keeps_last_axis(op) => reads_last(step.inputs.get(..1).unwrap_or(&[])),
            _ => false,
        };
        if let Some(flag) = last.get_mut(step.output) {
            *flag = is_last;
        }
    }
    last
}

/// Ops whose output keeps the layout of their first input's last axis.
fn keeps_last_axis(op: &Op) -> bool {
    matches!(
        op,
        Op::Activation(_)
            | Op::PRelu(_)
            | Op::LayerNorm { .. }
            | Op::Linear { .. }
            | Op::Gemm { .. }
            | Op::MatMul
            | Op::Identity
            | Op::Unary(_)
            | Op::PowScalar(_)
            | Op::Cast(CastTo::Float)
    )
}
