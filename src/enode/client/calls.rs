//! The Enode calls the service makes, typed. Each names its endpoint and its priority; the
//! exchange does the rest. Calls a person waits for are `Priority::User`; the ones that can be
//! either (reading vehicles, refresh hints) take the priority from the caller.

use std::collections::HashSet;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Client;
use super::budget::Priority;
use super::endpoint::{self, Endpoint};
use super::error::EnodeError;
use super::wire::{Auth, Body, Call};
use crate::enode::model::{
    ChargeAction, ChargeKind, ChargeRequest, LinkRequest, LinkSession, Page, Vehicle, WebhookRequest,
    WebhookSubscription, WebhookTestResult,
};

/// Enode's largest page: fewer round trips, so fewer requests against the budget.
const PAGE_SIZE: &str = "50";

impl Client {
    /// `GET /vehicles/{id}`.
    pub async fn get_vehicle(&self, vehicle_id: &str, priority: Priority) -> Result<Vehicle, EnodeError> {
        let call = self.call(endpoint::GET_VEHICLE, &[vehicle_id], priority)?;
        self.json(call).await
    }

    /// Every vehicle of one user: `GET /users/{userId}/vehicles`, all pages.
    pub async fn list_user_vehicles(&self, user_id: &str, priority: Priority) -> Result<Vec<Vehicle>, EnodeError> {
        self.all_pages(endpoint::LIST_USER_VEHICLES, &[user_id], priority).await
    }

    /// Every vehicle of the client: `GET /vehicles`, all pages.
    pub async fn list_vehicles(&self, priority: Priority) -> Result<Vec<Vehicle>, EnodeError> {
        self.all_pages(endpoint::LIST_VEHICLES, &[], priority).await
    }

    /// `POST /users/{userId}/link`: a link session (creates the user at Enode on first use).
    pub async fn create_link_session(&self, user_id: &str, request: &LinkRequest) -> Result<LinkSession, EnodeError> {
        let call = self.call(endpoint::CREATE_LINK, &[user_id], Priority::User)?;
        self.json(with_json(call, request)?).await
    }

    /// `POST /vehicles/{id}/charging` with START or STOP. Never repeated after a 5xx or a
    /// timeout: the caller learns the outcome from the action or the next webhook.
    pub async fn charge(&self, vehicle_id: &str, kind: ChargeKind) -> Result<ChargeAction, EnodeError> {
        let call = self.call(endpoint::CHARGE, &[vehicle_id], Priority::User)?;
        self.json(with_json(call, &ChargeRequest { action: kind })?).await
    }

    /// `GET /vehicles/actions/{id}`.
    pub async fn get_action(&self, action_id: &str) -> Result<ChargeAction, EnodeError> {
        let call = self.call(endpoint::GET_ACTION, &[action_id], Priority::User)?;
        self.json(call).await
    }

    /// `POST /vehicles/actions/{id}/cancel`; 409 (`Conflict`) if it already resolved.
    pub async fn cancel_action(&self, action_id: &str) -> Result<ChargeAction, EnodeError> {
        let call = self.call(endpoint::CANCEL_ACTION, &[action_id], Priority::User)?;
        self.json(call).await
    }

    /// `POST /vehicles/{id}/refresh-hint`: asks Enode to refresh the vehicle soon.
    pub async fn refresh_hint(&self, vehicle_id: &str, priority: Priority) -> Result<(), EnodeError> {
        let call = self.call(endpoint::REFRESH_HINT, &[vehicle_id], priority)?;
        self.no_content(call).await
    }

    /// `DELETE /users/{userId}`: the user and every link of theirs.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), EnodeError> {
        let call = self.call(endpoint::DELETE_USER, &[user_id], Priority::User)?;
        self.no_content(call).await
    }

    /// `DELETE /users/{userId}/vendors/{vendor}`.
    pub async fn unlink_vendor(&self, user_id: &str, vendor: &str) -> Result<(), EnodeError> {
        let call = self.call(endpoint::UNLINK_VENDOR, &[user_id, vendor], Priority::User)?;
        self.no_content(call).await
    }

    /// `POST /webhooks`.
    pub async fn create_webhook(&self, request: &WebhookRequest) -> Result<WebhookSubscription, EnodeError> {
        let call = self.call(endpoint::CREATE_WEBHOOK, &[], Priority::User)?;
        self.json(with_json(call, request)?).await
    }

    /// `GET /webhooks`, all pages.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookSubscription>, EnodeError> {
        self.all_pages(endpoint::LIST_WEBHOOKS, &[], Priority::User).await
    }

    /// `GET /webhooks/{id}`.
    pub async fn get_webhook(&self, webhook_id: &str) -> Result<WebhookSubscription, EnodeError> {
        let call = self.call(endpoint::GET_WEBHOOK, &[webhook_id], Priority::User)?;
        self.json(call).await
    }

    /// `PATCH /webhooks/{id}` with the fields to change.
    pub async fn update_webhook(
        &self,
        webhook_id: &str,
        request: &WebhookRequest,
    ) -> Result<WebhookSubscription, EnodeError> {
        let call = self.call(endpoint::UPDATE_WEBHOOK, &[webhook_id], Priority::User)?;
        self.json(with_json(call, request)?).await
    }

    /// `DELETE /webhooks/{id}`.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), EnodeError> {
        let call = self.call(endpoint::DELETE_WEBHOOK, &[webhook_id], Priority::User)?;
        self.no_content(call).await
    }

    /// `POST /webhooks/{id}/test`: Enode sends a test event; success reactivates it.
    pub async fn test_webhook(&self, webhook_id: &str) -> Result<WebhookTestResult, EnodeError> {
        let call = self.call(endpoint::TEST_WEBHOOK, &[webhook_id], Priority::User)?;
        self.json(call).await
    }

    fn call(&self, endpoint: Endpoint, args: &[&str], priority: Priority) -> Result<Call, EnodeError> {
        Ok(Call {
            url: endpoint.url(self.exchange.api_url(), args)?,
            endpoint,
            priority,
            query: Vec::new(),
            body: Body::Empty,
            auth: Auth::Bearer,
        })
    }

    async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, EnodeError> {
        self.exchange.execute(&call, decode_json).await
    }

    async fn no_content(&self, call: Call) -> Result<(), EnodeError> {
        self.exchange.execute(&call, |_| Ok(())).await
    }

    /// Follows `pagination.after` to the end. A cursor seen twice would loop forever, so it ends
    /// the listing with an error instead.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        args: &[&str],
        priority: Priority,
    ) -> Result<Vec<T>, EnodeError> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let mut call = self.call(endpoint, args, priority)?;
            call.query.push(("pageSize", PAGE_SIZE.to_owned()));
            if let Some(cursor) = after.take() {
                call.query.push(("after", cursor));
            }
            let page: Page<T> = self.json(call).await?;
            let empty = page.data.is_empty();
            items.extend(page.data);
            match page.pagination.after {
                Some(next) if !next.is_empty() && !empty => {
                    if !seen.insert(next.clone()) {
                        return Err(EnodeError::Decode(format!("{}: pagination cursor repeats", endpoint.route)));
                    }
                    after = Some(next);
                }
                _ => return Ok(items),
            }
        }
    }
}

fn with_json(mut call: Call, body: &impl Serialize) -> Result<Call, EnodeError> {
    let bytes = serde_json::to_vec(body).map_err(|e| EnodeError::Decode(e.to_string()))?;
    call.body = Body::Json(Bytes::from(bytes));
    Ok(call)
}

fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}
