//! Enode webhook signatures: `x-enode-signature: sha1=<hex HMAC-SHA1(secret, raw body)>`.
//!
//! Checked over the raw bytes, before any parsing (re-serialised JSON would not match), in
//! constant time, against every configured secret so a secret can be rotated without downtime.

use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

const PREFIX: &str = "sha1=";

/// The header value Enode would send for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("{PREFIX}{}", hex::encode(mac(secret, body).finalize().into_bytes()))
}

/// True when `header` is a valid signature of `body` under any of `secrets`.
///
/// Every secret is tried even after a match, so the time taken does not tell which one matched.
pub fn verify<'a>(secrets: impl IntoIterator<Item = &'a [u8]>, header: &str, body: &[u8]) -> bool {
    let Some(expected) = header.trim().strip_prefix(PREFIX).and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let mut matched = false;
    for secret in secrets {
        // `verify_slice` compares in constant time.
        matched |= mac(secret, body).verify_slice(&expected).is_ok();
    }
    matched
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha1 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enode_published_test_vector() {
        assert_eq!(
            sign(b"example-secret", br#"{"payload":"example"}"#),
            "sha1=e417e6fc2e7f8a78c93a35a7b344d36ce179fc8d"
        );
    }

    #[test]
    fn fixture_batch_verifies_byte_for_byte() {
        let body = include_bytes!("../../tests/fixtures/webhook-batch.json");
        let header = "sha1=786438ca93115d059a7deb3b8c15fbc6ff1ee2c5";
        assert!(verify([b"fixture-webhook-secret-0123456789abcdef".as_slice()], header, body));
    }

    #[test]
    fn any_configured_secret_may_match() {
        let body = b"[]";
        let header = sign(b"new", body);
        assert!(verify([b"old".as_slice(), b"new".as_slice()], &header, body));
        assert!(!verify([b"old".as_slice()], &header, body));
    }

    #[test]
    fn malformed_headers_fail() {
        for header in ["", "sha1=", "sha1=zz", "md5=00", "e417e6fc2e7f8a78c93a35a7b344d36ce179fc8d"] {
            assert!(!verify([b"example-secret".as_slice()], header, br#"{"payload":"example"}"#), "{header}");
        }
    }
}
