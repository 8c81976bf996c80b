//! Walks over the whole fleet (the refresh scan, the idle sweep) run here: on a thread of their own
//! that the kernel runs only when nothing else wants the CPU.
//!
//! At 100 000 vehicles such a walk takes 15-80 ms, nearly all of it waiting on memory (each
//! vehicle's entry is rarely cached). On a runtime worker it held every HA read queued behind it
//! for that long; on tokio's blocking pool it shared the core with the workers in scheduler time
//! slices of a few milliseconds, so reads waited a slice at a time (measured with the load
//! harness at a fixed rate: p99.9 14 ms against the bare ceiling's 4.5 ms, each walk timed at
//! 16-83 ms). Nothing in a walk is urgent (it runs every second at most, and what it finds can
//! wait for the next slice): under `SCHED_IDLE` it runs in the gaps between requests instead.
//! The price is paid only when the core is saturated for long: a walk then gets a small share
//! and takes seconds, so refreshes and sleeps come later, which is the right order for a server
//! that cannot keep up (reads first).

use tokio::sync::oneshot;

/// Runs `walk` on a new thread under the idle scheduling policy and waits for its answer. None
/// if the walk panicked (the panic is reported like any other) or its thread could not start.
pub async fn walk<T, F>(name: &str, walk: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (answer, answered) = oneshot::channel();
    // A walk may start tasks (the refresh scan starts the refreshes it picks) on the runtime that
    // asked for it.
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let _inside = runtime.enter();
        lower_own_priority();
        let _ = answer.send(walk());
    });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start a thread for {name}");
        return None;
    }
    answered.await.ok()
}

/// Puts the calling thread under `SCHED_IDLE`. Lowering one's own priority needs no privilege;
/// if the call fails anyway the walk runs at normal priority, as before.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE,
        // whose priority must be 0.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if set != 0 {
            tracing::debug!("cannot lower a fleet walk's priority; it runs at normal priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn walks_run_under_the_idle_policy_and_answer() {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: pid 0 is the calling thread; the call only reads its policy.
            let policy = walk("test-walk", || unsafe { libc::sched_getscheduler(0) }).await;
            assert_eq!(policy, Some(libc::SCHED_IDLE));
        }
        assert_eq!(walk("test-walk", || 42).await, Some(42));
    }

    #[tokio::test]
    async fn a_walk_can_start_tasks_on_the_runtime_that_asked_for_it() {
        let task = walk("test-walk", || tokio::spawn(async { 7 })).await.expect("walked");
        assert_eq!(task.await.expect("task ran"), 7);
    }

    #[tokio::test]
    async fn a_walk_that_panics_answers_none() {
        let answer: Option<()> = walk("test-walk", || panic!("walk failed")).await;
        assert_eq!(answer, None);
    }
}
