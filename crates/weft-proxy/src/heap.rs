//! Gives freed heap memory back to the kernel after the few large, short-lived allocations
//! the proxy makes (decoded descriptor sets while configuration is read). glibc's malloc
//! keeps such memory resident for reuse; a sidecar is judged by its resident size, and the
//! connections that run afterwards need only a fraction of it.
//!
//! This is the crate's one use of `unsafe`: calls into the C library, which has no safe
//! wrapper in the dependencies already chosen.

/// Returns the free pages of every malloc arena to the kernel. Costs a walk over the heap
/// (well under a millisecond at the proxy's size), so it runs only after a large release,
/// never per request.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer, touches only the allocator's own state
    // under its locks, and is documented as safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes every thread allocate from one malloc arena. glibc gives each thread that
/// contends for the heap an arena of its own, and memory freed in one arena is reused only
/// by that arena's threads: a control plane whose pushes run on whichever worker is free
/// built each new registry and view in fresh memory while the old ones' lay free in
/// another arena (peak 122–138 MiB against 106 MiB with one arena, bench/control). Call it
/// before any thread starts; it returns whether the allocator took the setting.
pub fn one_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two plain integers and only adjusts the allocator's own
    // settings; M_ARENA_MAX is documented as settable at any time, before threads is best.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
