//! Metrics computed at scrape time from the components' own `stats()` snapshots and from the
//! snapshot board. One pass over the board per scrape: 0.09-0.14 s for 100 000 vehicles during a
//! webhook load (each entry and its snapshot a cache miss), so about 1% of a core at a 15 s
//! scrape interval. It runs on the blocking pool (see `metrics`), not on a runtime worker.
//!
//! To export a new component's numbers: give it a `stats()` snapshot, reach it from `AppState`,
//! and add a `fn component(&self, enc)` here called from `encode`.

use std::fmt;

use chrono::Utc;
use evconduit_actors::snapshot::ActorStatus;
use evconduit_actors::state::DataSource;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::enode::client::BreakerState;
use crate::http::AppState;
use crate::http::admin::view::breaker_name;

/// Data age buckets, in seconds: from "just now" to "a week".
const AGE_BUCKETS: [f64; 10] =
    [60.0, 300.0, 900.0, 1800.0, 3600.0, 3.0 * 3600.0, 6.0 * 3600.0, 12.0 * 3600.0, 86_400.0, 7.0 * 86_400.0];

pub(super) struct Scrape {
    state: AppState,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrape")
    }
}

impl Scrape {
    pub(super) fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        labelled_gauge(
            &mut enc,
            "build_info",
            "The running version",
            &[(&[("version", env!("CARGO_PKG_VERSION"))], 1)],
        )?;
        self.actors(&mut enc)?;
        self.fleet(&mut enc)?;
        self.webhooks(&mut enc)?;
        self.store(&mut enc)?;
        self.upstream(&mut enc)?;
        self.refresh(&mut enc)?;
        self.runtime(&mut enc)?;
        // Push deliveries by outcome: added here from the push outbox's stats() once it is
        // reachable from AppState.
        Ok(())
    }
}

impl Scrape {
    /// Actors by status, vehicles by data source, and the data-age distribution.
    fn actors(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let now = self.state.clock.now();
        let mut by_status = [0u64; 5];
        let mut by_source = [0u64; 3];
        let mut relink = 0u64;
        let ages = Histogram::new(AGE_BUCKETS);
        for entry in self.state.fleet.board().entries() {
            by_status[status_index(entry.status())] += 1;
            let snapshot = entry.snapshot();
            let state = &snapshot.state;
            by_source[source_index(state.source)] += 1;
            relink += u64::from(state.relink_required);
            ages.observe((now - state.received_at).num_milliseconds().max(0) as f64 / 1000.0);
        }
        let statuses = [
            ActorStatus::Running,
            ActorStatus::Idle,
            ActorStatus::Restarting,
            ActorStatus::Degraded,
            ActorStatus::Stopped,
        ];
        let rows: Vec<_> = statuses.iter().map(|s| ([("status", s.as_str())], by_status[status_index(*s)])).collect();
        let mut m = enc.encode_descriptor("actors", "Vehicle actors by status", None, MetricType::Gauge)?;
        for (labels, n) in &rows {
            m.encode_family(labels)?.encode_gauge(n)?;
        }
        let sources = [DataSource::Webhook, DataSource::Refresh, DataSource::Restored];
        let mut m = enc.encode_descriptor(
            "vehicles_by_source",
            "Vehicles by where their current data came from",
            None,
            MetricType::Gauge,
        )?;
        for source in sources {
            m.encode_family(&[("source", source.as_str())])?.encode_gauge(&by_source[source_index(source)])?;
        }
        gauge(enc, "vehicles_relink_required", "Vehicles whose user must relink the vendor account", relink)?;
        let m = enc.encode_descriptor(
            "vehicle_data_age",
            "How long ago each vehicle's data was received from Enode",
            Some(&Unit::Seconds),
            ages.metric_type(),
        )?;
        ages.encode(m)
    }

    fn fleet(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let stats = self.state.fleet.stats();
        gauge(enc, "vehicles", "Vehicles the fleet holds", stats.vehicles)?;
        counter(enc, "actor_restarts", "Vehicle actors restarted after a failure", stats.restarts)?;
        counter(enc, "actor_degradations", "Vehicles marked degraded after too many failures", stats.degraded)?;
        counter(enc, "actor_sleeps", "Idle vehicle actors put to sleep", stats.slept)?;
        counter(enc, "actor_wakes", "Sleeping vehicle actors woken by a message", stats.woken)?;
        counter(enc, "vehicles_created", "Vehicles created since start", stats.created)?;
        counter(enc, "vehicles_removed", "Vehicles removed since start", stats.removed)?;
        counter(enc, "actor_messages_dropped", "Messages for vehicles that no longer exist", stats.dropped)
    }

    fn webhooks(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let s = self.state.ingest.stats();
        let deliveries = [
            ("accepted", s.deliveries),
            ("duplicate", s.duplicate_deliveries),
            ("rejected_signature", s.rejected_signature),
            ("rejected_body", s.rejected_body),
        ];
        let mut m = enc.encode_descriptor(
            "webhook_deliveries",
            "Enode webhook deliveries by outcome",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in deliveries {
            m.encode_family(&[("outcome", outcome)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let events = [
            ("user:vehicle:discovered", "handled", s.discovered),
            ("user:vehicle:updated", "handled", s.updated),
            ("user:vehicle:deleted", "handled", s.deleted),
            ("user:credentials:invalidated", "handled", s.credentials_invalidated),
            ("user:vendor-action:updated", "handled", s.vendor_action_updated),
            ("enode:heartbeat", "handled", s.heartbeats),
            ("enode:firehose:test", "handled", s.tests),
            ("unknown", "ignored", s.unknown_event),
            ("malformed", "ignored", s.malformed_event),
        ];
        let mut m = enc.encode_descriptor(
            "webhook_events",
            "Enode webhook events by type and outcome",
            None,
            MetricType::Counter,
        )?;
        for (kind, outcome, n) in events {
            m.encode_family(&[("type", kind), ("outcome", outcome)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let mut m = enc.encode_descriptor(
            "webhook_events_dropped",
            "Handled events that changed nothing, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [("unknown_user", s.unknown_user), ("wrong_owner", s.wrong_owner)] {
            m.encode_family(&[("reason", reason)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let seconds = |t: Option<chrono::DateTime<Utc>>| t.map_or(0, |t| t.timestamp());
        gauge(
            enc,
            "webhook_last_delivery_timestamp_seconds",
            "When the last accepted delivery arrived (0: never)",
            seconds(s.last_delivery_at),
        )?;
        gauge(
            enc,
            "webhook_last_heartbeat_timestamp_seconds",
            "When Enode's last heartbeat arrived (0: never)",
            seconds(s.last_heartbeat_at),
        )
    }

    fn store(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let s = self.state.write_behind.stats();
        gauge(enc, "store_write_behind_backlog", "Vehicle writes waiting to be stored", s.backlog)?;
        gauge(enc, "store_write_behind_in_flight", "Vehicle writes in the batch being stored", s.in_flight)?;
        counter(enc, "store_writes", "Vehicle writes stored", s.written)?;
        counter(enc, "store_failed_batches", "Write-behind batches the store refused (retried)", s.failed_batches)?;
        gauge(
            enc,
            "store_last_flush_seconds",
            "How long the last write-behind batch took",
            s.last_flush_micros as f64 / 1e6,
        )?;
        match self.state.store.wal_bytes() {
            Some(bytes) => {
                gauge(enc, "store_wal_bytes", "The SQLite write-ahead log's length at its last checkpoint", bytes)
            }
            None => Ok(()),
        }
    }
}

impl Scrape {
    /// How late the runtime ran its canary (see `runtime_lag`), as a histogram.
    fn runtime(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let lag = &self.state.runtime_lag;
        let buckets: Vec<(f64, u64)> =
            lag.per_bucket().map(|(le_ms, own)| (le_ms.map_or(f64::INFINITY, |ms| ms as f64 / 1000.0), own)).collect();
        let samples = buckets.iter().map(|(_, own)| own).sum();
        let mut m = enc.encode_descriptor(
            "runtime_lag",
            "How late the async runtime ran a task due every 10 ms: every request waits as long",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(lag.sum_ms() / 1000.0, samples, &buckets, None)
    }

    /// Enode calls by endpoint and outcome, budget and 429 waits, the breaker. Absent without a client.
    fn upstream(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let Some(client) = &self.state.enode else {
            return Ok(());
        };
        let s = client.stats();
        let mut m = enc.encode_descriptor(
            "upstream_requests",
            "Enode API requests by endpoint and outcome",
            None,
            MetricType::Counter,
        )?;
        for r in &s.requests {
            let outcome = serde_json::to_value(r.outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
            let outcome = outcome.unwrap_or_default();
            m.encode_family(&[("endpoint", r.endpoint), ("outcome", outcome.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&r.count, None)?;
        }
        let waits = [("user", s.user_budget), ("background", s.background_budget)];
        let mut m = enc.encode_descriptor(
            "upstream_budget_waits",
            "Budget permits that had to wait, by priority",
            None,
            MetricType::Counter,
        )?;
        for (priority, w) in &waits {
            m.encode_family(&[("priority", *priority)])?.encode_counter::<NoLabelSet, _, u64>(&w.waited, None)?;
        }
        let mut m = enc.encode_descriptor(
            "upstream_budget_wait_seconds",
            "Time spent waiting for budget permits, by priority",
            None,
            MetricType::Counter,
        )?;
        for (priority, w) in &waits {
            let seconds = w.total_wait_ms as f64 / 1000.0;
            m.encode_family(&[("priority", *priority)])?.encode_counter::<NoLabelSet, _, u64>(&seconds, None)?;
        }
        counter(
            enc,
            "upstream_rate_limit_pauses",
            "Calls that waited out a 429 Retry-After",
            s.rate_limit_pauses.waited,
        )?;
        counter(
            enc,
            "upstream_retries",
            "Requests repeated after a 429, 5xx, timeout or connection failure",
            s.retries,
        )?;
        let mut m = enc.encode_descriptor(
            "upstream_breaker",
            "The circuit breaker's state (1 = current)",
            None,
            MetricType::Gauge,
        )?;
        for state in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
            let current = u64::from(s.breaker.state == state);
            m.encode_family(&[("state", breaker_name(state))])?.encode_gauge(&current)?;
        }
        Ok(())
    }

    fn refresh(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let s = self.state.refresh.stats();
        let mut m =
            enc.encode_descriptor("refreshes", "Vehicle refreshes from Enode by outcome", None, MetricType::Counter)?;
        for (outcome, n) in [("ok", s.refreshed), ("failed", s.failed)] {
            m.encode_family(&[("outcome", outcome)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        gauge(enc, "refreshes_in_flight", "Refreshes waiting for Enode now", s.in_flight)
    }
}

fn status_index(status: ActorStatus) -> usize {
    match status {
        ActorStatus::Running => 0,
        ActorStatus::Restarting => 1,
        ActorStatus::Degraded => 2,
        ActorStatus::Stopped => 3,
        ActorStatus::Idle => 4,
    }
}

fn source_index(source: DataSource) -> usize {
    match source {
        DataSource::Webhook => 0,
        DataSource::Refresh => 1,
        DataSource::Restored => 2,
    }
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: impl EncodeGaugeValue) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn labelled_gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: &[(&[(&str, &str)], u64)]) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        m.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}
