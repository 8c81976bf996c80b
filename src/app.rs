//! How the pieces are wired: the store, the accounts in memory, the fleet of vehicle actors
//! restored from the store, the write-behind, and the HTTP API on top.
//!
//! `App::build` does everything that must happen before the port opens (migrations, restoring
//! every vehicle); `App::serve` answers until the shutdown future resolves, then stops in the
//! order that loses nothing: `/readyz` turns 503 (draining), HTTP drains within a bound, actors
//! work off their mailboxes and stop, state written behind is flushed.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use evconduit_actors::fleet::{Fleet, FleetConfig};
use evconduit_actors::freshness::{FreshnessPolicy, WebhookStream};
use evconduit_actors::ports::{Clock, NoUpstream, SystemClock, Upstream};
use evconduit_actors::push::PushOutbox;
use evconduit_actors::refresh::{RefreshConfig, RefreshScheduler};
use evconduit_actors::sessions::SessionDetector;
use evconduit_actors::snapshot::SnapshotBoard;
use evconduit_actors::vehicle::{CommandConfig, VehicleContext};
use evconduit_actors::write_behind::{WriteBehind, WriteBehindConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounts::Accounts;
use crate::audience::AccountAudience;
use crate::config::Config;
use crate::enode::client::{Client, ClientConfig};
use crate::http::admin::rates::WebhookRates;
use crate::http::command_limit::CommandLimit;
use crate::http::refresh::HintCooldowns;
use crate::http::{self, AppParts, AppState};
use crate::ingest::WebhookIngest;
use crate::metrics::{self, HttpMetrics};
use crate::push::HttpPushTransport;
use crate::runtime_lag::RuntimeLag;
use crate::store::{self, ActorPushStore, ActorSessionStore, ActorStateStore};
use crate::subscription::SubscriptionKeeper;
use crate::upstream::EnodeUpstream;

/// How long shutdown waits for actors to stop and for state to reach the store.
const ACTOR_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for push deliveries in flight (HA's answer, then its record).
const PUSH_STOP_TIMEOUT: Duration = Duration::from_secs(15);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest pause between checks of the webhook subscription.
const SUBSCRIPTION_CHECK_MAX: Duration = Duration::from_secs(60);

pub struct App {
    state: AppState,
    write_behind: WriteBehind,
    write_behind_task: JoinHandle<()>,
    /// Background work stopped (aborted) at shutdown; none of it holds data that must be flushed.
    background: Vec<JoinHandle<()>>,
    session_writer_task: JoinHandle<()>,
    /// Bound in `build` when `metrics_listen` is set; served alongside the API.
    metrics_listener: Option<TcpListener>,
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

        let enode = if config.enode_client_id.is_empty() {
            tracing::warn!("no Enode client credentials configured: refreshes, commands and linking are off");
            None
        } else {
            Some(Client::new(ClientConfig::from_config(&config)?)?)
        };
        let upstream: Arc<dyn Upstream> = match &enode {
            Some(client) => Arc::new(EnodeUpstream(client.clone())),
            None => Arc::new(NoUpstream),
        };

        // Open charging sessions are loaded before the fleet is restored, so a vehicle that was
        // charging at the restart continues its session.
        let sessions = Arc::new(
            SessionDetector::load(Arc::new(ActorSessionStore(Arc::clone(&store))), Arc::clone(&clock))
                .await
                .context("restoring charging sessions")?,
        );
        let session_writer_task = tokio::spawn(sessions.writer().clone().run());
        // Push targets are loaded before the fleet is restored; what was pending at the last stop
        // starts going out at once (restoring a vehicle is not a change, so nothing is added).
        let transport = HttpPushTransport::new(config.push_transport()).context("building the push client")?;
        let push = PushOutbox::load(
            Arc::new(ActorPushStore(Arc::clone(&store))),
            Arc::new(transport),
            Arc::clone(&clock),
            config.push_outbox(),
        )
        .await
        .context("restoring push targets")?;

        let mut context = VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind.clone(), Arc::clone(&clock));
        context.listeners.push(sessions.clone());
        context.listeners.push(Arc::new(push.clone()));
        context.upstream = Arc::clone(&upstream);
        context.commands = CommandConfig {
            poll_after: Duration::from_secs(config.action_poll_secs),
            poll_attempts: config.action_poll_attempts,
        };
        let idle_after = Duration::from_secs(config.actor_idle_secs);
        let fleet_config = FleetConfig {
            idle_after: (config.actor_idle_secs > 0).then_some(idle_after),
            // Looked for at least twice per idle period, so an actor sleeps within 1.5 periods.
            sweep_every: (idle_after / 2).clamp(Duration::from_millis(100), FleetConfig::default().sweep_every),
            ..FleetConfig::default()
        };
        let fleet = Fleet::start(Arc::new(context), fleet_config).await?;
        push.record_history_in(Arc::clone(fleet.history()));
        fleet.restore(state_store.as_ref()).await.context("restoring vehicles")?;

        let stream = Arc::new(WebhookStream::new(Duration::from_secs(config.webhook_silence_secs)));
        let audience = Arc::new(AccountAudience::new(Arc::clone(&accounts), {
            let push = push.clone();
            Arc::new(move |id| push.has_target(id))
        }));
        let refresh = RefreshScheduler::new(
            fleet.clone(),
            upstream,
            audience,
            Arc::clone(&clock),
            FreshnessPolicy {
                targets: config.tier_targets(),
                wanted_window: Duration::from_secs(config.wanted_window_secs),
            },
            Arc::clone(&stream),
            RefreshConfig {
                concurrency: config.refresh_concurrency,
                retry_base: Duration::from_secs(config.refresh_retry_base_secs.max(1)),
                ..RefreshConfig::default()
            },
        );

        let retention =
            chrono::Duration::days(i64::try_from(config.webhook_delivery_retention_days).unwrap_or(i64::MAX));
        let mut background = vec![
            tokio::spawn(Arc::clone(&accounts).run_sync(Duration::from_millis(config.key_revocation_poll_ms))),
            tokio::spawn(prune_deliveries(Arc::clone(&store), Arc::clone(&clock), retention)),
        ];
        if enode.is_some() {
            background.push(tokio::spawn(refresh.clone().run()));
        }
        let subscription = match (&enode, config.enode_webhook_url(), config.enode_webhook_secrets.first()) {
            (Some(client), Some(url), Some(secret)) => {
                let silence = Duration::from_secs(config.webhook_silence_secs);
                let keeper = Arc::new(SubscriptionKeeper::new(
                    client.clone(),
                    url,
                    secret.clone(),
                    Arc::clone(&stream),
                    Arc::clone(&clock),
                    silence,
                ));
                background.push(tokio::spawn(Arc::clone(&keeper).run((silence / 4).min(SUBSCRIPTION_CHECK_MAX))));
                Some(keeper)
            }
            _ => None,
        };

        let ingest = Arc::new(WebhookIngest::new(fleet.clone(), Arc::clone(&accounts), stream));
        let hints = Arc::new(HintCooldowns::new(Duration::from_secs(config.refresh_hint_cooldown_secs)));
        let commands = Arc::new(CommandLimit::new(config.commands_per_minute_per_user));
        background.push(tokio::spawn(forget_idle_command_limits(Arc::clone(&commands))));
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?),
            None => None,
        };
        let webhook_rates = Arc::new(WebhookRates::default());
        background.push(tokio::spawn(Arc::clone(&webhook_rates).run(Arc::clone(&ingest))));
        let runtime_lag = Arc::new(RuntimeLag::default());
        background.push(tokio::spawn(Arc::clone(&runtime_lag).watch()));
        let state = AppState::from(AppParts {
            config: Arc::new(config),
            store,
            accounts,
            fleet,
            ingest,
            clock,
            enode,
            refresh,
            hints,
            commands,
            subscription,
            sessions,
            write_behind: write_behind.clone(),
            http_metrics: HttpMetrics::default(),
            webhook_rates,
            runtime_lag,
            draining: Arc::new(AtomicBool::new(false)),
            push,
        });
        Ok(Self { state, write_behind, write_behind_task, background, session_writer_task, metrics_listener })
    }

    /// Where `/metrics` is served, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then shuts down cleanly: `/readyz`
    /// turns 503 at once, new connections are still taken for `shutdown_grace_ms` (while load
    /// balancers notice), then open requests get `shutdown_drain_timeout_ms` to finish before
    /// their connections are closed, then `shutdown` stops the actors and flushes.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, vehicles = self.state.fleet.board().len(), "evconduit listening");
        let config = Arc::clone(&self.state.config);
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let drain = Duration::from_millis(config.shutdown_drain_timeout_ms);
        // Fires when HTTP stops accepting; the metrics listener stays up until the very end.
        let (stopping, mut stop_seen) = watch::channel(false);
        let (metrics_done, metrics_stop) = watch::channel(false);
        let metrics_task = self.metrics_listener.take().map(|listener| {
            let mut stop = metrics_stop.clone();
            tokio::spawn(metrics::serve(listener, self.state.clone(), async move {
                let _ = stop.wait_for(|done| *done).await;
            }))
        });

        let draining = Arc::clone(&self.state.draining);
        let signal = async move {
            shutdown.await;
            draining.store(true, Ordering::Release);
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutdown requested: /readyz now answers 503");
            tokio::time::sleep(grace).await;
            tracing::info!(drain_ms = drain.as_millis() as u64, "no longer accepting connections; draining requests");
            let _ = stopping.send(true);
        };
        let server = axum::serve(listener, http::router(self.state.clone())).with_graceful_shutdown(signal);
        let drain_deadline = async move {
            let _ = stop_seen.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            served = server.into_future() => served.context("serving HTTP")?,
            () = drain_deadline => tracing::warn!("requests still open after the drain timeout; closing them"),
        }
        let result = self.shutdown().await;
        let _ = metrics_done.send(true);
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        result
    }

    /// Stops actors, then writes everything still queued. Nothing accepted is lost.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: stopping actors");
        // From here on a webhook could be acknowledged after its actor stopped: refuse them
        // (503) so Enode keeps them and retries against the next instance.
        self.state.ingest.stop_accepting();
        self.state.refresh.stop();
        for task in &self.background {
            task.abort();
        }
        self.state.fleet.shutdown(ACTOR_STOP_TIMEOUT).await;
        // After the actors: no new state arrives; deliveries in flight finish and are recorded.
        self.state.push.shutdown(PUSH_STOP_TIMEOUT).await;
        self.write_behind.stop();
        let _ = self.write_behind_task.await;
        let flushed = self.write_behind.flush(FLUSH_TIMEOUT).await;
        let sessions = self.state.sessions.writer();
        sessions.stop();
        let _ = self.session_writer_task.await;
        if let Err(err) = sessions.flush(FLUSH_TIMEOUT).await {
            tracing::error!(error = %err, "could not write charging sessions at shutdown");
        }
        if let Err(err) = self.state.accounts.flush_key_use().await {
            tracing::warn!(error = %err, "could not record key use at shutdown");
        }
        flushed.context("flushing vehicle state to the store")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Keeps the per-user command limits' memory to users active recently.
async fn forget_idle_command_limits(limits: Arc<CommandLimit>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        limits.forget_idle();
    }
}

/// How often remembered delivery ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Forgets delivery ids older than `retention`, hourly, so the table does not grow forever.
async fn prune_deliveries(store: Arc<dyn store::Store>, clock: Arc<dyn Clock>, retention: chrono::Duration) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        match store.prune_deliveries(clock.now() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "forgot old webhook delivery ids"),
            Err(err) => tracing::warn!(error = %err, "could not prune old webhook delivery ids"),
        }
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
