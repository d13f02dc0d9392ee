//! Max pooling with its argmax indices on flex buffers: a tight loop over precomputed windows,
//! one plane per task.

use std::mem::MaybeUninit;

use burn::tensor::{DType, Int, Tensor, ops::MaxPoolOptions};

use super::buffer::{PARALLEL_MIN, Slots, buffer, float, int, per_plane, written};

/// Output length of one pooled axis (floor or ceil mode, as Burn and ONNX define it).
fn pooled_len(input: usize, kernel: usize, pad: usize, stride: usize, ceil: bool) -> usize {
    let padded = input + 2 * pad;
    if padded < kernel {
        return usize::from(ceil);
    }
    let span = padded - kernel;
    if ceil {
        let out = span.div_ceil(stride) + 1;
        // The last window may not start in the trailing padding.
        if (out - 1) * stride >= input + pad {
            out - 1
        } else {
            out
        }
    } else {
        span / stride + 1
    }
}

/// The clipped input range `(start, end)` of one pooling window along one axis.
type Window = (usize, usize);

/// Per output position along one axis, the clipped input range `[start, end)` it pools.
fn windows(input: usize, kernel: usize, pad: usize, stride: usize, ceil: bool) -> Vec<Window> {
    (0..pooled_len(input, kernel, pad, stride, ceil))
        .map(|o| {
            let begin = (o * stride) as isize - pad as isize;
            let end = (begin + kernel as isize).min(input as isize);
            let begin = begin.max(0);
            (begin as usize, (end.max(begin)) as usize)
        })
        .collect()
}

pub(crate) fn max_pool_with_indices(
    x: &Tensor<4>,
    options: &MaxPoolOptions<2>,
) -> Option<(Tensor<4>, Tensor<4, Int>)> {
    let [batch, channels, height, width] = x.dims();
    let [kh, kw] = options.kernel_size;
    let [sh, sw] = options.stride;
    let [(ph, _), (pw, _)] = options.padding;
    // Every window then holds an input element (the plane kernel relies on it), and flat
    // indices within a plane fit the kernel's `i32`.
    if options.is_asymmetric()
        || options.dilation != [1, 1]
        || ph >= kh
        || pw >= kw
        || height.saturating_mul(width) > i32::MAX as usize
    {
        return None;
    }
    let p = buffer(x)?;
    let rows = windows(height, kh, ph, sh, options.ceil_mode);
    let cols = windows(width, kw, pw, sw, options.ceil_mode);
    let (out_h, out_w) = (rows.len(), cols.len());
    let plane_in = height * width;
    let plane_out = out_h * out_w;
    let planes = batch * channels;
    let n = planes * plane_out;
    let shape = [batch, channels, out_h, out_w];
    let (out, idx) = if plane_in == 0 {
        // Empty planes pool to nothing: zeros, as the windows see no input.
        (vec![0.0; n], vec![0; n])
    } else {
        let data: &[f32] = p.storage();
        let pool = |plane: usize, out: &mut Slots, idx: &mut [MaybeUninit<i32>]| {
            let x = &data[plane * plane_in..(plane + 1) * plane_in];
            pool_plane(x, width, &rows, Columns::new(kw, sw, pw, out_w), out, idx);
        };
        let parallel = planes * plane_in >= PARALLEL_MIN;
        let mut idx = Vec::new();
        // SAFETY: `per_plane` hands every plane of both outputs to `pool_plane`, which
        // writes each of its `out_h` rows of `out_w` values and indices.
        let out = unsafe {
            written(n, |out| {
                idx = written(n, |idx| {
                    per_plane((out, plane_out), (idx, plane_out), parallel, pool);
                });
            })
        };
        (out, idx)
    };
    // Indices in the device's integer type, as Burn's own pooling returns them (flex's
    // default is `i32`, which the kernel writes: no cast then).
    let mut indices = int(idx, shape);
    let int_dtype = Tensor::<1, Int>::empty([0], &x.device()).dtype();
    if int_dtype != DType::I32 {
        indices = indices.cast(int_dtype);
    }
    Some((float(out, shape), indices))
}

/// The column geometry of a pooling: kernel width, stride, left padding, output width.
#[derive(Clone, Copy)]
struct Columns {
    kernel: usize,
    stride: usize,
    pad: usize,
    out: usize,
}

impl Columns {
    fn new(kernel: usize, stride: usize, pad: usize, out: usize) -> Self {
        Self {
            kernel,
            stride,
            pad,
            out,
        }
    }

    /// Length of a stride phase of the padded columns: phase `p` holds padded columns
    /// `p, p + stride, …`, and output `o`'s tap `j` is element `o + j / stride` of phase
    /// `j % stride`.
    fn phase_len(self) -> usize {
        self.out + (self.kernel - 1) / self.stride
    }
}

/// Max pooling of one plane `x` (rows of `width`) over the row windows `rows` and the
/// column geometry `cols`: the maxima into `out`, their flat indices into `idx`. The index is
/// that of the first maximum in row-major scan order, or of the last NaN of a window that
/// holds one (as Burn and PyTorch pool). Every window must hold an input element.
///
/// Per output row, one pass down the window's rows keeps each column's maximum and the flat
/// index of its first occurrence (its last NaN). Those columns, padded with `−∞` and split
/// by stride phase, are then combined tap by tap over contiguous runs: the larger value
/// wins, a tie goes to the smaller index (the first in row-major order), and among NaNs to
/// the larger. Both passes vectorize.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn pool_plane(
    x: &[f32],
    width: usize,
    rows: &[Window],
    cols: Columns,
    out: &mut Slots,
    idx: &mut [MaybeUninit<i32>],
) {
    let padded = (cols.phase_len() * cols.stride).max(cols.pad + width);
    let mut column_max = vec![f32::NEG_INFINITY; padded];
    let mut column_at = vec![i32::MAX; padded];
    let phase_len = cols.phase_len();
    let mut phase_max = vec![f32::NEG_INFINITY; phase_len * cols.stride];
    let mut phase_at = vec![i32::MAX; phase_len * cols.stride];
    let (mut best, mut first) = (vec![0.0f32; cols.out], vec![0i32; cols.out]);
    for (oh, &(r0, r1)) in rows.iter().enumerate() {
        let real = cols.pad..cols.pad + width;
        column_maxima(
            x,
            width,
            (r0, r1),
            &mut column_max[real.clone()],
            &mut column_at[real],
        );
        if cols.stride == 2 {
            split_pairs(
                &column_max[..2 * phase_len],
                phase_max.split_at_mut(phase_len),
            );
            split_pairs(
                &column_at[..2 * phase_len],
                phase_at.split_at_mut(phase_len),
            );
        }
        for p in (0..cols.stride).filter(|_| cols.stride != 2) {
            let phase = p * phase_len..(p + 1) * phase_len;
            let targets = phase_max[phase.clone()]
                .iter_mut()
                .zip(phase_at[phase].iter_mut());
            // `padded ≥ phase_len · stride`: every source column exists.
            for (i, (m, at)) in targets.enumerate() {
                let c = p + i * cols.stride;
                (*m, *at) = (column_max[c], column_at[c]);
            }
        }
        best.copy_from_slice(&phase_max[..cols.out]);
        first.copy_from_slice(&phase_at[..cols.out]);
        for j in 1..cols.kernel {
            let start = (j % cols.stride) * phase_len + j / cols.stride;
            let taps = phase_max[start..start + cols.out]
                .iter()
                .zip(&phase_at[start..start + cols.out]);
            for ((b, f), (&m, &a)) in best.iter_mut().zip(first.iter_mut()).zip(taps) {
                // Branch-free (`&`, `|`), so that the loop vectorizes.
                let (m_nan, b_nan) = (m.is_nan(), b.is_nan());
                let larger = (m > *b) | ((m == *b) & (a < *f));
                let take = (m_nan & (!b_nan | (a > *f))) | (!m_nan & !b_nan & larger);
                *b = if take { m } else { *b };
                *f = if take { a } else { *f };
            }
        }
        let row = oh * cols.out..(oh + 1) * cols.out;
        for (o, &b) in out[row.clone()].iter_mut().zip(&best) {
            o.write(b);
        }
        for (i, &f) in idx[row].iter_mut().zip(&first) {
            i.write(f);
        }
    }
}

/// The even elements of `pairs` into `even`, the odd ones into `odd` (a stride-2 pooling's
/// two phases; this form of the loop vectorizes, a runtime stride does not).
#[inline(always)]
fn split_pairs<T: Copy>(pairs: &[T], (even, odd): (&mut [T], &mut [T])) {
    let (pairs, _) = pairs.as_chunks::<2>();
    for ((e, o), &[a, b]) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
        (*e, *o) = (a, b);
    }
}

/// Per column of `x` (rows of `width`), the maximum over rows `r0..r1` into `max` and the
/// flat index of its first occurrence (of the last NaN, if any) into `at`.
///
/// Blocks of columns are reduced in local arrays and stored once: the compiler would turn
/// an in-place `if take { v } else { *m }` into masked stores, which are slow on AMD cores.
#[inline(always)]
fn column_maxima(x: &[f32], width: usize, (r0, r1): Window, max: &mut [f32], at: &mut [i32]) {
    const L: usize = 8;
    let c0 = max.len() / L * L; // the first column of the tail
    let (max_blocks, max_tail) = max.as_chunks_mut::<L>();
    let (at_blocks, at_tail) = at.as_chunks_mut::<L>();
    let blocks = max_blocks.iter_mut().zip(at_blocks.iter_mut());
    for (b, (max, at)) in blocks.enumerate() {
        let c0 = b * L;
        let mut m: [f32; L] = std::array::from_fn(|i| x[r0 * width + c0 + i]);
        let mut a: [i32; L] = std::array::from_fn(|i| (r0 * width + c0 + i) as i32);
        for r in r0 + 1..r1 {
            let row = &x[r * width + c0..][..L];
            for i in 0..L {
                let v = row[i];
                let take = (v > m[i]) | v.is_nan();
                m[i] = if take { v } else { m[i] };
                a[i] = if take {
                    (r * width + c0 + i) as i32
                } else {
                    a[i]
                };
            }
        }
        (*max, *at) = (m, a);
    }
    for (i, (max, at)) in max_tail.iter_mut().zip(at_tail).enumerate() {
        let c = c0 + i;
        let (mut m, mut a) = (x[r0 * width + c], (r0 * width + c) as i32);
        for r in r0 + 1..r1 {
            let v = x[r * width + c];
            if (v > m) | v.is_nan() {
                (m, a) = (v, (r * width + c) as i32);
            }
        }
        (*max, *at) = (m, a);
    }
}
