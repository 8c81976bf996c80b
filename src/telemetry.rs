//! Logging and error reporting: one `tracing` subscriber (text or JSON, filtered by RUST_LOG or
//! the configured level) and, when a DSN is configured, Sentry.
//!
//! Sentry gets: panics (with the context of the span they happened in), every ERROR event (with
//! the fields of its request or vehicle span), and WARN/INFO events as breadcrumbs. A vehicle
//! actor's panic is the exception: the fleet restarts the actor, and reports the incident once,
//! as an ERROR, when the vehicle is marked degraded. Reporting every panic of a car that keeps
//! crashing would bury everything else (see `install_panic_filter`).
//!
//! Nothing secret reaches a log line: secrets are `config::Secret` (redacted in Debug), API keys
//! are only ever hashed, request spans carry the route template (never the raw path or headers).

use std::io::IsTerminal;
use std::sync::Arc;

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer, SpanLayer};
use tracing::{Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Spans Sentry follows: their fields are attached to the errors raised inside them.
const SENTRY_SPANS: [&str; 2] = ["request", evconduit_actors::vehicle::ACTOR_SPAN];

/// Installs the global subscriber, writing to stderr. Safe to call more than once (later calls
/// do nothing), which keeps tests that start several apps quiet and correct.
pub fn init(format: LogFormat, default_level: &str, sentry: bool) {
    let _ = tracing_subscriber::registry()
        .with(log_layer(format, default_level, std::io::stderr, std::io::stderr().is_terminal()))
        .with(sentry.then(sentry_layers))
        .try_init();
}

/// The log output: `format` lines to `writer`, filtered by RUST_LOG or `default_level`. Text
/// lines are coloured only when `colour` (stderr is a terminal): escape codes are noise in a
/// file, a journal or a log collector.
pub fn log_layer<S, W>(
    format: LogFormat,
    default_level: &str,
    writer: W,
    colour: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(colour);
    match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    }
}

/// What Sentry takes from `tracing`: our two span kinds (for context), ERROR events as events,
/// INFO and WARN events as breadcrumbs. Every filter is bounded by a level, so with Sentry on,
/// DEBUG and TRACE call sites (hyper's, sqlx's) stay disabled at the call site, as without it.
pub fn sentry_layers<S>() -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let our_spans = || {
        filter_fn(|m| m.is_span() && *m.level() <= Level::INFO && SENTRY_SPANS.contains(&m.name()))
            .with_max_level_hint(LevelFilter::INFO)
    };
    let breadcrumbs = filter_fn(|m| m.is_event() && matches!(*m.level(), Level::WARN | Level::INFO))
        .with_max_level_hint(LevelFilter::INFO);
    SpanLayer::new()
        .with_filter(our_spans())
        .and_then(BreadcrumbLayer::new().with_filter(breadcrumbs))
        // Spans must pass too, or their fields would not reach the events raised inside them.
        .and_then(ErrorLayer::new().enable_span_attributes().with_filter(LevelFilter::ERROR.or(our_spans())))
}

/// Sentry's options, when a DSN is configured (`sentry_dsn`, else the standard `SENTRY_DSN`).
/// A DSN that does not parse is reported on stderr and Sentry stays off: a typo must not stop
/// the service.
pub fn sentry_options(config: &Config) -> Option<sentry::ClientOptions> {
    let dsn = match &config.sentry_dsn {
        Some(dsn) => dsn.expose().to_owned(),
        None => std::env::var("SENTRY_DSN").ok()?,
    };
    if dsn.trim().is_empty() {
        return None;
    }
    let dsn = match dsn.trim().parse::<sentry::types::Dsn>() {
        Ok(dsn) => dsn,
        Err(_) => {
            eprintln!("evconduit: the Sentry DSN is not valid; error reporting is off");
            return None;
        }
    };
    let mut options = sentry::ClientOptions::new().maybe_release(sentry::release_name!());
    options.dsn = Some(dsn);
    options.environment = config.sentry_environment.clone().map(Into::into);
    options.attach_stacktrace = true;
    options.send_default_pii = false;
    Some(options)
}

/// Starts Sentry (call before the async runtime starts, so its panic hook sees every thread).
/// Keep the guard until exit: dropping it flushes queued events.
pub fn init_sentry(options: sentry::ClientOptions) -> sentry::ClientInitGuard {
    let guard = sentry::init(options);
    install_panic_filter();
    guard
}

/// Wraps the panic hook Sentry installed: a panic inside a vehicle actor is logged (a WARN, so a
/// breadcrumb) instead of reported, since the fleet reports the incident once; every other panic
/// goes to Sentry as before.
pub fn install_panic_filter() {
    let report: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> = Arc::from(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| {
        if in_vehicle_actor() {
            tracing::warn!(panic = %info, "vehicle actor panicked; the fleet restarts it");
        } else {
            report(info);
        }
    }));
}

/// Whether the current span, or one it is inside, is a vehicle actor's.
fn in_vehicle_actor() -> bool {
    let Some(id) = tracing::Span::current().id() else {
        return false;
    };
    tracing::dispatcher::get_default(|dispatch| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return false;
        };
        registry.span(&id).is_some_and(|span| span.scope().any(|s| s.name() == evconduit_actors::vehicle::ACTOR_SPAN))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The text a subscriber with `log_layer(Text, .., colour)` writes for one event in a span.
    fn text_logged(colour: bool) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let out = Arc::clone(&out);
            move || Captured(Arc::clone(&out))
        };
        let subscriber = tracing_subscriber::registry().with(log_layer(LogFormat::Text, "info", writer, colour));
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("request", route = "/api/status/{vehicle_id}").entered();
            tracing::warn!(reason = "test", "something happened");
        });
        let bytes = out.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_logs_are_coloured_only_when_asked() {
        let plain = text_logged(false);
        assert!(plain.contains("something happened") && plain.contains("route"), "{plain}");
        assert!(!plain.contains('\x1b'), "escape codes in {plain:?}");
        assert!(text_logged(true).contains('\x1b'));
    }
}
