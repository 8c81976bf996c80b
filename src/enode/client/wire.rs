//! One HTTP request on the wire: built with the version header and the credentials, sent, and
//! its fate classified (an answer, a timeout, no connection, a broken one). No policy here: the
//! exchange decides what each outcome means.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use url::Url;

use super::budget::Priority;
use super::config::ClientConfig;
use super::endpoint::Endpoint;
use super::token::Token;
use crate::config::Secret;
use crate::enode::model::API_VERSION;

/// One request to make (and perhaps repeat).
pub(crate) struct Call {
    pub endpoint: Endpoint,
    pub url: Url,
    pub priority: Priority,
    pub query: Vec<(&'static str, String)>,
    pub body: Body,
    pub auth: Auth,
}

pub(crate) enum Body {
    Empty,
    /// Serialised once, sent as often as the call is tried.
    Json(Bytes),
    Form(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The API: the cached access token.
    Bearer,
    /// The token endpoint: the client credentials.
    ClientCredentials,
}

/// What became of one request that was sent.
pub(crate) enum Sent {
    Answer {
        status: StatusCode,
        retry_after: Option<String>,
        body: Bytes,
    },
    Timeout,
    /// No connection: nothing was sent, so any call may be repeated.
    Unreachable(String),
    /// The connection broke after the request went out: Enode may have acted on it.
    Broken(String),
}

impl Sent {
    /// Failures tell the breaker Enode is in trouble; any answer below 500 proves it is up.
    pub fn is_failure(&self) -> bool {
        match self {
            Sent::Answer { status, .. } => status.is_server_error(),
            Sent::Timeout | Sent::Unreachable(_) | Sent::Broken(_) => true,
        }
    }
}

pub(crate) struct Wire {
    http: reqwest::Client,
    client_id: String,
    client_secret: Secret,
}

impl Wire {
    pub fn new(config: &ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("evconduit/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(Self { http, client_id: config.client_id.clone(), client_secret: config.client_secret.clone() })
    }

    pub async fn send(&self, call: &Call, token: Option<&Token>) -> Sent {
        let mut request = self
            .http
            .request(call.endpoint.method(), call.url.clone())
            .header("Enode-Version", API_VERSION)
            .header(ACCEPT, "application/json");
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        request = match (call.auth, token) {
            (Auth::Bearer, Some(token)) => request.bearer_auth(token.bearer()),
            _ => request.basic_auth(&self.client_id, Some(self.client_secret.expose())),
        };
        request = match &call.body {
            Body::Empty => request,
            Body::Json(bytes) => request.header(CONTENT_TYPE, "application/json").body(bytes.clone()),
            Body::Form(form) => request.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(*form),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return failed(error),
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match response.bytes().await {
            Ok(body) => Sent::Answer { status, retry_after, body },
            Err(error) => failed(error),
        }
    }
}

fn failed(error: reqwest::Error) -> Sent {
    // No URL in the message: the route already names the call.
    let error = error.without_url();
    // Connect first: a connect timeout also counts as a timeout, but nothing was sent.
    if error.is_connect() {
        Sent::Unreachable(describe(&error))
    } else if error.is_timeout() {
        Sent::Timeout
    } else {
        Sent::Broken(describe(&error))
    }
}

/// The error and its causes ("error sending request" alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
