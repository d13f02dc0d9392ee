//! Depthwise convolutions (one filter per channel, dilation 1) on flex buffers: the forward and
//! the input gradient at any stride, as long contiguous multiply-adds; and, the same way, dense
//! convolutions with few input taps per output (RGB stems).
//!
//! Each plane is copied into a zero-padded plane that is read as one flat array, so that every
//! kernel tap is one multiply-add over the whole plane (the padding columns are computed too
//! and dropped). The input gradient is the correlation of the output gradient, spread out by
//! the stride (zeros between), with the flipped kernel.
//!
//! A strided forward splits the padded plane into its stride phases first (for stride 2, the
//! even and odd rows and columns): each kernel tap then reads one phase at a shift, so it is
//! again one long multiply-add, over a quarter of the plane (MobileNet v2's first strided
//! layer, 96 channels 113×113 → 56×56: 0.74 ms against Burn's 2.7 ms). Small strided outputs
//! stay Burn's.

use super::buffer::{buffer, chunked, each_plane, float, optional_buffer};
use burn::tensor::{Tensor, ops::ConvOptions};

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

/// Buffers that a run of planes reuses: allocating them per plane cost more than the arithmetic
/// of a small plane (MobileNet v2's 960 channels of 7×7 took ~1 µs per plane, most of it in
/// the allocator, which every thread shares).
#[derive(Default)]
struct Scratch {
    /// A padded plane, or a plane's stride phases.
    padded: Vec<f32>,
    /// The correlation's accumulator.
    acc: Vec<f32>,
    /// Kernel taps `(offset, weight)`.
    taps: Vec<(usize, f32)>,
    /// One stride phase of an input gradient.
    phase: Vec<f32>,
}

/// Runs `f(plane index, plane, scratch)` over `out` cut in planes of `plane_len` elements, in
/// parallel when `out` is large, with one [`Scratch`] per parallel chunk.
fn each_plane_with_scratch(
    out: &mut [f32],
    plane_len: usize,
    f: impl Fn(usize, &mut [f32], &mut Scratch) + Sync,
) {
    chunked(out, plane_len, |start, part| {
        let mut scratch = Scratch::default();
        for (i, plane) in part.chunks_mut(plane_len).enumerate() {
            f(start / plane_len + i, plane, &mut scratch);
        }
    });
}

/// `x` (`h`x`w`) with its entries `stride` apart, zero-padded by `pads` (top, bottom, left,
/// right), into `padded`; answers the padded row length.
fn padded_plane(
    x: &[f32],
    [h, w]: [usize; 2],
    [pt, pb, pl, pr]: [usize; 4],
    [sh, sw]: [usize; 2],
    padded: &mut Vec<f32>,
) -> usize {
    let (hp, wp) = ((h - 1) * sh + 1 + pt + pb, (w - 1) * sw + 1 + pl + pr);
    padded.clear();
    padded.resize(hp * wp + SLACK, 0.0);
    spread_rows(x, w, [pt, pl], [sh, sw], wp, padded);
    wp
}

/// The rows of `x` (`w` wide) into the zeroed `padded` (rows of `wp`), their entries `stride`
/// apart, from row `pt` and column `pl` on.
fn spread_rows(
    x: &[f32],
    w: usize,
    [pt, pl]: [usize; 2],
    [sh, sw]: [usize; 2],
    wp: usize,
    padded: &mut [f32],
) {
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
}

/// `out += Σ_k w[k] · src[k]` over equal lengths: `N` taps per pass over `out`, so that each
/// output is loaded and stored once per `N` multiply-adds instead of once per one.
#[inline(always)]
fn axpy<const N: usize>(out: &mut [f32], src: [&[f32]; N], w: [f32; N]) {
    let n = out.len();
    let src: [&[f32]; N] = src.map(|s| &s[..n]);
    for (i, o) in out.iter_mut().enumerate() {
        let mut v = *o;
        for k in 0..N {
            v += w[k] * src[k][i];
        }
        *o = v;
    }
}

/// Zeros after each buffer that [`correlate_taps`] reads (a vector's lanes), so that it may
/// compute whole vectors past the last output it keeps instead of a scalar tail (most of a 7×7
/// plane's work otherwise: 61 accumulated values are 3 vectors and 13 scalars).
const SLACK: usize = 16;

/// Blocks of this many outputs stay in the L1 cache across a plane's kernel taps.
const BLOCK: usize = 1024;

/// At most this many input taps per output (`C · kh · kw`) for [`few_channel_conv`].
const FEW_TAPS: usize = 32;

/// Strided outputs smaller than this per plane are left to Burn's kernel, which is faster
/// there (MobileNet v2, 576 channels 15×15 → 7×7: 0.29 ms against 0.39; 192 channels
/// 29×29 → 14×14: 0.34 against 0.22 ms for the phases).
const STRIDED_MIN_OUTPUT: usize = 100;

/// The stride-1 correlation of the padded plane in `scratch` (rows of `wp`) with the `kernel`
/// weights `wk` (row-major), plus `bias`, into `out` (rows of `wp − kw + 1`).
fn correlate_plane(
    scratch: &mut Scratch,
    wp: usize,
    [kh, kw]: [usize; 2],
    wk: &[f32],
    bias: f32,
    out: &mut [f32],
) {
    scratch.taps.clear();
    let taps = (0..kh).flat_map(|r| (0..kw).map(move |q| (r * wp + q, wk[r * kw + q])));
    scratch.taps.extend(taps);
    let Scratch {
        padded, acc, taps, ..
    } = scratch;
    correlate_taps(padded, wp, taps, bias, out, wp + 1 - kw, acc);
}

/// `Σ w · src[offset + i]` over the `taps` `(offset, w)`, plus `bias`, on a grid of rows of
/// `row_len`; the first `ow` columns of each row into `out` (rows of `ow`). Every tap reads
/// `src` contiguously: the caller lays `src` out so that it may. `acc` is scratch space.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn correlate_taps(
    src: &[f32],
    row_len: usize,
    taps: &[(usize, f32)],
    bias: f32,
    out: &mut [f32],
    ow: usize,
    acc: &mut Vec<f32>,
) {
    let rows = out.len() / ow;
    let needed = (rows - 1) * row_len + ow;
    // Whole vectors where `src` extends far enough (the values past `needed` are dropped).
    let reach = taps.iter().map(|&(offset, _)| offset).max().unwrap_or(0);
    let len = needed
        .next_multiple_of(SLACK)
        .min(src.len().saturating_sub(reach))
        .max(needed);
    acc.clear();
    acc.resize(len, bias);
    for (b, block) in acc.chunks_mut(BLOCK).enumerate() {
        let len = block.len();
        let at = |(offset, _): (usize, f32)| &src[b * BLOCK + offset..][..len];
        let (fours, rest) = taps.as_chunks::<4>();
        for &four in fours {
            axpy(block, four.map(at), four.map(|(_, w)| w));
        }
        for &tap in rest {
            axpy(block, [at(tap)], [tap.1]);
        }
    }
    for (o, row) in out.chunks_mut(ow).enumerate() {
        row.copy_from_slice(&acc[o * row_len..o * row_len + ow]);
    }
}

/// The `sh · sw` stride phases of the zero-padded plane `x` (`h`x`w`, padded by `pt` above and
/// `pl` to the left), each `rows`x`cols`: phase `(r, c)` holds the padded entries
/// `(sh·i + r, sw·j + c)`, so that a strided correlation becomes stride-1 ones over phases.
/// Every element of `phases` (`sh · sw · rows · cols` long) is written.
fn write_phases(
    x: &[f32],
    [h, w]: [usize; 2],
    [pt, pl]: [usize; 2],
    [sh, sw]: [usize; 2],
    [rows, cols]: [usize; 2],
    phases: &mut [f32],
) {
    for (p, phase) in phases.chunks_mut(rows * cols).enumerate() {
        let (r, c) = (p / sw, p % sw);
        // The phase columns `lo..hi` read input columns `sw·j + c − pl` (the rest is padding).
        let lo = pl.saturating_sub(c).div_ceil(sw).min(cols);
        let hi = (w + pl)
            .checked_sub(c + 1)
            .map_or(0, |last| (last / sw + 1).min(cols))
            .max(lo);
        for (i, row) in phase.chunks_mut(cols).enumerate() {
            let source = (sh * i + r).checked_sub(pt).filter(|&y| y < h);
            let Some(y) = source.filter(|_| hi > lo) else {
                row.fill(0.0);
                continue;
            };
            row[..lo].fill(0.0);
            row[hi..].fill(0.0);
            let first = y * w + sw * lo + c - pl;
            copy_strided(&mut row[lo..hi], &x[first..(y + 1) * w], sw);
        }
    }
}

/// `dst[j] = src[step · j]` (a stride-2 copy as a pair loop, which vectorizes).
fn copy_strided(dst: &mut [f32], src: &[f32], step: usize) {
    if step == 2 {
        let (pairs, rest) = src.as_chunks::<2>();
        let (paired, last) = dst.split_at_mut(pairs.len().min(dst.len()));
        for (d, [v, _]) in paired.iter_mut().zip(pairs) {
            *d = *v;
        }
        if let (Some(d), Some(v)) = (last.first_mut(), rest.first()) {
            *d = *v;
        }
        return;
    }
    for (d, v) in dst.iter_mut().zip(src.iter().step_by(step)) {
        *d = *v;
    }
}

/// One axis of a strided correlation's input gradient split by stride phase: input `s·m + a`
/// (phase `a`) gets the output gradient at `m + d` through kernel tap `k`, for every `k ≡ a + p
/// (mod s)` with `d = (a + p − k) / s`. Each phase is thus a stride-1 correlation of the
/// output gradient, padded by `before` and `after`, with a quarter of the taps (stride 2, 3×3
/// kernel: 2.25 taps per input instead of the 9 of the gradient spread out by the stride).
#[derive(Debug, Clone, Copy)]
struct PhaseAxis {
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

impl PhaseAxis {
    /// Inputs in phase `a`.
    fn len(&self, a: usize) -> usize {
        self.input.saturating_sub(a).div_ceil(self.stride)
    }

    /// The taps of phase `a`: kernel index and output shift `d`.
    fn taps(&self, a: usize) -> impl Iterator<Item = (usize, isize)> + '_ {
        let s = self.stride;
        (0..self.kernel)
            .filter(move |k| k % s == (a + self.pad) % s)
            .map(move |k| (k, (a + self.pad) as isize / s as isize - (k / s) as isize))
    }

    /// Zero rows (columns) needed before and after the output gradient so that every phase's
    /// taps read inside it.
    fn pads(&self) -> (usize, usize) {
        let (mut before, mut after) = (0isize, 0isize);
        for a in (0..self.stride).filter(|&a| self.len(a) > 0) {
            for (_, d) in self.taps(a) {
                before = before.max(-d);
                after = after.max(self.len(a) as isize - 1 + d - (self.output as isize - 1));
            }
        }
        (before as usize, after as usize)
    }
}

/// The input gradient of a strided correlation (dilation 1) by stride phase: for each phase the
/// stride-1 correlation of the padded output gradient with that phase's taps, written back to
/// every `stride`-th input.
#[derive(Debug, Clone, Copy)]
struct PhaseGradient {
    rows: PhaseAxis,
    cols: PhaseAxis,
}

impl PhaseGradient {
    fn new(
        input: [usize; 2],
        output: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> Self {
        let axis = |i: usize| PhaseAxis {
            input: input[i],
            output: output[i],
            kernel: kernel[i],
            stride: stride[i],
            pad: pad[i],
        };
        Self {
            rows: axis(0),
            cols: axis(1),
        }
    }

    /// The padding of the output gradient planes: top, bottom, left, right.
    fn pads(&self) -> [usize; 4] {
        let ((t, b), (l, r)) = (self.rows.pads(), self.cols.pads());
        [t, b, l, r]
    }

    /// The padded output gradient's row length.
    fn padded_width(&self) -> usize {
        let [_, _, l, r] = self.pads();
        self.cols.output + l + r
    }

    /// The padded output gradient's plane length.
    fn padded_len(&self) -> usize {
        let [t, b, _, _] = self.pads();
        (self.rows.output + t + b) * self.padded_width()
    }

    /// One input-gradient plane `dx` from padded output-gradient planes: per phase, the taps
    /// `(ky, kx, offset within a padded plane)` go through `weights` (which pushes the
    /// `(offset, weight)` pairs that [`correlate_taps`] reads from `src`), and each phase's
    /// correlation lands on its inputs.
    fn plane(
        &self,
        src: &[f32],
        weights: impl Fn(usize, usize, usize, &mut Vec<(usize, f32)>),
        dx: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let [t, _, l, _] = self.pads();
        let wp = self.padded_width();
        let [sh, sw] = [self.rows.stride, self.cols.stride];
        // Phase `(a, b)` at `starts[a · sw + b]` of the phase buffer.
        let lens: Vec<usize> = (0..sh * sw)
            .map(|p| self.rows.len(p / sw) * self.cols.len(p % sw))
            .collect();
        let starts: Vec<usize> = lens
            .iter()
            .scan(0, |at, &n| {
                *at += n;
                Some(*at - n)
            })
            .collect();
        scratch.phase.resize(lens.iter().sum(), 0.0);
        for p in (0..sh * sw).filter(|&p| lens[p] > 0) {
            let (a, b) = (p / sw, p % sw);
            scratch.taps.clear();
            for (ky, dy) in self.rows.taps(a) {
                for (kx, dx) in self.cols.taps(b) {
                    let row = (t as isize + dy) as usize;
                    let offset = row * wp + (l as isize + dx) as usize;
                    weights(ky, kx, offset, &mut scratch.taps);
                }
            }
            let Scratch {
                acc, taps, phase, ..
            } = scratch;
            let out = &mut phase[starts[p]..][..lens[p]];
            correlate_taps(src, wp, taps, 0.0, out, self.cols.len(b), acc);
        }
        self.interleave(&scratch.phase, &starts, dx);
    }

    /// The phases (at `starts` in `phases`) back into the plane `dx`.
    fn interleave(&self, phases: &[f32], starts: &[usize], dx: &mut [f32]) {
        let (w, [sh, sw]) = (self.cols.input, [self.rows.stride, self.cols.stride]);
        for (y, row) in dx.chunks_exact_mut(w).enumerate() {
            let (a, m) = (y % sh, y / sh);
            let phase_row = |b: usize| {
                let cols = self.cols.len(b);
                &phases[starts[a * sw + b] + m * cols..][..cols]
            };
            if sw == 2 && w >= 2 {
                let (even, odd) = (phase_row(0), phase_row(1));
                let mut pairs = row.chunks_exact_mut(2);
                for (pair, (&e, &o)) in (&mut pairs).zip(even.iter().zip(odd)) {
                    pair[0] = e;
                    pair[1] = o;
                }
                if let [last] = pairs.into_remainder() {
                    *last = even[even.len() - 1];
                }
                continue;
            }
            for b in (0..sw).filter(|&b| self.cols.len(b) > 0) {
                for (d, v) in row.iter_mut().skip(b).step_by(sw).zip(phase_row(b)) {
                    *d = *v;
                }
            }
        }
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
    let [sh, sw] = options.stride;
    if sh == 0 || sw == 0 {
        return None;
    }
    let oh = (h + pt + pb).checked_sub(kh)? / sh + 1;
    let ow = (w + pl + pr).checked_sub(kw)? / sw + 1;
    let g = Geometry::new([batch, channels, h, w], weight, options, [oh, ow])?;
    if g.is_empty() || (g.stride != [1, 1] && oh * ow < STRIDED_MIN_OUTPUT) {
        return None;
    }
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let pbias = optional_buffer(bias)?;
    let (xs, ws): (&[f32], &[f32]) = (px.storage(), pw.storage());
    let bs: Option<&[f32]> = pbias.as_ref().map(|p| p.storage());
    let mut y = vec![0.0f32; g.plane_count() * oh * ow];
    each_plane_with_scratch(&mut y, oh * ow, |p, plane, scratch| {
        let c = p % channels;
        let x = &xs[p * h * w..(p + 1) * h * w];
        let wk = &ws[c * kh * kw..(c + 1) * kh * kw];
        let bias = bs.map_or(0.0, |b| b[c]);
        if g.stride == [1, 1] {
            let wp = padded_plane(x, [h, w], g.pad, [1, 1], &mut scratch.padded);
            correlate_plane(scratch, wp, g.kernel, wk, bias, plane);
        } else {
            strided_plane(x, &g, wk, bias, plane, scratch);
        }
    });
    Some(float(y, [batch, channels, oh, ow]))
}

/// One plane of a strided depthwise correlation: kernel tap `(ky, kx)` reads stride phase
/// `(ky mod sh, kx mod sw)` shifted by `(ky div sh, kx div sw)`.
fn strided_plane(
    x: &[f32],
    g: &Geometry,
    wk: &[f32],
    bias: f32,
    out: &mut [f32],
    scratch: &mut Scratch,
) {
    let ([kh, kw], [sh, sw], [oh, ow]) = (g.kernel, g.stride, g.output);
    let [pt, _, pl, _] = g.pad;
    // Phase grids: every output row and column plus the largest tap shift.
    let (rows, cols) = (oh + (kh - 1) / sh, ow + (kw - 1) / sw);
    let Scratch {
        padded, acc, taps, ..
    } = scratch;
    // Every element is written: no zeroing first.
    let n = sh * sw * rows * cols;
    padded.resize(n + SLACK, 0.0);
    write_phases(
        x,
        g.input,
        [pt, pl],
        [sh, sw],
        [rows, cols],
        &mut padded[..n],
    );
    taps.clear();
    let kernel = (0..kh).flat_map(|ky| (0..kw).map(move |kx| (ky, kx)));
    taps.extend(kernel.map(|(ky, kx)| {
        let phase = (ky % sh) * sw + kx % sw;
        let offset = phase * rows * cols + (ky / sh) * cols + kx / sw;
        (offset, wk[ky * kw + kx])
    }));
    correlate_taps(padded, cols, taps, bias, out, ow, acc);
}

/// A dense convolution with few input taps per output (`C · kh · kw ≤ 32`: the RGB stems of
/// image classifiers) as one correlation per output plane over the stride phases of every
/// input plane; `None` for any other convolution or a tensor that is not a plain flex `f32`
/// tensor.
///
/// im2col and a matrix product are at their worst here (27 products per output): SqueezeNet
/// 1.1's `conv1` (3 → 64 channels, 224 → 111, stride 2) takes 2.6 ms in flex's convolution and
/// 1.3 ms here, MobileNet v2's stem (3 → 32, 225 → 112) 1.8-2.4 against 0.8 ms.
pub(crate) fn few_channel_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let [batch, channels, h, w] = x.dims();
    let [outputs, per_group, kh, kw] = weight.dims();
    let [sh, sw] = options.stride;
    let [(pt, pb), (pl, pr)] = options.padding;
    let fits = options.groups == 1
        && per_group == channels
        && options.dilation == [1, 1]
        && channels * kh * kw <= FEW_TAPS
        && ![batch, channels, outputs, h, w, kh, kw, sh, sw].contains(&0);
    if !fits {
        return None;
    }
    let oh = (h + pt + pb).checked_sub(kh)? / sh + 1;
    let ow = (w + pl + pr).checked_sub(kw)? / sw + 1;
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let pbias = optional_buffer(bias)?;
    let (xs, ws): (&[f32], &[f32]) = (px.storage(), pw.storage());
    let bs: Option<&[f32]> = pbias.as_ref().map(|p| p.storage());
    // Every input plane's stride phases, one sample after another.
    let (rows, cols) = (oh + (kh - 1) / sh, ow + (kw - 1) / sw);
    let phase_len = rows * cols;
    let per_plane = sh * sw * phase_len;
    let mut phases = vec![0.0f32; batch * channels * per_plane + SLACK];
    each_plane(
        &mut phases[..batch * channels * per_plane],
        per_plane,
        |p, plane| {
            let x = &xs[p * h * w..(p + 1) * h * w];
            write_phases(x, [h, w], [pt, pl], [sh, sw], [rows, cols], plane);
        },
    );
    let taps_of = |o: usize| -> Vec<(usize, f32)> {
        let kernel = |c: usize| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c, ky, kx)));
        (0..channels)
            .flat_map(kernel)
            .map(|(c, ky, kx)| {
                let phase = (ky % sh) * sw + kx % sw;
                let offset = c * per_plane + phase * phase_len + (ky / sh) * cols + kx / sw;
                (offset, ws[((o * channels + c) * kh + ky) * kw + kx])
            })
            .collect()
    };
    let taps: Vec<Vec<(usize, f32)>> = (0..outputs).map(taps_of).collect();
    let mut y = vec![0.0f32; batch * outputs * oh * ow];
    each_plane_with_scratch(&mut y, oh * ow, |p, plane, scratch| {
        let (n, o) = (p / outputs, p % outputs);
        // The sample's phases and what follows them (read into dropped values only).
        let sample = &phases[n * channels * per_plane..];
        let bias = bs.map_or(0.0, |b| b[o]);
        correlate_taps(sample, cols, &taps[o], bias, plane, ow, &mut scratch.acc);
    });
    Some(float(y, [batch, outputs, oh, ow]))
}

/// The input gradient of a dense convolution with few input taps per output (the convolutions
/// that [`few_channel_conv`] takes: RGB stems) of an `input_hw` input, given the output gradient
/// `dy`, by stride phase ([`PhaseGradient`]): each input phase sums the padded planes of every
/// output channel over its share of the taps. `None` for any other convolution or a tensor
/// that is not a plain flex `f32` tensor.
///
/// MobileNet v2's stem (32 → 3 channels, 112 → 224, stride 2) takes 0.85-0.92 ms here; with
/// its padding made asymmetric by folding its `Pad`, Burn's transposed convolution (0.64 ms
/// before the folding) no longer takes it and autodiff took ~2.2 ms. Only 3 input planes: one
/// job each.
pub(crate) fn few_channel_input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    let [batch, outputs, oh, ow] = dy.dims();
    let [w_outputs, channels, kh, kw] = weight.dims();
    let [h, w] = input_hw;
    let [(pt, pb), (pl, pr)] = options.padding;
    let fits = options.groups == 1
        && w_outputs == outputs
        && options.dilation == [1, 1]
        && channels * kh * kw <= FEW_TAPS
        && ![batch, channels, outputs, h, w, kh, kw, oh, ow].contains(&0)
        && !options.stride.contains(&0)
        && pt < kh
        && pl < kw
        // The output size that the forward pass gives this input.
        && (h + pt + pb).checked_sub(kh).map(|n| n / options.stride[0] + 1) == Some(oh)
        && (w + pl + pr).checked_sub(kw).map(|n| n / options.stride[1] + 1) == Some(ow);
    if !fits {
        return None;
    }
    let phases = PhaseGradient::new([h, w], [oh, ow], [kh, kw], options.stride, [pt, pl]);
    let (pd, pw) = (buffer(dy)?, buffer(weight)?);
    let (ds, ws): (&[f32], &[f32]) = (pd.storage(), pw.storage());
    // Every output channel's gradient plane, padded for the phases' taps.
    let (padded_len, [top, _, left, _]) = (phases.padded_len(), phases.pads());
    let mut padded = vec![0.0f32; batch * outputs * padded_len + SLACK];
    each_plane(
        &mut padded[..batch * outputs * padded_len],
        padded_len,
        |p, plane| {
            let dy = &ds[p * oh * ow..][..oh * ow];
            spread_rows(dy, ow, [top, left], [1, 1], phases.padded_width(), plane);
        },
    );
    let mut dx = vec![0.0f32; batch * channels * h * w];
    each_plane_with_scratch(&mut dx, h * w, |p, plane, scratch| {
        let (n, c) = (p / channels, p % channels);
        let sample = &padded[n * outputs * padded_len..];
        let weights = |ky: usize, kx: usize, offset: usize, out: &mut Vec<(usize, f32)>| {
            let taps = (0..outputs).map(|o| {
                let weight = ws[((o * channels + c) * kh + ky) * kw + kx];
                (o * padded_len + offset, weight)
            });
            out.extend(taps);
        };
        phases.plane(sample, weights, plane, scratch);
    });
    Some(float(dx, [batch, channels, h, w]))
}

/// The input gradient of a depthwise convolution of an `input_hw` input, given the output
/// gradient `dy`; `None` for any other convolution (or a padding of a kernel size or more).
///
/// At stride 1 it is the correlation of the padded `dy` with the flipped kernel; at larger
/// strides each stride phase of the input is one with its share of the taps
/// ([`PhaseGradient`]; MobileNet v2's 96 channels 56×56 → 113×113: 0.93 → 0.72-0.79 ms).
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
    let mut dx = vec![0.0f32; g.plane_count() * h * w];
    if g.stride != [1, 1] {
        let [pt, _, pl, _] = g.pad;
        let phases = PhaseGradient::new(g.input, g.output, g.kernel, g.stride, [pt, pl]);
        let kw = g.kernel[1];
        each_plane_with_scratch(&mut dx, h * w, |p, plane, scratch| {
            let wk = &ws[(p % channels) * taps..][..taps];
            let dy = &ds[p * oh * ow..(p + 1) * oh * ow];
            padded_plane(dy, [oh, ow], phases.pads(), [1, 1], &mut scratch.padded);
            let src = std::mem::take(&mut scratch.padded);
            let weights = |ky: usize, kx: usize, offset: usize, out: &mut Vec<(usize, f32)>| {
                out.push((offset, wk[ky * kw + kx]));
            };
            phases.plane(&src, weights, plane, scratch);
            scratch.padded = src;
        });
        return Some(float(dx, [batch, channels, h, w]));
    }
    let flipped: Vec<f32> = ws
        .chunks(taps)
        .flat_map(|k| k.iter().rev().copied())
        .collect();
    each_plane_with_scratch(&mut dx, h * w, |p, plane, scratch| {
        let c = p % channels;
        let dy = &ds[p * oh * ow..(p + 1) * oh * ow];
        let wp = padded_plane(dy, [oh, ow], pads, g.stride, &mut scratch.padded);
        correlate_plane(
            scratch,
            wp,
            g.kernel,
            &flipped[c * taps..(c + 1) * taps],
            0.0,
            plane,
        );
    });
    Some(float(dx, [batch, channels, h, w]))
}
