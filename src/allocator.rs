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
//! Fast bins are off. Much of what the service frees was allocated on another thread: the write-
//! behind's statement arguments are built on a runtime worker and freed on SQLite's thread. Such
//! frees fill the freeing thread's cache and then the arena's fast bins, and every allocation
//! above 1 KiB (a vehicle's JSON, a statement's argument list) first merges every fast-bin chunk
//! (`malloc_consolidate`, 4% of the CPU of a SQLite catch-up). Without fast bins a freed chunk is
//! merged with its neighbours at once. Four alternating pairs of short runs (SQLite, 100 000
//! vehicles, 12-02): catch-up 13 500-17 500 -> 15 800-22 200 rows/s (better in each pair, median
//! +10%), events/s better in three pairs of four, start-up and memory unchanged; a noisy machine,
//! so read it as "not worse" at least. `GLIBC_TUNABLES=glibc.malloc.mxfast=N` overrides it.

/// Puts every thread on glibc's main arena and turns fast bins off, each unless the operator
/// chose it (`GLIBC_TUNABLES=glibc.malloc.arena_max=N`, `glibc.malloc.mxfast=N`). Call first
/// in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY (both calls): mallopt only sets a malloc parameter; no allocation is in flight
        // in another thread, as none exists yet.
        if !tunables.contains("arena_max") {
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        }
        if !tunables.contains("mxfast") {
            unsafe { libc::mallopt(libc::M_MXFAST, 0) };
        }
    }
}
