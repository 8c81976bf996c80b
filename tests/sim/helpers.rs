use std::time::Duration;

use evconduit::enode::model::{API_VERSION, TokenResponse};
use evconduit::enode::sim::{EnodeSim, SimConfig, SimHandle};
pub use evconduit_actors::testing::{eventually, eventually_some};
use reqwest::{Method, Response};
use serde::Serialize;
use tokio::net::TcpListener;

/// A simulator whose clock stands still (tests move it with `advance`) and ticks often.
pub fn frozen(vehicles: usize) -> SimConfig {
    SimConfig { vehicles, time_factor: 0.0, tick_interval: Duration::from_millis(20), ..SimConfig::default() }
}

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    EnodeSim::start(config, listener).await.expect("start simulator")
}

pub async fn fetch_token(sim: &SimHandle) -> Response {
    reqwest::Client::new()
        .post(sim.token_url())
        .basic_auth(sim.client_id(), Some(sim.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
}

/// An authenticated API client.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn new(sim: &SimHandle) -> Self {
        let response = fetch_token(sim).await;
        assert_eq!(response.status(), 200);
        let token: TokenResponse = response.json().await.expect("token json");
        Self { http: reqwest::Client::new(), base: sim.base_url().to_owned(), token: token.access_token }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Enode-Version", API_VERSION)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Response {
        self.request(Method::POST, path).json(body).send().await.expect("POST")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.expect("DELETE")
    }
}

/// Control calls (no token).
pub async fn control(sim: &SimHandle, path: &str, body: serde_json::Value) -> Response {
    reqwest::Client::new()
        .post(format!("{}/_sim{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control call")
}

pub async fn assert_problem(response: Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem json");
    assert!(
        body["type"].as_str().is_some_and(|t| t.starts_with("https://developers.enode.com/api/problems/")),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    body
}
