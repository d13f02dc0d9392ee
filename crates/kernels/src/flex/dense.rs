//! Dense stride-1 convolutions (one group, dilation 1, symmetric padding below the kernel size)
//! on flex buffers, as `kernel columns` matrix products without an im2col copy.
//!
//! Each input plane is zero-padded to `Hp × Wp` and read as one flat row, so an output at flat
//! position `p = oh · Wp + ow` needs the inputs at `p + ky · Wp + kx`. The input is copied once
//! per kernel row `ky`, shifted by `ky · Wp` (`C · KH` rows, the samples of a batch side by
//! side); kernel column `kx` is then a plain product of the `[O, C · KH]` weights of that column
//! (read from the weight in place, `KW` apart) with those rows read from column `kx` on,
//! accumulated into one `[O, N · Hp · Wp]` result. The padding columns and rows of that result
//! are computed too, and dropped. The products are split over the thread pool by hand
//! ([`super::product`]).
//!
//! The input gradient of such a convolution is one too (of the output gradient, with the
//! channel-swapped, tap-reversed weight; see `Op::Conv2d`). The 3×3 ones with at least 8
//! channels each way go to the Winograd kernel instead (`super::winograd`), where the model
//! transformed their weights.
//!
//! Measured on SqueezeNet 1.1's 3×3 expand layers (2 cores, min of 30 calls, on a pool worker):
//! 70-77 GMAC/s at 13×13, 27×27 and 55×55, against flex's im2col convolution at 36-19 GMAC/s
//! (64 → 256 channels at 13×13: 0.34 against 0.69 ms; 16 → 64 at 55×55: 0.36 against 1.46 ms).

use std::mem::MaybeUninit;

use super::buffer::{buffer, each_plane, float, optional_buffer, written};
use burn::tensor::Tensor;

use super::product::{Matrix, Output, product};

/// The geometry of one dense stride-1 convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    channels: usize,
    outputs: usize,
    /// Kernel rows and columns.
    kernel: [usize; 2],
    /// Padded input rows and columns.
    padded: [usize; 2],
    /// Output rows and columns.
    output: [usize; 2],
    /// Top and left padding (bottom and right are the same).
    pad: [usize; 2],
    /// Input rows and columns.
    input: [usize; 2],
}

impl Geometry {
    fn new(x_dims: [usize; 4], w_dims: [usize; 4], pad: [usize; 2]) -> Option<Self> {
        let [batch, channels, h, w] = x_dims;
        let [outputs, per_group, kh, kw] = w_dims;
        let padded = [h + 2 * pad[0], w + 2 * pad[1]];
        let fits = per_group == channels
            && pad[0] < kh
            && pad[1] < kw
            && padded[0] >= kh
            && padded[1] >= kw;
        let any_empty = [batch, channels, outputs, h, w, kh, kw].contains(&0);
        (fits && !any_empty).then(|| Self {
            batch,
            channels,
            outputs,
            kernel: [kh, kw],
            padded,
            output: [padded[0] - kh + 1, padded[1] - kw + 1],
            pad,
            input: [h, w],
        })
    }

    /// Elements of one padded plane.
    fn plane(&self) -> usize {
        self.padded[0] * self.padded[1]
    }

    /// Rows of the shifted copy (and the depth of each product): `C · KH`.
    fn depth(&self) -> usize {
        self.channels * self.kernel[0]
    }

    /// The length of a row of the shifted copy: every padded plane of the batch, and room for
    /// the last product to read `KW - 1` columns past them.
    fn row_len(&self) -> usize {
        self.columns() + self.kernel[1] - 1
    }

    /// Columns of the shifted copy: every padded plane of the batch.
    fn columns(&self) -> usize {
        self.batch * self.plane()
    }

    /// Columns of the result: up to the last output row of the last sample.
    fn result_columns(&self) -> usize {
        (self.batch - 1) * self.plane() + self.output[0] * self.padded[1]
    }
}

/// `conv2d(x, weight, bias)` at stride 1 with padding `pad` (top = bottom, left = right), or
/// `None` if `x` and `weight` are not flex tensors or the convolution does not fit.
pub(crate) fn conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    pad: [usize; 2],
) -> Option<Tensor<4>> {
    let geometry = Geometry::new(x.dims(), weight.dims(), pad)?;
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let bias = optional_buffer(bias)?;
    let bias: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let shifted = shifted_copy(px.storage(), &geometry);
    let result = products(&shifted, pw.storage(), &geometry);
    let out = crop(&result, bias, &geometry);
    let [oh, ow] = geometry.output;
    Some(float(out, [geometry.batch, geometry.outputs, oh, ow]))
}

/// The `C · KH` rows `(c, ky)`, each [`Geometry::row_len`] long: every sample's zero-padded
/// plane of channel `c` from its row `ky` on (zeros after it). Each element is written once:
/// the padding as zeros, the rest copied.
fn shifted_copy(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (plane, row_len) = (g.plane(), g.row_len());
    let [h, w] = g.input;
    let [_, wp] = g.padded;
    let [pt, pl] = g.pad;
    let kh = g.kernel[0];
    let zero = MaybeUninit::new(0.0f32);
    let fill = |r: usize, row: &mut [MaybeUninit<f32>]| {
        let (c, ky) = (r / kh, r % kh);
        let (planes, tail) = row.split_at_mut(g.batch * plane);
        for (n, dst) in planes.chunks_exact_mut(plane).enumerate() {
            let source = &x[(n * g.channels + c) * h * w..][..h * w];
            for (at, line) in dst.chunks_exact_mut(wp).enumerate() {
                // Padded row `at + ky` holds input row `at + ky − pt`, if there is one.
                let input_row = (at + ky).checked_sub(pt).filter(|&i| i < h);
                let Some(i) = input_row else {
                    line.fill(zero);
                    continue;
                };
                let (left, rest) = line.split_at_mut(pl);
                let (middle, right) = rest.split_at_mut(w);
                left.fill(zero);
                for (d, &v) in middle.iter_mut().zip(&source[i * w..][..w]) {
                    d.write(v);
                }
                right.fill(zero);
            }
        }
        tail.fill(zero);
    };
    // SAFETY: `fill` writes every element of each row: every padded line of every plane, then
    // the tail after the planes.
    unsafe { written(g.depth() * row_len, |out| each_plane(out, row_len, fill)) }
}

/// `Σ_kx W[kx] · shifted[:, kx ..]`: the `[O, result_columns]` result, where `W[kx]` is the
/// `[O, C · KH]` matrix of kernel column `kx`, read from the weight in place (`(c, ky)`
/// ordered as the shifted rows, `KW` apart).
fn products(shifted: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let (depth, row_len, result_columns) = (g.depth(), g.row_len(), g.result_columns());
    let shape = [g.outputs, result_columns, depth];
    let kernel_column = |kx: usize| {
        let lhs = Matrix::strided(&weight[kx..], g.channels * kh * kw, kw);
        // Rows `row_len` apart from column `kx` on: `kx + result_columns ≤ row_len`.
        let rhs = Matrix::new(&shifted[kx..], row_len);
        (lhs, rhs)
    };
    // SAFETY: the first kernel column's product writes the whole `[O, result_columns]` result.
    let mut result = unsafe {
        written(g.outputs * result_columns, |out| {
            let (lhs, rhs) = kernel_column(0);
            product(Output::overwrite(out, result_columns), lhs, rhs, shape);
        })
    };
    for kx in 1..kw {
        let (lhs, rhs) = kernel_column(kx);
        product(Output::add_to(&mut result, result_columns), lhs, rhs, shape);
    }
    result
}

/// The outputs out of the result (dropping its padding columns and rows), plus the bias.
fn crop(result: &[f32], bias: Option<&[f32]>, g: &Geometry) -> Vec<f32> {
    let [oh, ow] = g.output;
    let [_, wp] = g.padded;
    let (plane, result_columns) = (g.plane(), g.result_columns());
    let crop_plane = |i: usize, dst: &mut [MaybeUninit<f32>]| {
        let (n, o) = (i / g.outputs, i % g.outputs);
        let shift = bias.map_or(0.0, |b| b[o]);
        let source = &result[o * result_columns + n * plane..];
        for (r, row) in dst.chunks_exact_mut(ow).enumerate() {
            for (d, &s) in row.iter_mut().zip(&source[r * wp..][..ow]) {
                d.write(s + shift);
            }
        }
    };
    // SAFETY: every output plane (`oh` rows of `ow`, the output is not empty) is cropped.
    unsafe {
        written(g.batch * g.outputs * oh * ow, |out| {
            each_plane(out, oh * ow, crop_plane)
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, module::conv2d, ops::ConvOptions};

    use super::*;

    #[test]
    fn dense_convolutions_equal_burn() {
        let device = Device::flex();
        // Square and non-square kernels, padding 0 to kernel − 1, a batch of 2, odd sizes.
        for ([batch, c, h, w], [o, kh, kw], pad) in [
            ([1, 5, 13, 13], [7, 3, 3], [1, 1]),
            ([2, 3, 9, 11], [4, 3, 3], [0, 0]),
            ([2, 4, 8, 6], [3, 3, 1], [2, 0]),
            ([1, 2, 6, 7], [5, 5, 3], [1, 2]),
        ] {
            let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let weight =
                Tensor::<4>::random([o, c, kh, kw], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &device);
            let ours = conv(&x, &weight, Some(&bias), pad).expect("a dense convolution");
            let options = ConvOptions::new([1, 1], pad, [1, 1], 1);
            let theirs = conv2d(x, weight, Some(bias), options);
            assert_eq!(ours.dims(), theirs.dims());
            let worst: f32 = ours.sub(theirs).abs().max().into_scalar();
            assert!(
                worst < 1e-4,
                "{batch}x{c}x{h}x{w} by {o}x{kh}x{kw} pad {pad:?}: {worst}"
            );
        }
    }
}
