//! Which values of a program are channels-last maps `[N, H, W, C]`: the output of a
//! `Transpose` with `perm = [0, 2, 3, 1]`, and every value that keeps the channels last from
//! there (activations, element-wise arithmetic, layer normalization, and the linear layers
//! that act on the last axis), as ConvNeXt's and Swin's blocks run their MLPs. Any other op
//! ends the run. Token sequences `[N, S, C]` need no analysis: their features are last by
//! rank (see [`channel_axis`]).

use feedbacknet_core::ActivationKind;

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

/// Where a gated value keeps its channels (what per-channel gates gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// By rank: the last axis of a token sequence `[S, C]`, the first of `[C, H, W]` and `[C]`.
    ByRank,
    /// The last axis of a channels-last map `[H, W, C]` (see [`channels_last`]).
    Last,
    /// The heads of an attention's output `[.., heads, tokens, size]` (see `head_gates`).
    Heads,
}

impl Channels {
    /// The channels of a value that a program writes channels-last or not, under a gate of
    /// kind `kind`.
    pub(crate) fn of(kind: Option<ActivationKind>, channels_last: bool) -> Self {
        match (kind, channels_last) {
            (Some(ActivationKind::AttentionHeads), _) => Channels::Heads,
            (_, true) => Channels::Last,
            (_, false) => Channels::ByRank,
        }
    }
}

/// The per-sample axis holding the channels of an activation of per-sample shape
/// `per_sample`: the last of a token sequence `[S, C]` and of a channels-last map `[H, W, C]`,
/// the heads' of an attention output, else the first (`[C, H, W]`, `[C]`).
pub(crate) fn channel_axis(per_sample: &[usize], channels: Channels) -> usize {
    match (channels, per_sample.len()) {
        (Channels::Heads, rank) => rank.saturating_sub(3),
        (_, 2) => 1,
        (Channels::Last, 3) => 2,
        _ => 0,
    }
}

/// The per-sample shape of a value of shape `dims` in a batch of `batch` samples. A value
/// whose leading axis is not the batch but folds it with another axis (a transformer's MLP
/// run on `[batch · tokens, features]`) has the per-sample shape `[tokens, features]`.
pub(crate) fn per_sample_shape(dims: &[usize], batch: usize) -> Vec<usize> {
    match dims.split_first() {
        Some((&lead, rest)) if lead != batch && batch > 0 && lead % batch == 0 => {
            std::iter::once(lead / batch)
                .chain(rest.iter().copied())
                .collect()
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}
