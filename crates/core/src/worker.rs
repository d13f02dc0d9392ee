//! Running a whole computation on the CPU backend's thread pool.

/// Runs `f` on a worker thread of the CPU thread pool (rayon's global pool, which the flex
/// backend and the fast kernels split their work over), and returns its result.
///
/// Each parallel kernel called from outside the pool hands its work to the pool and sleeps
/// until it is done: a wake-up and a hand-over per kernel, hundreds per solver iteration. On a
/// worker, the kernels split their work among the workers directly. `f` runs right here when
/// the caller is already a worker, and always without the `flex` feature.
///
/// ```
/// let sum = feedbacknet_core::on_worker(|| (1..=4).sum::<u32>());
/// assert_eq!(sum, 10);
/// ```
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    if rayon::current_thread_index().is_none() {
        return rayon::join(f, || ()).0;
    }
    f()
}
