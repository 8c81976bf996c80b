//! A stand-in for Home Assistant's webhook endpoint (`POST /api/webhook/{webhook_id}`), answering
//! as the EVConduit integration's handler does: 200 "OK", 200 "OK (ignored - different vehicle)"
//! when the pushed id is not the one its entry holds, 400 without a `vehicle`; or, as a test
//! sets it, 404, 500, slowly, or not at all (the port closed).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use evconduit_actors::testing::eventually_some;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// As HA does: OK, or "ignored - different vehicle" when the id does not match.
    Normal,
    NotFound,
    ServerError,
    /// Answers normally after this long.
    Slow(Duration),
}

/// One request that reached the receiver.
#[derive(Clone, Debug)]
pub struct Push {
    pub at: Instant,
    pub webhook_id: String,
    pub body: Value,
    /// 200 "OK": HA took it.
    pub accepted: bool,
}

impl Push {
    pub fn battery(&self) -> &Value {
        &self.body["vehicle"]["batteryLevel"]
    }
}

struct Inner {
    answer: Mutex<Answer>,
    /// The vehicle id HA's entry holds, per webhook id; pushes naming another are ignored.
    holds: Mutex<Vec<(String, String)>>,
    requests: Mutex<Vec<Push>>,
}

pub struct HaReceiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl HaReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            answer: Mutex::new(Answer::Normal),
            holds: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let receiver = Self { addr, inner, server: Mutex::new(None) };
        receiver.serve(listener);
        receiver
    }

    /// The `external_url` HA would register.
    pub fn external_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn answer(&self, answer: Answer) {
        *self.inner.answer.lock().unwrap() = answer;
    }

    /// HA's entry behind `webhook_id` holds `vehicle_id`.
    pub fn holds(&self, webhook_id: &str, vehicle_id: &str) {
        self.inner.holds.lock().unwrap().push((webhook_id.to_owned(), vehicle_id.to_owned()));
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<Push> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The pushes HA took, in arrival order.
    pub fn accepted(&self) -> Vec<Push> {
        self.requests().into_iter().filter(|p| p.accepted).collect()
    }

    /// Closes the port (as a stopped HA): new connections are refused.
    pub async fn down(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some((stop, task)) = server {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Opens the same port again.
    pub async fn up(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the receiver's port");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let app = Router::new().route("/api/webhook/{webhook_id}", post(receive)).with_state(Arc::clone(&self.inner));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        *self.server.lock().unwrap() = Some((stop, task));
    }

    /// Waits until `n` pushes were accepted (generous: a loaded machine).
    pub async fn wait_accepted(&self, n: usize) -> Vec<Push> {
        eventually_some(&format!("{n} pushes accepted"), Duration::from_secs(30), || {
            let accepted = self.accepted();
            std::future::ready((accepted.len() >= n).then_some(accepted))
        })
        .await
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(webhook_id): Path<String>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let at = Instant::now();
    let answer = *inner.answer.lock().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let record = |accepted: bool| {
        inner.requests.lock().unwrap().push(Push { at, webhook_id: webhook_id.clone(), body: body.clone(), accepted })
    };
    match answer {
        Answer::NotFound => {
            record(false);
            return (StatusCode::NOT_FOUND, "");
        }
        Answer::ServerError => {
            record(false);
            return (StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error");
        }
        Answer::Slow(delay) => tokio::time::sleep(delay).await,
        Answer::Normal => {}
    }
    if !body.is_object() || body.get("vehicle").is_none() {
        record(false);
        return (StatusCode::BAD_REQUEST, "missing vehicle");
    }
    let held = inner.holds.lock().unwrap().iter().find(|(hook, _)| *hook == webhook_id).map(|(_, id)| id.clone());
    if held.is_some_and(|id| body["vehicleId"] != id.as_str()) {
        record(false);
        return (StatusCode::OK, "OK (ignored - different vehicle)");
    }
    record(true);
    (StatusCode::OK, "OK")
}
