//! The compiled form of an ONNX graph: a flat list of [`Step`]s over numbered value slots.
//!
//! Every pass shares this data: `compile` writes it, `fold` rewrites it, `execute` runs it,
//! `reverse` walks it backwards, `head` and `feature_map` read its structure.

use feedbacknet_core::DynTensor;

use feedbacknet_core::GateGranularity;

use crate::{channel_gates::GateLayout, ops::Op};

/// One step of a compiled program.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Node name (as renamed by onnx-ir).
    pub name: String,
    pub op: Op,
    /// Value slots read by the op, in order.
    pub inputs: Vec<usize>,
    /// Value slot written.
    pub output: usize,
    /// Gate site index, for gated activations.
    pub gate: Option<usize>,
    /// Slots no longer needed after this step.
    pub release: Vec<usize>,
}

/// A compiled ONNX graph.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub constants: Vec<(usize, DynTensor)>,
    pub slots: usize,
    pub input: usize,
    pub output: usize,
    /// Declared input shape (dimensions that are unknown are `None`).
    pub input_shape: Vec<Option<usize>>,
    /// Per value slot, whether it is a channels-last map `[N, H, W, C]` (see `layout`).
    pub channels_last: Vec<bool>,
    pub gate_count: usize,
}

impl Program {
    /// How the gates of `step` (a gated activation) lie on its value, in a gate set of
    /// `granularity` (attention heads: one gate per head, see `head_gates`).
    pub fn gate_layout(&self, step: &Step, granularity: GateGranularity) -> GateLayout {
        let kind = step.op.gated_activation().and_then(|act| act.gate_kind());
        GateLayout::of(kind, granularity, self.writes_channels_last(step))
    }

    /// Whether `step` writes a channels-last map (see `layout`).
    pub fn writes_channels_last(&self, step: &Step) -> bool {
        self.channels_last.get(step.output) == Some(&true)
    }

    /// The index of the step that writes `slot`, if a step does.
    pub fn writer(&self, slot: usize) -> Option<usize> {
        self.steps.iter().position(|s| s.output == slot)
    }

    /// Per value slot, how many step inputs read it (a slot past `slots`, which the compiler
    /// never writes, is not counted).
    pub fn readers(&self) -> Vec<usize> {
        let mut readers = vec![0usize; self.slots];
        for step in &self.steps {
            for &slot in &step.inputs {
                if let Some(count) = readers.get_mut(slot) {
                    *count += 1;
                }
            }
        }
        readers
    }

    /// The steps (in program order) whose outputs depend on the input and the constants only,
    /// through no gate: their values are the same for every gate setting.
    pub fn gate_free_prefix(&self) -> Vec<usize> {
        let mut free = vec![false; self.slots];
        let mark = |free: &mut Vec<bool>, slot: usize| {
            if let Some(flag) = free.get_mut(slot) {
                *flag = true;
            }
        };
        mark(&mut free, self.input);
        for &(slot, _) in &self.constants {
            mark(&mut free, slot);
        }
        let mut prefix = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            if step.gate.is_none() && step.inputs.iter().all(|&s| free.get(s) == Some(&true)) {
                mark(&mut free, step.output);
                prefix.push(index);
            }
        }
        prefix
    }

    /// Marks, for each step, the slots whose last reader it is (run once the steps are final).
    pub fn plan_releases(&mut self) {
        let mut last_use = vec![None; self.slots];
        for (i, step) in self.steps.iter().enumerate() {
            for &slot in &step.inputs {
                if let Some(last) = last_use.get_mut(slot) {
                    *last = Some(i);
                }
            }
        }
        for (slot, last) in last_use.into_iter().enumerate() {
            if let Some(step) = last.and_then(|i| self.steps.get_mut(i))
                && slot != self.output
            {
                step.release.push(slot);
            }
        }
    }
}
