//! Running a whole computation on the CPU backend's thread pool.

use crate::{backend::Fast, fast::FastPath};

/// Runs `f` on a worker thread of the CPU thread pool (rayon's global pool, which the flex
/// backend and the fast kernels split their work over), and returns its result.
///
/// Each parallel kernel called from outside the pool hands its work to the pool and sleeps
/// until it is done: a wake-up and a hand-over per kernel, hundreds per solver iteration. On a
/// worker, the kernels split their work among the workers directly. Called from outside the
/// pool (of two or more threads), a second worker meanwhile runs the pool's pending work and
/// spins between kernels instead of sleeping. `f` runs right here when the caller is already a
/// worker, and always without the `flex` feature.
///
/// ```
/// let sum = feedbacknet_kernels::on_worker(|| (1..=4).sum::<u32>());
/// assert_eq!(sum, 10);
/// ```
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    Fast::on_worker(f)
}
