//! The read load: many keep-alive connections sending GETs from a pre-built pool of requests.
//!
//! Closed loop: each connection sends its next request as soon as the previous answer is in; the
//! throughput is the server's maximum for that many connections.
//!
//! Open loop (fixed rate): each connection has a schedule of intended send times. Latency is
//! measured from the INTENDED time, not from when the request actually left: a server that stalls
//! makes every request scheduled during the stall late, and they all count (no coordinated
//! omission). A connection whose previous answer is late sends its next request at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http1::Connection;

/// What one phase measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub ok: u64,
    /// Non-2xx answers and failed exchanges.
    pub errors: u64,
    pub elapsed: Duration,
    /// Microseconds.
    pub latency: Histogram<u64>,
    /// Open loop only: how late the generator itself sent the requests it was waiting to send
    /// (its task was there before the intended moment), in microseconds. Lateness there is the
    /// generator's thread not running, not the server: on a host that stops a virtual CPU now and
    /// then, it shows in both sides' tails. A stall delays every send scheduled during it but is
    /// counted once per connection (the sends after the first are already late when their task
    /// gets to them), so the maximum is the figure to read.
    pub sends_late: Histogram<u64>,
}

impl RunResult {
    fn empty() -> Self {
        Self { ok: 0, errors: 0, elapsed: Duration::ZERO, latency: histogram(), sends_late: histogram() }
    }

    /// One answer: a 2xx counts with its latency, anything else (0: no answer) as an error.
    fn count(&mut self, status: u16, latency: Duration) {
        if (200..300).contains(&status) {
            self.ok += 1;
            let _ = self.latency.record(latency.as_micros().max(1) as u64);
        } else {
            self.errors += 1;
        }
    }

    /// These counts as measured over `elapsed`.
    fn over(self, elapsed: Duration) -> Self {
        Self { elapsed, ..self }
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The generator's own lateness at `quantile` in ms, when it measured any (open loop).
    pub fn send_late(&self, quantile: f64) -> Option<f64> {
        (!self.sends_late.is_empty()).then(|| self.sends_late.value_at_quantile(quantile) as f64 / 1000.0)
    }
}

fn histogram() -> Histogram<u64> {
    // 1 us .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds are valid")
}

/// A cheap per-connection random source (xorshift64*): picking the next vehicle must cost nothing.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n
    }
}

/// Closed loop for `duration` after `warmup` (not recorded) on `connections` connections.
pub async fn closed_loop(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> RunResult {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let mut rng = Rng::new(c as u64 + 1);
                let mut result = RunResult::empty();
                let mut conn = None;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let recording = now >= start;
                    let request = &requests[rng.below(requests.len())];
                    let (status, took) = exchange(&mut conn, addr, request).await;
                    if recording {
                        result.count(status, took);
                    }
                }
                result
            })
        })
        .collect();
    merge(tasks).await.over(duration)
}

/// Every request once, in order, on `connections` connections (each takes the next one not yet
/// sent): a whole fleet's first poll.
pub async fn each_once(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, connections: usize) -> RunResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
            tokio::spawn(async move {
                let mut result = RunResult::empty();
                let mut conn = None;
                while let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (status, took) = exchange(&mut conn, addr, request).await;
                    result.count(status, took);
                }
                result
            })
        })
        .collect();
    merge(tasks).await.over(started.elapsed())
}

/// Fixed total `rate` (requests/s) spread evenly over `connections`, for `duration`.
pub async fn open_loop(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> RunResult {
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    // Connections first, so the first scheduled sends do not pay for a handshake.
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Connection::open(addr).await.ok());
    }
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, conn)| {
            let requests = Arc::clone(&requests);
            // Stagger the connections' schedules so the sends are spread over each interval.
            let offset = interval.mul_f64(c as f64 / connections as f64);
            tokio::spawn(async move {
                let mut conn = conn;
                let mut rng = Rng::new(c as u64 + 1_000);
                let mut result = RunResult::empty();
                let mut intended = start + offset;
                while intended < end {
                    let ready = Instant::now() < intended;
                    wait_until(intended).await;
                    if ready {
                        let late = Instant::now().saturating_duration_since(intended);
                        let _ = result.sends_late.record(late.as_micros().max(1) as u64);
                    }
                    let request = &requests[rng.below(requests.len())];
                    let (status, _) = exchange(&mut conn, addr, request).await;
                    result.count(status, Instant::now().saturating_duration_since(intended));
                    intended += interval;
                }
                result
            })
        })
        .collect();
    merge(tasks).await.over(duration)
}

/// Sleeps until shortly before `at`, then yields until it: tokio's timer has a 1 ms grain, which
/// at fixed rates of tens of thousands a second would bunch sends together and, since latency
/// counts from the intended time, charge the generator's lateness to the server.
async fn wait_until(at: Instant) {
    const GRAIN: Duration = Duration::from_millis(2);
    if let Some(ahead) = at.checked_duration_since(Instant::now())
        && ahead > GRAIN
    {
        tokio::time::sleep_until((at - GRAIN).into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

/// One request on the connection, reconnecting if it is gone. Status 0 means the exchange failed.
async fn exchange(conn: &mut Option<Connection>, addr: SocketAddr, request: &[u8]) -> (u16, Duration) {
    let sent = Instant::now();
    if conn.is_none() {
        *conn = Connection::open(addr).await.ok();
    }
    let Some(c) = conn.as_mut() else {
        // Refused: do not spin on a dead server.
        tokio::time::sleep(Duration::from_millis(10)).await;
        return (0, sent.elapsed());
    };
    match c.status(request).await {
        Ok(status) => (status, sent.elapsed()),
        Err(_) => {
            *conn = None;
            (0, sent.elapsed())
        }
    }
}

/// The connections' counts, summed.
async fn merge(tasks: Vec<tokio::task::JoinHandle<RunResult>>) -> RunResult {
    let mut result = RunResult::empty();
    for task in tasks {
        let part = task.await.expect("load task panicked");
        result.ok += part.ok;
        result.errors += part.errors;
        result.latency.add(&part.latency).expect("histograms share bounds");
        result.sends_late.add(&part.sends_late).expect("histograms share bounds");
    }
    result
}
