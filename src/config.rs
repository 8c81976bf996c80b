//! One typed configuration, from (lowest to highest precedence) built-in defaults, an optional
//! TOML file (`EVCONDUIT_CONFIG`, else `./evconduit.toml` when present) and `EVCONDUIT_*`
//! environment variables. Every key `x` can also be given as `EVCONDUIT_X_FILE`, naming a file
//! that holds the value (for secrets mounted by an orchestrator).
//!
//! Environment values are strings; each is read as the type its key has in the defaults
//! (numbers, booleans, comma-separated lists), so `EVCONDUIT_ENODE_RATE_PER_MINUTE=120` works and
//! a secret made only of digits stays a string.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

const ENV_PREFIX: &str = "EVCONDUIT_";
const FILE_SUFFIX: &str = "_FILE";
/// Names the config file; not itself a config key.
const CONFIG_PATH_VAR: &str = "EVCONDUIT_CONFIG";
const DEFAULT_CONFIG_FILE: &str = "evconduit.toml";
/// A guessable admin token would open every vehicle's data; refuse short ones.
const MIN_ADMIN_TOKEN: usize = 16;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` (created if missing) or `postgres://...`.
    pub database_url: Secret,
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Secrets Enode signs webhooks with. Any one may match, so a secret can be rotated.
    pub enode_webhook_secrets: Vec<Secret>,
    /// Largest webhook body accepted, in bytes (Enode sends at most 100 events).
    pub enode_webhook_max_body_bytes: usize,
    /// How long delivery ids are remembered (to refuse replays), in days. Enode retries a
    /// delivery for 24 hours, so anything above a day is safe.
    pub webhook_delivery_retention_days: u64,
    /// The Enode client id (the user name of the client-credentials grant).
    pub enode_client_id: String,
    /// The Enode client secret. Never logged; prefer `EVCONDUIT_ENODE_CLIENT_SECRET_FILE`.
    pub enode_client_secret: Secret,
    /// Base URL of the Enode API (production; the sandbox is `https://enode-api.sandbox.enode.io`).
    pub enode_api_url: String,
    /// Enode's OAuth token endpoint (sandbox: `https://oauth.sandbox.enode.io/oauth2/token`).
    pub enode_token_url: String,
    /// Requests per minute to Enode for the whole service, shared by every user. Token requests
    /// and retries count too: this is what Enode sees.
    pub enode_rate_per_minute: u32,
    /// Requests that may go at once on top of the steady rate when the budget has been idle. In
    /// any 60 s window Enode sees at most `enode_rate_per_minute + enode_burst` requests. Kept
    /// small (5) so that a restart with a backlog of stale vehicles does not hit Enode in a spike.
    pub enode_burst: u32,
    /// Largest share (0 < x <= 1) of the rate that background refreshes may use; the rest is kept
    /// for calls a person waits for (charging, linking), which always go first.
    pub enode_background_share: f64,
    /// Whole-request timeout for one Enode call, in milliseconds.
    pub enode_request_timeout_ms: u64,
    /// TCP/TLS connect timeout to Enode, in milliseconds.
    pub enode_connect_timeout_ms: u64,
    /// Retries after the first attempt when Enode answers 5xx, times out or cannot be reached
    /// (idempotent calls only for 5xx and timeouts), or answers 429.
    pub enode_retry_max: u32,
    /// First retry backoff, in milliseconds; doubled per retry, with jitter.
    pub enode_retry_base_ms: u64,
    /// Longest retry backoff, in milliseconds.
    pub enode_retry_max_backoff_ms: u64,
    /// Pause after a 429 without `Retry-After`, in milliseconds; doubled per consecutive 429, with
    /// jitter, up to `enode_retry_max_backoff_ms` times ten.
    pub enode_rate_limited_backoff_ms: u64,
    /// Longest a call waits for a 429 pause to end; a call that would wait longer fails at once
    /// with "rate limited, retry after" instead of hanging.
    pub enode_max_rate_limit_wait_ms: u64,
    /// Consecutive failures (5xx, timeouts, unreachable) that open the circuit breaker.
    pub enode_breaker_failures: u32,
    /// How long the breaker stays open before it lets one probe call through, in milliseconds.
    pub enode_breaker_open_ms: u64,
    /// How often vehicle state is written behind to the store, in milliseconds.
    pub write_behind_interval_ms: u64,
    /// Most vehicle writes in one store transaction.
    pub write_behind_batch: usize,
    /// How often the server looks for keys revoked by another process (the CLI), in milliseconds.
    pub key_revocation_poll_ms: u64,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    /// Default log filter when RUST_LOG is not set.
    pub log_level: String,
    /// The service's public base URL (e.g. `https://evconduit.example.com`). With Enode
    /// credentials, `serve` keeps exactly one Enode webhook subscription pointing at
    /// `{public_url}/api/webhook/enode`. Empty: no subscription is managed.
    pub public_url: String,
    /// Where Enode sends the user after linking; empty: `{public_url}/linked`.
    pub link_redirect_uri: String,
    /// Data older than this is stale for a Pro user's vehicle, in seconds.
    pub freshness_pro_secs: u64,
    /// ... for a Basic user's vehicle.
    pub freshness_basic_secs: u64,
    /// ... for a Free user's vehicle.
    pub freshness_free_secs: u64,
    /// A vehicle read by HA within this many seconds is "wanted" (worth refreshing when stale).
    pub wanted_window_secs: u64,
    /// Refreshes in flight at once (each still waits for a budget permit).
    pub refresh_concurrency: usize,
    /// First wait before refreshing a vehicle again after its refresh failed, in seconds
    /// (doubles per failure, up to 30 minutes).
    pub refresh_retry_base_secs: u64,
    /// `POST /api/ha/refresh` sends Enode a refresh hint for a vehicle at most this often, in seconds.
    pub refresh_hint_cooldown_secs: u64,
    /// Tiers allowed to start and stop charging (comma-separated).
    pub charging_tiers: Vec<String>,
    /// Commands that spend the shared Enode budget (charge, link, unlink, refresh now) a user may
    /// send per minute; more get 429 with Retry-After. Polls are never limited.
    pub commands_per_minute_per_user: u32,
    /// How long a charging command waits for Enode's answer before giving up, in milliseconds.
    pub command_timeout_ms: u64,
    /// First look at a charging action whose webhook has not come, in seconds (doubles per look).
    pub action_poll_secs: u64,
    /// Looks at most at such an action.
    pub action_poll_attempts: u32,
    /// A vehicle actor that handled nothing for this many seconds is put to sleep (its snapshot is
    /// still served; its next message wakes it). 0: actors never sleep.
    pub actor_idle_secs: u64,
    /// Vehicles a Free user may link.
    pub vehicle_limit_free: usize,
    /// Vehicles a Basic user may link.
    pub vehicle_limit_basic: usize,
    /// Vehicles a Pro user (trial included) may link.
    pub vehicle_limit_pro: usize,
    /// No Enode webhook delivery (events or heartbeats) for this many seconds marks the webhook
    /// degraded: the subscription is tested (which reactivates it) and wanted vehicles fall back
    /// to refreshes.
    pub webhook_silence_secs: u64,
    /// Bearer token for `/admin/*` (besides the API keys of admin users). Unset: only admin keys.
    pub admin_token: Option<Secret>,
    /// Where Prometheus scrapes `/metrics`, on a listener of its own. Unset: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Sentry DSN; when unset, the standard `SENTRY_DSN` variable is used. Neither: no Sentry.
    pub sentry_dsn: Option<Secret>,
    /// Sentry's `environment` tag (production, staging, ...).
    pub sentry_environment: Option<String>,
    /// On SIGTERM, how long open HTTP requests may take to finish, in milliseconds, after
    /// `/readyz` has turned 503.
    pub shutdown_drain_timeout_ms: u64,
    /// On SIGTERM, how long `/readyz` answers 503 before the listener stops accepting, in
    /// milliseconds, so a load balancer takes the instance out of rotation first.
    pub shutdown_grace_ms: u64,
    /// Push to Home Assistant: also push to loopback, private, link-local and metadata addresses.
    /// Off, such targets are refused, judged by the address actually connected to (a name that
    /// resolves to one is refused too). Turn it on only for a self-hosted server on a LAN.
    pub push_allow_private_targets: bool,
    /// Tiers allowed to register push targets (comma-separated); others get 403.
    pub push_tiers: Vec<String>,
    /// How long one push may take, connecting and HA's answer included, in milliseconds.
    pub push_timeout_ms: u64,
    /// How long connecting to an HA instance may take, in milliseconds.
    pub push_connect_timeout_ms: u64,
    /// The wait before retrying a failed push, in milliseconds; doubles per failure (with jitter).
    pub push_retry_initial_ms: u64,
    /// The longest wait between retries while a target's circuit is closed, in milliseconds.
    pub push_retry_max_ms: u64,
    /// Failures in a row that open a target's circuit breaker.
    pub push_breaker_failures: u32,
    /// How long an open circuit waits before one trial push, in milliseconds.
    pub push_breaker_open_ms: u64,
    /// Pushes in flight at once over all targets (one target never has more than one).
    pub push_max_concurrent: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: Secret::new("sqlite://evconduit.db"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            enode_webhook_secrets: Vec::new(),
            enode_webhook_max_body_bytes: 5 * 1024 * 1024,
            webhook_delivery_retention_days: 7,
            enode_client_id: String::new(),
            enode_client_secret: Secret::new(""),
            enode_api_url: "https://enode-api.production.enode.io".to_owned(),
            enode_token_url: "https://oauth.production.enode.io/oauth2/token".to_owned(),
            enode_rate_per_minute: 60,
            enode_burst: 5,
            enode_background_share: 0.8,
            enode_request_timeout_ms: 10_000,
            enode_connect_timeout_ms: 3_000,
            enode_retry_max: 3,
            enode_retry_base_ms: 250,
            enode_retry_max_backoff_ms: 8_000,
            enode_rate_limited_backoff_ms: 1_000,
            enode_max_rate_limit_wait_ms: 30_000,
            enode_breaker_failures: 5,
            enode_breaker_open_ms: 30_000,
            write_behind_interval_ms: 200,
            write_behind_batch: evconduit_actors::write_behind::DEFAULT_BATCH,
            key_revocation_poll_ms: 1000,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            public_url: String::new(),
            link_redirect_uri: String::new(),
            freshness_pro_secs: 5 * 60,
            freshness_basic_secs: 10 * 60,
            freshness_free_secs: 30 * 60,
            wanted_window_secs: 30 * 60,
            refresh_concurrency: 4,
            refresh_retry_base_secs: 30,
            refresh_hint_cooldown_secs: 5 * 60,
            charging_tiers: vec!["basic".to_owned(), "pro".to_owned()],
            commands_per_minute_per_user: 20,
            command_timeout_ms: 30_000,
            action_poll_secs: 30,
            action_poll_attempts: 5,
            actor_idle_secs: 10 * 60,
            vehicle_limit_free: 1,
            vehicle_limit_basic: 2,
            vehicle_limit_pro: 5,
            webhook_silence_secs: 15 * 60,
            admin_token: None,
            metrics_listen: None,
            sentry_dsn: None,
            sentry_environment: None,
            shutdown_drain_timeout_ms: 10_000,
            shutdown_grace_ms: 0,
            push_allow_private_targets: false,
            push_tiers: vec!["free".to_owned(), "basic".to_owned(), "pro".to_owned()],
            push_timeout_ms: 10_000,
            push_connect_timeout_ms: 5_000,
            push_retry_initial_ms: 1_000,
            push_retry_max_ms: 60_000,
            push_breaker_failures: 8,
            push_breaker_open_ms: 5 * 60_000,
            push_max_concurrent: 64,
        }
    }
}

impl Config {
    /// The freshness targets per tier.
    pub fn tier_targets(&self) -> evconduit_actors::freshness::TierTargets {
        evconduit_actors::freshness::TierTargets {
            free: std::time::Duration::from_secs(self.freshness_free_secs),
            basic: std::time::Duration::from_secs(self.freshness_basic_secs),
            pro: std::time::Duration::from_secs(self.freshness_pro_secs),
        }
    }

    /// Whether a tier may start and stop charging.
    pub fn may_charge(&self, tier: evconduit_actors::tier::Tier) -> bool {
        self.charging_tiers.iter().any(|t| t.parse::<evconduit_actors::tier::Tier>().is_ok_and(|t| t == tier))
    }

    /// Whether a tier may register push targets.
    pub fn may_push(&self, tier: evconduit_actors::tier::Tier) -> bool {
        self.push_tiers.iter().any(|t| t.parse::<evconduit_actors::tier::Tier>().is_ok_and(|t| t == tier))
    }

    /// The push outbox's retry, breaker and concurrency settings.
    pub fn push_outbox(&self) -> evconduit_actors::push::PushConfig {
        evconduit_actors::push::PushConfig {
            retry_initial: std::time::Duration::from_millis(self.push_retry_initial_ms),
            retry_max: std::time::Duration::from_millis(self.push_retry_max_ms),
            breaker_failures: self.push_breaker_failures,
            breaker_open: std::time::Duration::from_millis(self.push_breaker_open_ms),
            max_concurrent: self.push_max_concurrent,
        }
    }

    /// How pushes travel.
    pub fn push_transport(&self) -> crate::push::TransportConfig {
        crate::push::TransportConfig {
            allow_private: self.push_allow_private_targets,
            timeout: std::time::Duration::from_millis(self.push_timeout_ms),
            connect_timeout: std::time::Duration::from_millis(self.push_connect_timeout_ms),
        }
    }

    /// How many vehicles a tier may link.
    pub fn vehicle_limit(&self, tier: evconduit_actors::tier::Tier) -> usize {
        match tier {
            evconduit_actors::tier::Tier::Free => self.vehicle_limit_free,
            evconduit_actors::tier::Tier::Basic => self.vehicle_limit_basic,
            evconduit_actors::tier::Tier::Pro => self.vehicle_limit_pro,
        }
    }

    /// Where Enode's webhook for this service points, when a public URL is configured.
    pub fn enode_webhook_url(&self) -> Option<String> {
        (!self.public_url.is_empty()).then(|| format!("{}/api/webhook/enode", self.public_url.trim_end_matches('/')))
    }

    /// Where Enode sends a user after linking.
    pub fn link_redirect(&self) -> String {
        if !self.link_redirect_uri.is_empty() {
            return self.link_redirect_uri.clone();
        }
        let base = if self.public_url.is_empty() { format!("http://{}", self.listen) } else { self.public_url.clone() };
        format!("{}/linked", base.trim_end_matches('/'))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    ParseFile { path: PathBuf, source: Box<toml::de::Error> },
    #[error("cannot read {var} (the file it names): {source}")]
    ReadSecretFile { var: String, source: std::io::Error },
    #[error("{var}: {message}")]
    BadValue { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The loaded configuration plus what the loader wants the operator to know (unknown variables).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the process environment and the config file.
    pub fn load() -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = env
            .iter()
            .find(|(k, _)| k == CONFIG_PATH_VAR)
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| Path::new(DEFAULT_CONFIG_FILE).exists().then(|| PathBuf::from(DEFAULT_CONFIG_FILE)));
        Self::from_sources(file.as_deref(), env)
    }

    /// The loader itself, with its inputs passed in (tests do not touch the process environment).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let defaults = match serde_json::to_value(Config::default()) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(ConfigError::Invalid("defaults do not serialise to a table".into()));
            }
        };
        let mut merged = Map::new();
        if let Some(path) = file {
            merged.extend(read_file(path)?);
        }
        let mut warnings = Vec::new();
        for (key, value) in env_overrides(env, &defaults, &mut warnings)? {
            merged.insert(key, value);
        }
        let config: Config =
            serde_path_to_error::deserialize(Value::Object(merged)).map_err(|e| ConfigError::Invalid(describe(&e)))?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid("database_url must start with sqlite: or postgres://".into()));
        }
        if self.enode_webhook_secrets.iter().any(|s| s.expose().is_empty()) {
            return Err(ConfigError::Invalid("enode_webhook_secrets has an empty entry".into()));
        }
        if self.enode_rate_per_minute == 0 || self.enode_burst == 0 {
            return Err(ConfigError::Invalid("enode_rate_per_minute and enode_burst must be at least 1".into()));
        }
        if !(self.enode_background_share > 0.0 && self.enode_background_share <= 1.0) {
            return Err(ConfigError::Invalid("enode_background_share must be above 0 and at most 1".into()));
        }
        for (key, url) in [("enode_api_url", &self.enode_api_url), ("enode_token_url", &self.enode_token_url)] {
            if url::Url::parse(url).map_or(true, |u| !u.scheme().starts_with("http")) {
                return Err(ConfigError::Invalid(format!("{key} must be an http(s) URL")));
            }
        }
        if self.enode_breaker_failures == 0 {
            return Err(ConfigError::Invalid("enode_breaker_failures must be at least 1".into()));
        }
        for tier in &self.charging_tiers {
            tier.parse::<evconduit_actors::tier::Tier>()
                .map_err(|e| ConfigError::Invalid(format!("charging_tiers: {e}")))?;
        }
        if !self.public_url.is_empty() && url::Url::parse(&self.public_url).is_err() {
            return Err(ConfigError::Invalid("public_url must be an absolute URL".into()));
        }
        if self.webhook_delivery_retention_days < 2 {
            return Err(ConfigError::Invalid(
                "webhook_delivery_retention_days must be at least 2 (Enode retries deliveries for a day)".into(),
            ));
        }
        if self.refresh_concurrency == 0 {
            return Err(ConfigError::Invalid("refresh_concurrency must be at least 1".into()));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.expose().len() < MIN_ADMIN_TOKEN) {
            return Err(ConfigError::Invalid(format!("admin_token must be at least {MIN_ADMIN_TOKEN} characters")));
        }
        for tier in &self.push_tiers {
            tier.parse::<evconduit_actors::tier::Tier>()
                .map_err(|e| ConfigError::Invalid(format!("push_tiers: {e}")))?;
        }
        if self.push_timeout_ms == 0 || self.push_connect_timeout_ms == 0 || self.push_retry_initial_ms == 0 {
            return Err(ConfigError::Invalid(
                "push_timeout_ms, push_connect_timeout_ms and push_retry_initial_ms must be above 0".into(),
            ));
        }
        if self.push_breaker_failures == 0 || self.push_max_concurrent == 0 {
            return Err(ConfigError::Invalid(
                "push_breaker_failures and push_max_concurrent must be at least 1".into(),
            ));
        }
        if self.write_behind_batch == 0 {
            return Err(ConfigError::Invalid("write_behind_batch must be at least 1".into()));
        }
        Ok(())
    }
}

/// A deserialisation error as "which key, what was wrong", without the value: the value may be a
/// secret (a numeric token in TOML, a secret list given as one string), and this message is
/// printed and logged.
fn describe(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let key = err.path().to_string();
    let inner = err.inner().to_string();
    let kind = inner.split(':').next().unwrap_or("invalid value");
    let expected = inner.split_once(", expected ").map(|(_, e)| e.split(" at line").next().unwrap_or(e));
    // Unknown and missing fields name keys, not values: those messages are safe and useful whole.
    if inner.starts_with("unknown field") || inner.starts_with("missing field") {
        return format!("{key}: {}", inner.split(" at line").next().unwrap_or(&inner));
    }
    match expected {
        Some(expected) => format!("{key}: {kind} (expected {expected})"),
        None => format!("{key}: {kind}"),
    }
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|source| ConfigError::ParseFile { path: path.to_owned(), source: Box::new(source) })?;
    match serde_json::to_value(table) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ConfigError::Invalid(format!("{} is not a table", path.display()))),
    }
}

/// `EVCONDUIT_*` variables as typed values keyed like the struct. `X_FILE` reads the file; a
/// variable that names no key is reported, not fatal (a typo should be seen, not crash a deploy).
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    defaults: &Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Value>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut from_files = BTreeMap::new();
    for (var, raw) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == CONFIG_PATH_VAR {
            continue;
        }
        let key = name.to_ascii_lowercase();
        if let Some(kind) = defaults.get(&key) {
            out.insert(key, typed(&var, &raw, kind)?);
            continue;
        }
        let file_key = key.strip_suffix(&FILE_SUFFIX.to_ascii_lowercase()).map(str::to_owned);
        match file_key.and_then(|k| defaults.get(&k).map(|kind| (k, kind))) {
            Some((key, kind)) => {
                let text = std::fs::read_to_string(&raw)
                    .map_err(|source| ConfigError::ReadSecretFile { var: var.clone(), source })?;
                // Files written by editors and `echo` end in a newline that is not part of the secret.
                let value = text.trim_end_matches(['\n', '\r']);
                from_files.insert(key, typed(&var, value, kind)?);
            }
            None => warnings.push(format!("unknown configuration variable {var} (ignored)")),
        }
    }
    // A value given directly wins over the same key given as a file.
    for (key, value) in from_files {
        out.entry(key).or_insert(value);
    }
    Ok(out)
}

/// Reads an environment string as the JSON type the key has in the defaults.
fn typed(var: &str, raw: &str, kind: &Value) -> Result<Value, ConfigError> {
    let bad = |message: String| ConfigError::BadValue { var: var.to_owned(), message };
    Ok(match kind {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Value::Bool(true),
            "0" | "false" | "no" | "off" => Value::Bool(false),
            other => return Err(bad(format!("expected true or false, got {other:?}"))),
        },
        Value::Number(n) if n.is_f64() => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad(format!("expected a number, got {raw:?}")))?,
        Value::Number(_) => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| bad(format!("expected a whole number, got {raw:?}")))?,
        Value::Array(_) => Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect(),
        ),
        // Strings, and optional values whose default is unset.
        _ => Value::String(raw.to_owned()),
    })
}

/// A value that must not appear in logs, `Debug` output or error bodies.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value: call sites that do are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Serialising exists only so the loader can learn each key's type from the defaults; it never
/// writes the value.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_run_without_setup() {
        let loaded = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(loaded.config.database_url.expose(), "sqlite://evconduit.db");
        assert_eq!(loaded.config.listen.to_string(), "127.0.0.1:8080");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn env_overrides_file_and_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("evconduit.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nwrite_behind_batch = 7\n").unwrap();
        let loaded = Config::from_sources(
            Some(&file),
            env(&[
                ("EVCONDUIT_WRITE_BEHIND_BATCH", "42"),
                ("EVCONDUIT_ENODE_WEBHOOK_SECRETS", "old-secret, 12345"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(loaded.config.write_behind_batch, 42);
        let secrets: Vec<&str> = loaded.config.enode_webhook_secrets.iter().map(Secret::expose).collect();
        assert_eq!(secrets, ["old-secret", "12345"]);
    }

    #[test]
    fn file_variants_read_secrets_and_unknown_vars_warn() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-file\n").unwrap();
        let loaded = Config::from_sources(
            None,
            env(&[("EVCONDUIT_ENODE_WEBHOOK_SECRETS_FILE", secret.to_str().unwrap()), ("EVCONDUIT_LISTNE", "typo")]),
        )
        .unwrap();
        assert_eq!(loaded.config.enode_webhook_secrets[0].expose(), "from-file");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("EVCONDUIT_LISTNE"));
    }

    #[test]
    fn enode_client_keys_are_typed_and_checked() {
        let loaded = Config::from_sources(
            None,
            env(&[
                ("EVCONDUIT_ENODE_RATE_PER_MINUTE", "120"),
                ("EVCONDUIT_ENODE_BACKGROUND_SHARE", "0.5"),
                ("EVCONDUIT_ENODE_CLIENT_SECRET", "12345"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.enode_rate_per_minute, 120);
        assert!((loaded.config.enode_background_share - 0.5).abs() < f64::EPSILON);
        assert_eq!(loaded.config.enode_client_secret.expose(), "12345");
        assert!(!format!("{:?}", loaded.config).contains("12345"));
        for (var, value) in [
            ("EVCONDUIT_ENODE_BACKGROUND_SHARE", "1.5"),
            ("EVCONDUIT_ENODE_RATE_PER_MINUTE", "0"),
            ("EVCONDUIT_ENODE_API_URL", "not a url"),
        ] {
            assert!(Config::from_sources(None, env(&[(var, value)])).is_err(), "{var}={value}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let loaded = Config::from_sources(
            None,
            env(&[
                ("EVCONDUIT_ENODE_WEBHOOK_SECRETS", "hunter2"),
                ("EVCONDUIT_DATABASE_URL", "postgres://u:pw-hunter3@db/x"),
            ]),
        )
        .unwrap();
        let debug = format!("{:?}", loaded.config);
        assert!(!debug.contains("hunter2") && !debug.contains("hunter3"), "{debug}");
    }

    #[test]
    fn type_errors_name_the_key_but_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("evconduit.toml");
        std::fs::write(&file, "enode_client_secret = 98765432123456789\nenode_webhook_secrets = \"hush-hush\"\n")
            .unwrap();
        let err = Config::from_sources(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(!err.contains("98765432123456789") && !err.contains("hush-hush"), "{err}");
        assert!(err.contains("enode_client_secret") || err.contains("enode_webhook_secrets"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_sources(None, env(&[("EVCONDUIT_WRITE_BEHIND_BATCH", "lots")])).unwrap_err();
        assert!(err.to_string().contains("EVCONDUIT_WRITE_BEHIND_BATCH"), "{err}");
        let err = Config::from_sources(None, env(&[("EVCONDUIT_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn push_keys_default_safe_and_read_from_the_environment() {
        use evconduit_actors::tier::Tier;
        let defaults = Config::from_sources(None, env(&[])).unwrap().config;
        assert!(!defaults.push_allow_private_targets, "private targets are refused unless asked for");
        assert!(Tier::ALL.iter().all(|t| defaults.may_push(*t)), "every tier may push by default");
        let loaded = Config::from_sources(
            None,
            env(&[
                ("EVCONDUIT_PUSH_ALLOW_PRIVATE_TARGETS", "true"),
                ("EVCONDUIT_PUSH_TIERS", "basic,pro"),
                ("EVCONDUIT_PUSH_RETRY_INITIAL_MS", "20"),
                ("EVCONDUIT_PUSH_MAX_CONCURRENT", "3"),
            ]),
        )
        .unwrap();
        let config = loaded.config;
        assert!(config.push_transport().allow_private);
        assert!(!config.may_push(Tier::Free) && config.may_push(Tier::Basic));
        assert_eq!(config.push_outbox().retry_initial, std::time::Duration::from_millis(20));
        assert_eq!(config.push_outbox().max_concurrent, 3);
        let err = Config::from_sources(None, env(&[("EVCONDUIT_PUSH_TIERS", "gold")])).unwrap_err();
        assert!(err.to_string().contains("push_tiers"), "{err}");
        let err = Config::from_sources(None, env(&[("EVCONDUIT_PUSH_MAX_CONCURRENT", "0")])).unwrap_err();
        assert!(err.to_string().contains("push_max_concurrent"), "{err}");
    }
}
