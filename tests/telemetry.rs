//! Telemetry as deployed: Sentry (with its test transport) and JSON logs captured in memory,
//! installed the way `main` installs them, in a binary of their own (both are process-global).
//!
//! - A vehicle actor that keeps panicking reaches Sentry once per incident (when it is marked
//!   degraded), with its vehicle id; other panics are reported as they happen.
//! - Log lines carry the request id and never a secret, key or token.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use evconduit::config::{Config, LogFormat, Secret};
use evconduit::store::testing::TestDatabase;
use evconduit::telemetry;
use evconduit_actors::snapshot::ActorStatus;
use sentry::protocol::Event;
use sentry::test::TestTransport;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use helpers::*;

const ADMIN_TOKEN: &str = "telemetry-admin-token-0123456789";

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Telemetry {
    transport: Arc<TestTransport>,
    /// Every event seen so far (the transport hands each out once; tests may run side by side).
    events: Mutex<Vec<Event<'static>>>,
    logs: Logs,
    _sentry: sentry::ClientInitGuard,
}

impl Telemetry {
    fn events(&self) -> Vec<Event<'static>> {
        let mut events = self.events.lock().unwrap();
        events.extend(self.transport.fetch_and_clear_events());
        events.clone()
    }

    /// Events whose JSON mentions `needle`.
    fn events_mentioning(&self, needle: &str) -> Vec<Value> {
        self.events()
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .filter(|e| e.to_string().contains(needle))
            .collect()
    }
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let transport = TestTransport::new();
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
        options.transport = Some(Arc::new(transport.clone()));
        let guard = telemetry::init_sentry(options);
        let logs = Logs::default();
        tracing_subscriber::registry()
            .with(telemetry::log_layer(LogFormat::Json, "debug", logs.clone(), false))
            .with(telemetry::sentry_layers())
            .init();
        Telemetry { transport, events: Mutex::new(Vec::new()), logs, _sentry: guard }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_that_keeps_panicking_reaches_sentry_once_per_incident() {
    let telemetry = telemetry();
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "sentry@example.com", None).await;
    let user = user.to_string();
    app.signed_webhook(&batch(&[updated_event("crashy", &user, "2026-11-25T10:00:00Z", 30)])).await;
    app.eventually_status(&key, "crashy", "created", |b| b["batteryLevel"] == 30).await;
    let internal = app.state.fleet.board().get("crashy").unwrap().internal_id().to_string();

    // One panic, restarted: not an incident worth a report.
    assert!(app.state.fleet.inject_panic("crashy", "sentry-test fault"));
    eventually_here("one restart", || app.state.fleet.health("crashy").is_some_and(|h| h.total_restarts == 1)).await;
    // Keep panicking until degraded.
    let panics = 1 + app.degrade("crashy", "sentry-test fault").await;
    assert_eq!(app.state.fleet.health("crashy").unwrap().status, ActorStatus::Degraded);
    assert!(panics > 5, "{panics} panics");

    eventually_here("the incident report", || !telemetry.events_mentioning(&internal).is_empty()).await;
    // Give stray per-panic reports time to arrive, were there any.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reports = telemetry.events_mentioning(&internal);
    assert_eq!(reports.len(), 1, "one report for {panics} panics: {reports:#?}");
    let report = &reports[0];
    // Sentry leaves `level` out when it is the default, error.
    assert!(report.get("level").is_none_or(|l| l == "error"), "{report}");
    assert!(report.to_string().contains("marked degraded"), "{report}");
    assert!(report.to_string().contains("sentry-test fault"), "the panic message is in the report: {report}");
    // No per-panic reports either, with or without the vehicle id in them.
    assert_eq!(telemetry.events_mentioning("sentry-test fault").len(), 1);

    // Any other panic is reported as it happens.
    let _ = std::thread::spawn(|| panic!("sentry-test: a panic outside any actor")).join();
    eventually_here("the plain panic", || !telemetry.events_mentioning("a panic outside any actor").is_empty()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_ids_and_never_secrets() {
    let telemetry = telemetry();
    let db = TestDatabase::sqlite();
    let config = Config { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..config(&db) };
    let app = TestApp::start(config).await;
    let (_, key) = app.user_with_key(None, "logs@example.com", None).await;

    app.get(&key, "/api/status/unknown-car").await;
    app.get(ADMIN_TOKEN, "/admin/actors").await;
    app.get("evc_a-key-that-does-not-exist-0000000000000", "/api/me").await;
    // An event for a user this service does not know is logged (at debug) inside its request.
    let stranger = updated_event("far-away", &uuid::Uuid::new_v4().to_string(), "2026-11-25T10:00:00Z", 1);
    let body = batch(&[stranger]);
    let signature = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), &body);
    let response = app
        .http
        .post(app.url("/api/webhook/enode"))
        .header("x-request-id", "trace-me-4711")
        .header("x-enode-delivery", "delivery-logs-1")
        .header("x-enode-signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-4711");
    app.stop().await;

    let logs = telemetry.logs.text();
    let traced = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("unknown user")))
        .expect("the unknown-user line is logged");
    assert_eq!(traced["span"]["request_id"], "trace-me-4711", "{traced}");
    assert_eq!(traced["span"]["route"], "/api/webhook/enode");
    for secret in [key.as_str(), ADMIN_TOKEN, FIXTURE_SECRET, "old-rotated-secret", signature.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
}
