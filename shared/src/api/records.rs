//! `…/records`: a page, its count, an NDJSON stream, one record and its history.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::GenericClient;

use super::access::Access;
use super::cursor::Cursor;
use super::filter::Params;
use super::problem::Problem;
use super::query::{self, records, Shape};
use super::{destination, Api};
use crate::keys::Destination;
use crate::registry;
use crate::schema::Schema;
use crate::store::dataset_table;

/// The query string as pairs, in order.
type Pairs = Vec<(String, String)>;

/// A JSON body that is already text.
fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The dataset's current schema, or 404 when the registry has no version of it.
async fn schema(db: &impl GenericClient, dest: &Destination) -> Result<Schema, Problem> {
    registry::current(db, dest)
        .await?
        .map(|v| v.schema)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "tenant {:?} has no dataset {:?}",
                dest.tenant.as_str(),
                dest.dataset.as_str()
            ))
        })
}

/// The query checked against the dataset's schema, with what its indexes allow.
async fn params(
    db: &impl GenericClient,
    dest: &Destination,
    query: &Pairs,
) -> Result<Params, Problem> {
    let params = Params::parse(query, &schema(db, dest).await?)?;
    let indexes = crate::store::api_indexes(db, dest).await?;
    Ok(Params {
        containment: indexes.iter().any(|i| i == crate::store::PAYLOAD),
        ..params
    })
}

fn param<'a>(query: &'a Pairs, name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A page of records.
///
/// Current records by default, or those valid at `as_of`; filters are `field=op.value`
/// (eq, ne, gt, gte, lt, lte, in, like, ilike, is_null, is_not_null), compared by the
/// field's registered type. Pages follow each other by keyset (`cursor` = the last
/// page's `next`): each page is an index range from where the last one ended, and a
/// record current throughout is returned exactly once, whatever loads run meanwhile.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/records", tag = "records",
    params(
        ("tenant" = String, Path, description = "The tenant (must be the caller's)"),
        ("dataset" = String, Path),
        ("order" = Option<String>, Query, description = "field.asc or field.desc; then by record key"),
        ("select" = Option<String>, Query, description = "Comma-separated fields to return"),
        ("limit" = Option<u32>, Query, description = "Records per page: 100 by default, at most 1000"),
        ("cursor" = Option<String>, Query, description = "The `next` of the previous page"),
        ("as_of" = Option<String>, Query, description = "RFC 3339 instant: the versions valid then"),
        ("lineage" = Option<bool>, Query, description = "Add each version's lineage"),
    ),
    responses(
        (status = 200, description = "`{\"records\": [{\"key\", \"version\", \"data\", \"lineage\"?}], \"next\": cursor or null}`", content_type = "application/json"),
        (status = 400, description = "An unknown field or a value that does not fit its type", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another tenant's data", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    Query(query): Query<Pairs>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    let params = params(&*client, &dest, &query).await?;
    let limit = params.limit.unwrap_or(api.limits.default_page);
    if limit == 0 || limit > api.limits.max_page {
        return Err(Problem::bad_request(
            "limit",
            format!("limit is 1 to {}", api.limits.max_page),
        ));
    }
    let order = param(&query, "order");
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c, order, params.as_of.as_deref()))
        .transpose()?;
    let sql = records(&dest, &params, Shape::Page(limit), cursor.as_ref());
    let rows = client.query(&sql.text, &sql.args()).await?;
    let more = rows.len() > limit as usize;
    let page = &rows[..rows.len().min(limit as usize)];
    let mut body = String::with_capacity(
        page.iter()
            .map(|r| r.get::<_, &str>(0).len() + 1)
            .sum::<usize>()
            + 64,
    );
    body.push_str("{\"records\":[");
    for (i, row) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(row.get(0));
    }
    body.push_str("],\"next\":");
    match page.last().filter(|_| more) {
        Some(last) => {
            let next = Cursor {
                order: order.map(str::to_owned),
                as_of: params.as_of.clone(),
                value: last.get(1),
                key: last.get(2),
            };
            body.push('"');
            body.push_str(&next.encode());
            body.push('"');
        }
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(json(body))
}

/// How many records match: `count=exact` (the default) counts them; `count=planned`
/// is the planner's estimate, instant on any size. `Prefer: count=…` works too, as
/// in PostgREST.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/records/count", tag = "records",
    params(
        ("tenant" = String, Path), ("dataset" = String, Path),
        ("count" = Option<String>, Query, description = "exact (default) or planned"),
    ),
    responses(
        (status = 200, description = "`{\"count\": n, \"method\": \"exact\"|\"planned\"}`", content_type = "application/json"),
        (status = 400, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn count(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<Pairs>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let preferred = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("count=")));
    let method = param(&query, "count").or(preferred).unwrap_or("exact");
    let client = api.pool.db().client().await?;
    let params = params(&*client, &dest, &query).await?;
    let count: i64 = match method {
        "exact" => {
            let sql = records(&dest, &params, Shape::Count, None);
            client.query_one(&sql.text, &sql.args()).await?.get(0)
        }
        "planned" | "estimated" => {
            let sql = records(&dest, &params, Shape::Rows, None);
            let plan = client
                .query(&format!("EXPLAIN {}", sql.text), &sql.args())
                .await?;
            // The top node's estimate: `… (cost=0.00..1.07 rows=5 width=4)`.
            plan.first()
                .and_then(|row| {
                    let line: &str = row.get(0);
                    let rows = line.split("rows=").nth(1)?;
                    rows.split(' ').next()?.parse().ok()
                })
                .unwrap_or(0)
        }
        other => {
            return Err(Problem::bad_request(
                "count",
                format!("count is exact or planned, not {other:?}"),
            ))
        }
    };
    let method = if method == "exact" {
        "exact"
    } else {
        "planned"
    };
    Ok(json(format!(
        "{{\"count\":{count},\"method\":\"{method}\"}}"
    )))
}

/// Bytes handed to the response at a time: large enough that the per-chunk cost
/// vanishes, small enough that memory stays flat (four in flight at most).
const CHUNK: usize = 64 * 1024;

/// Every matching record as NDJSON, one JSON document a line (the data; the whole
/// record with `lineage=true`), streamed from the server's cursor as it is read:
/// memory stays flat whatever the size. Lambda streams it with response streaming
/// (the function URL), `bronze serve` with chunked encoding.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/records/stream", tag = "records",
    params(("tenant" = String, Path), ("dataset" = String, Path),
        ("select" = Option<String>, Query), ("order" = Option<String>, Query),
        ("as_of" = Option<String>, Query), ("lineage" = Option<bool>, Query)),
    responses(
        (status = 200, description = "One JSON document per line", content_type = "application/x-ndjson"),
        (status = 400, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset)): Path<(String, String)>,
    Query(query): Query<Pairs>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let db = api.pool.db();
    let sql = {
        let client = db.client().await?;
        let params = params(&*client, &dest, &query).await?;
        records(&dest, &params, Shape::Stream, None)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let worker = Arc::clone(&api);
    tokio::spawn(async move {
        if let Err(e) = pump(&worker, &sql, &tx).await {
            tracing::warn!(error = %e, "Records stream broke off.");
            // The client sees the body end without its final chunk: an error, not
            // a short file.
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}

/// Runs the stream's query and sends its rows, a line each, in chunks.
async fn pump(
    api: &Api,
    sql: &query::Sql,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let client = api.pool.db().client().await.map_err(|e| e.to_string())?;
    let rows = client
        .query_raw(&sql.text, sql.args())
        .await
        .map_err(|e| crate::aws::describe(&e))?;
    pin_mut!(rows);
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| crate::aws::describe(&e))?
    {
        buf.extend_from_slice(row.get::<_, &str>(0).as_bytes());
        buf.push(b'\n');
        if buf.len() >= CHUNK {
            let chunk = Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(CHUNK + 4096),
            ));
            if tx.send(Ok(chunk)).await.is_err() {
                // The client went away; dropping the rows ends the query.
                return Ok(());
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    }
    Ok(())
}

/// The record keys a path segment may mean: the stored form itself (`["1001"]`, a
/// hash), or a single key value written plainly (`1001`), as text or as a JSON scalar.
fn key_candidates(key: &str) -> Vec<String> {
    let mut keys = vec![
        key.to_owned(),
        serde_json::Value::String(key.to_owned()).to_string(),
    ];
    keys[1] = format!("[{}]", keys[1]);
    if serde_json::from_str::<serde_json::Value>(key).is_ok_and(|v| v.is_number() || v.is_boolean())
    {
        keys.push(format!("[{key}]"));
    }
    keys
}

/// One record: its current version, or the one valid at `as_of`.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/records/{key}", tag = "records",
    params(("tenant" = String, Path), ("dataset" = String, Path),
        ("key" = String, Path, description = "The record key as stored (`[\"1001\"]`) or a single key value (`1001`)"),
        ("as_of" = Option<String>, Query), ("lineage" = Option<bool>, Query)),
    responses(
        (status = 200, description = "`{\"key\", \"version\", \"data\", \"lineage\"?}`", content_type = "application/json"),
        (status = 404, description = "No such record (or deleted)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn one(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset, key)): Path<(String, String, String)>,
    Query(query): Query<Pairs>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    let params = params(&*client, &dest, &query).await?;
    if let Some(filter) = params.filters.first() {
        return Err(Problem::bad_request(
            &filter.field.name,
            "a single record takes no filters",
        ));
    }
    let params = Params {
        keys: key_candidates(&key),
        ..params
    };
    let sql = records(&dest, &params, Shape::Page(1), None);
    let rows = client.query(&sql.text, &sql.args()).await?;
    match rows.first() {
        Some(row) => Ok(json(row.get::<_, String>(0))),
        None => Err(Problem::not_found(format!(
            "no record {key:?} in {:?}",
            dest.dataset.as_str()
        ))),
    }
}

/// Every stored version of a record, oldest first, with its change type, validity,
/// load and source line.
#[utoipa::path(get, path = "/v1/{tenant}/datasets/{dataset}/records/{key}/history", tag = "records",
    params(("tenant" = String, Path), ("dataset" = String, Path), ("key" = String, Path)),
    responses(
        (status = 200, description = "`{\"key\", \"versions\": [record with lineage]}`", content_type = "application/json"),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    access: Access,
    State(api): State<Arc<Api>>,
    Path((_, dataset, key)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let dest = destination(&access.tenant, &dataset)?;
    let client = api.pool.db().client().await?;
    schema(&*client, &dest).await?;
    let sql = format!(
        "SELECT t.record_key, ({})::text FROM {} t WHERE t.record_key = ANY($1::text[])
         ORDER BY t.version",
        query::record(&[], true),
        dataset_table(&dest)
    );
    let rows = client.query(&sql, &[&key_candidates(&key)]).await?;
    let Some(first) = rows.first() else {
        return Err(Problem::not_found(format!(
            "no record {key:?} in {:?}",
            dest.dataset.as_str()
        )));
    };
    let versions: Vec<&str> = rows.iter().map(|r| r.get(1)).collect();
    let key = serde_json::Value::String(first.get(0)).to_string();
    Ok(json(format!(
        "{{\"key\":{key},\"versions\":[{}]}}",
        versions.join(",")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_key_value_is_tried_as_text_and_as_json() {
        assert_eq!(key_candidates("1001"), ["1001", "[\"1001\"]", "[1001]"]);
        assert_eq!(key_candidates("a\"b"), ["a\"b", "[\"a\\\"b\"]"]);
    }
}
