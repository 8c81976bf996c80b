//! What ractor itself costs per actor, measured apart from evconduit's own state: this binary
//! re-run with `--ractor-probe N KIND` spawns N idle actors the way the fleet does (linked to one
//! supervisor, references kept in a map) and reports its RSS growth. `KIND` `task` does the same
//! with a plain tokio task and one unbounded channel, the smallest a hand-made actor could be,
//! for comparison. Each kind runs in a fresh process: freed memory is not reliably returned to
//! the OS, so one process cannot measure two things.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::process::status_field;

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ProbeResult {
    pub kind: String,
    pub actors: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub bytes_per_actor: f64,
}

struct Idle;

/// About what a vehicle actor holds besides its snapshot: a few shared handles.
struct IdleState {
    _context: Arc<()>,
    _entry: Arc<()>,
}

impl Actor for Idle {
    type Msg = ();
    type State = IdleState;
    type Arguments = (Arc<()>, Arc<()>);

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        (context, entry): Self::Arguments,
    ) -> Result<IdleState, ActorProcessingErr> {
        Ok(IdleState { _context: context, _entry: entry })
    }
}

struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Runs in the child process; prints one JSON line.
pub fn run(actors: usize, kind: &str) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let result = runtime.block_on(async move {
        let shared = Arc::new(());
        let pid = std::process::id();
        // Warm the allocator and runtime so the baseline is not the empty process.
        tokio::task::yield_now().await;
        let before = status_field(pid, "VmRSS:");
        let kept: Box<dyn std::any::Any> = match kind {
            "ractor" => {
                let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("spawn parent");
                let mut refs = HashMap::with_capacity(actors);
                for i in 0..actors {
                    let args = (Arc::clone(&shared), Arc::clone(&shared));
                    let (actor, _) =
                        Actor::spawn_linked(None, Idle, args, parent.get_cell()).await.expect("spawn actor");
                    refs.insert(i, actor);
                }
                Box::new((parent, refs))
            }
            "task" => {
                let mut senders = HashMap::with_capacity(actors);
                for i in 0..actors {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                    let state = (Arc::clone(&shared), Arc::clone(&shared));
                    tokio::spawn(async move {
                        let _state = state;
                        while rx.recv().await.is_some() {}
                    });
                    senders.insert(i, tx);
                }
                Box::new(senders)
            }
            other => panic!("unknown probe kind {other}"),
        };
        // Let every spawned task reach its first await.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let after = status_field(pid, "VmRSS:");
        drop(kept);
        ProbeResult {
            kind: kind.to_owned(),
            actors,
            rss_before_kib: before,
            rss_after_kib: after,
            bytes_per_actor: (after.saturating_sub(before) * 1024) as f64 / actors as f64,
        }
    });
    println!("{}", serde_json::to_string(&result).expect("serialise"));
    std::process::exit(0)
}
