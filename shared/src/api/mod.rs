//! The records API: bronze's tables over HTTP. One axum [`Router`] is the whole API;
//! `bronze serve` runs it on a local listener and the api Lambda function runs the same
//! router through `lambda_http` (there is no second implementation).
//!
//! Reads go to the bronze tables as they are (the `payload` jsonb, typed by the schema
//! registry); writes go to the landing bucket as files, so records sent to the API
//! get exactly the validation, versioning and lineage of any other file.

mod access;
mod cursor;
mod datasets;
mod filter;
mod objects;
mod problem;
mod query;
mod records;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::db::{Db, Migrations};

pub use access::{Principal, Tokens, TokensError};
pub use cursor::Cursor;
pub use filter::{Direction, Filter, Op, Order, Params};
pub use problem::Problem;
pub use query::{records as records_sql, Shape, Sql};

/// A few connections, each used by one request at a time: [`Db`] is one connection
/// behind a lock, so concurrent requests take turns on `size` of them.
pub struct Pool {
    dbs: Vec<Db>,
    next: AtomicUsize,
}

impl Pool {
    /// `size` connections made by `make` (at least one), opened when first used.
    pub fn new(size: usize, make: impl Fn() -> Db) -> Self {
        Self {
            dbs: (0..size.max(1)).map(|_| make()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection, round robin.
    pub fn db(&self) -> &Db {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        &self.dbs[n % self.dbs.len()]
    }
}

/// The bounds a client meets, stated in the OpenAPI document and in each 400/413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Records per page when `limit` is not given.
    pub default_page: u32,
    /// The largest `limit`.
    pub max_page: u32,
    /// The largest `POST …/records` body, in bytes: 6 MiB, Lambda's request payload
    /// limit (API Gateway's own is 10 MB), so the same body is accepted locally and in
    /// AWS. Larger files go through `POST …/uploads`.
    pub max_body: usize,
    /// How long a presigned upload URL stays valid, in seconds.
    pub upload_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_page: 100,
            max_page: 1000,
            max_body: 6 * 1024 * 1024,
            upload_seconds: 900,
        }
    }
}

/// What every handler shares.
pub struct Api {
    /// The bronze database.
    pub pool: Pool,
    /// Where `POST …/records` and uploads write.
    pub s3: aws_sdk_s3::Client,
    /// The landing bucket: the one whose notifications feed dispatch.
    pub bucket: String,
    /// Local credentials (a token per tenant); in AWS the authorizer's [`Principal`].
    pub tokens: Tokens,
    /// Page and body bounds.
    pub limits: Limits,
}

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `BRONZE_API_TOKENS` cannot be read.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// `BRONZE_MIGRATE` names no mode.
    #[error("{0}")]
    Migrations(String),
}

impl Api {
    /// The API over the database the environment names (`DATABASE_URL`, else
    /// `DATABASE_SECRET_ARN` read with `secrets`), writing to `bucket`, with the local
    /// tokens of `BRONZE_API_TOKENS` and `connections` database connections.
    pub fn from_env(
        config: &aws_config::SdkConfig,
        secrets: Option<aws_sdk_secretsmanager::Client>,
        bucket: String,
        connections: usize,
    ) -> Result<Self, ApiError> {
        // Like the functions: the database must be at this build's migration (the API
        // reads what the latest ones made), and it is never migrated from here unless
        // `BRONZE_MIGRATE=apply` says so.
        let migrations = Migrations::from_env(Migrations::Require).map_err(ApiError::Migrations)?;
        Ok(Self {
            pool: Pool::new(connections, || {
                Db::from_env(secrets.clone()).migrations(migrations)
            }),
            s3: crate::aws::s3(config),
            bucket,
            tokens: Tokens::from_env()?,
            limits: Limits::default(),
        })
    }
}

/// Serves the API on `listener` (HTTP/1.1, chunked streams) until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) -> std::io::Result<()> {
    axum::serve(listener, router(api)).await
}

/// The generated OpenAPI 3.1 document, served at `/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "bronze records API",
        description = "Query, stream, count and time-travel bronze tables; send records and files through the landing bucket. Every path acts for the tenant it names: locally with `Authorization: Bearer <token>` (BRONZE_API_TOKENS), in AWS with the API Gateway authorizer's tenant claim. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        datasets::list,
        datasets::schema,
        datasets::history,
        datasets::diff,
        records::list,
        records::count,
        records::stream,
        records::one,
        records::history,
        objects::post_records,
        objects::upload,
        objects::status,
        openapi,
    ),
    components(schemas(Problem, objects::Accepted, objects::Upload))
)]
pub struct Doc;

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(Doc::openapi())
}

/// The whole API.
pub fn router(api: Arc<Api>) -> Router {
    let max_body = api.limits.max_body;
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/{tenant}/datasets", get(datasets::list))
        .route(
            "/v1/{tenant}/datasets/{dataset}/schema",
            get(datasets::schema),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/schema/history",
            get(datasets::history),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/schema/diff",
            get(datasets::diff),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/records",
            get(records::list)
                .post(objects::post_records)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/records/count",
            get(records::count),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/records/stream",
            get(records::stream),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/records/{key}",
            get(records::one),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/records/{key}/history",
            get(records::history),
        )
        .route(
            "/v1/{tenant}/datasets/{dataset}/uploads",
            post(objects::upload),
        )
        .route("/v1/{tenant}/objects/{id}", get(objects::status))
        .fallback(|| async { Problem::not_found("no such endpoint: see /v1/openapi.json") })
        .with_state(api)
}

/// `dataset` under the caller's tenant, or a 400 naming the rule it breaks.
fn destination(
    tenant: &crate::keys::Name,
    dataset: &str,
) -> Result<crate::keys::Destination, Problem> {
    crate::keys::Destination::new(tenant.as_str(), dataset)
        .map_err(|e| Problem::bad_request("dataset", e.to_string()))
}
