//! Writes, as files in the landing bucket: `POST …/records` puts the body there as one
//! object, `POST …/uploads` hands out a presigned PUT for a large file. Either way
//! the object goes through dispatch and load like any other, and
//! `GET /v1/{tenant}/objects/{id}` follows it through the ledger.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::Access;
use super::problem::Problem;
use super::{destination, Api};
use crate::keys::Destination;

/// The answer to a write: where the object is and where to follow it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The object's key in the landing bucket.
    pub key: String,
    /// `GET` this for the object's ledger status, load counts and rejects.
    pub status_url: String,
}

/// A presigned upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Upload {
    /// `PUT` the file's bytes here.
    pub url: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// The object's key in the landing bucket.
    pub key: String,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
    /// `GET` this to follow the object once uploaded.
    pub status_url: String,
}

/// A name no other write of any process has: the time, and a digest of the time,
/// the process and a counter (Lambda instances share no counter).
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let local = &COUNTER as *const AtomicU64 as usize;
    hasher.update(local.to_le_bytes());
    format!("{nanos}-{}", &hex::encode(hasher.finalize())[..12])
}

/// Where to follow the object with `key`: its path relative to the tenant, escaped
/// into one path segment.
fn status_url(dest: &Destination, key: &str) -> String {
    let relative = key
        .strip_prefix(&format!("{}/", dest.tenant))
        .unwrap_or(key);
    format!(
        "/v1/{}/objects/{}",
        dest.tenant,
        utf8_percent_encode(relative, NON_ALPHANUMERIC)
    )
}

/// Checks that `body` is what its content type says, so a typo is a 400 now rather
/// than a rejected file later; the bytes are stored as sent (lossless).
fn check_body(body: &[u8], ndjson: bool) -> Result<(), Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("body", "the body is empty"));
    }
    let parse = |text: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(text);
    if ndjson {
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_none_or(|&b| b != b'{')
            {
                return Err(Problem::bad_request(
                    "body",
                    format!("line {}: not a JSON object", i + 1),
                ));
            }
            parse(line)
                .map_err(|e| Problem::bad_request("body", format!("line {}: {e}", i + 1)))?;
        }
        return Ok(());
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => parse(body)
            .map(|_| ())
            .map_err(|e| Problem::bad_request("body", format!("not JSON: {e}"))),
        _ => Err(Problem::bad_request(
            "body",
            "a JSON object, a JSON array of objects, or NDJSON",
        )),
    }
}

/// Sends records to the dataset: one JSON object, a JSON array of objects
/// (`application/json`) or NDJSON (`application/x-ndjson`), at most 6 MiB. The body
/// is written as one object under `<tenant>/<dataset>/_api/` in the landing bucket
/// and loaded from there like any file: same validation, versioning and lineage.
#[utoipa::path(post, path = "/v1/{tenant}/datasets/{dataset}/records", tag = "write",
    params(("tenant" = String, Path), ("dataset" = String, Path)),
    request_body(content = String, description = "JSON object, JSON array, or NDJSON", content_type = "application/json"),
    responses(
        (status = 202, description = "Written to the landing bucket; follow status_url", body = Accepted),
        (status = 400, description = "Not JSON / NDJSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Past 6 MiB: use uploads", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_records(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(api.limits.max_body)
        } else {
            Problem::bad_request("body", e.body_text())
        }
    })?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("ndjson") || t.contains("jsonl"));
    check_body(&body, ndjson)?;
    let extension = if ndjson { "ndjson" } else { "json" };
    let key = format!(
        "{}/{}/_api/{}.{extension}",
        dest.tenant,
        dest.dataset,
        unique_name()
    );
    api.s3
        .put_object()
        .bucket(&api.bucket)
        .key(&key)
        .content_type(if ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        })
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| {
            Problem::unavailable(format!(
                "writing s3://{}/{key}: {}",
                api.bucket,
                crate::aws::describe(&e)
            ))
        })?;
    let accepted = Accepted {
        status_url: status_url(&dest, &key),
        key,
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, accepted.status_url.clone())],
        Json(accepted),
    )
        .into_response())
}

/// `?filename=`.
#[derive(Deserialize)]
pub struct UploadQuery {
    filename: Option<String>,
}

/// A presigned `PUT` URL for one file under `<tenant>/<dataset>/_uploads/`, for
/// files past the records body limit; valid 15 minutes.
#[utoipa::path(post, path = "/v1/{tenant}/datasets/{dataset}/uploads", tag = "write",
    params(("tenant" = String, Path), ("dataset" = String, Path),
        ("filename" = Option<String>, Query, description = "The file's name: letters, digits, `.`, `_`, `-` (its extension tells the format)")),
    responses(
        (status = 200, description = "Where to PUT the file", body = Upload),
        (status = 400, description = "A bad file name", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let filename = query.filename.unwrap_or_else(|| "upload.csv".to_owned());
    let plain = !filename.is_empty()
        && filename.len() <= 200
        && !filename.starts_with('.')
        && filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !plain {
        return Err(Problem::bad_request(
            "filename",
            "letters, digits, '.', '_' and '-' only, not starting with '.', at most 200",
        ));
    }
    let key = format!(
        "{}/{}/_uploads/{}/{filename}",
        dest.tenant,
        dest.dataset,
        unique_name()
    );
    let expires = Duration::from_secs(api.limits.upload_seconds);
    let config = PresigningConfig::expires_in(expires)
        .map_err(|e| Problem::unavailable(format!("presigning: {e}")))?;
    let request = api
        .s3
        .put_object()
        .bucket(&api.bucket)
        .key(&key)
        .presigned(config)
        .await
        .map_err(|e| Problem::unavailable(format!("presigning: {}", crate::aws::describe(&e))))?;
    Ok(Json(Upload {
        url: request.uri().to_owned(),
        method: "PUT",
        status_url: status_url(&dest, &key),
        key,
        expires_in: api.limits.upload_seconds,
    })
    .into_response())
}

/// An object's way through the pipeline: its ledger status, its load's counts and
/// the first rejects. `id` is the ledger's id or the key below the tenant, as
/// `status_url` gives it; an object written but not yet announced by S3 is
/// `submitted`.
#[utoipa::path(get, path = "/v1/{tenant}/objects/{id}", tag = "write",
    params(("tenant" = String, Path), ("id" = String, Path, description = "Ledger id, or the key below the tenant (escaped)")),
    responses(
        (status = 200, description = "`{\"id\", \"key\", \"status\", \"attempts\", \"error\", \"load\": {counts}, \"rejects\": [...]}`", content_type = "application/json"),
        (status = 404, description = "No such object of this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let tenant = access.tenant.as_str();
    let ledger_id: Option<i64> = id.parse().ok();
    let key = format!("{tenant}/{id}");
    let client = api.pool.db().client().await?;
    let row = client
        .query_opt(
            "SELECT jsonb_build_object('id', o.id, 'key', o.key, 'status', o.status,
                 'attempts', o.attempts, 'error', o.error, 'received_at', o.received_at,
                 'updated_at', o.updated_at,
                 'load', (SELECT jsonb_build_object('id', l.id, 'status', l.status,
                              'records_in', l.records_in, 'inserted', l.inserted,
                              'updated', l.updated, 'unchanged', l.unchanged,
                              'deleted', l.deleted, 'rejected', l.rejected,
                              'quality_score', l.quality_score, 'error', l.error)
                          FROM bronze.loads l WHERE l.id = o.load_id),
                 'rejects', coalesce((SELECT jsonb_agg(jsonb_build_object('line', r.line,
                                  'reason', r.reason, 'raw', left(r.raw, 256)) ORDER BY r.id)
                              FROM (SELECT * FROM bronze.rejects r WHERE r.load_id = o.load_id
                                    ORDER BY r.id LIMIT 100) r), '[]'::jsonb))::text
             FROM bronze.objects o
             WHERE o.tenant = $1 AND (o.id = $2 OR o.key = $3)
             ORDER BY o.id DESC LIMIT 1",
            &[&tenant, &ledger_id, &key],
        )
        .await?;
    if let Some(row) = row {
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            row.get::<_, String>(0),
        )
            .into_response());
    }
    // Not in the ledger yet: written, but S3's notification has not reached dispatch.
    let written = ledger_id.is_none()
        && api
            .s3
            .head_object()
            .bucket(&api.bucket)
            .key(&key)
            .send()
            .await
            .is_ok();
    if written {
        let body = serde_json::json!({"key": key, "status": "submitted"});
        return Ok(Json(body).into_response());
    }
    Err(Problem::not_found(format!(
        "tenant {tenant:?} has no object {id:?}"
    )))
}
