//! What a push registration's URL may be, and how it may be shown.
//!
//! The URL HA registers is `{external_url}/api/webhook/{webhook_id}`, and HA authenticates a
//! push by nothing but that webhook id: the URL is a secret. It is shown to its owner masked
//! except its host, and logged by host only.

use url::{Host, Url};

use super::guard::forbidden;

/// Longest push URL accepted (HA's external URLs are short; a long one is a mistake or abuse).
pub const MAX_URL_LEN: usize = 2048;
/// HA's webhook ids are 64 hex digits; allow some room, not arbitrary text.
const MAX_WEBHOOK_ID_LEN: usize = 256;

/// The push URL for a registration, or why the registration cannot be accepted (a message for
/// the user: HA shows 400 bodies as a notification).
pub fn webhook_url(external_url: &str, webhook_id: &str, allow_private: bool) -> Result<String, String> {
    let external = external_url.trim();
    if external.is_empty() {
        return Err("external_url is required".into());
    }
    if external.len() > MAX_URL_LEN {
        return Err(format!("external_url is longer than {MAX_URL_LEN} characters"));
    }
    if webhook_id.is_empty() || webhook_id.len() > MAX_WEBHOOK_ID_LEN {
        return Err(format!("webhook_id must be 1 to {MAX_WEBHOOK_ID_LEN} characters"));
    }
    if !webhook_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("webhook_id may only hold letters, digits, '-' and '_'".into());
    }
    let base = Url::parse(external).map_err(|_| "external_url is not a URL".to_owned())?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err("external_url must be an http:// or https:// URL".into());
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err("external_url must not hold a user name or password".into());
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err("external_url must not have a query or fragment".into());
    }
    let ip = match base.host() {
        None => return Err("external_url has no host".into()),
        Some(Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
    };
    if !allow_private && let Some(kind) = ip.and_then(forbidden) {
        return Err(format!(
            "external_url points at a {kind} address, which this server does not push to \
             (a self-hosted server on a LAN can allow it: EVCONDUIT_PUSH_ALLOW_PRIVATE_TARGETS=true)"
        ));
    }
    let url = format!("{}/api/webhook/{webhook_id}", base.as_str().trim_end_matches('/'));
    if url.len() > MAX_URL_LEN {
        return Err(format!("the webhook URL would be longer than {MAX_URL_LEN} characters"));
    }
    Ok(url)
}

/// The URL with everything but scheme, host and port hidden: `https://ha.example.com:8123/…`.
pub fn masked(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("?");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}/…", parsed.scheme()),
                None => format!("{}://{host}/…", parsed.scheme()),
            }
        }
        Err(_) => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_registration_makes_the_webhook_url() {
        let url = webhook_url("https://ha.example.com:8123/", "abc123", false).unwrap();
        assert_eq!(url, "https://ha.example.com:8123/api/webhook/abc123");
        let url = webhook_url(" http://example.net/ha ", "a_b-c", false).unwrap();
        assert_eq!(url, "http://example.net/ha/api/webhook/a_b-c");
        assert_eq!(webhook_url("http://192.168.1.5:8123", "x", true).unwrap(), "http://192.168.1.5:8123/api/webhook/x");
    }

    #[test]
    fn bad_registrations_say_why() {
        let long = format!("https://{}.example.com", "a".repeat(MAX_URL_LEN));
        for (url, id, why) in [
            ("", "x", "required"),
            ("ftp://ha.example.com", "x", "http"),
            ("javascript:alert(1)", "x", "http"),
            ("https://user:pw@ha.example.com", "x", "password"),
            ("https://user@ha.example.com", "x", "user name"),
            ("not a url", "x", "not a URL"),
            ("https://ha.example.com/?a=1", "x", "query"),
            (long.as_str(), "x", "longer"),
            ("https://ha.example.com", "", "webhook_id"),
            ("https://ha.example.com", "../../admin", "webhook_id"),
            ("http://127.0.0.1:8123", "x", "loopback"),
            ("http://10.0.0.1", "x", "private"),
            ("http://169.254.169.254", "x", "link-local"),
            ("http://[::1]:8123", "x", "loopback"),
            ("http://0x7f.1", "x", "loopback"),
            ("http://2130706433", "x", "loopback"),
        ] {
            let err = webhook_url(url, id, false).expect_err(url);
            assert!(err.contains(why), "{url:?}: {err}");
        }
    }

    #[test]
    fn masking_keeps_only_scheme_host_and_port() {
        assert_eq!(masked("https://ha.example.com:8123/api/webhook/secret"), "https://ha.example.com:8123/…");
        assert_eq!(masked("http://ha.example.com/api/webhook/secret"), "http://ha.example.com/…");
        assert_eq!(masked("garbage"), "…");
    }
}
