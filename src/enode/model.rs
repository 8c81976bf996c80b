//! Enode's objects, as API version 2024-10-01 shapes them. The vehicle is a domain type owned by
//! the actors crate and re-exported here; the rest are spoken by the client and the simulator.
//!
//! Objects the service passes on keep unknown fields (`extra`), so a field Enode adds tomorrow is
//! not dropped on the way through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use evconduit_actors::model::*;

/// The API version every request names in `Enode-Version`.
pub const API_VERSION: &str = "2024-10-01";

/// Body of `POST /vehicles/{id}/charging`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub action: ChargeKind,
}

/// Body of `POST /users/{userId}/link`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRequest {
    pub vendor_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    pub scopes: Vec<String>,
    pub language: String,
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_scheme: Option<String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkSession {
    pub link_url: String,
    pub link_token: String,
}

/// Body of `POST /webhooks` and `PATCH /webhooks/{id}` (every field optional on PATCH).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// A webhook subscription as Enode shows it (the secret is never returned).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub api_version: Option<String>,
    #[serde(default)]
    pub authentication: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookTestStatus {
    Success,
    Failure,
}

/// Answer of `POST /webhooks/{id}/test`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookTestResult {
    pub status: WebhookTestStatus,
    pub description: String,
    #[serde(default)]
    pub response: Option<serde_json::Value>,
}

/// The pagination envelope of list calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    pub before: Option<String>,
    pub after: Option<String>,
}

/// `application/problem+json`, Enode's error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Problem {
    pub const CONTENT_TYPE: &'static str = "application/problem+json";
    const TYPE_BASE: &'static str = "https://developers.enode.com/api/problems/";

    /// A problem of Enode's kind `kind` (the last segment of its `type` URL).
    pub fn new(kind: &str, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{}{kind}", Self::TYPE_BASE),
            title: title.into(),
            detail: Some(detail.into()),
            extra: Extra::new(),
        }
    }
}

/// `POST {token_url}` answer (client-credentials grant).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    #[serde(default)]
    pub scope: String,
    pub token_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_action_keeps_unknown_fields() {
        let raw = serde_json::json!({
            "id": "a1", "userId": "u1", "createdAt": "2026-11-25T09:00:00Z",
            "updatedAt": "2026-11-25T09:00:00Z", "completedAt": null, "state": "PENDING",
            "targetId": "v1", "targetType": "vehicle", "kind": "START", "failureReason": null,
            "newField": 5
        });
        let action: ChargeAction = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(action.state, ActionState::Pending);
        assert_eq!(serde_json::to_value(&action).unwrap()["newField"], 5);
    }
}

// Hand-written `Debug` for the objects that carry secrets: one `?request` in a log line must not
// leak a webhook secret, an access token or a single-use link token.

impl std::fmt::Debug for LinkSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSession").field("link_url", &"[redacted]").field("link_token", &"[redacted]").finish()
    }
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("events", &self.events)
            .field("api_version", &self.api_version)
            .finish()
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish()
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let request = WebhookRequest { secret: Some("whsec-123".into()), ..WebhookRequest::default() };
        let token = TokenResponse {
            access_token: "tok-456".into(),
            expires_in: 1,
            scope: String::new(),
            token_type: "bearer".into(),
        };
        let link = LinkSession { link_url: "https://link/?t=789".into(), link_token: "lt-789".into() };
        let text = format!("{request:?} {token:?} {link:?}");
        for secret in ["whsec-123", "tok-456", "lt-789"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
