//! RDS IAM database authentication: the password is a token, a SigV4-presigned
//! `connect` request for the database user, valid for 15 minutes.
//!
//! Signed here with `aws-sigv4` (already in the build through the AWS SDK) rather than
//! with `aws-sdk-rds`'s `AuthTokenGenerator`, which does the same few steps but would
//! bring the whole RDS API client into every function. The algorithm: presign
//! `GET https://HOST:PORT/?Action=connect&DBUser=USER` for service `rds-db` in the
//! database's region, signature in the query, expiry 900 s, and drop the `https://`.
//!
//! A token is only checked when a connection is opened; an open connection outlives
//! it. bronze opens its connection lazily and signs a new token for every connect, so
//! a token is never older than the connect it is used for, however long the process
//! (a warm Lambda) lives.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How long a token may be used to open a connection: RDS's maximum.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// SigV4's unreserved characters stay as they are; everything else is `%XX`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why no token could be signed.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// aws-sigv4 could not sign the request.
    #[error("signing the RDS IAM auth token for {user}@{host}:{port}: {reason}")]
    Sign {
        /// The database user.
        user: String,
        /// The endpoint's host.
        host: String,
        /// The endpoint's port.
        port: u16,
        /// aws-sigv4's reason.
        reason: String,
    },
}

/// What a token is for: the endpoint the client connects to (an RDS instance, cluster
/// or RDS Proxy endpoint, as named in the connection settings, not an IP address) and
/// the database user, in the database's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFor<'a> {
    /// The endpoint's host name, as the client names it.
    pub host: &'a str,
    /// The endpoint's port.
    pub port: u16,
    /// The database user to log in as.
    pub user: &'a str,
    /// The database's AWS region.
    pub region: &'a str,
}

/// Signs a token for `target` with `credentials` at `now`; it expires at
/// `now + TOKEN_LIFETIME`.
pub fn auth_token(
    target: &TokenFor<'_>,
    credentials: Credentials,
    now: SystemTime,
) -> Result<String, IamError> {
    let fail = |reason: String| IamError::Sign {
        user: target.user.to_owned(),
        host: target.host.to_owned(),
        port: target.port,
        reason,
    };
    let identity: Identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(target.region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let endpoint = format!("{}:{}", target.host, target.port);
    let query = format!(
        "Action=connect&DBUser={}",
        utf8_percent_encode(target.user, QUERY_VALUE)
    );
    let url = format!("https://{endpoint}/?{query}");
    let request = SignableRequest::new(
        "GET",
        Cow::Borrowed(url.as_str()),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| fail(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| fail(e.to_string()))?
        .into_parts();
    let mut token = format!("{endpoint}/?{query}");
    for (name, value) in instructions.params() {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example keys: fixed credentials, fixed clock.
    fn credentials(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    const TARGET: TokenFor<'static> = TokenFor {
        host: "bronze.cluster-abc123.eu-west-1.rds.amazonaws.com",
        port: 5432,
        user: "bronze_loader",
        region: "eu-west-1",
    };

    /// The query of `token` as (name, value) pairs, in order, still encoded.
    fn query(token: &str) -> Vec<(&str, &str)> {
        let (_, query) = token.split_once("/?").expect("a token has a query");
        query
            .split('&')
            .map(|pair| pair.split_once('=').expect("name=value"))
            .collect()
    }

    #[test]
    fn a_token_has_the_shape_rds_expects() {
        // 2026-11-30T09:40:57Z.
        let token = auth_token(&TARGET, credentials(None), at(1_796_031_657)).unwrap();
        assert!(
            token.starts_with("bronze.cluster-abc123.eu-west-1.rds.amazonaws.com:5432/?"),
            "{token}"
        );
        assert!(!token.contains("https://"));
        let pairs = query(&token);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Action",
                "DBUser",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature"
            ]
        );
        let value = |name: &str| pairs.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(value("Action"), "connect");
        assert_eq!(value("DBUser"), "bronze_loader");
        assert_eq!(value("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            value("X-Amz-Credential"),
            "AKIAIOSFODNN7EXAMPLE%2F20261130%2Feu-west-1%2Frds-db%2Faws4_request"
        );
        assert_eq!(value("X-Amz-Date"), "20261130T094057Z");
        assert_eq!(value("X-Amz-Expires"), "900");
        assert_eq!(value("X-Amz-SignedHeaders"), "host");
        let signature = value("X-Amz-Signature");
        assert_eq!(signature.len(), 64);
        assert!(signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn the_same_inputs_sign_the_same_token_and_any_change_another() {
        let now = at(1_796_031_657);
        let token = auth_token(&TARGET, credentials(None), now).unwrap();
        assert_eq!(token, auth_token(&TARGET, credentials(None), now).unwrap());
        let later = auth_token(&TARGET, credentials(None), at(1_796_031_658)).unwrap();
        assert_ne!(token, later);
        let other_user = TokenFor {
            user: "bronze_reader",
            ..TARGET
        };
        assert_ne!(
            token,
            auth_token(&other_user, credentials(None), now).unwrap()
        );
    }

    /// Cross-checked with an independent implementation: botocore 1.43's
    /// `RDS.Client.generate_db_auth_token` for the same host, port, user, region and
    /// keys, its clock fixed at 2026-11-30T09:40:57Z, gave this token. botocore puts
    /// `X-Amz-SignedHeaders` before `X-Amz-Expires`; RDS reads the query by name, so
    /// the pairs are compared as a set, and the signature must be the same.
    #[test]
    fn the_token_matches_botocore_for_fixed_inputs() {
        let token = auth_token(&TARGET, credentials(None), at(1_796_031_657)).unwrap();
        let (ours, theirs) = (
            token.split_once("/?").unwrap(),
            BOTOCORE_TOKEN.split_once("/?").unwrap(),
        );
        assert_eq!(ours.0, theirs.0);
        let mut ours = query(&token);
        let mut theirs = query(BOTOCORE_TOKEN);
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    const BOTOCORE_TOKEN: &str = "bronze.cluster-abc123.eu-west-1.rds.amazonaws.com:5432/\
        ?Action=connect&DBUser=bronze_loader&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261130%2Feu-west-1%2Frds-db%2Faws4_request\
        &X-Amz-Date=20261130T094057Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900\
        &X-Amz-Signature=721f554d964e64e0b8067b36231c0d75db383d59aec8e723a4703870caabbbb9";

    /// Lambda's credentials are temporary: the session token is part of the signed
    /// query. botocore, same inputs plus the session token, gave this token.
    #[test]
    fn temporary_credentials_carry_their_session_token() {
        let token = auth_token(
            &TARGET,
            credentials(Some("FQoG/session+token=")),
            at(1_796_031_657),
        )
        .unwrap();
        let mut ours = query(&token);
        let mut theirs = query(BOTOCORE_SESSION_TOKEN);
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
        assert!(token.contains("&X-Amz-Security-Token=FQoG%2Fsession%2Btoken%3D"));
    }

    const BOTOCORE_SESSION_TOKEN: &str = "bronze.cluster-abc123.eu-west-1.rds.amazonaws.com:5432/\
        ?Action=connect&DBUser=bronze_loader&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261130%2Feu-west-1%2Frds-db%2Faws4_request\
        &X-Amz-Date=20261130T094057Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900\
        &X-Amz-Security-Token=FQoG%2Fsession%2Btoken%3D\
        &X-Amz-Signature=1ee0053c9da45f46c38e5a7bfbeb39481d8406fc2f82afdfc3a1db45742fc37f";

    #[test]
    fn a_user_name_is_encoded_in_the_query() {
        let odd = TokenFor {
            user: "a b&c",
            ..TARGET
        };
        let token = auth_token(&odd, credentials(None), at(1_796_031_657)).unwrap();
        assert!(token.contains("&DBUser=a%20b%26c&"), "{token}");
    }
}
