//! Webhook subscriptions and their queues of pending events. The world hands every event here;
//! each active subscription that wants it queues it; its delivery worker (webhooks.rs) drains the
//! queue in batches.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use super::lock;
use super::outbox::OutEvent;
use crate::enode::model::{Extra, WebhookSubscription};

#[derive(Clone, Debug)]
pub struct SubMeta {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub api_version: Option<String>,
    pub is_active: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
}

impl SubMeta {
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

#[derive(Debug)]
pub struct Subscription {
    pub id: Uuid,
    pub meta: Mutex<SubMeta>,
    pub queue: Mutex<VecDeque<OutEvent>>,
    /// Wakes the delivery worker: new events, reactivation, deletion.
    pub wake: Notify,
}

impl Subscription {
    pub fn view(&self) -> WebhookSubscription {
        let meta = lock(&self.meta);
        WebhookSubscription {
            id: self.id.to_string(),
            url: meta.url.clone(),
            events: meta.events.clone(),
            last_success: meta.last_success,
            is_active: meta.is_active,
            created_at: meta.created_at,
            api_version: meta.api_version.clone(),
            authentication: None,
            extra: Extra::new(),
        }
    }

    pub fn pending(&self) -> usize {
        lock(&self.queue).len()
    }
}

#[derive(Debug)]
pub struct Bus {
    /// In creation order (that is how `GET /webhooks` lists them).
    subs: Mutex<Vec<Arc<Subscription>>>,
    queue_limit: usize,
}

impl Bus {
    pub fn new(queue_limit: usize) -> Self {
        Self { subs: Mutex::new(Vec::new()), queue_limit: queue_limit.max(1) }
    }

    pub fn add(&self, sub: Arc<Subscription>) {
        lock(&self.subs).push(sub);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Subscription>> {
        let id = Uuid::parse_str(id).ok()?;
        lock(&self.subs).iter().find(|s| s.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Subscription>> {
        lock(&self.subs).clone()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Subscription>> {
        let id = Uuid::parse_str(id).ok()?;
        let mut subs = lock(&self.subs);
        let index = subs.iter().position(|s| s.id == id)?;
        Some(subs.remove(index))
    }

    /// Is anyone listening? When not, the world does not even render events.
    pub fn listening(&self) -> bool {
        lock(&self.subs).iter().any(|s| lock(&s.meta).is_active)
    }

    /// Queues each event on every active subscription that wants it. Returns the events thrown
    /// away because a queue was full (the oldest go, as the newest state matters most).
    pub fn publish(&self, events: &[OutEvent]) -> u64 {
        if events.is_empty() {
            return 0;
        }
        let mut discarded = 0;
        for sub in lock(&self.subs).iter() {
            let meta = lock(&sub.meta);
            if !meta.is_active || meta.deleted {
                continue;
            }
            let mut queue = lock(&sub.queue);
            let before = queue.len();
            queue.extend(events.iter().filter(|e| meta.wants(e.name)).cloned());
            while queue.len() > self.queue_limit {
                queue.pop_front();
                discarded += 1;
            }
            if queue.len() != before {
                sub.wake.notify_one();
            }
        }
        discarded
    }

    /// Queues one event on every active subscription regardless of its filter (heartbeats).
    pub fn publish_to_all(&self, make: impl Fn(&Subscription) -> OutEvent) {
        for sub in lock(&self.subs).iter() {
            if !lock(&sub.meta).is_active {
                continue;
            }
            let event = make(sub);
            lock(&sub.queue).push_back(event);
            sub.wake.notify_one();
        }
    }
}
