//! `GET /admin`: the fleet at a glance, as one server-rendered HTML page (no scripts, no
//! front-end build): counts by status, the vehicles that need a look first, the upstream budget
//! and webhook health. It reloads itself every 15 seconds.
//!
//! A browser logs in with its own Basic-auth prompt (any user name, the admin token or an admin
//! user's API key as the password) and resends it on every reload.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::actors::rows;
use super::auth::Admin;
use super::overview::{upstream_now, webhooks_now};
use super::view::ActorRow;
use crate::http::AppState;
use crate::http::error::ApiError;

/// Most rows the page shows; the JSON API pages through the rest.
const MAX_ROWS: usize = 200;
const REFRESH_SECS: u32 = 15;
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
th{background:#f3f3f3}.degraded,.restarting{background:#fde2e2}.stopped,.stale{background:#fff4d6}\
.counts span{display:inline-block;margin-right:1.5rem}";

/// The admin page.
#[utoipa::path(
    get,
    path = "/admin",
    operation_id = "admin_page",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The fleet overview page", content_type = "text/html", body = String),
        (status = 401, description = "Log in (Basic auth prompt)"),
        (status = 403, description = "Not an administrator's key"),
    )
)]
pub async fn page(State(app): State<AppState>, admin: Result<Admin, ApiError>) -> Response {
    match admin {
        Ok(_) => Html(render(&app)).into_response(),
        // A browser shows its login prompt for a Basic challenge; the JSON routes keep Bearer.
        Err(ApiError::Unauthorized(_)) => {
            let mut response =
                (StatusCode::UNAUTHORIZED, "log in with the admin token as the password").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"evconduit admin\""));
            response
        }
        Err(other) => other.into_response(),
    }
}

fn render(app: &AppState) -> String {
    let all = rows(app, |_| true);
    let mut counts = [0usize; 5];
    let mut stale = 0;
    for row in &all {
        counts[row.status as usize] += 1;
        stale += usize::from(row.status.is_healthy() && !row.healthy());
    }
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>evconduit admin</title><style>{STYLE}</style></head><body><h1>evconduit fleet</h1>\
         <p class=\"counts\" id=\"counts\"><span>vehicles: <b>{}</b></span><span>running: <b>{}</b></span><span>idle: <b>{}</b></span>\
         <span>restarting: <b>{}</b></span><span>degraded: <b>{}</b></span><span>stopped: <b>{}</b></span>\
         <span>stale or relink needed: <b>{stale}</b></span></p>",
        all.len(),
        counts[0],
        counts[4],
        counts[1],
        counts[2],
        counts[3],
    );
    actor_table(&mut html, &all);
    upstream_section(&mut html, app);
    webhook_section(&mut html, app);
    html.push_str("</body></html>");
    html
}

fn actor_table(html: &mut String, rows: &[ActorRow]) {
    let _ = write!(
        html,
        "<h2>Vehicles, unhealthy first</h2><table id=\"actors\"><thead><tr><th>vehicle</th><th>enode id</th>\
         <th>user</th><th>status</th><th>restarts (window)</th><th>last error</th><th>data age</th>\
         <th>source</th><th>last webhook</th><th>last read</th></tr></thead><tbody>"
    );
    for row in rows.iter().take(MAX_ROWS) {
        let class = if row.healthy() {
            "ok"
        } else if row.status.is_healthy() {
            "stale"
        } else {
            row.status.as_str()
        };
        let _ = write!(
            html,
            "<tr class=\"actor-row {class}\" data-vehicle=\"{id}\"><td><code>{id}</code></td><td>{enode}</td>\
             <td><code>{user}</code></td><td>{status}</td><td>{restarts}</td><td>{error}</td><td>{age}</td>\
             <td>{source}</td><td>{webhook}</td><td>{read}</td></tr>",
            id = row.internal_id,
            enode = escape(&row.enode_id),
            user = row.user_id,
            status = row.status.as_str(),
            restarts = row.restarts_in_window,
            error = escape(row.last_error.as_deref().unwrap_or("")),
            age = human_age(row.data_age_secs),
            source = row.data_source,
            webhook = row.last_webhook_at.map(|t| t.format("%F %T").to_string()).unwrap_or_default(),
            read = row.last_read_at.map(|t| t.format("%F %T").to_string()).unwrap_or_default(),
        );
    }
    html.push_str("</tbody></table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(html, "<p>{} more: see <code>/admin/actors</code>.</p>", rows.len() - MAX_ROWS);
    }
}

fn upstream_section(html: &mut String, app: &AppState) {
    let upstream = upstream_now(app);
    html.push_str("<h2>Upstream (Enode)</h2>");
    if !upstream.configured {
        let detail = upstream.detail.as_deref().unwrap_or("not configured");
        let _ = write!(html, "<p id=\"upstream\">{}</p>", escape(detail));
        return;
    }
    let number = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
    let _ = write!(
        html,
        "<table id=\"upstream\"><tr><th>budget / min</th><td>{} (+{} burst)</td></tr>\
         <tr><th>requests sent</th><td>{}</td></tr><tr><th>breaker</th><td>{}</td></tr></table>",
        number(upstream.budget_per_minute.map(u64::from)),
        number(upstream.budget_burst.map(u64::from)),
        number(upstream.requests_sent),
        escape(upstream.breaker.as_deref().unwrap_or("?")),
    );
}

fn webhook_section(html: &mut String, app: &AppState) {
    let w = webhooks_now(app);
    let when =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("never".to_owned(), |t| t.format("%F %T UTC").to_string());
    let _ = write!(
        html,
        "<h2>Webhooks</h2><table id=\"webhooks\"><tr><th>deliveries / min</th><td>{:.1}</td></tr>\
         <tr><th>events / min</th><td>{:.1}</td></tr><tr><th>last delivery</th><td>{}</td></tr>\
         <tr><th>last heartbeat</th><td>{}</td></tr><tr><th>deliveries (total)</th><td>{}</td></tr>\
         <tr><th>rejected signatures</th><td>{}</td></tr></table>",
        w.per_minute.deliveries,
        w.per_minute.events,
        when(w.last_delivery_at),
        when(w.last_heartbeat_at),
        w.totals.deliveries,
        w.totals.rejected_signature,
    );
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// HTML-escapes text that came from outside (vehicle ids, error messages).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(5), "5 s");
        assert_eq!(human_age(600), "10 min");
        assert_eq!(human_age(3 * 3600), "3 h");
        assert_eq!(human_age(3 * 86_400), "3 d");
    }
}
