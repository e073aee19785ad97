//! Who may read and write which tenant. Every request acts for one tenant: in AWS the
//! tenant comes from API Gateway's authorizer (put on the request as a [`Principal`]
//! by the api function), locally from a bearer token configured per tenant. A request
//! whose path names another tenant is refused (403) before any SQL runs.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use super::Api;
use crate::keys::Name;

/// The tenant the caller was authenticated as by something in front of the router
/// (API Gateway's JWT or Lambda authorizer). When present it is the only credential
/// looked at: a bearer token cannot widen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// The local credentials: a token per tenant, from `BRONZE_API_TOKENS`
/// (`tenant=token,tenant=token`). Tokens are kept as SHA-256 digests and compared in
/// constant time, so neither memory nor timing gives one away.
#[derive(Default, Clone)]
pub struct Tokens(HashMap<[u8; 32], String>);

/// Why `BRONZE_API_TOKENS` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// An entry is not `tenant=token` with a valid tenant name and a non-empty token.
    #[error(
        "BRONZE_API_TOKENS entry {0:?} is not tenant=token (a tenant name and a non-empty token)"
    )]
    Entry(String),
}

impl Tokens {
    /// Reads `tenant=token` pairs, comma-separated.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut tokens = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (tenant, token) = entry
                .split_once('=')
                .filter(|(t, k)| Name::tenant(t).is_ok() && !k.is_empty())
                .ok_or_else(|| {
                    TokensError::Entry(entry.split('=').next().unwrap_or("").to_owned())
                })?;
            tokens.insert(digest(token), tenant.to_owned());
        }
        Ok(Self(tokens))
    }

    /// `BRONZE_API_TOKENS`, or none (then only a [`Principal`] is accepted).
    pub fn from_env() -> Result<Self, TokensError> {
        std::env::var("BRONZE_API_TOKENS").map_or_else(|_| Ok(Self::default()), |t| Self::parse(&t))
    }

    /// The tenant `token` belongs to.
    fn tenant(&self, token: &str) -> Option<&str> {
        let wanted = digest(token);
        // Every stored digest is compared in full: the time taken does not say how
        // close a guess came.
        self.0.iter().fold(None, |found, (stored, tenant)| {
            let same = stored
                .iter()
                .zip(wanted.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same {
                Some(tenant.as_str())
            } else {
                found
            }
        })
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A request allowed to act for the tenant its path names.
pub struct Access {
    /// The tenant, checked against the name rule and the caller's credentials.
    pub tenant: Name,
}

impl FromRequestParts<std::sync::Arc<Api>> for Access {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &std::sync::Arc<Api>,
    ) -> Result<Self, Problem> {
        let params = RawPathParams::from_request_parts(parts, api)
            .await
            .map_err(|e| Problem::bad_request("tenant", e.body_text()))?;
        let asked = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| Problem::bad_request("tenant", "the path names no tenant"))?;
        let tenant =
            Name::tenant(&asked).map_err(|e| Problem::bad_request("tenant", e.to_string()))?;
        let caller = match parts.extensions.get::<Principal>() {
            Some(Principal(tenant)) => tenant.clone(),
            None => {
                let token = parts
                    .headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or_else(|| {
                        Problem::unauthorized("an Authorization: Bearer token is required")
                    })?;
                api.tokens
                    .tenant(token.trim())
                    .ok_or_else(|| Problem::unauthorized("the bearer token names no tenant"))?
                    .to_owned()
            }
        };
        if caller != tenant.as_str() {
            return Err(Problem::forbidden(format!(
                "these credentials act for another tenant, not {:?}",
                tenant.as_str()
            )));
        }
        Ok(Access { tenant })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_tenant_only() {
        let tokens = Tokens::parse("acme=secret-a, globex=secret-g").unwrap();
        assert_eq!(tokens.tenant("secret-a"), Some("acme"));
        assert_eq!(tokens.tenant("secret-g"), Some("globex"));
        assert_eq!(tokens.tenant("secret"), None);
        assert!(Tokens::parse("Acme=x").is_err());
        assert!(Tokens::parse("acme=").is_err());
        assert!(Tokens::parse("acme").is_err());
    }
}
