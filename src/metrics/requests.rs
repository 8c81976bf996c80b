//! HTTP request metrics: one latency histogram per (route, method, status). Its `_count` series
//! are the request counts, so there is no separate counter to keep in step.
//!
//! Recorded on every request, so the label set is built without allocating: the route is axum's
//! `MatchedPath` (an `Arc<str>` clone), the method is `http::Method` (inline for the standard
//! ones), the status a number.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Seconds. Reads are answered from memory in well under a millisecond; webhooks touch the store.
const BUCKETS: [f64; 12] = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The route template a request matched (`/api/status/{vehicle_id}`), never the raw path: raw
/// paths would make one series per vehicle id.
#[derive(Clone, Debug)]
pub enum Route {
    Matched(MatchedPath),
    /// No route matched (404 from the fallback).
    Unmatched,
}

impl Route {
    pub fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    pub route: Route,
    /// One of a fixed set (see `method_label`): hyper accepts any token as a method, and every
    /// distinct label value is a series kept forever.
    pub method: &'static str,
    pub status: u16,
}

/// The method as a bounded label: the standard ones by name, anything else as `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("route", self.route.as_str()).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

type Durations = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The per-request metrics; cheap to clone (the family is shared).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    durations: Durations,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { durations: Family::new_with_constructor(|| Histogram::new(BUCKETS)) }
    }
}

impl HttpMetrics {
    pub fn observe(&self, labels: &RequestLabels, elapsed: Duration) {
        self.durations.get_or_create(labels).observe(elapsed.as_secs_f64());
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests by route template, method and status, with their latency",
            Unit::Seconds,
            self.durations.clone(),
        );
    }
}

#[cfg(test)]
mod method_label_tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        for invented in ["FOO", "BAR", "X-A-VERY-LONG-INVENTED-METHOD"] {
            assert_eq!(method_label(&Method::from_bytes(invented.as_bytes()).unwrap()), "OTHER");
        }
    }
}
