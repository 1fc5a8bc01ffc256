//! Gives freed heap memory back to the kernel after the few large, short-lived allocations
//! the proxy makes (decoded descriptor sets while configuration is read). glibc's malloc
//! keeps such memory resident for reuse; a sidecar is judged by its resident size, and the
//! connections that run afterwards need only a fraction of it.
//!
//! This is the crate's one use of `unsafe`: a call into the C library, which has no safe
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
