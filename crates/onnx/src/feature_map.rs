//! Which value of a compiled graph is its last convolutional feature map (Grad-CAM's layer).

use feedbacknet_core::DynTensor;

use crate::{ops::Op, program::Program};

/// Whether a value is a spatial map: `[N, C, H, W]` with more than one position.
fn spatial(value: Option<&DynTensor>) -> bool {
    value.is_some_and(|v| {
        let d = v.dims();
        d.len() == 4 && d[2] * d[3] > 1
    })
}

/// The slot of the last convolutional feature map, from the values of a probe forward pass.
///
/// It is the spatial map that the last spatial-to-vector step reads (global pooling, a
/// flatten into fully connected layers): the output of the last convolutional block. When
/// that map is itself the classifier, a convolution with one channel per logit followed by a
/// gated activation (SqueezeNet's `conv10`), the map the classifier reads is taken instead.
pub(crate) fn find(
    program: &Program,
    values: &[Option<DynTensor>],
    classes: usize,
) -> Option<usize> {
    let pooled = program.steps.iter().rev().find_map(|step| {
        let input = *step.inputs.first()?;
        // A step whose value depends on shapes alone (`Shape`) pools nothing.
        let reads_values = step.op.differentiable_input(0);
        (reads_values && spatial(values[input].as_ref()) && !spatial(values[step.output].as_ref()))
            .then_some(input)
    })?;
    Some(classifier_input(program, pooled, classes).unwrap_or(pooled))
}

/// If `slot` is `act(conv(x))` with one conv channel per class, the slot of `x`.
fn classifier_input(program: &Program, slot: usize, classes: usize) -> Option<usize> {
    let producer = |slot: usize| program.writer(slot).map(|i| &program.steps[i]);
    let act = producer(slot)?;
    act.gate?;
    let conv = producer(*act.inputs.first()?)?;
    match &conv.op {
        Op::Conv2d { weight, .. } if weight.dims()[0] == classes => conv.inputs.first().copied(),
        _ => None,
    }
}
