//! `…/datasets` and their schemas, read from the registry (`bronze.schemas`) and the
//! loads (`bronze.loads`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::Access;
use super::problem::Problem;
use super::{destination, Api};
use crate::registry;
use crate::schema::diff as schema_diff;

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A schema version as JSON, built by the server from its stored row.
const VERSION_JSON: &str = "jsonb_build_object('version', version, 'fingerprint', fingerprint,
    'breaking', breaking, 'load_id', load_id, 'created_at', created_at, 'fields', fields,
    'changes', changes)";

/// The tenant's datasets: current schema version, stored rows (the planner's
/// estimate: every version, not only current ones), last load and its quality score.
#[utoipa::path(get, path = "/v1/{tenant}/datasets", tag = "datasets",
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "`{\"datasets\": [{\"dataset\", \"schema_version\", \"rows_planned\", \"last_load\", \"quality_score\"}]}`", content_type = "application/json"),
        (status = 403, description = "Another tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(access: Access, State(api): State<Arc<Api>>) -> Result<Response, Problem> {
    let client = api.pool.db().client().await?;
    // The table name is quoted by format('%I.%I') from a name the registry holds.
    let row = client
        .query_one(
            "WITH names AS (
                 SELECT dataset FROM bronze.schemas WHERE tenant = $1
                 UNION SELECT dataset FROM bronze.datasets WHERE tenant = $1)
             SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'dataset', n.dataset,
                 'schema_version', (SELECT max(s.version) FROM bronze.schemas s
                                    WHERE s.tenant = $1 AND s.dataset = n.dataset),
                 'rows_planned', (SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c
                                  WHERE c.oid = to_regclass(format('%I.%I', 'tenant_' || $1, n.dataset))),
                 'last_load', (SELECT jsonb_build_object('id', l.id, 'status', l.status,
                                   'finished_at', l.finished_at, 'records_in', l.records_in,
                                   'source_key', l.source_key)
                               FROM bronze.loads l WHERE l.tenant = $1 AND l.dataset = n.dataset
                               ORDER BY l.id DESC LIMIT 1),
                 'quality_score', (SELECT l.quality_score FROM bronze.loads l
                                   WHERE l.tenant = $1 AND l.dataset = n.dataset
                                     AND l.quality_score IS NOT NULL
                                   ORDER BY l.id DESC LIMIT 1))
                 ORDER BY n.dataset), '[]')::text
             FROM names n",
            &[&access.tenant.as_str()],
        )
        .await?;
    Ok(json(format!("{{\"datasets\":{}}}", row.get::<_, &str>(0))))
}

/// `?version=N`.
#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i32>,
}

/// The current schema version, or version `N`: its fields with types, and what
/// changed from the version before.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/schema", tag = "datasets",
    params(("tenant" = String, Path), ("dataset" = String, Path), ("version" = Option<i32>, Query)),
    responses(
        (status = 200, description = "`{\"version\", \"fingerprint\", \"breaking\", \"load_id\", \"created_at\", \"fields\", \"changes\"}`", content_type = "application/json"),
        (status = 404, description = "No such dataset or version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn schema(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT ({VERSION_JSON})::text FROM bronze.schemas
                 WHERE tenant = $1 AND dataset = $2 AND ($3::int IS NULL OR version = $3)
                 ORDER BY version DESC LIMIT 1"
            ),
            &[
                &dest.tenant.as_str(),
                &dest.dataset.as_str(),
                &query.version,
            ],
        )
        .await?;
    row.map(|r| json(r.get(0))).ok_or_else(|| {
        Problem::not_found(format!(
            "dataset {:?} has no schema version{}",
            dest.dataset.as_str(),
            query.version.map(|v| format!(" {v}")).unwrap_or_default()
        ))
    })
}

/// Every schema version, oldest first.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/schema/history", tag = "datasets",
    params(("tenant" = String, Path), ("dataset" = String, Path)),
    responses(
        (status = 200, description = "`{\"versions\": [version]}`", content_type = "application/json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    let row = client
        .query_one(
            &format!(
                "SELECT jsonb_agg({VERSION_JSON} ORDER BY version)::text FROM bronze.schemas
                 WHERE tenant = $1 AND dataset = $2"
            ),
            &[&dest.tenant.as_str(), &dest.dataset.as_str()],
        )
        .await?;
    let versions: Option<&str> = row.get(0);
    versions
        .map(|v| json(format!("{{\"versions\":{v}}}")))
        .ok_or_else(|| Problem::not_found(format!("no dataset {:?}", dest.dataset.as_str())))
}

/// `?from=&to=`.
#[derive(Deserialize)]
pub struct DiffQuery {
    from: Option<i32>,
    to: Option<i32>,
}

/// The classified changes between two versions (default: the previous to the current).
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/schema/diff", tag = "datasets",
    params(("tenant" = String, Path), ("dataset" = String, Path),
        ("from" = Option<i32>, Query), ("to" = Option<i32>, Query)),
    responses(
        (status = 200, description = "`{\"from\", \"to\", \"breaking\", \"changes\": [...]}`", content_type = "application/json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn diff(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    let versions = registry::history(&*client, &dest).await?;
    let current = versions
        .last()
        .ok_or_else(|| Problem::not_found(format!("no dataset {:?}", dest.dataset.as_str())))?;
    let to = query.to.unwrap_or(current.number);
    let from = query.from.unwrap_or(to - 1);
    let find = |n: i32, name: &str| {
        versions.iter().find(|v| v.number == n).ok_or_else(|| {
            Problem::bad_request(
                name,
                format!("no schema version {n} (1 to {})", current.number),
            )
        })
    };
    let (a, b) = (find(from, "from")?, find(to, "to")?);
    let changes = schema_diff(&a.schema, &b.schema);
    let breaking = changes.iter().any(|c| c.breaking);
    let changes = serde_json::to_string(&changes)
        .map_err(|e| Problem::unavailable(format!("changes not serialisable: {e}")))?;
    Ok(json(format!(
        "{{\"from\":{from},\"to\":{to},\"breaking\":{breaking},\"changes\":{changes}}}"
    )))
}
