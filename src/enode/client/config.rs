//! What the client needs from the service configuration, typed (URLs parsed, times as
//! `Duration`), so the client never reads `Config` itself.

use std::time::Duration;

use url::Url;

use crate::config::{Config, ConfigError, Secret};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub client_id: String,
    /// `Debug` shows it redacted.
    pub client_secret: Secret,
    pub api_url: Url,
    pub token_url: Url,
    /// At most `rate` requests per `window`, plus `burst` after an idle spell.
    pub rate: u32,
    /// 60 s: the configuration speaks in requests per minute. Tests shrink the window (with a
    /// simulator counting over the same window) to check the very same shape in seconds.
    pub window: Duration,
    pub burst: u32,
    pub background_share: f64,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry_max: u32,
    pub retry_base: Duration,
    pub retry_max_backoff: Duration,
    pub rate_limited_backoff: Duration,
    pub max_rate_limit_wait: Duration,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
}

impl ClientConfig {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let url = |key: &str, value: &str| Url::parse(value).map_err(|e| ConfigError::Invalid(format!("{key}: {e}")));
        Ok(Self {
            client_id: config.enode_client_id.clone(),
            client_secret: config.enode_client_secret.clone(),
            api_url: url("enode_api_url", &config.enode_api_url)?,
            token_url: url("enode_token_url", &config.enode_token_url)?,
            rate: config.enode_rate_per_minute.max(1),
            window: Duration::from_secs(60),
            burst: config.enode_burst.max(1),
            background_share: config.enode_background_share.clamp(f64::MIN_POSITIVE, 1.0),
            request_timeout: Duration::from_millis(config.enode_request_timeout_ms),
            connect_timeout: Duration::from_millis(config.enode_connect_timeout_ms),
            retry_max: config.enode_retry_max,
            retry_base: Duration::from_millis(config.enode_retry_base_ms),
            retry_max_backoff: Duration::from_millis(config.enode_retry_max_backoff_ms),
            rate_limited_backoff: Duration::from_millis(config.enode_rate_limited_backoff_ms),
            max_rate_limit_wait: Duration::from_millis(config.enode_max_rate_limit_wait_ms),
            breaker_failures: config.enode_breaker_failures.max(1),
            breaker_open_for: Duration::from_millis(config.enode_breaker_open_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_production_and_the_secret_stays_hidden() {
        let config = Config { enode_client_secret: Secret::new("s3cr3t-value"), ..Config::default() };
        let client = ClientConfig::from_config(&config).unwrap();
        assert_eq!(client.api_url.host_str(), Some("enode-api.production.enode.io"));
        assert_eq!(client.token_url.path(), "/oauth2/token");
        assert_eq!((client.rate, client.window), (60, Duration::from_secs(60)));
        assert!((client.background_share - 0.8).abs() < f64::EPSILON);
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }
}
