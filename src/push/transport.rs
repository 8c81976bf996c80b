//! `PushTransport` over HTTP: one POST per delivery, the outcome typed so each failure keeps
//! its own reason (timeout, connection refused, 4xx, 5xx, a refused address, an id mismatch).

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use evconduit_actors::ports::{PushOutcome, PushTransport};
use reqwest::header::CONTENT_TYPE;
use url::{Host, Url};

use super::guard::{ForbiddenTarget, GuardedResolver, forbidden};

/// What HA's webhook handler answers (with 200) when the pushed id is not the one its entry holds.
const DIFFERENT_VEHICLE: &str = "different vehicle";
/// HA's answers are a few bytes; more than this is not read.
const MAX_ANSWER_BYTES: usize = 4096;

#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Push to loopback, private, link-local and metadata addresses too (a LAN install).
    pub allow_private: bool,
    /// The whole delivery, connecting and reading the answer included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

pub struct HttpPushTransport {
    client: reqwest::Client,
    config: TransportConfig,
}

impl HttpPushTransport {
    pub fn new(config: TransportConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: config.allow_private }))
            // A redirect could lead anywhere, an internal address included: HA does not redirect
            // its webhooks, so a redirect is a failure.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect for us, to addresses the guard never saw.
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            // Pushes to one HA come in bursts (several cars, a charging session): keep a
            // connection briefly, not for long (HA instances are many, each talked to rarely).
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .user_agent(concat!("evconduit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, config })
    }
}

#[async_trait]
impl PushTransport for HttpPushTransport {
    async fn deliver(&self, url: &str, body: Bytes) -> PushOutcome {
        let Ok(url) = Url::parse(url) else {
            return PushOutcome::Failed("not a URL".into());
        };
        // An IP literal is connected to without resolving: check it here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(ip.into()),
            Some(Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if !self.config.allow_private
            && let Some(kind) = literal.and_then(forbidden)
        {
            return PushOutcome::Refused(format!("{kind} address"));
        }
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.config.timeout)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return failure(err),
        };
        let status = response.status();
        if status.is_success() {
            let mut answer = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) if answer.len() < MAX_ANSWER_BYTES => answer.extend_from_slice(&chunk),
                    Ok(_) => break,
                    // HA has the push (it answered 2xx); only its words got lost.
                    Err(_) => break,
                }
            }
            let answer = String::from_utf8_lossy(&answer);
            return if answer.to_ascii_lowercase().contains(DIFFERENT_VEHICLE) {
                PushOutcome::IdMismatch
            } else {
                PushOutcome::Delivered
            };
        }
        match status.as_u16() {
            code @ 400..=499 => PushOutcome::Http4xx(code),
            code @ 500..=599 => PushOutcome::Http5xx(code),
            code => PushOutcome::Failed(format!("unexpected status {code}")),
        }
    }
}

/// Names a failed request. The message never carries the URL (a secret): `without_url`.
fn failure(err: reqwest::Error) -> PushOutcome {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(forbidden) = cause.downcast_ref::<ForbiddenTarget>() {
            return PushOutcome::Refused(forbidden.to_string());
        }
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return PushOutcome::ConnectRefused;
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return PushOutcome::Timeout;
    }
    let mut root = err.source();
    while let Some(next) = root.and_then(|e| e.source()) {
        root = Some(next);
    }
    let root = root.map(ToString::to_string);
    let kind = if err.is_connect() { "connect" } else { "request" };
    PushOutcome::Failed(match root {
        Some(root) => format!("{kind}: {root}"),
        None => format!("{kind}: {}", err.without_url()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(allow_private: bool) -> HttpPushTransport {
        HttpPushTransport::new(TransportConfig {
            allow_private,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        })
        .expect("client")
    }

    #[tokio::test]
    async fn internal_literals_are_refused_without_a_connection() {
        let t = transport(false);
        for url in ["http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://169.254.169.254/latest", "http://[::1]:9/x"] {
            let outcome = t.deliver(url, Bytes::from_static(b"{}")).await;
            assert!(matches!(outcome, PushOutcome::Refused(_)), "{url}: {outcome:?}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let outcome = transport(false).deliver("http://localhost:9/x", Bytes::from_static(b"{}")).await;
        assert_eq!(outcome, PushOutcome::Refused("loopback address".into()));
    }

    #[tokio::test]
    async fn allowed_private_targets_are_tried() {
        // Nothing listens on port 9 (discard) here: the attempt is made and refused by the OS.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let outcome = transport(true).deliver(&format!("http://127.0.0.1:{port}/x"), Bytes::new()).await;
        assert_eq!(outcome, PushOutcome::ConnectRefused);
        let outcome = transport(true).deliver(&format!("http://localhost:{port}/x"), Bytes::new()).await;
        assert_eq!(outcome, PushOutcome::ConnectRefused);
    }
}
