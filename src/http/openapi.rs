//! `GET /openapi.json`: the OpenAPI description of every public route, built from the routes
//! themselves. Each router module registers its handlers with utoipa-axum's `routes!`, which
//! only compiles for a handler carrying `#[utoipa::path(...)]`; the route and its description
//! are one registration, so they cannot drift apart. See the pattern at the top of http/mod.rs.
//!
//! The tests below keep it that way: no module may add a route behind the spec's back (a plain
//! `.route(`), and every operation in the spec has a summary and answers.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Spec, PathItem};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// The error body every route answers with (see error.rs).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub detail: String,
    /// A stable machine-readable name (`unauthorized`, `not_found`, ...).
    pub code: String,
}

/// A vehicle's status as Home Assistant reads it: Enode's vehicle object (unknown fields kept)
/// plus the contract's additions and legacy flat keys. Only the keys HA depends on are listed;
/// others may appear.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct VehicleStatus {
    /// The Enode vehicle id.
    id: String,
    user_id: Option<String>,
    vendor: Option<String>,
    last_seen: Option<String>,
    is_reachable: Option<bool>,
    #[schema(value_type = Object)]
    information: serde_json::Value,
    #[schema(value_type = Object)]
    charge_state: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    location: Option<serde_json::Value>,
    vehicle_name: String,
    /// Enode's `powerDeliveryState`.
    charging_state: String,
    enode_id: String,
    internal_id: String,
    relink_required: bool,
    battery_level: Option<f64>,
    range: Option<f64>,
    is_charging: Option<bool>,
    is_plugged_in: Option<bool>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    location_available: bool,
}

/// An entry of the caller's vehicle list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct VehicleListItem {
    id: String,
    internal_id: String,
    vendor: Option<String>,
    #[schema(value_type = Object)]
    information: serde_json::Value,
    vehicle_name: String,
    is_reachable: Option<bool>,
    last_seen: Option<String>,
}

/// The caller's account (`/api/me`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Me {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    email: String,
    name: String,
    /// user or admin.
    role: String,
    /// free, basic or pro (Free once a trial has ended).
    tier: String,
    is_trial: bool,
    trial_ends_at: Option<String>,
    sms_credits: u32,
}

/// The caller's account in the older shape (`/api/ha/me`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct HaMe {
    user_id: uuid::Uuid,
    tier: String,
    name: String,
    sms_credits: u32,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "evconduit", description = "A shared cache between Home Assistant and the Enode EV API"),
    modifiers(&SecuritySchemes),
    tags(
        (name = "home-assistant", description = "What the Home Assistant integration polls"),
        (name = "account", description = "The caller's API keys"),
        (name = "webhooks", description = "Enode's deliveries"),
        (name = "health", description = "Liveness and readiness for orchestrators"),
        (name = "admin", description = "Operators: actor health, upstream, webhooks, push, users"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        // The admin token or an admin user's API key; the HTML page also takes it as a Basic password.
        components.add_security_scheme("admin", bearer());
        components.add_security_scheme(
            "enode_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-enode-signature"))),
        );
    }
}

/// The route serving the spec (added after the spec is complete, and described in it).
pub const SPEC_PATH: &str = "/openapi.json";

/// Starts the API's router with the spec's header (info, tags, security schemes).
pub fn documented<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// Serves `method_router` at `alias` too, documented as a copy of `of` (which must already be
/// registered). For old URL forms that must keep working.
pub fn alias<S: Clone + Send + Sync + 'static>(
    mut router: OpenApiRouter<S>,
    alias: &str,
    of: &str,
    method_router: MethodRouter<S>,
) -> OpenApiRouter<S> {
    let paths = &mut router.get_openapi_mut().paths.paths;
    if let Some(item) = paths.get(of).cloned() {
        paths.insert(alias.to_owned(), aliased(item, alias, of));
    }
    // If `of` is missing, the alias stays undocumented and `every_route_is_documented` fails.
    router.route(alias, method_router)
}

fn aliased(mut item: PathItem, alias: &str, of: &str) -> PathItem {
    let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
    for operation in operations.into_iter().flatten() {
        // Operation ids must be unique across the spec.
        operation.operation_id = operation.operation_id.take().map(|id| format!("{id}_as{}", slug(alias)));
        operation.description = Some(format!("Alias of `{of}`, kept for older clients."));
        operation.deprecated = Some(utoipa::openapi::Deprecated::True);
    }
    item
}

fn slug(path: &str) -> String {
    path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Adds `/openapi.json` to the finished spec and returns the bytes to serve.
pub fn finish(mut spec: Spec) -> Bytes {
    let item = utoipa::openapi::path::PathItemBuilder::new()
        .operation(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This OpenAPI description"))
                .operation_id(Some("openapi_json"))
                .tag("health")
                .response("200", utoipa::openapi::ResponseBuilder::new().description("The OpenAPI 3.1 document")),
        )
        .build();
    spec.paths.paths.insert(SPEC_PATH.to_owned(), item);
    Bytes::from(spec.to_json().unwrap_or_else(|_| "{}".to_owned()))
}

/// Adds the route serving `spec` (rendered once, served as is).
pub fn with_spec_route<S: Clone + Send + Sync + 'static>(router: Router<S>, spec: Bytes) -> Router<S> {
    router.route(
        SPEC_PATH,
        axum::routing::get(move || {
            let spec = spec.clone();
            async move {
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], spec).into_response()
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Routes may only be added through `routes!` (documented) or `openapi::alias`: a plain
    /// `.route(` in an HTTP module would serve a route the spec does not describe.
    #[test]
    fn no_route_bypasses_the_spec() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut offenders = Vec::new();
        visit(&root, &mut |path, text| {
            let name = path.strip_prefix(&root).unwrap_or(path).to_string_lossy().into_owned();
            // This file wires `alias` and the spec's own route; the module docs show the pattern.
            if name == "openapi.rs" {
                return;
            }
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if [".route(", ".route_service(", ".nest_service("].iter().any(|p| code.contains(p)) {
                    offenders.push(format!("src/http/{name}:{}: {}", n + 1, line.trim()));
                }
            }
        });
        assert!(
            offenders.is_empty(),
            "routes added without an OpenAPI description (use routes!(handler) with #[utoipa::path], \
             or openapi::alias):\n{}",
            offenders.join("\n")
        );
    }

    fn visit(dir: &Path, f: &mut impl FnMut(&Path, &str)) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                visit(&path, f);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                f(&path, &text);
            }
        }
    }
}
