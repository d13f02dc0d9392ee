//! Where a gated value keeps its channels: by rank (token sequences `[N, S, C]`, whose
//! features are last by rank, and channels-first maps), last (channels-last maps
//! `[N, H, W, C]`, found by `channels_last`), or in an attention's heads.

use feedbacknet_core::ActivationKind;

/// Where a gated value keeps its channels (what per-channel gates gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// By rank: the last axis of a token sequence `[S, C]`, the first of `[C, H, W]` and `[C]`.
    ByRank,
    /// The last axis of a channels-last map `[H, W, C]` (see `channels_last`).
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
