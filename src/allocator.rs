//! The memory allocator's settings, applied by the binary before any thread starts.
//!
//! glibc gives threads other than the first arenas of their own, and such an arena grows its heap
//! a page at a time, each step an mprotect(2) call that splits and merges the mapping. The service
//! grows by hundreds of MB when it restores 100 000 vehicles and again when their actors wake, all
//! of it on the runtime's worker threads: under webhook load that growth (mprotect, the faults
//! after it, sysmalloc) was about 8% of the server's CPU. The main arena grows with brk(2) in
//! 128 KiB steps instead. With every thread on it (`cargo bench --bench load`, 100 000 vehicles,
//! two runs each, one core): start-up 2.9-3.3 s against 3.8-4.1 s, RSS at start 630 MB against
//! 685 MB, after the webhook load 1.14-1.19 GB against 1.51-1.57 GB, webhook throughput
//! unchanged. Small allocations come from each thread's own cache (tcache) without the arena's
//! lock; on a machine with many cores and busy workers, where the lock could be contended (not
//! measured here), `GLIBC_TUNABLES=glibc.malloc.arena_max=N` gives arenas back.

/// Puts every thread on glibc's main arena, unless the operator chose the number of arenas
/// (`GLIBC_TUNABLES=glibc.malloc.arena_max=N`). Call first in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let operator_chose = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !operator_chose {
            // SAFETY: mallopt only sets a malloc parameter; no allocation is in flight in another
            // thread, as none exists yet.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        }
    }
}
