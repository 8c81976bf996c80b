//! Webhook deliveries, as Enode makes them: a JSON array of up to 100 events per POST, signed
//! with the subscription's secret, retried with the same delivery id and growing gaps, and the
//! subscription marked inactive when its receiver keeps failing for the failure window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use super::bus::{SubMeta, Subscription};
use super::lock;
use super::outbox::{self, OutEvent};
use super::state::SimState;
use crate::enode::model::{WebhookTestResult, WebhookTestStatus};
use crate::enode::signature;

/// Enode puts at most this many events in one delivery.
pub const MAX_BATCH: usize = 100;
/// How much of a receiver's answer `POST /webhooks/{id}/test` echoes back.
const ECHO_LIMIT: usize = 1_000;

/// Registers a subscription and starts its delivery worker.
pub fn subscribe(state: &Arc<SimState>, meta: SubMeta) -> Arc<Subscription> {
    let sub = Arc::new(Subscription {
        id: Uuid::new_v4(),
        meta: std::sync::Mutex::new(meta),
        queue: std::sync::Mutex::new(Default::default()),
        wake: Default::default(),
    });
    state.bus.add(sub.clone());
    let worker_state = state.clone();
    let worker_sub = sub.clone();
    state.tasks.spawn(async move { deliver_forever(worker_state, worker_sub).await });
    sub
}

/// Stops a subscription: its worker ends, its pending events are dropped.
pub fn unsubscribe(sub: &Subscription) {
    let mut meta = lock(&sub.meta);
    meta.deleted = true;
    meta.is_active = false;
    drop(meta);
    lock(&sub.queue).clear();
    sub.wake.notify_one();
}

/// One subscription's worker: one delivery in flight at a time, so events keep their order.
async fn deliver_forever(state: Arc<SimState>, sub: Arc<Subscription>) {
    loop {
        let Some(batch) = next_batch(&state, &sub).await else {
            return;
        };
        if lock(&state.faults).drop_delivery() {
            lock(&state.stats).webhooks().dropped += 1;
            continue;
        }
        deliver_with_retries(&state, &sub, batch).await;
    }
}

/// Waits until the subscription is active and has events; `None` when it is deleted or the
/// simulator stops.
async fn next_batch(state: &SimState, sub: &Subscription) -> Option<Vec<OutEvent>> {
    loop {
        {
            let meta = lock(&sub.meta);
            if meta.deleted {
                return None;
            }
            if meta.is_active {
                let mut queue = lock(&sub.queue);
                if !queue.is_empty() {
                    let n = queue.len().min(MAX_BATCH);
                    return Some(queue.drain(..n).collect());
                }
            }
        }
        tokio::select! {
            _ = sub.wake.notified() => {}
            _ = state.shutdown.cancelled() => return None,
        }
    }
}

fn body_of(batch: &[OutEvent]) -> Bytes {
    let mut body = String::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, event) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.json);
    }
    body.push(']');
    Bytes::from(body)
}

async fn deliver_with_retries(state: &SimState, sub: &Subscription, batch: Vec<OutEvent>) {
    let body = body_of(&batch);
    let delivery = Uuid::new_v4().to_string();
    let config = &state.config;
    let mut gap = config.webhook_retry_initial;
    let mut first_failure: Option<Instant> = None;
    loop {
        let (url, secret) = {
            let meta = lock(&sub.meta);
            if meta.deleted {
                return;
            }
            (meta.url.clone(), meta.secret.clone())
        };
        let outcome = post(state, &url, &secret, &delivery, body.clone()).await;
        let accepted = matches!(outcome, Outcome::Accepted(_));
        {
            let mut stats = lock(&state.stats);
            let counts = stats.webhooks();
            counts.attempted += 1;
            if accepted {
                counts.succeeded += 1;
                counts.events_delivered += batch.len() as u64;
            } else {
                counts.failed += 1;
            }
        }
        if accepted {
            lock(&sub.meta).last_success = Some(Utc::now());
            return;
        }
        let failing_since = *first_failure.get_or_insert_with(Instant::now);
        if failing_since.elapsed() >= config.webhook_failure_window {
            give_up(state, sub, batch.len());
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(gap) => {}
            _ = state.shutdown.cancelled() => return,
        }
        gap = (gap * 2).min(config.webhook_retry_max.max(config.webhook_retry_initial));
    }
}

/// The failure window has passed: pending events are deleted and the subscription is inactive
/// until a successful test (or a PATCH) reactivates it.
fn give_up(state: &SimState, sub: &Subscription, in_flight: usize) {
    lock(&sub.meta).is_active = false;
    let dropped = {
        let mut queue = lock(&sub.queue);
        let n = queue.len();
        queue.clear();
        n
    };
    lock(&state.stats).webhooks().events_discarded += (dropped + in_flight) as u64;
    tracing::info!(subscription = %sub.id, "webhook marked inactive after failing for the failure window");
}

/// What the receiver answered.
struct Answer {
    status: u16,
    body: String,
}

enum Outcome {
    /// 2xx.
    Accepted(Answer),
    /// Any other status.
    Refused(Answer),
    /// No answer: connection refused, timeout, broken connection.
    Unreachable(String),
}

/// One signed POST.
async fn post(state: &SimState, url: &str, secret: &str, delivery: &str, body: Bytes) -> Outcome {
    let response = state
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-enode-delivery", delivery)
        .header("x-enode-signature", signature::sign(secret.as_bytes(), &body))
        .timeout(state.config.webhook_timeout)
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::Unreachable(error.to_string()),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let answer = Answer { status: status.as_u16(), body: text.chars().take(ECHO_LIMIT).collect() };
    if status.is_success() { Outcome::Accepted(answer) } else { Outcome::Refused(answer) }
}

/// `POST /webhooks/{id}/test`: one `enode:webhook:test` event, sent now, not retried. A success
/// reactivates an inactive subscription.
pub async fn test(state: &SimState, sub: &Subscription) -> WebhookTestResult {
    let (url, secret) = {
        let meta = lock(&sub.meta);
        (meta.url.clone(), meta.secret.clone())
    };
    let body = body_of(&[outbox::webhook_test(state.clock.now())]);
    let delivery = Uuid::new_v4().to_string();
    let outcome = post(state, &url, &secret, &delivery, body).await;
    let mut stats = lock(&state.stats);
    let counts = stats.webhooks();
    counts.attempted += 1;
    match outcome {
        Outcome::Accepted(answer) => {
            counts.succeeded += 1;
            counts.events_delivered += 1;
            drop(stats);
            {
                let mut meta = lock(&sub.meta);
                meta.last_success = Some(Utc::now());
                meta.is_active = !meta.deleted;
            }
            sub.wake.notify_one();
            WebhookTestResult {
                status: WebhookTestStatus::Success,
                description: format!("the receiver answered {}", answer.status),
                response: Some(echo(&answer)),
            }
        }
        Outcome::Refused(answer) => {
            counts.failed += 1;
            WebhookTestResult {
                status: WebhookTestStatus::Failure,
                description: format!("the receiver answered {}", answer.status),
                response: Some(echo(&answer)),
            }
        }
        Outcome::Unreachable(error) => {
            counts.failed += 1;
            let (description, response) = (format!("the receiver could not be reached: {error}"), None);
            WebhookTestResult { status: WebhookTestStatus::Failure, description, response }
        }
    }
}

fn echo(answer: &Answer) -> serde_json::Value {
    serde_json::json!({ "code": answer.status, "body": answer.body })
}

/// Every `interval`, each active subscription gets a `system:heartbeat` naming how many events
/// wait for it.
pub async fn heartbeat_forever(state: Arc<SimState>) {
    let interval = state.config.heartbeat_interval.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let now = state.clock.now();
        state.bus.publish_to_all(|sub| outbox::heartbeat(now, sub.pending()));
    }
}
