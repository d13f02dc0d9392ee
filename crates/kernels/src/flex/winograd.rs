//! Dense 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) on flex buffers
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
//!
//! The output is cut into 2×2 tiles, each computed from the 4×4 input window `d` below it.
//! With each filter transformed once, `U = G g Gᵀ` (16 values, [`transform_weight`], done when
//! the model is compiled), and each window transformed, `V = Bᵀ d B`, a tile is
//! `Y = Aᵀ (Σ_c U ⊙ V) A`. The sum over channels is 16 independent matrix products
//! `M_k = U_k · V_k` of `[O, C] · [C, tiles]`: 16 multiply-adds per tile and channel pair where
//! the direct convolution takes 36 (2.25 times fewer), and no padding columns computed.
//!
//! The work is cut into jobs of whole tile rows of one sample (about 8K transformed values
//! per input channel, so that a job's windows stay in the core's cache), and, where those are
//! fewer than twice the threads, of output channels too. Each job runs all three stages: the
//! input transform, the 16 products on its own thread, and the output transform straight into
//! its rows of the output. Unfused, the transformed windows and products (4 times the input and
//! output) would go through main memory and cost more than the products save. The transforms
//! run eight tiles at a time (the window columns read as even and odd columns, so that
//! neighbouring tiles sit in neighbouring lanes) in vector registers.
//!
//! The input gradient of such a convolution is one too, of the output gradient with the
//! channel-swapped, tap-reversed weight (see `Op::Conv2d`), transformed the same way.

use std::{mem::MaybeUninit, ops::Range};

use super::buffer::{buffer, float, optional_buffer, written};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::product::{Matrix, Output, Shared, serial_product};

/// Values of a transformed tile (4×4).
const TAPS: usize = 16;

/// Convolutions with fewer input or output channels than this keep the direct kernel: the
/// transforms would cost more than the products save.
const MIN_CHANNELS: usize = 8;

/// The largest padding taken (a 3×3 kernel padded by 3 would read only zeros at the edge).
const MAX_PAD: usize = 2;

/// `G`, the filter transform of F(2×2, 3×3).
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// The geometry of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    channels: usize,
    outputs: usize,
    /// Input rows and columns.
    input: [usize; 2],
    /// Top and left padding (bottom and right are the same).
    pad: [usize; 2],
    /// Output rows and columns.
    output: [usize; 2],
    /// Tile rows and columns (`⌈output / 2⌉`).
    tiles: [usize; 2],
}

impl Geometry {
    /// `None` unless `transformed` (`[16, O, C]`) fits `x` and `pad` is at most [`MAX_PAD`].
    fn new(x_dims: [usize; 4], transformed: [usize; 3], pad: [usize; 2]) -> Option<Self> {
        let [batch, channels, h, w] = x_dims;
        let [taps, outputs, per_group] = transformed;
        let fits = taps == TAPS && per_group == channels && pad.iter().all(|&p| p <= MAX_PAD);
        let output = [
            (h + 2 * pad[0]).checked_sub(2)?,
            (w + 2 * pad[1]).checked_sub(2)?,
        ];
        let any_empty = [batch, channels, outputs, h, w, output[0], output[1]].contains(&0);
        (fits && !any_empty).then(|| Self {
            batch,
            channels,
            outputs,
            input: [h, w],
            pad,
            output,
            tiles: [output[0].div_ceil(2), output[1].div_ceil(2)],
        })
    }

    /// The width of a tile row in the transformed blocks: the tile columns and one unused
    /// (so that a block's rows are transformed as one flat row).
    fn width(&self) -> usize {
        self.tiles[1] + 1
    }
}

/// Whether a convolution with this weight shape (`[O, C, KH, KW]`) and padding is one this
/// kernel takes (and its weight worth transforming).
pub(crate) fn takes(w_dims: [usize; 4], pad: [usize; 2]) -> bool {
    let [outputs, channels, kh, kw] = w_dims;
    [kh, kw] == [3, 3]
        && outputs >= MIN_CHANNELS
        && channels >= MIN_CHANNELS
        && pad.iter().all(|&p| p <= MAX_PAD)
}

/// `U = G g Gᵀ` of every filter of a `[O, C, 3, 3]` weight, as `[16, O, C]` (tap-major, so
/// that each tap's `[O, C]` matrix is contiguous); `None` if the weight is not a flex tensor
/// of 3×3 filters.
pub(crate) fn transform_weight(weight: &Tensor<4>) -> Option<Tensor<3>> {
    let [outputs, channels, kh, kw] = weight.dims();
    if [kh, kw] != [3, 3] {
        return None;
    }
    let pw = buffer(weight)?;
    let w: &[f32] = pw.storage();
    let pairs = outputs * channels;
    let mut u = vec![0.0f32; TAPS * pairs];
    for (pair, g) in w.chunks_exact(9).enumerate() {
        // `G g`, then `(G g) Gᵀ`.
        let mut gg = [[0.0f32; 3]; 4];
        for (i, row) in gg.iter_mut().enumerate() {
            for (b, value) in row.iter_mut().enumerate() {
                *value = (0..3).map(|a| G[i][a] * g[a * 3 + b]).sum();
            }
        }
        for (i, row) in gg.iter().enumerate() {
            for (j, gj) in G.iter().enumerate() {
                u[(i * 4 + j) * pairs + pair] = (0..3).map(|b| row[b] * gj[b]).sum();
            }
        }
    }
    Some(float(u, [TAPS, outputs, channels]))
}

/// `conv2d(x, weight, bias)` at stride 1 with padding `pad` (top = bottom, left = right),
/// given the weight transformed by [`transform_weight`]; `None` if the tensors are not flex
/// tensors or the convolution does not fit.
pub(crate) fn conv(
    x: &Tensor<4>,
    transformed: &Tensor<3>,
    bias: Option<&Tensor<1>>,
    pad: [usize; 2],
) -> Option<Tensor<4>> {
    let g = Geometry::new(x.dims(), transformed.dims(), pad)?;
    let (px, pu) = (buffer(x)?, buffer(transformed)?);
    let bias = optional_buffer(bias)?;
    let bias: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let out = fused(px.storage(), pu.storage(), bias, &g);
    let [oh, ow] = g.output;
    Some(float(out, [g.batch, g.outputs, oh, ow]))
}

/// A block of work: tile rows `rows` of sample `n`, output channels `outputs`.
#[derive(Debug, Clone)]
struct Job {
    n: usize,
    rows: Range<usize>,
    outputs: Range<usize>,
}

impl Job {
    /// Tile rows in the block.
    fn height(&self) -> usize {
        self.rows.len()
    }
}

/// Tiles per block, by input channels: the block's transformed windows (`16 · C · tiles`
/// values) stay within 512 KiB, a core's own (L2) cache here, with 32 to 128 columns per
/// product.
fn block_tiles(channels: usize) -> usize {
    (8192 / channels.max(1)).clamp(32, 128)
}

/// The jobs: blocks of whole tile rows per sample, and, where there are too few of those to
/// keep every thread busy, the output channels split too (at least 16 per job).
fn jobs(g: &Geometry) -> Vec<Job> {
    let [tile_rows, tile_columns] = g.tiles;
    let row_blocks = tile_rows.div_ceil((block_tiles(g.channels) / tile_columns).max(1));
    // Blocks of (nearly) even height.
    let rows_per_block = tile_rows.div_ceil(row_blocks);
    let wanted = 2 * rayon::current_num_threads().max(1);
    let parts = wanted
        .div_ceil(g.batch * row_blocks)
        .min(g.outputs.div_ceil(16))
        .max(1);
    let mut jobs = Vec::with_capacity(g.batch * row_blocks * parts);
    for n in 0..g.batch {
        for b in 0..row_blocks {
            let rows = b * rows_per_block..((b + 1) * rows_per_block).min(tile_rows);
            for p in 0..parts {
                let outputs = g.outputs * p / parts..g.outputs * (p + 1) / parts;
                jobs.push(Job {
                    n,
                    rows: rows.clone(),
                    outputs,
                });
            }
        }
    }
    jobs
}

/// The convolution, block by block: each job transforms its windows, runs the 16 products and
/// transforms the result into its part of the output, all in the core's cache.
fn fused(x: &[f32], u: &[f32], bias: Option<&[f32]>, g: &Geometry) -> Vec<f32> {
    let [oh, ow] = g.output;
    let jobs = jobs(g);
    // SAFETY: the jobs' (sample, output channel, tile row) blocks cover every output row of
    // every plane once, and each job writes the whole of its rows (`OutputScratch::write`).
    unsafe {
        written(g.batch * g.outputs * oh * ow, |out| {
            let dst = Shared(out.as_mut_ptr());
            jobs.par_iter().for_each(|job| {
                let v = input_transform(x, job, g);
                let m = products(u, &v, job, g);
                drop(v);
                let first = 2 * job.rows.start;
                let last = (2 * job.rows.end).min(oh);
                let mut scratch = OutputScratch::new(job, g);
                for o in job.outputs.clone() {
                    let plane = (job.n * g.outputs + o) * oh * ow;
                    // SAFETY: rows `first..last` of plane `(n, o)` belong to this job alone.
                    let rows = std::slice::from_raw_parts_mut(
                        dst.get().add(plane + first * ow),
                        (last - first) * ow,
                    );
                    let shift = bias.map_or(0.0, |b| b[o]);
                    scratch.transform(&m, o - job.outputs.start, job.outputs.len());
                    scratch.write(rows, shift, g);
                }
            });
        })
    }
}

/// Values per vector lane block: the transforms run `LANES` tiles at a time.
const LANES: usize = 8;

/// The columns of a job's blocks: its tile rows, each `width` = tile columns + 1 wide (the
/// last column unused, so that the block's rows are transformed as one flat row), rounded up
/// to whole lane blocks (those columns unused too).
fn span(job: &Job, g: &Geometry) -> usize {
    (job.height() * g.width()).next_multiple_of(LANES)
}

/// `V = Bᵀ d B` of the job's windows: `[C, 16, span]` (each channel's taps together, written
/// in one sweep; tap `k`'s `[C, span]` matrix has rows `16 · span` apart).
fn input_transform(x: &[f32], job: &Job, g: &Geometry) -> Vec<f32> {
    let [h, w] = g.input;
    let span = span(job, g);
    let mut windows = Windows::new(job, g);
    let transform = |v: &mut [MaybeUninit<f32>]| {
        for c in 0..g.channels {
            let plane = &x[(job.n * g.channels + c) * h * w..][..h * w];
            windows.split(plane, job, g);
            // Tap `k` of channel `c` is at `(c · 16 + k) · span`.
            let mut rows = v[c * TAPS * span..].chunks_mut(span);
            let mut taps: [&mut [MaybeUninit<f32>]; TAPS] =
                std::array::from_fn(|_| rows.next().map(|t| &mut t[..span]).unwrap_or_default());
            let [even, odd] = &windows.split;
            window_taps(
                &mut taps,
                [[&even[0], &even[1]], [&odd[0], &odd[1]]],
                g.width(),
            );
        }
    };
    // SAFETY: every tap's `span` values of every channel are written by `window_taps`.
    unsafe { written(TAPS * g.channels * span, transform) }
}

/// Scratch for one channel of one job: its input rows split into even and odd columns. Input
/// row `q` of the job (`2 · first tile row − pt + q`) goes to half `q % 2`, row `q / 2`, each
/// row `width` wide.
struct Windows {
    /// One input row at offset `pl`, zeros around it: `2 · width` columns.
    padded: Vec<f32>,
    /// `[half][even, odd][(rows + 1) · width + 2 · LANES]` (the tail zeros, read by the lanes
    /// past the last tile).
    split: [[Vec<f32>; 2]; 2],
}

impl Windows {
    fn new(job: &Job, g: &Geometry) -> Self {
        let len = (job.height() + 1) * g.width() + 2 * LANES;
        let split = || [vec![0.0; len], vec![0.0; len]];
        Self {
            padded: vec![0.0; 2 * g.width()],
            split: [split(), split()],
        }
    }

    /// Splits the `2 · (rows + 1)` input rows under the job's tiles (zero above and below the
    /// input): `even[j]` is column `2j − pl`, `odd[j]` column `2j + 1 − pl`.
    fn split(&mut self, plane: &[f32], job: &Job, g: &Geometry) {
        let [h, w] = g.input;
        let [pt, pl] = g.pad;
        let width = g.width();
        for q in 0..2 * (job.height() + 1) {
            let at = (q / 2) * width;
            let [even, odd] = &mut self.split[q % 2];
            let (even, odd) = (&mut even[at..][..width], &mut odd[at..][..width]);
            let row = (2 * job.rows.start + q).checked_sub(pt).filter(|&i| i < h);
            let Some(i) = row else {
                even.fill(0.0);
                odd.fill(0.0);
                continue;
            };
            // The output is at most `w + 2·pl − 2` wide, so the row may end past the tiles.
            let end = (pl + w).min(self.padded.len());
            self.padded[..pl].fill(0.0);
            self.padded[pl..end].copy_from_slice(&plane[i * w..][..end - pl]);
            self.padded[end..].fill(0.0);
            for ((pair, e), o) in self.padded.chunks_exact(2).zip(even).zip(odd) {
                *e = pair[0];
                *o = pair[1];
            }
        }
    }
}

/// One block of lanes.
type Lanes = [f32; LANES];

/// `LANES` values of `s` from `at`.
#[inline(always)]
fn load(s: &[f32], at: usize) -> Lanes {
    let mut v = [0.0; LANES];
    v.copy_from_slice(&s[at..at + LANES]);
    v
}

/// Writes `v` to `s` from `at`.
#[inline(always)]
fn store(s: &mut [MaybeUninit<f32>], at: usize, v: Lanes) {
    for (slot, value) in s[at..at + LANES].iter_mut().zip(v) {
        slot.write(value);
    }
}

/// `a + b`, lane by lane.
#[inline(always)]
fn add(mut a: Lanes, b: Lanes) -> Lanes {
    for (a, b) in a.iter_mut().zip(b) {
        *a += b;
    }
    a
}

/// `a − b`, lane by lane.
#[inline(always)]
fn sub(mut a: Lanes, b: Lanes) -> Lanes {
    for (a, b) in a.iter_mut().zip(b) {
        *a -= b;
    }
    a
}

/// `Bᵀ` of four values: `d0 − d2`, `d1 + d2`, `d2 − d1`, `d1 − d3`.
#[inline(always)]
fn b_transposed([d0, d1, d2, d3]: [Lanes; 4]) -> [Lanes; 4] {
    [sub(d0, d2), add(d1, d2), sub(d2, d1), sub(d1, d3)]
}

/// `Aᵀ` of four values: `m0 + m1 + m2`, `m1 − m2 − m3`.
#[inline(always)]
fn a_transposed([m0, m1, m2, m3]: [Lanes; 4]) -> [Lanes; 2] {
    [add(add(m0, m1), m2), sub(sub(m1, m2), m3)]
}

/// `V = Bᵀ d B` of a channel's windows, `LANES` tiles at a time, into the 16 tap rows `taps`
/// (each a whole number of lane blocks long). Window row `r` of a tile is half `r % 2` of the
/// split rows, `r / 2` rows (`width`) on; its column `s` is phase `s % 2`, `s / 2` on. The
/// lane helpers are plain functions (not closures), so that they inline here and vectorize.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn window_taps(taps: &mut [&mut [MaybeUninit<f32>]; TAPS], halves: [[&[f32]; 2]; 2], width: usize) {
    let n = taps[0].len();
    for at in (0..n).step_by(LANES) {
        // Column `j` of `Bᵀ` along each window row, then `Bᵀ` down it: taps `(i, j)`. Each
        // column from its own loads, so that the values stay in registers.
        for j in 0..4 {
            let mut across = [[0.0; LANES]; 4];
            for (r, value) in across.iter_mut().enumerate() {
                let [even, odd] = halves[r % 2];
                let base = at + (r / 2) * width;
                *value = match j {
                    0 => sub(load(even, base), load(even, base + 1)),
                    1 => add(load(odd, base), load(even, base + 1)),
                    2 => sub(load(even, base + 1), load(odd, base)),
                    _ => sub(load(odd, base), load(odd, base + 1)),
                };
            }
            for (i, values) in b_transposed(across).into_iter().enumerate() {
                store(taps[i * 4 + j], at, values);
            }
        }
    }
}

/// `M_k = U_k · V_k` for the 16 taps, the job's output channels only: `[16, outputs, span]`.
fn products(u: &[f32], v: &[f32], job: &Job, g: &Geometry) -> Vec<f32> {
    let (outputs, channels) = (job.outputs.len(), g.channels);
    let span = span(job, g);
    let mut m = Vec::with_capacity(TAPS * outputs * span);
    let spare = &mut m.spare_capacity_mut()[..TAPS * outputs * span];
    for (k, block) in spare.chunks_exact_mut(outputs * span).enumerate() {
        let lhs = Matrix::new(
            &u[(k * g.outputs + job.outputs.start) * channels..],
            channels,
        );
        let rhs = Matrix::new(&v[k * span..], TAPS * span);
        let out = Output::overwrite(block, span);
        serial_product(out, lhs, rhs, [outputs, span, channels]);
    }
    // SAFETY: each tap's product wrote its whole `[outputs, span]` block.
    unsafe { m.set_len(TAPS * outputs * span) };
    m
}

/// Scratch for the output transform of one job: the four values of every tile (`[2 rows][2
/// columns][span]`).
struct OutputScratch {
    tiles: [Vec<f32>; 4],
}

impl OutputScratch {
    fn new(job: &Job, g: &Geometry) -> Self {
        let span = span(job, g);
        Self {
            tiles: [0; 4].map(|_| vec![0.0; span]),
        }
    }

    /// `Y = Aᵀ M A` of the job's tiles of output channel `o` (within the job's `outputs`).
    fn transform(&mut self, m: &[f32], o: usize, outputs: usize) {
        let span = self.tiles[0].len();
        let taps: [&[f32]; TAPS] = std::array::from_fn(|k| &m[(k * outputs + o) * span..][..span]);
        let [y00, y01, y10, y11] = &mut self.tiles;
        tile_values([y00, y01, y10, y11], &taps);
    }

    /// The tiles, cropped to the output, plus `shift`, written to `rows` (the output rows of
    /// the job's tile rows).
    fn write(&self, rows: &mut [MaybeUninit<f32>], shift: f32, g: &Geometry) {
        let (ow, width) = (g.output[1], g.width());
        let tiles = width - 1;
        for (a, pair) in self.tiles.chunks_exact(2).enumerate() {
            // Output row `2 · tile row + a` (of the job), where the output has one.
            for (i, out) in rows.chunks_exact_mut(ow).skip(a).step_by(2).enumerate() {
                let at = i * width;
                interleave(out, &pair[0][at..][..tiles], &pair[1][at..][..tiles], shift);
            }
        }
    }
}

/// `Y = Aᵀ M A` of every tile, `LANES` at a time: the values at tile rows and columns 00, 01,
/// 10 and 11 into `out`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn tile_values(out: [&mut Vec<f32>; 4], taps: &[&[f32]; TAPS]) {
    let n = out[0].len();
    let [y00, y01, y10, y11] = out;
    for at in (0..n).step_by(LANES) {
        // `Aᵀ` down each tap column `j`, then across each of the two rows.
        let m = |k: usize| load(taps[k], at);
        let [t0, b0] = a_transposed([m(0), m(4), m(8), m(12)]);
        let [t1, b1] = a_transposed([m(1), m(5), m(9), m(13)]);
        let [t2, b2] = a_transposed([m(2), m(6), m(10), m(14)]);
        let [t3, b3] = a_transposed([m(3), m(7), m(11), m(15)]);
        let [v00, v01] = a_transposed([t0, t1, t2, t3]);
        let [v10, v11] = a_transposed([b0, b1, b2, b3]);
        y00[at..at + LANES].copy_from_slice(&v00);
        y01[at..at + LANES].copy_from_slice(&v01);
        y10[at..at + LANES].copy_from_slice(&v10);
        y11[at..at + LANES].copy_from_slice(&v11);
    }
}

/// One output row: `left[tx]` at column `2·tx`, `right[tx]` at `2·tx + 1` (where the row has
/// one), plus `shift`.
fn interleave(row: &mut [MaybeUninit<f32>], left: &[f32], right: &[f32], shift: f32) {
    let mut pairs = row.chunks_exact_mut(2);
    for ((pair, &l), &r) in (&mut pairs).zip(left).zip(right) {
        pair[0].write(l + shift);
        pair[1].write(r + shift);
    }
    if let [last] = pairs.into_remainder() {
        last.write(left[left.len() - 1] + shift);
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, module::conv2d, ops::ConvOptions};

    use super::*;

    #[test]
    fn winograd_convolutions_equal_burn() {
        let device = Device::flex();
        let (mut rows_split, mut outputs_split) = (false, false);
        // Padding 0 to 2, odd and even sizes, a batch of 2, more outputs than inputs and fewer,
        // the output channels split between jobs, and several blocks of tile rows.
        for ([batch, c, h, w], o, pad) in [
            ([1, 16, 13, 13], 24, [1, 1]),
            ([2, 64, 30, 27], 16, [1, 1]),
            ([1, 128, 41, 9], 8, [2, 2]),
            ([2, 8, 9, 12], 10, [0, 0]),
            ([2, 12, 8, 7], 9, [2, 2]),
            ([1, 9, 6, 11], 16, [1, 2]),
            ([1, 8, 3, 3], 8, [0, 1]),
        ] {
            let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let weight = Tensor::<4>::random([o, c, 3, 3], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &device);
            assert!(takes(weight.dims(), pad));
            let transformed = transform_weight(&weight).expect("a 3×3 weight");
            let g = Geometry::new(x.dims(), transformed.dims(), pad).expect("a 3×3 convolution");
            let jobs = jobs(&g);
            rows_split |= jobs.iter().any(|j| j.rows.start > 0);
            outputs_split |= jobs.iter().any(|j| j.outputs.start > 0);
            let ours = conv(&x, &transformed, Some(&bias), pad).expect("a 3×3 convolution");
            let options = ConvOptions::new([1, 1], pad, [1, 1], 1);
            let theirs = conv2d(x, weight, Some(bias), options);
            assert_eq!(ours.dims(), theirs.dims());
            // Relative to the output's scale (`√(9·C)` for these values): f32 rounding only.
            let scale: f32 = theirs.clone().abs().max().into_scalar();
            let worst: f32 = ours.sub(theirs).abs().max().into_scalar();
            assert!(
                worst < 1e-5 * scale.max(1.0),
                "{batch}x{c}x{h}x{w} by {o} pad {pad:?}: {worst}"
            );
        }
        assert!(
            rows_split && outputs_split,
            "some shape splits rows and outputs into jobs"
        );
    }

    #[test]
    fn other_shapes_are_refused() {
        let device = Device::flex();
        assert!(!takes([16, 4, 3, 3], [1, 1]), "too few channels");
        assert!(!takes([16, 16, 5, 5], [1, 1]), "a 5×5 kernel");
        assert!(!takes([16, 16, 3, 3], [3, 3]), "padding past the kernel");
        let five = Tensor::<4>::zeros([8, 8, 5, 5], &device);
        assert!(transform_weight(&five).is_none());
        let weight = Tensor::<4>::zeros([8, 8, 3, 3], &device);
        let transformed = transform_weight(&weight).expect("3×3");
        // Input channels that do not match the weight, or an input too small for the kernel.
        let x = Tensor::<4>::zeros([1, 9, 5, 5], &device);
        assert!(conv(&x, &transformed, None, [1, 1]).is_none());
        let x = Tensor::<4>::zeros([1, 8, 1, 5], &device);
        assert!(conv(&x, &transformed, None, [0, 0]).is_none());
    }
}
