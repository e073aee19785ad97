//! The api Lambda: bronze's records API router behind API Gateway (HTTP API, payload
//! format 2.0), or behind a function URL with response streaming when
//! `BRONZE_API_STREAMING=1`. All logic lives in `bronze::api`.
//!
//! The tenant a request acts for is what the authorizer vouched for: a JWT claim (its
//! name in `BRONZE_TENANT_CLAIM`, default `tenant`), a Lambda authorizer's context key
//! `tenant`, or, behind an IAM function URL, the caller's ARN mapped to a tenant by
//! `BRONZE_API_IAM_TENANTS` (`arn=tenant,…`). With none of these the router checks
//! `BRONZE_API_TOKENS` bearer tokens, as `bronze serve` does.

use std::collections::HashMap;
use std::sync::Arc;

use bronze::api::{self, Api, Principal};
use bronze::aws;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, tracing, Error, Request, RequestExt};
use tower::ServiceExt;

/// How the authorizer's word is read.
struct Authorizer {
    claim: String,
    iam_tenants: HashMap<String, String>,
}

impl Authorizer {
    fn from_env() -> Self {
        let iam_tenants = std::env::var("BRONZE_API_IAM_TENANTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.trim().rsplit_once('='))
            .map(|(arn, tenant)| (arn.to_owned(), tenant.to_owned()))
            .collect();
        Self {
            claim: std::env::var("BRONZE_TENANT_CLAIM").unwrap_or_else(|_| "tenant".to_owned()),
            iam_tenants,
        }
    }

    /// The tenant the authorizer vouched for, if any.
    fn principal(&self, request: &Request) -> Option<Principal> {
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            return None;
        };
        let authorizer = context.authorizer.as_ref()?;
        let jwt = || authorizer.jwt.as_ref()?.claims.get(&self.claim).cloned();
        let lambda = || Some(authorizer.fields.get("tenant")?.as_str()?.to_owned());
        let iam = || {
            let arn = authorizer.iam.as_ref()?.user_arn.as_ref()?;
            self.iam_tenants.get(arn).cloned()
        };
        jwt().or_else(lambda).or_else(iam).map(Principal)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = aws::sdk_config().await;
    let bucket = std::env::var("BRONZE_BUCKET").map_err(|_| "BRONZE_BUCKET is not set")?;
    // Lambda sends an instance one request at a time: one connection is enough.
    let api = Arc::new(Api::from_env(
        &config,
        Some(aws::secrets(&config)),
        bucket,
        1,
    )?);
    let router = api::router(api);
    let authorizer = Authorizer::from_env();
    let authorizer = &authorizer;
    let handler = service_fn(move |mut request: Request| {
        let router = router.clone();
        async move {
            if let Some(principal) = authorizer.principal(&request) {
                request.extensions_mut().insert(principal);
            }
            router.oneshot(request).await
        }
    });
    if std::env::var("BRONZE_API_STREAMING").is_ok_and(|v| v == "1") {
        lambda_http::run_with_streaming_response(handler).await
    } else {
        lambda_http::run(handler).await
    }
}
