//! The classifier head: a convolution whose output channel `j` alone makes logit `j`
//! (SqueezeNet's `conv10` of 512 → 1000 channels, then ReLU and global average pooling). A
//! solver iteration that reads a few logits computes only those channels of it.

use crate::{ops::Op, program::Program};

/// The index of the head's convolution step, from the probed shapes (see `Executor::probe`): the
/// graph output is that convolution followed only by per-channel steps (activations, global
/// average pooling, flattening of `[N, C, 1, 1]`), each value read by the next step alone.
pub(crate) fn find(
    program: &Program,
    shapes: &[Option<Vec<usize>>],
    classes: usize,
) -> Option<usize> {
    let readers = program.readers();
    let channels = |slot: usize| shapes.get(slot)?.as_ref();
    let mut slot = program.output;
    loop {
        let index = program.writer(slot)?;
        let step = program.steps.get(index)?;
        let &[input] = step.inputs.as_slice() else {
            return None;
        };
        let dims = channels(input)?;
        let one_per_class = dims.get(1) == Some(&classes);
        match &step.op {
            Op::Conv2d {
                weight, options, ..
            } => {
                let out = channels(slot)?;
                return (options.groups == 1 && weight.dims()[0] == classes && out.len() == 4)
                    .then_some(index);
            }
            Op::Activation(_) | Op::PRelu(_) | Op::GlobalAveragePool | Op::Identity
                if one_per_class => {}
            Op::Flatten { .. } | Op::Reshape { .. }
                if one_per_class && dims.iter().skip(2).all(|&d| d == 1) => {}
            _ => return None,
        }
        if readers.get(input) != Some(&1) {
            return None;
        }
        slot = input;
    }
}
