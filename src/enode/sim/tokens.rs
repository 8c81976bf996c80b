//! Access tokens minted by `POST /oauth2/token` and checked on every API call.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Unknown,
    Expired,
}

#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    tokens: HashMap<String, Instant>,
    minted: u64,
}

impl TokenStore {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, tokens: HashMap::new(), minted: 0 }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn mint(&mut self, now: Instant) -> String {
        // Long-expired tokens are forgotten (kept one TTL longer so they still answer "expired").
        let ttl = self.ttl;
        self.tokens.retain(|_, expires| now.saturating_duration_since(*expires) < ttl);
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("sim_{}", hex::encode(bytes));
        self.tokens.insert(token.clone(), now + self.ttl);
        self.minted += 1;
        token
    }

    pub fn check(&self, token: Option<&str>, now: Instant) -> Result<(), TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        match self.tokens.get(token) {
            None => Err(TokenError::Unknown),
            Some(expires) if *expires <= now => Err(TokenError::Expired),
            Some(_) => Ok(()),
        }
    }

    /// The control `POST /_sim/tokens/expire`: every token expires now, so a test can check that
    /// a client renews once on a 401.
    pub fn expire_all(&mut self, now: Instant) {
        for expires in self.tokens.values_mut() {
            *expires = (*expires).min(now);
        }
    }
}
