//! Depthwise convolutions (one filter per channel, dilation 1) on flex buffers: the stride-1
//! forward and the input gradient at any stride, as long contiguous multiply-adds.
//!
//! Each plane is copied into a zero-padded plane that is read as one flat array, so that every
//! kernel tap is one multiply-add over the whole plane (the padding columns are computed too
//! and dropped). The input gradient is the correlation of the output gradient, spread out by
//! the stride (zeros between), with the flipped kernel.
//!
//! The strided forward is left to Burn's own depthwise kernel, which is faster there.

use burn::tensor::{Tensor, ops::ConvOptions};
use feedbacknet_core::flex::{buffer, chunked, float};

/// The geometry of one depthwise convolution.
struct Geometry {
    /// `[batch, channels]`
    planes: [usize; 2],
    /// Input rows and columns.
    input: [usize; 2],
    /// Output rows and columns.
    output: [usize; 2],
    /// Kernel rows and columns.
    kernel: [usize; 2],
    /// Row and column stride.
    stride: [usize; 2],
    /// Padding: top, bottom, left, right.
    pad: [usize; 4],
}

impl Geometry {
    /// The geometry of `x_dims` convolved with `weight` into `output`, if depthwise with
    /// dilation 1.
    fn new(
        x_dims: [usize; 4],
        weight: &Tensor<4>,
        options: &ConvOptions<2>,
        output: [usize; 2],
    ) -> Option<Self> {
        let [batch, channels, h, w] = x_dims;
        let [c_out, per_group, kh, kw] = weight.dims();
        let depthwise = options.groups == channels && c_out == channels && per_group == 1;
        if !depthwise || options.dilation != [1, 1] || options.stride.contains(&0) {
            return None;
        }
        let [(pt, pb), (pl, pr)] = options.padding;
        Some(Self {
            planes: [batch, channels],
            input: [h, w],
            output,
            kernel: [kh, kw],
            stride: options.stride,
            pad: [pt, pb, pl, pr],
        })
    }

    /// Whether a plane or a kernel has no entries (left to Burn).
    fn is_empty(&self) -> bool {
        [self.input, self.output, self.kernel]
            .iter()
            .flatten()
            .any(|&n| n == 0)
            || self.plane_count() == 0
    }

    fn plane_count(&self) -> usize {
        self.planes[0] * self.planes[1]
    }

    /// The padding under which the input gradient is the stride-1 correlation of the output
    /// gradient, spread out by the stride, with the flipped kernel: `k − 1 − p` before, and
    /// what makes the input's size after (`None` for a padding of `k` or more).
    fn transposed_pads(&self) -> Option<[usize; 4]> {
        let [pt, _, pl, _] = self.pad;
        let axis = |i: usize, p: usize| {
            let (n, k, s, o) = (
                self.input[i],
                self.kernel[i],
                self.stride[i],
                self.output[i],
            );
            let before = (k - 1).checked_sub(p)?;
            let spread = o.checked_sub(1)? * s + 1;
            let after = (n + k - 1).checked_sub(spread + before)?;
            Some((before, after))
        };
        let ((top, bottom), (left, right)) = (axis(0, pt)?, axis(1, pl)?);
        Some([top, bottom, left, right])
    }
}

/// Runs `f(plane index, plane)` over `out`, cut in planes of `plane_len`, in parallel.
fn each_plane(out: &mut [f32], plane_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    chunked(out, plane_len, |start, part| {
        for (i, plane) in part.chunks_mut(plane_len).enumerate() {
            f(start / plane_len + i, plane);
        }
    });
}

/// `x` (`h`x`w`) with its entries `stride` apart, zero-padded by `pads` (top, bottom, left,
/// right), and the padded row length.
fn padded_plane(
    x: &[f32],
    [h, w]: [usize; 2],
    [pt, pb, pl, pr]: [usize; 4],
    [sh, sw]: [usize; 2],
) -> (Vec<f32>, usize) {
    let (hp, wp) = ((h - 1) * sh + 1 + pt + pb, (w - 1) * sw + 1 + pl + pr);
    let mut padded = vec![0.0f32; hp * wp];
    for (i, row) in x.chunks(w).enumerate() {
        let start = (i * sh + pt) * wp + pl;
        if sw == 1 {
            padded[start..start + w].copy_from_slice(row);
        } else {
            for (d, &v) in padded[start..].iter_mut().step_by(sw).zip(row) {
                *d = v;
            }
        }
    }
    (padded, wp)
}

/// `out += w · src` over equal lengths.
#[inline(always)]
fn axpy(out: &mut [f32], src: &[f32], w: f32) {
    for (o, &v) in out.iter_mut().zip(src) {
        *o += w * v;
    }
}

/// Blocks of this many outputs stay in the L1 cache across a plane's kernel taps.
const BLOCK: usize = 1024;

/// The stride-1 correlation of a padded plane (rows of `wp`) with the `kernel` weights `wk`
/// (row-major), plus `bias`, into `out` (rows of `wp − kw + 1`).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn correlate_plane(
    padded: &[f32],
    wp: usize,
    [kh, kw]: [usize; 2],
    wk: &[f32],
    bias: f32,
    out: &mut [f32],
) {
    let ow = wp + 1 - kw;
    let rows = out.len() / ow;
    let mut acc = vec![bias; (rows - 1) * wp + ow];
    for (b, block) in acc.chunks_mut(BLOCK).enumerate() {
        for r in 0..kh {
            for q in 0..kw {
                let start = b * BLOCK + r * wp + q;
                axpy(block, &padded[start..start + block.len()], wk[r * kw + q]);
            }
        }
    }
    for (o, row) in out.chunks_mut(ow).enumerate() {
        row.copy_from_slice(&acc[o * wp..o * wp + ow]);
    }
}

/// A depthwise convolution of `x` (NCHW) as direct loops; `None` for any other convolution
/// or a tensor that is not a plain flex `f32` tensor.
pub(crate) fn conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let [batch, channels, h, w] = x.dims();
    let [kh, kw] = weight.dims()[2..] else {
        return None;
    };
    let [(pt, pb), (pl, pr)] = options.padding;
    let oh = (h + pt + pb).checked_sub(kh)? + 1;
    let ow = (w + pl + pr).checked_sub(kw)? + 1;
    let g = Geometry::new([batch, channels, h, w], weight, options, [oh, ow])?;
    if g.stride != [1, 1] || g.is_empty() {
        return None;
    }
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let pbias = match bias {
        Some(b) => Some(buffer(b)?),
        None => None,
    };
    let (xs, ws): (&[f32], &[f32]) = (px.storage(), pw.storage());
    let bs: Option<&[f32]> = pbias.as_ref().map(|p| p.storage());
    let mut y = vec![0.0f32; g.plane_count() * oh * ow];
    each_plane(&mut y, oh * ow, |p, plane| {
        let c = p % channels;
        let x = &xs[p * h * w..(p + 1) * h * w];
        let wk = &ws[c * kh * kw..(c + 1) * kh * kw];
        let bias = bs.map_or(0.0, |b| b[c]);
        let (padded, wp) = padded_plane(x, [h, w], g.pad, [1, 1]);
        correlate_plane(&padded, wp, g.kernel, wk, bias, plane);
    });
    Some(float(y, [batch, channels, oh, ow]))
}

/// The input gradient of a depthwise convolution of an `input_hw` input, given the output
/// gradient `dy`; `None` for any other convolution (or a padding of a kernel size or more).
pub(crate) fn input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    let [batch, channels, oh, ow] = dy.dims();
    let [h, w] = input_hw;
    let g = Geometry::new([batch, channels, h, w], weight, options, [oh, ow])?;
    if g.is_empty() {
        return None;
    }
    let pads = g.transposed_pads()?;
    let (pd, pw) = (buffer(dy)?, buffer(weight)?);
    let (ds, ws): (&[f32], &[f32]) = (pd.storage(), pw.storage());
    let taps = g.kernel[0] * g.kernel[1];
    let flipped: Vec<f32> = ws
        .chunks(taps)
        .flat_map(|k| k.iter().rev().copied())
        .collect();
    let mut dx = vec![0.0f32; g.plane_count() * h * w];
    each_plane(&mut dx, h * w, |p, plane| {
        let c = p % channels;
        let dy = &ds[p * oh * ow..(p + 1) * oh * ow];
        let (padded, wp) = padded_plane(dy, [oh, ow], pads, g.stride);
        correlate_plane(
            &padded,
            wp,
            g.kernel,
            &flipped[c * taps..(c + 1) * taps],
            0.0,
            plane,
        );
    });
    Some(float(dx, [batch, channels, h, w]))
}
