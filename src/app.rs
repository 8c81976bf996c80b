//! How the pieces are wired: the store, the accounts in memory, the fleet of vehicle actors
//! restored from the store, the write-behind, and the HTTP API on top.
//!
//! `App::build` does everything that must happen before the port opens (migrations, restoring
//! every vehicle); `App::serve` answers until the shutdown future resolves, then stops in the
//! order that loses nothing: HTTP drains, actors stop, state written behind is flushed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use evconduit_actors::fleet::{Fleet, FleetConfig};
use evconduit_actors::ports::{Clock, SystemClock};
use evconduit_actors::snapshot::SnapshotBoard;
use evconduit_actors::vehicle::VehicleContext;
use evconduit_actors::write_behind::{WriteBehind, WriteBehindConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::ingest::WebhookIngest;
use crate::store::{self, ActorStateStore};

/// How long shutdown waits for actors to stop and for state to reach the store.
const ACTOR_STOP_TIMEOUT: Duration = Duration::from_secs(10);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct App {
    state: AppState,
    write_behind: WriteBehind,
    write_behind_task: JoinHandle<()>,
    account_sync_task: JoinHandle<()>,
}

impl App {
    /// Connects, migrates, loads accounts and restores every vehicle. When this returns, the
    /// first HA read already gets the last known state.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        if config.enode_webhook_secrets.is_empty() {
            tracing::warn!("no EVCONDUIT_ENODE_WEBHOOK_SECRETS configured: every Enode webhook will be refused");
        }
        let store = store::connect(config.database_url.expose()).await.context("opening the database")?;
        store.migrate().await.context("applying migrations")?;
        let accounts = Accounts::load(Arc::clone(&store)).await.context("loading accounts")?;

        let state_store = Arc::new(ActorStateStore(Arc::clone(&store)));
        let write_behind = WriteBehind::new(
            state_store.clone(),
            WriteBehindConfig {
                interval: Duration::from_millis(config.write_behind_interval_ms),
                batch: config.write_behind_batch,
                ..WriteBehindConfig::default()
            },
        );
        let write_behind_task = tokio::spawn(write_behind.clone().run());
        let context =
            Arc::new(VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind.clone(), Arc::clone(&clock)));
        let fleet = Fleet::start(context, FleetConfig::default()).await?;
        fleet.restore(state_store.as_ref()).await.context("restoring vehicles")?;

        let account_sync_task =
            tokio::spawn(Arc::clone(&accounts).run_sync(Duration::from_millis(config.key_revocation_poll_ms)));
        let ingest = Arc::new(WebhookIngest::new(fleet.clone(), Arc::clone(&accounts)));
        let state = AppState { config: Arc::new(config), store, accounts, fleet, ingest, clock };
        Ok(Self { state, write_behind, write_behind_task, account_sync_task })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then shuts down cleanly.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, vehicles = self.state.fleet.board().len(), "evconduit listening");
        axum::serve(listener, http::router(self.state.clone()))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        self.shutdown().await
    }

    /// Stops actors, then writes everything still queued. Nothing accepted is lost.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: stopping actors");
        self.state.fleet.shutdown(ACTOR_STOP_TIMEOUT).await;
        self.write_behind.stop();
        let _ = self.write_behind_task.await;
        self.account_sync_task.abort();
        let flushed = self.write_behind.flush(FLUSH_TIMEOUT).await;
        if let Err(err) = self.state.accounts.flush_key_use().await {
            tracing::warn!(error = %err, "could not record key use at shutdown");
        }
        flushed.context("flushing vehicle state to the store")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
