//! The operators' API under `/admin`: every vehicle actor's health and history, the upstream
//! budget, webhook and push health, users, the store's write-behind, the runtime's lateness, and an HTML overview page.
//! Only the admin token or an admin user's API key gets in (`auth`).

pub mod actors;
pub mod auth;
pub mod overview;
pub mod page;
pub mod rates;
pub mod runtime;
pub mod store;
pub mod view;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page::page))
        .routes(routes!(actors::list))
        .routes(routes!(actors::detail))
        .routes(routes!(actors::refresh))
        .routes(routes!(actors::restart))
        .routes(routes!(overview::upstream))
        .routes(routes!(overview::webhooks))
        .routes(routes!(overview::push))
        .routes(routes!(overview::users))
        .routes(routes!(store::store))
        .routes(routes!(runtime::runtime))
}
