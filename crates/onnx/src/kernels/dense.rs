//! Dense stride-1 convolutions (one group, dilation 1, symmetric padding below the kernel size)
//! on flex buffers, as `kernel rows` matrix products without an im2col copy.
//!
//! Each input plane is zero-padded to `Hp × Wp` and read as one flat row, so an output at flat
//! position `p = oh · Wp + ow` needs the inputs at `p + ky · Wp + kx`. The input is copied once
//! per kernel column `kx`, shifted by `kx` (`C · KW` rows, the samples of a batch side by
//! side); kernel row `ky` is then a plain product of the `[O, C · KW]` weights of that row with
//! those rows read from column `ky · Wp` on, accumulated into one `[O, N · Hp · Wp]` result.
//! The padding columns and rows of that result are computed too, and dropped.
//!
//! Measured on SqueezeNet 1.1's 3×3 expand layers (2 cores, min of 15 calls): at 55×55 and
//! 27×27 this beats both flex's im2col convolution and its transposed convolution (e.g. 16 → 64
//! channels at 55×55: 0.8-1.2 ms against 1.4-1.8 and 1.7-3.0 ms); at 13×13 and batch 1 the
//! im2col convolution wins, so small outputs are left to it. Input gradients stay flex's
//! transposed convolution, which is faster there (its products are `O` deep, these `C · KW`).

use std::mem::MaybeUninit;

use burn::tensor::Tensor;
use feedbacknet_core::flex::{buffer, each_plane, float, optional_buffer, written};

/// Below this many multiply-adds a product runs on one thread (flex's own threshold).
const PARALLEL_MACS: usize = 192 * 192 * 192;

/// Below this many result columns (output pixels of the batch, padding columns included) flex's
/// im2col convolution is faster (measured on SqueezeNet's 13×13 expand layers at batch 1).
const MIN_COLUMNS: usize = 512;

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

    /// Rows of the shifted copy (and the depth of each product): `C · KW`.
    fn depth(&self) -> usize {
        self.channels * self.kernel[1]
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
/// `None` if `x` and `weight` are not flex tensors, the convolution does not fit, or its output
/// is too small to pay.
pub(crate) fn conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    pad: [usize; 2],
) -> Option<Tensor<4>> {
    let geometry = Geometry::new(x.dims(), weight.dims(), pad)?;
    if geometry.result_columns() < MIN_COLUMNS {
        return None;
    }
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let bias = optional_buffer(bias)?;
    let bias: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let shifted = shifted_copy(px.storage(), &geometry);
    let result = products(&shifted, pw.storage(), &geometry);
    let out = crop(&result, bias, &geometry);
    let [oh, ow] = geometry.output;
    Some(float(out, [geometry.batch, geometry.outputs, oh, ow]))
}

/// The `C · KW` rows `(c, kx)`: every sample's zero-padded plane of channel `c`, shifted left
/// by `kx` (zeros shifted in at the end).
fn shifted_copy(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (plane, columns) = (g.plane(), g.columns());
    let [h, w] = g.input;
    let [_, wp] = g.padded;
    let [pt, pl] = g.pad;
    let kw = g.kernel[1];
    let mut shifted = vec![0.0f32; g.depth() * columns];
    // The padded planes first (one per sample and channel), then their shifts.
    let mut planes = vec![0.0f32; g.batch * g.channels * plane];
    each_plane(&mut planes, plane, |index, padded| {
        let source = &x[index * h * w..][..h * w];
        for (r, row) in source.chunks_exact(w).enumerate() {
            padded[(pt + r) * wp + pl..][..w].copy_from_slice(row);
        }
    });
    let rows = shifted.chunks_exact_mut(columns);
    for (r, row) in rows.enumerate() {
        let (c, kx) = (r / kw, r % kw);
        for n in 0..g.batch {
            let padded = &planes[(n * g.channels + c) * plane..][..plane];
            row[n * plane..][..plane - kx].copy_from_slice(&padded[kx..]);
        }
    }
    shifted
}

/// `Σ_ky W[ky] · shifted[:, ky · Wp ..]`: the `[O, result_columns]` result, where `W[ky]` is the
/// `[O, C · KW]` matrix of kernel row `ky`, `(c, kx)` ordered as the shifted rows.
fn products(shifted: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let (depth, columns, result_columns) = (g.depth(), g.columns(), g.result_columns());
    let mut result = vec![0.0f32; g.outputs * result_columns];
    let macs = g.outputs * depth * result_columns;
    let parallelism = if macs >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // Kernel row `ky`'s `[O, C · KW]` matrix is `rows[ky]`: the weight read once, in order.
    let matrix = g.outputs * depth;
    let mut rows = vec![0.0f32; kh * matrix];
    for (i, kernel) in weight.chunks_exact(kh * kw).enumerate() {
        for (ky, taps) in kernel.chunks_exact(kw).enumerate() {
            rows[ky * matrix + i * kw..][..kw].copy_from_slice(taps);
        }
    }
    for (ky, row_weight) in rows.chunks_exact(matrix).enumerate() {
        let rhs = &shifted[ky * g.padded[1]..];
        debug_assert!(rhs.len() >= (depth - 1) * columns + result_columns);
        // SAFETY: `result` is `[outputs, result_columns]`, `row_weight` is `[outputs, depth]`,
        // both row-major; `rhs` is read at `r · columns + j` for `r < depth` and
        // `j < result_columns`, which stays inside `shifted` (its rows are `columns` long and
        // `ky · Wp + result_columns ≤ columns`). No two of them alias.
        unsafe {
            gemm::gemm(
                g.outputs,
                result_columns,
                depth,
                result.as_mut_ptr(),
                1,
                result_columns as isize,
                ky > 0,
                row_weight.as_ptr(),
                1,
                depth as isize,
                rhs.as_ptr(),
                1,
                columns as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
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
