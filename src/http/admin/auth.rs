//! Who may call `/admin/*`: the configured admin token, or the API key of a user whose role is
//! admin. Either as `Authorization: Bearer ...`, or as the password of HTTP Basic auth (what a
//! browser sends for the admin page after its login prompt; the user name is ignored).
//!
//! No credential or an unknown one is 401; a valid key of an ordinary user is 403: admin routes
//! never answer to ordinary keys.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::Role;

/// An authenticated administrator.
pub struct Admin {
    /// Who, for logs: "token" or the admin user's email.
    pub who: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = credential(parts).ok_or(ApiError::Unauthorized("missing admin credentials"))?;
        if let Some(token) = &state.config.admin_token
            && same_secret(token.expose(), &credential)
        {
            return Ok(Admin { who: "token".into() });
        }
        let principal = state
            .accounts
            .authenticate(&credential, state.clock.now())
            .await
            .ok_or(ApiError::Unauthorized("invalid admin credentials"))?;
        if principal.user.role != Role::Admin {
            return Err(ApiError::Forbidden("this API key is not an administrator's".into()));
        }
        Ok(Admin { who: principal.user.email.clone() })
    }
}

/// The bearer token, or the Basic-auth password.
fn credential(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    let secret = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        pair.split_once(':')?.1.to_owned()
    } else {
        return None;
    };
    (!secret.is_empty()).then_some(secret)
}

/// Compares digests, so the time taken says nothing about how much of the token matched.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (Sha256::digest(expected.as_bytes()), Sha256::digest(given.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(authorization: &str) -> Parts {
        let request = axum::http::Request::builder().header(AUTHORIZATION, authorization).body(()).unwrap();
        request.into_parts().0
    }

    #[test]
    fn bearer_and_basic_passwords_are_read() {
        assert_eq!(credential(&parts("Bearer abc")).as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:s3cret:with-colon");
        assert_eq!(credential(&parts(&format!("Basic {basic}"))).as_deref(), Some("s3cret:with-colon"));
        assert_eq!(credential(&parts("Bearer ")), None);
        assert_eq!(credential(&parts("Digest x")), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("token-1234567890", "token-1234567890"));
        assert!(!same_secret("token-1234567890", "token-1234567891"));
        assert!(!same_secret("token-1234567890", ""));
    }
}
