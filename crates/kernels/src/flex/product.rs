//! Matrix products for the convolution kernels, split over the thread pool by hand.
//!
//! The `gemm` crate's own threading splits poorly at the shapes of a CNN at batch 1 (a few
//! hundred rows, 169-3,025 columns): on 2 cores it reached 48-74 GMAC/s where two
//! single-threaded products, one per half of the result, reach 73-107 (SqueezeNet's
//! `256 × 576 × 169` product: 48-54 → 80 GMAC/s; `1000 × 512 × 169`: 54-74 → 107). Products
//! with few multiply-adds, or only a few dozen deep, are bound by memory and stay on one
//! thread.

use std::{marker::PhantomData, mem::MaybeUninit};

use rayon::prelude::*;

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MACS: usize = 1 << 21;

/// Products shallower than this run on one thread (they are bound by writing the result)...
const PARALLEL_DEPTH: usize = 48;

/// ...unless their result has at least this many elements (then both cores' share of the
/// memory bandwidth pays: MobileNet v2's `16 → 96` expansion at 112×112).
const PARALLEL_RESULT: usize = 1 << 18;

/// Results with at least this many rows are split by rows, others by columns.
const ROW_SPLIT: usize = 128;

/// A matrix: element `(r, c)` at `data[r · stride + c · step]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Matrix<'a> {
    data: &'a [f32],
    stride: usize,
    step: usize,
}

impl<'a> Matrix<'a> {
    /// A row-major matrix of rows `stride` apart.
    pub fn new(data: &'a [f32], stride: usize) -> Self {
        Self::strided(data, stride, 1)
    }

    /// A matrix of rows `stride` apart and columns `step` apart.
    pub fn strided(data: &'a [f32], stride: usize, step: usize) -> Self {
        Self { data, stride, step }
    }

    /// Whether `rows × columns` elements fit.
    fn holds(&self, rows: usize, columns: usize) -> bool {
        rows == 0
            || columns == 0
            || (rows - 1) * self.stride + (columns - 1) * self.step < self.data.len()
    }

    /// The pointer to element `(row, column)`.
    fn at(&self, row: usize, column: usize) -> *const f32 {
        self.data
            .as_ptr()
            .wrapping_add(row * self.stride + column * self.step)
    }
}

/// Where a product goes: `[rows, columns]` at `data[r · stride + c]`, either added to what it
/// holds or written over memory that is never read.
pub(super) struct Output<'a> {
    data: *mut f32,
    len: usize,
    stride: usize,
    accumulate: bool,
    _borrow: PhantomData<&'a mut [f32]>,
}

impl<'a> Output<'a> {
    /// The product is added to `data`.
    pub fn add_to(data: &'a mut [f32], stride: usize) -> Self {
        Self {
            data: data.as_mut_ptr(),
            len: data.len(),
            stride,
            accumulate: true,
            _borrow: PhantomData,
        }
    }

    /// The product is written into `data`, which is not read (it may be uninitialised; the
    /// caller must then know that the product covers every element it later reads).
    pub fn overwrite(data: &'a mut [MaybeUninit<f32>], stride: usize) -> Self {
        Self {
            data: data.as_mut_ptr().cast(),
            len: data.len(),
            stride,
            accumulate: false,
            _borrow: PhantomData,
        }
    }

    fn holds(&self, rows: usize, columns: usize) -> bool {
        rows == 0 || columns == 0 || (rows - 1) * self.stride + columns <= self.len
    }
}

/// A raw pointer that the thread pool may carry (each job writes its own part of the result;
/// the products here and the Winograd kernel's output blocks).
#[derive(Clone, Copy)]
pub(super) struct Shared<T>(pub *mut T);
// SAFETY: every user's jobs write disjoint parts of the memory behind the pointer (see
// `split_product` and `winograd::fused`).
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that closures capture the whole `Shared`).
    pub fn get(self) -> *mut T {
        self.0
    }
}

/// `out (+)= lhs · rhs` for `[m, n, k]` = result rows, result columns, depth.
///
/// # Panics
///
/// If a matrix is too short for its shape (a bug in the calling kernel).
pub(super) fn product(out: Output<'_>, lhs: Matrix<'_>, rhs: Matrix<'_>, shape: [usize; 3]) {
    let [m, n, k] = shape;
    let threads = rayon::current_num_threads().max(1);
    let parallel = threads > 1
        && m * n * k >= PARALLEL_MACS
        && (k >= PARALLEL_DEPTH || m * n >= PARALLEL_RESULT);
    split_product(out, lhs, rhs, shape, if parallel { threads } else { 1 });
}

/// [`product`] on the calling thread (for kernels that run several products side by side).
///
/// # Panics
///
/// If a matrix is too short for its shape (a bug in the calling kernel).
pub(super) fn serial_product(out: Output<'_>, lhs: Matrix<'_>, rhs: Matrix<'_>, shape: [usize; 3]) {
    split_product(out, lhs, rhs, shape, 1);
}

/// `out (+)= lhs · rhs` in `pieces` jobs on the thread pool.
fn split_product(
    out: Output<'_>,
    lhs: Matrix<'_>,
    rhs: Matrix<'_>,
    [m, n, k]: [usize; 3],
    pieces: usize,
) {
    assert!(
        lhs.holds(m, k) && rhs.holds(k, n) && out.holds(m, n),
        "a matrix product's operands are smaller than its shape"
    );
    if m == 0 || n == 0 {
        return;
    }
    let by_rows = m >= ROW_SPLIT;
    let (stride, accumulate) = (out.stride, out.accumulate);
    let dst = Shared(out.data);
    let run = |piece: usize| {
        let (size, align) = if by_rows { (m, 1) } else { (n, 16) };
        let bound = |p: usize| (size * p / pieces).next_multiple_of(align).min(size);
        let (lo, hi) = (bound(piece), bound(piece + 1));
        if lo >= hi {
            return;
        }
        debug_assert!(hi <= if by_rows { m } else { n }, "a piece past the result");
        // SAFETY: the shapes fit the slices (checked above); piece `p` writes rows (or
        // columns) `lo..hi` of the result only, so no two pieces write the same element, and
        // the operands are only read.
        unsafe {
            let (rows, columns, dst, left, right) = if by_rows {
                let dst = dst.get().add(lo * stride);
                (hi - lo, n, dst, lhs.at(lo, 0), rhs.at(0, 0))
            } else {
                let dst = dst.get().add(lo);
                (m, hi - lo, dst, lhs.at(0, 0), rhs.at(0, lo))
            };
            gemm::gemm(
                rows,
                columns,
                k,
                dst,
                1,
                stride as isize,
                accumulate,
                left,
                lhs.step as isize,
                lhs.stride as isize,
                right,
                rhs.step as isize,
                rhs.stride as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    if pieces == 1 {
        run(0);
    } else {
        (0..pieces).into_par_iter().for_each(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `out + lhs · rhs` the plain way.
    fn reference(
        out: &[f32],
        lhs: &Matrix,
        rhs: &Matrix,
        [m, n, k]: [usize; 3],
        stride: usize,
    ) -> Vec<f32> {
        let mut expected = out.to_vec();
        for r in 0..m {
            for c in 0..n {
                let dot: f32 = (0..k)
                    .map(|i| {
                        lhs.data[r * lhs.stride + i * lhs.step]
                            * rhs.data[i * rhs.stride + c * rhs.step]
                    })
                    .sum();
                expected[r * stride + c] += dot;
            }
        }
        expected
    }

    #[test]
    fn split_products_equal_the_plain_product() {
        let value = |i: usize| ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
        // Split by rows, by columns, and too small to split; the left matrix is read with a
        // column step, as the dense kernel reads its weights.
        for [m, n, k] in [[130, 300, 64], [40, 1500, 64], [5, 7, 3]] {
            let (stride, step) = (n + 3, 2);
            let lhs_data: Vec<f32> = (0..m * k * step).map(value).collect();
            let rhs_data: Vec<f32> = (0..k * n).map(|i| value(i + 11)).collect();
            let (lhs, rhs) = (
                Matrix::strided(&lhs_data, k * step, step),
                Matrix::new(&rhs_data, n),
            );
            let start: Vec<f32> = (0..m * stride).map(|i| value(i + 5)).collect();
            let mut added = start.clone();
            product(Output::add_to(&mut added, stride), lhs, rhs, [m, n, k]);
            let expected = reference(&start, &lhs, &rhs, [m, n, k], stride);
            let worst = added
                .iter()
                .zip(&expected)
                .map(|(a, e)| (a - e).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-3, "{m}x{n}x{k}: off by {worst}");
            // Overwriting: the product alone, the gaps between rows left as they were.
            let mut fresh = vec![MaybeUninit::new(f32::NAN); m * stride];
            product(Output::overwrite(&mut fresh, stride), lhs, rhs, [m, n, k]);
            let zero = vec![0.0; m * stride];
            let expected = reference(&zero, &lhs, &rhs, [m, n, k], stride);
            for r in 0..m {
                for c in 0..stride {
                    // SAFETY: every element was initialised (to NaN, then maybe the product).
                    let got = unsafe { fresh[r * stride + c].assume_init() };
                    if c < n {
                        assert!(
                            (got - expected[r * stride + c]).abs() < 1e-3,
                            "{m}x{n}x{k} at {r},{c}"
                        );
                    } else {
                        assert!(
                            got.is_nan(),
                            "{m}x{n}x{k}: column {c} is outside the result"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "smaller than its shape")]
    fn a_short_operand_is_refused() {
        let data = vec![0.0; 10];
        let mut out = vec![0.0; 4];
        product(
            Output::add_to(&mut out, 2),
            Matrix::new(&data, 5),
            Matrix::new(&data, 3),
            [2, 2, 5],
        );
    }
}
