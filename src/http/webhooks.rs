//! `POST /api/webhook/enode`: Enode's deliveries.
//!
//! Order matters: size limit, then the signature over the raw bytes (before any parsing), then the
//! shape of the body, then the delivery is recorded (idempotency by `x-enode-delivery`), then the
//! events go to the actors and the answer goes back, in milliseconds: Enode waits only 5 s.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::openapi::ErrorBody;
use crate::enode::{events, signature};
use crate::ingest::Rejection;
use crate::store::{DeliveryOutcome, NewDelivery};

const SIGNATURE: &str = "x-enode-signature";
const DELIVERY: &str = "x-enode-delivery";
/// Longest delivery id stored; Enode's are UUIDs.
const MAX_DELIVERY_ID: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

#[derive(Serialize, ToSchema)]
struct Ack {
    accepted: usize,
    duplicate: bool,
}

/// Receive a batch of Enode webhook events.
///
/// Signed with HMAC-SHA1 over the raw body (`x-enode-signature`); idempotent by
/// `x-enode-delivery`: a repeated delivery is acknowledged as a duplicate and not applied again.
#[utoipa::path(
    post,
    path = "/api/webhook/enode",
    tag = "webhooks",
    request_body(content = Vec<Object>, description = "Enode's event batch (at most 100 events)"),
    params(
        ("x-enode-signature" = String, Header, description = "sha1=<hex HMAC of the body>"),
        ("x-enode-delivery" = String, Header, description = "The delivery id (idempotency key)"),
    ),
    security(("enode_signature" = [])),
    responses(
        (status = 200, description = "Recorded and handed to the vehicles", body = Ack),
        (status = 400, description = "Missing delivery id or not a batch of events", body = ErrorBody),
        (status = 401, description = "Missing or invalid signature", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "The store is unavailable; Enode retries", body = ErrorBody),
    )
)]
async fn receive(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Ack>, ApiError> {
    let limit = app.config.enode_webhook_max_body_bytes;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|err| {
        if err.into_inner().is::<http_body_util::LengthLimitError>() {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })?;

    let signed = headers.get(SIGNATURE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let secrets = app.config.enode_webhook_secrets.iter().map(|s| s.expose().as_bytes());
    if signed.is_empty() || !signature::verify(secrets, signed, &bytes) {
        app.ingest.rejected(Rejection::Signature);
        return Err(ApiError::Unauthorized("missing or invalid x-enode-signature"));
    }

    let delivery_id = headers
        .get(DELIVERY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_DELIVERY_ID)
        .ok_or_else(|| ApiError::BadRequest(format!("missing or invalid {DELIVERY} header")))?
        .to_owned();
    let events = events::parse_batch(&bytes).map_err(|err| {
        app.ingest.rejected(Rejection::Body);
        ApiError::BadRequest(format!("not a batch of Enode events: {err}"))
    })?;

    if !app.ingest.is_accepting() {
        return Err(ApiError::Unavailable { detail: "shutting down; retry shortly".into(), retry_after_secs: Some(5) });
    }
    let now = app.clock.now();
    let count = events.len();
    let delivery =
        NewDelivery { id: delivery_id, received_at: now, event_count: i32::try_from(count).unwrap_or(i32::MAX) };
    // Recording, applying and marking applied run on their own task: if the request is cut off
    // (Enode gives up after 5 s, a proxy times out), the work still finishes instead of stopping
    // between "recorded" and "applied", which would make Enode's retry look like a duplicate.
    let work = tokio::spawn(
        async move {
            // Claimed before it is recorded: "recorded, not applied" is also what a copy finds
            // while another attempt in this process is applying the delivery or marking it
            // applied. Holding the claim, this attempt is the only one alive here, so that
            // answer can only mean an attempt cut short (a crash, a failed mark).
            let duplicate = || {
                app.ingest.duplicate();
                Ok(Ack { accepted: 0, duplicate: true })
            };
            let Some(claim) = app.ingest.claim(&delivery.id) else { return duplicate() };
            match app.store.record_delivery(&delivery).await? {
                DeliveryOutcome::Duplicate => return duplicate(),
                DeliveryOutcome::Unapplied => tracing::info!("applying a delivery that was recorded but not applied"),
                DeliveryOutcome::Recorded => {}
            }
            app.ingest.apply(events, now).await?;
            // Not awaited: the mark only matters if Enode sends this delivery again, and then
            // applying it again is harmless (newer-wins merge), whereas waiting for a second
            // write turn doubled the acknowledgement's latency under load. Applied means the
            // state is accepted into the actors; the write-behind persists it (and flushes at shutdown).
            tokio::spawn(
                async move {
                    if let Err(err) = app.store.mark_delivery_applied(&delivery.id, app.clock.now()).await {
                        tracing::warn!(error = %err, "could not mark a delivery applied; a redelivery would apply it again");
                    }
                    // Held until the mark is written (or has failed): until then the store still
                    // says "not applied".
                    drop(claim);
                }
                .in_current_span(),
            );
            Ok::<_, ApiError>(Ack { accepted: count, duplicate: false })
        }
        // The request's span (and its request id) goes along into the task's log lines.
        .instrument(tracing::Span::current()),
    );
    let ack = work.await.map_err(ApiError::internal)??;
    Ok(Json(ack))
}
