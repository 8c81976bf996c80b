//! A local webhook receiver: checks every delivery's signature over the raw bytes with
//! `signature::verify` and parses it with the service's own `parse_batch`, then answers with
//! whatever status the test sets.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use evconduit::enode::events::parse_batch;
use evconduit::enode::signature;
use tokio::net::TcpListener;

pub const SECRET: &str = "receiver-secret-0123456789";

#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub content_type: String,
    pub events: Vec<serde_json::Value>,
}

#[derive(Default)]
struct Inner {
    deliveries: Mutex<Vec<Delivery>>,
    /// Every attempt's delivery id, failed ones included.
    attempts: Mutex<Vec<String>>,
    bad_signatures: AtomicUsize,
    /// 0 = answer 200.
    status: AtomicU16,
    /// The next this-many attempts answer 500 whatever `status` says.
    fail_next: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().route("/hook", post(receive)).with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// Successful deliveries, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.deliveries.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> Vec<String> {
        self.inner.attempts.lock().unwrap().clone()
    }

    /// Every event of every successful delivery.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.deliveries().into_iter().flat_map(|d| d.events).collect()
    }

    pub fn events_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.events().into_iter().filter(|e| e["event"] == name).collect()
    }

    pub fn bad_signatures(&self) -> usize {
        self.inner.bad_signatures.load(Ordering::SeqCst)
    }

    pub fn answer(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    pub fn fail_next(&self, attempts: usize) {
        self.inner.fail_next.store(attempts, Ordering::SeqCst);
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let id = header("x-enode-delivery");
    inner.attempts.lock().unwrap().push(id.clone());
    if !signature::verify([SECRET.as_bytes()], &header("x-enode-signature"), &body) {
        inner.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if parse_batch(&body).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let failing = inner.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = inner.status.load(Ordering::SeqCst);
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if status != 0 && status != 200 {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
    inner.deliveries.lock().unwrap().push(Delivery { id, content_type: header("content-type"), events });
    StatusCode::OK
}
