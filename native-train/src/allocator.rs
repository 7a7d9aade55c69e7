//! Keeping freed tensor memory in the process.
//!
//! glibc's `malloc` serves large blocks with `mmap` and gives them back to the kernel on `free`,
//! so every tensor op of a training step page-faults its output buffer in again and the kernel
//! zeroes each page (`clear_page_erms` dominated `perf` profiles of long training steps).
//! Raising the mmap and trim thresholds keeps freed blocks in the heap for the next op, which
//! made such steps much faster (docs/benchmark-history.md). Peak memory is unchanged (the blocks
//! are reused, not added); the heap is not returned to the system until the process ends, which
//! suits a command-line run.

/// Tunes glibc's allocator for tensor workloads (a no-op on other C libraries).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
