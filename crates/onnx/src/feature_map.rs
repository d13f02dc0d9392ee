//! Which value of a compiled graph is Grad-CAM's layer: the last convolutional feature map of a
//! CNN, or, in a vision transformer, the token sequence entering its last block, read as a map
//! on the patch grid.
//!
//! # Token maps
//!
//! A transformer's values are token sequences `[N, S, C]`: `h · w` patch tokens (from a patch
//! embedding whose output is the spatial map `[N, C, h, w]`) after `S − h · w` leading extra
//! tokens (the class token, register tokens). The probe (`Executor::probe`) finds the grid `h × w` from the
//! patch embedding; a token sequence of a Grad-CAM layer is then turned into the map
//! `[N, C, h, w]` by dropping the leading tokens and laying the rest out row by row, as CAM
//! tools' "reshape transform" for ViTs does ([`to_grid`]).
//!
//! The default layer of a transformer is the input of its last block (the last token sequence
//! read twice, by the block's first normalization and by its residual addition, before the
//! last attention): the class token reads the patch tokens only through attention, so the
//! gradient at the final normalization's output is zero on every patch token, and Grad-CAM
//! there is empty.

use feedbacknet_core::{CoreError, DynTensor, Result};

use crate::program::Program;

/// The most leading tokens that are not patches (the class token and register tokens).
const MAX_EXTRA_TOKENS: usize = 8;

/// The patch grid of a vision transformer: its token sequences are `extra` leading tokens,
/// then `rows · cols` patch tokens in row-major order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenGrid {
    pub rows: usize,
    pub cols: usize,
}

impl TokenGrid {
    /// Whether `dims` is a sequence of tokens on this grid, `[N, S, C]` with at most
    /// [`MAX_EXTRA_TOKENS`] leading extra tokens.
    fn holds(&self, dims: &[usize]) -> bool {
        let patches = self.rows * self.cols;
        matches!(dims, &[_, tokens, _] if (patches..=patches + MAX_EXTRA_TOKENS).contains(&tokens))
    }
}

/// Whether a value is a spatial map: `[N, C, H, W]` with more than one position.
fn spatial(shape: Option<&[usize]>) -> bool {
    shape.is_some_and(|dims| matches!(dims, &[_, _, h, w] if h * w > 1))
}

/// The probed shape of `slot`, if known.
fn shape(shapes: &[Option<Vec<usize>>], slot: usize) -> Option<&[usize]> {
    shapes.get(slot).and_then(Option::as_deref)
}

/// The patch grid, from the probed shapes (see `Executor::probe`): the last spatial map `[1, C, h, w]`
/// (the patch embedding) after which a token sequence `[1, S, C]` with `S ≥ h · w` appears.
pub(crate) fn token_grid(program: &Program, shapes: &[Option<Vec<usize>>]) -> Option<TokenGrid> {
    let in_order = || program.steps.iter().filter_map(|s| shape(shapes, s.output));
    let mut grid = None;
    for (i, dims) in in_order().enumerate() {
        let &[_, channels, rows, cols] = dims else {
            continue;
        };
        if rows * cols <= 1 {
            continue;
        }
        let candidate = TokenGrid { rows, cols };
        if in_order()
            .skip(i + 1)
            .any(|d| candidate.holds(d) && d.last() == Some(&channels))
        {
            grid = Some(candidate);
        }
    }
    grid
}

/// The slot of Grad-CAM's default layer, from the probed shapes (see `Executor::probe`).
pub(crate) fn find(
    program: &Program,
    shapes: &[Option<Vec<usize>>],
    classes: usize,
    grid: Option<TokenGrid>,
) -> Option<usize> {
    if let Some(slot) = grid.and_then(|grid| last_block_input(program, shapes, grid)) {
        return Some(slot);
    }
    last_conv_map(program, shapes, classes)
}

/// The last convolutional feature map: the spatial map that the last spatial-to-vector step
/// reads (global pooling, a flatten into fully connected layers), the output of the last
/// convolutional block. When that map is itself the classifier, a convolution with one channel
/// per logit followed by a gated activation (SqueezeNet's `conv10`), the map the classifier
/// reads is taken instead.
fn last_conv_map(
    program: &Program,
    shapes: &[Option<Vec<usize>>],
    classes: usize,
) -> Option<usize> {
    let pooled = program.steps.iter().rev().find_map(|step| {
        let input = *step.inputs.first()?;
        // A step whose value depends on shapes alone (`Shape`) pools nothing.
        let reads_values = step.op.differentiable_input(0);
        let pools = spatial(shape(shapes, input)) && !spatial(shape(shapes, step.output));
        (reads_values && pools).then_some(input)
    })?;
    Some(classifier_input(program, pooled, classes).unwrap_or(pooled))
}

/// The input of a transformer's last block: the last token sequence written before the last
/// attention step (or before the end, without one) that two steps read.
fn last_block_input(
    program: &Program,
    shapes: &[Option<Vec<usize>>],
    grid: TokenGrid,
) -> Option<usize> {
    let readers = program.readers();
    let end = program
        .steps
        .iter()
        .rposition(|s| s.op.name() == "Attention")
        .unwrap_or(program.steps.len());
    program.steps.iter().take(end).rev().find_map(|step| {
        let slot = step.output;
        let tokens = shape(shapes, slot).is_some_and(|dims| grid.holds(dims));
        (tokens && readers.get(slot).is_some_and(|&r| r >= 2)).then_some(slot)
    })
}

/// If `slot` is `act(conv(x))` with one conv channel per class, the slot of `x`.
fn classifier_input(program: &Program, slot: usize, classes: usize) -> Option<usize> {
    let producer = |slot: usize| program.writer(slot).and_then(|i| program.steps.get(i));
    let act = producer(slot)?;
    act.gate?;
    let conv = producer(*act.inputs.first()?)?;
    match &conv.op {
        crate::ops::Op::Conv2d { weight, .. } if weight.dims()[0] == classes => {
            conv.inputs.first().copied()
        }
        _ => None,
    }
}

/// A token sequence `[N, S, C]` (or one sample's, `[S, C]`) as the map `[N, C, rows, cols]` of
/// its last `rows · cols` tokens; any other value unchanged.
pub(crate) fn to_grid(value: DynTensor, grid: TokenGrid) -> Result<DynTensor> {
    let tokens = match value {
        DynTensor::R3(tokens) => tokens,
        // One sample's tokens `[S, C]` (a simplified export that runs its MLP on them).
        DynTensor::R2(tokens) if grid.holds(&[1, tokens.dims()[0], tokens.dims()[1]]) => {
            tokens.unsqueeze_dim(0)
        }
        other => return Ok(other),
    };
    let [batch, length, channels] = tokens.dims();
    let patches = grid.rows * grid.cols;
    if !grid.holds(&[batch, length, channels]) {
        return Err(CoreError::Shape {
            context: "token sequence on the patch grid".into(),
            expected: format!(
                "[batch, {patches} to {} tokens, channels]",
                patches + MAX_EXTRA_TOKENS
            ),
            got: vec![batch, length, channels],
        });
    }
    let map = tokens
        .narrow(1, length - patches, patches)
        .swap_dims(1, 2)
        .reshape([batch, channels, grid.rows, grid.cols]);
    Ok(DynTensor::R4(map))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;

    #[test]
    fn to_grid_drops_the_leading_tokens_and_lays_the_patches_out_row_by_row() {
        let device = Device::flex();
        // One class token (value 100 + c), then 2 x 3 patches whose channel c holds 10 p + c.
        let mut values = vec![100.0, 101.0];
        for p in 0..6 {
            values.extend([10.0 * p as f32, 10.0 * p as f32 + 1.0]);
        }
        let tokens = Tensor::<3>::from_data(TensorData::new(values, [1, 7, 2]), &device);
        let grid = TokenGrid { rows: 2, cols: 3 };
        let map = to_grid(DynTensor::R3(tokens), grid)
            .expect("a token sequence")
            .into4("map")
            .expect("4-d");
        assert_eq!(map.dims(), [1, 2, 2, 3]);
        let read: Vec<f32> = map.into_data().try_to_vec().expect("f32");
        let expected: Vec<f32> = (0..2)
            .flat_map(|c| (0..6).map(move |p| 10.0 * p as f32 + c as f32))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn to_grid_refuses_a_sequence_off_the_grid() {
        let device = Device::flex();
        let tokens = Tensor::<3>::zeros([1, 3, 4], &device);
        let grid = TokenGrid { rows: 2, cols: 2 };
        assert!(to_grid(DynTensor::R3(tokens), grid).is_err());
    }
}
