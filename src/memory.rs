//! Process memory settings for long inference loops.

/// Keeps freed memory in the process for reuse instead of handing it back to the operating
/// system after each large free (glibc `mallopt`: mmap threshold 32 MiB, trim threshold 1 GiB,
/// one arena for every thread).
///
/// A soft-feedback solve allocates and frees buffers of a few MiB on every iteration. With
/// glibc's defaults, each is a fresh mapping whose pages fault on first touch, and page faults
/// are slow in virtual machines. On SqueezeNet 1.1, this setting cuts the page faults of a
/// solve from about 95,000 to 8,000 (`docs/performance.md`). Inference runs on the CPU thread
/// pool's workers, whose own arenas would hand large frees back all the same (MobileNet v2,
/// five classes: 1.6 million faults instead of 0.2), so every thread shares the main arena.
/// The price is a process that keeps its peak heap size until it exits.
///
/// Call it once at the start of `main`, before other threads start. It returns whether the
/// setting was applied; elsewhere than glibc on Linux (musl, macOS, Windows) it does nothing
/// and returns `false`.
///
/// ```
/// let applied = feedbacknet::retain_freed_memory();
/// assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; both values are in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
