//! Running a whole computation on the flex backend's thread pool (rayon's global pool).

/// Runs `f` on a worker thread of rayon's global pool (which flex and the fast kernels split
/// their work over), and returns its result: see [`crate::on_worker`].
///
/// Each parallel kernel called from outside the pool hands its work to the pool and sleeps
/// until it is done: a wake-up and a hand-over per kernel, hundreds per solver iteration. On a
/// worker, the kernels split their work among the workers directly. Called from outside the
/// pool (of two or more threads), a second worker meanwhile runs the pool's pending work and
/// spins between kernels instead of sleeping. `f` runs right here when the caller is already a
/// worker.
pub(crate) fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_none() {
        if rayon::current_num_threads() < 2 {
            return rayon::join(|| computing(f), || ()).0;
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        let run = || {
            let r = computing(f);
            done.store(true, std::sync::atomic::Ordering::Release);
            r
        };
        return rayon::join(run, || stay_awake(&done)).0;
    }
    computing(f)
}

thread_local! {
    /// How many computations run on this thread (nested ones, when a worker waiting inside
    /// one picks up another's work).
    static COMPUTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `f()`, counted in [`COMPUTING`] while it runs.
fn computing<R>(f: impl FnOnce() -> R) -> R {
    COMPUTING.with(|c| c.set(c.get() + 1));
    let r = f();
    COMPUTING.with(|c| c.set(c.get() - 1));
    r
}

/// Keeps the worker that runs it busy with the pool's work until `done`: between two parallel
/// kernels of the computation it spins instead of sleeping, so that the next kernel's jobs
/// need no wake-up (a thread wake-up costs tens of microseconds in a virtual machine: `perf`
/// put 16 % of a soft-feedback solve in the kernel's scheduler, and this took SqueezeNet's
/// solve from 540-590 to 465-495 ms).
///
/// A worker that picks this up while a computation of its own waits below it returns at once:
/// two callers' spinners, each stacked above the other's computation, would wait forever.
fn stay_awake(done: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    if COMPUTING.with(|c| c.get()) > 0 {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}
