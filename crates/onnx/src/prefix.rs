//! The cache of gate-free prefix values: the values of the steps that no gate influences,
//! for the last few inputs seen (a soft solver feeds the same input every iteration).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use burn::tensor::Tensor;
use feedbacknet_core::DynTensor;

/// Inputs whose gate-free prefix values are kept: one per solver running at the same time (the
/// evaluation's workers; with a single slot, two workers alternating their images would
/// recompute the prefix at almost every iteration).
const PREFIX_SLOTS: usize = 4;

/// Per value slot of the prefix, its value (shared between the cache and its readers).
pub(crate) type PrefixValues = Arc<[(usize, DynTensor)]>;

/// The prefix's steps and their values for the last [`PREFIX_SLOTS`] inputs seen.
#[derive(Debug)]
pub(crate) struct PrefixCache {
    steps: Vec<usize>,
    /// Most recent first.
    entries: Mutex<VecDeque<Entry>>,
}

/// The values of the gate-free prefix for one input (a clone shares the tensors).
#[derive(Debug, Clone)]
struct Entry {
    input: Tensor<4>,
    values: PrefixValues,
}

impl PrefixCache {
    /// An empty cache for the prefix made of `steps` (indices in program order).
    pub(crate) fn new(steps: Vec<usize>) -> Self {
        Self {
            steps,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// The indices of the prefix's steps, in program order.
    pub(crate) fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// The cached values, if they were computed for this very input (the entry then becomes
    /// the most recent one).
    ///
    /// The inputs are compared without holding the lock: the comparison is a tensor op, and a
    /// pool worker that waits inside a parallel op may pick up another inference, which would
    /// then wait for a lock that its own thread holds.
    pub(crate) fn get(&self, input: &Tensor<4>) -> Option<PrefixValues> {
        let cached: Vec<Entry> = self.entries().iter().cloned().collect();
        let same = |cached: &Entry| {
            cached.input.dims() == input.dims()
                && cached
                    .input
                    .clone()
                    .equal(input.clone())
                    .all()
                    .into_scalar::<bool>()
        };
        let values = cached.into_iter().find(same)?.values;
        let mut entries = self.entries();
        if let Some(found) = entries.iter().position(|e| Arc::ptr_eq(&e.values, &values))
            && let Some(entry) = entries.remove(found)
        {
            entries.push_front(entry);
        }
        Some(values)
    }

    /// Keeps `values` as the most recent entry, for `input`.
    pub(crate) fn insert(&self, input: Tensor<4>, values: PrefixValues) {
        let mut entries = self.entries();
        entries.push_front(Entry { input, values });
        entries.truncate(PREFIX_SLOTS);
    }

    /// The entries, locked (only ever for a few pointer moves).
    fn entries(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
