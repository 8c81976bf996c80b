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
//!
//! Fast bins stay on (glibc's default). The eighth session turned them off: then each written
//! row made ~19 allocations freed on SQLite's thread, they filled its fast bins, and every
//! allocation over 1 KiB first merged them all (`malloc_consolidate`). Rows now make 5, and with
//! fast bins off every free merged its chunk with its neighbours at once: `unlink_chunk` was 6%
//! of the server's CPU under webhook load (twenty-first session). Four alternating pairs of
//! short runs on SQLite (100 000 vehicles, 10 s of webhooks): caught up in 1.72-1.83 s against
//! 2.15-2.24 s, 46 000-53 000 rows written during the load against 38 000-40 000, events/s
//! 24 135-28 099 against 24 385-26 810; on PostgreSQL, four pairs: 25 715-29 435 events/s
//! against 25 218-27 662, caught up 0.88-1.65 s against 0.78-1.28 s. Memory and start-up the same.
//! `GLIBC_TUNABLES=glibc.malloc.mxfast=0` turns them off again.

/// Puts every thread on glibc's main arena, unless the operator chose otherwise
/// (`GLIBC_TUNABLES=glibc.malloc.arena_max=N`). Call first in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY: mallopt only sets a malloc parameter; no allocation is in flight in another
        // thread, as none exists yet.
        if !tunables.contains("arena_max") {
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        }
    }
}
