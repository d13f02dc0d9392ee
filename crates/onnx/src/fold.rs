//! Rewrites of the compiled program that change no value the user can observe.
//!
//! A constant-zero `Pad` of the spatial axes that only a convolution reads is the convolution's
//! own padding: MobileNet-style exports pad explicitly before each strided depthwise convolution
//! (TensorFlow's `SAME`). Folded, the forward pass skips a copy of the padded map and the reverse
//! pass the crop of its gradient (the activation before it then receives a contiguous gradient).

use std::collections::HashSet;

use burn::tensor::ops::{ConvOptions, PadMode};

use crate::{ops::Op, program::Program};

/// Folds every constant-zero spatial `Pad` read by one convolution alone into that
/// convolution's padding (its backward and Winograd weights are derived again for it).
pub(crate) fn fold_pads(program: &mut Program) {
    let readers = program.readers();
    // (pad step, convolution step, the pad's input, the convolution padded).
    let folds: Vec<(usize, usize, usize, Op)> = (program.steps.iter().enumerate())
        .filter_map(|(pad, step)| {
            let extra = spatial_zero_pad(&step.op)?;
            let (out, input) = (step.output, *step.inputs.first()?);
            if readers.get(out) != Some(&1) || out == program.output {
                return None;
            }
            let conv = program
                .steps
                .iter()
                .position(|s| s.inputs.first() == Some(&out))?;
            Some((
                pad,
                conv,
                input,
                padded_conv(&program.steps.get(conv)?.op, extra)?,
            ))
        })
        .collect();
    let mut folded = HashSet::new();
    for (pad, conv, input, op) in folds {
        // The convolution was found as a step whose first input is the pad's output.
        if let Some(step) = program.steps.get_mut(conv)
            && let Some(first) = step.inputs.first_mut()
        {
            step.op = op;
            *first = input;
            folded.insert(pad);
        }
    }
    let mut index = 0;
    program.steps.retain(|_| {
        let keep = !folded.contains(&index);
        index += 1;
        keep
    });
}

/// The `[(top, bottom), (left, right)]` of a `Pad` that adds zeros on the last two axes of a
/// rank-4 value only.
fn spatial_zero_pad(op: &Op) -> Option<[(usize, usize); 2]> {
    let Op::Pad {
        pads,
        mode: PadMode::Constant(value),
    } = op
    else {
        return None;
    };
    match pads.as_slice() {
        [(0, 0), (0, 0), rows, cols] if *value == 0.0 => Some([*rows, *cols]),
        _ => None,
    }
}

/// `op` with `extra` added to its padding, if it is a convolution.
fn padded_conv(op: &Op, extra: [(usize, usize); 2]) -> Option<Op> {
    let Op::Conv2d {
        weight,
        bias,
        options,
        ..
    } = op
    else {
        return None;
    };
    let [(t, b), (l, r)] = options.padding;
    let padding = [
        (t + extra[0].0, b + extra[0].1),
        (l + extra[1].0, r + extra[1].1),
    ];
    let options =
        ConvOptions::new_with_padding(options.stride, padding, options.dilation, options.groups);
    Some(Op::conv2d(weight.clone(), bias.clone(), options))
}

#[cfg(all(test, feature = "flex"))] // the test runs the program on flex
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};
    use feedbacknet_core::DynTensor;

    use super::*;
    use crate::program::Step;

    /// Runs the steps of `program` in order on `x` (slot 0).
    fn run(program: &Program, x: &Tensor<4>) -> Tensor<4> {
        let mut values: Vec<Option<DynTensor>> = vec![None; program.slots];
        values[program.input] = Some(DynTensor::R4(x.clone()));
        for step in &program.steps {
            let inputs = step
                .inputs
                .iter()
                .map(|&s| values[s].clone().expect("computed"));
            let out = step.op.run(inputs.collect()).expect("runs");
            values[step.output] = Some(out);
        }
        match values[program.output].take() {
            Some(DynTensor::R4(y)) => y,
            _ => panic!("a rank-4 output"),
        }
    }

    fn step(op: Op, inputs: Vec<usize>, output: usize) -> Step {
        Step {
            name: format!("step{output}"),
            op,
            inputs,
            output,
            gate: None,
            release: Vec::new(),
        }
    }

    fn conv(weight: Tensor<4>, stride: usize, padding: [(usize, usize); 2], groups: usize) -> Op {
        let options = ConvOptions::new_with_padding([stride; 2], padding, [1, 1], groups);
        Op::Conv2d {
            backward: Default::default(),
            winograd: None,
            weight,
            bias: None,
            options,
        }
    }

    fn pad(pads: [(usize, usize); 2], value: f32) -> Op {
        Op::Pad {
            pads: vec![(0, 0), (0, 0), pads[0], pads[1]],
            mode: PadMode::Constant(value),
        }
    }

    #[test]
    fn a_zero_pad_read_by_a_convolution_alone_becomes_its_padding() {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([2, 8, 13, 11], normal, &device);
        let depthwise = Tensor::<4>::random([8, 1, 3, 3], normal, &device);
        let dense = Tensor::<4>::random([4, 8, 3, 3], normal, &device);
        // input 0 → pad → 1 → depthwise (stride 2) → 2 → pad → 3 → dense (padded 1) → 4;
        // then a non-zero pad (5) and a zero pad read twice (6, by the add into 7).
        let steps = vec![
            step(pad([(0, 1), (0, 1)], 0.0), vec![0], 1),
            step(conv(depthwise, 2, [(0, 0), (0, 0)], 8), vec![1], 2),
            step(pad([(2, 0), (1, 1)], 0.0), vec![2], 3),
            step(conv(dense, 1, [(1, 1), (1, 1)], 1), vec![3], 4),
            step(pad([(1, 1), (1, 1)], 0.5), vec![4], 5),
            step(pad([(1, 0), (0, 1)], 0.0), vec![5], 6),
            step(Op::Binary(feedbacknet_core::BinaryOp::Add), vec![6, 6], 7),
        ];
        let mut program = Program {
            steps,
            constants: Vec::new(),
            slots: 8,
            input: 0,
            output: 7,
            input_shape: vec![None; 4],
            channels_last: Vec::new(),
            gate_count: 0,
        };
        let before = run(&program, &x);
        fold_pads(&mut program);
        let kinds: Vec<&str> = program.steps.iter().map(|s| s.op.name()).collect();
        assert_eq!(kinds, ["Conv", "Conv", "Pad", "Pad", "Add"]);
        let Op::Conv2d { options, .. } = &program.steps[1].op else {
            panic!("a convolution");
        };
        assert_eq!(options.padding, [(3, 1), (2, 2)]);
        let after = run(&program, &x);
        assert_eq!(before.dims(), after.dims());
        // Relative to the output's scale: the folded convolutions may take other kernels,
        // which round differently.
        let scale: f32 = before.clone().abs().max().into_scalar();
        let diff: f32 = before.sub(after).abs().max().into_scalar();
        assert!(
            diff < 1e-5 * scale.max(1.0),
            "folding changed the output by {diff} (scale {scale})"
        );
    }
}
